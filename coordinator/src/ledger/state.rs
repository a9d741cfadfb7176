//! The ledger's task states and events.

use crate::ids::{AttemptId, TaskIdx, WorkerId};
use std::time::Instant;

/// A task's state.
///
/// ```text
///            on_pull                 on_result
///  Pending ───────────▶ Leased ─────────────────▶ Done
///     ▲                   │ on_tick (expired), on_return,
///     └───────────────────┤ on_failure (retryable, under the limit)
///                         │ on_failure (not retryable, or the limit reached),
///                         └─▶ Failed   on_tick (expired, the limit reached)
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a worker.
    Pending,
    /// A worker holds it under a lease.
    Leased {
        /// The worker.
        worker: WorkerId,
        /// The current attempt: the only one whose result is accepted.
        attempt: AttemptId,
        /// When the lease runs out unless renewed.
        expires_at: Instant,
    },
    /// Complete (`None`: found complete in `--out` at start).
    Done {
        /// The attempt that completed it in this run.
        attempt: Option<AttemptId>,
    },
    /// Failed for good.
    Failed {
        /// Why.
        reason: String,
        /// Counted attempts.
        attempts: u32,
    },
}

impl std::fmt::Debug for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskState::Pending => write!(f, "Pending"),
            TaskState::Leased {
                worker, attempt, ..
            } => write!(f, "Leased({worker},{attempt})"),
            TaskState::Done { attempt: Some(a) } => write!(f, "Done({a})"),
            TaskState::Done { attempt: None } => write!(f, "Done(cached)"),
            TaskState::Failed { reason, attempts } => write!(f, "Failed({attempts}: {reason})"),
        }
    }
}

/// Tasks per state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting.
    pub pending: usize,
    /// Under a lease.
    pub leased: usize,
    /// Complete.
    pub done: usize,
    /// Failed for good.
    pub failed: usize,
}

/// What a pull gives a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pull {
    /// Task `task` under attempt `attempt`.
    Lease {
        /// Task index.
        task: TaskIdx,
        /// Its new attempt.
        attempt: AttemptId,
    },
    /// Nothing now (tasks are leased elsewhere); `blocked` if this worker gets no more tasks.
    Wait {
        /// Why the worker is blocked.
        blocked: Option<String>,
    },
    /// Every task is done or failed.
    Finished,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Its result was accepted.
    Succeeded,
    /// The worker reported a failure.
    Failed {
        /// The worker's message.
        message: String,
    },
    /// Its lease ran out (worker lost).
    Expired,
    /// Handed back on a clean shutdown.
    Returned,
}

impl AttemptOutcome {
    /// The word stored in the ledger database.
    pub fn word(&self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed { .. } => "failed",
            AttemptOutcome::Expired => "expired",
            AttemptOutcome::Returned => "returned",
        }
    }
}

/// What a transition did, for the store and the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerEvent {
    /// A new attempt started.
    Leased {
        /// Task index.
        task: TaskIdx,
        /// Worker.
        worker: WorkerId,
        /// Attempt.
        attempt: AttemptId,
    },
    /// An attempt ended.
    AttemptEnded {
        /// Task index.
        task: TaskIdx,
        /// Attempt.
        attempt: AttemptId,
        /// How.
        outcome: AttemptOutcome,
    },
    /// The task is pending again.
    TaskReady {
        /// Task index.
        task: TaskIdx,
    },
    /// The task is complete.
    TaskDone {
        /// Task index.
        task: TaskIdx,
        /// Worker that completed it.
        worker: WorkerId,
        /// Attempt.
        attempt: AttemptId,
    },
    /// The task failed for good.
    TaskFailed {
        /// Task index.
        task: TaskIdx,
        /// Why.
        reason: String,
    },
    /// The worker gets no more tasks.
    WorkerBlocked {
        /// Worker.
        worker: WorkerId,
        /// Its failures in a row.
        failures: u32,
    },
    /// Every task is done or failed (reported once).
    SweepFinished,
}
