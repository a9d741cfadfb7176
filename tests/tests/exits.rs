//! Issue #16, item 1: a remote worker ends when the sweep is done, whatever its other slots are
//! doing, and gives up (non-zero, one line) on a coordinator that stays unreachable.

use crate::util::{closed_addr, embedded_spec, fresh_dir, TestCluster};

/// The `error:` lines of a log (what the worker printed when it exited).
fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("error:")).collect()
}

#[test]
fn issue16_a_worker_exits_when_one_slot_hears_the_sweep_is_done_while_another_backs_off() {
    let dir = fresh_dir("done-while-backoff");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn", "hampton"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    // One slot sits in the backoff of a failed pull until `retry` exists; the other runs both
    // tasks and is told that the sweep is done.
    let retry = dir.join("retry");
    let retry_s = retry.display().to_string();
    let w = c.start_worker(&["--slots", "2"], &[("APPARATE_FAULT_BACKOFF", &retry_s)]);
    c.await_log_line(Some(w), "fault hook: a slot backs off");
    c.await_sweep(true);
    // The coordinator has shut down: a slot still retrying now finds nobody, for ever.
    std::fs::write(&retry, "").expect("end the backoff");
    let status = c.await_exit(Some(w));
    let log = c.workers[w].log_text();
    assert!(status.success(), "worker exit {status}\n{log}");
    assert!(log.contains("the sweep is done"), "{log}");
    assert!(error_lines(&log).is_empty(), "{log}");
}

#[test]
fn issue16_a_worker_gives_up_on_a_killed_coordinator_with_one_line() {
    let dir = fresh_dir("give-up-killed");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&[]);
    // The worker holds the only task (stalled), so the sweep cannot finish before the kill.
    let never = dir.join("never").display().to_string();
    let w = c.start_worker(
        &["--slots", "2", "--give-up-after", "2s"],
        &[("APPARATE_FAULT_STALL", &never)],
    );
    c.await_log_line(Some(w), "fault hook: stalling");
    let addr = c.addr.clone();
    c.kill_coordinator();
    let status = c.await_exit(Some(w));
    let log = c.workers[w].log_text();
    assert!(!status.success(), "worker exit {status}\n{log}");
    assert_eq!(
        error_lines(&log),
        [format!(
            "error: giving up: the coordinator at http://{addr} has been unreachable for longer than --give-up-after 2s"
        )
        .as_str()],
        "{log}"
    );
}

#[test]
fn issue16_a_worker_gives_up_on_a_coordinator_it_never_reaches() {
    let dir = fresh_dir("give-up-never");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.addr = closed_addr();
    let w = c.start_worker(&["--give-up-after", "1s"], &[]);
    let status = c.await_exit(Some(w));
    let log = c.workers[w].log_text();
    assert!(!status.success(), "worker exit {status}\n{log}");
    assert_eq!(
        error_lines(&log),
        [format!(
            "error: giving up: the coordinator at http://{} has been unreachable for longer than --give-up-after 1s",
            c.addr
        )
        .as_str()],
        "{log}"
    );
}

#[test]
fn issue16_a_worker_quiet_for_longer_than_its_give_up_time_does_not_give_up_on_a_live_coordinator()
{
    let dir = fresh_dir("give-up-quiet");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.start_coordinator(&["--lease-ms", "3000"]);
    // The worker stalls in its task without heartbeats: no call, so no failed call, for as
    // long as the lease takes to expire (3 s, three times --give-up-after).
    let go = dir.join("go");
    let go_s = go.display().to_string();
    let w = c.start_worker(
        &["--give-up-after", "1s"],
        &[
            ("APPARATE_FAULT_STALL", &go_s),
            ("APPARATE_FAULT_STALL_SILENT", "1"),
        ],
    );
    c.await_log_line(Some(w), "fault hook: stalling");
    c.await_log_line(None, "expired");
    std::fs::write(&go, "").expect("release the stall");
    c.await_sweep(true);
    let status = c.await_exit(Some(w));
    let log = c.workers[w].log_text();
    assert!(status.success(), "worker exit {status}\n{log}");
    assert!(error_lines(&log).is_empty(), "{log}");
}
