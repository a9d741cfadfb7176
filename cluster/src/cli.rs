//! Flags for running a sweep's workers on a cluster, for `coordinator sweep --cluster FILE`
//! (flattened into its arguments with `#[command(flatten)]`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hosts::{load_hosts, LoadOptions, LoginChoice};
use crate::session::{ClusterRun, OnUnusable, Session};
use crate::slurm::{SlurmJob, SlurmRun, SlurmTools};
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
    #[arg(long, value_name = "ADDR")]
    pub advertise: Option<SocketAddr>,
    /// Unusable hosts (preflight, deploy or start failed): stop (`abort`) or go on without
    /// them (`skip`).
    #[arg(long, value_enum, default_value_t = OnUnusable::Abort, requires = "cluster")]
    pub on_unusable: OnUnusable,
    /// The worker binary to ship (default: `worker` beside this program); with `--slurm`, the
    /// one the compute nodes run (on a shared file system).
    #[arg(long, value_name = "PATH")]
    pub worker_bin: Option<PathBuf>,
    /// Tasks at once per node (default: the worker's, all its cores).
    #[arg(long, value_name = "N", requires = "cluster")]
    pub worker_slots: Option<u32>,
    /// A data directory to ship to every node (the workers then read inputs from it instead
    /// of fetching them from the coordinator).
    #[arg(long, value_name = "DIR", requires = "cluster")]
    pub worker_data: Option<PathBuf>,
    /// An extra argument for every worker (repeatable, e.g. `--worker-arg=--gpu`).
    #[arg(long = "worker-arg", value_name = "ARG", allow_hyphen_values = true)]
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
    /// Run the workers as one Slurm job array (`sbatch` from this login node), follow them
    /// with `squeue`/`sacct`, replace those that end while tasks remain, `scancel` at the end.
    #[arg(long, conflicts_with = "cluster")]
    pub slurm: bool,
    /// Array elements (workers) to keep running.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "slurm",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub slurm_workers: u32,
    /// The partition (default: the cluster's default partition).
    #[arg(long, value_name = "P", requires = "slurm")]
    pub slurm_partition: Option<String>,
    /// Each element's time limit (Slurm's forms: `MINUTES`, `HH:MM:SS`, `D-HH:MM`).
    #[arg(long, value_name = "T", requires = "slurm")]
    pub slurm_time: Option<String>,
    /// An extra `#SBATCH` option (repeatable, e.g. `--slurm-arg=--cpus-per-task=16`).
    #[arg(
        long = "slurm-arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        requires = "slurm"
    )]
    pub slurm_args: Vec<String>,
    /// Seconds between two looks at the array (`squeue`).
    #[arg(long, value_name = "SECS", default_value_t = 5.0, requires = "slurm")]
    pub slurm_poll: f64,
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

    /// Refuses launcher flags given without a launcher (`--cluster` or `--slurm`).
    pub fn check(&self) -> Result<()> {
        if self.cluster.is_some() || self.slurm {
            return Ok(());
        }
        let given = [
            ("--advertise", self.advertise.is_some()),
            ("--worker-bin", self.worker_bin.is_some()),
            ("--worker-arg", !self.worker_args.is_empty()),
        ];
        match given.iter().find(|(_, g)| *g) {
            Some((flag, _)) => Err(Error::Settings {
                message: format!("{flag} needs --cluster FILE or --slurm"),
            }),
            None => Ok(()),
        }
    }

    /// With `--slurm`: checks with `sinfo` that the partition exists and is up (before any
    /// task is served); returns its name.
    pub fn slurm_check(&self) -> Result<Option<String>> {
        if !self.slurm {
            return Ok(None);
        }
        crate::slurm::check_partition(&SlurmTools::default(), self.slurm_partition.as_deref())
            .map(Some)
    }

    /// The address workers dial: `--advertise`, else `listening` if it is not unspecified.
    pub fn coordinator_addr(&self, listening: SocketAddr) -> Result<SocketAddr> {
        let coordinator = self.advertise.unwrap_or(listening);
        if coordinator.ip().is_unspecified() {
            return Err(Error::Settings {
                message: format!(
                    "the coordinator listens on {listening}, which nodes cannot dial: give \
                     --advertise ADDR (its LAN address and port)"
                ),
            });
        }
        Ok(coordinator)
    }

    /// With `--slurm`: the launcher's settings for a coordinator listening on `listening` with
    /// `token`, its files in `state_dir` (which the compute nodes must see at the same path).
    pub fn slurm_run(
        &self,
        listening: SocketAddr,
        token: &[u8],
        state_dir: &Path,
    ) -> Result<Option<SlurmRun>> {
        if !self.slurm {
            return Ok(None);
        }
        let coordinator = self.coordinator_addr(listening)?;
        let worker_bin = match &self.worker_bin {
            Some(p) => p.clone(),
            None => default_worker_bin()?,
        };
        let worker_bin = std::fs::canonicalize(&worker_bin).map_err(|source| Error::Io {
            path: worker_bin.clone(),
            source,
        })?;
        let state_dir = absolute(state_dir)?;
        let poll = Duration::try_from_secs_f64(self.slurm_poll)
            .ok()
            .filter(|d| *d >= Duration::from_millis(100))
            .ok_or_else(|| Error::Settings {
                message: format!("--slurm-poll {}: expected at least 0.1 s", self.slurm_poll),
            })?;
        Ok(Some(SlurmRun {
            job: SlurmJob {
                worker_bin,
                coordinator: format!("http://{coordinator}"),
                token_file: state_dir.join("token"),
                log_dir: state_dir.clone(),
                partition: self.slurm_partition.clone(),
                time: self.slurm_time.clone(),
                sbatch_args: self.slurm_args.clone(),
                worker_args: self.worker_args.clone(),
                name: "apparate-worker".into(),
            },
            token: token.to_vec(),
            workers: self.slurm_workers,
            state_dir,
            poll,
            max_elements: self.slurm_workers.saturating_mul(4).saturating_add(4),
            tools: SlurmTools::default(),
        }))
    }

    /// The run settings, for a coordinator listening on `listening` with `token`.
    pub fn run(&self, listening: SocketAddr, token: &[u8]) -> Result<ClusterRun> {
        let coordinator = self.coordinator_addr(listening)?;
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

/// `path` made absolute against the current folder (not resolving links).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        path: PathBuf::from("."),
        source,
    })?;
    Ok(cwd.join(path))
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
    fn slurm_flags_need_slurm_and_launcher_flags_need_a_launcher() {
        assert!(Cli::try_parse_from(["x", "--slurm-workers", "3"]).is_err());
        assert!(Cli::try_parse_from(["x", "--slurm", "--cluster", "m.xml"]).is_err());
        let cli = Cli::parse_from(["x", "--advertise", "10.0.0.1:5000"]);
        let e = cli.cluster.check().expect_err("no launcher");
        assert!(e.to_string().contains("--advertise needs"), "{e}");
        let cli = Cli::parse_from([
            "x",
            "--slurm",
            "--slurm-workers",
            "3",
            "--slurm-arg=--exclusive",
            "--worker-bin",
            "/bin/sh",
        ]);
        cli.cluster.check().expect("slurm");
        let run = cli
            .cluster
            .slurm_run(
                "10.0.0.1:5000".parse().expect("addr"),
                b"t",
                Path::new("/tmp/x"),
            )
            .expect("settings")
            .expect("slurm");
        assert_eq!(run.workers, 3);
        assert_eq!(run.job.coordinator, "http://10.0.0.1:5000");
        assert_eq!(run.job.token_file, Path::new("/tmp/x/token"));
        assert_eq!(run.job.sbatch_args, vec!["--exclusive".to_string()]);
    }

    #[test]
    fn cluster_flags_need_cluster() {
        assert!(Cli::try_parse_from(["x", "--on-unusable", "skip"]).is_err());
        let none = Cli::parse_from(["x"]);
        assert!(none.cluster.session().expect("no cluster").is_none());
    }
}
