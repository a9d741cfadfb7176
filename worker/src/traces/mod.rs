//! Request arrival traces (spec §9.2, `create_request`): the inputs of the batching schemes.
//!
//! [`rng`] holds the deterministic random number generators the traces are drawn from.

pub mod rng;
