//! The backend's integration tests (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The real `ee-backend` in a `worker --local` sweep over a `kind = "backend"` spec
/// (`digits-cnn` on generated PNG digits): inputs built once, then reused.
mod grid;
