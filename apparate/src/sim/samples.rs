//! Per-ramp, per-sample confidences and correctness flags (bootstrap and simulation data).

/// The content of a bootstrap or simulation pickle, ramps `0 .. R-1` (index `R`, the final
/// exit, is never read by the simulator and is not kept).
///
/// `conf[r][i]` is the max-softmax confidence of ramp `r` on sample `i`; `acc[r][i]` whether
/// ramp `r` agrees with the original model on sample `i`. All inner vectors have the same
/// length `N` (the readers check this).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RampData {
    /// `conf[ramp][sample]`.
    pub conf: Vec<Vec<f64>>,
    /// `acc[ramp][sample]`.
    pub acc: Vec<Vec<bool>>,
}

impl RampData {
    /// `R`, the number of candidate ramps.
    pub fn num_ramps(&self) -> usize {
        self.conf.len()
    }

    /// `N`, the number of samples (0 when there are no ramps).
    pub fn num_samples(&self) -> usize {
        self.conf.first().map_or(0, Vec::len)
    }
}
