//! The coordinator's integration tests, one binary (its sweeps with real workers are in the
//! workspace's `tests/` crate).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code may panic

/// The `coordinator` binary's commands that need no workers: plan, status, token checks.
mod cli;

/// The gRPC service in process: tokens, protocol versions, fencing and path checks.
mod service;

/// The ledger database format: the frozen v1 fixture, a newer major refused.
mod ledger_format;
