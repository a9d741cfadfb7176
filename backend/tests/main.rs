//! The backend's integration tests (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The NLP models, Hugging Face checkpoints, the tokenizer, the MiniLM reference check.
mod nlp;
