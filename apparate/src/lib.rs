#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod artifact;
pub mod backend_inputs;
pub mod batching;
pub mod duration;
pub mod gendata;
pub mod ids;
pub mod input_file;
pub mod local;
pub mod logging;
pub mod output;
pub mod report_hook;
pub mod results;
pub mod safe_write;
pub mod serve;
pub mod sim;
pub mod storage;
pub mod sweep;
pub mod task;
pub mod text;
pub mod traces;
pub mod workload;

/// Version of the result files' contents. Bump it whenever the bytes a task writes change for
/// the same inputs (a simulator fix, a new column, a new file): it is part of every task key
/// ([`code_version`]), so old results are never mistaken for new ones.
pub const RESULTS_VERSION: u32 = 1;

/// The code version in every task key and manifest: `{crate version}+results.{RESULTS_VERSION}`.
pub fn code_version() -> String {
    format!("{}+results.{RESULTS_VERSION}", env!("CARGO_PKG_VERSION"))
}
