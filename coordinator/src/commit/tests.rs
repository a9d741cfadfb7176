//! The group committer, driven directly (no network): batching, and a batch in which one
//! result cannot be committed.

use super::*;
use crate::ids::{AttemptId, TaskIdx, WorkerId};
use crate::ledger::{AttemptOutcome, LedgerEvent, Pull, TaskState};
use crate::{Sweep, SweepOptions};
use apparate::results::{Manifest, ResultFile, ResultsDir, TaskStatus, Timings};
use apparate::sweep::SweepSpec;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const SPEC: &str = "name = \"gc\"\nseeds = [0, 1, 2]\n[inputs]\nkind = \"embedded\"\n\
    scale = 0.01\n[traces.video30]\nkind = \"fixed\"\nqps = 30.0\n[[grid]]\nname = \"cv\"\n\
    models = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"video30\"]\n\
    batching = [\"clockwork\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n";

const LEASE: Duration = Duration::from_secs(30);

/// A sweep of three tasks in a fresh folder.
fn sweep(name: &str) -> (Sweep, apparate::sweep::Plan, PathBuf) {
    let dir = std::env::temp_dir().join(format!("coord-commit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let plan = SweepSpec::from_toml(SPEC, "test", &dir)
        .expect("spec")
        .plan()
        .expect("plan");
    let writer = ResultsDir::new(&dir).lock().expect("lock");
    let opts = SweepOptions {
        lease: LEASE,
        max_attempts: 3,
        max_failures_in_row: 3,
        token: "t".into(),
    };
    let sweep = Sweep::start(&plan, writer, &opts).expect("start");
    (sweep, plan, dir)
}

type Reply = tokio::sync::oneshot::Receiver<Result<(), CommitError>>;

/// Leases a task to `worker`, stages a result (the six files, tiny) and its manifest (as the upload handler
/// does) unless `staged` is false (then its staging folder is missing and cannot be renamed),
/// and starts its commit.
fn staged_job(
    shared: &Shared,
    worker: WorkerId,
    now: Instant,
    staged: bool,
) -> (TaskIdx, AttemptId, CommitJob, Reply) {
    let mut core = shared.lock();
    let (pull, events) = core.ledger.on_pull(worker, now).expect("pull");
    shared.act(&mut core, &events);
    let Pull::Lease { task, attempt } = pull else {
        panic!("expected a lease, got {pull:?}");
    };
    let planned = core.tasks.get(task.get()).expect("planned task");
    let staging = shared
        .writer()
        .dir()
        .staging_root()
        .join(format!("{}-{attempt}", planned.key));
    // The six files a task produces (tiny; summary.json and log.txt agree with the outcome).
    let line = format!("line of {}", planned.key);
    let bodies: Vec<(&str, Vec<u8>)> = apparate::task::RESULT_FILES
        .iter()
        .map(|&name| {
            let body = match name {
                "summary.json" => b"{\"num_requests\": 1}\n".to_vec(),
                "log.txt" => format!("args: test\n{line}\n").into_bytes(),
                _ => b"x\n".to_vec(),
            };
            (name, body)
        })
        .collect();
    let listed: Vec<ResultFile> = bodies
        .iter()
        .map(|(name, body)| ResultFile {
            name: (*name).into(),
            bytes: body.len() as u64,
            sha256: apparate::sweep::digest::sha256_hex(body),
        })
        .collect();
    let manifest = Manifest::new(
        &planned,
        &apparate::code_version(),
        listed,
        1,
        vec![line],
        Timings {
            started_unix_ms: 0,
            run_ms: 0,
            total_ms: 0,
        },
    );
    if staged {
        std::fs::create_dir_all(&staging).expect("staging");
        for (name, body) in &bodies {
            let mut file = File::create(staging.join(name)).expect("create");
            file.write_all(body).expect("write");
        }
        shared
            .writer()
            .write_manifest(&staging, &manifest)
            .expect("manifest");
    }
    assert_eq!(
        core.ledger
            .on_commit_start(worker, attempt)
            .expect("commit start"),
        task
    );
    let (reply, rx) = tokio::sync::oneshot::channel();
    let job = CommitJob {
        worker,
        attempt,
        staging,
        key: planned.key,
        reply,
    };
    (task, attempt, job, rx)
}

#[test]
fn a_batch_takes_what_is_queued_up_to_its_cap() {
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..5 {
        tx.send(i).expect("send");
    }
    assert_eq!(take_batch(&rx, 3), Some(vec![0, 1, 2]));
    assert_eq!(take_batch(&rx, 3), Some(vec![3, 4]));
    tx.send(5).expect("send");
    drop(tx);
    assert_eq!(take_batch(&rx, 3), Some(vec![5]));
    assert_eq!(take_batch(&rx, 3), None);
}

#[test]
fn one_bad_result_in_a_batch_aborts_only_itself() {
    let (sweep, plan, dir) = sweep("bad");
    let shared = sweep.shared();
    let now = Instant::now();
    let worker = shared.lock().ledger.on_register("test");
    let (t0, _, j0, mut r0) = staged_job(&shared, worker, now, true);
    let (t1, a1, j1, mut r1) = staged_job(&shared, worker, now, false);
    let (t2, _, j2, mut r2) = staged_job(&shared, worker, now, true);

    shared.commit_batch(vec![j0, j1, j2]);

    // Answered, each on its own.
    assert!(matches!(r0.try_recv(), Ok(Ok(()))));
    assert!(matches!(r1.try_recv(), Ok(Err(CommitError::Write { .. }))));
    assert!(matches!(r2.try_recv(), Ok(Ok(()))));
    // The acknowledged results are complete in `tasks/`; the bad one left nothing.
    let task = |t: TaskIdx| plan.task(t.get()).expect("task");
    for t in [t0, t2] {
        let status = shared.writer().dir().status(&task(t), plan.code_version());
        assert!(matches!(status, TaskStatus::Complete(_)), "{status:?}");
    }
    assert!(!shared.writer().dir().task_dir(&task(t1).key).exists());
    assert_eq!(
        std::fs::read_dir(shared.writer().dir().staging_root())
            .expect("staging root")
            .count(),
        0,
        "staging debris"
    );

    let mut core = shared.lock();
    // The ledger: two done (recorded), the bad one still leased to its attempt...
    assert!(matches!(
        core.ledger.state(t0),
        Some(TaskState::Done { .. })
    ));
    assert!(matches!(
        core.ledger.state(t2),
        Some(TaskState::Done { .. })
    ));
    assert_eq!(core.ledger.current(worker, a1).expect("still current"), t1);
    let rows = core.store.task_rows().expect("rows");
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    let mut expected = vec!["done"; 3];
    expected[t1.get()] = "leased";
    assert_eq!(states, expected);
    // ... and no longer committing: its lease expires as usual.
    let events = core.ledger.on_tick(now + 2 * LEASE);
    assert!(events.contains(&LedgerEvent::AttemptEnded {
        task: t1,
        attempt: a1,
        outcome: AttemptOutcome::Expired,
    }));
    core.ledger.sanity_check();
    drop(core);
    drop(shared);
    drop(sweep);
    let _ = std::fs::remove_dir_all(dir);
}
