//! Writers for the artifact's data layout (spec §2), the inverse of the readers: what they
//! write, the readers (and the artifact's Python code) read back bit for bit.
//!
//! * [`write_ramp_data`]: [`RampData`](crate::sim::RampData) → a bootstrap / simulation pickle.
//! * [`write_profiles`]: [`LatencyTables`](crate::sim::LatencyTables) → the profile pickles
//!   of one model, one or two per batch size ([`profile_trees`] builds them in memory).
//! * [`write_batch_decisions`]: a [`DecisionRecord`] → a batch-decision pickle.
//! * [`pickle`]: the protocol-4 pickler under them, byte-compatible with CPython's.
//!
//! Every file is written to a temporary sibling (`NAME.tmp`) and renamed into place, so a
//! reader never sees a partial file.

mod decisions;
pub use ::pickle::write as pickle;
mod profile;
mod ramp;

pub use decisions::{
    batch_decisions_bytes, write_batch_decisions, write_batch_decisions_to, AvgQps, DecisionRecord,
};
pub use profile::{profile_file_names, profile_trees, write_profiles, ProfileTrees};
pub use ramp::{ramp_data_bytes, write_ramp_data, write_ramp_data_to};

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file that could not be written, or data that has no valid pickle form.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Creating, writing or renaming a file failed. (The cause is part of the message, not a
    /// separate `source()`, so that a printed chain does not repeat it.)
    #[error("cannot write {}: {cause}", path.display())]
    Io {
        /// The file (or directory) concerned.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// Writing to a caller's stream failed.
    #[error("cannot write the pickle: {cause}")]
    Stream {
        /// What the stream said.
        cause: std::io::Error,
    },
    /// A value the readers would reject: NaN or infinity where a finite number is needed.
    #[error("{what}: {field} is not a finite number")]
    NonFinite {
        /// The data concerned, e.g. `ramp data` or `latency table of resnet18 at batch size 4`.
        what: String,
        /// The place, e.g. `conf[2][17]` or `ramps[3].ramp_ms`.
        field: String,
    },
    /// Ramp data or a latency table without ramps (the readers need at least one).
    #[error("{what} has no ramps (at least one is needed)")]
    NoRamps {
        /// The data concerned.
        what: String,
    },
    /// Ramp data whose lists do not line up.
    #[error("ramp data: {field} has {len} entries, expected {expected}")]
    RampShape {
        /// The place, e.g. `acc` or `conf[3]`.
        field: String,
        /// Its length.
        len: usize,
        /// The length it must have.
        expected: usize,
    },
}

/// Writes `path` through a temporary file in the same folder (buffered, synced) and renames
/// it into place; removes the temporary file when writing fails. A link at `path` is replaced,
/// never followed ([`crate::safe_write`]).
pub(crate) fn write_file(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    crate::safe_write::write_atomic(path, crate::safe_write::Durability::Sync, body).map_err(
        |cause| WriteError::Io {
            path: path.to_path_buf(),
            cause,
        },
    )
}
