//! Profiling (contract only for now; implemented in the profile work): per-site prefix latency,
//! per-ramp cost and whole-model latency per batch size, as the artifact's latency tables.

use apparate::sim::latency::LatencyTables;
use burn::tensor::backend::Backend;

use crate::models::StagedModel;
use crate::ramps::RampSet;

/// How to time.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileOptions {
    /// Batch sizes to time (the simulator's tables need 1, 2, 4, ..., 64).
    pub batch_sizes: Vec<usize>,
    /// Untimed runs per batch size (absorb JIT compilation and autotuning).
    pub warmup: usize,
    /// Timed runs per batch size (the median is kept, p5/p95 recorded).
    pub reps: usize,
    /// Tokens per sample for NLP models.
    pub seq_len: usize,
}

/// A measured profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The tables the profile pickles encode.
    pub tables: LatencyTables,
    /// The full record (`profile.json`): medians, p5/p95, device, versions.
    pub record: serde_json::Value,
}

/// Why profiling failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not built yet.
    #[error("profiling is not implemented yet")]
    NotImplemented,
}

/// Times `model` with `ramps` on `device`.
pub fn profile<B: Backend, M: StagedModel<B>>(
    _model: &M,
    _ramps: &RampSet<B>,
    _opts: &ProfileOptions,
    _device: &B::Device,
) -> Result<Profile, ProfileError> {
    Err(ProfileError::NotImplemented)
}
