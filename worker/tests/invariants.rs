//! Property tests for the invariants of spec §12.
