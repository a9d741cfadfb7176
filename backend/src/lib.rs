//! The real early-exit backend: the paper's models as staged networks with ramp heads, on burn
//! (CPU through Flex, NVIDIA GPUs through the `cuda` feature), and the commands that turn a model
//! and a dataset into the artifact's data layout (profiles, bootstrap and simulation pickles) that
//! the simulator reads.
//!
//! This is the only crate of the workspace that links the ML framework.

pub mod data;
pub mod device;
pub mod forward;
pub mod gendata;
pub mod infer;
pub mod live;
pub mod models;
pub mod open;
pub mod profile;
pub mod ramps;
pub mod tokenizer;
mod torch_pt;
pub mod train;
pub mod weights;

/// The backend's version, recorded in every data folder it writes (and in the digests of the
/// inputs a sweep builds with it).
pub const BACKEND_VERSION: &str = concat!("ee-backend ", env!("CARGO_PKG_VERSION"), " burn 0.21.0");
