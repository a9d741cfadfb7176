//! The `cluster` binary: hosts from a Cloudlab manifest or an inventory; preflight, deploy,
//! start/stop/status/logs of workers over the system's ssh.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use cluster::preflight::{table, Requirements};
use cluster::session::{per_host, PerHost};
use cluster::slurm::check_partition;
use cluster::{
    load_host_list, LoadOptions, LoginChoice, OnUnusable, Session, SlurmJob, SlurmTools, SshConfig,
};

#[derive(Parser)]
#[command(
    name = "cluster",
    version,
    about = "Run apparate workers on Cloudlab nodes over ssh, or as Slurm jobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the hosts a manifest or inventory describes.
    Hosts(Common),
    /// Check every host: ssh, architecture and glibc, cores, disk, GPU, coordinator reachable.
    Preflight(PreflightArgs),
    /// Copy the worker binary (and a data directory) to every host, content-addressed.
    Deploy(DeployArgs),
    /// Start a worker on every host, detached, pointing at the coordinator.
    Start(StartArgs),
    /// Stop the workers (SIGTERM, then SIGKILL after the grace period).
    Stop(StopArgs),
    /// Show whether each host's worker is running.
    Status(Common),
    /// Print (or save) the workers' logs.
    Logs(LogsArgs),
    /// Print the batch script `coordinator sweep --slurm` submits, to submit it by hand
    /// (`sbatch --array=0-N FILE`).
    SlurmScript(SlurmScriptArgs),
}

#[derive(Args)]
struct SlurmScriptArgs {
    /// The coordinator's address as the compute nodes dial it (`host:port`; `http://` is
    /// added).
    #[arg(long, value_name = "ADDR")]
    coordinator: String,
    /// The token file as the compute nodes see it (keep it mode 600).
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,
    /// The worker binary as the compute nodes see it (default: `worker` beside this program).
    #[arg(long, value_name = "PATH")]
    worker_bin: Option<PathBuf>,
    /// Folder for the elements' logs, and their working directory (default: this one).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    #[command(flatten)]
    slurm: SlurmOptions,
    /// An extra argument for every worker (repeatable).
    #[arg(long = "worker-arg", value_name = "ARG", allow_hyphen_values = true)]
    worker_args: Vec<String>,
}

#[derive(Args)]
struct SlurmOptions {
    /// The partition (default: the cluster's default).
    #[arg(long = "slurm-partition", value_name = "P")]
    partition: Option<String>,
    /// Time limit of each job (Slurm's forms).
    #[arg(long = "slurm-time", value_name = "T")]
    time: Option<String>,
    /// An extra `#SBATCH` option (repeatable).
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args)]
struct Common {
    /// A Cloudlab manifest (rspec XML) or a TOML inventory (not with `preflight --slurm`).
    #[arg(long, value_name = "FILE")]
    hosts: Option<PathBuf>,
    /// Which login of a manifest node to use (default: yours, else the first listed).
    #[arg(long, value_name = "USER")]
    login_user: Option<String>,
    /// Remote work directory; `{node}` is the host's name (default: apparate-rs/{node}, in the
    /// login's home).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<String>,
    /// An extra argument for ssh (repeat: `--ssh-arg=-i --ssh-arg=KEY`).
    #[arg(long = "ssh-arg", value_name = "ARG", allow_hyphen_values = true)]
    ssh_args: Vec<String>,
    /// ssh's connect timeout, in seconds.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
    /// Limit for each remote command, in seconds.
    #[arg(long, default_value_t = 60)]
    command_timeout: u64,
}

#[derive(Args)]
struct BinaryArgs {
    /// The worker binary to ship (default: `worker` beside this program).
    #[arg(long, value_name = "PATH")]
    worker_bin: Option<PathBuf>,
    /// The artifact data directory to ship (rsync, then every file's digest is checked).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args)]
struct PreflightArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    binary: BinaryArgs,
    /// The coordinator's address as the nodes will dial it (its LAN address and port).
    #[arg(long, value_name = "ADDR")]
    coordinator_addr: Option<SocketAddr>,
    /// Free space needed in each work directory, in GiB.
    #[arg(long, default_value_t = 1.0)]
    min_disk_gb: f64,
    /// Count a node without a GPU as unusable (the simulator does not need one).
    #[arg(long)]
    require_gpu: bool,
    /// Check Slurm instead of hosts: `sinfo`, the partition, and (with --coordinator-addr)
    /// that a test job on a compute node reaches the coordinator.
    #[arg(long)]
    slurm: bool,
    #[command(flatten)]
    slurm_options: SlurmOptions,
    /// Folder, seen by the compute nodes, for the test job's script and log (default: this
    /// one).
    #[arg(long, value_name = "DIR")]
    slurm_dir: Option<PathBuf>,
    /// Seconds the test job may take, queueing included.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    slurm_wait: u64,
}

#[derive(Args)]
struct DeployArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    binary: BinaryArgs,
}

#[derive(Args)]
struct StartArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    binary: BinaryArgs,
    /// The coordinator's address as the nodes dial it (`host:port`; `http://` is added).
    #[arg(long, value_name = "ADDR")]
    coordinator: String,
    /// The coordinator's token file (copied to each node, mode 600).
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,
    /// Tasks at once per worker.
    #[arg(long)]
    slots: Option<u32>,
    /// An extra argument for every worker (repeatable, e.g. `--worker-arg=--gpu`).
    #[arg(long = "worker-arg", value_name = "ARG", allow_hyphen_values = true)]
    worker_args: Vec<String>,
    /// Go on with the other hosts when some fail to start (`skip`), or fail (`abort`).
    #[arg(long, value_enum, default_value_t = OnUnusable::Abort)]
    on_unusable: OnUnusable,
}

#[derive(Args)]
struct StopArgs {
    #[command(flatten)]
    common: Common,
    /// Seconds a worker has to exit after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 30)]
    grace: u64,
}

#[derive(Args)]
struct LogsArgs {
    #[command(flatten)]
    common: Common,
    /// Only the last N lines of each log.
    #[arg(long, short = 'n')]
    lines: Option<usize>,
    /// Save each host's log as DIR/<host>.log instead of printing.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Common {
    fn ssh(&self) -> SshConfig {
        SshConfig {
            connect_timeout: Duration::from_secs(self.connect_timeout),
            command_timeout: Duration::from_secs(self.command_timeout),
            ..SshConfig::default()
        }
    }

    fn hosts(&self) -> Result<Vec<cluster::Host>> {
        let list = self.host_list()?;
        for s in &list.skipped {
            eprintln!("skipped {}: {}", s.name, s.reason);
        }
        Ok(list.hosts)
    }

    fn host_list(&self) -> Result<cluster::HostList> {
        let options = LoadOptions {
            login: self
                .login_user
                .clone()
                .map_or(LoginChoice::Auto, LoginChoice::User),
            work_dir: self.work_dir.clone(),
            ssh_args: self.ssh_args.clone(),
        };
        let Some(hosts) = &self.hosts else {
            anyhow::bail!("--hosts FILE is required (a Cloudlab manifest or a TOML inventory)");
        };
        Ok(load_host_list(hosts, &options)?)
    }
}

impl BinaryArgs {
    fn worker_bin(&self) -> Result<PathBuf> {
        match &self.worker_bin {
            Some(p) => Ok(p.clone()),
            None => Ok(cluster::cli::default_worker_bin()?),
        }
    }

    fn session(&self, common: &Common) -> Result<Session> {
        Ok(Session::new(
            common.hosts()?,
            common.ssh(),
            &self.worker_bin()?,
            self.data.as_deref(),
        )?)
    }
}

/// Prints one line per host; returns how many failed.
fn report<T>(results: &PerHost<T>, ok: impl Fn(&T) -> String) -> usize {
    let width = results.iter().map(|(h, _)| h.name.len()).max().unwrap_or(0);
    let mut failed = 0;
    for (h, r) in results {
        match r {
            Ok(v) => println!("{:<width$}  {}", h.name, ok(v)),
            Err(e) => {
                failed += 1;
                println!("{:<width$}  FAILED: {e}", h.name);
            }
        }
    }
    failed
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Hosts(c) => {
            for h in c.hosts()? {
                println!(
                    "{}  {}{}  lan={}  hw={}  dir={}",
                    h.name,
                    h.destination(),
                    h.port.map(|p| format!(":{p}")).unwrap_or_default(),
                    h.lan.map_or_else(|| "-".into(), |a| a.to_string()),
                    h.hardware.as_deref().unwrap_or("-"),
                    h.work_dir
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Preflight(a) if a.slurm => slurm_preflight(&a),
        Command::SlurmScript(a) => {
            let worker_bin = match a.worker_bin {
                Some(p) => p,
                None => std::fs::canonicalize(cluster::cli::default_worker_bin()?)?,
            };
            let log_dir = cluster::cli::absolute(&a.log_dir.unwrap_or_else(|| ".".into()))?;
            let coordinator = if a.coordinator.contains("://") {
                a.coordinator
            } else {
                format!("http://{}", a.coordinator)
            };
            let job = SlurmJob {
                worker_bin,
                coordinator,
                token_file: cluster::cli::absolute(&a.token_file)?,
                log_dir,
                partition: a.slurm.partition,
                time: a.slurm.time,
                sbatch_args: a.slurm.args,
                worker_args: a.worker_args,
                name: "apparate-worker".into(),
            };
            job.validate()?;
            print!("{}", cluster::slurm::batch_script(&job));
            Ok(ExitCode::SUCCESS)
        }
        Command::Preflight(a) => {
            let session = a.binary.session(&a.common)?;
            let req = Requirements {
                min_free_bytes: (a.min_disk_gb * (1u64 << 30) as f64) as u64,
                require_gpu: a.require_gpu,
                ..session.requirements(a.coordinator_addr)
            };
            let reports = session.preflight(&req);
            print!("{}", table(&reports));
            let bad: Vec<&str> = reports
                .iter()
                .filter(|r| !r.usable())
                .map(|r| r.host.as_str())
                .collect();
            if bad.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("error: unusable: {}", bad.join(", "));
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Deploy(a) => {
            let session = a.binary.session(&a.common)?;
            let failed = report(&session.deploy(), |d| {
                format!(
                    "binary {:?}{}",
                    d.binary,
                    d.data.map(|x| format!(", data {x:?}")).unwrap_or_default()
                )
            });
            Ok(exit(failed))
        }
        Command::Start(a) => {
            let session = a.binary.session(&a.common)?;
            let token = std::fs::read(&a.token_file)
                .with_context(|| format!("reading {}", a.token_file.display()))?;
            let args = session.worker_args(&a.coordinator, a.slots, &a.worker_args);
            let results = session.start(&token, &args);
            let failed = report(&results, |s| format!("{s:?}"));
            if failed > 0 && a.on_unusable == OnUnusable::Abort {
                eprintln!("stopping the workers that did start (--on-unusable abort)");
                report(&session.stop(Duration::from_secs(30)), |s| format!("{s:?}"));
            }
            Ok(exit(failed))
        }
        Command::Stop(a) => {
            let hosts = a.common.hosts()?;
            let ssh = a.common.ssh();
            let grace = Duration::from_secs(a.grace);
            let results = per_host(&hosts, |h| cluster::workers::stop(&ssh, h, grace));
            Ok(exit(report(&results, |s| format!("{s:?}"))))
        }
        Command::Status(c) => {
            let hosts = c.hosts()?;
            let ssh = c.ssh();
            let results = per_host(&hosts, |h| cluster::workers::status(&ssh, h));
            Ok(exit(report(&results, |s| format!("{s:?}"))))
        }
        Command::Logs(a) => {
            let hosts = a.common.hosts()?;
            let ssh = a.common.ssh();
            let results = per_host(&hosts, |h| cluster::workers::logs(&ssh, h, a.lines));
            let mut failed = 0;
            for (h, r) in &results {
                match r {
                    Ok(text) => match &a.out {
                        Some(dir) => save(dir, &h.name, text)?,
                        None => {
                            for line in text.lines() {
                                println!("{}: {line}", h.name);
                            }
                        }
                    },
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: FAILED: {e}", h.name);
                    }
                }
            }
            Ok(exit(failed))
        }
    }
}

/// `preflight --slurm`: sinfo, the partition, and a test job that dials the coordinator.
fn slurm_preflight(a: &PreflightArgs) -> Result<ExitCode> {
    let tools = SlurmTools::default();
    let version = tools.run("sinfo", &["--version".to_string()])?;
    println!("sinfo      ok ({})", version.trim());
    let partition = check_partition(&tools, a.slurm_options.partition.as_deref())?;
    println!("partition  {partition}: up");
    let Some(addr) = a.coordinator_addr else {
        println!("test job   skipped (give --coordinator-addr ADDR to check the nodes reach it)");
        return Ok(ExitCode::SUCCESS);
    };
    let dir = cluster::cli::absolute(a.slurm_dir.as_deref().unwrap_or(Path::new(".")))?;
    let job = SlurmJob {
        worker_bin: PathBuf::from("/bin/true"),
        coordinator: addr.to_string(),
        token_file: dir.join("token"),
        log_dir: dir.clone(),
        partition: Some(partition),
        time: a.slurm_options.time.clone().or_else(|| Some("5".into())),
        sbatch_args: a.slurm_options.args.clone(),
        worker_args: Vec::new(),
        name: "apparate-preflight".into(),
    };
    job.validate()?;
    let script = cluster::slurm::reach_script(&job, addr);
    let path = dir.join(format!(".apparate-preflight-{}.sbatch", std::process::id()));
    cluster::slurm::write_private(&path, script.as_bytes())?;
    let waiting = SlurmTools {
        timeout: Duration::from_secs(a.slurm_wait),
        ..SlurmTools::default()
    };
    let submitted = waiting.run(
        "sbatch",
        &[
            "--parsable".to_string(),
            "--wait".to_string(),
            path.display().to_string(),
        ],
    );
    let _ = std::fs::remove_file(&path);
    let log_of = |text: &str| -> String {
        cluster::slurm::parse_submitted(text)
            .ok()
            .and_then(|id| std::fs::read_to_string(dir.join(format!("preflight-{id}.log"))).ok())
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    match submitted {
        Ok(out) => {
            println!("test job   {}", log_of(&out));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: the test job did not reach {addr}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn save(dir: &Path, host: &str, text: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{host}.log"));
    write_replacing(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{host}: {}", path.display());
    Ok(())
}

/// Writes `path` through a new temporary file beside it (created exclusively: never through a
/// link) renamed into place, so a symbolic link at `path` is replaced, never followed (the
/// rule of `apparate::safe_write`, which this crate does not link).
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn exit(failed: usize) -> ExitCode {
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
