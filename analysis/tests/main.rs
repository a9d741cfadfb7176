//! Integration tests of the analysis crate (one test binary; modules below).
//!
//! Fixtures are results directories produced by the worker library itself (`apparate::local`)
//! on the paper's grid at a small embedded scale, generated once per test process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

/// Shared fixtures: small results directories, the binaries.
mod util;

/// Fig. 12 numbers against an independent computation from the Parquet files.
mod fig12_independent;

/// Partial and corrupt results directories.
mod partial;

/// Every table, figure and report file exists and is well-formed.
mod outputs;

/// The worker's report hook with the real analysis binary.
mod worker_hook;

/// Small units: percentiles, base64, timelines, CSV.
mod units;

/// Issue #11: no writes through links; only verified task folders count.
mod issue11;

/// Issue #15: results stored compressed read like plain ones.
mod issue15;

/// Issue #14: live tasks against their simulated partners.
mod live;
