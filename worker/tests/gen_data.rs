//! `worker gen-data`: its output, read back by `worker simulate`, gives the results of the
//! corresponding embedded task (`task::run_task`); bad selections fail before writing.

use apparate::artifact::read_batch_decisions;
use apparate::artifact::value::{decode_pickle, dict_get, float_of};
use apparate::gendata::{nlp_trace_shape, plan, GenDataSpec, NLP_SLO_MULTIPLIER};
use apparate::output::read_requests_parquet;
use apparate::sim::{Family, Overrides, StaticRamps};
use apparate::task::{run_task, BatchingScheme, Inputs, TaskParams, TaskSpec, TaskTrace};
use apparate::traces::TraceSpec;
use apparate::workload;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCALE: f64 = 0.02;

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_worker")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gen-data-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn run(args: &[&str]) -> Output {
    Command::new(worker_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("worker runs")
}

fn gen_data(out: &Path) -> Output {
    let out = out.to_str().expect("utf-8 temp path");
    run(&[
        "gen-data",
        "--out",
        out,
        "--scale",
        "0.02",
        "--models",
        "resnet18,bert-base",
        "--datasets",
        "auburn,imdb",
    ])
}

/// The task of the built-in paper spec for `model` on `dataset` at [`SCALE`], seed 0: CV on the
/// 30 qps video trace with SLO multiplier 2 and batch size 4, NLP on the synthetic Azure trace
/// with SLO multiplier 32 and batch size 1; clockwork; the trace as long as the family's longest
/// stream (one decision file per model, as in the artifact).
fn paper_task(model: &str, dataset: &str) -> TaskSpec {
    let family = workload::model_family(model).expect("model");
    assert!(workload::stream_len(dataset, SCALE).is_some(), "dataset");
    let n = workload::family_trace_len(family, SCALE);
    let (trace, slo_multiplier, batch_size) = match family {
        Family::Cv => (
            TaskTrace::Generated {
                name: "video30".into(),
                spec: TraceSpec::Fixed { n, qps: 30.0 },
            },
            2.0,
            4,
        ),
        Family::Nlp => (
            TaskTrace::Generated {
                name: "azure".into(),
                spec: TraceSpec::SyntheticAzure {
                    n,
                    seed: 0,
                    shape: nlp_trace_shape(
                        workload::models::preset(model).expect("preset").v1_ms,
                        n,
                    ),
                },
            },
            NLP_SLO_MULTIPLIER,
            1,
        ),
    };
    TaskSpec {
        grid: family.name().into(),
        family,
        model: model.into(),
        dataset: dataset.into(),
        trace,
        params: TaskParams {
            batching: BatchingScheme::Clockwork,
            slo_multiplier,
            batch_size,
            static_ramps: StaticRamps::AllSites,
            overrides: Overrides::default(),
        },
        seed: 0,
        inputs: Inputs::Embedded { scale: SCALE },
        live: None,
    }
}

fn simulate(data: &Path, spec: &TaskSpec, decision_file: &str, out: &Path) -> Output {
    let (m, d) = (&spec.model, &spec.dataset);
    let p = |rel: String| data.join(rel).display().to_string();
    let args = [
        "simulate".to_string(),
        "--dataset".into(),
        spec.dataset_flag().into(),
        "--arch".into(),
        spec.arch(),
        "--batch-size".into(),
        spec.params.batch_size.to_string(),
        "--batching-scheme".into(),
        "clockwork".into(),
        "--profile-dir".into(),
        p("profile_pickles_bs".into()),
        "--bootstrap-pickle-path".into(),
        p(format!("bootstrap_pickles/bootstrap_{d}_{m}.pickle")),
        "--simulation-pickle-path".into(),
        p(format!("simulation_pickles/{d}_{m}.pickle")),
        "--batch-decision-path".into(),
        p(format!("batch_decisions/{decision_file}")),
        "--out".into(),
        out.display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn gen_data_output_replayed_by_simulate_gives_the_embedded_tasks_results() {
    let data = temp_dir("data");
    let out = gen_data(&data);
    assert!(
        out.status.success(),
        "gen-data failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<String> = Vec::new();
    for sub in [
        "bootstrap_pickles",
        "simulation_pickles",
        "profile_pickles_bs",
        "batch_decisions",
    ] {
        for e in std::fs::read_dir(data.join(sub)).expect(sub) {
            files.push(format!(
                "{sub}/{}",
                e.expect("entry").file_name().to_string_lossy()
            ));
        }
    }
    files.sort();
    // 2 bootstrap + 2 simulation + 7 × 2 CV profiles + 7 NLP profiles + 2 decision files.
    assert_eq!(files.len(), 27, "{files:#?}");
    assert!(files.iter().all(|f| !f.ends_with(".tmp")));
    let readme = read(&data.join("README.txt"));
    for needle in [
        "gen-data",
        "scale:    0.02",
        "seed:     0",
        "embedded workload v",
    ] {
        assert!(
            readme.contains(needle),
            "README.txt lacks {needle:?}:\n{readme}"
        );
    }

    for (model, dataset, decision_file) in [
        ("resnet18", "auburn", "resnet18_1_fixed_30.pickle"),
        ("bert-base", "imdb", "bert-base_azure.pickle"),
    ] {
        let spec = paper_task(model, dataset);
        let task_dir = temp_dir(&format!("task-{model}"));
        run_task(&spec, &task_dir).expect("task runs");
        let sim_dir = temp_dir(&format!("sim-{model}"));
        let out = simulate(&data, &spec, decision_file, &sim_dir);
        assert!(
            out.status.success(),
            "simulate failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let task_log = read(&task_dir.join("log.txt"));
        let sim_log = read(&sim_dir.join("log.txt"));
        assert!(sim_log.starts_with("args: Namespace("));
        assert_eq!(
            sim_log.lines().skip(1).collect::<Vec<_>>(),
            task_log.lines().skip(1).collect::<Vec<_>>(),
            "{model}: log.txt differs"
        );
        assert!(task_log.lines().count() > 10, "{model}: a real run");
        for file in ["summary.json", "batches.jsonl"] {
            assert_eq!(
                read(&sim_dir.join(file)),
                read(&task_dir.join(file)),
                "{model}: {file} differs"
            );
        }
        // Per request: the same exits and latencies, and the decision file's queueing delays.
        let task_rows = read_requests_parquet(&task_dir.join("requests.parquet")).expect("rows");
        let sim_rows = read_requests_parquet(&sim_dir.join("requests.parquet")).expect("rows");
        assert_eq!(task_rows.len(), sim_rows.len());
        for (t, s) in task_rows.iter().zip(&sim_rows) {
            assert_eq!(
                (
                    t.exit_point,
                    t.correct,
                    t.inference_ms.to_bits(),
                    t.queueing_ms.map(f64::to_bits)
                ),
                (
                    s.exit_point,
                    s.correct,
                    s.inference_ms.to_bits(),
                    s.queueing_ms.map(f64::to_bits)
                ),
                "{model}: request {}",
                t.request
            );
        }
        // The decision file covers every request of the trace.
        let decisions =
            read_batch_decisions(&data.join("batch_decisions").join(decision_file)).expect("reads");
        let TaskTrace::Generated { spec: trace, .. } = &spec.trace else {
            unreachable!("generated")
        };
        let n = match trace {
            TraceSpec::Fixed { n, .. } | TraceSpec::SyntheticAzure { n, .. } => *n,
            _ => unreachable!("fixed or synthetic"),
        };
        assert_eq!(decisions.per_request_stats.map(|s| s.len()), Some(n));
        let path = data.join("batch_decisions").join(decision_file);
        let value = decode_pickle(&path, &std::fs::read(&path).expect("bytes")).expect("decodes");
        let serde_pickle::Value::Dict(dict) = &value else {
            panic!("a dict")
        };
        let get = |k: &str| dict_get(dict, k).unwrap_or_else(|| panic!("{k}"));
        assert_eq!(get("arch"), &serde_pickle::Value::String(model.into()));
        assert_eq!(
            get("total_num_requests"),
            &serde_pickle::Value::I64(n as i64)
        );
        let v1 = workload::models::preset(model)
            .expect("preset")
            .latency_tables()
            .get(apparate::sim::BatchSize::ONE)
            .vanilla_ms;
        assert_eq!(float_of(get("slo")), Some(spec.params.slo_multiplier * v1));
        let qps = float_of(get("avg_qps")).expect("avg_qps");
        match spec.family {
            Family::Cv => {
                assert!(matches!(get("avg_qps"), serde_pickle::Value::F64(_)));
                assert!((qps - 30.0).abs() < 0.1, "{qps}");
            }
            Family::Nlp => {
                assert!(
                    matches!(get("avg_qps"), serde_pickle::Value::Tuple(_)),
                    "numpy"
                );
                assert!(qps > 0.0);
            }
        }
        let _ = std::fs::remove_dir_all(&task_dir);
        let _ = std::fs::remove_dir_all(&sim_dir);
    }

    // Deterministic: a second run writes the same bytes (README aside: it names the folder).
    let again = temp_dir("again");
    assert!(gen_data(&again).status.success());
    for f in &files {
        assert!(
            std::fs::read(data.join(f)).expect("first")
                == std::fs::read(again.join(f)).expect("second"),
            "{f} differs between two runs"
        );
    }
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&again);
}

#[test]
fn one_decision_file_per_model_covers_the_longest_of_its_datasets() {
    let p = plan(&GenDataSpec {
        scale: 0.1,
        seed: 7,
        models: Some(vec!["bert-large".into(), "vgg11".into()]),
        datasets: None,
        ..GenDataSpec::default()
    })
    .expect("plan");
    assert_eq!(p.models.len(), 2);
    let nlp = &p.models[0];
    assert_eq!(nlp.datasets, ["amazon_reviews", "imdb"]);
    assert_eq!(nlp.decision_file, "bert-large_azure.pickle");
    assert_eq!(nlp.trace_covers, "amazon_reviews");
    assert!(matches!(
        nlp.trace,
        TraceSpec::SyntheticAzure {
            n: 25_005,
            seed: 7,
            ..
        }
    ));
    let cv = &p.models[1];
    assert_eq!(cv.datasets.len(), 8);
    assert_eq!(cv.decision_file, "vgg11_1_fixed_30.pickle");
    assert_eq!(cv.trace, TraceSpec::Fixed { n: 7000, qps: 30.0 });
    // The built-in spec's SLO multipliers.
    assert_eq!((cv.slo_multiplier, nlp.slo_multiplier), (2.0, 32.0));

    let all = plan(&GenDataSpec::default()).expect("default plan");
    assert_eq!(all.models.len(), 10);
    assert_eq!(
        all.models.iter().map(|m| m.datasets.len()).sum::<usize>(),
        56,
        "the paper's 48 CV and 8 NLP pairs"
    );
}

#[test]
fn bad_selections_fail_with_one_clear_line_and_write_nothing() {
    for (args, needle) in [
        (vec!["--models", "resnet19"], "unknown model \"resnet19\""),
        (vec!["--datasets", "mnist"], "unknown dataset \"mnist\""),
        (
            vec!["--models", "bert-base", "--datasets", "auburn"],
            "model bert-base (nlp) has no nlp dataset",
        ),
        (
            vec!["--models", "resnet18", "--datasets", "auburn,imdb"],
            "dataset imdb (nlp) has no nlp model",
        ),
        (vec!["--scale", "0"], "scale 0 is out of range"),
        (
            vec!["--nlp-slo-multiplier", "0"],
            "nlp SLO multiplier 0 is invalid",
        ),
        // An SLO below the serving time: clockwork cannot serve anything (the original would
        // loop forever). Decisions are computed before anything is written.
        (
            vec![
                "--models",
                "resnet18",
                "--datasets",
                "auburn",
                "--scale",
                "0.02",
                "--cv-slo-multiplier",
                "0.5",
            ],
            "nothing written: a decision trace cannot be batched",
        ),
    ] {
        let dir = temp_dir("bad");
        let mut full = vec!["gen-data", "--out"];
        let d = dir.display().to_string();
        full.push(&d);
        full.extend(args.iter().copied());
        let out = run(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.exists(), "{args:?} wrote {}", dir.display());
    }
}
