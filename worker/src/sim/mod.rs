//! The simulator core: pure, deterministic, no I/O, no clocks.
//!
//! Every function here follows `spec/apparate-simulator.md` rule by rule, including the
//! operation orders that make results bit-identical to the original.

pub mod latency;
pub mod samples;

pub use latency::{BatchSize, LatencyTable, LatencyTables, RampCost, BATCH_SIZES};
pub use samples::RampData;
