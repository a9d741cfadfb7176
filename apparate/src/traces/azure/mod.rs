//! Traces from the Azure Functions 2019 per-minute invocation counts (`create_request` without
//! `fixed_arrival_rate`).
//!
//! What the original does, and [`azure_csv_trace`] reproduces:
//!
//! 1. Read day 1 (`invocations_per_function_md.anon.d01.csv`) and take data row 7188 (0-based,
//!    header excluded; see [`csv`](mod@csv)), columns `"1"` ... `"1440"`.
//! 2. Cap ([`cap_counts`]): append the minutes' counts one by one; as soon as the running total
//!    **exceeds** 700,000, reduce the last minute by the excess and stop. A total that reaches the
//!    cap exactly does not stop the loop: following empty minutes are still appended, and the next
//!    non-empty one is reduced to 0. Either way the total is exactly the cap, or the whole day if
//!    the day has fewer requests.
//! 3. Spread ([`Spread::Even`]): minute `i` (from 0) starts at `i * 60000` ms (the original adds
//!    60,000 per minute, exact in `f64`); its `c > 0` requests arrive at
//!    `start + (60000.0 / c) * j` for `j = 0 .. c`, the first at the minute's start. Arrivals are
//!    **not** shifted: if the first minutes are empty, the first arrival is at the first non-empty
//!    minute's start.
//!
//! [`Spread::Poisson`] is a named option (not in the original): each minute's `c` requests at
//! `c` sorted uniform offsets within the minute (a Poisson process conditioned on its count),
//! from a seeded [`Xoshiro256StarStar`].

pub mod csv;

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::common::{TraceGenError, MAX_REQUESTS};
use super::rng::Xoshiro256StarStar;
pub use csv::{
    parse_function, read_function, AzureCsvError, FunctionCounts, FunctionPick, ARTIFACT_ROW,
    MINUTES_PER_DAY,
};

/// The artifact's cap on the number of requests (`TOTAL_NUM_REQUESTS = 700000`; its comment
/// gives 250,050 for amazon_reviews and 179,767 for imdb).
pub const ARTIFACT_CAP: u64 = 700_000;

/// One minute in ms (`INTERVAL_DURATION_SECONDS * 1000`).
pub const MINUTE_MS: f64 = 60_000.0;

/// How a minute's requests are placed within it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// Evenly, `60000 / c` ms apart from the minute's start (the original).
    #[default]
    Even,
    /// At sorted uniform random offsets (Poisson within the minute), seeded.
    Poisson,
}

/// The original's cap rule (see [the module docs](self)): the per-minute counts it keeps, the last
/// one possibly reduced. Their sum is `min(cap, sum(per_minute))`.
pub fn cap_counts(per_minute: &[u64], cap: u64) -> Vec<u64> {
    let mut kept = Vec::with_capacity(per_minute.len());
    let mut total: u128 = 0;
    for &count in per_minute {
        kept.push(count);
        total += u128::from(count);
        if total > u128::from(cap) {
            let excess = total - u128::from(cap);
            if let Some(last) = kept.last_mut() {
                // excess <= count: the total before this minute was at most the cap.
                *last -= u64::try_from(excess).unwrap_or(*last);
            }
            break;
        }
    }
    kept
}

/// The original's `avg_qps` for the kept counts: `np.average(arrivals_per_min) / 60` (used in
/// its decision-file name, `azure_{round(avg_qps)}`). NaN for no minutes.
pub fn artifact_avg_qps(kept: &[u64]) -> f64 {
    // The counts are integers below 2^53 in total, so numpy's float sum is exact in any order.
    let sum: u64 = kept.iter().sum();
    sum as f64 / kept.len() as f64 / 60.0
}

/// Arrivals (ms) for per-minute counts, minute `i` starting at `i * 60000` ms. `seed` is used by
/// [`Spread::Poisson`] only.
pub fn spread_arrivals(per_minute: &[u64], spread: Spread, seed: u64) -> Vec<f64> {
    let total: u64 = per_minute.iter().sum();
    let mut arrivals = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut rng = Xoshiro256StarStar::seed_from_u64(seed);
    let mut offsets = Vec::new();
    for (minute, &count) in per_minute.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let start = minute as f64 * MINUTE_MS;
        match spread {
            Spread::Even => {
                let gap = MINUTE_MS / count as f64;
                arrivals.extend((0..count).map(|j| start + gap * j as f64));
            }
            Spread::Poisson => {
                offsets.clear();
                offsets.extend((0..count).map(|_| rng.uniform() * MINUTE_MS));
                offsets.sort_by(f64::total_cmp);
                arrivals.extend(offsets.iter().map(|offset| start + offset));
            }
        }
    }
    arrivals
}

/// The trace of function `pick` in the CSV file at `path`: its counts capped at `cap` requests
/// ([`cap_counts`]) and spread within each minute ([`spread_arrivals`]).
///
/// Fails on an unreadable or malformed file ([`AzureCsvError`]) and when the capped total is above
/// [`MAX_REQUESTS`].
pub fn azure_csv_trace(
    path: &Path,
    pick: &FunctionPick,
    cap: u64,
    spread: Spread,
    seed: u64,
) -> Result<Vec<f64>, TraceGenError> {
    let function = read_function(path, pick)?;
    let kept = cap_counts(&function.per_minute, cap);
    let total: u128 = kept.iter().map(|&c| u128::from(c)).sum();
    if total > MAX_REQUESTS as u128 {
        return Err(TraceGenError::InvalidParameter {
            kind: "azure_csv",
            parameter: "cap",
            value: cap as f64,
            expected: "a cap that keeps at most 100,000,000 requests of the function".into(),
        });
    }
    Ok(spread_arrivals(&kept, spread, seed))
}
