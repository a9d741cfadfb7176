//! Per-batch-size latency tables (spec §3) and supported batch sizes.

/// The batch sizes the artifact profiles: `B = [1, 2, 4, ..., 64]`.
pub const BATCH_SIZES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// A supported batch size (an element of [`BATCH_SIZES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchSize(usize);

impl BatchSize {
    /// Batch size 1.
    pub const ONE: BatchSize = BatchSize(1);

    /// The smallest supported size `>= n` (the artifact's `round_up_batch_size`);
    /// `None` when `n > 64`. `n = 0` rounds to 1.
    pub fn round_up(n: usize) -> Option<BatchSize> {
        BATCH_SIZES.iter().copied().find(|&b| b >= n).map(BatchSize)
    }

    /// The size itself, if it is supported.
    pub fn exact(n: usize) -> Option<BatchSize> {
        BATCH_SIZES.contains(&n).then_some(BatchSize(n))
    }

    /// The number of samples.
    pub fn get(self) -> usize {
        self.0
    }

    /// Position in [`BATCH_SIZES`] (0 for bs 1, 6 for bs 64).
    pub fn index(self) -> usize {
        self.0.trailing_zeros() as usize
    }
}

/// Cost of one candidate ramp at one batch size, in ms (one `lcl` pair `(v_r, o_r)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RampCost {
    /// `v_r`: vanilla model execution up to where ramp `r` attaches.
    pub vanilla_up_to_ms: f64,
    /// `o_r`: the ramp's own latency.
    pub ramp_ms: f64,
}

/// The artifact's `latency_calc_list[bs]`: one entry per candidate ramp, plus the vanilla
/// whole-model latency `V` (the final `(V, None)` pair).
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyTable {
    /// Ramps `0 .. len-1` in model order. May hold more entries than the pickles' `R`.
    pub ramps: Vec<RampCost>,
    /// `V`: vanilla whole-model latency.
    pub vanilla_ms: f64,
}

/// One [`LatencyTable`] per supported batch size.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyTables {
    tables: Vec<LatencyTable>,
}

impl LatencyTables {
    /// Builds from exactly one table per entry of [`BATCH_SIZES`], in that order.
    /// Returns `None` when the count is wrong.
    pub fn new(tables: Vec<LatencyTable>) -> Option<LatencyTables> {
        (tables.len() == BATCH_SIZES.len()).then_some(LatencyTables { tables })
    }

    /// The table for batch size `bs`.
    pub fn get(&self, bs: BatchSize) -> &LatencyTable {
        &self.tables[bs.index()]
    }

    /// All tables, in [`BATCH_SIZES`] order.
    pub fn iter(&self) -> impl Iterator<Item = (BatchSize, &LatencyTable)> {
        BATCH_SIZES
            .iter()
            .map(|&b| BatchSize(b))
            .zip(self.tables.iter())
    }

    /// The fewest ramp entries over all batch sizes.
    pub fn min_ramps(&self) -> usize {
        self.tables.iter().map(|t| t.ramps.len()).min().unwrap_or(0)
    }
}

/// Exit latencies of one active ramp configuration at one batch size (spec §3.3):
/// `per_exit[j]` for a sample exiting at the j-th active ramp, `per_exit[J]` for a sample
/// that takes no early exit.
#[derive(Clone, Debug, PartialEq)]
pub struct ExitLatencies {
    /// `L = [L_0, ..., L_J]`.
    pub per_exit: Vec<f64>,
    /// `V`: the vanilla whole-model latency.
    pub vanilla_ms: f64,
}

impl ExitLatencies {
    /// `L[J]`: latency of a sample that exits nowhere.
    pub fn no_exit(&self) -> f64 {
        self.per_exit[self.per_exit.len() - 1]
    }
}

impl LatencyTable {
    /// `o_r`: the latency of ramp `r` itself.
    pub fn ramp_ms(&self, ramp: usize) -> f64 {
        self.ramps[ramp].ramp_ms
    }

    /// The artifact's `get_ramp_latencies`: the sample at active position `j` pays the vanilla
    /// work up to ramp `a_j` plus every active ramp `a <= a_j`; a sample that never exits pays
    /// `V` plus every active ramp. Sums run left to right from 0, as in the original.
    ///
    /// Every id in `ramp_ids` must be below `self.ramps.len()`.
    pub fn exit_latencies(&self, ramp_ids: &[usize]) -> ExitLatencies {
        let mut per_exit = Vec::with_capacity(ramp_ids.len() + 1);
        for &aj in ramp_ids {
            let mut s = 0.0;
            for &a in ramp_ids {
                if a <= aj {
                    s += self.ramps[a].ramp_ms;
                }
            }
            per_exit.push(self.ramps[aj].vanilla_up_to_ms + s);
        }
        let mut s = 0.0;
        for &a in ramp_ids {
            s += self.ramps[a].ramp_ms;
        }
        per_exit.push(self.vanilla_ms + s);
        ExitLatencies {
            per_exit,
            vanilla_ms: self.vanilla_ms,
        }
    }

    /// The artifact's `get_boundary`: the last ramp `i` (scanning from 0) whose solo exit
    /// latency `v_i + o_i` does not exceed `V`; the scan stops at the first one that does.
    /// Only the first `num_ramps` entries are scanned.
    pub fn latest_possible_ramp(&self, num_ramps: usize) -> usize {
        let mut latest = 0;
        for (i, r) in self.ramps.iter().take(num_ramps).enumerate() {
            if r.vanilla_up_to_ms + r.ramp_ms > self.vanilla_ms {
                break;
            }
            latest = i;
        }
        latest
    }
}
