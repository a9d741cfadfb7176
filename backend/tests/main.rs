//! The backend's integration tests (one binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod digits;
