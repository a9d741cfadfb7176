//! `ee-backend serve` (issue #14) on scikit-learn's digits: the digits CNN served live on the
//! CPU, the controller choosing its ramps and thresholds online.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use apparate::output::read_requests_parquet;
use serde_json::Value;

use crate::digits::{digits, ee, run, s};

/// gen-data on the digits, once: a third of the data trains and validates the ramps (more
/// than the paper's 10 %, so that the small heads are worth exiting at).
fn inputs() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = digits();
        let data = d.root.join("live-inputs");
        run(
            &ee(),
            &[
                "gen-data",
                "--model",
                "digits-cnn",
                "--weights",
                s(&d.weights),
                "--data",
                s(&d.frames),
                "--labels",
                s(&d.labels),
                "--name",
                "resnet-digits",
                "--dataset",
                "digits",
                "--device",
                "cpu",
                "--bootstrap-fraction",
                "0.3",
                "--train-share",
                "0.5",
                "--warmup",
                "1",
                "--reps",
                "3",
                "--out",
                s(&data),
            ],
        );
        data
    })
}

/// `ee-backend serve` on the digits with `extra` flags into `out`.
fn serve_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let d = digits();
    let mut args = vec![
        "serve",
        "--model",
        "digits-cnn",
        "--weights",
        s(&d.weights),
        "--data",
        s(&d.frames),
        "--inputs",
        s(inputs()),
        "--name",
        "resnet-digits",
        "--dataset",
        "digits",
        "--device",
        "cpu",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    args
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn fresh(tag: &str) -> PathBuf {
    let dir = digits().root.join(format!("serve-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn the_digits_model_served_live_exits_early_within_the_accuracy_budget() {
    let out = fresh("uniform");
    let o = run(
        &ee(),
        &serve_args(
            &out,
            &[
                "--clock",
                "fast",
                "--batching",
                "uniform",
                "--batch-size",
                "16",
            ],
        ),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("served "), "{stdout}");
    let summary = json(&out.join("summary.json"));
    let report = json(&out.join("serve.json"));
    assert_eq!(report["executor"], "model");
    assert_eq!(report["interrupted"], false);
    assert!(report["device"].as_str().unwrap().starts_with("cpu"));
    // Exits happen: some requests leave at a ramp (3 ramps: the final exit is "3").
    let exits = summary["exit_rate"].as_object().unwrap();
    let early: f64 = exits
        .iter()
        .filter(|(k, _)| k.as_str() != "3")
        .map(|(_, v)| v.as_f64().unwrap())
        .sum();
    assert!(early > 0.0, "no request exited early: {summary}");
    // The controller keeps agreement with the final model within its 1 % budget.
    let acc = summary["overall_accuracy"].as_f64().unwrap();
    assert!(acc >= 99.0, "accuracy {acc} {summary}");
    // Every sample of the stream served once, in order; latencies measured.
    let rows = read_requests_parquet(&out.join("requests.parquet")).unwrap();
    assert_eq!(rows.len() as u64, report["samples"].as_u64().unwrap());
    let ids: Vec<i64> = rows.iter().map(|r| r.request).collect();
    assert_eq!(ids, (0..rows.len() as i64).collect::<Vec<_>>());
    assert!(rows
        .iter()
        .all(|r| r.inference_ms > 0.0 && r.inference_ms.is_finite()));
    // Early exits are answered before the batch ends.
    for batch in 1..=rows.last().unwrap().batch {
        let b: Vec<_> = rows.iter().filter(|r| r.batch == batch).collect();
        let end = b.iter().map(|r| r.inference_ms).fold(0.0, f64::max);
        for r in &b {
            if r.exit_point < 3 {
                assert!(r.inference_ms <= end);
            }
        }
    }
    let timing = std::fs::read_to_string(out.join("timing.jsonl")).unwrap();
    assert_eq!(
        timing.lines().count() as u64,
        report["batches"].as_u64().unwrap()
    );
    for line in timing.lines() {
        let t: Value = serde_json::from_str(line).unwrap();
        assert!(t["measured_ms"].as_f64().unwrap() > 0.0);
        assert!(t["predicted_ms"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn a_trace_served_live_loses_and_duplicates_nothing() {
    let out = fresh("trace");
    run(
        &ee(),
        &serve_args(
            &out,
            &[
                "--clock",
                "fast",
                "--trace",
                r#"{"kind": "poisson", "n": 600, "qps": 4000}"#,
                "--slo-multiplier",
                "20",
            ],
        ),
    );
    let report = json(&out.join("serve.json"));
    let (requests, served, dropped) = (
        report["requests"].as_u64().unwrap(),
        report["served"].as_u64().unwrap(),
        report["dropped"].as_u64().unwrap(),
    );
    assert_eq!(requests, 600);
    assert_eq!(served + dropped, requests);
    assert!(served > 300, "{report}");
    let rows = read_requests_parquet(&out.join("requests.parquet")).unwrap();
    // clockwork records exact sizes: one row per served request, each with its queueing.
    assert_eq!(rows.len() as u64, served);
    assert!(rows
        .iter()
        .all(|r| r.queueing_ms.is_some_and(|q| q >= 0.0 && q.is_finite())));
    let batches: Vec<Value> = std::fs::read_to_string(out.join("batches.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total: u64 = batches.iter().map(|b| b["n"].as_u64().unwrap()).sum();
    assert_eq!(total, served);
}

#[test]
fn the_model_under_the_virtual_clock_decides_as_the_replay_of_its_recording() {
    // The live model's outputs are the recorded ones (same model, ramps, data, CPU): under the
    // virtual clock every decision equals the replay's, i.e. the simulator's.
    let trace = r#"{"kind": "poisson", "n": 900, "qps": 300}"#;
    let (live, replay) = (fresh("virtual"), fresh("replay"));
    run(
        &ee(),
        &serve_args(&live, &["--clock", "virtual", "--trace", trace]),
    );
    run(
        &ee(),
        &serve_args(
            &replay,
            &[
                "--clock",
                "virtual",
                "--trace",
                trace,
                "--executor",
                "replay",
            ],
        ),
    );
    // (baselines.json holds Apparate's measured latencies: not compared.)
    for f in ["batches.jsonl", "log.txt", "summary.json"] {
        assert_eq!(
            std::fs::read(live.join(f)).unwrap(),
            std::fs::read(replay.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(json(&replay.join("serve.json"))["executor"], "replay");
}

#[test]
fn ctrl_c_leaves_complete_files_for_what_was_served() {
    let out = fresh("ctrl-c");
    let args = serve_args(
        &out,
        &[
            "--clock",
            "realtime",
            "--trace",
            r#"{"kind": "fixed", "n": 100000, "qps": 50}"#,
        ],
    );
    let mut child = Command::new(ee())
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait until a batch was served (the server says so), then interrupt.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let first = line.contains("first batch served");
        seen.push(line);
        if first {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("first batch served")),
        "{seen:?}"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let report = json(&out.join("serve.json"));
    assert_eq!(report["interrupted"], true);
    let served = report["served"].as_u64().unwrap();
    assert!((1..100000).contains(&served), "{report}");
    for f in apparate::task::RESULT_FILES
        .iter()
        .chain(&apparate::task::LIVE_FILES)
    {
        assert!(out.join(f).is_file(), "{f}");
    }
    let rows = read_requests_parquet(&out.join("requests.parquet")).unwrap();
    assert_eq!(rows.len() as u64, served);
    let pickle = std::fs::read(out.join("latencies.pickle")).unwrap();
    assert_eq!(pickle.last(), Some(&b'.'), "a complete pickle");
}

#[test]
fn bad_input_is_one_line_before_any_request() {
    let out = fresh("bad");
    let d = digits();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            serve_args(&out, &[])
                .into_iter()
                .map(|a| {
                    if a == "digits-cnn" {
                        "no-such-model"
                    } else {
                        a
                    }
                })
                .collect(),
            "unknown model",
        ),
        (
            serve_args(&out, &["--trace", r#"{"kind": "poisson", "qps": -3}"#]),
            "--trace",
        ),
        (
            serve_args(&out, &["--arrivals", "/no/such/arrivals.txt"]),
            "--arrivals /no/such/arrivals.txt",
        ),
        (
            serve_args(&out, &["--device", "cuda"])
                .into_iter()
                .filter(|a| *a != "cpu")
                .collect::<Vec<_>>()
                .into_iter()
                .enumerate()
                .filter(|(k, a)| !(*a == "--device" && *k < 14))
                .map(|(_, a)| a)
                .collect(),
            "cuda",
        ),
        (
            serve_args(&out, &[])
                .into_iter()
                .map(|a| if a == s(&d.frames) { s(&d.labels) } else { a })
                .collect(),
            "labels.txt",
        ),
    ];
    // A sweep's task file that cannot be read, or is not a task.
    let bad_task = d.root.join("bad-task.json");
    std::fs::write(&bad_task, "{\"grid\": \"x\",\n \"family\": 3}").unwrap();
    let mut cases = cases;
    for (task, expect) in [
        ("/no/such/task.json", "--task /no/such/task.json"),
        (s(&bad_task), "line 2, column"),
    ] {
        cases.push((
            vec![
                "serve",
                "--task",
                task,
                "--inputs",
                s(inputs()),
                "--out",
                s(&out),
            ],
            expect,
        ));
    }
    for (args, expect) in cases {
        let o = Command::new(ee())
            .args(&args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(expect),
            "{args:?}: {err}"
        );
        assert!(!out.exists(), "{args:?}: wrote {}", out.display());
    }
}

#[test]
fn vanilla_serving_is_the_same_trace_without_exits() {
    let (eex, van) = (fresh("ee"), fresh("vanilla"));
    let trace = r#"{"kind": "poisson", "n": 400, "qps": 2000}"#;
    let common = [
        "--clock",
        "fast",
        "--trace",
        trace,
        "--slo-multiplier",
        "20",
    ];
    run(&ee(), &serve_args(&eex, &common));
    let mut vanilla: Vec<&str> = common.to_vec();
    vanilla.push("--vanilla");
    run(&ee(), &serve_args(&van, &vanilla));
    let report = json(&van.join("serve.json"));
    assert_eq!(report["vanilla"], true);
    assert_eq!(json(&eex.join("serve.json"))["vanilla"], false);
    // Only the serving files: no controller records.
    for f in ["requests.parquet", "serve.json", "timing.jsonl"] {
        assert!(van.join(f).is_file(), "{f}");
    }
    assert!(!van.join("summary.json").exists());
    let rows = read_requests_parquet(&van.join("requests.parquet")).unwrap();
    assert_eq!(rows.len() as u64, report["samples"].as_u64().unwrap());
    assert!(rows.iter().all(|r| r.exit_point == 3 && r.correct));
    assert!(rows
        .iter()
        .all(|r| r.inference_ms > 0.0 && r.queueing_ms.is_some_and(|q| q >= 0.0)));
    // The early-exit run of the same trace did exit early.
    let eex_rows = read_requests_parquet(&eex.join("requests.parquet")).unwrap();
    assert!(eex_rows.iter().any(|r| r.exit_point < 3));
}
