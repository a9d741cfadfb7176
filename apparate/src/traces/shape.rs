//! Shape statistics of an arrival trace, the ones the Azure Functions trace is described by
//! (`spec/paper.md`, "The Azure Functions 2019 trace"): how many minutes are empty, how heavy the
//! tail of the non-empty minutes' counts is, how strong the daily cycle is, and how bursty the
//! inter-arrival times are.

use super::azure::MINUTE_MS;

/// Minutes per hour, the bin of [`ShapeStats::peak_trough_ratio`].
const HOUR_MINUTES: usize = 60;

/// Shape statistics of a trace binned into minutes of [`MINUTE_MS`] from time 0.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeStats {
    /// Minutes in the binned span.
    pub minutes: usize,
    /// Fraction of those minutes with no request.
    pub zero_minute_fraction: f64,
    /// Median of the non-zero minutes' counts (nearest rank); NaN if all are zero.
    pub nonzero_median: f64,
    /// 99th percentile of the non-zero minutes' counts (nearest rank); NaN if all are zero.
    pub nonzero_p99: f64,
    /// Largest over smallest total of the complete hours (60-minute bins from minute 0);
    /// infinite if an hour is empty, NaN with fewer than two complete hours.
    pub peak_trough_ratio: f64,
    /// Coefficient of variation (population standard deviation over mean) of the gaps between
    /// consecutive arrivals: 0 for a timer, 1 for a Poisson process; NaN with fewer than two
    /// arrivals or a zero mean gap.
    pub interarrival_cv: f64,
}

impl ShapeStats {
    /// The statistics of `arrivals_ms` (non-decreasing, ms) over `minutes` minutes from 0.
    /// Arrivals outside `[0, minutes * 60000)` count toward the inter-arrival CV only.
    pub fn of(arrivals_ms: &[f64], minutes: usize) -> ShapeStats {
        let counts = minute_counts(arrivals_ms, minutes);
        ShapeStats::from_counts(&counts, interarrival_cv(arrivals_ms))
    }

    /// The count statistics of per-minute `counts`, with an inter-arrival CV computed elsewhere.
    pub fn from_counts(counts: &[u64], interarrival_cv: f64) -> ShapeStats {
        let minutes = counts.len();
        let mut nonzero: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
        nonzero.sort_unstable();
        let hours: Vec<u64> = counts
            .chunks_exact(HOUR_MINUTES)
            .map(|hour| hour.iter().sum())
            .collect();
        let peak_trough_ratio = match (hours.iter().max(), hours.iter().min()) {
            (Some(&max), Some(&min)) if hours.len() >= 2 => max as f64 / min as f64,
            _ => f64::NAN,
        };
        ShapeStats {
            minutes,
            zero_minute_fraction: (minutes - nonzero.len()) as f64 / minutes as f64,
            nonzero_median: nearest_rank(&nonzero, 0.5),
            nonzero_p99: nearest_rank(&nonzero, 0.99),
            peak_trough_ratio,
            interarrival_cv,
        }
    }
}

/// Requests per minute: arrival `t` counts in minute `floor(t / 60000)`, for minutes
/// `0 .. minutes`; arrivals outside are ignored.
pub fn minute_counts(arrivals_ms: &[f64], minutes: usize) -> Vec<u64> {
    let mut counts = vec![0u64; minutes];
    for &t in arrivals_ms {
        let minute = (t / MINUTE_MS).floor();
        if minute >= 0.0 && minute < minutes as f64 {
            counts[minute as usize] += 1;
        }
    }
    counts
}

/// Coefficient of variation of the gaps between consecutive arrivals (see
/// [`ShapeStats::interarrival_cv`]).
pub fn interarrival_cv(arrivals_ms: &[f64]) -> f64 {
    let gaps: Vec<f64> = arrivals_ms.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return f64::NAN;
    }
    let n = gaps.len() as f64;
    let mean = gaps.iter().sum::<f64>() / n;
    let var = gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / n;
    if mean == 0.0 {
        return f64::NAN;
    }
    var.sqrt() / mean
}

/// The nearest-rank `q` quantile of sorted values (`sorted[ceil(q n) - 1]`); NaN if empty.
fn nearest_rank(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}
