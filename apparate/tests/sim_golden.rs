//! Golden parity of the simulator core on every `golden/cv-*` and `golden/nlp-*` scenario.

use crate::util::golden_dir;
use apparate::artifact::{read_batch_decisions, read_latency_tables, read_ramp_data};
use apparate::serve::{serve, ReplayModel, ServeOptions, Source};
use apparate::sim::{
    run_bootstrap, simulate, BatchObservation, Batching, RunSpec, Session, SimError,
};
use serde_json::Value as Json;
use std::path::Path;

/// A golden scenario's inputs.
struct Scenario {
    dir: std::path::PathBuf,
    run: Json,
    tables: apparate::sim::LatencyTables,
    boot: apparate::sim::RampData,
    sim: apparate::sim::RampData,
    /// The batch decisions (none for the uniform scheme).
    dec: Option<apparate::artifact::BatchDecisions>,
}

fn load(name: &str) -> Scenario {
    let dir = golden_dir().join(name);
    let run: Json = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let data = dir.join("data");
    let rel = &run["paths_relative_to_data"];
    let arch = run["flags"]["arch"].as_str().unwrap();
    let tables = read_latency_tables(
        &data.join(run["profile_dir_relative_to_data"].as_str().unwrap()),
        arch,
    )
    .unwrap();
    let boot = read_ramp_data(&data.join(rel["bootstrap_pickle_path"].as_str().unwrap())).unwrap();
    let sim = read_ramp_data(&data.join(rel["simulation_pickle_path"].as_str().unwrap())).unwrap();
    let dec = (run["flags"]["batching_scheme"] != "uniform").then(|| {
        read_batch_decisions(&data.join(rel["batch_decision_path"].as_str().unwrap())).unwrap()
    });
    Scenario {
        dir,
        run,
        tables,
        boot,
        sim,
        dec,
    }
}

fn run_scenario(name: &str) {
    let Scenario {
        dir,
        run,
        tables,
        boot,
        sim,
        dec,
    } = load(name);
    let e: Json =
        serde_json::from_slice(&std::fs::read(dir.join("expected/expected.json")).unwrap())
            .unwrap();
    let flags = &run["flags"];
    let arch = flags["arch"].as_str().unwrap();
    let batching = match &dec {
        None => Batching::Uniform,
        Some(dec) => Batching::Decisions(&dec.batching_decision),
    };
    let spec = RunSpec {
        arch,
        dataset: flags["dataset"].as_str().unwrap(),
        batch_size: flags["batch_size"].as_u64().unwrap() as usize,
        batching,
        mode: apparate::sim::Mode::Apparate,
        overrides: apparate::sim::Overrides::default(),
        record_log: true,
    };
    let out = simulate(&spec, &tables, &boot, &sim).unwrap();
    check_expected(name, &e, &out);
    check_samples(name, &dir, &out);
    check_log(name, &dir, &out.log);

    // Issue #14's invariant: the live serving loop with the replay model and the virtual
    // clock is the simulator, on the same scenario, bit for bit.
    let boot_out = run_bootstrap(&spec, &tables, &boot).unwrap();
    let mut session = Session::start(&spec, &tables, &boot_out, &boot).unwrap();
    let source = match &dec {
        None => Source::Uniform {
            batch_size: spec.batch_size,
        },
        Some(dec) => Source::Decisions {
            sizes: &dec.batching_decision,
            stats: dec.per_request_stats.as_deref(),
        },
    };
    let served = serve(
        &mut session,
        &mut ReplayModel::new(&sim),
        source,
        &ServeOptions::default(),
    )
    .unwrap();
    let live = session.finish(&spec);
    assert_eq!(
        live, out,
        "{name}: serve (replay, virtual clock) == simulate"
    );
    assert_eq!(served.inference_ms, out.requests.inference_ms, "{name}");
    assert_eq!(served.decisions.len(), out.batches.len(), "{name}");
    assert_eq!(served.report.samples, out.requests.len(), "{name}");
    assert!(served
        .timing
        .iter()
        .all(|t| t.measured_ms.is_none() && !t.slow));
    check_expected(name, &e, &live);
    check_log(name, &dir, &live.log);
}

/// `log` against the scenario's `expected/log.txt`, line for line (its first line, the
/// command, aside).
fn check_log(name: &str, dir: &Path, log: &[String]) {
    let text = std::fs::read_to_string(dir.join("expected/log.txt")).unwrap();
    let want: Vec<&str> = text.lines().skip(1).collect();
    for (k, (got, want)) in log.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "{name}: log line {} differs", k + 2);
    }
    assert_eq!(log.len(), want.len(), "{name}: log length");
    assert!(want.len() > 300, "{name}: suspiciously short expected log");
    eprintln!("{name}: {} log lines compared", want.len());
}

/// The step interface (issue #14) driven as a live server would: batch by batch, each batch's
/// observation gathered request by request into owned vectors for the ramps `config()` names,
/// then `observe`. The log must be the golden one, line for line (the simulator is this loop).
#[test]
fn golden_session_step_by_step_equals_the_recorded_log() {
    let name = "cv-resnet18-auburn";
    let sc = load(name);
    let (tables, boot, sim) = (&sc.tables, &sc.boot, &sc.sim);
    let dec = sc.dec.as_ref().unwrap();
    let flags = &sc.run["flags"];
    let arch = flags["arch"].as_str().unwrap();
    let spec = RunSpec {
        arch,
        dataset: flags["dataset"].as_str().unwrap(),
        batch_size: flags["batch_size"].as_u64().unwrap() as usize,
        batching: Batching::Decisions(&dec.batching_decision),
        mode: apparate::sim::Mode::Apparate,
        overrides: apparate::sim::Overrides::default(),
        record_log: true,
    };
    let boot_out = run_bootstrap(&spec, tables, boot).unwrap();
    let mut session = Session::start(&spec, tables, &boot_out, boot).unwrap();

    // A wrong observation is refused, and changes nothing.
    let active = session.config().ramp_ids.len();
    let short = BatchObservation {
        conf: vec![&[0.5][..]; active],
        acc: vec![&[true][..]; active],
    };
    assert!(matches!(
        session.observe(2, &short),
        Err(SimError::ObservationMismatch { requests: 2, .. })
    ));

    let stream_len = sim.num_samples() - 1;
    let mut start = 0;
    let mut changes = 0;
    for b in &dec.batching_decision {
        let n = b.get();
        if start + n > stream_len {
            break;
        }
        let ids = session.config().ramp_ids.clone();
        let conf: Vec<Vec<f64>> = ids
            .iter()
            .map(|&a| (start..start + n).map(|k| sim.conf[a][k]).collect())
            .collect();
        let acc: Vec<Vec<bool>> = ids
            .iter()
            .map(|&a| (start..start + n).map(|k| sim.acc[a][k]).collect())
            .collect();
        let obs = BatchObservation {
            conf: conf.iter().map(Vec::as_slice).collect(),
            acc: acc.iter().map(Vec::as_slice).collect(),
        };
        let record = session.observe(n, &obs).unwrap();
        assert_eq!(record.ramp_ids, ids);
        if session.config().ramp_ids != ids {
            changes += 1;
        }
        start += n;
    }
    assert!(
        changes > 0,
        "the controller adapted its ramps at least once"
    );
    let out = session.finish(&spec);
    check_log(name, &sc.dir, &out.log);
}

#[test]
fn golden_cv_resnet18_auburn() {
    run_scenario("cv-resnet18-auburn");
}
#[test]
fn golden_cv_resnet18_uniform() {
    run_scenario("cv-resnet18-uniform");
}
#[test]
fn golden_cv_resnet50_hampton() {
    run_scenario("cv-resnet50-hampton");
}
#[test]
fn golden_cv_vgg16_oxford() {
    run_scenario("cv-vgg16-oxford");
}
#[test]
fn golden_nlp_bert_base_amazon() {
    run_scenario("nlp-bert-base-amazon_reviews");
}
#[test]
fn golden_nlp_distilbert_imdb() {
    run_scenario("nlp-distilbert-base-imdb");
}

fn f(v: &Json) -> f64 {
    v.as_f64().expect("float")
}

fn floats(v: &Json) -> Vec<f64> {
    v.as_array().expect("array").iter().map(f).collect()
}

fn ids(v: &Json) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect()
}

fn keyed(v: &Json) -> std::collections::BTreeMap<usize, f64> {
    v.as_object()
        .expect("object")
        .iter()
        .map(|(k, x)| (k.parse().expect("int key"), f(x)))
        .collect()
}

/// Every field of expected.json that must match exactly, and the summary's improvement.
fn check_expected(name: &str, e: &Json, out: &apparate::sim::RunResult) {
    let b = &e["bootstrap"];
    let ra = &b["ramp_addition_result"];
    assert_eq!(
        out.bootstrap.ramp_addition.ramp_ids,
        ids(&ra["ramp_ids"]),
        "{name}: ramp addition ids"
    );
    assert_eq!(
        out.bootstrap.ramp_addition.thresholds,
        floats(&ra["thresholds"]),
        "{name}: ramp addition thresholds"
    );
    assert_eq!(
        out.bootstrap.ramp_addition.latency_savings,
        f(&ra["latency_savings"]),
        "{name}: ramp addition savings"
    );
    assert_eq!(
        out.bootstrap.ramp_addition.acc,
        f(&ra["acc"]),
        "{name}: ramp addition acc"
    );
    assert_eq!(
        out.bootstrap.num_initial_ramps as u64,
        b["num_initial_ramps"].as_u64().unwrap()
    );
    assert_eq!(
        out.bootstrap.total_num_ramps as u64,
        b["total_num_ramps"].as_u64().unwrap()
    );
    assert_eq!(
        out.bootstrap.latest_possible_ramp as u64,
        b["latest_possible_ramp"].as_u64().unwrap()
    );
    assert_eq!(out.bootstrap.initial_ramp_ids, ids(&b["initial_ramp_ids"]));

    let fs = &e["final_state"];
    assert_eq!(
        out.final_state.ramp_ids,
        ids(&fs["ramp_ids"]),
        "{name}: final ramp ids"
    );
    assert_eq!(
        out.final_state.thresholds,
        floats(&fs["thresholds"]),
        "{name}: final thresholds"
    );
    assert_eq!(
        out.final_state.ramp_quota as u64,
        fs["ramp_quota"].as_u64().unwrap()
    );
    let hist: Vec<Vec<usize>> = fs["ramp_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    assert_eq!(out.final_state.ramp_history, hist, "{name}: ramp history");

    let batches = e["batches"].as_array().unwrap();
    assert_eq!(out.batches.len(), batches.len(), "{name}: batch count");
    for (got, want) in out.batches.iter().zip(batches) {
        let k = got.batch;
        assert_eq!(got.batch as u64, want["batch"].as_u64().unwrap());
        assert_eq!(
            got.n as u64,
            want["n"].as_u64().unwrap(),
            "{name} batch {k}: n"
        );
        assert_eq!(
            got.bs as u64,
            want["bs"].as_u64().unwrap(),
            "{name} batch {k}: bs"
        );
        assert_eq!(
            got.ramp_ids,
            ids(&want["ramp_ids"]),
            "{name} batch {k}: ramp_ids"
        );
        assert_eq!(
            got.thresholds,
            floats(&want["thresholds"]),
            "{name} batch {k}: thresholds"
        );
        assert_eq!(got.acc, f(&want["acc"]), "{name} batch {k}: acc");
        assert_eq!(
            got.exit_rate,
            floats(&want["exit_rate"]),
            "{name} batch {k}: exit_rate"
        );
        assert_eq!(
            got.ramp_acc,
            keyed(&want["ramp_acc"]),
            "{name} batch {k}: ramp_acc"
        );
        let li = f(&want["latency_improvement"]);
        assert!(
            got.latency_improvement == li,
            "{name} batch {k}: latency_improvement {} vs {li}",
            got.latency_improvement
        );
    }

    let s = &e["summary"];
    assert_eq!(
        out.summary.overall_accuracy,
        f(&s["overall_accuracy"]),
        "{name}: overall accuracy"
    );
    assert_eq!(
        out.summary.overall_latency_improvement,
        f(&s["overall_latency_improvement"]),
        "{name}: improvement"
    );
    assert_eq!(
        out.summary.exit_rate,
        keyed(&s["exit_rate"]),
        "{name}: exit rate"
    );
    assert_eq!(
        out.summary.ramp_accuracy,
        keyed(&s["ramp_accuracy"]),
        "{name}: ramp accuracy"
    );
    assert_eq!(
        out.summary.num_requests as u64,
        s["num_requests"].as_u64().unwrap()
    );
    assert_eq!(
        out.summary.num_batches as u64,
        s["num_batches"].as_u64().unwrap()
    );
}

/// Per-request exit points, correctness (exact) and latencies (1e-9 relative).
fn check_samples(name: &str, dir: &Path, out: &apparate::sim::RunResult) {
    let read = |f: &str| -> Json {
        serde_json::from_slice(&std::fs::read(dir.join("expected").join(f)).unwrap()).unwrap()
    };
    let lat = floats(&read("latencies.json"));
    let samples = read("samples.json");
    let exits = ids(&samples["exit_point"]);
    let correct: Vec<bool> = samples["correct"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    let r = &out.requests;
    assert_eq!(r.len(), lat.len(), "{name}: number of latencies");
    assert_eq!(r.exit_point, exits, "{name}: exit points");
    assert_eq!(r.correct, correct, "{name}: correctness");
    for (k, (got, want)) in r.inference_ms.iter().zip(&lat).enumerate() {
        assert_eq!(got, want, "{name}: latency of request {k}");
    }
}
