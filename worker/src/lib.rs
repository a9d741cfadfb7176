#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod artifact;
pub mod batching;
pub mod gendata;
pub mod output;
pub mod sim;
pub mod task;
pub mod traces;
pub mod workload;
