//! The real `worker batching` binary: a golden trace, malformed traces, a missing file.

use std::path::{Path, PathBuf};
use std::process::Command;

use apparate::batching::DecisionFile;
use serde_json::Value;

use crate::batching_expect::{mismatches, read_json};
use crate::util::golden_dir;

// ---------------------------------------------------------------------------------------------
// The `worker batching` binary
// ---------------------------------------------------------------------------------------------

/// A fresh scratch folder under Cargo's per-target temp dir.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("batching-{name}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear scratch dir");
    }
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn worker_batching(trace: &Path, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("batching")
        .arg("--trace")
        .arg(trace)
        .arg("--out")
        .arg(out)
        .output()
        .expect("the worker binary starts")
}

#[test]
fn worker_batching_writes_the_expected_decisions_for_a_golden_trace() {
    let scenario = golden_dir().join("batching-tfserve");
    let out = scratch_dir("cli-golden").join("decisions.json");
    let run = worker_batching(&scenario.join("trace.json"), &out);
    assert!(
        run.status.success(),
        "worker batching failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    let text = std::fs::read_to_string(&out).expect("decision file written");
    let actual: DecisionFile = serde_json::from_str(&text).expect("decision file parses");
    let problems = mismatches(&actual, &read_json(&scenario.join("expected.json")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let raw: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(raw["scheme"], "tf_serve");
    assert!(raw["per_request_stats"]
        .as_array()
        .is_some_and(|s| s.iter().any(Value::is_null)));
}

/// A malformed variant of a valid trace: its name, how to break the trace, and the message
/// `worker batching` must print.
type Corruption = (&'static str, fn(&mut Value), &'static str);

#[test]
fn worker_batching_rejects_malformed_traces_naming_the_file_and_the_field() {
    let golden = read_json(&golden_dir().join("batching-clockwork-spec-e10/trace.json"));
    let dir = scratch_dir("cli-malformed");
    let cases: [Corruption; 7] = [
        (
            "missing-slo",
            |t| {
                if let Some(obj) = t.as_object_mut() {
                    obj.remove("slo_ms");
                }
            },
            "missing key `slo_ms`",
        ),
        (
            "string-arrival",
            |t| t["arrival_ms"][3] = "6.0".into(),
            "field `arrival_ms[3]`: expected a number",
        ),
        (
            "short-m",
            |t| {
                if let Some(m) = t["M_ms"].as_array_mut() {
                    m.pop();
                }
            },
            "field `M_ms`",
        ),
        (
            "decreasing-m",
            |t| t["M_ms"][2] = 5.5.into(),
            "field `M_ms`: serving times must be strictly increasing",
        ),
        (
            "unsorted-arrivals",
            |t| t["arrival_ms"][5] = 1.0.into(),
            "field `arrival_ms`: arrivals must be non-decreasing",
        ),
        (
            "unknown-scheme",
            |t| t["scheme"] = "fifo".into(),
            "field `scheme`: unknown batching scheme \"fifo\"",
        ),
        (
            "negative-batch-size",
            |t| t["max_batch_size"] = (-8).into(),
            "field `max_batch_size`: expected a non-negative integer",
        ),
    ];
    for (name, corrupt, message) in cases {
        let mut trace = golden.clone();
        corrupt(&mut trace);
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, trace.to_string()).expect("write corrupt trace");
        let out = dir.join(format!("{name}.out.json"));
        let run = worker_batching(&path, &out);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{name}: accepted a malformed trace");
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(message),
            "{name}: stderr does not name the file and `{message}`:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: panicked:\n{stderr}");
        assert!(!out.exists(), "{name}: wrote an output file");
    }
}

#[test]
fn worker_batching_fails_cleanly_on_a_missing_trace_file() {
    let dir = scratch_dir("cli-missing");
    let path = dir.join("nope.json");
    let run = worker_batching(&path, &dir.join("out.json"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("cannot read trace file") && stderr.contains("nope.json"));
}
