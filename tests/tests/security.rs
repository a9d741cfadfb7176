use crate::util::{assert_same_results, embedded_spec, fresh_dir, run_local, TestCluster};

#[test]
fn a_worker_with_a_wrong_token_gets_no_task() {
    let dir = fresh_dir("wrong-token");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    let wrong = dir.join("wrong-token");
    std::fs::write(&wrong, "guess").expect("write token");
    let wrong = wrong.display().to_string();
    let intruder = c.start_worker(&["--token-file", &wrong], &[]);
    assert!(
        !c.await_exit(Some(intruder)).success(),
        "refused worker exits non-zero"
    );
    assert!(c.workers[intruder]
        .log_text()
        .contains("missing or wrong token"));
    c.await_log_line(None, "wrong token (unauthenticated)");
    assert_eq!(c.registered_workers(), 0, "the intruder never registered");
    assert!(c
        .status()
        .values()
        .all(|(s, a, _)| s == "pending" && *a == 0));
    c.start_worker(&[], &[]);
    c.await_sweep(true);
    assert_eq!(c.registered_workers(), 1);
}

#[test]
fn a_result_from_a_superseded_attempt_is_rejected() {
    let dir = fresh_dir("superseded");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let baseline = dir.join("local");
    run_local(&spec, &baseline);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    // Worker 0 leases the only task (attempt 1) and goes silent: the lease expires.
    let (go_a, go_b) = (dir.join("go-a"), dir.join("go-b"));
    let (ga, gb) = (go_a.display().to_string(), go_b.display().to_string());
    let a = c.start_worker(
        &[],
        &[
            ("APPARATE_FAULT_STALL", &ga),
            ("APPARATE_FAULT_STALL_SILENT", "1"),
        ],
    );
    c.await_log_line(Some(a), "fault hook: stalling");
    c.await_log_line(None, "expired");
    // Worker 1 leases it again (attempt 2) and holds it, heartbeating.
    let b = c.start_worker(&[], &[("APPARATE_FAULT_STALL", &gb)]);
    c.await_log_line(Some(b), "fault hook: stalling");
    // Worker 0 wakes up and sends its stale result: refused.
    std::fs::write(&go_a, "").expect("release a");
    c.await_log_line(None, "rejected the result of attempt a1");
    c.await_log_line(Some(a), "rejected");
    std::fs::write(&go_b, "").expect("release b");
    c.await_sweep(true);
    assert_same_results(&baseline, &c.out);
    let status = c.status();
    let (state, attempts, succeeded) = status.values().next().expect("one task").clone();
    assert_eq!((state.as_str(), succeeded), ("done", 1));
    assert!(attempts >= 2);
}
