//! The coordinator's newtype ids: [`WorkerId`] and [`AttemptId`] (defined with the workspace's
//! other ids by one macro in `apparate::ids`, and shared with the remote worker), and
//! [`TaskIdx`], a task's position in the plan and the ledger.
//!
//! ```compile_fail
//! use coordinator::ids::{AttemptId, WorkerId};
//! fn takes_worker(_: WorkerId) {}
//! takes_worker(AttemptId::new(1));
//! ```
//!
//! ```compile_fail
//! use coordinator::ids::TaskIdx;
//! fn takes_task(_: TaskIdx) {}
//! takes_task(3usize);
//! ```

pub use apparate::ids::{AttemptId, WorkerId};

/// A task's index in the plan (and in the ledger's task table): ledger events and leases name
/// tasks by it, never by a bare `usize`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskIdx(usize);

impl TaskIdx {
    /// Wraps a plan index.
    pub const fn new(index: usize) -> Self {
        Self(index)
    }

    /// The plan index.
    pub const fn get(self) -> usize {
        self.0
    }
}

impl std::fmt::Display for TaskIdx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl std::fmt::Debug for TaskIdx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "t{}", self.0)
    }
}
