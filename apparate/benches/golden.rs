//! Whole golden scenarios, end to end: read the pickles (profiles, bootstrap, simulation,
//! decisions) and run the simulator, as `worker simulate` does minus writing the outputs.
//! Also the simulation alone, on inputs already in memory, the reading alone ("read": every
//! input of the scenario, as `load` does), the profile trees alone ("read profiles"), and the
//! same run through the live server with the replay model ("serve (replay, virtual clock)":
//! bootstrap included, per batch = time / batches, printed).
//!
//! Run with `cargo bench -p apparate --bench golden`. Served samples per second are reported as
//! criterion throughput ("elements").
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

use apparate::artifact::{
    read_batch_decisions, read_latency_tables, read_ramp_data, BatchDecisions,
};
use apparate::sim::{simulate, Batching, LatencyTables, RampData, RunResult, RunSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
    assert!(dir.is_dir(), "golden data missing at {}", dir.display());
    dir
}

struct Inputs {
    arch: String,
    dataset: String,
    batch_size: usize,
    tables: LatencyTables,
    boot: RampData,
    sim: RampData,
    decisions: Option<BatchDecisions>,
}

fn load(dir: &Path) -> Inputs {
    let run: Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
            .expect("json");
    let flags = &run["flags"];
    let rel = &run["paths_relative_to_data"];
    let data = dir.join("data");
    let arch = flags["arch"].as_str().expect("arch").to_string();
    let path = |k: &str| data.join(rel[k].as_str().expect("path"));
    Inputs {
        tables: read_latency_tables(&data.join("profile_pickles_bs"), &arch).expect("profiles"),
        boot: read_ramp_data(&path("bootstrap_pickle_path")).expect("bootstrap"),
        sim: read_ramp_data(&path("simulation_pickle_path")).expect("simulation"),
        decisions: rel
            .get("batch_decision_path")
            .map(|_| read_batch_decisions(&path("batch_decision_path")).expect("decisions")),
        arch,
        dataset: flags["dataset"].as_str().expect("dataset").to_string(),
        batch_size: flags["batch_size"].as_u64().expect("batch size") as usize,
    }
}

fn run(i: &Inputs) -> RunResult {
    let spec = RunSpec {
        arch: &i.arch,
        dataset: &i.dataset,
        batch_size: i.batch_size,
        batching: match &i.decisions {
            Some(d) => Batching::Decisions(&d.batching_decision),
            None => Batching::Uniform,
        },
        mode: apparate::sim::Mode::Apparate,
        overrides: apparate::sim::Overrides::default(),
        record_log: true,
    };
    simulate(&spec, &i.tables, &i.boot, &i.sim).expect("simulation")
}

/// The same run through the live server (`apparate::serve`) with the replay model and the
/// virtual clock: what the serving loop costs on top of the controller (issue #14's "controller
/// overhead per batch").
fn serve_replay(i: &Inputs) -> usize {
    use apparate::serve::{serve, ReplayModel, ServeOptions, Source};
    let spec = RunSpec {
        arch: &i.arch,
        dataset: &i.dataset,
        batch_size: i.batch_size,
        batching: Batching::Uniform,
        mode: apparate::sim::Mode::Apparate,
        overrides: apparate::sim::Overrides::default(),
        record_log: true,
    };
    let boot_out = apparate::sim::run_bootstrap(&spec, &i.tables, &i.boot).expect("bootstrap");
    let mut session =
        apparate::sim::Session::start(&spec, &i.tables, &boot_out, &i.boot).expect("start");
    let source = match &i.decisions {
        Some(d) => Source::Decisions {
            sizes: &d.batching_decision,
            stats: d.per_request_stats.as_deref(),
        },
        None => Source::Uniform {
            batch_size: i.batch_size,
        },
    };
    let served = serve(
        &mut session,
        &mut ReplayModel::new(&i.sim),
        source,
        &ServeOptions::default(),
    )
    .expect("serve");
    served.decisions.len()
}

fn scenarios() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(_, p)| p.join("run.json").is_file())
        .collect();
    v.sort();
    v
}

fn bench(c: &mut Criterion) {
    for (name, dir) in scenarios() {
        let inputs = load(&dir);
        let served = run(&inputs).summary.num_requests as u64;
        let mut g = c.benchmark_group(name.clone());
        g.throughput(Throughput::Elements(served));
        g.sample_size(20);
        g.bench_function("read+simulate", |b| b.iter(|| run(&load(&dir))));
        g.bench_function("read", |b| b.iter(|| load(&dir)));
        let profiles = dir.join("data/profile_pickles_bs");
        g.bench_function("read profiles", |b| {
            b.iter(|| read_latency_tables(&profiles, &inputs.arch).expect("profiles"))
        });
        g.bench_function("simulate", |b| b.iter(|| run(&inputs)));
        g.bench_function("serve (replay, virtual clock)", |b| {
            b.iter(|| serve_replay(&inputs))
        });
        g.finish();
        eprintln!("{name}: {} batches", serve_replay(&inputs));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
