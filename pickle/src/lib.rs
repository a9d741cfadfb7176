#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod decoder;
mod error;
pub mod lite;
pub mod opcodes;
pub mod preflight;
pub mod value;
pub mod write;

pub use error::{OpError, PickleProblem};

/// Decodes one pickle stream into `serde-pickle`'s [`Value`](serde_pickle::Value) tree with
/// the default [`decoder::DecodeOptions`]: the [`preflight`] check, then the full
/// [`decoder`]. On failure, the byte offset of the offending opcode and the problem.
pub fn from_slice(data: &[u8]) -> Result<serde_pickle::Value, OpError> {
    decoder::decode(data, decoder::DecodeOptions::default())
}
