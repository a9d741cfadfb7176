//! What a run produces: per-batch records, per-request columns, the summary, the log.

use super::bootstrap::Bootstrap;
use std::collections::BTreeMap;

/// One served batch (a line of `batches.jsonl`; `golden/README.md` "expected.json").
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRecord {
    /// Batch number, from 1.
    pub batch: usize,
    /// Samples in the batch.
    pub n: usize,
    /// Rounded batch size whose latency table was used.
    pub bs: usize,
    /// Active ramps the batch was served with.
    pub ramp_ids: Vec<usize>,
    /// Thresholds the batch was served with.
    pub thresholds: Vec<f64>,
    /// Fraction of correct samples.
    pub acc: f64,
    /// Latency improvement in percent (formula §4.4).
    pub latency_improvement: f64,
    /// Exit rates per active ramp plus the final exit.
    pub exit_rate: Vec<f64>,
    /// Accuracy per exit point (ramp id, or R for the final exit).
    pub ramp_acc: BTreeMap<usize, f64>,
}

/// Per-request columns, in served order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    /// Batch number of each request.
    pub batch: Vec<u32>,
    /// Rounded batch size.
    pub batch_size: Vec<u32>,
    /// Exit point: ramp id, or R for the final exit.
    pub exit_point: Vec<usize>,
    /// Whether the answer agrees with the original model.
    pub correct: Vec<bool>,
    /// Inference latency (ms), no queueing.
    pub inference_ms: Vec<f64>,
    /// Vanilla latency (ms) at the batch's size, `V`.
    pub vanilla_ms: Vec<f64>,
}

impl Requests {
    /// Empty columns with room for `n` requests.
    pub fn with_capacity(n: usize) -> Requests {
        Requests {
            batch: Vec::with_capacity(n),
            batch_size: Vec::with_capacity(n),
            exit_point: Vec::with_capacity(n),
            correct: Vec::with_capacity(n),
            inference_ms: Vec::with_capacity(n),
            vanilla_ms: Vec::with_capacity(n),
        }
    }

    /// Appends one served request.
    pub fn push(
        &mut self,
        batch: usize,
        bs: usize,
        exit_point: usize,
        correct: bool,
        inference_ms: f64,
        vanilla_ms: f64,
    ) {
        self.batch.push(batch as u32);
        self.batch_size.push(bs as u32);
        self.exit_point.push(exit_point);
        self.correct.push(correct);
        self.inference_ms.push(inference_ms);
        self.vanilla_ms.push(vanilla_ms);
    }

    /// Number of served requests.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether nothing was served.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// The end-of-run summary (§6.6).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Percent of correct samples.
    pub overall_accuracy: f64,
    /// `100 * mean((V_k - l_k) / V_k)` with numpy's pairwise mean.
    pub overall_latency_improvement: f64,
    /// Fraction of samples per exit point.
    pub exit_rate: BTreeMap<usize, f64>,
    /// Accuracy per exit point.
    pub ramp_accuracy: BTreeMap<usize, f64>,
    /// Served requests.
    pub num_requests: usize,
    /// Served batches.
    pub num_batches: usize,
}

/// The controller's configuration when the run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalState {
    /// Active ramps.
    pub ramp_ids: Vec<usize>,
    /// Their thresholds.
    pub thresholds: Vec<f64>,
    /// Ramps that may still be added.
    pub ramp_quota: usize,
    /// The initial configuration, then the one after each ramp check.
    pub ramp_history: Vec<Vec<usize>>,
}

/// Everything one simulation produces.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// Bootstrap facts.
    pub bootstrap: Bootstrap,
    /// Served batches, in order.
    pub batches: Vec<BatchRecord>,
    /// Served requests, in order.
    pub requests: Requests,
    /// The summary.
    pub summary: Summary,
    /// Final controller state.
    pub final_state: FinalState,
    /// The artifact's log lines after `args:` (no timestamps), the summary line last.
    pub log: Vec<String>,
}
