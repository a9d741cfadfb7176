//! Readers for the artifact's data layout (spec §2): pickles in, [`crate::sim`] types out.
