//! The controller's histories (spec §6.5): a 4-batch sample window per ramp id, a 20-batch
//! utility window per ramp id, and the 20-batch exit-rate window.

use std::collections::VecDeque;

/// Batches of samples kept for re-tuning.
pub const SAMPLE_WINDOW_BATCHES: usize = 4;
/// Batches of utilities and exit rates kept for ramp checks.
pub const UTILITY_WINDOW_BATCHES: usize = 20;

/// Per-ramp-id histories. They persist while a ramp is inactive unless cleared.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// `1.0 - conf` of recent samples, per ramp id.
    gaps: Vec<Vec<f64>>,
    /// Correctness flags of recent samples, per ramp id.
    acc: Vec<Vec<bool>>,
    /// Recent per-batch utilities, per ramp id.
    utility: Vec<VecDeque<f64>>,
    /// Raw sizes of recent batches (never cleared).
    batch_sizes: VecDeque<usize>,
    /// Recent `(exit rates, raw batch size)` pairs (never cleared).
    exit_rates: VecDeque<(Vec<f64>, usize)>,
}

impl History {
    /// Empty histories for `num_ramps` ramp ids.
    pub fn new(num_ramps: usize) -> History {
        History {
            gaps: vec![Vec::new(); num_ramps],
            acc: vec![Vec::new(); num_ramps],
            utility: vec![VecDeque::new(); num_ramps],
            batch_sizes: VecDeque::new(),
            exit_rates: VecDeque::new(),
        }
    }

    /// Adds a served batch's samples for the active ramps, then trims the sample window with
    /// the oldest recorded batch size (which may be stale after a clear: quirk §11.1.9).
    pub fn record_samples(
        &mut self,
        ramp_ids: &[usize],
        n: usize,
        samples: impl Fn(usize) -> (Vec<f64>, Vec<bool>),
    ) {
        self.batch_sizes.push_back(n);
        for &r in ramp_ids {
            let (g, a) = samples(r);
            self.gaps[r].extend(g);
            self.acc[r].extend(a);
        }
        if self.batch_sizes.len() > SAMPLE_WINDOW_BATCHES {
            let s = self.batch_sizes.pop_front().unwrap_or(0);
            for &r in ramp_ids {
                if self.gaps[r].len() > s {
                    self.gaps[r].drain(..s);
                }
                if self.acc[r].len() > s {
                    self.acc[r].drain(..s);
                }
            }
        }
    }

    /// Adds a served batch's exit rates and per-ramp utilities, then trims both windows.
    pub fn record_utilities(
        &mut self,
        ramp_ids: &[usize],
        er: Vec<f64>,
        n: usize,
        utilities: &[f64],
    ) {
        self.exit_rates.push_back((er, n));
        for (&r, &u) in ramp_ids.iter().zip(utilities) {
            self.utility[r].push_back(u);
        }
        if self.exit_rates.len() > UTILITY_WINDOW_BATCHES {
            self.exit_rates.pop_front();
            for &r in ramp_ids {
                if self.utility[r].len() > UTILITY_WINDOW_BATCHES {
                    self.utility[r].pop_front();
                }
            }
        }
    }

    /// Empties ramp `r`'s samples and utilities (not the batch sizes or exit rates).
    pub fn clear(&mut self, r: usize) {
        self.gaps[r].clear();
        self.acc[r].clear();
        self.utility[r].clear();
    }

    /// Ramp `r`'s recent utilities.
    pub fn utilities(&self, r: usize) -> &VecDeque<f64> {
        &self.utility[r]
    }

    /// The sample window of the active ramps, by position, for tuning.
    pub fn eval_slices<'a>(&'a self, ramp_ids: &[usize]) -> (Vec<&'a [f64]>, Vec<&'a [bool]>) {
        let g = ramp_ids.iter().map(|&r| self.gaps[r].as_slice()).collect();
        let a = ramp_ids.iter().map(|&r| self.acc[r].as_slice()).collect();
        (g, a)
    }

    /// Whether every active ramp's sample window is at least as long as the first one's
    /// (the original indexes them in lock step and would fail otherwise).
    pub fn aligned(&self, ramp_ids: &[usize]) -> bool {
        let n = ramp_ids.first().map_or(0, |&r| self.gaps[r].len());
        ramp_ids
            .iter()
            .all(|&r| self.gaps[r].len() >= n && self.acc[r].len() >= n)
    }

    /// Average exit rates over the window, weighted by raw batch size, element-wise
    /// (sequential sums in batch order).
    pub fn average_exit_rates(&self) -> Vec<f64> {
        let width = self
            .exit_rates
            .iter()
            .map(|(e, _)| e.len())
            .max()
            .unwrap_or(0);
        let mut num = vec![0.0; width];
        let mut den = 0usize;
        for (er, n) in &self.exit_rates {
            for (acc, e) in num.iter_mut().zip(er) {
                *acc += e * *n as f64;
            }
            den += n;
        }
        num.iter().map(|x| x / den as f64).collect()
    }
}
