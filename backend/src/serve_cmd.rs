//! `ee-backend serve`: the Apparate controller serving a real model live (issue #14).
//!
//! Two ways to say what to serve:
//! * flags (a user at a terminal): `--model --weights --data --inputs <gen-data folder>`, a
//!   trace (`--trace JSON` or `--arrivals FILE`), the batching scheme and the SLO;
//! * `--task TASK.json --inputs DIR` (a sweep's worker): the task's canonical spec, with backend
//!   inputs and `live` set, over the folder its inputs were built into.
//!
//! Everything is checked before the first request is served. Ctrl-C (or SIGTERM) stops before
//! the next batch: the files are written for what was served, `serve.json` says
//! `"interrupted": true` and the exit status is 130.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use apparate::serve::{
    serve_task, EarlyExitModel, ReplayModel, ServeClock, ServeOptions, DEFAULT_SLOW_FACTOR,
};
use apparate::sim::Family;
use apparate::storage::Storage;
use apparate::task::{BatchingScheme, Inputs, LiveClock, LiveRun, TaskParams, TaskSpec, TaskTrace};
use apparate::traces::TraceSpec;
use backend::device::{select, DeviceChoice};
use backend::gendata::Names;
use backend::live::LiveModel;
use backend::open::{open_model, open_samples};
use burn::tensor::backend::Backend;

use crate::args::{bar, NameArgs};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A task to serve: its canonical spec as JSON (backend inputs, `live` set), as a sweep's
    /// worker writes it. Model, data, device, trace and parameters then come from the task.
    #[arg(long, conflicts_with_all = ["model", "weights", "data", "trace", "arrivals", "batching", "slo_multiplier", "batch_size", "name", "dataset"])]
    pub task: Option<PathBuf>,
    /// The model (e.g. digits-cnn).
    #[arg(long, required_unless_present = "task")]
    pub model: Option<String>,
    /// Its weights (safetensors).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The dataset the requests carry (the one `gen-data` was run on: its simulation part is
    /// served, in order).
    #[arg(long, required_unless_present = "task")]
    pub data: Option<PathBuf>,
    /// The device (with --task: the task's).
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// The data folder `ee-backend gen-data` wrote for this model and data: ramp heads
    /// (ramps.safetensors), profiles, bootstrap and recorded samples.
    #[arg(long)]
    pub inputs: PathBuf,
    #[command(flatten)]
    pub names: NameArgs,
    /// The request trace, a trace table of the sweep spec as JSON, e.g.
    /// '{"kind": "poisson", "n": 500, "qps": 30}'. Default: fixed 30 requests/s, as many
    /// requests as the stream holds samples.
    #[arg(long, conflicts_with = "arrivals")]
    pub trace: Option<String>,
    /// Requests read from a file: one arrival time (ms from the start) per line,
    /// non-decreasing; `#` starts a comment.
    #[arg(long)]
    pub arrivals: Option<PathBuf>,
    /// How requests are batched: clockwork, tf_serve or uniform (fixed chunks of
    /// --batch-size, back to back, no trace).
    #[arg(long, default_value = "clockwork")]
    pub batching: String,
    /// The SLO as a multiple of the model's batch-size-1 latency in the profile (1 to 1000).
    #[arg(long, default_value_t = 2.0)]
    pub slo_multiplier: f64,
    /// The controller's --batch_size (bootstrap profile size; the uniform chunk). Default: 4
    /// for CV, 1 for NLP (the artifact's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// realtime (arrivals on the wall clock), fast (idle gaps skipped, inference measured) or
    /// virtual (every batch takes its profiled time: reproducible). With --task: the task's.
    #[arg(long)]
    pub clock: Option<String>,
    /// model (run the model) or replay (answer from the recorded samples in --inputs; no
    /// model is loaded).
    #[arg(long, default_value = "model")]
    pub executor: String,
    /// A batch measured more than this factor away from the profile is logged and counted.
    #[arg(long, default_value_t = DEFAULT_SLOW_FACTOR)]
    pub slow_factor: f64,
    /// Re-profile a batch size online after this many slow batches of it in a row (off by
    /// default: the faithful path never changes the profile).
    #[arg(long)]
    pub reprofile_after: Option<usize>,
    /// Vanilla serving, the baseline: the same trace, batching and clock, but no ramp runs and
    /// the controller decides nothing (every request takes the final exit). Writes
    /// requests.parquet, serve.json and timing.jsonl.
    #[arg(long, conflicts_with_all = ["task", "executor", "reprofile_after"])]
    pub vanilla: bool,
    /// Tokens per text sample (NLP; as gen-data).
    #[arg(long, default_value_t = 128)]
    pub seq_len: usize,
    /// The folder to write the result files into (created; refused when it holds files,
    /// unless --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the files of a folder that holds files.
    #[arg(long)]
    pub overwrite: bool,
    /// plain, or zstd (batches.jsonl and log.txt compressed, as a sweep stores them).
    #[arg(long, default_value = "plain")]
    pub store: Storage,
}

/// What to serve, resolved and checked.
struct Plan {
    /// The task as it runs (artifact inputs on --inputs).
    spec: TaskSpec,
    model: String,
    weights: Option<PathBuf>,
    data: PathBuf,
    device: DeviceChoice,
    clock: ServeClock,
    arrivals: Option<Vec<f64>>,
    replay: bool,
    storage: Storage,
}

/// Runs the command; `Ok(true)` when it was interrupted (the files hold what was served).
pub fn run(a: ServeArgs) -> Result<bool> {
    let plan = plan(&a)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handler")?;
    }
    if plan.replay {
        let sim_path = match &plan.spec.inputs {
            Inputs::Artifact { dir } => dir.join(&plan.spec.input_files()[1]),
            _ => bail!("internal: the served task has no inputs folder"),
        };
        let recorded = apparate::artifact::read_ramp_data(&sim_path)?;
        let mut model = ReplayModel::new(&recorded);
        return serve_with(&a, &plan, &mut model, "replay", &stop);
    }
    let selected = select(plan.device)?;
    let words = format!("{} ({})", selected.describe(), selected.why());
    tracing::info!("device: {words}");
    backend::with_backend!(&selected, B, dev, {
        serve_on::<B>(&a, &plan, words.clone(), &stop, &dev)
    })
}

fn serve_on<B: Backend>(
    a: &ServeArgs,
    plan: &Plan,
    words: String,
    stop: &Arc<AtomicBool>,
    dev: &B::Device,
) -> Result<bool> {
    let dev = dev.clone();
    let model = open_model::<B>(&plan.model, plan.weights.as_deref(), &dev)?;
    let ramps_file = match &plan.spec.inputs {
        Inputs::Artifact { dir } => dir.join("ramps.safetensors"),
        _ => bail!("internal: the served task has no inputs folder"),
    };
    let ramps = backend::weights::load(model.ramps(&dev), &ramps_file)?;
    let (samples, _) = open_samples(&model, &plan.data, plan.weights.as_deref(), a.seq_len, &dev)?;
    // The stream is the simulation part gen-data recorded: the last samples of the data.
    let stream = recorded_stream(&plan.spec, &plan.data, samples.len())?;
    let mut live = LiveModel::new(
        &model,
        &ramps,
        &samples,
        stream,
        dev.clone(),
        words,
        a.seq_len,
    )?;
    serve_with(a, plan, &mut live, "model", stop)
}

fn serve_with<M: EarlyExitModel>(
    a: &ServeArgs,
    plan: &Plan,
    model: &mut M,
    executor: &str,
    stop: &Arc<AtomicBool>,
) -> Result<bool> {
    let pb = bar(model.stream_len() as u64, "serve");
    let progress = |done: usize| pb.set_position(done as u64);
    let opts = ServeOptions {
        clock: plan.clock,
        slow_factor: a.slow_factor,
        reprofile_after: a.reprofile_after,
        stop: Some(stop),
        progress: Some(&progress),
        vanilla: a.vanilla,
    };
    tracing::info!(
        "serving {} on {} with the {} clock into {}",
        plan.spec.trace.name(),
        model.device(),
        plan.clock.name(),
        a.out.display()
    );
    let outcome = serve_task(
        &plan.spec,
        model,
        executor,
        plan.arrivals.clone(),
        &opts,
        &a.out,
        plan.storage,
    );
    pb.finish_and_clear();
    let outcome = outcome?;
    let r = &outcome.report;
    let lat: serde_json::Value = serde_json::from_slice(&std::fs::read(a.out.join("serve.json"))?)?;
    let accuracy = match &outcome.summary {
        Some(summary) => format!("accuracy {:.2} %", summary.overall_accuracy),
        None => "vanilla (no early exits)".to_string(),
    };
    println!(
        "served {} of {} requests in {} batches ({} samples observed){}; {accuracy}; latency p50 {} ms, p95 {} ms; controller {} µs per batch (median); {} slow batches",
        r.served,
        r.requests,
        r.batches,
        r.samples,
        if r.interrupted { ", interrupted" } else { "" },
        fmt_ms(&lat["latency_ms"]["median"]),
        fmt_ms(&lat["latency_ms"]["p95"]),
        fmt_ms(&lat["controller_us"]["median"]),
        r.slow_batches,
    );
    println!("wrote {}", a.out.display());
    Ok(r.interrupted)
}

fn fmt_ms(v: &serde_json::Value) -> String {
    v.as_f64().map_or("-".to_string(), |x| format!("{x:.3}"))
}

/// Everything checked before a model is loaded or a request served.
fn plan(a: &ServeArgs) -> Result<Plan> {
    let replay = match a.executor.as_str() {
        "model" => false,
        "replay" => true,
        other => bail!("--executor {other:?}: expected model or replay"),
    };
    let storage = a.store;
    if !(a.slow_factor.is_finite() && a.slow_factor > 1.0) {
        bail!("--slow-factor {}: expected a number above 1", a.slow_factor);
    }
    if a.reprofile_after == Some(0) {
        bail!("--reprofile-after 0: expected at least 1");
    }
    let clock_flag = a
        .clock
        .as_deref()
        .map(|c| {
            ServeClock::parse(c)
                .ok_or_else(|| anyhow!("--clock {c:?}: expected realtime, fast or virtual"))
        })
        .transpose()?;
    if !a.inputs.is_dir() {
        bail!(
            "--inputs {}: expected the folder `ee-backend gen-data` wrote (no such folder)",
            a.inputs.display()
        );
    }
    let inputs = Inputs::Artifact {
        dir: a.inputs.clone(),
    };
    let (spec, model, weights, data, device, clock, arrivals) = match &a.task {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--task {}", path.display()))?;
            let task: TaskSpec = serde_json::from_str(&text).map_err(|e| {
                anyhow!(
                    "--task {}: line {}, column {}: {e}",
                    path.display(),
                    e.line(),
                    e.column()
                )
            })?;
            let Inputs::Backend {
                model,
                weights,
                data,
                device,
                ..
            } = &task.inputs
            else {
                bail!(
                    "--task {}: expected a task with backend inputs (a real model), found other inputs",
                    path.display()
                );
            };
            let clock = match (&task.live, clock_flag) {
                (_, Some(c)) => c,
                (Some(live), None) => live.clock.into(),
                (None, None) => ServeClock::Fast,
            };
            let device = a.device.unwrap_or(match device {
                apparate::task::BackendDevice::Auto => DeviceChoice::Auto,
                apparate::task::BackendDevice::Cpu => DeviceChoice::Cpu,
                apparate::task::BackendDevice::Cuda => DeviceChoice::Cuda,
            });
            let (model, weights, data) = (model.clone(), Some(weights.clone()), data.clone());
            let mut spec = task;
            spec.inputs = inputs;
            (spec, model, weights, data, device, clock, None)
        }
        None => {
            let (Some(model), Some(data)) = (&a.model, &a.data) else {
                bail!("--model and --data are required without --task");
            };
            let family = backend::models::registry::info(model)?.family;
            let names = Names::new(
                a.names.name.as_deref().unwrap_or(model),
                a.names.dataset.as_deref(),
                family,
            )?;
            let batching = match a.batching.as_str() {
                "clockwork" => BatchingScheme::Clockwork,
                "tf_serve" => BatchingScheme::TfServe,
                "uniform" => BatchingScheme::Uniform,
                other => bail!("--batching {other:?}: expected clockwork, tf_serve or uniform"),
            };
            // The sweep spec's range: below 1 no request can meet its SLO.
            let (lo, hi) = apparate::sweep::validate::SLO_MULTIPLIER_RANGE;
            if !(lo..=hi).contains(&a.slo_multiplier) {
                bail!(
                    "--slo-multiplier {}: expected a number in [{lo}, {hi}] (a multiple of the model's batch-1 latency)",
                    a.slo_multiplier
                );
            }
            let batch_size = a.batch_size.unwrap_or(match family {
                Family::Cv => 4,
                Family::Nlp => 1,
            });
            let sim_pickle = a.inputs.join(names.simulation_path());
            let recorded = apparate::artifact::read_ramp_data(&sim_pickle).with_context(|| {
                format!(
                    "--inputs {}: the recorded samples of {} on {}",
                    a.inputs.display(),
                    names.name,
                    names.dataset
                )
            })?;
            let stream = recorded.num_samples().saturating_sub(1).max(1);
            let (trace_spec, arrivals) = match (&a.trace, &a.arrivals) {
                (Some(json), _) => {
                    let t: TraceSpec =
                        serde_json::from_str(json).map_err(|e| anyhow!("--trace {json}: {e}"))?;
                    t.check().map_err(|e| anyhow!("--trace {json}: {e}"))?;
                    (t, None)
                }
                (None, Some(file)) => {
                    let arr = read_arrivals(file)?;
                    (
                        TraceSpec::Fixed {
                            n: arr.len(),
                            qps: 30.0,
                        },
                        Some(arr),
                    )
                }
                (None, None) => (
                    TraceSpec::Fixed {
                        n: stream,
                        qps: 30.0,
                    },
                    None,
                ),
            };
            let trace_name = match (&a.trace, &a.arrivals) {
                (Some(_), _) => trace_spec.kind().to_string(),
                (None, Some(file)) => format!("arrivals:{}", file.display()),
                (None, None) => "fixed_30".to_string(),
            };
            let clock = clock_flag.unwrap_or(ServeClock::Realtime);
            let spec = TaskSpec {
                grid: "serve".into(),
                family,
                model: names.name.clone(),
                dataset: names.dataset.clone(),
                trace: TaskTrace::Generated {
                    name: trace_name,
                    spec: trace_spec,
                },
                params: TaskParams {
                    batching,
                    slo_multiplier: a.slo_multiplier,
                    batch_size,
                    static_ramps: apparate::sim::StaticRamps::AllSites,
                    overrides: apparate::sim::Overrides::default(),
                },
                seed: 0,
                inputs,
                live: match clock {
                    ServeClock::Realtime => Some(LiveRun {
                        clock: LiveClock::Realtime,
                    }),
                    ServeClock::Fast => Some(LiveRun {
                        clock: LiveClock::Fast,
                    }),
                    ServeClock::Virtual => None,
                },
            };
            let device = a.device.unwrap_or(DeviceChoice::Auto);
            (
                spec,
                model.clone(),
                a.weights.clone(),
                data.clone(),
                device,
                clock,
                arrivals,
            )
        }
    };
    if !replay {
        backend::models::registry::info(&model)?;
        if !data.exists() {
            bail!("--data {}: no such file or folder", data.display());
        }
    }
    prepare_out(&a.out, a.overwrite)?;
    Ok(Plan {
        spec,
        model,
        weights,
        data,
        device,
        clock,
        arrivals,
        replay,
        storage,
    })
}

/// Where the recorded simulation samples sit in the `n` samples of `data`: gen-data wrote the
/// first ones as the bootstrap pickle and the rest as the simulation pickle.
fn recorded_stream(spec: &TaskSpec, data: &Path, n: usize) -> Result<std::ops::Range<usize>> {
    let Inputs::Artifact { dir } = &spec.inputs else {
        bail!("internal: the served task has no inputs folder");
    };
    let files = spec.input_files();
    let count = |k: usize| -> Result<usize> {
        Ok(apparate::artifact::read_ramp_data(&dir.join(&files[k]))?.num_samples())
    };
    let (boot, sim) = (count(0)?, count(1)?);
    if boot + sim != n {
        bail!(
            "--data {}: {n} samples, but {} recorded {boot} bootstrap and {sim} simulation samples: serve the data gen-data ran on",
            data.display(),
            dir.display()
        );
    }
    Ok(boot..n)
}

/// One arrival time (ms) per line, non-decreasing, finite, at least one.
fn read_arrivals(path: &Path) -> Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--arrivals {}", path.display()))?;
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let t: f64 = line.parse().map_err(|_| {
            anyhow!(
                "--arrivals {}: line {}: expected an arrival time in ms, found {line:?}",
                path.display(),
                k + 1
            )
        })?;
        if !t.is_finite() || t < 0.0 || out.last().is_some_and(|&p| t < p) {
            bail!(
                "--arrivals {}: line {}: expected a finite time >= 0 and >= the previous one, found {t}",
                path.display(),
                k + 1
            );
        }
        if out.len() == apparate::traces::MAX_REQUESTS {
            bail!(
                "--arrivals {}: line {}: more than {} requests (the traces' limit)",
                path.display(),
                k + 1,
                apparate::traces::MAX_REQUESTS
            );
        }
        out.push(t);
    }
    if out.is_empty() {
        bail!("--arrivals {}: no arrival times", path.display());
    }
    Ok(out)
}

/// Refuses an `out` folder that holds files unless `overwrite` (the files are written, and the
/// folder created, when the run ends).
fn prepare_out(out: &Path, overwrite: bool) -> Result<()> {
    if out.exists() {
        let has_files = std::fs::read_dir(out)
            .with_context(|| format!("--out {}", out.display()))?
            .next()
            .is_some();
        if has_files && !overwrite {
            bail!(
                "--out {}: the folder holds files (pass --overwrite to replace them)",
                out.display()
            );
        }
    }
    Ok(())
}
