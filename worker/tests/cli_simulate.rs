//! The real `worker simulate` binary, end to end: every golden scenario found (held-out ones of
//! the same shape included) into a temporary `--out`, every result file checked; and bad inputs
//! that must fail with one clear line and a non-zero exit, never a panic.

use crate::util::golden_dir;
use apparate::output::read_requests_parquet;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_worker")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("worker-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The `worker simulate` arguments for a golden scenario, paths resolved under `data/`.
pub fn golden_args(dir: &Path) -> Vec<String> {
    let run: Json = serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
        .expect("json");
    let data = dir.join("data");
    let rel = &run["paths_relative_to_data"];
    let mut args = vec!["simulate".to_string()];
    for (k, v) in run["flags"].as_object().expect("flags") {
        args.push(format!("--{k}"));
        let value = match rel.get(k) {
            Some(p) => data.join(p.as_str().expect("path")).display().to_string(),
            None if k == "profile_dir" => data.join("profile_pickles_bs").display().to_string(),
            None => match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            },
        };
        args.push(value);
    }
    args
}

fn simulate(args: &[String], out: &Path) -> Output {
    Command::new(worker_bin())
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("worker runs")
}

fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("run.json").is_file() && p.join("expected/expected.json").is_file())
        .collect();
    v.sort();
    assert!(
        v.len() >= 6,
        "expected the six public golden scenarios, found {}",
        v.len()
    );
    v
}

fn json_file(path: &Path) -> Json {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn simulate_reproduces_every_golden_scenario_file_by_file() {
    for dir in scenarios() {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let out = temp_dir(&name);
        let o = simulate(&golden_args(&dir), &out);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let expected = json_file(&dir.join("expected/expected.json"));

        // log.txt: line for line except the args: line.
        let got = std::fs::read_to_string(out.join("log.txt")).expect("log.txt");
        let want = std::fs::read_to_string(dir.join("expected/log.txt")).expect("expected log");
        assert!(got.starts_with("args: Namespace("), "{name}: args line");
        assert_eq!(
            got.lines().skip(1).collect::<Vec<_>>(),
            want.lines().skip(1).collect::<Vec<_>>(),
            "{name}: log.txt"
        );

        // summary.json: every key exact.
        let summary = json_file(&out.join("summary.json"));
        for key in [
            "overall_accuracy",
            "overall_latency_improvement",
            "exit_rate",
            "ramp_accuracy",
            "num_requests",
            "num_batches",
        ] {
            assert_eq!(
                summary[key], expected["summary"][key],
                "{name}: summary {key}"
            );
        }

        // batches.jsonl: one object per batch, equal to expected.json's batches.
        let text = std::fs::read_to_string(out.join("batches.jsonl")).expect("batches.jsonl");
        let batches: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("jsonl line"))
            .collect();
        assert_eq!(
            &Json::Array(batches),
            &expected["batches"],
            "{name}: batches.jsonl"
        );

        // latencies.pickle: the artifact's list of floats.
        let lat = apparate::artifact::value::read_pickle(&out.join("latencies.pickle"))
            .expect("latencies.pickle");
        let want_lat: Vec<f64> = json_file(&dir.join("expected/latencies.json"))
            .as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_f64().expect("float"))
            .collect();
        let serde_pickle::Value::List(items) = lat else {
            panic!("{name}: latencies.pickle is not a list")
        };
        let got_lat: Vec<f64> = items
            .iter()
            .map(|v| match v {
                serde_pickle::Value::F64(x) => *x,
                other => panic!("{name}: latency {other:?}"),
            })
            .collect();
        assert_eq!(got_lat, want_lat, "{name}: latencies.pickle");

        // requests.parquet: rows in served order, consistent with the other files.
        let rows = read_requests_parquet(&out.join("requests.parquet")).expect("parquet");
        let samples = json_file(&dir.join("expected/samples.json"));
        assert_eq!(rows.len(), want_lat.len(), "{name}: parquet rows");
        for (k, r) in rows.iter().enumerate() {
            assert_eq!(r.request, k as i64);
            assert_eq!(r.inference_ms, want_lat[k], "{name}: row {k} inference_ms");
            assert_eq!(
                Some(r.exit_point as u64),
                samples["exit_point"][k].as_u64(),
                "{name}: row {k} exit point"
            );
            assert_eq!(
                Some(r.correct),
                samples["correct"][k].as_bool(),
                "{name}: row {k} correct"
            );
            assert!(r.vanilla_ms > 0.0 && r.optimal_ms.is_none());
        }
        let uniform = golden_args(&dir).iter().any(|a| a == "uniform");
        assert_eq!(
            rows.iter().all(|r| r.queueing_ms.is_some()),
            !uniform,
            "{name}: queueing_ms filled iff a decision file is given"
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn simulate_accepts_dashed_flags_and_writes_every_file() {
    let dir = golden_dir().join("cv-resnet18-uniform");
    // Flag names with dashes; values (paths with underscores) unchanged.
    let args: Vec<String> = golden_args(&dir)
        .into_iter()
        .map(|a| {
            if a.starts_with("--") {
                a.replace('_', "-")
            } else {
                a
            }
        })
        .collect();
    let out = temp_dir("dashed");
    let o = simulate(&args, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "summary.json",
        "batches.jsonl",
        "latencies.pickle",
        "requests.parquet",
        "log.txt",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Runs `worker simulate` with one input swapped for `bad`, expects a one-line error that
/// names `names` and mentions `problem`.
fn expect_failure(flag: &str, bad: &Path, names: &str, problem: &str) {
    let dir = golden_dir().join("cv-resnet18-auburn");
    let mut args = golden_args(&dir);
    let pos = args.iter().position(|a| a == flag).expect("flag present") + 1;
    args[pos] = bad.display().to_string();
    let out = temp_dir("bad");
    let o = simulate(&args, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{flag}: exit code; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{flag}: panic: {stderr}");
    let err: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(err.len(), 1, "{flag}: one error line expected: {stderr}");
    assert!(
        err[0].contains(names),
        "{flag}: error does not name {names}: {}",
        err[0]
    );
    assert!(
        err[0].to_lowercase().contains(problem),
        "{flag}: error does not say {problem}: {}",
        err[0]
    );
    assert!(
        !out.join("summary.json").exists(),
        "{flag}: no result on failure"
    );
    let _ = std::fs::remove_dir_all(&out);
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../apparate/tests/fixtures/pickles")
        .join(name)
}

#[test]
fn corrupt_or_truncated_pickles_fail_with_the_file_named() {
    expect_failure(
        "--simulation_pickle_path",
        &fixture("bad_truncated.pickle"),
        "bad_truncated.pickle",
        "truncated",
    );
    expect_failure(
        "--bootstrap_pickle_path",
        &fixture("bad_random.pickle"),
        "bad_random.pickle",
        "",
    );
}

#[test]
fn nan_confidence_and_unequal_ramps_fail_with_the_place_named() {
    expect_failure(
        "--simulation_pickle_path",
        &fixture("bad_conf_nan.pickle"),
        "conf[1][2]",
        "nan",
    );
    expect_failure(
        "--bootstrap_pickle_path",
        &fixture("bad_unequal_conf.pickle"),
        "conf[1] holds 4 samples but conf[0] holds 5",
        "",
    );
}

#[test]
fn a_missing_profile_batch_size_fails_naming_the_file() {
    let src = golden_dir().join("cv-resnet18-auburn/data/profile_pickles_bs");
    let dst = temp_dir("profiles");
    for e in std::fs::read_dir(&src).expect("profiles") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        if name != "resnet18_32_earlyexit_profile.pickle" {
            std::fs::copy(&p, dst.join(&name)).expect("copy");
        }
    }
    expect_failure(
        "--profile_dir",
        &dst,
        "resnet18_32_earlyexit_profile.pickle",
        "32",
    );
    let _ = std::fs::remove_dir_all(&dst);
}

#[test]
fn a_missing_input_file_fails_naming_it() {
    expect_failure(
        "--batch_decision_path",
        Path::new("/nonexistent/decisions.pickle"),
        "/nonexistent/decisions.pickle",
        "no such file",
    );
}
