//! Deterministic random numbers, written out here so that no dependency update can change them.
//!
//! * [`NumpyRandomState`] — MT19937 with numpy's legacy `RandomState` seeding, `random_sample`
//!   and `exponential`: the generator behind the artifact's Poisson trace (`np.random.seed(2023)`
//!   then `np.random.exponential`).
//! * [`Xoshiro256StarStar`] — a small fast generator (seeded through SplitMix64) with uniform,
//!   exponential, normal, lognormal, Pareto and Poisson-count samplers, for the synthetic
//!   workloads.
//! * [`det_math`] — the logarithm and exponential both use: pure `f64` arithmetic (`+ - * /`,
//!   `sqrt`), no platform `libm`, so the same seed gives the same bits on every target with IEEE
//!   binary64 arithmetic (every 64-bit target Rust supports; Rust never fuses `a * b + c`).
//!
//! **Results contract.** The output of every generator and sampler here feeds the arrival traces,
//! and through them the batch decisions, the per-request rows and the task digests of every
//! sweep. Changing any algorithm, constant, seeding rule or the order in which a sampler consumes
//! draws changes those digests; such a change is a new results version, not a refactor. The tests
//! in `apparate/tests/traces.rs` pin the outputs.

pub mod det_math;
pub mod mt19937;
pub mod xoshiro;

pub use mt19937::{Mt19937, NumpyRandomState};
pub use xoshiro::{SplitMix64, Xoshiro256StarStar};
