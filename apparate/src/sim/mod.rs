//! The simulator core: pure, deterministic, no I/O, no clocks.
//!
//! Every function here follows `spec/apparate-simulator.md` rule by rule, including the
//! operation orders that make results bit-identical to the original.

pub(crate) mod adaptation;
pub mod bootstrap;
pub mod config;
pub mod controller;
pub mod error;
pub mod evaluate;
pub mod family;
pub mod history;
pub mod latency;
pub mod numeric;
pub(crate) mod policy;
pub mod pyfmt;
pub mod record;
pub mod samples;
pub mod tuning;

pub use controller::{
    run_bootstrap, simulate, simulate_after_bootstrap, BatchObservation, Batching, Mode, Overrides,
    RunSpec, Session, StaticRamps,
};
pub use error::{Culprit, SimError};
pub use family::Family;
pub use latency::{BatchSize, ExitLatencies, LatencyTable, LatencyTables, RampCost, BATCH_SIZES};
pub use record::{BatchRecord, RunResult, Summary};
pub use samples::RampData;
