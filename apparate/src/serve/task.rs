//! A task served end to end: its inputs, its trace as the request source, the controller
//! online, and the task's result files plus [`crate::task::LIVE_FILES`].

use super::files::{write_serve_files, ServeReport};
use super::server::{serve, ServeLoopError, Source};
use super::{EarlyExitModel, ServeOptions};
use crate::artifact::read_batch_decisions;
use crate::batching::TfServeParams;
use crate::output::{
    write_baselines, write_requests_parquet, write_run_stored, ExtraColumns, OutputError,
};
use crate::sim::{
    run_bootstrap, BatchObservation, BatchSize, Batching, LatencyTables, Mode, RampData, RunResult,
    RunSpec, Session, SimError, Summary, BATCH_SIZES,
};
use crate::storage::Storage;
use crate::task::{
    args_line, culprit_files, load, online_setup, BatchingScheme, Inputs, TaskError, TaskSpec,
    TaskTrace,
};
use crate::traces::generate;
use std::path::Path;

/// A serving run that could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The task's inputs, trace or batching were refused (before any request was served).
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The run failed while serving.
    #[error("serving: {0}")]
    Serve(#[from] ServeLoopError),
    /// Not a single batch could be served.
    #[error(
        "nothing was served: the stream holds {stream} samples and the first batch needs {first}"
    )]
    NothingServed {
        /// Samples in the stream.
        stream: usize,
        /// Size of the first batch the source asked for.
        first: usize,
    },
    /// Stopped (Ctrl-C) before the first batch: nothing was served, nothing written.
    #[error("stopped before the first batch: nothing was served, nothing written")]
    StoppedBeforeServing,
    /// Writing a result file failed.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// What a served task reports besides its files.
#[derive(Clone, Debug)]
pub struct ServeOutcome {
    /// The controller's summary (its own latencies are the profile's predictions); `None` for
    /// a vanilla run.
    pub summary: Option<Summary>,
    /// Counts, overheads, interruption.
    pub report: ServeReport,
}

/// Serves `spec` (with artifact inputs: a runnable task, `crate::local::runnable_spec`) with
/// `model` into `dir`: the task's result files (stored as `storage` says) and
/// [`crate::task::LIVE_FILES`]. `arrivals`, when given, replace the trace's arrivals (requests
/// read from a file). The oracle and static baselines are simulated from the recorded samples
/// on the batches this run served.
pub fn serve_task<M: EarlyExitModel>(
    spec: &TaskSpec,
    model: &mut M,
    executor: &str,
    arrivals: Option<Vec<f64>>,
    opts: &ServeOptions<'_>,
    dir: &Path,
    storage: Storage,
) -> Result<ServeOutcome, ServeError> {
    let inputs = load(spec)?;
    let arch = spec.arch();
    let spec_for = |mode: Mode| RunSpec {
        arch: &arch,
        dataset: spec.dataset_flag(),
        batch_size: spec.params.batch_size,
        batching: Batching::Uniform,
        mode,
        overrides: spec.params.overrides,
        record_log: mode == Mode::Apparate,
    };
    let sim_err = |what: &'static str| {
        move |source: SimError| {
            ServeError::Task(TaskError::Sim {
                what,
                files: culprit_files(spec, &source),
                source,
            })
        }
    };
    let apparate_spec = spec_for(Mode::Apparate);
    let boot_out = run_bootstrap(&apparate_spec, &inputs.tables, &inputs.boot)
        .map_err(sim_err("bootstrap"))?;
    if inputs.sim.num_ramps() < inputs.boot.num_ramps() {
        return Err(sim_err("the recorded samples")(
            SimError::RampCountMismatch {
                bootstrap: inputs.boot.num_ramps(),
                simulation: inputs.sim.num_ramps(),
            },
        ));
    }

    // The request source, checked before anything is served.
    let trace_name = spec.trace.name().to_string();
    let tf = TfServeParams::default();
    let decisions: Vec<BatchSize>;
    let stats: Option<Vec<Option<(f64, f64)>>>;
    let setup;
    let source = match (&spec.trace, spec.params.batching, arrivals) {
        (_, BatchingScheme::Uniform, _) => Source::Uniform {
            batch_size: spec.params.batch_size,
        },
        (TaskTrace::ArtifactDecisions { file, .. }, _, None) => {
            let Inputs::Artifact { dir } = &spec.inputs else {
                return Err(TaskError::TraceMismatch {
                    trace: trace_name,
                    message: format!("recorded decisions ({file}) need artifact inputs"),
                }
                .into());
            };
            let d = read_batch_decisions(&dir.join("batch_decisions").join(file))
                .map_err(TaskError::from)?;
            decisions = d
                .batching_decision
                .iter()
                .map(|b| {
                    BatchSize::exact(b.get()).ok_or_else(|| TaskError::TraceMismatch {
                        trace: trace_name.clone(),
                        message: format!("batch size {} is not one of {BATCH_SIZES:?}", b.get()),
                    })
                })
                .collect::<Result<_, _>>()?;
            stats = d.per_request_stats;
            Source::Decisions {
                sizes: &decisions,
                stats: stats.as_deref(),
            }
        }
        (trace, scheme, given) => {
            let arrivals = match (given, trace) {
                (Some(a), _) => a,
                (None, TaskTrace::Generated { spec: tspec, .. }) => {
                    generate(tspec).map_err(|source| TaskError::Trace {
                        trace: trace_name.clone(),
                        source,
                    })?
                }
                (None, TaskTrace::ArtifactDecisions { .. }) => {
                    unreachable!("matched by the arm above")
                }
            };
            setup = online_setup(
                &trace_name,
                arrivals,
                scheme,
                spec.params.slo_multiplier,
                &inputs.tables,
            )?;
            Source::Trace {
                requests: &setup.requests,
                serving: &setup.serving,
                scheme: setup.scheme,
                params: &tf,
            }
        }
    };

    let mut session = Session::start(&apparate_spec, &inputs.tables, &boot_out, &inputs.boot)
        .map_err(sim_err("Apparate"))?;
    let served = serve(&mut session, model, source, opts)?;
    if served.decisions.is_empty() {
        let first = match source {
            Source::Trace { .. } => 1,
            Source::Decisions { sizes, .. } => sizes.first().map_or(0, |b| b.get()),
            Source::Uniform { batch_size } => batch_size,
        };
        if served.report.interrupted {
            return Err(ServeError::StoppedBeforeServing);
        }
        return Err(ServeError::NothingServed {
            stream: model.stream_len(),
            first,
        });
    }
    let latencies: Vec<f64> = match &served.queueing_ms {
        Some(q) => served
            .inference_ms
            .iter()
            .zip(q)
            .map(|(i, q)| i + q.unwrap_or(0.0))
            .collect(),
        None => served.inference_ms.clone(),
    };
    let mut report = served.report;
    report.executor = executor.to_string();
    report.slow_factor = opts.slow_factor;
    if let Some(mut requests) = served.vanilla {
        // Vanilla serving: the requests and the serving files, no controller records.
        std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        requests.inference_ms = served.inference_ms;
        let path = dir.join("requests.parquet");
        let extra = ExtraColumns {
            queueing_ms: served.queueing_ms,
            ..ExtraColumns::default()
        };
        write_requests_parquet(&path, &requests, &extra)
            .map_err(|source| OutputError::Parquet { path, source })?;
        write_serve_files(dir, &report, &served.timing, &latencies)?;
        return Ok(ServeOutcome {
            summary: None,
            report,
        });
    }
    let mut apparate = session.finish(&apparate_spec);
    apparate.requests.inference_ms = served.inference_ms.clone();
    let sizes: Vec<usize> = served.timing.iter().map(|t| t.n).collect();

    let baseline = |mode: Mode, what: &'static str| -> Result<RunResult, ServeError> {
        replay_batches(
            &spec_for(mode),
            &inputs.tables,
            &boot_out,
            &inputs.boot,
            &inputs.sim,
            &sizes,
        )
        .map_err(sim_err(what))
    };
    let oracle = baseline(Mode::Oracle, "the oracle")?;
    let fixed = baseline(Mode::Static(spec.params.static_ramps), "static early exits")?;
    let extra = ExtraColumns {
        queueing_ms: served.queueing_ms.clone(),
        optimal_ms: Some(oracle.requests.inference_ms.clone()),
        static_ms: Some(fixed.requests.inference_ms.clone()),
        static_correct: Some(fixed.requests.correct.clone()),
    };
    write_run_stored(dir, &apparate, &extra, &args_line(spec, &arch), storage)?;
    write_baselines(dir, &apparate, &oracle, &fixed)?;
    write_serve_files(dir, &report, &served.timing, &latencies)?;
    Ok(ServeOutcome {
        summary: Some(apparate.summary),
        report,
    })
}

/// `mode`'s run over the recorded samples `sim`, batch `k` taking the next `sizes[k]` samples
/// (the baselines on the batches a serving run served).
fn replay_batches(
    spec: &RunSpec<'_>,
    tables: &LatencyTables,
    boot_out: &crate::sim::bootstrap::Bootstrap,
    boot: &RampData,
    sim: &RampData,
    sizes: &[usize],
) -> Result<RunResult, SimError> {
    let mut session = Session::start(spec, tables, boot_out, boot)?;
    let mut start = 0;
    for &n in sizes {
        let ids = &session.config().ramp_ids;
        let (Some(conf), Some(acc)) = (
            ids.iter()
                .map(|&a| sim.conf.get(a).and_then(|c| c.get(start..start + n)))
                .collect::<Option<Vec<&[f64]>>>(),
            ids.iter()
                .map(|&a| sim.acc.get(a).and_then(|c| c.get(start..start + n)))
                .collect::<Option<Vec<&[bool]>>>(),
        ) else {
            return Err(SimError::NothingServed {
                samples: sim.num_samples(),
                first_batch: n,
            });
        };
        session.observe(n, &BatchObservation { conf, acc })?;
        start += n;
    }
    Ok(session.finish(spec))
}
