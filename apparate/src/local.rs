//! `worker --local`: runs a [`Plan`] on this machine's cores into a results directory.
//!
//! `jobs` threads pull task indexes from a shared counter, in grid order. Each skips a task that
//! is already complete, or runs it into a staging folder and commits it
//! ([`ResultsWriter::commit`]); a failed task leaves `failures/<key>.json` and the others go on.
//! Nothing of a task's results stays in memory: the summary lines are read back from the
//! manifests at the end ([`ResultsWriter::write_summaries`]).
//!
//! A live task ([`TaskSpec::live`], issue #14) is served by `ee-backend serve`, exec'd into its
//! staging folder ([`execute_live`]), and runs **alone**: it waits for the tasks running beside
//! it to end, and no other task starts until it has ended, so that its measured latencies are
//! the model's, not those of a machine busy with simulations.

use crate::backend_inputs::{self, BackendError, BackendInputs, Built};
use crate::results::{
    describe_files, FailureKind, FailureRecord, Manifest, ManifestProblem, ResultsError,
    ResultsWriter, TaskStatus, Timings, FAILURE_FORMAT, FORMAT_VERSION,
};
use crate::storage::Storage;
use crate::sweep::{Plan, PlannedTask};
use crate::task::{run_task_stored, Inputs, TaskError, TaskSpec};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How progress is shown (on stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar with ETA (for a terminal).
    Bar,
    /// `tracing` lines: one per failure, and a progress line at most every 10 s.
    Log,
    /// Nothing.
    Quiet,
}

/// Options of [`run_plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalOptions {
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Progress display.
    pub progress: Progress,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Tasks in the plan.
    pub total: usize,
    /// Tasks found complete and skipped.
    pub skipped: usize,
    /// Tasks run and committed.
    pub completed: usize,
    /// Tasks that failed (each has `failures/<key>.json`).
    pub failed: usize,
}

/// A task that did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    /// What kind.
    pub kind: FailureKind,
    /// Whether a retry may succeed on the same inputs.
    pub retryable: bool,
    /// The error and its causes.
    pub message: String,
}

impl TaskFailure {
    fn results(e: ResultsError) -> TaskFailure {
        TaskFailure {
            kind: FailureKind::Results,
            retryable: true,
            message: e.to_string(),
        }
    }
}

impl From<&TaskError> for TaskFailure {
    fn from(e: &TaskError) -> TaskFailure {
        let (kind, retryable) = match e {
            TaskError::Input(_) | TaskError::UnbuiltBackendInputs { .. } => {
                (FailureKind::Input, false)
            }
            TaskError::Workload(_) => (FailureKind::Workload, false),
            TaskError::Trace { .. } => (FailureKind::Trace, false),
            TaskError::Batching { .. } => (FailureKind::Batching, false),
            TaskError::TraceMismatch { .. } => (FailureKind::TraceMismatch, false),
            TaskError::Sim { .. } => (FailureKind::Sim, false),
            TaskError::Output(_) => (FailureKind::Output, true),
        };
        TaskFailure {
            kind,
            retryable,
            message: crate::text::error_chain(e),
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A sweep that cannot run at all (task failures are counted in [`RunReport`] instead).
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The results directory cannot be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The backend inputs cannot be built; no task was run.
    #[error("backend inputs: {source}")]
    Backend {
        /// Cause.
        #[from]
        source: BackendError,
    },
}

/// The spec `task` runs on: for backend inputs, artifact inputs on the folder they are built
/// into under `results_root` ([`backend_inputs::inputs_dir`]); any other spec as it is.
pub fn runnable_spec(task: &PlannedTask, results_root: &Path) -> TaskSpec {
    let mut spec = task.spec.clone();
    if let Inputs::Backend { .. } = spec.inputs {
        let digest = task
            .digests
            .get(backend_inputs::DIGEST_KEY)
            .map(String::as_str)
            .unwrap_or("missing-digest");
        spec.inputs = Inputs::Artifact {
            dir: backend_inputs::inputs_dir(results_root, digest),
        };
    }
    spec
}

/// Runs one task into its staging folder and commits it. Panics inside the task are caught and
/// reported as [`FailureKind::Panic`]. A task over backend inputs runs on their built folder
/// under `out` ([`runnable_spec`]; [`run_plan`] builds it first). A live task
/// ([`TaskSpec::live`]) is served by `ee-backend serve` ([`execute_live`], with the binary
/// [`backend_inputs::locate`] finds).
pub fn execute(
    task: &PlannedTask,
    out: &ResultsWriter,
    code_version: &str,
) -> Result<Manifest, TaskFailure> {
    execute_with(task, out, code_version, None)
}

/// [`execute`], with the `ee-backend` a live task runs (located when `None`).
fn execute_with(
    task: &PlannedTask,
    out: &ResultsWriter,
    code_version: &str,
    exe: Option<&Path>,
) -> Result<Manifest, TaskFailure> {
    if task.spec.live.is_some() {
        let located;
        let exe = match exe {
            Some(p) => p,
            None => {
                located = backend_inputs::locate().map_err(|e| TaskFailure {
                    kind: FailureKind::Serve,
                    retryable: false,
                    message: e.to_string(),
                })?;
                located.path.as_path()
            }
        };
        let dir = backend_inputs::inputs_dir(
            out.dir().root(),
            task.digests
                .get(backend_inputs::DIGEST_KEY)
                .map_or("missing-digest", String::as_str),
        );
        return execute_live(task, &task.spec, &dir, exe, out, code_version);
    }
    let spec = runnable_spec(task, out.dir().root());
    execute_on(task, &spec, out, code_version)
}

/// [`execute`] with the spec the task runs on given (`task.spec` stays what the manifest
/// records): a remote worker runs backend inputs from the folder it fetched. Simulated tasks
/// only: a live task is refused here ([`execute_live`] runs it).
pub fn execute_on(
    task: &PlannedTask,
    run_spec: &TaskSpec,
    out: &ResultsWriter,
    code_version: &str,
) -> Result<Manifest, TaskFailure> {
    if task.spec.live.is_some() || run_spec.live.is_some() {
        return Err(TaskFailure {
            kind: FailureKind::Serve,
            retryable: false,
            message: "a live task is served by ee-backend serve, never simulated in-process"
                .to_string(),
        });
    }
    stage_run_commit(task, out, code_version, |staged| {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_task_stored(run_spec, staged, out.storage())
        }));
        match result {
            Ok(Ok(o)) => Ok((o.num_requests, o.summary_lines)),
            Ok(Err(e)) => Err(TaskFailure::from(&e)),
            Err(payload) => Err(TaskFailure {
                kind: FailureKind::Panic,
                retryable: false,
                message: format!("task panicked: {}", panic_text(payload.as_ref())),
            }),
        }
    })
}

/// Runs the live task `task` into its staging folder by exec'ing `exe` (`ee-backend`) as
/// `exe serve --task TASK.json --inputs INPUTS --out STAGED --store STORAGE` (never
/// in-process: the model and its device belong to the backend), and commits it.
/// `live_spec` is the task spec written to `TASK.json` (`task.spec`, or on a remote worker
/// the same with the weights, data and labels it fetched); `inputs` the built backend-inputs
/// folder. A failure is the command's exit status with the last line of its stderr (the last
/// one starting with `error` if any); a run
/// that exits with 0 commits only if its folder is a complete live result (every file of
/// [`Storage::task_files`], `serve.json` not interrupted; [`ResultsWriter::commit`]).
pub fn execute_live(
    task: &PlannedTask,
    live_spec: &TaskSpec,
    inputs: &Path,
    exe: &Path,
    out: &ResultsWriter,
    code_version: &str,
) -> Result<Manifest, TaskFailure> {
    let storage = out.storage();
    stage_run_commit(task, out, code_version, |staged| {
        serve(exe, live_spec, inputs, staged, storage)
    })
}

/// `ee-backend serve` into `staged`; the outcome its files give.
fn serve(
    exe: &Path,
    spec: &TaskSpec,
    inputs: &Path,
    staged: &Path,
    storage: Storage,
) -> Result<(usize, Vec<String>), TaskFailure> {
    let failed = |retryable: bool, message: String| TaskFailure {
        kind: FailureKind::Serve,
        retryable,
        message,
    };
    // Beside the staging folder (which must hold the result's files only); cleared with the
    // rest of `tasks/.tmp/` if this process dies.
    let mut task_json = staged.as_os_str().to_owned();
    task_json.push(".task.json");
    let task_json = std::path::PathBuf::from(task_json);
    let json = serde_json::to_vec(spec).map_err(|e| failed(false, format!("task spec: {e}")))?;
    crate::safe_write::write_bytes(&task_json, crate::safe_write::Durability::Flush, &json)
        .map_err(|e| failed(true, format!("{}: {e}", task_json.display())))?;
    let output = std::process::Command::new(exe)
        .arg("serve")
        .arg("--task")
        .arg(&task_json)
        .arg("--inputs")
        .arg(inputs)
        .arg("--out")
        .arg(staged)
        .arg("--store")
        .arg(storage.name())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    let _ = std::fs::remove_file(&task_json);
    let output = output.map_err(|e| failed(false, format!("cannot run {}: {e}", exe.display())))?;
    if !output.status.success() {
        // Its one-line reason: the last line of stderr (the last one starting with `error`,
        // when a usage message follows it, as for gen-data).
        let last = backend_inputs::last_line(&output.stderr)
            .unwrap_or_else(|| "no message on stderr".to_string());
        // Interrupted (exit 130) or killed by a signal: running it again may succeed.
        let interrupted = match output.status.code() {
            Some(code) => code == 130,
            None => true,
        };
        return Err(failed(
            interrupted,
            format!("ee-backend serve failed ({}): {last}", output.status),
        ));
    }
    let keep = match spec.family {
        crate::sim::Family::Cv => 1,
        crate::sim::Family::Nlp => 2,
    };
    crate::results::outcome_of(staged, storage, keep).map_err(|p| {
        failed(
            false,
            format!("ee-backend serve exited with 0, but its result is not complete: {p}"),
        )
    })
}

/// Stages `task`, writes its files with `run` (which returns the outcome: requests served and
/// summary lines) and commits it with its manifest; the staging folder is discarded on any
/// failure.
fn stage_run_commit(
    task: &PlannedTask,
    out: &ResultsWriter,
    code_version: &str,
    run: impl FnOnce(&Path) -> Result<(usize, Vec<String>), TaskFailure>,
) -> Result<Manifest, TaskFailure> {
    let staged = out.stage(&task.key).map_err(TaskFailure::results)?;
    let started_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0);
    let t0 = Instant::now();
    let result = run(&staged);
    let run_ms = millis(t0.elapsed());
    let (num_requests, summary_lines) = match result {
        Ok(o) => o,
        Err(f) => {
            out.discard(&staged);
            return Err(f);
        }
    };
    let commit = || -> Result<Manifest, ResultsError> {
        let files = describe_files(&staged)?;
        let timings = Timings {
            started_unix_ms,
            run_ms,
            total_ms: millis(t0.elapsed()),
        };
        let manifest = Manifest::new(
            task,
            code_version,
            files,
            num_requests,
            summary_lines,
            timings,
        );
        out.commit(&staged, &manifest)?;
        Ok(manifest)
    };
    commit().map_err(|e| {
        out.discard(&staged);
        TaskFailure::results(e)
    })
}

/// The failure record of `task`.
pub fn failure_record(task: &PlannedTask, code_version: &str, f: &TaskFailure) -> FailureRecord {
    FailureRecord {
        format: FAILURE_FORMAT.to_string(),
        version: FORMAT_VERSION,
        key: task.key.clone(),
        task: task.label(),
        code_version: code_version.to_string(),
        kind: f.kind,
        retryable: f.retryable,
        message: f.message.clone(),
        spec: task.spec.clone(),
    }
}

enum Event {
    Skipped,
    Done {
        key: String,
        ms: u64,
    },
    Failed {
        key: String,
        label: String,
        message: String,
    },
}

/// Counts the tasks of `plan` already complete in `out` (one pass over the manifests).
pub fn count_complete(plan: &Plan, out: &ResultsWriter) -> usize {
    plan.tasks()
        .filter(|t| matches!(out.status(t, plan.code_version()), TaskStatus::Complete(_)))
        .count()
}

/// One worker thread: pull indexes until the plan is exhausted. A live task runs alone: it
/// holds `alone` for writing (waiting for the tasks running beside it to end, and holding back
/// new ones), every other task holds it for reading.
fn work(
    plan: &Plan,
    out: &ResultsWriter,
    next: &AtomicUsize,
    alone: &RwLock<()>,
    tx: &mpsc::Sender<Event>,
) {
    let cv = plan.code_version();
    let exe = plan.backend().map(|b| b.exe.path.as_path());
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(task) = plan.task(i) else { return };
        let result = match out.status(&task, cv) {
            TaskStatus::Complete(_) => {
                if tx.send(Event::Skipped).is_err() {
                    return;
                }
                continue;
            }
            TaskStatus::Invalid(p @ ManifestProblem::NewerVersion { .. }) => Err(TaskFailure {
                kind: FailureKind::NewerManifest,
                retryable: false,
                message: p.to_string(),
            }),
            TaskStatus::Missing | TaskStatus::Invalid(_) => {
                // Held while the task runs: a live task alone, the others side by side.
                let live = task.spec.live.is_some();
                let _alone = live.then(|| alone.write().unwrap_or_else(|p| p.into_inner()));
                let _beside = (!live).then(|| alone.read().unwrap_or_else(|p| p.into_inner()));
                let t0 = Instant::now();
                execute_with(&task, out, cv, exe).map(|_| millis(t0.elapsed()))
            }
        };
        let event = match result {
            Ok(ms) => Event::Done {
                key: task.key.to_string(),
                ms,
            },
            Err(f) => {
                let mut message = f.message.clone();
                if let Err(e) = out.write_failure(&failure_record(&task, cv, &f)) {
                    message.push_str(&format!(" (and its failure record: {e})"));
                }
                Event::Failed {
                    key: task.key.to_string(),
                    label: task.label(),
                    message,
                }
            }
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

/// For a plan over backend inputs: makes `<results>/inputs/<digest>/` complete, running
/// `ee-backend gen-data` unless a verified build is there ([`backend_inputs::ensure_built`]).
/// `None` for other inputs.
pub fn build_backend_inputs(
    plan: &Plan,
    results_root: &Path,
) -> Result<Option<Built>, BackendError> {
    let (Some(bp), Some(b)) = (plan.backend(), BackendInputs::of(plan.inputs())) else {
        return Ok(None);
    };
    let built = backend_inputs::ensure_built(
        results_root,
        &b,
        &bp.exe,
        &bp.digest,
        &plan.backend_needed_files(),
    )?;
    match &built {
        Built::Reused(d) => tracing::info!("backend inputs reused from {}", d.display()),
        Built::Built(d) => tracing::info!("backend inputs built into {}", d.display()),
    }
    Ok(Some(built))
}

/// Runs every incomplete task of `plan` into `out` with `opts.jobs` threads. Task failures are
/// recorded and counted, not returned; the error is for a results directory that cannot be
/// written at all (`sweep.json`), or backend inputs that cannot be built (then nothing runs).
/// Backend inputs are built (or their build verified) only when some task is to run.
pub fn run_plan(
    plan: &Plan,
    out: &ResultsWriter,
    opts: &LocalOptions,
) -> Result<RunReport, LocalError> {
    out.write_plan(plan)?;
    let total = plan.len();
    let already = count_complete(plan, out);
    let to_run = total - already;
    if to_run > 0 {
        build_backend_inputs(plan, out.dir().root())?;
    }
    let jobs = opts.jobs.max(1).min(to_run.max(1));
    tracing::info!(
        "sweep {:?}: {total} tasks, {already} already complete, {to_run} to run on {jobs} thread(s) into {}",
        plan.spec().name,
        out.dir().root().display()
    );
    let bar = match opts.progress {
        Progress::Bar if to_run > 0 => {
            let pb = indicatif::ProgressBar::with_draw_target(
                Some(to_run as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} tasks, ETA {eta} {msg}",
            ) {
                pb.set_style(style.progress_chars("=> "));
            }
            pb.enable_steady_tick(Duration::from_millis(500));
            Some(pb)
        }
        _ => None,
    };
    let mut report = RunReport {
        total,
        ..RunReport::default()
    };
    let next = AtomicUsize::new(0);
    let alone = RwLock::new(());
    let (tx, rx) = mpsc::channel::<Event>();
    let start = Instant::now();
    let mut last_log = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, alone) = (&next, &alone);
            s.spawn(move || work(plan, out, next, alone, &tx));
        }
        drop(tx);
        for event in rx {
            match event {
                Event::Skipped => report.skipped += 1,
                Event::Done { key, ms } => {
                    report.completed += 1;
                    if let Some(pb) = &bar {
                        pb.inc(1);
                    }
                    tracing::debug!("done {key} in {} ms", ms);
                }
                Event::Failed {
                    key,
                    label,
                    message,
                } => {
                    report.failed += 1;
                    let line = format!("task {label} ({key}) failed: {message}");
                    match &bar {
                        Some(pb) => {
                            pb.inc(1);
                            pb.suspend(|| tracing::error!("{line}"));
                        }
                        None => tracing::error!("{line}"),
                    }
                }
            }
            let finished = report.completed + report.failed;
            if opts.progress == Progress::Log
                && finished > 0
                && (last_log.elapsed() >= Duration::from_secs(10) || finished == to_run)
            {
                last_log = Instant::now();
                let elapsed = start.elapsed();
                let eta = elapsed.mul_f64((to_run - finished) as f64 / finished as f64);
                tracing::info!(
                    "{finished}/{to_run} tasks run ({} failed), elapsed {}, ETA {}",
                    report.failed,
                    crate::duration::format_duration(elapsed),
                    crate::duration::format_duration(eta)
                );
            }
        }
    });
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    Ok(report)
}
