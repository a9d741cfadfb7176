//! What the signal policies (spec §7, §8) work on: the adaptation state they change, which the
//! controller owns and lends them by `&mut` after every batch, and what they only read (the
//! run's settings and the signals of the batch just served).
//!
//! The policies import this module, never the controller: `controller` → `policy` →
//! `adaptation`, without a cycle.

use super::config::RampConfig;
use super::error::SimError;
use super::evaluate::EvalData;
use super::family::{Family, NLP_POSITIVE_THRESHOLD};
use super::history::History;
use super::latency::{BatchSize, LatencyTables};
use super::numeric::numpy_mean;
use super::tuning::{tune_thresholds, Tuned};
use std::collections::BTreeMap;

/// The adaptation state the policies change between batches (spec §6.2 step 8, §6.0).
pub(crate) struct Adaptation {
    /// Active ramps and their thresholds.
    pub config: RampConfig,
    /// Ramps that may still be added (`len(ramp_ids) + ramp_quota == l`).
    pub ramp_quota: usize,
    /// The sample, utility and exit-rate windows.
    pub history: History,
    /// The configuration recorded at every ramp check (the initial one first); the controller
    /// appends to it, the NLP policy reads it.
    pub ramp_history: Vec<Vec<usize>>,
    /// Set after a ramp change; triggers the next re-tune.
    pub after_ramp_adjustment: bool,
    /// Violating batches since the last ramp check (the controller counts, the policies reset).
    pub violation_counter: usize,
    /// The NLP policy's mutable positive threshold.
    pub positive_threshold: f64,
    /// The run's log lines: the controller's per-batch lines and the policies' lines, in order.
    pub log: Vec<String>,
}

impl Adaptation {
    /// The state before the first batch: `config` active, quota 0, empty histories for
    /// `num_ramps` ramp ids, `ramp_history = [initial ramp list]`.
    pub fn new(config: RampConfig, num_ramps: usize) -> Adaptation {
        Adaptation {
            ramp_history: vec![config.ramp_ids.clone()],
            config,
            ramp_quota: 0,
            history: History::new(num_ramps),
            after_ramp_adjustment: false,
            violation_counter: 0,
            positive_threshold: NLP_POSITIVE_THRESHOLD,
            log: Vec::new(),
        }
    }

    /// A full re-tune of the active ramps on the sample window, at the batch's rounded size.
    pub fn tune(
        &self,
        run: &RunContext<'_>,
        batch: &BatchSignals<'_>,
        fixed: &BTreeMap<usize, f64>,
    ) -> Result<Tuned, SimError> {
        let ids = &self.config.ramp_ids;
        if !self.history.aligned(ids) {
            return Err(SimError::HistoryMisaligned {
                ramp_ids: ids.clone(),
                batch: batch.i,
            });
        }
        let (g, a) = self.history.eval_slices(ids);
        Ok(tune_thresholds(
            ids,
            EvalData { gaps: &g, acc: &a },
            run.tables.get(batch.bs),
            fixed,
        ))
    }

    /// Empties the histories of every active ramp.
    pub fn clear_active(&mut self) {
        for &r in &self.config.ramp_ids {
            self.history.clear(r);
        }
    }

    /// Mean utility per active ramp, `(position, id, mean)`, stably sorted ascending by mean.
    pub fn ramp_scores(&self) -> Vec<(usize, usize, f64)> {
        let mut scores: Vec<(usize, usize, f64)> = self
            .config
            .ramp_ids
            .iter()
            .enumerate()
            .map(|(j, &r)| {
                let u: Vec<f64> = self.history.utilities(r).iter().copied().collect();
                (j, r, numpy_mean(&u))
            })
            .collect();
        scores.sort_by(|x, y| x.2.partial_cmp(&y.2).unwrap_or(std::cmp::Ordering::Equal));
        scores
    }
}

/// The run's settings the policies read (fixed for the whole run).
pub(crate) struct RunContext<'a> {
    /// Which policy runs, and its per-family constants.
    pub family: Family,
    /// Serving accuracy floor, `1 - ACC_LOSS_BUDGET_ACTUAL`.
    pub floor: f64,
    /// Batches between ramp checks.
    pub interval: usize,
    /// The latest useful ramp (bootstrap's `latest_possible_ramp`).
    pub latest: usize,
    /// Latency tables per batch size (for re-tuning).
    pub tables: std::borrow::Cow<'a, LatencyTables>,
}

/// The signals of the batch just served that the policies read.
pub(crate) struct BatchSignals<'a> {
    /// Batch number `i` (from 1).
    pub i: usize,
    /// Its rounded batch size.
    pub bs: BatchSize,
    /// Whether its accuracy was below the floor.
    pub violated: bool,
    /// `Σ acc_b·bs_b / Σ bs_b` over all batches so far, this one included.
    pub cumulative_accuracy: f64,
    /// Its latency improvement (`curr_li`).
    pub li: f64,
    /// Its exit accuracy per ramp id (`curr_ramp_acc`).
    pub ramp_acc: &'a BTreeMap<usize, f64>,
}
