//! The coordinator's newtype ids, [`WorkerId`] and [`AttemptId`]: defined with the workspace's
//! other ids by one macro in `apparate::ids`, and shared with the remote worker.
//!
//! ```compile_fail
//! use coordinator::ids::{AttemptId, WorkerId};
//! fn takes_worker(_: WorkerId) {}
//! takes_worker(AttemptId::new(1));
//! ```

pub use apparate::ids::{AttemptId, WorkerId};
