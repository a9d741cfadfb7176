//! The whole loop over a set of hosts: preflight, deploy, start, (the caller's sweep), stop.
//!
//! [`run_with_cluster`] is what `coordinator sweep --cluster FILE` calls: it owns the workers'
//! lifetime, so they are stopped whether the sweep succeeds, fails or panics.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use std::sync::{Mutex, PoisonError};

use crate::binary::{inspect, BinaryInfo};
use crate::deploy::{deploy_host, remote_binary, DataTree, Deployed};
use crate::error::{Error, Result};
use crate::hosts::Host;
use crate::launcher::{run_with_launcher, Launcher, Watch, WorkerState};
use crate::preflight::{preflight, reason, NodeReport, Requirements};
use crate::ssh::SshConfig;
use crate::workers::{self, Started, State, Stopped, WorkerArgs};

/// What to do when some hosts are unusable (preflight, deploy or start failed there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnUnusable {
    /// Stop before starting anything (the default: nothing runs on a partial cluster by
    /// surprise).
    #[default]
    Abort,
    /// Leave them out and go on with the others (at least one must remain).
    Skip,
}

/// Hosts, how to reach them, and what to ship.
#[derive(Debug, Clone)]
pub struct Session {
    /// The hosts.
    pub hosts: Vec<Host>,
    /// ssh settings.
    pub ssh: SshConfig,
    /// The worker binary.
    pub binary: BinaryInfo,
    /// The data directory to ship, if any.
    pub data: Option<DataTree>,
}

/// One host's outcome for a step.
pub type PerHost<T> = Vec<(Host, Result<T>)>;

impl Session {
    /// A session for `hosts`, shipping the binary at `worker_bin` (and `data`, if given).
    pub fn new(
        hosts: Vec<Host>,
        ssh: SshConfig,
        worker_bin: &Path,
        data: Option<&Path>,
    ) -> Result<Self> {
        Ok(Self {
            hosts,
            ssh,
            binary: inspect(worker_bin)?,
            data: data.map(DataTree::scan).transpose()?,
        })
    }

    /// Preflight requirements matching this session (binary, rsync if data is shipped).
    pub fn requirements(&self, coordinator: Option<SocketAddr>) -> Requirements {
        Requirements {
            binary: Some(self.binary.clone()),
            coordinator,
            min_free_bytes: 1 << 30,
            require_gpu: false,
            require_rsync: self.data.is_some(),
        }
    }

    /// Checks every host in parallel.
    pub fn preflight(&self, req: &Requirements) -> Vec<NodeReport> {
        preflight(&self.ssh, &self.hosts, req)
    }

    /// Ships the binary (and data) to every host in parallel.
    pub fn deploy(&self) -> PerHost<Deployed> {
        self.per_host(|h| deploy_host(&self.ssh, h, &self.binary, self.data.as_ref()))
    }

    /// The worker arguments for a coordinator at `coordinator`.
    pub fn worker_args(
        &self,
        coordinator: &str,
        slots: Option<u32>,
        extra: &[String],
    ) -> WorkerArgs {
        WorkerArgs {
            coordinator: coordinator.to_string(),
            slots,
            data_dir: self.data.as_ref().map(DataTree::remote_dir),
            extra: extra.to_vec(),
        }
    }

    /// Copies the token and starts a worker on every host, in parallel.
    pub fn start(&self, token: &[u8], args: &WorkerArgs) -> PerHost<Started> {
        self.start_program(Some(token), &args.to_args())
    }

    /// Starts the deployed binary with `args` on every host (copying `token` first if given).
    /// [`Session::start`] is this with the worker's arguments.
    pub fn start_program(&self, token: Option<&[u8]>, args: &[String]) -> PerHost<Started> {
        let program = remote_binary(&self.binary);
        self.per_host(|h| {
            if let Some(t) = token {
                workers::install_token(&self.ssh, h, t)?;
            }
            workers::start(&self.ssh, h, &program, args)
        })
    }

    /// Stops the workers on every host, in parallel.
    pub fn stop(&self, grace: Duration) -> PerHost<Stopped> {
        self.per_host(|h| workers::stop(&self.ssh, h, grace))
    }

    /// The workers' states.
    pub fn status(&self) -> PerHost<State> {
        self.per_host(|h| workers::status(&self.ssh, h))
    }

    /// The workers' logs (last `lines` lines, or all).
    pub fn logs(&self, lines: Option<usize>) -> PerHost<String> {
        self.per_host(|h| workers::logs(&self.ssh, h, lines))
    }

    fn per_host<T: Send>(&self, f: impl Fn(&Host) -> Result<T> + Sync) -> PerHost<T> {
        per_host(&self.hosts, f)
    }

    /// The same session restricted to the hosts named in `keep`.
    pub fn restricted_to(&self, keep: &[String]) -> Session {
        Session {
            hosts: self
                .hosts
                .iter()
                .filter(|h| keep.contains(&h.name))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

/// Runs `f` for every host in parallel (one thread each); outcomes in host order.
pub fn per_host<T: Send>(hosts: &[Host], f: impl Fn(&Host) -> Result<T> + Sync) -> PerHost<T> {
    let results = crate::parallel::each(hosts, f);
    hosts.iter().cloned().zip(results).collect()
}

/// Applies the user's choice to a step's failures: with `Abort`, any failure is an error; with
/// `Skip`, the names of the hosts that succeeded (an error if none did).
pub fn apply_policy(
    policy: OnUnusable,
    outcomes: &[(String, Option<String>)],
) -> Result<Vec<String>> {
    let bad: Vec<(String, String)> = outcomes
        .iter()
        .filter_map(|(h, r)| r.clone().map(|r| (h.clone(), r)))
        .collect();
    let good: Vec<String> = outcomes
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(h, _)| h.clone())
        .collect();
    for (h, r) in &bad {
        tracing::warn!(host = %h, "unusable: {r}");
    }
    if bad.is_empty() || (policy == OnUnusable::Skip && !good.is_empty()) {
        if !bad.is_empty() {
            tracing::warn!(
                left_out = bad.len(),
                remaining = good.len(),
                "going on without the unusable hosts (--on-unusable skip)"
            );
        }
        Ok(good)
    } else {
        Err(Error::Unusable { hosts: bad })
    }
}

fn outcomes<T>(per_host: &PerHost<T>) -> Vec<(String, Option<String>)> {
    per_host
        .iter()
        .map(|(h, r)| (h.name.clone(), r.as_ref().err().map(reason)))
        .collect()
}

/// Settings of [`run_with_cluster`].
#[derive(Debug, Clone)]
pub struct ClusterRun {
    /// The coordinator's address as the nodes dial it (its LAN address and port).
    pub coordinator: SocketAddr,
    /// The token (the content of the coordinator's token file).
    pub token: Vec<u8>,
    /// Worker slots per node (`None`: the worker's default).
    pub slots: Option<u32>,
    /// More worker arguments (e.g. `--gpu`).
    pub worker_extra: Vec<String>,
    /// What to do with unusable hosts.
    pub on_unusable: OnUnusable,
    /// How long a worker has to exit after SIGTERM.
    pub stop_grace: Duration,
}

/// Why [`run_with_cluster`] failed.
///
/// `E` is the sweep's own error type; it need not implement `std::error::Error` (an
/// `anyhow::Error` is fine): match on the variants to convert.
#[derive(Debug)]
pub enum ClusterRunError<E> {
    /// Setting up the cluster failed; the sweep did not run and no worker is left running.
    Setup(Error),
    /// The sweep failed (the workers were stopped).
    Sweep(E),
    /// The sweep finished but stopping the workers failed on some hosts.
    Stop(Error),
}

impl<E: std::fmt::Display> std::fmt::Display for ClusterRunError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Setup(e) => write!(f, "cluster setup failed: {e}"),
            Self::Sweep(e) => write!(f, "the sweep failed: {e}"),
            Self::Stop(e) => write!(f, "stopping the workers failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ClusterRunError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Setup(e) | Self::Stop(e) => Some(e),
            Self::Sweep(e) => Some(e),
        }
    }
}

/// The ssh hosts of a [`Session`] as a [`Launcher`]: `start` is preflight (the table goes to
/// the log), deploy and start, with [`OnUnusable`] applied after each step; `stop` stops the
/// workers of the hosts in use. Not watched while the sweep runs.
#[derive(Debug)]
pub struct SshLauncher {
    session: Session,
    run: ClusterRun,
}

impl SshLauncher {
    /// A launcher over `session`'s hosts with `run`'s settings.
    pub fn new(session: &Session, run: &ClusterRun) -> Self {
        Self {
            session: session.clone(),
            run: run.clone(),
        }
    }

    /// The hosts in use (after `start`: those that passed every step).
    pub fn hosts(&self) -> &[Host] {
        &self.session.hosts
    }
}

impl Launcher for SshLauncher {
    fn start(&mut self) -> Result<()> {
        let run = &self.run;
        let session = &self.session;
        let reports = session.preflight(&session.requirements(Some(run.coordinator)));
        tracing::info!("preflight:\n{}", crate::preflight::table(&reports));
        let checked: Vec<(String, Option<String>)> = reports
            .iter()
            .map(|r| (r.host.clone(), (!r.usable()).then(|| r.problems.join("; "))))
            .collect();
        let usable = apply_policy(run.on_unusable, &checked)?;
        let session = session.restricted_to(&usable);
        let deployed = session.deploy();
        let usable = apply_policy(run.on_unusable, &outcomes(&deployed))?;
        let session = session.restricted_to(&usable);
        let args = session.worker_args(&run.coordinator.to_string(), run.slots, &run.worker_extra);
        let started = session.start(&run.token, &args);
        let running = match apply_policy(run.on_unusable, &outcomes(&started)) {
            Ok(names) => names,
            Err(e) => {
                // Some started: do not leave them behind.
                let _ = session.stop(run.stop_grace);
                return Err(e);
            }
        };
        self.session = session.restricted_to(&running);
        tracing::info!(
            workers = running.len(),
            "workers started; running the sweep"
        );
        Ok(())
    }

    fn watch_period(&self) -> Option<Duration> {
        None
    }

    fn watch(&mut self, _tasks_remain: bool) -> Result<Vec<WorkerState>> {
        Ok(self
            .session
            .status()
            .into_iter()
            .map(|(h, s)| WorkerState {
                id: h.name,
                state: match s {
                    Ok(s) => format!("{s:?}"),
                    Err(e) => format!("unknown: {e}"),
                },
            })
            .collect())
    }

    fn stop(&mut self) -> Result<()> {
        let stopped = self.session.stop(self.run.stop_grace);
        let failures: Vec<(String, String)> = outcomes(&stopped)
            .into_iter()
            .filter_map(|(h, r)| r.map(|r| (h, r)))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Unusable { hosts: failures })
        }
    }
}

/// The whole loop: preflight (the table goes to the log), deploy, start, then
/// `sweep(hosts in use)`, and finally stop every worker, whatever the sweep returned (and if it
/// panicked). Returns the sweep's value. This is [`run_with_launcher`] with an
/// [`SshLauncher`].
///
/// Bind the coordinator's listener *before* calling this: preflight checks that every node can
/// connect to `run.coordinator`, and the workers start dialling it at once (they retry with
/// backoff until it serves). After each step, [`OnUnusable`] decides: `Abort` fails (stopping
/// any worker already started), `Skip` goes on with the hosts left.
pub fn run_with_cluster<T, E, F>(
    session: &Session,
    run: &ClusterRun,
    sweep: F,
) -> std::result::Result<T, ClusterRunError<E>>
where
    F: FnOnce(&[Host]) -> std::result::Result<T, E>,
{
    let launcher = Mutex::new(SshLauncher::new(session, run));
    run_with_launcher(&launcher, Watch::none(), || {
        let hosts = launcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hosts()
            .to_vec();
        sweep(&hosts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(items: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        items
            .iter()
            .map(|(h, r)| (h.to_string(), r.map(str::to_string)))
            .collect()
    }

    #[test]
    fn abort_refuses_any_unusable_host_and_names_it() {
        let e = apply_policy(
            OnUnusable::Abort,
            &o(&[("a", None), ("b", Some("ssh failed"))]),
        )
        .expect_err("abort");
        assert_eq!(e.to_string(), "unusable hosts: b (ssh failed)");
    }

    #[test]
    fn skip_goes_on_with_the_others_but_not_with_none() {
        let ok =
            apply_policy(OnUnusable::Skip, &o(&[("a", None), ("b", Some("x"))])).expect("skip");
        assert_eq!(ok, vec!["a".to_string()]);
        assert!(apply_policy(OnUnusable::Skip, &o(&[("b", Some("x"))])).is_err());
    }
}
