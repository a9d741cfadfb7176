//! `worker gen-data`: the embedded workload ([`crate::workload`]) written in the artifact's data
//! layout, so that the original artifact and `worker simulate` both run on it.
//!
//! ```text
//! DIR/bootstrap_pickles/bootstrap_{dataset}_{model}.pickle
//! DIR/simulation_pickles/{dataset}_{model}.pickle
//! DIR/profile_pickles_bs/{model}_{bs}_profile.pickle            CV only, bs = 1, 2, ..., 64
//! DIR/profile_pickles_bs/{model}_{bs}_earlyexit_profile.pickle
//! DIR/batch_decisions/{model}_1_fixed_30.pickle                  CV
//! DIR/batch_decisions/{model}_azure.pickle                       NLP
//! DIR/README.txt                                                 what generated it
//! ```
//!
//! The batch decisions are what a task of the built-in paper spec computes
//! ([`batch_generated_trace`]): CV batches a fixed 30 qps trace ("30 fps video") with clockwork
//! and an SLO of 1 × the batch-size-1 vanilla latency, NLP the synthetic Azure trace (seeded
//! with the seed) with clockwork and an SLO of 4 × that latency (both multipliers can be
//! changed, see [`GenDataSpec`]). As in the artifact, one
//! decision file per model serves all its datasets, so its trace is as long as the longest
//! simulation stream among the datasets written (a shorter stream replays a prefix of the
//! decisions; with one dataset per model the file equals the task's own batching exactly).

use std::path::{Path, PathBuf};

use crate::artifact::write::{
    write_batch_decisions, write_file, write_profiles, write_ramp_data, AvgQps, DecisionRecord,
    WriteError,
};
use crate::batching::TfServeParams;
use crate::sim::{Family, LatencyTables, BATCH_SIZES};
use crate::task::{batch_generated_trace, BatchingScheme, GeneratedBatches, TaskError};
use crate::traces::{SyntheticShape, TraceSpec};
use crate::workload::{
    self, WorkloadError, CV_DATASETS, CV_MODELS, NLP_DATASETS, NLP_MODELS, WORKLOAD_VERSION,
};

/// Request rate of the CV trace ("30 fps video", the `30` in `{model}_1_fixed_30`).
pub const CV_QPS: f64 = 30.0;
/// SLO multiplier of the CV decisions (the `1` in `{model}_1_fixed_30`; the built-in spec's).
///
/// With exactly 1 a request has no slack at batch size 1, and clockwork's strategy deadline
/// `(arrival + slo) - M[1]` can round one ulp below the clock: the artifact's generator then
/// finds no valid strategy (an assertion in the original, [`TaskError::Batching`] here). On the
/// embedded presets at paper scale this happens for resnet50, resnet101, vgg11 and vgg13;
/// [`generate`] reports it before writing anything, and a larger multiplier avoids it.
pub const CV_SLO_MULTIPLIER: f64 = 2.0;
/// SLO multiplier of the NLP decisions (the built-in spec's). Generous, as for an interactive
/// text service, so that clockwork can form batches in the trace's busy minutes instead of
/// dropping their requests.
pub const NLP_SLO_MULTIPLIER: f64 = 32.0;
/// Mean offered load of the NLP trace, as a fraction of each model's batch-1 throughput (the
/// built-in spec's `[traces.azure] load`).
pub const NLP_TRACE_LOAD: f64 = 1.0;

/// Shape of the NLP trace (the built-in spec's `[traces.azure.shape]`): one busy function,
/// so milder minute-to-minute swings than the whole trace's population, a diurnal cycle, and
/// Poisson-like arrivals within a minute (bursts of one). The span is set by
/// [`NLP_TRACE_LOAD`] per model.
pub fn nlp_trace_shape(model_batch1_ms: f64, n: usize) -> SyntheticShape {
    SyntheticShape {
        minutes: crate::traces::minutes_for_load(n, model_batch1_ms, NLP_TRACE_LOAD),
        diurnal_amplitude: 0.3,
        minute_sigma: 0.5,
        burst_size: 1.0,
        ..SyntheticShape::default()
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GenDataSpec {
    /// Workload scale (1.0 = paper scale).
    pub scale: f64,
    /// Workload seed (also the synthetic Azure trace's seed).
    pub seed: u64,
    /// Models; `None` = all ten. Each must have a dataset of its family among `datasets`.
    pub models: Option<Vec<String>>,
    /// Datasets; `None` = all ten. Each must have a model of its family among `models`.
    pub datasets: Option<Vec<String>>,
    /// SLO multiplier of the CV decisions ([`CV_SLO_MULTIPLIER`] by default).
    pub cv_slo_multiplier: f64,
    /// SLO multiplier of the NLP decisions ([`NLP_SLO_MULTIPLIER`] by default).
    pub nlp_slo_multiplier: f64,
}

impl Default for GenDataSpec {
    fn default() -> Self {
        GenDataSpec {
            scale: 1.0,
            seed: 0,
            models: None,
            datasets: None,
            cv_slo_multiplier: CV_SLO_MULTIPLIER,
            nlp_slo_multiplier: NLP_SLO_MULTIPLIER,
        }
    }
}

/// The files of one model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPlan {
    /// Model name.
    pub model: String,
    /// CV or NLP.
    pub family: Family,
    /// Its datasets, in the order given.
    pub datasets: Vec<String>,
    /// File name under `batch_decisions/`.
    pub decision_file: String,
    /// The trace's name in the built-in spec (`video30` or `azure`).
    pub trace_name: &'static str,
    /// The trace batched for the decision file.
    pub trace: TraceSpec,
    /// The dataset whose stream length sets the trace length.
    pub trace_covers: String,
    /// SLO as a multiple of the batch-size-1 vanilla latency.
    pub slo_multiplier: f64,
}

/// A checked [`GenDataSpec`]: every model with its datasets.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Workload scale.
    pub scale: f64,
    /// Workload seed.
    pub seed: u64,
    /// The models, in the order given.
    pub models: Vec<ModelPlan>,
}

/// What [`generate`] wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenDataReport {
    /// Every file written (README.txt last), as paths under the output directory.
    pub files: Vec<PathBuf>,
}

/// Why `gen-data` cannot run or failed.
#[derive(Debug, thiserror::Error)]
pub enum GenDataError {
    /// A model named explicitly with no dataset of its family to go with.
    #[error("model {model} ({family}) has no {family} dataset among the datasets chosen")]
    ModelWithoutDataset {
        /// The model.
        model: String,
        /// Its family.
        family: &'static str,
    },
    /// A dataset named explicitly with no model of its family to go with.
    #[error("dataset {dataset} ({family}) has no {family} model among the models chosen")]
    DatasetWithoutModel {
        /// The dataset.
        dataset: String,
        /// Its family.
        family: &'static str,
    },
    /// An SLO multiplier that is not a finite number > 0.
    #[error("{family} SLO multiplier {value} is invalid; expected a finite number > 0")]
    BadSloMultiplier {
        /// `cv` or `nlp`.
        family: &'static str,
        /// The value given.
        value: f64,
    },
    /// The workload cannot be generated (e.g. a scale out of range).
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The decision trace cannot be generated or batched (the cause is the `source()`).
    #[error("batch decisions of {model} (clockwork, SLO {slo_multiplier} x V[1])")]
    Decisions {
        /// The model.
        model: String,
        /// The SLO multiplier used.
        slo_multiplier: f64,
        /// The cause (boxed: `TaskError` is large).
        source: Box<TaskError>,
    },
    /// A file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
}

fn dedup(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// Checks `spec` and pairs every model with the datasets of its family.
pub fn plan(spec: &GenDataSpec) -> Result<Plan, GenDataError> {
    for (family, value) in [
        (Family::Cv, spec.cv_slo_multiplier),
        (Family::Nlp, spec.nlp_slo_multiplier),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(GenDataError::BadSloMultiplier {
                family: family.name(),
                value,
            });
        }
    }
    let all = |a: &[&str], b: &[&str]| a.iter().chain(b).map(|s| s.to_string()).collect();
    let models = dedup(
        &spec
            .models
            .clone()
            .unwrap_or_else(|| all(&CV_MODELS, &NLP_MODELS)),
    );
    let datasets = dedup(
        &spec
            .datasets
            .clone()
            .unwrap_or_else(|| all(&CV_DATASETS, &NLP_DATASETS)),
    );
    let mut model_families = Vec::with_capacity(models.len());
    for m in &models {
        let family = workload::known_model(m)?;
        model_families.push(family);
    }
    let mut dataset_families = Vec::with_capacity(datasets.len());
    for d in &datasets {
        let family = workload::known_dataset(d)?;
        dataset_families.push(family);
    }
    let mut plans = Vec::new();
    for (m, &family) in models.iter().zip(&model_families) {
        let mine: Vec<String> = datasets
            .iter()
            .zip(&dataset_families)
            .filter(|&(_, &f)| f == family)
            .map(|(d, _)| d.clone())
            .collect();
        let Some(first) = mine.first() else {
            if spec.models.is_some() {
                return Err(GenDataError::ModelWithoutDataset {
                    model: m.clone(),
                    family: family.name(),
                });
            }
            continue;
        };
        for d in &mine {
            workload::check(m, d, spec.scale)?;
        }
        // The trace covers the longest stream of the family (as the sweep's tasks do); the
        // file records the longest selected dataset as the one it covers.
        let mut covers = first.clone();
        let mut longest = 0;
        for d in &mine {
            let len = workload::stream_len(d, spec.scale).unwrap_or(0);
            if len > longest {
                longest = len;
                covers = d.clone();
            }
        }
        let n = workload::family_trace_len(family, spec.scale);
        let (decision_file, trace_name, trace, slo_multiplier) = match family {
            Family::Cv => (
                format!("{m}_1_fixed_30.pickle"),
                "video30",
                TraceSpec::Fixed { n, qps: CV_QPS },
                spec.cv_slo_multiplier,
            ),
            Family::Nlp => (
                format!("{m}_azure.pickle"),
                "azure",
                TraceSpec::SyntheticAzure {
                    n,
                    seed: spec.seed,
                    shape: nlp_trace_shape(workload::models::preset(m).map_or(1.0, |p| p.v1_ms), n),
                },
                spec.nlp_slo_multiplier,
            ),
        };
        plans.push(ModelPlan {
            model: m.clone(),
            family,
            datasets: mine,
            decision_file,
            trace_name,
            trace,
            trace_covers: covers,
            slo_multiplier,
        });
    }
    if spec.datasets.is_some() {
        for (d, &f) in datasets.iter().zip(&dataset_families) {
            if !model_families.contains(&f) {
                return Err(GenDataError::DatasetWithoutModel {
                    dataset: d.clone(),
                    family: f.name(),
                });
            }
        }
    }
    Ok(Plan {
        scale: spec.scale,
        seed: spec.seed,
        models: plans,
    })
}

/// Requests per second of `arrivals`: their number over the time from the first to the last
/// (0 for fewer than two requests or a zero span).
pub fn average_qps(arrivals_ms: &[f64]) -> f64 {
    match (arrivals_ms.first(), arrivals_ms.last()) {
        (Some(&first), Some(&last)) if arrivals_ms.len() >= 2 && last > first => {
            arrivals_ms.len() as f64 / ((last - first) / 1000.0)
        }
        _ => 0.0,
    }
}

/// The decision file of `plan` batched on `tables`.
pub fn decision_record(
    plan: &ModelPlan,
    tables: &LatencyTables,
) -> Result<DecisionRecord, GenDataError> {
    let GeneratedBatches {
        arrivals_ms,
        slo_ms,
        outcome,
    } = batch_generated_trace(
        plan.trace_name,
        &plan.trace,
        BatchingScheme::Clockwork,
        plan.slo_multiplier,
        tables,
    )
    .map_err(|source| GenDataError::Decisions {
        model: plan.model.clone(),
        slo_multiplier: plan.slo_multiplier,
        source: Box::new(source),
    })?;
    let qps = average_qps(&arrivals_ms);
    let tf = TfServeParams::default();
    Ok(DecisionRecord {
        total_num_requests: outcome.total_num_requests(),
        batching_decision: outcome.batching_decision,
        per_request_stats: outcome.per_request_stats,
        batching_scheme: BatchingScheme::Clockwork.name().into(),
        arch: plan.model.clone(),
        slo: slo_ms,
        dataset: match plan.family {
            Family::Cv => "video".into(),
            Family::Nlp => plan.trace_covers.clone(),
        },
        avg_qps: match plan.family {
            Family::Cv => AvgQps::Float(qps),
            Family::Nlp => AvgQps::NumpyFloat64(qps),
        },
        end_time: outcome.end_time,
        max_batch_size: tf.max_batch_size,
        batch_timeout_ms: tf.batch_timeout_ms,
        max_enqueued_batches: tf.max_enqueued_batches,
    })
}

/// Writes every file of `plan` under `out` (created if missing; files already there with
/// other names are left alone), each atomically, and `README.txt` last. `invocation` is the
/// command line, recorded in the README. Progress goes to `tracing` (info level).
///
/// The decision files are computed first (they need only each model's latency tables), so a
/// trace that cannot be batched fails before anything is written.
pub fn generate(plan: &Plan, out: &Path, invocation: &str) -> Result<GenDataReport, GenDataError> {
    let mut models = Vec::with_capacity(plan.models.len());
    for mp in &plan.models {
        // The tables every workload of this model carries (`workload::generate` returns the
        // preset's), and so the tables `run_task` batches with.
        let tables = workload::latency_tables(&mp.model)?;
        let record = decision_record(mp, &tables)?;
        tracing::info!(
            "{}: {} requests batched into {} batches ({} served)",
            mp.decision_file,
            record.total_num_requests,
            record.batching_decision.len(),
            record.per_request_stats.iter().flatten().count(),
        );
        models.push((mp, tables, record));
    }

    // The user's folder (created as it resolves); our folders inside it must be real ones.
    std::fs::create_dir_all(out).map_err(|cause| WriteError::Io {
        path: out.to_path_buf(),
        cause,
    })?;
    for d in [
        "bootstrap_pickles",
        "simulation_pickles",
        "profile_pickles_bs",
        "batch_decisions",
    ] {
        // Created inside the user's folder: a link there is refused, never written through.
        let path = out.join(d);
        crate::safe_write::real_dir(&path).map_err(|cause| WriteError::Io { path, cause })?;
    }
    let pairs: usize = plan.models.iter().map(|m| m.datasets.len()).sum();
    let mut done = 0;
    let mut report = GenDataReport::default();
    for (mp, tables, record) in &models {
        for d in &mp.datasets {
            let w = workload::generate(&mp.model, d, plan.scale, plan.seed)?;
            debug_assert!(
                w.tables == *tables,
                "a model's tables do not depend on the dataset"
            );
            let boot = out
                .join("bootstrap_pickles")
                .join(format!("bootstrap_{d}_{}.pickle", mp.model));
            let sim = out
                .join("simulation_pickles")
                .join(format!("{d}_{}.pickle", mp.model));
            write_ramp_data(&boot, &w.bootstrap)?;
            write_ramp_data(&sim, &w.simulation)?;
            report.files.extend([boot, sim]);
            done += 1;
            tracing::info!(
                "[{done}/{pairs}] {} on {d}: {} bootstrap and {} simulation samples, {} ramps",
                mp.model,
                w.bootstrap.num_samples(),
                w.simulation.num_samples(),
                w.simulation.num_ramps(),
            );
        }
        let profiles = write_profiles(&out.join("profile_pickles_bs"), &mp.model, tables)?;
        report.files.extend(profiles);
        let path = out.join("batch_decisions").join(&mp.decision_file);
        write_batch_decisions(&path, record)?;
        report.files.push(path);
        tracing::info!("{}: profiles and {} written", mp.model, mp.decision_file);
    }
    let readme = out.join("README.txt");
    let summary: Vec<(&ModelPlan, &DecisionRecord)> =
        models.iter().map(|(mp, _, r)| (*mp, r)).collect();
    let text = readme_text(plan, out, invocation, &summary);
    write_file(&readme, |w| w.write_all(text.as_bytes()))?;
    report.files.push(readme);
    Ok(report)
}

fn readme_text(
    plan: &Plan,
    out: &Path,
    invocation: &str,
    models: &[(&ModelPlan, &DecisionRecord)],
) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let bs = BATCH_SIZES.map(|b| b.to_string()).join(", ");
    let _ = writeln!(
        t,
        "Synthetic inputs in the data layout of the Apparate artifact (SOSP'24), generated by\n\
         `worker gen-data` from the embedded workload; no real model, dataset or GPU was used.\n"
    );
    let _ = writeln!(t, "command:  {invocation}");
    let _ = writeln!(
        t,
        "version:  worker {}, embedded workload v{WORKLOAD_VERSION}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(t, "scale:    {} (1 = paper scale)", plan.scale);
    let _ = writeln!(t, "seed:     {}\n", plan.seed);
    let _ = writeln!(
        t,
        "bootstrap_pickles/bootstrap_{{dataset}}_{{model}}.pickle  bootstrap samples\n\
         simulation_pickles/{{dataset}}_{{model}}.pickle           the served sample stream\n\
         profile_pickles_bs/                                   profiles at batch sizes {bs}\n\
         batch_decisions/                                      one decision file per model\n"
    );
    for (mp, record) in models {
        let _ = writeln!(
            t,
            "{} ({}): {}",
            mp.model,
            mp.family.name(),
            mp.datasets.join(", ")
        );
        let trace = match &mp.trace {
            TraceSpec::Fixed { n, qps } => format!("fixed {qps} qps, {n} requests"),
            TraceSpec::SyntheticAzure { n, seed, .. } => {
                format!("synthetic Azure, {n} requests, seed {seed}")
            }
            other => other.kind().to_string(),
        };
        let _ = writeln!(
            t,
            "  batch_decisions/{}: clockwork on trace {} ({trace}, the length of {}'s stream), \
             SLO {} x V[1] = {} ms, {} batches",
            mp.decision_file,
            mp.trace_name,
            mp.trace_covers,
            mp.slo_multiplier,
            record.slo,
            record.batching_decision.len()
        );
    }
    let _ = writeln!(
        t,
        "\nOne decision file per model is shared by all its datasets, as in the artifact; its\n\
         trace is as long as the longest simulation stream of the model's datasets here.\n"
    );
    if let Some((mp, _)) = models.first() {
        let d = &mp.datasets[0];
        let (dataset_flag, arch, batch_size) = match mp.family {
            Family::Cv => ("video".to_string(), format!("{}_{d}", mp.model), 4),
            Family::Nlp => (d.clone(), mp.model.clone(), 1),
        };
        let dir = out.display();
        let _ = writeln!(
            t,
            "Replay one pair (the artifact's controller flags):\n  worker simulate --dataset {dataset_flag} --arch {arch} --batch-size {batch_size} \\\n    \
             --profile-dir {dir}/profile_pickles_bs \\\n    \
             --bootstrap-pickle-path {dir}/bootstrap_pickles/bootstrap_{d}_{m}.pickle \\\n    \
             --simulation-pickle-path {dir}/simulation_pickles/{d}_{m}.pickle \\\n    \
             --batch-decision-path {dir}/batch_decisions/{file} --out OUT",
            m = mp.model,
            file = mp.decision_file,
        );
    }
    t
}
