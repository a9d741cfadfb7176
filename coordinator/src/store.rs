//! The durable ledger: `ledger.sqlite` in `--out` (SQLite, WAL mode), recording every task and
//! every attempt. The pure [`crate::ledger`] decides; this module records what it decided
//! ([`Store::apply`]), so `coordinator status` can read it while a sweep runs or after, and a
//! restarted coordinator continues the attempt and worker numbering.

use crate::ids::{AttemptId, TaskIdx, WorkerId};
use crate::ledger::LedgerEvent;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The ledger's file name inside `--out`.
pub const LEDGER_FILE: &str = "ledger.sqlite";
/// The schema's format name, stored in `meta`.
pub const LEDGER_FORMAT: &str = "apparate-rs/ledger";
/// The schema version; a reader refuses a newer one.
pub const LEDGER_VERSION: u32 = 1;

/// A ledger database error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database (or its `-wal` / `-shm` file) is a symbolic link: never written through.
    #[error("{path}: is a symbolic link; refusing to write the ledger through it (remove it or use another --out)")]
    Link {
        /// The link.
        path: PathBuf,
    },
    /// Written by a newer coordinator.
    #[error("{path}: ledger schema {found} is newer than this coordinator's {supported}")]
    NewerVersion {
        /// The database file.
        path: PathBuf,
        /// Found version.
        found: u32,
        /// Supported version.
        supported: u32,
    },
}

/// The open ledger database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Task keys by plan index (the events name tasks by index).
    keys: Vec<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    key TEXT PRIMARY KEY, idx INTEGER NOT NULL, label TEXT NOT NULL,
    state TEXT NOT NULL, message TEXT, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workers (
    id INTEGER PRIMARY KEY, host TEXT NOT NULL, slots INTEGER NOT NULL,
    has_inputs INTEGER NOT NULL, gpu INTEGER NOT NULL, registered_ms INTEGER NOT NULL,
    blocked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, task_key TEXT NOT NULL, worker INTEGER NOT NULL,
    started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT, message TEXT);
CREATE INDEX IF NOT EXISTS attempts_by_task ON attempts(task_key);
";

/// One task as `coordinator status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRow {
    /// Plan index.
    pub index: i64,
    /// Key.
    pub key: String,
    /// `grid/model/dataset/trace`.
    pub label: String,
    /// `pending`, `leased`, `done`, `cached` or `failed`.
    pub state: String,
    /// Failure reason.
    pub message: Option<String>,
    /// Attempts recorded (all runs).
    pub attempts: i64,
    /// Attempts whose result was accepted.
    pub succeeded: i64,
}

/// One worker as `coordinator status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerRow {
    /// Worker id.
    pub id: i64,
    /// Host it registered from.
    pub host: String,
    /// Its slots.
    pub slots: i64,
    /// Gets no more tasks.
    pub blocked: bool,
    /// Attempts whose result was accepted.
    pub succeeded: i64,
}

/// A task as [`Store::begin_run`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRow {
    /// The task key.
    pub key: String,
    /// Its readable label (`cv/resnet18/auburn/video30`).
    pub label: String,
    /// Complete in the results directory when the run starts.
    pub complete: bool,
}

impl Store {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens (creating) `<out>/ledger.sqlite` for writing, in WAL mode.
    pub fn open(out: &Path) -> Result<Store, StoreError> {
        let path = out.join(LEDGER_FILE);
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let p = PathBuf::from(name);
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(StoreError::Link { path: p });
            }
        }
        // SQLite opens every file without following links; NOFOLLOW makes it refuse a link as
        // the database's own path too (instead of resolving it).
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::default() | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(e)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e)?;
        conn.execute_batch(SCHEMA).map_err(e)?;
        let store = Store {
            conn,
            path: path.clone(),
            keys: Vec::new(),
        };
        store.check_version()?;
        store
            .conn
            .execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('format', ?1), ('version', ?2)",
                params![LEDGER_FORMAT, LEDGER_VERSION.to_string()],
            )
            .map_err(store.err())?;
        Ok(store)
    }

    /// Opens an existing ledger read-only (for `coordinator status`; works while a sweep runs).
    pub fn open_read_only(out: &Path) -> Result<Store, StoreError> {
        let path = out.join(LEDGER_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let store = Store {
            conn,
            path,
            keys: Vec::new(),
        };
        store
            .conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(store.err())?;
        store.check_version()?;
        Ok(store)
    }

    fn check_version(&self) -> Result<(), StoreError> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE name = 'version'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.err())?;
        if let Some(v) = found.and_then(|v| v.parse::<u32>().ok()) {
            if v > LEDGER_VERSION {
                return Err(StoreError::NewerVersion {
                    path: self.path.clone(),
                    found: v,
                    supported: LEDGER_VERSION,
                });
            }
        }
        Ok(())
    }

    /// Starts a run over `tasks` (in plan order): records every task, closes the attempts a
    /// killed coordinator left open (`abandoned`) and returns the first attempt and worker ids
    /// this run may use.
    pub fn begin_run(&mut self, tasks: &[PlannedRow]) -> Result<(AttemptId, WorkerId), StoreError> {
        let now = now_ms();
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        tx.execute(
            "UPDATE attempts SET ended_ms = ?1, outcome = 'abandoned', \
             message = 'the coordinator stopped' WHERE outcome IS NULL",
            params![now],
        )
        .map_err(e)?;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO tasks(key, idx, label, state, message, updated_ms) \
                     VALUES (?1, ?2, ?3, ?4, NULL, ?5) ON CONFLICT(key) DO UPDATE SET \
                     idx = excluded.idx, state = excluded.state, message = NULL, \
                     updated_ms = excluded.updated_ms",
                )
                .map_err(e)?;
            for (i, t) in tasks.iter().enumerate() {
                let state = if t.complete { "cached" } else { "pending" };
                st.execute(params![t.key, i as i64, t.label, state, now])
                    .map_err(e)?;
            }
        }
        let attempt: i64 = tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM attempts", [], |r| {
                r.get(0)
            })
            .map_err(e)?;
        let worker: i64 = tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM workers", [], |r| r.get(0))
            .map_err(e)?;
        tx.commit().map_err(e)?;
        self.keys = tasks.iter().map(|t| t.key.clone()).collect();
        Ok((
            AttemptId::new(attempt.max(0) as u64 + 1),
            WorkerId::new(worker.max(0) as u64 + 1),
        ))
    }

    /// Sets the `meta` row `name` (a note such as the backend inputs' state).
    pub fn set_note(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta(name, value) VALUES (?1, ?2)",
                params![name, value],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The `meta` row `name`, if set.
    pub fn note(&self, name: &str) -> Result<Option<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT value FROM meta WHERE name = ?1")
            .map_err(self.err())?;
        let mut rows = st.query(params![name]).map_err(self.err())?;
        match rows.next().map_err(self.err())? {
            Some(r) => Ok(Some(r.get(0).map_err(self.err())?)),
            None => Ok(None),
        }
    }

    /// Records a registered worker.
    pub fn record_worker(
        &mut self,
        id: WorkerId,
        host: &str,
        slots: u32,
        has_inputs: bool,
        gpu: bool,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO workers(id, host, slots, has_inputs, gpu, registered_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id.get() as i64, host, slots, has_inputs, gpu, now_ms()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Records what a transition did, in one transaction.
    pub fn apply(&mut self, events: &[LedgerEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let key = |t: TaskIdx| self.keys.get(t.get()).map(String::as_str).unwrap_or("?");
        let tx = self.conn.transaction().map_err(e)?;
        for ev in events {
            match ev {
                LedgerEvent::Leased {
                    task,
                    worker,
                    attempt,
                } => {
                    tx.prepare_cached(
                        "INSERT INTO attempts(id, task_key, worker, started_ms) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .and_then(|mut st| st.execute(params![attempt.get() as i64, key(*task), worker.get() as i64, now]))
                    .map_err(e)?;
                    set_state(&tx, key(*task), "leased", None, now).map_err(e)?;
                }
                LedgerEvent::AttemptEnded {
                    attempt, outcome, ..
                } => {
                    let message = match outcome {
                        crate::ledger::AttemptOutcome::Failed { message } => Some(message.as_str()),
                        _ => None,
                    };
                    tx.prepare_cached(
                        "UPDATE attempts SET ended_ms = ?1, outcome = ?2, message = ?3 WHERE id = ?4",
                    )
                    .and_then(|mut st| st.execute(params![now, outcome.word(), message, attempt.get() as i64]))
                    .map_err(e)?;
                }
                LedgerEvent::TaskReady { task } => {
                    set_state(&tx, key(*task), "pending", None, now).map_err(e)?;
                }
                LedgerEvent::TaskDone { task, .. } => {
                    set_state(&tx, key(*task), "done", None, now).map_err(e)?;
                }
                LedgerEvent::TaskFailed { task, reason } => {
                    set_state(&tx, key(*task), "failed", Some(reason), now).map_err(e)?;
                }
                LedgerEvent::WorkerBlocked { worker, .. } => {
                    tx.prepare_cached("UPDATE workers SET blocked = 1 WHERE id = ?1")
                        .and_then(|mut st| st.execute(params![worker.get() as i64]))
                        .map_err(e)?;
                }
                LedgerEvent::SweepFinished => {}
            }
        }
        tx.commit().map_err(e)
    }

    /// Every task with its attempt counts, in plan order.
    pub fn task_rows(&self) -> Result<Vec<TaskRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT t.idx, t.key, t.label, t.state, t.message, \
                 (SELECT COUNT(*) FROM attempts a WHERE a.task_key = t.key), \
                 (SELECT COUNT(*) FROM attempts a WHERE a.task_key = t.key AND a.outcome = 'succeeded') \
                 FROM tasks t ORDER BY t.idx, t.key",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok(TaskRow {
                    index: r.get(0)?,
                    key: r.get(1)?,
                    label: r.get(2)?,
                    state: r.get(3)?,
                    message: r.get(4)?,
                    attempts: r.get(5)?,
                    succeeded: r.get(6)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// How many tasks are in each state (`pending`, `done`, ...), by state name: one pass over
    /// the tasks, for `coordinator status --summary` on large sweeps.
    pub fn state_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM tasks GROUP BY state ORDER BY state")
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Every worker ever registered, by id.
    pub fn worker_rows(&self) -> Result<Vec<WorkerRow>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                // One pass over the attempts (a correlated count per worker scanned them all
                // once per worker: minutes with a million attempts and 128 workers).
                "SELECT w.id, w.host, w.slots, w.blocked, COALESCE(s.n, 0) \
                 FROM workers w LEFT JOIN (SELECT worker, COUNT(*) AS n FROM attempts \
                 WHERE outcome = 'succeeded' GROUP BY worker) s ON s.worker = w.id \
                 ORDER BY w.id",
            )
            .map_err(self.err())?;
        let rows = st
            .query_map([], |r| {
                Ok(WorkerRow {
                    id: r.get(0)?,
                    host: r.get(1)?,
                    slots: r.get(2)?,
                    blocked: r.get(3)?,
                    succeeded: r.get(4)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }
}

fn set_state(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    state: &str,
    message: Option<&str>,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.prepare_cached("UPDATE tasks SET state = ?1, message = ?2, updated_ms = ?3 WHERE key = ?4")?
        .execute(params![state, message, now, key])
}
