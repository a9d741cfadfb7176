//! What the generators share: the error type, the limits, the parameter checks and
//! `create_request`'s clock. A module of its own so that the generators do not import
//! `traces/mod.rs`, which dispatches to them ([`super::generate`]).

use super::azure::AzureCsvError;
use thiserror::Error;

/// The most requests a generated trace may hold (800 MB of arrivals), so that a typo in a sweep
/// spec fails with a message instead of exhausting memory.
pub const MAX_REQUESTS: usize = 100_000_000;

/// The longest span a generated trace may cover, in minutes (about 694 days). Arrival times stay
/// below 6·10^10 ms, where an `f64` still resolves 10^-5 ms, so deadlines (`arrival + slo`) and
/// queueing delays keep their precision; a rate so low that the requests would spread further
/// (e.g. `qps = 1e-300`, arrivals 10^303 ms apart) is refused instead of serving one request.
pub const MAX_SPAN_MINUTES: usize = 1_000_000;

/// The highest request rate of a `fixed` or `poisson` trace (requests per second); gaps below a
/// microsecond are no longer a rate anyone serves.
pub const MAX_QPS: f64 = 1_000_000.0;

/// A trace that cannot be generated.
#[derive(Debug, Error)]
pub enum TraceGenError {
    /// A parameter is out of its range.
    #[error("{kind} trace: {parameter} = {value} is invalid, expected {expected}")]
    InvalidParameter {
        /// The trace kind ([`super::TraceSpec::kind`]).
        kind: &'static str,
        /// The parameter's name.
        parameter: &'static str,
        /// Its value.
        value: f64,
        /// What is allowed.
        expected: String,
    },
    /// The Azure CSV file cannot be used (the error names the file, line and column).
    #[error(transparent)]
    AzureCsv {
        /// What is wrong with the file.
        #[from]
        source: AzureCsvError,
    },
}

/// Rejects request counts above [`MAX_REQUESTS`].
pub(super) fn check_n(kind: &'static str, n: usize) -> Result<(), TraceGenError> {
    if n > MAX_REQUESTS {
        return Err(TraceGenError::InvalidParameter {
            kind,
            parameter: "n",
            value: n as f64,
            expected: "at most 100,000,000 requests".into(),
        });
    }
    Ok(())
}

/// Rejects a rate that is not finite and positive.
pub(super) fn check_positive(
    kind: &'static str,
    parameter: &'static str,
    value: f64,
) -> Result<(), TraceGenError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(TraceGenError::InvalidParameter {
            kind,
            parameter,
            value,
            expected: "a finite number > 0".into(),
        });
    }
    Ok(())
}

/// `create_request`'s clock: one arrival per gap, the first at 0, each later one the running
/// `f64` sum of the gaps before it (added in order). The last gap is not used.
pub(super) fn accumulate_gaps(gaps: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut clock = 0.0;
    gaps.map(|gap| {
        let arrival = clock;
        clock += gap;
        arrival
    })
    .collect()
}
