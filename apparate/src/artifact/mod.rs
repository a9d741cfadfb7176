//! Readers for the artifact's data layout (spec §2): pickles in, [`crate::sim`] types out.
//!
//! * [`read_ramp_data`]: bootstrap / simulation pickles → [`RampData`](crate::sim::RampData).
//! * [`read_latency_tables`]: profile pickles → [`LatencyTables`](crate::sim::LatencyTables).
//! * [`read_batch_decisions`]: batch-decision pickles → [`BatchDecisions`].
//! * [`write`](mod@write): the writers, inverse of these readers (`worker gen-data`).
//! * [`value`]: decoding any pickle file into `serde-pickle`'s value tree, and reading Python /
//!   numpy scalars out of it.
//!
//! The pickle codec itself (opcodes, pre-flight check, decoders, the protocol-4 writer) is the
//! workspace's `pickle` crate; this module is the Apparate-specific layer on top of it.
//!
//! Every error is an [`ArtifactError`] naming the file and the place inside the pickle. No
//! input makes these readers panic or crash: every stream the generic decoder sees passes a
//! pre-flight check that bounds nesting and expansion before anything is decoded, and the
//! streaming decoders (below) do not recurse and use memory linear in the input.
//!
//! The generic path builds `serde-pickle`'s [`Value`](serde_pickle::Value) tree with a decoder
//! of our own ([`pickle::decoder`]): `serde-pickle` 1.2.0's memo reference counting fails on
//! shared objects that contain memoized parts, e.g. every repeated `numpy.bool_`. It handles
//! every valid file and words every error, but building a tree costs an allocation per value.
//! So each reader first tries a streaming decoder for the shape CPython writes, which builds no
//! tree: `ramp_stream` for sample pickles, [`pickle::lite`] (compact values in arenas, keeping only the
//! dict keys asked for) for profile trees and decision files. Both decline anything unusual or
//! invalid, and the generic path then reads the file, so results and errors are always the
//! generic path's (tests check this on every golden and fixture file, corrupted files and
//! random inputs). The profile pickles of the seven batch sizes are read on two threads.

mod decisions;
mod error;
mod profile;
mod ramp_stream;
mod samples;
pub mod value;
pub mod write;

pub use decisions::{
    batch_decisions_from_bytes, read_batch_decisions, stats_too_short, BatchDecisions, MAX_STATS_MS,
};
pub use error::{ArtifactError, PickleProblem};
pub use profile::{is_cv_arch, profile_paths, read_latency_tables, MAX_PROFILE_LATENCY_MS};
pub use samples::{ramp_data_from_bytes, read_ramp_data};
