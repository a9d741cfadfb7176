//! The backend's integration tests (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The NLP models, Hugging Face checkpoints, the tokenizer, the MiniLM reference check.
mod nlp;
// Device probing and selection (`ee-backend probe`, `--device`).
mod device;
// Profiling: statistics, rescaling, pickles, `--from-json`, the forward pass.
mod profile;
// A tiny seeded CNN implementing `StagedModel`, for the tests above.
mod digits;
mod models;
mod tiny;
mod weights;
