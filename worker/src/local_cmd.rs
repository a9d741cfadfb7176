//! `worker --local` and `worker plan`: a sweep on this machine, and its dry run.

use anyhow::{bail, Result};
use apparate::local::{run_plan, LocalOptions, Progress};
use apparate::results::overview;
use apparate::results::{write_plan_listing, ResultsDir};

use std::io::IsTerminal;
use std::path::PathBuf;

/// Top-level flags of `worker --local`.
#[derive(clap::Args, Debug)]
pub struct LocalArgs {
    /// Run a sweep on this machine (the built-in paper grid on the embedded workload unless
    /// --spec is given).
    #[arg(long)]
    pub local: bool,
    /// Sweep spec (TOML, see docs/sweep-spec.md); default: the built-in spec (specs/paper.toml).
    #[arg(long, value_name = "FILE", requires = "local")]
    pub spec: Option<PathBuf>,
    /// Results directory.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "results",
        requires = "local"
    )]
    pub out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", requires = "local", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub jobs: Option<u32>,
    /// Do not run the report (`analysis report`) at the end.
    #[arg(long, requires = "local")]
    pub no_report: bool,
    /// On a terminal, print every task's summary lines at the end too (they always go to
    /// `output_<grid>.txt`, and to stdout when it is not a terminal).
    #[arg(long, short = 'v', requires = "local")]
    pub verbose: bool,
    /// How task results are stored: `zstd` keeps `batches.jsonl` and `log.txt` compressed
    /// (`*.zst`, read them with `worker cat` or `zstd -d`), `plain` as written. Complete tasks
    /// of the other form are kept as they are.
    #[arg(long, value_name = "HOW", default_value = "zstd", requires = "local")]
    pub store: apparate::storage::Storage,
}

/// Arguments of `worker plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// Sweep spec (TOML); default: the built-in spec.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Results directory to check for complete tasks.
    #[arg(long, value_name = "DIR", default_value = "results")]
    out: PathBuf,
}

/// `worker --local`: expand, run what is missing, print and save the summaries.
pub fn run_local(args: LocalArgs) -> Result<()> {
    let plan = apparate::sweep::load_plan(args.spec.as_deref())?;
    let dir = ResultsDir::new(&args.out);
    let writer = dir.lock_stored(args.store)?;
    let jobs = match args.jobs {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let progress = if std::io::stderr().is_terminal() {
        Progress::Bar
    } else {
        Progress::Log
    };
    let report = run_plan(&plan, &writer, &LocalOptions { jobs, progress })?;
    tracing::info!(
        "{} tasks: {} run now, {} already complete, {} failed",
        report.total,
        report.completed,
        report.skipped,
        report.failed
    );
    overview::finish_sweep(&plan, &writer, args.verbose, args.no_report)?;
    if report.failed > 0 {
        bail!(
            "{} of {} tasks failed; the reasons are in {}/<key>.json",
            report.failed,
            report.total,
            dir.failures_dir().display()
        );
    }
    Ok(())
}

/// Arguments of `worker cat`.
#[derive(clap::Args, Debug)]
pub struct CatArgs {
    /// A task's folder (`results/tasks/<key>`) or any folder of result files.
    task_dir: PathBuf,
    /// The file, by its plain name (`log.txt`, `batches.jsonl`, `summary.json`, ...) or its
    /// stored one (`log.txt.zst`).
    file: String,
}

/// `worker cat`: prints a result file's contents, decompressed when it is stored compressed.
pub fn run_cat(args: CatArgs) -> Result<()> {
    use anyhow::Context;
    let (path, mut reader) = apparate::storage::open_result(&args.task_dir, &args.file)?;
    let mut out = std::io::stdout().lock();
    match std::io::copy(&mut reader, &mut out) {
        Ok(_) => Ok(()),
        // `worker cat ... | head`: the reader went away; not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `worker plan`: every task, its key and its state in `--out`; runs nothing.
pub fn run_plan_cmd(args: PlanArgs) -> Result<()> {
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
