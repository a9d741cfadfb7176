//! One abstraction for "start N workers, watch them, stop them", with ssh hosts
//! ([`crate::session::SshLauncher`]) and a Slurm job array ([`crate::slurm::SlurmLauncher`])
//! behind it. [`run_with_launcher`] owns the workers' lifetime around the caller's sweep.

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::error::Result;
use crate::session::ClusterRunError;

/// One worker (an ssh host, a Slurm array element) and its state, for status displays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerState {
    /// Its name (`node0`, `1234_5`).
    pub id: String,
    /// Its state in the launcher's words (`RUNNING`, `CANCELLED`, ...).
    pub state: String,
}

/// Starts workers, watches them, stops them.
pub trait Launcher: Send {
    /// Starts the workers (after checking what can be checked). On error, nothing is left
    /// running.
    fn start(&mut self) -> Result<()>;
    /// How often [`Launcher::watch`] is to be called while the sweep runs (`None`: never).
    fn watch_period(&self) -> Option<Duration>;
    /// One look at the workers: their states; replaces lost ones while `tasks_remain`.
    fn watch(&mut self, tasks_remain: bool) -> Result<Vec<WorkerState>>;
    /// Stops every worker still running.
    fn stop(&mut self) -> Result<()>;
}

/// A callback with the workers' states.
pub type OnStates<'a> = Box<dyn Fn(&[WorkerState]) + Send + Sync + 'a>;

/// What [`run_with_launcher`] tells the caller while the sweep runs.
pub struct Watch<'a> {
    /// Whether tasks remain (pending or leased): lost workers are replaced only then.
    pub tasks_remain: Box<dyn Fn() -> bool + Send + Sync + 'a>,
    /// The workers' states after each look.
    pub on_states: OnStates<'a>,
    /// Watching failed for good (the launcher cannot keep workers running): the caller
    /// should end the sweep.
    pub on_failure: Box<dyn Fn(String) + Send + Sync + 'a>,
}

impl Watch<'_> {
    /// A watch that reports nothing.
    pub fn none() -> Self {
        Self {
            tasks_remain: Box::new(|| false),
            on_states: Box::new(|_| {}),
            on_failure: Box::new(|_| {}),
        }
    }
}

/// Starts the workers, runs `sweep` (while a thread watches them, if the launcher asks for
/// it), and stops every worker whatever the sweep returned, and if it panicked.
pub fn run_with_launcher<L, T, E, F>(
    launcher: &Mutex<L>,
    watch: Watch<'_>,
    sweep: F,
) -> std::result::Result<T, ClusterRunError<E>>
where
    L: Launcher,
    F: FnOnce() -> std::result::Result<T, E>,
{
    let lock = || launcher.lock().unwrap_or_else(PoisonError::into_inner);
    lock().start().map_err(ClusterRunError::Setup)?;
    // Stop the workers even if the sweep panics.
    struct StopOnDrop<'a, L: Launcher> {
        launcher: &'a Mutex<L>,
        armed: bool,
    }
    impl<L: Launcher> Drop for StopOnDrop<'_, L> {
        fn drop(&mut self) {
            if self.armed {
                let mut l = self.launcher.lock().unwrap_or_else(PoisonError::into_inner);
                if let Err(e) = l.stop() {
                    tracing::warn!("stopping the workers failed: {e}");
                }
            }
        }
    }
    let mut guard = StopOnDrop {
        launcher,
        armed: true,
    };
    let period = lock().watch_period();
    let result = std::thread::scope(|scope| {
        let (stop_tx, stop_rx) = channel::<()>();
        if let Some(period) = period {
            let watch = &watch;
            scope.spawn(move || {
                // Until the sweep ends (the sender is dropped), one look per period.
                while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(period) {
                    let remain = (watch.tasks_remain)();
                    let looked = launcher
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .watch(remain);
                    match looked {
                        Ok(states) => (watch.on_states)(&states),
                        Err(e) => {
                            tracing::error!("watching the workers failed: {e}");
                            (watch.on_failure)(e.to_string());
                            break;
                        }
                    }
                }
            });
        }
        let result = sweep();
        drop(stop_tx);
        result
    });
    guard.armed = false;
    let stopped = lock().stop();
    // A last look, so the caller's record shows the final states.
    if period.is_some() {
        if let Ok(states) = lock().watch(false) {
            (watch.on_states)(&states);
        }
    }
    let value = result.map_err(ClusterRunError::Sweep)?;
    stopped.map_err(ClusterRunError::Stop)?;
    Ok(value)
}
