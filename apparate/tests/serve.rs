//! `serve::serve_task` (issue #14): the live serving loop with the replay model under the
//! virtual clock writes exactly the files `task::run_task` writes, for traces batched online
//! (clockwork, tf_serve), recorded decision files and uniform chunks; a stopped run keeps
//! complete files for what it served.

use crate::util::{auburn_task_over, fresh_temp_dir, golden_dir};
use apparate::output::read_requests_parquet;
use apparate::serve::{
    serve_task, EarlyExitModel, ModelBatch, ReplayModel, ServeError, ServeOptions,
};
use apparate::sim::config::RampConfig;
use apparate::sim::{Family, Overrides, RampData, StaticRamps};
use apparate::storage::Storage;
use apparate::task::{
    run_task, BatchingScheme, Inputs, TaskParams, TaskSpec, TaskTrace, RESULT_FILES,
};
use apparate::traces::TraceSpec;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

const SCALE: f64 = 0.02;

fn embedded_task(model: &str, dataset: &str, batching: BatchingScheme, qps: f64) -> TaskSpec {
    let family = apparate::workload::model_family(model).unwrap();
    TaskSpec {
        grid: "serve".into(),
        family,
        model: model.into(),
        dataset: dataset.into(),
        trace: TaskTrace::Generated {
            name: format!("poisson{qps}"),
            spec: TraceSpec::Poisson {
                n: 3000,
                qps,
                seed: 7,
            },
        },
        params: TaskParams {
            batching,
            slo_multiplier: 2.0,
            batch_size: if family == Family::Cv { 4 } else { 1 },
            static_ramps: StaticRamps::AllSites,
            overrides: Overrides::default(),
        },
        seed: 0,
        inputs: Inputs::Embedded { scale: SCALE },
        live: None,
    }
}

/// The recorded samples of `spec` (what the replay model answers from).
fn samples(spec: &TaskSpec) -> RampData {
    match &spec.inputs {
        Inputs::Embedded { scale } => {
            apparate::workload::generate(&spec.model, &spec.dataset, *scale, spec.seed)
                .unwrap()
                .simulation
        }
        Inputs::Artifact { dir } => {
            apparate::artifact::read_ramp_data(&dir.join(&spec.input_files()[1])).unwrap()
        }
        Inputs::Backend { .. } => unreachable!(),
    }
}

/// The result files of `a` (run_task) and `b` (serve_task) are byte-equal, except that with
/// `padded` (tf_serve) `requests.parquet` may differ in `queueing_ms` from the first padding
/// slot on: the server gives each sample its own request's queueing (a padding slot has none),
/// the simulator maps the k-th sample to the k-th served request of the whole offline run.
fn same_files(a: &Path, b: &Path, what: &str, padded: bool) {
    for f in RESULT_FILES {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        if f == "requests.parquet" && padded {
            continue;
        }
        assert!(
            x == y,
            "{what}: {f} differs between run_task and serve_task"
        );
    }
    if padded {
        let sim = read_requests_parquet(&a.join("requests.parquet")).unwrap();
        let live = read_requests_parquet(&b.join("requests.parquet")).unwrap();
        assert_eq!(sim.len(), live.len());
        let first_pad = live.iter().position(|r| r.queueing_ms.is_none());
        assert!(first_pad.is_some(), "{what}: tf_serve padded no batch");
        for (k, (s, l)) in sim.iter().zip(&live).enumerate() {
            let mut l = l.clone();
            if k >= first_pad.unwrap_or(usize::MAX) {
                l.queueing_ms = s.queueing_ms;
            }
            assert_eq!(s, &l, "{what}: request {k}");
        }
    }
}

fn check_replay_equals_task(spec: &TaskSpec, what: &str) -> apparate::serve::ServeOutcome {
    let padded = spec.params.batching == BatchingScheme::TfServe;
    let dir = fresh_temp_dir(&format!("serve-{what}"));
    let (sim_dir, live_dir) = (dir.join("simulated"), dir.join("served"));
    run_task(spec, &sim_dir).unwrap();
    let recorded = samples(spec);
    let outcome = serve_task(
        spec,
        &mut ReplayModel::new(&recorded),
        "replay",
        None,
        &ServeOptions::default(),
        &live_dir,
        Storage::Plain,
    )
    .unwrap();
    same_files(&sim_dir, &live_dir, what, padded);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(live_dir.join("serve.json")).unwrap()).unwrap();
    assert_eq!(report["interrupted"], false);
    assert_eq!(report["executor"], "replay");
    assert_eq!(report["clock"], "virtual");
    let rows = read_requests_parquet(&live_dir.join("requests.parquet")).unwrap();
    assert_eq!(report["samples"].as_u64(), Some(rows.len() as u64));
    let timing = std::fs::read_to_string(live_dir.join("timing.jsonl")).unwrap();
    assert_eq!(
        timing.lines().count() as u64,
        report["batches"].as_u64().unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

#[test]
fn replay_serving_equals_the_task_with_clockwork_online() {
    let spec = embedded_task("resnet18", "auburn", BatchingScheme::Clockwork, 60.0);
    let o = check_replay_equals_task(&spec, "clockwork");
    assert!(o.report.batches > 100 && o.report.served > 0);
    let nlp = embedded_task("bert-base", "imdb", BatchingScheme::Clockwork, 40.0);
    check_replay_equals_task(&nlp, "clockwork-nlp");
}

#[test]
fn replay_serving_equals_the_task_with_tf_serve_online() {
    let spec = embedded_task("resnet50", "hampton", BatchingScheme::TfServe, 90.0);
    let o = check_replay_equals_task(&spec, "tf-serve");
    assert!(o.report.batches > 100);
}

#[test]
fn replay_serving_equals_the_task_on_recorded_decisions_and_uniform_chunks() {
    let spec = auburn_task_over(golden_dir().join("cv-resnet18-auburn/data"));
    check_replay_equals_task(&spec, "decisions");
    let mut uniform = embedded_task("vgg16", "oxford", BatchingScheme::Uniform, 30.0);
    uniform.params.batch_size = 8;
    check_replay_equals_task(&uniform, "uniform");
}

/// Replay that asks the run to stop after `after` batches (as a Ctrl-C handler would).
struct StopAfter<'a> {
    inner: ReplayModel<'a>,
    stop: &'a AtomicBool,
    after: usize,
    ran: usize,
}

impl EarlyExitModel for StopAfter<'_> {
    type Error = <ReplayModel<'static> as EarlyExitModel>::Error;
    fn stream_len(&self) -> usize {
        self.inner.stream_len()
    }
    fn run_batch(
        &mut self,
        samples: std::ops::Range<usize>,
        config: &RampConfig,
    ) -> Result<ModelBatch, Self::Error> {
        self.ran += 1;
        if self.ran == self.after {
            self.stop.store(true, Ordering::SeqCst);
        }
        self.inner.run_batch(samples, config)
    }
    fn device(&self) -> String {
        self.inner.device()
    }
}

#[test]
fn a_stopped_run_keeps_complete_files_for_what_it_served() {
    let spec = embedded_task("resnet18", "auburn", BatchingScheme::Clockwork, 60.0);
    let recorded = samples(&spec);
    let stop = AtomicBool::new(false);
    let dir = fresh_temp_dir("serve-stopped");
    let opts = ServeOptions {
        stop: Some(&stop),
        ..ServeOptions::default()
    };
    let mut model = StopAfter {
        inner: ReplayModel::new(&recorded),
        stop: &stop,
        after: 25,
        ran: 0,
    };
    let o = serve_task(
        &spec,
        &mut model,
        "replay",
        None,
        &opts,
        &dir,
        Storage::Plain,
    )
    .unwrap();
    assert!(o.report.interrupted);
    assert_eq!(o.report.batches, 25);
    let rows = read_requests_parquet(&dir.join("requests.parquet")).unwrap();
    assert_eq!(rows.len(), o.report.samples);
    assert_eq!(rows.last().unwrap().batch, 25);
    for f in RESULT_FILES.iter().chain(&apparate::task::LIVE_FILES) {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    let lines = std::fs::read_to_string(dir.join("batches.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 25);
    // Every served request appears once: request ids 0.. in order.
    let ids: Vec<i64> = rows.iter().map(|r| r.request).collect();
    assert_eq!(ids, (0..rows.len() as i64).collect::<Vec<_>>());

    // Stopped before the first batch: nothing served is an error, not an empty result.
    let stop = AtomicBool::new(true);
    let opts = ServeOptions {
        stop: Some(&stop),
        ..ServeOptions::default()
    };
    let err = serve_task(
        &spec,
        &mut ReplayModel::new(&recorded),
        "replay",
        None,
        &opts,
        &dir.join("none"),
        Storage::Plain,
    )
    .unwrap_err();
    assert!(matches!(err, ServeError::StoppedBeforeServing), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replay that reports every batch as taking `factor` times the profile, and re-profiles a
/// batch size as `factor` times its table.
struct Slow<'a> {
    inner: ReplayModel<'a>,
    tables: apparate::sim::LatencyTables,
    factor: f64,
    reprofiled: Vec<usize>,
}

impl EarlyExitModel for Slow<'_> {
    type Error = <ReplayModel<'static> as EarlyExitModel>::Error;
    fn stream_len(&self) -> usize {
        self.inner.stream_len()
    }
    fn run_batch(
        &mut self,
        samples: std::ops::Range<usize>,
        config: &RampConfig,
    ) -> Result<ModelBatch, Self::Error> {
        let n = samples.len();
        let mut out = self.inner.run_batch(samples, config)?;
        let bs = apparate::sim::BatchSize::round_up(n).unwrap();
        let table = self.tables.get(bs);
        let lat = table.exit_latencies(&config.ramp_ids);
        out.measured = Some(apparate::serve::Measured {
            ramp_ms: lat.per_exit[..config.ramp_ids.len()]
                .iter()
                .map(|x| x * self.factor)
                .collect(),
            final_ms: lat.no_exit() * self.factor,
        });
        Ok(out)
    }
    fn reprofile(&mut self, bs: usize) -> Result<Option<apparate::sim::LatencyTable>, Self::Error> {
        self.reprofiled.push(bs);
        let b = apparate::sim::BatchSize::exact(bs).unwrap();
        let mut t = self.tables.get(b).clone();
        t.vanilla_ms *= self.factor;
        for r in &mut t.ramps {
            r.vanilla_up_to_ms *= self.factor;
            r.ramp_ms *= self.factor;
        }
        Ok(Some(t))
    }
    fn device(&self) -> String {
        "slow replay".into()
    }
}

#[test]
fn slow_batches_are_counted_and_reprofiled_only_when_asked() {
    let spec = embedded_task("resnet18", "auburn", BatchingScheme::Clockwork, 60.0);
    let recorded = samples(&spec);
    let tables = apparate::workload::latency_tables("resnet18").unwrap();
    let run = |reprofile_after: Option<usize>| {
        let dir = fresh_temp_dir(&format!("serve-slow-{reprofile_after:?}"));
        let mut model = Slow {
            inner: ReplayModel::new(&recorded),
            tables: tables.clone(),
            factor: 5.0,
            reprofiled: Vec::new(),
        };
        let opts = ServeOptions {
            reprofile_after,
            ..ServeOptions::default()
        };
        let o = serve_task(&spec, &mut model, "slow", None, &opts, &dir, Storage::Plain).unwrap();
        let timing: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("timing.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        (o, model.reprofiled, timing)
    };
    // Faithful default: every batch is 5x the profile, counted, the profile kept.
    let (o, reprofiled, timing) = run(None);
    assert_eq!(o.report.slow_batches, o.report.batches);
    assert!(reprofiled.is_empty() && o.report.reprofiled.is_empty());
    assert!(timing.iter().all(|t| t["slow"] == true));
    // With --reprofile-after 3: each batch size seen slow 3 times in a row is measured again,
    // and from then on the prediction matches (no longer slow).
    let (o, reprofiled, timing) = run(Some(3));
    assert!(!reprofiled.is_empty());
    assert_eq!(o.report.reprofiled, reprofiled);
    for bs in &reprofiled {
        let rows: Vec<_> = timing.iter().filter(|t| t["bs"] == *bs).collect();
        assert!(rows[..3].iter().all(|t| t["slow"] == true), "bs {bs}");
        assert!(rows[3..].iter().all(|t| t["slow"] == false), "bs {bs}");
    }
    assert!(o.report.slow_batches < o.report.batches);
}
