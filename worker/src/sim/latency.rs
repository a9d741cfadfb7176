//! Per-batch-size latency tables (spec §3) and supported batch sizes.

/// The batch sizes the artifact profiles: `B = [1, 2, 4, ..., 64]`.
pub const BATCH_SIZES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// A supported batch size (an element of [`BATCH_SIZES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchSize(usize);

impl BatchSize {
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
