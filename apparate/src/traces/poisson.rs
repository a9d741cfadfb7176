//! The artifact's Poisson trace (`create_request` with `fixed_arrival_rate` and
//! `poisson_arrival`).
//!
//! The original seeds numpy's global legacy generator (`np.random.seed(2023)`), draws all gaps at
//! once (`np.random.exponential(scale=1000.0 / qps, size=n)`), then accumulates them like the
//! fixed-rate trace: request 0 at 0, request `i` at the running sum of gaps `0..i`. The last gap
//! is drawn but unused. [`NumpyRandomState`] reproduces the draws (see its `exponential` for the
//! one-ulp caveat on single draws and why the arrival traces still match numpy's bit for bit).

use super::common::{accumulate_gaps, check_n, check_positive, TraceGenError};
use super::rng::NumpyRandomState;

/// The artifact's seed (`np.random.seed(2023)` in `create_request`).
pub const ARTIFACT_SEED: u32 = 2023;

/// `n` arrivals (ms) with exponential gaps of mean `1000 / qps` ms from
/// `np.random.RandomState(seed)`, accumulated from 0 as the original does.
///
/// `qps` must be finite and positive. `n = 0` gives an empty trace.
pub fn poisson(n: usize, qps: f64, seed: u32) -> Result<Vec<f64>, TraceGenError> {
    check_n("poisson", n)?;
    check_positive("poisson", "qps", qps)?;
    let scale = 1000.0 / qps;
    let mut rng = NumpyRandomState::new(seed);
    Ok(accumulate_gaps((0..n).map(|_| rng.exponential(scale))))
}
