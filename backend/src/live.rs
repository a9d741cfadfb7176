//! A real early-exit model serving batches for `apparate::serve` (issue #14): the staged
//! model runs each batch segment by segment, the controller's active ramps read their sites'
//! activations, and the time each ramp's outputs (and the final outputs) reach the host is
//! measured from the batch's start.
//!
//! Every row of the batch runs to the final exit even when its ramp was confident: the
//! controller needs every active ramp's agreement with the final output (`apparate::serve`'s
//! module doc). A request's measured latency is the time its exit's outputs were on the host.

use std::ops::Range;
use std::time::Instant;

use apparate::serve::{EarlyExitModel, Measured, ModelBatch};
use apparate::sim::config::RampConfig;
use apparate::sim::{Family, LatencyTable};
use burn::tensor::backend::Backend;

use crate::infer::{
    argmax, check_ramps, max_softmax, stored_confidence, values, InferError, Samples,
};
use crate::models::StagedModel;
use crate::profile::{latency_table, measure, ProfileOptions};
use crate::ramps::RampSet;

/// A model with its ramps over the served part of a dataset.
pub struct LiveModel<'a, B: Backend, M: StagedModel<B>> {
    model: &'a M,
    ramps: &'a RampSet<B>,
    samples: &'a Samples,
    /// Where the stream starts in `samples` (the simulation part of the split).
    offset: usize,
    stream_len: usize,
    family: Family,
    device: B::Device,
    words: String,
    seq_len: usize,
}

impl<'a, B: Backend, M: StagedModel<B>> LiveModel<'a, B, M> {
    /// Serves `samples[stream]` (the simulator's rule applies: the stream's last sample is
    /// never served) with `model` and `ramps` on `device`; `words` names the device.
    pub fn new(
        model: &'a M,
        ramps: &'a RampSet<B>,
        samples: &'a Samples,
        stream: Range<usize>,
        device: B::Device,
        words: String,
        seq_len: usize,
    ) -> Result<Self, InferError> {
        check_ramps(model, ramps)?;
        if stream.end > samples.len() || stream.start > stream.end {
            return Err(InferError::Mismatch {
                problem: format!(
                    "samples {}..{} of a dataset of {}",
                    stream.start,
                    stream.end,
                    samples.len()
                ),
            });
        }
        Ok(LiveModel {
            model,
            ramps,
            samples,
            offset: stream.start,
            stream_len: stream.len().saturating_sub(1),
            family: model.family(),
            device,
            words,
            seq_len,
        })
    }
}

impl<B: Backend, M: StagedModel<B>> EarlyExitModel for LiveModel<'_, B, M> {
    type Error = InferError;

    fn stream_len(&self) -> usize {
        self.stream_len
    }

    fn run_batch(
        &mut self,
        samples: Range<usize>,
        config: &RampConfig,
    ) -> Result<ModelBatch, InferError> {
        let sites = self.model.num_sites();
        if let Some(&bad) = config.ramp_ids.iter().find(|&&a| a >= sites) {
            return Err(InferError::Mismatch {
                problem: format!("ramp {bad} asked of a model with {sites} ramp sites"),
            });
        }
        let t0 = Instant::now();
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let rows = (self.offset + samples.start)..(self.offset + samples.end);
        let input = self.samples.batch::<B>(rows, &self.device);
        let active = config.ramp_ids.len();
        let mut ramp_logits: Vec<Vec<f32>> = vec![Vec::new(); active];
        let mut ramp_ms = vec![0.0; active];
        let mut x = self.model.stem(input);
        for i in 0..sites {
            x = self.model.segment(i, x);
            // The configuration orders the outputs; a site it names twice (the artifact's
            // ramp placement can repeat an id) runs its ramp once.
            let at: Vec<usize> = (0..active).filter(|&j| config.ramp_ids[j] == i).collect();
            if let Some(&first) = at.first() {
                ramp_logits[first] = values(self.ramps.ramps[i].forward(&x))?;
                ramp_ms[first] = ms(t0);
                for &j in &at[1..] {
                    ramp_logits[j] = ramp_logits[first].clone();
                    ramp_ms[j] = ramp_ms[first];
                }
            }
        }
        let finals = values(self.model.finish(x))?;
        let final_ms = ms(t0);

        let classes = self.model.num_classes().max(1);
        let final_class: Vec<usize> = finals.chunks(classes).map(argmax).collect();
        let mut conf = Vec::with_capacity(active);
        let mut acc = Vec::with_capacity(active);
        for logits in &ramp_logits {
            let rows: Vec<&[f32]> = logits.chunks(classes).collect();
            conf.push(
                rows.iter()
                    .map(|r| stored_confidence(max_softmax(r), self.family))
                    .collect(),
            );
            acc.push(
                rows.iter()
                    .zip(&final_class)
                    .map(|(r, &f)| argmax(r) == f)
                    .collect(),
            );
        }
        Ok(ModelBatch {
            conf,
            acc,
            measured: Some(Measured { ramp_ms, final_ms }),
        })
    }

    fn reprofile(&mut self, bs: usize) -> Result<Option<LatencyTable>, InferError> {
        let opts = ProfileOptions {
            batch_sizes: vec![bs],
            warmup: 2,
            reps: 10,
            seq_len: self.seq_len,
        };
        let record = measure(self.model, self.ramps, &opts, &self.device).map_err(|e| {
            InferError::Mismatch {
                problem: format!("re-profiling batch size {bs}: {e}"),
            }
        })?;
        let Some(batch) = record.batches.first() else {
            return Ok(None);
        };
        let medians = |s: &[crate::profile::Stats]| s.iter().map(|s| s.median).collect::<Vec<_>>();
        latency_table(
            &medians(&batch.segments_ms),
            &medians(&batch.ramps_ms),
            batch.vanilla_ms.median,
        )
        .map(Some)
        .map_err(|problem| InferError::Mismatch {
            problem: format!("re-profiling batch size {bs}: {problem}"),
        })
    }

    fn device(&self) -> String {
        self.words.clone()
    }
}
