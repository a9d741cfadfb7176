//! Errors of the analysis library.

use std::path::PathBuf;

/// Why a report could not be built at all. Problems with single tasks are not errors: they are
/// collected as [`crate::load::Problem`]s, reported, and the task is skipped.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The results directory has no `tasks/` folder (nothing has run yet, or a wrong path).
    #[error("{dir}: no tasks/ folder; is this a results directory (worker --local --out DIR)?")]
    NotResults {
        /// The directory given.
        dir: PathBuf,
    },
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error("figure {path}: {message}")]
    Figure {
        /// The figure's file.
        path: PathBuf,
        /// The drawing backend's message.
        message: String,
    },
    /// A polars query over files that had passed validation failed.
    #[error("polars query over {what}: {source}")]
    Polars {
        /// What was being computed.
        what: String,
        /// Cause.
        source: polars::error::PolarsError,
    },
}

/// `AnalysisError::Io` for `path`.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AnalysisError + '_ {
    move |source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    }
}
