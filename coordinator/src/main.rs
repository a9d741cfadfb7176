//! The `coordinator` binary: `sweep` (serve a sweep to remote workers), `status` (read the
//! ledger) and `plan` (dry run).

use anyhow::{bail, Context, Result};
use apparate::results::overview;
use apparate::results::{write_plan_listing, ResultsDir};
use apparate::sweep::Plan;

use clap::{Parser, Subcommand};
use cluster::ClusterRunError;
use coordinator::service::Snapshot;
use coordinator::store::Store;
use coordinator::{serve, ServerTlsConfig, Sweep, SweepOptions};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Identity};

#[derive(Parser)]
#[command(name = "coordinator", version, about = "Distributed Apparate sweeps")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a sweep to remote workers until every task is complete or failed for good.
    Sweep(Box<SweepArgs>),
    /// Show the ledger of a results directory (while a sweep runs or after).
    Status(StatusArgs),
    /// List a sweep's tasks, their keys and whether each is complete in --out (runs nothing).
    Plan(PlanArgs),
}

#[derive(clap::Args)]
struct SweepArgs {
    /// Sweep spec (TOML); default: the built-in paper spec on the embedded workload.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Address to listen on (port 0: any free port; the actual address is printed on stdout
    /// as `listening on ADDR` and written to `--out/coordinator.addr`).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Results directory (same layout as `worker --local`).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Do not run the report (`analysis report`, the binary beside this one) at the end.
    #[arg(long)]
    no_report: bool,
    /// File holding the token every worker must present.
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,
    /// Attempts of a task lost with their worker (or failed retryably) before it fails for good.
    #[arg(long, value_name = "N", default_value_t = 3)]
    max_attempts: u32,
    /// A worker whose tasks fail this many times in a row gets no more tasks.
    #[arg(long, value_name = "K", default_value_t = 5)]
    max_failures_in_row: u32,
    /// Lease duration in milliseconds (workers heartbeat every quarter of it).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    lease_ms: u64,
    /// On a terminal, print every task's summary lines at the end too (they always go to
    /// `output_<grid>.txt`, and to stdout when it is not a terminal).
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(long, value_name = "S", default_value_t = 10)]
    log_every: u64,
    /// How task results are stored: `zstd` keeps `batches.jsonl` and `log.txt` compressed
    /// (`*.zst`; workers compress them, the upload carries them as stored), `plain` as written.
    #[arg(long, value_name = "HOW", default_value = "zstd")]
    store: apparate::storage::Storage,
    /// TLS certificate (PEM); with --tls-key, serve TLS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to (mutual TLS).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// `--cluster FILE` (workers on these hosts over ssh) or `--slurm` (workers as a Slurm job
    /// array): start the workers, run the sweep, stop them.
    #[command(flatten)]
    cluster: cluster::cli::SweepClusterArgs,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Results directory of the sweep.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only the workers and the count of tasks in each state (no line per task: for sweeps of
    /// many thousands of tasks).
    #[arg(long)]
    summary: bool,
}

#[derive(clap::Args)]
struct PlanArgs {
    /// Sweep spec (TOML); default: the built-in paper spec.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Results directory.
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: PathBuf,
}

fn main() -> std::process::ExitCode {
    apparate::logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sweep(args) => run_sweep(*args),
        Command::Status(args) => run_status(&args),
        Command::Plan(args) => run_plan(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", apparate::text::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

fn read_token(path: &Path) -> Result<String> {
    let token = apparate::input_file::read_regular_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

fn tls_config(args: &SweepArgs) -> Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let read = |p: &PathBuf| {
        apparate::input_file::read_regular(p)
            .with_context(|| format!("cannot read {}", p.display()))
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &args.tls_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

fn run_sweep(args: SweepArgs) -> Result<()> {
    let plan = apparate::sweep::load_plan(args.spec.as_deref())?;
    let token = read_token(&args.token_file)?;
    let tls = tls_config(&args)?;
    // Hosts file, worker binary and Slurm partition are checked before anything is served.
    args.cluster.check()?;
    let cluster = args
        .cluster
        .session()
        .context("invalid --cluster settings; nothing was run")?;
    if let Some(partition) = args
        .cluster
        .slurm_check()
        .context("--slurm: nothing was run")?
    {
        tracing::info!("slurm partition {partition} is up");
    }
    let token_line = format!("{token}\n");
    let dir = ResultsDir::new(&args.out);
    let writer = dir.lock_stored(args.store)?;
    let opts = SweepOptions {
        lease: Duration::from_millis(args.lease_ms.max(10)),
        max_attempts: args.max_attempts,
        max_failures_in_row: args.max_failures_in_row,
        token,
    };
    let sweep = Sweep::start(&plan, writer, &opts)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Bound before any worker starts: preflight checks the nodes reach this address.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let (abort_tx, abort_rx) = tokio::sync::watch::channel::<Option<String>>(None);
    let serve = |listener| {
        rt.block_on(serve_until_done(
            &sweep, &args, tls, &plan, listener, abort_rx,
        ))
    };
    let slurm = args
        .cluster
        .slurm_run(
            listener.local_addr()?,
            token_line.as_bytes(),
            &dir.root().join(SLURM_DIR),
        )
        .context("invalid --slurm settings; nothing was run")?;
    let failed = match (cluster, slurm) {
        (None, Some(run)) => {
            let shared = sweep.shared();
            let jobs_file = args.out.join(SLURM_DIR).join(SLURM_JOBS);
            let watch = cluster::Watch {
                tasks_remain: Box::new(|| {
                    let c = shared.snapshot().counts;
                    c.pending + c.leased > 0
                }),
                on_states: Box::new(|states| write_slurm_jobs(&jobs_file, states)),
                on_failure: Box::new(|message| {
                    let _ = abort_tx.send(Some(message));
                }),
            };
            let launcher = std::sync::Mutex::new(cluster::SlurmLauncher::new(run));
            match cluster::run_with_launcher(&launcher, watch, || serve(listener)) {
                Ok(failed) => failed,
                Err(ClusterRunError::Sweep(e)) => return Err(e),
                Err(ClusterRunError::Setup(e)) => {
                    return Err(anyhow::Error::new(e)
                        .context("starting the Slurm workers failed; nothing was run"))
                }
                Err(ClusterRunError::Stop(e)) => {
                    return Err(anyhow::Error::new(e)
                        .context("the sweep finished, but cancelling the Slurm jobs failed"))
                }
            }
        }
        (None, None) => serve(listener)?,
        (Some(session), _) => {
            let run = args
                .cluster
                .run(listener.local_addr()?, token_line.as_bytes())?;
            match cluster::run_with_cluster(&session, &run, |hosts| {
                tracing::info!(
                    workers = hosts.len(),
                    "serving the sweep to the cluster's workers"
                );
                serve(listener)
            }) {
                Ok(failed) => failed,
                Err(ClusterRunError::Sweep(e)) => return Err(e),
                Err(ClusterRunError::Setup(e)) => {
                    return Err(
                        anyhow::Error::new(e).context("cluster setup failed; nothing was run")
                    )
                }
                Err(ClusterRunError::Stop(e)) => {
                    return Err(anyhow::Error::new(e)
                        .context("the sweep finished, but stopping the workers failed"))
                }
            }
        }
    };
    // The writer (and its lock) lives in the sweep; the summaries are written through a fresh
    // read of the manifests, as `worker --local` does.
    let shared = sweep.shared();
    overview::finish_sweep(&plan, shared.writer(), args.verbose, args.no_report)?;
    if failed > 0 {
        bail!(
            "{failed} of {} tasks failed; the reasons are in {}/<key>.json",
            plan.len(),
            dir.failures_dir().display()
        );
    }
    Ok(())
}

async fn serve_until_done(
    sweep: &Sweep,
    args: &SweepArgs,
    tls: Option<ServerTlsConfig>,
    plan: &Plan,
    listener: tokio::net::TcpListener,
    mut abort: tokio::sync::watch::Receiver<Option<String>>,
) -> Result<usize> {
    let addr = listener.local_addr()?;
    let addr_file = args.out.join("coordinator.addr");
    apparate::safe_write::write_bytes(
        &addr_file,
        apparate::safe_write::Durability::Flush,
        format!("{addr}\n").as_bytes(),
    )
    .with_context(|| format!("cannot write {}", addr_file.display()))?;
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    let shared = sweep.shared();
    let total = plan.len();
    let cached = shared.snapshot().counts.done;
    tracing::info!(
        "sweep {:?}: {total} tasks, {cached} already complete, serving on {addr} into {}",
        plan.spec().name,
        args.out.display()
    );
    let mut finished = shared.finished();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let tick_period = (sweep_lease(args) / 8).max(Duration::from_millis(5));
    let server = serve(sweep, listener, tls, stopped(stop_rx.clone()));
    let ticks = sweep.tick_loop(tick_period, stopped(stop_rx.clone()));
    let progress = show_progress(
        sweep,
        total,
        cached,
        args.log_every,
        stopped(stop_rx.clone()),
    );
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let control = async {
        #[cfg(unix)]
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<()>();
        let interrupted = tokio::select! {
            _ = finished.wait_for(|f| *f) => None,
            _ = tokio::signal::ctrl_c() => Some("interrupted before the sweep finished".to_string()),
            () = terminated => Some("interrupted before the sweep finished".to_string()),
            r = abort.wait_for(Option::is_some) => Some(match r {
                Ok(m) => format!("the workers' launcher gave up: {}", m.as_deref().unwrap_or("")),
                Err(_) => "the workers' launcher gave up".to_string(),
            }),
        };
        if interrupted.is_some() {
            tracing::warn!("interrupted: stopping; a rerun with the same --out resumes");
        } else {
            // Let live workers hear that the sweep is done (they exit) before closing: wait
            // until every worker seen recently was told, for 3 s at most.
            let start = Instant::now();
            let recent = sweep_lease(args).min(Duration::from_secs(3));
            while start.elapsed() < Duration::from_secs(3)
                && !shared.live_workers_told_done(Instant::now(), recent)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = stop_tx.send(true);
        interrupted
    };
    let (served, (), (), interrupted) = tokio::join!(server, ticks, progress, control);
    served.context("the gRPC server failed")?;
    let counts = shared.snapshot().counts;
    tracing::info!(
        "{total} tasks: {} done, {} failed, {} not finished",
        counts.done,
        counts.failed,
        counts.pending + counts.leased
    );
    if let Some(why) = interrupted {
        bail!("{why}");
    }
    Ok(counts.failed)
}

/// The Slurm launcher's folder in `--out` (token, batch script, element logs, job states); a
/// dot folder, so it is no result file.
const SLURM_DIR: &str = ".slurm";
/// The array elements and their Slurm states, one `ELEMENT\tSTATE` line each, rewritten after
/// every look (read by `coordinator status`).
const SLURM_JOBS: &str = "jobs.tsv";

fn write_slurm_jobs(path: &Path, states: &[cluster::WorkerState]) {
    let text: String = states
        .iter()
        .map(|w| format!("{}\t{}\n", w.id, w.state))
        .collect();
    if let Err(e) = apparate::safe_write::write_bytes(
        path,
        apparate::safe_write::Durability::Flush,
        text.as_bytes(),
    ) {
        tracing::warn!("cannot write {}: {e}", path.display());
    }
}

fn sweep_lease(args: &SweepArgs) -> Duration {
    Duration::from_millis(args.lease_ms.max(10))
}

fn progress_text(s: &Snapshot, total: usize, cached: usize, start: Instant) -> String {
    let c = &s.counts;
    let run_now = c.done.saturating_sub(cached);
    let left = c.pending + c.leased;
    let elapsed = start.elapsed();
    let eta = if run_now > 0 {
        apparate::duration::format_duration(elapsed.mul_f64(left as f64 / run_now as f64))
    } else {
        "?".to_string()
    };
    let rates: Vec<String> = s
        .workers
        .iter()
        .filter(|w| w.done > 0)
        .map(|w| {
            let secs = w.since.elapsed().as_secs_f64().max(1e-3);
            format!("{}@{} {:.2}/s", w.id, w.host, w.done as f64 / secs)
        })
        .collect();
    format!(
        "{}/{total} done, {} running, {} failed, {} pending, ETA {eta}{}{}",
        c.done,
        c.leased,
        c.failed,
        c.pending,
        if rates.is_empty() { "" } else { " | " },
        rates.join(", ")
    )
}

async fn show_progress(
    sweep: &Sweep,
    total: usize,
    cached: usize,
    log_every: u64,
    stop: impl std::future::Future<Output = ()>,
) {
    let shared = sweep.shared();
    let start = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let pb = indicatif::ProgressBar::with_draw_target(
            Some(total as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
        {
            pb.set_style(style.progress_chars("=> "));
        }
        pb
    });
    let period = if terminal {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(log_every.max(1))
    };
    let mut interval = tokio::time::interval(period);
    interval.tick().await;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = interval.tick() => {
                let s = shared.snapshot();
                let text = progress_text(&s, total, cached, start);
                match &bar {
                    Some(pb) => {
                        pb.set_position((s.counts.done + s.counts.failed) as u64);
                        pb.set_message(text);
                    }
                    None => tracing::info!("{text}"),
                }
            }
        }
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
}

fn run_status(args: &StatusArgs) -> Result<()> {
    let store = Store::open_read_only(&args.out)
        .with_context(|| format!("no readable ledger in {}", args.out.display()))?;
    let mut out = std::io::stdout().lock();
    if args.summary {
        write_worker_rows(&mut out, &store, &args.out)?;
        let counts = store.state_counts()?;
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        writeln!(out, "{total} tasks: {}", summary.join(", "))?;
        return Ok(());
    }
    let rows = store.task_rows()?;
    let mut by_state = std::collections::BTreeMap::<&str, usize>::new();
    for r in &rows {
        *by_state.entry(r.state.as_str()).or_default() += 1;
        writeln!(
            out,
            "{}\t{}\t{}\t{}\tattempts={}\tsucceeded={}{}",
            r.index,
            r.key,
            r.label,
            r.state,
            r.attempts,
            r.succeeded,
            r.message
                .as_deref()
                .map(|m| format!("\t{m}"))
                .unwrap_or_default()
        )?;
    }
    write_worker_rows(&mut out, &store, &args.out)?;
    let summary: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
    writeln!(out, "{} tasks: {}", rows.len(), summary.join(", "))?;
    Ok(())
}

/// `coordinator status`'s lines beside the tasks: the backend inputs' state, the live tasks
/// waiting for a GPU worker, one line per worker, one per Slurm array element.
fn write_worker_rows(out: &mut impl Write, store: &Store, results: &Path) -> Result<()> {
    if let Some(line) = store.note(coordinator::shared::BACKEND_NOTE)? {
        writeln!(out, "inputs\t{line}")?;
    }
    if let Some(line) = store.note(coordinator::shared::LIVE_NOTE)? {
        writeln!(out, "live\t{line}")?;
    }
    for w in store.worker_rows()? {
        writeln!(
            out,
            "worker w{}\t{}\tslots={}\tdone={}{}",
            w.id,
            w.host,
            w.slots,
            w.succeeded,
            if w.blocked { "\tblocked" } else { "" }
        )?;
    }
    let jobs = results.join(SLURM_DIR).join(SLURM_JOBS);
    if let Ok(text) = std::fs::read_to_string(&jobs) {
        for line in text.lines() {
            let Some((job, state)) = line.split_once('\t') else {
                bail!(
                    "{}: expected ELEMENT<tab>STATE lines, found {line:?}",
                    jobs.display()
                );
            };
            writeln!(out, "slurm job {job}\t{state}")?;
        }
    }
    Ok(())
}

fn run_plan(args: &PlanArgs) -> Result<()> {
    let plan = apparate::sweep::load_plan(args.spec.as_deref())?;
    if let Some(line) = apparate::results::overview::backend_inputs_line(&plan, &args.out) {
        println!("{line}");
    }
    let counts = write_plan_listing(
        &plan,
        &ResultsDir::new(&args.out),
        &mut std::io::stdout().lock(),
    )?;
    tracing::info!("{counts} (results in {})", args.out.display());
    Ok(())
}
