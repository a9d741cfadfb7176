//! Executing one task.

use super::{BatchingScheme, Inputs, TaskSpec, TaskTrace};
use crate::artifact::{
    profile_paths, read_batch_decisions, read_latency_tables, read_ramp_data, stats_too_short,
    ArtifactError,
};
use crate::batching::{BatchingOutcome, RequestTrace, Scheme, ServingTimes, TfServeParams};
use crate::output::{served_queueing, write_run_stored, ExtraColumns, OutputError};
use crate::sim::pyfmt::{py_float, py_str};
use crate::sim::{
    run_bootstrap, simulate_after_bootstrap, BatchSize, Batching, Culprit, LatencyTables, Mode,
    RampData, RunResult, RunSpec, SimError, Summary, BATCH_SIZES,
};
use crate::storage::Storage;
use crate::traces::{generate, TraceGenError, TraceSpec};
use crate::workload::{self, WorkloadError};
use std::path::{Path, PathBuf};

/// A task that could not run. Each variant names what was wrong; none is worth retrying on
/// the same inputs except [`TaskError::Output`].
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// An artifact input file is missing or malformed.
    #[error(transparent)]
    Input(#[from] ArtifactError),
    /// The embedded workload cannot be generated.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The trace cannot be generated.
    #[error("trace {trace}: {source}")]
    Trace {
        /// Trace name.
        trace: String,
        /// Cause.
        source: TraceGenError,
    },
    /// The batching scheduler rejected the trace.
    #[error("batching trace {trace} with {scheme}: {message}")]
    Batching {
        /// Trace name.
        trace: String,
        /// Scheme.
        scheme: &'static str,
        /// Cause.
        message: String,
    },
    /// A recorded decision file cannot be used with the chosen inputs.
    #[error("trace {trace}: {message}")]
    TraceMismatch {
        /// Trace name.
        trace: String,
        /// What is wrong.
        message: String,
    },
    /// The simulator refused the inputs.
    #[error("{}simulating {what}: {source}", files_prefix(files))]
    Sim {
        /// Which run (Apparate, oracle, static).
        what: &'static str,
        /// The artifact input files holding the offending value (empty for the embedded
        /// workload and for parameters).
        files: Vec<PathBuf>,
        /// Cause.
        source: SimError,
    },
    /// A task over backend inputs was run on its spec alone: it runs on the folder the backend
    /// built ([`crate::backend_inputs`]), which the caller substitutes as artifact inputs.
    #[error("backend inputs ({model}) must be built into an inputs folder before the task runs")]
    UnbuiltBackendInputs {
        /// The backend's model.
        model: String,
    },
    /// Writing a result file failed (retryable).
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// `a.pickle and b.pickle: `, or nothing for no file.
fn files_prefix(files: &[PathBuf]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    format!("{}: ", names.join(" and "))
}

/// The artifact input files that hold the value a simulator refusal is about.
pub(crate) fn culprit_files(spec: &TaskSpec, e: &SimError) -> Vec<PathBuf> {
    let Inputs::Artifact { dir } = &spec.inputs else {
        return Vec::new();
    };
    let files = spec.input_files();
    let file = |k: usize| files.get(k).map(|f| dir.join(f));
    match e.culprit() {
        Culprit::Flags | Culprit::Internal => Vec::new(),
        Culprit::Bootstrap => file(0).into_iter().collect(),
        Culprit::Simulation => file(1).into_iter().chain(file(0)).collect(),
        Culprit::Profile { batch_size } => {
            profile_paths(&dir.join("profile_pickles_bs"), &spec.arch(), batch_size)
        }
        Culprit::SimulationAndDecisions => {
            let decisions = match (&spec.trace, spec.params.batching) {
                (_, BatchingScheme::Uniform) => None,
                (TaskTrace::ArtifactDecisions { file, .. }, _) => {
                    Some(dir.join("batch_decisions").join(file))
                }
                (TaskTrace::Generated { .. }, _) => None,
            };
            file(1).into_iter().chain(decisions).collect()
        }
    }
}

/// What a finished task reports besides its files.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskOutcome {
    /// Apparate's summary.
    pub summary: Summary,
    /// The artifact-style summary lines (`output_cv.txt`: the last log line; `output_nlp.txt`:
    /// the last two).
    pub summary_lines: Vec<String>,
    /// Served requests.
    pub num_requests: usize,
}

/// A task's inputs in memory: the latency tables, the bootstrap and the simulation samples.
pub(crate) struct Loaded {
    pub(crate) tables: LatencyTables,
    pub(crate) boot: RampData,
    pub(crate) sim: RampData,
}

pub(crate) fn load(spec: &TaskSpec) -> Result<Loaded, TaskError> {
    match &spec.inputs {
        Inputs::Embedded { scale } => {
            let w = workload::generate(&spec.model, &spec.dataset, *scale, spec.seed)?;
            Ok(Loaded {
                tables: w.tables,
                boot: w.bootstrap,
                sim: w.simulation,
            })
        }
        Inputs::Backend { model, .. } => Err(TaskError::UnbuiltBackendInputs {
            model: model.clone(),
        }),
        Inputs::Artifact { dir } => {
            let files = spec.input_files();
            let path = |k: usize| dir.join(&files[k]);
            Ok(Loaded {
                tables: read_latency_tables(&dir.join("profile_pickles_bs"), &spec.arch())?,
                boot: read_ramp_data(&path(0))?,
                sim: read_ramp_data(&path(1))?,
            })
        }
    }
}

/// Batch sizes and the per-request stats they came with (`None` for the uniform scheme and
/// for a decision file without `per_request_stats`).
struct Batches {
    decisions: Option<Vec<BatchSize>>,
    stats: Option<Vec<Option<(f64, f64)>>>,
    /// The decision file the stats were read from (`None` for a generated trace).
    stats_file: Option<PathBuf>,
}

fn batches(spec: &TaskSpec, tables: &LatencyTables) -> Result<Batches, TaskError> {
    let trace_name = spec.trace.name().to_string();
    if spec.params.batching == BatchingScheme::Uniform {
        return Ok(Batches {
            decisions: None,
            stats: None,
            stats_file: None,
        });
    }
    type Stats = Option<Vec<Option<(f64, f64)>>>;
    let (decisions, stats, stats_file): (Vec<usize>, Stats, Option<PathBuf>) = match &spec.trace {
        TaskTrace::ArtifactDecisions { file, .. } => {
            let Inputs::Artifact { dir } = &spec.inputs else {
                return Err(TaskError::TraceMismatch {
                    trace: trace_name,
                    message: format!("recorded decisions ({file}) need artifact inputs"),
                });
            };
            let path = dir.join("batch_decisions").join(file);
            let d = read_batch_decisions(&path)?;
            (
                d.batching_decision.iter().map(|b| b.get()).collect(),
                d.per_request_stats,
                Some(path),
            )
        }
        TaskTrace::Generated { spec: tspec, .. } => {
            let out = batch_generated_trace(
                &trace_name,
                tspec,
                spec.params.batching,
                spec.params.slo_multiplier,
                tables,
            )?
            .outcome;
            (out.batching_decision, Some(out.per_request_stats), None)
        }
    };
    let decisions = decisions
        .into_iter()
        .map(|b| {
            BatchSize::exact(b).ok_or_else(|| TaskError::TraceMismatch {
                trace: trace_name.clone(),
                message: format!("batch size {b} is not one of {BATCH_SIZES:?}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Batches {
        decisions: Some(decisions),
        stats,
        stats_file,
    })
}

/// A generated trace batched as a task batches it ([`batch_generated_trace`]).
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedBatches {
    /// The trace's arrival times (ms).
    pub arrivals_ms: Vec<f64>,
    /// The SLO every request got (ms): `slo_multiplier * V[1]`.
    pub slo_ms: f64,
    /// The scheme's decisions and per-request stats.
    pub outcome: BatchingOutcome,
}

/// Batches the generated trace `trace` the way [`run_task`] does: every request gets the SLO
/// `slo_multiplier * V[1]` (the batch-size-1 vanilla latency of `tables`), batch size `b` takes
/// `M[b] = V[b]` to serve, tf_serve runs with the artifact's default parameters and every
/// other scheme as clockwork. `trace_name` only names the trace in errors.
pub fn batch_generated_trace(
    trace_name: &str,
    trace: &TraceSpec,
    scheme: BatchingScheme,
    slo_multiplier: f64,
    tables: &LatencyTables,
) -> Result<GeneratedBatches, TaskError> {
    let arrivals = generate(trace).map_err(|source| TaskError::Trace {
        trace: trace_name.to_string(),
        source,
    })?;
    let online = online_setup(trace_name, arrivals, scheme, slo_multiplier, tables)?;
    let outcome = online
        .scheme
        .run(&online.requests, &online.serving, &TfServeParams::default())
        .map_err(|e| TaskError::Batching {
            trace: trace_name.to_string(),
            scheme: online.scheme.name(),
            message: e.to_string(),
        })?;
    Ok(GeneratedBatches {
        arrivals_ms: online.requests.arrival_ms().to_vec(),
        slo_ms: online.requests.slo_ms(),
        outcome,
    })
}

/// What a scheme needs to batch a trace, as a task sets it up ([`batch_generated_trace`]).
pub(crate) struct OnlineSetup {
    /// The arrivals with their SLO.
    pub(crate) requests: RequestTrace,
    /// `M[b] = V[b]` for every batch size.
    pub(crate) serving: ServingTimes,
    /// tf_serve, or clockwork for every other scheme.
    pub(crate) scheme: Scheme,
}

/// The SLO `slo_multiplier * V[1]` for every request of `arrivals`, the serving times `V[b]`,
/// and the scheme (`scheme` if it is tf_serve, else clockwork).
pub(crate) fn online_setup(
    trace_name: &str,
    arrivals: Vec<f64>,
    scheme: BatchingScheme,
    slo_multiplier: f64,
    tables: &LatencyTables,
) -> Result<OnlineSetup, TaskError> {
    let v1 = tables.get(BatchSize::ONE).vanilla_ms;
    let slo = slo_multiplier * v1;
    let bad = |message: String| TaskError::Batching {
        trace: trace_name.to_string(),
        scheme: scheme.name(),
        message,
    };
    let requests = RequestTrace::new(arrivals, slo).map_err(|e| bad(e.to_string()))?;
    let m: Vec<f64> = tables.iter().map(|(_, t)| t.vanilla_ms).collect();
    let serving = ServingTimes::new(BATCH_SIZES.to_vec(), m).map_err(|e| bad(e.to_string()))?;
    let scheme = match scheme {
        BatchingScheme::TfServe => Scheme::TfServe,
        _ => Scheme::Clockwork,
    };
    Ok(OnlineSetup {
        requests,
        serving,
        scheme,
    })
}

/// Runs `spec` and writes its result files into `dir` (created if missing): the five files of
/// `worker simulate`, with `queueing_ms`, `optimal_ms` and the static baseline's columns
/// filled, plus `baselines.json`. All plain; see [`run_task_stored`].
pub fn run_task(spec: &TaskSpec, dir: &Path) -> Result<TaskOutcome, TaskError> {
    run_task_stored(spec, dir, Storage::Plain)
}

/// As [`run_task`], the files stored as `storage` says ([`crate::storage`]).
pub fn run_task_stored(
    spec: &TaskSpec,
    dir: &Path,
    storage: Storage,
) -> Result<TaskOutcome, TaskError> {
    let inputs = load(spec)?;
    let b = batches(spec, &inputs.tables)?;
    let arch = spec.arch();
    let batching = match &b.decisions {
        Some(d) => Batching::Decisions(d),
        None => Batching::Uniform,
    };
    let spec_for = |mode: Mode| RunSpec {
        arch: &arch,
        dataset: spec.dataset_flag(),
        batch_size: spec.params.batch_size,
        batching,
        mode,
        overrides: spec.params.overrides,
        record_log: mode == Mode::Apparate,
    };
    // One bootstrap for all three modes.
    let boot_out = run_bootstrap(&spec_for(Mode::Apparate), &inputs.tables, &inputs.boot).map_err(
        |source| TaskError::Sim {
            what: "bootstrap",
            files: culprit_files(spec, &source),
            source,
        },
    )?;
    let run = |mode: Mode, what: &'static str| -> Result<RunResult, TaskError> {
        simulate_after_bootstrap(
            &spec_for(mode),
            &inputs.tables,
            &boot_out,
            &inputs.boot,
            &inputs.sim,
        )
        .map_err(|source| TaskError::Sim {
            what,
            files: culprit_files(spec, &source),
            source,
        })
    };
    let apparate = run(Mode::Apparate, "Apparate")?;
    let oracle = run(Mode::Oracle, "the oracle")?;
    let fixed = run(Mode::Static(spec.params.static_ramps), "static early exits")?;
    let n = apparate.requests.len();
    let queueing_ms = match &b.stats {
        None => None,
        Some(stats) => Some(
            served_queueing(stats, n).map_err(|short| match &b.stats_file {
                Some(path) => TaskError::Input(stats_too_short(path, short)),
                None => TaskError::TraceMismatch {
                    trace: spec.trace.name().to_string(),
                    message: format!(
                        "batching gave {} per-request pairs but {} requests were served",
                        short.pairs, short.served
                    ),
                },
            })?,
        ),
    };
    let extra = ExtraColumns {
        queueing_ms,
        optimal_ms: Some(oracle.requests.inference_ms.clone()),
        static_ms: Some(fixed.requests.inference_ms.clone()),
        static_correct: Some(fixed.requests.correct.clone()),
    };
    write_run_stored(dir, &apparate, &extra, &args_line(spec, &arch), storage)?;
    crate::output::write_baselines(dir, &apparate, &oracle, &fixed)?;
    let keep = match spec.family {
        crate::sim::Family::Cv => 1,
        crate::sim::Family::Nlp => 2,
    };
    let summary_lines = apparate.log[apparate.log.len().saturating_sub(keep)..].to_vec();
    Ok(TaskOutcome {
        summary: apparate.summary.clone(),
        summary_lines,
        num_requests: n,
    })
}

/// The `args:` line of the task's `log.txt`, in the artifact's Namespace format.
pub(crate) fn args_line(spec: &TaskSpec, arch: &str) -> String {
    let paths: Vec<PathBuf> = spec.input_files();
    let path = |k: usize| {
        paths.get(k).map_or("None".to_string(), |p| {
            py_str(&format!("../{}", p.display()))
        })
    };
    let decisions = match &spec.trace {
        TaskTrace::ArtifactDecisions { file, .. } => py_str(&format!("../batch_decisions/{file}")),
        TaskTrace::Generated { name, .. } => py_str(&format!("<generated trace {name}>")),
    };
    format!(
        "args: Namespace(dataset={}, arch={}, batch_size={}, profile_dir='./profile_pickles_bs', slo_multiplier={}, batching_scheme={}, bootstrap_pickle_path={}, simulation_pickle_path={}, batch_decision_path={}, optimal_exiting=False)",
        py_str(spec.dataset_flag()),
        py_str(arch),
        spec.params.batch_size,
        py_float(spec.params.slo_multiplier),
        py_str(spec.params.batching.name()),
        path(0),
        path(1),
        decisions,
    )
}
