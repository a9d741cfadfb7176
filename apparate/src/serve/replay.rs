//! The replay model: answers every batch from recorded samples (the simulation pickle's
//! confidences and agreements), runs nothing and measures nothing. Under the virtual clock a
//! serving run with it is the simulator (tested on every golden scenario).

use super::{EarlyExitModel, ModelBatch};
use crate::sim::config::RampConfig;
use crate::sim::RampData;
use std::ops::Range;

/// Recorded samples served back as a model's outputs.
#[derive(Clone, Copy, Debug)]
pub struct ReplayModel<'a> {
    samples: &'a RampData,
}

impl<'a> ReplayModel<'a> {
    /// Replays `samples` (a simulation pickle's ramps).
    pub fn new(samples: &'a RampData) -> ReplayModel<'a> {
        ReplayModel { samples }
    }
}

/// A batch the recording cannot answer.
#[derive(Debug, thiserror::Error)]
#[error("the recorded samples hold {ramps} ramps and {samples} samples; asked for ramp {ramp}, samples {start}..{end}")]
pub struct ReplayError {
    ramps: usize,
    samples: usize,
    ramp: usize,
    start: usize,
    end: usize,
}

impl EarlyExitModel for ReplayModel<'_> {
    type Error = ReplayError;

    /// The simulator's stream: samples `0 .. N-2` (the last recorded sample is never served).
    fn stream_len(&self) -> usize {
        self.samples.num_samples().saturating_sub(1)
    }

    fn run_batch(
        &mut self,
        samples: Range<usize>,
        config: &RampConfig,
    ) -> Result<ModelBatch, ReplayError> {
        let mut conf = Vec::with_capacity(config.ramp_ids.len());
        let mut acc = Vec::with_capacity(config.ramp_ids.len());
        for &a in &config.ramp_ids {
            let (Some(c), Some(k)) = (
                self.samples
                    .conf
                    .get(a)
                    .and_then(|c| c.get(samples.clone())),
                self.samples.acc.get(a).and_then(|c| c.get(samples.clone())),
            ) else {
                return Err(ReplayError {
                    ramps: self.samples.num_ramps(),
                    samples: self.samples.num_samples(),
                    ramp: a,
                    start: samples.start,
                    end: samples.end,
                });
            };
            conf.push(c.to_vec());
            acc.push(k.to_vec());
        }
        Ok(ModelBatch {
            conf,
            acc,
            measured: None,
        })
    }

    fn device(&self) -> String {
        "none (replay of recorded samples)".to_string()
    }
}
