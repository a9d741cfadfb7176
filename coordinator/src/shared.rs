//! The state the service shares with the sweep's loops ([`Shared`]: the [`Ledger`], the SQLite
//! [`Store`], the results directory) and the effects of the ledger's events (recorded, logged,
//! failure records written, the end signalled). The tonic handlers are in [`crate::service`],
//! the reception of uploads in [`crate::upload`], the group committer in [`crate::commit`];
//! this module imports none of them.

use crate::backend::BackendBuild;
use crate::ids::{AttemptId, TaskIdx, WorkerId};
use crate::ledger::{Counts, Ledger, LedgerError, LedgerEvent};
use crate::store::Store;
use apparate::ids::TaskKey;
use apparate::results::{
    FailureKind, FailureRecord, ResultsError, ResultsWriter, FAILURE_FORMAT, FORMAT_VERSION,
};
use apparate::sweep::{Plan, PlannedTask};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tonic::{Request, Status};

/// Per-worker progress, for the progress display.
#[derive(Clone, Debug)]
pub struct WorkerProgress {
    /// Worker id.
    pub id: WorkerId,
    /// Host it registered from.
    pub host: String,
    /// Tasks it completed.
    pub done: usize,
    /// When it registered.
    pub since: Instant,
    /// Its last pull or heartbeat.
    pub last_seen: Instant,
    /// It was told that the sweep is done.
    pub told_done: bool,
    /// It registered with `--gpu` (it may build `device = "cuda"` backend inputs).
    pub gpu: bool,
}

/// A snapshot for the progress display.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Tasks per state.
    pub counts: Counts,
    /// Registered workers.
    pub workers: Vec<WorkerProgress>,
}

pub(crate) struct Core {
    pub(crate) ledger: Ledger,
    pub(crate) store: Store,
    pub(crate) tasks: PlanTasks,
    pub(crate) code_version: String,
    pub(crate) workers: Vec<WorkerProgress>,
    /// The failure kind last reported for a task (for its failure record).
    pub(crate) kinds: HashMap<TaskIdx, FailureKind>,
    /// The sweep's backend inputs, when its spec has them ([`crate::backend`]).
    pub(crate) backend: Option<BackendBuild>,
    /// Live tasks that need a GPU worker, when the sweep has any.
    pub(crate) live: Option<LiveGpu>,
}

/// The live tasks of a sweep that ask for `device = "cuda"` (leased only to `--gpu` workers).
#[derive(Debug, Default)]
pub(crate) struct LiveGpu {
    /// How many.
    pub(crate) total: usize,
    /// The state line last recorded.
    line: Option<String>,
    /// When the log last said that they wait with no GPU worker.
    warned: Option<Instant>,
}

/// The state the service shares with the sweep's loops.
pub struct Shared {
    core: Mutex<Core>,
    /// The results directory (its methods take `&self`; commits run outside the core's lock).
    pub(crate) writer: ResultsWriter,
    token: String,
    pub(crate) code_version: String,
    pub(crate) lease: Duration,
    finished: watch::Sender<bool>,
    /// The group committer's queue ([`crate::commit`]).
    pub(crate) committer: std::sync::mpsc::Sender<CommitJob>,
}

impl Shared {
    /// The shared state, and the receiving end of its committer queue (for
    /// [`crate::commit::spawn`]).
    pub(crate) fn new(
        core: Core,
        writer: ResultsWriter,
        token: String,
        lease: Duration,
    ) -> (Arc<Shared>, std::sync::mpsc::Receiver<CommitJob>) {
        let finished = core.ledger.is_finished();
        let (committer, jobs) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            writer,
            code_version: core.code_version.clone(),
            core: Mutex::new(core),
            token,
            lease,
            finished: watch::channel(finished).0,
            committer,
        });
        (shared, jobs)
    }

    /// The results directory.
    pub fn writer(&self) -> &ResultsWriter {
        &self.writer
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock leaves the ledger as it was before the transition's
        // effects; carry on with it rather than poisoning the whole sweep.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether every task is done or failed.
    pub fn finished(&self) -> watch::Receiver<bool> {
        self.finished.subscribe()
    }

    /// Expires overdue leases (called by the sweep's tick loop with the clock read once).
    pub fn tick(&self, now: Instant) {
        let mut core = self.lock();
        let events = core.ledger.on_tick(now);
        self.act(&mut core, &events);
        let core = &mut *core;
        if let Some(b) = &mut core.backend {
            if core.ledger.counts().pending > 0 {
                let able = core.workers.iter().filter(|w| b.can_build(w.gpu)).count();
                let workers = &core.workers;
                let last_seen =
                    |id: WorkerId| workers.iter().find(|w| w.id == id).map(|w| w.last_seen);
                b.tick(now, last_seen, able, self.lease * 2);
            }
        }
        self.record_backend_state(core);
        self.record_live_state(core);
    }

    /// Records, when it changed, the line `coordinator status` shows about the live tasks that
    /// need a GPU worker (nothing for a sweep without any); logs it, at most every
    /// [`crate::backend::WARN_EVERY`], while they wait with no GPU worker registered.
    pub(crate) fn record_live_state(&self, core: &mut Core) {
        let Some(live) = core.live.as_mut() else {
            return;
        };
        let (waiting, gpus) = (core.ledger.waiting_for_gpu(), core.ledger.gpu_workers());
        let line = match (waiting, gpus) {
            (0, _) => format!("{} live task(s) on device cuda: none waits for a GPU worker", live.total),
            (n, 0) => format!(
                "{n} live task(s) ask for device cuda and wait for a GPU worker; none is registered (start one with `worker --coordinator URL --gpu`)"
            ),
            (n, g) => format!(
                "{n} live task(s) ask for device cuda: leased only to the {g} GPU worker(s)"
            ),
        };
        let now = Instant::now();
        if waiting > 0
            && gpus == 0
            && live
                .warned
                .is_none_or(|t| now.saturating_duration_since(t) >= crate::backend::WARN_EVERY)
        {
            live.warned = Some(now);
            tracing::warn!("{line}");
        }
        if live.line.as_deref() != Some(line.as_str()) {
            if let Err(e) = core.store.set_note(LIVE_NOTE, &line) {
                tracing::debug!("cannot record the live tasks' state: {e}");
            }
            live.line = Some(line);
        }
    }

    /// Records the backend inputs' state line in the ledger (`coordinator status` shows it).
    pub(crate) fn record_backend_state(&self, core: &mut Core) {
        if let Some(b) = &core.backend {
            let able = core.workers.iter().filter(|w| b.can_build(w.gpu)).count();
            let line = b.state_line(able);
            if let Err(e) = core.store.set_note(BACKEND_NOTE, &line) {
                tracing::debug!("cannot record the backend inputs' state: {e}");
            }
        }
    }

    /// Whether every worker seen within `recent` was told that the sweep is done (the
    /// coordinator waits for that, briefly, before it stops serving, so workers exit).
    pub fn live_workers_told_done(&self, now: Instant, recent: Duration) -> bool {
        self.lock()
            .workers
            .iter()
            .all(|w| w.told_done || now.saturating_duration_since(w.last_seen) > recent)
    }

    /// Progress snapshot.
    pub fn snapshot(&self) -> Snapshot {
        let core = self.lock();
        Snapshot {
            counts: core.ledger.counts(),
            workers: core.workers.clone(),
        }
    }

    /// Checks the token of a call (used by the interceptor).
    pub fn check_token(&self, req: &Request<()>) -> Result<(), Status> {
        let given = req
            .metadata()
            .get(proto::AUTH_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| constant_time_eq(g.as_bytes(), self.token.as_bytes()));
        if ok {
            return Ok(());
        }
        let from = req
            .remote_addr()
            .map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
        let what = if given.is_some() { "a wrong" } else { "no" };
        tracing::warn!("refused a call from {from}: {what} token (unauthenticated)");
        Err(Status::unauthenticated("missing or wrong token"))
    }

    /// Records and logs what the ledger did; writes failure records; signals the end.
    pub(crate) fn act(&self, core: &mut Core, events: &[LedgerEvent]) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = core.store.apply(events) {
            tracing::error!("ledger database: {e}");
        }
        for ev in events {
            let key = |t: &TaskIdx| {
                core.ledger
                    .key(*t)
                    .map_or_else(|| "?".to_string(), |k| k.to_string())
            };
            match ev {
                LedgerEvent::Leased {
                    task,
                    worker,
                    attempt,
                } => tracing::info!(
                    "leased {} to worker {worker} as attempt {attempt}",
                    key(task)
                ),
                LedgerEvent::AttemptEnded {
                    task,
                    attempt,
                    outcome: crate::ledger::AttemptOutcome::Expired,
                } => tracing::warn!("lease of attempt {attempt} ({}) expired", key(task)),
                LedgerEvent::AttemptEnded { .. } | LedgerEvent::TaskReady { .. } => {}
                LedgerEvent::TaskDone {
                    task,
                    worker,
                    attempt,
                } => {
                    tracing::info!(
                        "task {} done by worker {worker} (attempt {attempt})",
                        key(task)
                    );
                    if let Some(w) = core.workers.iter_mut().find(|w| w.id == *worker) {
                        w.done += 1;
                    }
                }
                LedgerEvent::TaskFailed { task, reason } => {
                    let kind = core.kinds.remove(task).unwrap_or(FailureKind::Lost);
                    if let Some(planned) = core.tasks.get(task.get()) {
                        tracing::error!(
                            "task {} ({}) failed: {reason}",
                            planned.label(),
                            planned.key
                        );
                        let record = FailureRecord {
                            format: FAILURE_FORMAT.to_string(),
                            version: FORMAT_VERSION,
                            key: planned.key.clone(),
                            task: planned.label(),
                            code_version: core.code_version.clone(),
                            kind,
                            retryable: matches!(
                                kind,
                                FailureKind::Lost | FailureKind::InvalidResult
                            ),
                            message: reason.clone(),
                            spec: planned.spec.clone(),
                        };
                        if let Err(e) = self.writer.write_failure(&record) {
                            tracing::error!("cannot write the failure record: {e}");
                        }
                    }
                }
                LedgerEvent::WorkerBlocked { worker, failures } => tracing::warn!(
                    "worker {worker} gets no more tasks: {failures} failures in a row"
                ),
                LedgerEvent::SweepFinished => {
                    tracing::info!("every task is done or failed");
                    self.finished.send_replace(true);
                }
            }
        }
    }
}

impl Shared {
    /// Ends `attempt` as failed because its upload was not a result of its task (retryable,
    /// counted toward `--max-attempts` and the worker's failures in a row). Nothing when the
    /// attempt is no longer current.
    pub(crate) fn fail_attempt(&self, worker: WorkerId, attempt: AttemptId, reason: &str) {
        let mut core = self.lock();
        let Ok(task) = core.ledger.current(worker, attempt) else {
            return;
        };
        core.kinds.insert(task, FailureKind::InvalidResult);
        match core.ledger.on_failure(worker, attempt, true, true, reason) {
            Ok(events) => {
                if !events
                    .iter()
                    .any(|e| matches!(e, LedgerEvent::TaskFailed { .. }))
                {
                    core.kinds.remove(&task);
                }
                self.act(&mut core, &events);
            }
            Err(e) => {
                core.kinds.remove(&task);
                tracing::warn!("cannot fail attempt {attempt}: {e}");
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A received and checked result, waiting for the committer.
pub(crate) struct CommitJob {
    /// The worker that sent it.
    pub(crate) worker: WorkerId,
    /// Its attempt (in the ledger's committing set).
    pub(crate) attempt: AttemptId,
    /// `tasks/.tmp/<key>-<attempt>/`, holding the result's files.
    pub(crate) staging: PathBuf,
    /// Its key (the folder's name in `tasks/`).
    pub(crate) key: TaskKey,
    /// Where the outcome goes.
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<(), CommitError>>,
}

/// Why a result was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The results directory refused (the result's lease runs again; retryable).
    #[error("cannot commit {key}: {source}")]
    Write {
        /// The task's key.
        key: String,
        /// The cause.
        source: ResultsError,
    },
    /// The result is on disk, but the ledger no longer holds its attempt as current.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The committer stopped (the sweep is shutting down).
    #[error("the committer stopped")]
    Stopped,
}

/// The sweep's tasks, computed from the plan when needed (a lease, a commit, a failure): a
/// million planned tasks held in memory took 1.7 GB (issue #15).
pub(crate) struct PlanTasks {
    plan: Plan,
}

impl PlanTasks {
    /// Task `index` of the plan.
    pub(crate) fn get(&self, index: usize) -> Option<PlannedTask> {
        self.plan.task(index)
    }
}

pub(crate) fn new_core(
    ledger: Ledger,
    store: Store,
    plan: Plan,
    code_version: String,
    backend: Option<BackendBuild>,
    live_gpu_tasks: usize,
) -> Core {
    Core {
        ledger,
        store,
        tasks: PlanTasks { plan },
        code_version,
        workers: Vec::new(),
        kinds: HashMap::new(),
        backend,
        live: (live_gpu_tasks > 0).then(|| LiveGpu {
            total: live_gpu_tasks,
            ..LiveGpu::default()
        }),
    }
}

/// The ledger's `meta` row holding the backend inputs' state line.
pub const BACKEND_NOTE: &str = "backend_inputs";

/// The ledger's `meta` row holding the line about live tasks waiting for a GPU worker.
pub const LIVE_NOTE: &str = "live_tasks";

impl Shared {}
