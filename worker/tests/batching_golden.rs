//! Batching generator tests (filled by the batching work).
