//! `task::run_task`: one grid task end to end on artifact inputs (a golden scenario's data).

use crate::util::{auburn_task_over, golden_dir};
use apparate::output::read_requests_parquet;
use apparate::task::{run_task, Inputs, TaskSpec};
use std::path::PathBuf;

fn auburn_task() -> TaskSpec {
    auburn_task_over(golden_dir().join("cv-resnet18-auburn/data"))
}

fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("task-run-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn an_artifact_task_reproduces_the_golden_run_and_fills_the_baselines() {
    let spec = auburn_task();
    let out = out_dir("auburn");
    let outcome = run_task(&spec, &out).expect("task runs");
    let want = std::fs::read_to_string(golden_dir().join("cv-resnet18-auburn/expected/log.txt"))
        .expect("log");
    let got = std::fs::read_to_string(out.join("log.txt")).expect("log.txt");
    assert_eq!(
        got.lines().skip(1).collect::<Vec<_>>(),
        want.lines().skip(1).collect::<Vec<_>>()
    );
    assert_eq!(
        outcome.summary_lines,
        vec![want.lines().last().expect("summary").to_string()]
    );
    let rows = read_requests_parquet(&out.join("requests.parquet")).expect("parquet");
    assert_eq!(rows.len(), 4490);
    for r in &rows {
        let q = r.queueing_ms.expect("queueing filled");
        let o = r.optimal_ms.expect("optimal filled");
        let s = r.static_ms.expect("static filled");
        assert!(q >= 0.0 && o > 0.0 && s > 0.0);
        assert!(o <= r.vanilla_ms, "the oracle is capped at vanilla");
        assert!(r.static_correct.is_some());
    }
    let baselines: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("baselines.json")).expect("baselines"))
            .expect("json");
    // Static early exits: a ramp at each of the 8 sites.
    assert_eq!(
        baselines["static"]["ramp_ids"].as_array().map(Vec::len),
        Some(8)
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn recorded_decisions_need_artifact_inputs() {
    let mut spec = auburn_task();
    spec.inputs = Inputs::Embedded { scale: 0.01 };
    let err = run_task(&spec, &out_dir("mismatch")).expect_err("must fail");
    assert!(
        err.to_string().contains("need artifact inputs") || err.to_string().contains("embedded"),
        "{err}"
    );
}
