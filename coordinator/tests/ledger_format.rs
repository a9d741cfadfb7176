//! The ledger database format (STYLE.md item 9): a frozen v1 `ledger.sqlite`, written by the
//! coordinator of ledger version 1, is still opened and resumed; a newer major is refused with a
//! message naming both versions.
//!
//! The fixture is regenerated only with `UPDATE_GOLDEN=1 cargo test -p coordinator --test
//! main -- ledger_format::the_frozen_v1` (alone: the other test copies the fixture), then reviewed:
//! a new fixture means a new format version.

use coordinator::ids::{AttemptId, TaskIdx, WorkerId};
use coordinator::ledger::{AttemptOutcome, LedgerEvent};
use coordinator::store::{PlannedRow, Store, StoreError, LEDGER_FILE, LEDGER_VERSION};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger-v1.sqlite")
}

fn tasks() -> Vec<PlannedRow> {
    let row = |key: &str, label: &str| PlannedRow {
        key: key.into(),
        label: label.into(),
        complete: false,
    };
    vec![
        row("k-done", "cv/resnet18/auburn/video30"),
        row("k-open", "cv/resnet50/auburn/video30"),
        row("k-todo", "cv/vgg11/auburn/video30"),
    ]
}

/// Writes the v1 fixture: three tasks, one worker; task 0 done by attempt 1, task 1 leased to
/// attempt 2 (left open, as by a killed coordinator), task 2 pending.
fn write_fixture(dir: &Path) {
    let mut store = Store::open(dir).expect("open");
    store.begin_run(&tasks()).expect("begin");
    let w = WorkerId::new(1);
    store
        .record_worker(w, "fixture-host", 1, true, false)
        .expect("worker");
    let (a1, a2) = (AttemptId::new(1), AttemptId::new(2));
    store
        .apply(&[
            LedgerEvent::Leased {
                task: TaskIdx::new(0),
                worker: w,
                attempt: a1,
            },
            LedgerEvent::Leased {
                task: TaskIdx::new(1),
                worker: w,
                attempt: a2,
            },
        ])
        .expect("lease");
    store
        .apply(&[
            LedgerEvent::AttemptEnded {
                task: TaskIdx::new(0),
                attempt: a1,
                outcome: AttemptOutcome::Succeeded,
            },
            LedgerEvent::TaskDone {
                task: TaskIdx::new(0),
                worker: w,
                attempt: a1,
            },
        ])
        .expect("done");
}

/// A fresh folder holding a copy of the fixture as `ledger.sqlite`.
fn copy_fixture(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coord-ledger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(fixture(), dir.join(LEDGER_FILE)).expect("copy the fixture");
    dir
}

#[test]
fn the_frozen_v1_ledger_is_opened_and_resumed() {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let dir = std::env::temp_dir().join(format!("coord-ledger-gen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        write_fixture(&dir);
        // Dropping the store checkpointed the WAL into the database file.
        std::fs::copy(dir.join(LEDGER_FILE), fixture()).expect("write the fixture");
    }
    assert_eq!(
        LEDGER_VERSION, 1,
        "a new ledger version needs its own fixture"
    );
    let dir = copy_fixture("v1");
    let mut store = Store::open(&dir).expect("the v1 ledger opens");
    let rows = |store: &Store| -> Vec<_> {
        store
            .task_rows()
            .expect("rows")
            .into_iter()
            .map(|r| (r.key, r.state, r.attempts, r.succeeded))
            .collect()
    };
    assert_eq!(
        rows(&store),
        vec![
            ("k-done".to_string(), "done".to_string(), 1, 1),
            ("k-open".to_string(), "leased".to_string(), 1, 0),
            ("k-todo".to_string(), "pending".to_string(), 0, 0),
        ]
    );
    // Resume: task 0 complete in `--out`, the open attempt closed, numbering continued.
    let mut resumed = tasks();
    resumed[0].complete = true;
    let (attempt, worker) = store.begin_run(&resumed).expect("resume");
    assert_eq!((attempt.get(), worker.get()), (3, 2));
    assert_eq!(
        rows(&store),
        vec![
            ("k-done".to_string(), "cached".to_string(), 1, 1),
            ("k-open".to_string(), "pending".to_string(), 1, 0),
            ("k-todo".to_string(), "pending".to_string(), 0, 0),
        ]
    );
    let workers = store.worker_rows().expect("workers");
    assert_eq!(workers.len(), 1);
    assert_eq!(
        (workers[0].host.as_str(), workers[0].succeeded),
        ("fixture-host", 1)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ledger_of_a_newer_major_is_refused_naming_both_versions() {
    let dir = copy_fixture("newer");
    {
        let conn = rusqlite::Connection::open(dir.join(LEDGER_FILE)).expect("sqlite");
        conn.execute("UPDATE meta SET value = '2' WHERE name = 'version'", [])
            .expect("bump the version");
    }
    for opened in [
        Store::open(&dir).map(drop),
        Store::open_read_only(&dir).map(drop),
    ] {
        let err = opened.expect_err("a newer ledger must be refused");
        assert!(
            matches!(
                err,
                StoreError::NewerVersion {
                    found: 2,
                    supported: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("schema 2") && msg.contains("coordinator's 1"),
            "{msg}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
