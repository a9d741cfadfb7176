use crate::util::{
    assert_same_results, embedded_spec, fresh_dir, planned_keys, run_local, TestCluster,
};

#[test]
fn a_worker_killed_mid_task_costs_time_not_results() {
    let dir = fresh_dir("kill-worker");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn", "hampton", "oxford"]);
    let baseline = dir.join("local");
    run_local(&spec, &baseline);

    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&["--lease-ms", "1000"]);
    // Worker 0 stalls inside its first task (deterministically mid-task), then dies.
    let never = dir.join("never");
    let never = never.display().to_string();
    let victim = c.start_worker(&[], &[("APPARATE_FAULT_STALL", &never)]);
    let leased = c.await_log_line(Some(victim), "leased ");
    let lost_key = leased
        .split("leased ")
        .nth(1)
        .and_then(|l| l.split(' ').next())
        .expect("key")
        .to_string();
    c.await_log_line(Some(victim), "fault hook: stalling");
    c.kill_worker(victim);
    c.start_worker(&[], &[]);
    c.start_worker(&[], &[]);
    c.await_sweep(true);
    assert!(
        c.coordinator_log().contains("expired"),
        "the lost lease expired"
    );
    assert_same_results(&baseline, &c.out);
    let status = c.status();
    for k in planned_keys(&c.out) {
        let (state, _, succeeded) = &status[&k];
        assert_eq!(
            (state.as_str(), *succeeded),
            ("done", 1),
            "{k}: one accepted result"
        );
    }
    assert!(
        status[&lost_key].1 >= 2,
        "the lost task ran again: {status:?}"
    );
}

#[test]
fn a_coordinator_killed_mid_sweep_resumes_without_rerunning_complete_tasks() {
    let dir = fresh_dir("kill-coordinator");
    let spec = embedded_spec(
        &dir,
        &["resnet18", "vgg11"],
        &["auburn", "hampton", "oxford"],
    );
    let baseline = dir.join("local");
    run_local(&spec, &baseline);

    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    // Worker 0 holds one task until `release` exists, so the sweep cannot finish before the
    // kill; worker 1 completes at least two tasks meanwhile.
    let release = dir.join("release");
    let release_s = release.display().to_string();
    let holder = c.start_worker(&[], &[("APPARATE_FAULT_STALL", &release_s)]);
    c.await_log_line(Some(holder), "fault hook: stalling");
    c.start_worker(&[], &[]);
    c.await_log_count(None, "done by worker", 2);
    c.restart_coordinator(); // SIGKILL, then the same command on the same port
    let before: Vec<String> = std::fs::read_to_string(c.dir.join("coordinator-1.log"))
        .expect("first log")
        .lines()
        .filter(|l| l.contains("done by worker"))
        .filter_map(|l| l.split("task ").nth(1))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    assert!(before.len() >= 2, "{before:?}");
    std::fs::write(&release, "").expect("release the held task");
    c.await_sweep(true);
    assert_same_results(&baseline, &c.out);
    let status = c.status();
    for k in &before {
        assert_eq!(
            status[k],
            ("cached".to_string(), 1, 1),
            "{k} completed before the kill: one attempt, never run again"
        );
    }
    for k in planned_keys(&c.out) {
        assert_eq!(status[&k].2, 1, "{k}: exactly one successful attempt");
    }
}

#[test]
fn a_worker_stopped_by_sigterm_finishes_its_task_and_a_second_sigterm_hands_the_lease_back() {
    let dir = fresh_dir("sigterm");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn", "hampton", "oxford"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    // One SIGTERM: the running task finishes and is uploaded, then the worker exits 0.
    let go = dir.join("go");
    let go_s = go.display().to_string();
    let polite = c.start_worker(&[], &[("APPARATE_FAULT_STALL", &go_s)]);
    c.await_log_line(Some(polite), "fault hook: stalling");
    c.workers[polite].signal("TERM");
    c.await_log_line(Some(polite), "stopping: finishing running tasks");
    std::fs::write(&go, "").expect("release");
    assert!(c.await_exit(Some(polite)).success());
    c.await_log_line(None, "done by worker w1");
    // Two SIGTERMs: the lease is handed back at once, not counted as a failure.
    let never = dir.join("never").display().to_string();
    let quitter = c.start_worker(&[], &[("APPARATE_FAULT_STALL", &never)]);
    c.await_log_line(Some(quitter), "fault hook: stalling");
    c.workers[quitter].signal("TERM");
    c.await_log_line(Some(quitter), "stopping: finishing running tasks");
    c.workers[quitter].signal("TERM");
    assert!(!c.await_exit(Some(quitter)).success());
    c.await_log_line(None, "handed back attempt");
    c.start_worker(&[], &[]);
    c.await_sweep(true);
    let status = c.status();
    assert!(
        status.values().all(|(s, _, ok)| s == "done" && *ok == 1),
        "{status:?}"
    );
    assert_eq!(
        status.values().map(|v| v.1).sum::<u32>(),
        4,
        "3 tasks, 1 handed back"
    );
}
