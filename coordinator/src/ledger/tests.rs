//! Ledger scenarios: call the transitions, check the exact events, end with `sanity_check`.

use super::*;

fn key(i: usize) -> TaskKey {
    TaskKey::parse(&format!("t{i}")).expect("valid key")
}

fn ledger(n: usize, max_attempts: u32) -> Ledger {
    Ledger::new(
        LedgerConfig {
            lease: Duration::from_secs(10),
            max_attempts,
            max_failures_in_row: 2,
        },
        (0..n).map(|i| (key(i), false)),
        AttemptId::new(1),
        WorkerId::new(1),
    )
}

fn lease(l: &mut Ledger, w: WorkerId, now: Instant) -> (TaskIdx, AttemptId) {
    match l.on_pull(w, now).expect("known worker") {
        (Pull::Lease { task, attempt }, events) => {
            assert_eq!(
                events,
                vec![LedgerEvent::Leased {
                    task,
                    worker: w,
                    attempt
                }]
            );
            (task, attempt)
        }
        (other, _) => panic!("expected a lease, got {other:?}"),
    }
}

#[test]
fn a_task_leased_and_completed_finishes_the_sweep() {
    let now = Instant::now();
    let mut l = ledger(1, 3);
    let w = l.on_register("h");
    let (task, attempt) = lease(&mut l, w, now);
    assert_eq!(
        l.on_pull(w, now).expect("ok").0,
        Pull::Wait { blocked: None }
    );
    let events = l.on_result(w, attempt).expect("current");
    assert_eq!(
        events,
        vec![
            LedgerEvent::AttemptEnded {
                task,
                attempt,
                outcome: AttemptOutcome::Succeeded
            },
            LedgerEvent::TaskDone {
                task,
                worker: w,
                attempt
            },
            LedgerEvent::SweepFinished,
        ]
    );
    assert_eq!(l.on_pull(w, now).expect("ok").0, Pull::Finished);
    l.sanity_check();
}

#[test]
fn a_late_result_from_a_superseded_attempt_is_rejected() {
    let now = Instant::now();
    let mut l = ledger(1, 3);
    let (a, b) = (l.on_register("a"), l.on_register("b"));
    let (task, first) = lease(&mut l, a, now);
    let later = now + Duration::from_secs(11);
    let events = l.on_tick(later);
    assert_eq!(
        events,
        vec![
            LedgerEvent::AttemptEnded {
                task,
                attempt: first,
                outcome: AttemptOutcome::Expired
            },
            LedgerEvent::TaskReady { task },
        ]
    );
    let (task2, second) = lease(&mut l, b, later);
    assert_eq!((task2, second), (task, first.next()));
    // The first worker comes back with its result: refused, and the lease stays with b.
    assert!(matches!(
        l.on_result(a, first),
        Err(LedgerError::NotCurrent { .. })
    ));
    assert_eq!(
        l.on_heartbeat(a, &[first], later).expect("known"),
        vec![first]
    );
    assert!(matches!(l.state(task), Some(TaskState::Leased { attempt, .. }) if *attempt == second));
    assert_eq!(l.on_result(b, second).expect("current").len(), 3);
    assert!(l.is_finished());
    l.sanity_check();
}

#[test]
fn heartbeats_keep_a_lease_alive() {
    let now = Instant::now();
    let mut l = ledger(1, 3);
    let w = l.on_register("h");
    let (_, attempt) = lease(&mut l, w, now);
    for s in 1..=5 {
        let t = now + Duration::from_secs(8 * s);
        assert!(l.on_heartbeat(w, &[attempt], t).expect("known").is_empty());
        assert!(l.on_tick(t).is_empty());
    }
    l.sanity_check();
}

#[test]
fn lost_workers_are_retried_up_to_max_attempts() {
    let mut now = Instant::now();
    let mut l = ledger(1, 2);
    let w = l.on_register("h");
    lease(&mut l, w, now);
    now += Duration::from_secs(11);
    assert_eq!(l.on_tick(now).len(), 2);
    let (task, _) = lease(&mut l, w, now);
    now += Duration::from_secs(11);
    let events = l.on_tick(now);
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(&events[1], LedgerEvent::TaskFailed { task: t, .. } if *t == task));
    assert_eq!(events[2], LedgerEvent::SweepFinished);
    assert_eq!(l.counts().failed, 1);
    l.sanity_check();
}

#[test]
fn a_bad_input_fails_the_task_at_once() {
    let now = Instant::now();
    let mut l = ledger(2, 3);
    let w = l.on_register("h");
    let (task, attempt) = lease(&mut l, w, now);
    let events = l
        .on_failure(w, attempt, false, false, "x.pickle: truncated")
        .expect("current");
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        LedgerEvent::TaskFailed {
            task,
            reason: "x.pickle: truncated".into()
        }
    );
    // Not the worker's fault: it still gets tasks.
    lease(&mut l, w, now);
    l.sanity_check();
}

#[test]
fn a_worker_failing_k_times_in_a_row_gets_no_more_tasks() {
    let now = Instant::now();
    let mut l = ledger(3, 5);
    let w = l.on_register("h");
    for i in 0..2 {
        let (_, attempt) = lease(&mut l, w, now);
        let events = l
            .on_failure(w, attempt, true, true, "disk full")
            .expect("ok");
        assert_eq!(events.len(), if i == 1 { 3 } else { 2 }, "{events:?}");
    }
    assert!(matches!(
        l.on_pull(w, now).expect("ok").0,
        Pull::Wait { blocked: Some(_) }
    ));
    let other = l.on_register("g");
    lease(&mut l, other, now);
    l.sanity_check();
}

#[test]
fn a_returned_lease_goes_back_to_the_front_uncounted() {
    let now = Instant::now();
    let mut l = ledger(2, 1);
    let w = l.on_register("h");
    let (task, attempt) = lease(&mut l, w, now);
    assert_eq!(l.on_return(w, attempt).expect("current").len(), 2);
    let (again, next) = lease(&mut l, w, now);
    assert_eq!(again, task);
    assert_ne!(next, attempt);
    assert!(l.on_result(w, attempt).is_err());
    l.sanity_check();
}

#[test]
fn tasks_complete_at_start_are_never_leased() {
    let now = Instant::now();
    let mut l = Ledger::new(
        LedgerConfig {
            lease: Duration::from_secs(1),
            max_attempts: 1,
            max_failures_in_row: 1,
        },
        [(key(0), true), (key(1), false)],
        AttemptId::new(7),
        WorkerId::new(3),
    );
    let w = l.on_register("h");
    assert_eq!(w, WorkerId::new(3));
    assert_eq!(lease(&mut l, w, now), (TaskIdx::new(1), AttemptId::new(7)));
    assert!(l.on_pull(WorkerId::new(99), now).is_err());
    l.sanity_check();
}

#[test]
fn a_lease_being_committed_does_not_expire() {
    let now = Instant::now();
    let mut l = ledger(1, 3);
    let w = l.on_register("h");
    let (task, attempt) = lease(&mut l, w, now);
    assert_eq!(l.on_commit_start(w, attempt), Ok(task));
    assert!(l.on_tick(now + Duration::from_secs(60)).is_empty());
    assert_eq!(l.on_result(w, attempt).expect("current").len(), 3);
    l.sanity_check();
}

#[test]
fn an_aborted_commit_lets_the_lease_expire_again() {
    let now = Instant::now();
    let mut l = ledger(1, 3);
    let w = l.on_register("h");
    let (_, attempt) = lease(&mut l, w, now);
    l.on_commit_start(w, attempt).expect("current");
    let later = now + Duration::from_secs(60);
    l.on_commit_abort(attempt, later);
    assert!(l.on_tick(later).is_empty());
    assert_eq!(l.on_tick(later + Duration::from_secs(11)).len(), 2);
    l.sanity_check();
}

#[test]
fn a_task_that_needs_a_gpu_is_leased_only_to_a_gpu_worker() {
    let now = Instant::now();
    let mut l = ledger(3, 3);
    // Task 0 and 2: live runs on `device = "cuda"`; task 1 simulated.
    l.require_gpu(TaskIdx::new(0));
    l.require_gpu(TaskIdx::new(2));
    let cpu = l.on_register_with("cpu-host", false);
    assert_eq!((l.waiting_for_gpu(), l.gpu_workers()), (2, 0));
    // The CPU worker passes the GPU tasks by and gets the simulated one.
    let (task, attempt) = lease(&mut l, cpu, now);
    assert_eq!(task, TaskIdx::new(1));
    // Nothing else it may take: it waits (never told that the sweep is finished).
    assert_eq!(
        l.on_pull(cpu, now).expect("ok").0,
        Pull::Wait { blocked: None }
    );
    l.on_result(cpu, attempt).expect("current");
    assert!(!l.is_finished());
    assert_eq!(l.waiting_for_gpu(), 2);
    assert_eq!(l.state(TaskIdx::new(0)), Some(&TaskState::Pending));
    l.sanity_check();
    // A GPU worker takes them, in grid order.
    let gpu = l.on_register_with("gpu-host", true);
    assert_eq!(l.gpu_workers(), 1);
    let (t0, a0) = lease(&mut l, gpu, now);
    let (t2, a2) = lease(&mut l, gpu, now);
    assert_eq!((t0, t2), (TaskIdx::new(0), TaskIdx::new(2)));
    assert_eq!(l.waiting_for_gpu(), 0);
    l.on_result(gpu, a0).expect("current");
    let events = l.on_result(gpu, a2).expect("current");
    assert!(events.contains(&LedgerEvent::SweepFinished));
    l.sanity_check();
}

#[test]
fn a_gpu_task_handed_back_goes_back_to_its_place_and_still_needs_a_gpu() {
    let now = Instant::now();
    let mut l = ledger(2, 3);
    l.require_gpu(TaskIdx::new(0));
    let gpu = l.on_register_with("gpu-host", true);
    let cpu = l.on_register("cpu-host");
    let (t, a) = lease(&mut l, gpu, now);
    assert_eq!(t, TaskIdx::new(0));
    l.on_return(gpu, a).expect("current");
    assert_eq!(l.waiting_for_gpu(), 1);
    let (t, _) = lease(&mut l, cpu, now);
    assert_eq!(t, TaskIdx::new(1));
    assert_eq!(
        l.on_pull(cpu, now).expect("ok").0,
        Pull::Wait { blocked: None }
    );
    let (t, _) = lease(&mut l, gpu, now);
    assert_eq!(t, TaskIdx::new(0));
    l.sanity_check();
}
