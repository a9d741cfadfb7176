//! The artifact's fixed-rate trace (`create_request` with `fixed_arrival_rate` and without
//! `poisson_arrival`).
//!
//! The original keeps a running clock `curr_time = 0.0`; for each request it records the request
//! at `curr_time` and then adds the gap (`curr_time += 1000.0 / qps`). So the first request arrives
//! at 0 and request `i` at the `f64` sum of `i` gaps added one by one (not `i * gap`, which rounds
//! differently).

use super::common::{accumulate_gaps, check_n, check_positive, TraceGenError};

/// The artifact's request count for generated traces (`total_num_requests = 70000`).
pub const ARTIFACT_REQUESTS: usize = 70_000;

/// `n` arrivals (ms) `1000 / qps` ms apart, accumulated from 0 as the original does.
///
/// `qps` must be finite and positive. `n = 0` gives an empty trace.
pub fn fixed_rate(n: usize, qps: f64) -> Result<Vec<f64>, TraceGenError> {
    check_n("fixed", n)?;
    check_positive("fixed", "qps", qps)?;
    let gap = 1000.0 / qps;
    Ok(accumulate_gaps(std::iter::repeat_n(gap, n)))
}
