//! Decoding a pickle file into `serde-pickle`'s [`Value`] tree (with [`pickle::decoder`]),
//! errors naming the file, and reading Python / numpy scalars out of it (re-exported from
//! [`pickle::value`]).
//!
//! The tree has the shape `serde-pickle`'s `keep_restore_state()` mode gives (the decoder is
//! the `pickle` crate's, see its README for why): class instances (the profile trees) come out as
//! their attribute dicts and numpy scalars as `Tuple([<dtype stand-in>, Bytes(raw)])`, because
//! a `numpy.float64` / `numpy.bool_` is pickled as a call
//! `numpy.core.multiarray.scalar(dtype, raw_bytes)`. The dtype stand-in is the constructor
//! argument tuple `('f8', False, True)` when the dtype is a memo reference, or the dtype's
//! state tuple `(3, '<', None, None, None, -1, -1, 0)` on its first occurrence (which does not
//! name the kind). The normalisers use the kind when it is visible and otherwise decode the raw
//! bytes by their length: 1 byte is a bool, 8 bytes a float64 (spec §2.6). They never turn a
//! value of another type into `None` or a number silently.

use std::path::Path;

use pickle::decoder::{self, DecodeOptions};
use serde_pickle::Value;

use super::error::ArtifactError;

pub use pickle::value::{bool_of, describe, dict_get, float_of, int_of};

/// Reads and decodes a whole pickle file (see [`decode_pickle`]).
pub fn read_pickle(path: &Path) -> Result<Value, ArtifactError> {
    let bytes = read_file(path)?;
    decode_pickle(path, &bytes)
}

/// Decodes one pickle held in memory; `path` only names it in errors.
///
/// Class instances become their state dicts and numpy scalars `(dtype, raw bytes)` tuples
/// (`serde-pickle`'s `keep_restore_state()` shapes). Every stream is first checked for
/// truncation, nesting deeper than 200 levels and exponential expansion, so no input can crash
/// the process.
pub fn decode_pickle(path: &Path, bytes: &[u8]) -> Result<Value, ArtifactError> {
    decode_with(path, bytes, DecodeOptions::default())
}

/// [`decode_pickle`] with explicit options.
pub(crate) fn decode_with(
    path: &Path,
    bytes: &[u8],
    options: DecodeOptions,
) -> Result<Value, ArtifactError> {
    decoder::decode(bytes, options).map_err(|(offset, problem)| ArtifactError::Malformed {
        path: path.to_path_buf(),
        offset,
        problem,
    })
}

/// Reads a whole input file, refusing anything but a regular file
/// ([`crate::input_file::read_regular`]), with the path in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ArtifactError> {
    crate::input_file::read_regular(path).map_err(|source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    })
}
