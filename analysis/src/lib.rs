#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod crisp;
pub mod doc;
pub mod error;
pub mod figures;
pub mod live;
pub mod load;
pub mod report;
pub mod requests;
pub mod stats;
pub mod tables;

pub use error::AnalysisError;
pub use report::{build_report, ReportOptions, ReportOutcome};
