//! Readers for the artifact's data layout (spec §2): pickles in, [`crate::sim`] types out.
//!
//! * [`read_ramp_data`]: bootstrap / simulation pickles → [`RampData`](crate::sim::RampData).
//! * [`read_latency_tables`]: profile pickles → [`LatencyTables`](crate::sim::LatencyTables).
//! * [`read_batch_decisions`]: batch-decision pickles → [`BatchDecisions`].
//! * [`write`](mod@write): the writers, inverse of these readers (`worker gen-data`).
//! * [`value`]: decoding any pickle into `serde-pickle`'s value tree, and reading Python /
//!   numpy scalars out of it.
//!
//! Every error is an [`ArtifactError`] naming the file and the place inside the pickle. No
//! input makes these readers panic or crash: every stream passes a pre-flight check that
//! bounds nesting and expansion before anything is decoded.
//!
//! Decoding builds `serde-pickle`'s [`Value`](serde_pickle::Value) tree with a decoder of our
//! own (module `decoder`): `serde-pickle` 1.2.0's memo reference counting fails on shared
//! objects that contain memoized parts, e.g. every repeated `numpy.bool_`.

mod decisions;
mod decoder;
mod error;
mod lite;
mod opcodes;
mod preflight;
mod profile;
mod ramp_stream;
mod samples;
pub mod value;
pub mod write;

pub use decisions::{batch_decisions_from_bytes, read_batch_decisions, BatchDecisions};
pub use error::{ArtifactError, PickleProblem};
pub use profile::{is_cv_arch, read_latency_tables};
pub use samples::{ramp_data_from_bytes, read_ramp_data};
