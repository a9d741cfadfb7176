//! Flags for running a sweep's workers on a cluster, for `coordinator sweep --cluster FILE`
//! (flattened into its arguments with `#[command(flatten)]`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hosts::{load_hosts, LoadOptions, LoginChoice};
use crate::session::{ClusterRun, OnUnusable, Session};
use crate::ssh::SshConfig;

/// `--cluster FILE` and the settings of the workers it starts.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepClusterArgs {
    /// Run the workers on these hosts (a Cloudlab manifest or a TOML inventory): preflight,
    /// deploy, start, sweep, stop.
    #[arg(long, value_name = "FILE")]
    pub cluster: Option<PathBuf>,
    /// The address the nodes dial to reach this coordinator (default: the listening address,
    /// which then must not be 0.0.0.0 or [::]).
    #[arg(long, value_name = "ADDR", requires = "cluster")]
    pub advertise: Option<SocketAddr>,
    /// Unusable hosts (preflight, deploy or start failed): stop (`abort`) or go on without
    /// them (`skip`).
    #[arg(long, value_enum, default_value_t = OnUnusable::Abort, requires = "cluster")]
    pub on_unusable: OnUnusable,
    /// The worker binary to ship (default: `worker` beside this program).
    #[arg(long, value_name = "PATH", requires = "cluster")]
    pub worker_bin: Option<PathBuf>,
    /// Tasks at once per node (default: the worker's, all its cores).
    #[arg(long, value_name = "N", requires = "cluster")]
    pub worker_slots: Option<u32>,
    /// A data directory to ship to every node (the workers then read inputs from it instead
    /// of fetching them from the coordinator).
    #[arg(long, value_name = "DIR", requires = "cluster")]
    pub worker_data: Option<PathBuf>,
    /// An extra argument for every worker (repeatable, e.g. `--worker-arg=--gpu`).
    #[arg(
        long = "worker-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "cluster"
    )]
    pub worker_args: Vec<String>,
    /// Which login of a manifest node to use.
    #[arg(long, value_name = "USER", requires = "cluster")]
    pub login_user: Option<String>,
    /// Remote work directory (`{node}`: the host's name).
    #[arg(long, value_name = "DIR", requires = "cluster")]
    pub work_dir: Option<String>,
    /// An extra argument for ssh (repeatable).
    #[arg(
        long = "ssh-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "cluster"
    )]
    pub ssh_args: Vec<String>,
    /// Seconds a worker has to exit after SIGTERM at the end.
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "cluster")]
    pub stop_grace: u64,
}

impl SweepClusterArgs {
    /// The session for `--cluster` (`None` without it).
    pub fn session(&self) -> Result<Option<Session>> {
        let Some(file) = &self.cluster else {
            return Ok(None);
        };
        let hosts = load_hosts(
            file,
            &LoadOptions {
                login: self
                    .login_user
                    .clone()
                    .map_or(LoginChoice::Auto, LoginChoice::User),
                work_dir: self.work_dir.clone(),
                ssh_args: self.ssh_args.clone(),
            },
        )?;
        let worker_bin = match &self.worker_bin {
            Some(p) => p.clone(),
            None => default_worker_bin()?,
        };
        Ok(Some(Session::new(
            hosts,
            SshConfig::default(),
            &worker_bin,
            self.worker_data.as_deref(),
        )?))
    }

    /// The run settings, for a coordinator listening on `listening` with `token`.
    pub fn run(&self, listening: SocketAddr, token: &[u8]) -> Result<ClusterRun> {
        let coordinator = self.advertise.unwrap_or(listening);
        if coordinator.ip().is_unspecified() {
            return Err(Error::Settings {
                message: format!(
                    "the coordinator listens on {listening}, which nodes cannot dial: give \
                     --advertise ADDR (its LAN address and port)"
                ),
            });
        }
        Ok(ClusterRun {
            coordinator,
            token: token.to_vec(),
            slots: self.worker_slots,
            worker_extra: self.worker_args.clone(),
            on_unusable: self.on_unusable,
            stop_grace: Duration::from_secs(self.stop_grace),
        })
    }
}

/// `worker` beside the running program.
pub fn default_worker_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        path: PathBuf::from("(this program)"),
        source,
    })?;
    let sibling = exe.with_file_name("worker");
    if sibling.is_file() {
        Ok(sibling)
    } else {
        Err(Error::Binary {
            path: sibling,
            message: "no worker binary here (give --worker-bin PATH)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        cluster: SweepClusterArgs,
    }

    #[test]
    fn workers_are_never_told_to_dial_an_unspecified_address() {
        let cli = Cli::parse_from(["x", "--cluster", "m.xml", "--on-unusable", "skip"]);
        assert_eq!(cli.cluster.on_unusable, OnUnusable::Skip);
        let e = cli
            .cluster
            .run("0.0.0.0:5000".parse().expect("addr"), b"t")
            .expect_err("unspecified");
        assert!(e.to_string().contains("--advertise"), "{e}");
        let cli = Cli::parse_from(["x", "--cluster", "m.xml", "--advertise", "10.10.1.1:5000"]);
        let run = cli
            .cluster
            .run("0.0.0.0:5000".parse().expect("addr"), b"t")
            .expect("advertised");
        assert_eq!(run.coordinator.to_string(), "10.10.1.1:5000");
    }

    #[test]
    fn cluster_flags_need_cluster() {
        assert!(Cli::try_parse_from(["x", "--on-unusable", "skip"]).is_err());
        let none = Cli::parse_from(["x"]);
        assert!(none.cluster.session().expect("no cluster").is_none());
    }
}
