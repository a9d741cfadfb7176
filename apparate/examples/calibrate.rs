//! Calibration report for the embedded workload: for each model × dataset, the Fig. 12 median
//! win (queueing included), accuracy, the oracle's win and the static baseline's accuracy.
//!
//! `cargo run --release -p apparate --example calibrate -- [SCALE] [MODEL,..] [DATASET,..]`
//!
//! The tasks are those of the built-in spec (`specs/paper.toml`), for one seed. Environment:
//! `KEEP=1` keeps each task's output in the temp dir; `SEED=N` picks the workload and trace
//! seed (default 0).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

use apparate::output::{percentile, read_requests_parquet};
use apparate::sim::{Family, Overrides, StaticRamps};
use apparate::task::{run_task, BatchingScheme, Inputs, TaskParams, TaskSpec, TaskTrace};
use apparate::traces::TraceSpec;
use apparate::workload::{self, CV_DATASETS, CV_MODELS, NLP_DATASETS, NLP_MODELS};
use std::sync::Mutex;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, 50.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.1);
    let models: Vec<String> = args
        .get(2)
        .map(|s| s.split(',').map(String::from).collect())
        .unwrap_or_else(|| {
            CV_MODELS
                .iter()
                .chain(NLP_MODELS.iter())
                .map(|s| s.to_string())
                .collect()
        });
    let datasets: Vec<String> = args
        .get(3)
        .map(|s| s.split(',').map(String::from).collect())
        .unwrap_or_else(|| {
            CV_DATASETS
                .iter()
                .chain(NLP_DATASETS.iter())
                .map(|s| s.to_string())
                .collect()
        });
    let mut jobs = Vec::new();
    for d in &datasets {
        for m in &models {
            if workload::model_family(m) == workload::dataset_family(d) {
                jobs.push((m.clone(), d.clone()));
            }
        }
    }
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let rows = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((k, (m, d))) = queue.lock().expect("lock").pop() else { break };
                let family = workload::model_family(&m).expect("model");
                let n = workload::stream_len(&d, scale).expect("dataset");
                let seed: u64 = std::env::var("SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
                let (trace, slo, bs) = match family {
                    Family::Cv => (TraceSpec::Fixed { n, qps: 30.0 }, apparate::gendata::CV_SLO_MULTIPLIER, 4),
                    Family::Nlp => {
                        // As the built-in spec: one trace per model, as long as the longest
                        // review stream, at the spec's load.
                        let len = workload::family_trace_len(family, scale);
                        let v1 = workload::models::preset(&m).expect("model").v1_ms;
                        (
                            TraceSpec::SyntheticAzure {
                                n: len,
                                seed,
                                shape: apparate::gendata::nlp_trace_shape(v1, len),
                            },
                            apparate::gendata::NLP_SLO_MULTIPLIER,
                            1,
                        )
                    }
                };
                let spec = TaskSpec {
                    grid: family.name().into(),
                    family,
                    model: m.clone(),
                    dataset: d.clone(),
                    trace: TaskTrace::Generated { name: "t".into(), spec: trace },
                    params: TaskParams {
                        batching: BatchingScheme::Clockwork,
                        slo_multiplier: slo,
                        batch_size: bs,
                        static_ramps: StaticRamps::AllSites,
                        overrides: Overrides::default(),
                    },
                    seed,
                    inputs: Inputs::Embedded { scale },
                    live: None,
                };
                let dir = std::env::temp_dir().join(format!("calib-{m}-{d}"));
                let t0 = std::time::Instant::now();
                let out = match run_task(&spec, &dir) {
                    Ok(o) => o,
                    Err(e) => {
                        eprintln!("{m} {d}: {e}");
                        continue;
                    }
                };
                let secs = t0.elapsed().as_secs_f64();
                let rows_pq = read_requests_parquet(&dir.join("requests.parquet")).expect("parquet");
                let q = |r: &apparate::output::RequestRow| r.queueing_ms.unwrap_or(0.0);
                let mut van: Vec<f64> = rows_pq.iter().map(|r| q(r) + r.vanilla_ms).collect();
                let mut app: Vec<f64> = rows_pq.iter().map(|r| q(r) + r.inference_ms).collect();
                let mut opt: Vec<f64> = rows_pq.iter().map(|r| q(r) + r.optimal_ms.unwrap_or(0.0)).collect();
                let mut sta: Vec<f64> = rows_pq.iter().map(|r| q(r) + r.static_ms.unwrap_or(0.0)).collect();
                let static_acc = 100.0 * rows_pq.iter().filter(|r| r.static_correct == Some(true)).count() as f64 / rows_pq.len() as f64;
                let mv = median(&mut van);
                let win = 100.0 * (1.0 - median(&mut app) / mv);
                let owin = 100.0 * (1.0 - median(&mut opt) / mv);
                let swin = 100.0 * (1.0 - median(&mut sta) / mv);
                let p25 = |v: &mut Vec<f64>| { v.sort_by(f64::total_cmp); percentile(v, 25.0) };
                let p25w = 100.0 * (1.0 - p25(&mut app) / p25(&mut van));
                let qmed = { let mut qq: Vec<f64> = rows_pq.iter().map(q).collect(); median(&mut qq) };
                rows.lock().expect("lock").push((k, format!(
                    "{m:16} {d:15} n={:6} acc={:6.2} win={:6.1} p25win={:6.1} opt={:6.1} static_acc={:6.2} static_win={:6.1} qmed={:6.2} ramps={:?} {secs:.2}s",
                    out.num_requests, out.summary.overall_accuracy, win, p25w, owin, static_acc, swin, qmed,
                    std::fs::read_to_string(dir.join("baselines.json")).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).map(|v| v["apparate"]["ramp_ids"].to_string()).unwrap_or_default()
                )));
                if std::env::var_os("KEEP").is_none() {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            });
        }
    });
    let mut rows = rows.into_inner().expect("rows");
    rows.sort();
    for (_, r) in rows {
        println!("{r}");
    }
}
