//! A synthetic stand-in for one busy function of the Azure Functions 2019 trace, for when the real
//! files are absent. It has the trace's published shape (`spec/paper.md`): heavy-tailed
//! per-minute counts with empty minutes, a diurnal cycle, and bursty arrivals within minutes.
//!
//! # Model
//!
//! Minute `i` of the span (`0 .. minutes`; minute of day `start_minute + i`) is generated in three
//! steps, all from one [`Xoshiro256StarStar`] seeded with `seed`, in this order:
//!
//! 1. **On/off.** A two-state Markov chain decides whether the function is active: an "off" run
//!    lasts `mean_off_minutes` on average (geometric), and the chain spends a fraction
//!    `off_fraction` of the minutes off (its stationary distribution). Minute 0 is always on.
//!    Each minute after the first draws one uniform for its transition.
//! 2. **Intensity.** An on minute's weight is
//!    `(1 + diurnal_amplitude * cos(2 pi (minute_of_day - peak_minute) / 1440)) * L`, with `L`
//!    lognormal of mean 1 and log-standard-deviation `minute_sigma` (one normal draw); off
//!    minutes weigh 0. The diurnal factor alone makes the peak minute `(1 + a) / (1 - a)` times
//!    the trough minute (4 for the default `a = 0.6`; hourly totals a little less).
//! 3. **Counts.** Exactly `n` requests are apportioned to the minutes in proportion to their
//!    weights by largest remainders (Hamilton's method, exact integer arithmetic, ties to the
//!    earlier minute); low-weight on minutes can get 0.
//!
//! Then, minute by minute, a minute with `c` requests gets `1 + Poisson((c - 1) / burst_size)`
//! bursts (at most `c`) centred at uniform offsets in the minute; each request joins a uniformly
//! chosen burst and lands an exponential delay of mean `burst_spread_ms` after its centre (wrapping
//! past the minute's end to its start). The minute's offsets are sorted and added to the minute's
//! start, `i * 60000` ms. Arrivals are **not** shifted to start at 0, so that minute `i` of the
//! trace is `[i * 60000, (i + 1) * 60000)` ms, as for the real trace; the first arrival lies in
//! the first minute that got requests (minute 0 is on, so for any sizeable `n` it is minute 0).
//!
//! # Shape achieved
//!
//! With the defaults over 1,440 minutes (seeds 1 to 5; the bounds are tested in
//! `apparate/tests/traces.rs`):
//!
//! | n | empty minutes | non-zero median | non-zero p99 | hourly peak / trough | inter-arrival CV |
//! |---|---|---|---|---|---|
//! | 250,050 (amazon_reviews) | 3-6 % | 93-110 | 1,227-1,476 | 4.5-8.2 | 6.6-7.9 |
//! | 179,767 (imdb) | 3-6 % | 67-79 | 882-1,061 | 4.5-8.2 | 6.1-7.2 |
//!
//! The p99 is 13-15 times the median (the heavy right tail); the CV is far above a Poisson
//! process's 1, from the minute-to-minute intensity swings, the empty minutes and the bursts. A
//! sparse function is e.g. `off_fraction = 0.95, mean_off_minutes = 40` with `n = 300`: 94-96 %
//! of minutes empty, non-zero medians of 2-4 requests.

use serde::{Deserialize, Serialize};

use super::azure::MINUTE_MS;
use super::common::{check_n, TraceGenError, MAX_SPAN_MINUTES};
use super::rng::{det_math, Xoshiro256StarStar};

/// Minutes per day, the diurnal cycle's period.
const DAY_MINUTES: f64 = 1440.0;

/// Parameters of the synthetic Azure-like trace other than its size and seed (see
/// [the module docs](self) for the model). Missing fields take the defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticShape {
    /// Minutes the trace spans, 1 to 1,000,000 (default 1,440, one day).
    pub minutes: usize,
    /// Minute of day of the trace's first minute, 0 to 1,439 (default 0, midnight).
    pub start_minute: usize,
    /// Relative amplitude `a` of the diurnal cycle, in `[0, 1)` (default 0.6).
    pub diurnal_amplitude: f64,
    /// Minute of day of the diurnal peak, in `[0, 1440)` (default 840, 14:00).
    pub peak_minute: f64,
    /// Long-run fraction of minutes in the off state, in `[0, 1)` (default 0.05).
    pub off_fraction: f64,
    /// Mean length of an off run in minutes, 1 to 1,000,000 (default 2). With `off_fraction` it must
    /// satisfy `off_fraction / (1 - off_fraction) <= mean_off_minutes`.
    pub mean_off_minutes: f64,
    /// Log-standard-deviation of an on minute's lognormal intensity factor, `>= 0` (default 1.0).
    pub minute_sigma: f64,
    /// Mean number of requests per burst within a minute, 1 to 1,000,000 (default 8).
    pub burst_size: f64,
    /// Mean delay (ms) of a request after its burst's centre, in `(0, 60000]` (default 500).
    pub burst_spread_ms: f64,
}

impl Default for SyntheticShape {
    fn default() -> Self {
        SyntheticShape {
            minutes: 1440,
            start_minute: 0,
            diurnal_amplitude: 0.6,
            peak_minute: 840.0,
            off_fraction: 0.05,
            mean_off_minutes: 2.0,
            minute_sigma: 1.0,
            burst_size: 8.0,
            burst_spread_ms: 500.0,
        }
    }
}

/// The span in minutes that gives `n` requests a mean offered load of `load` on a model whose
/// batch-1 latency is `batch1_ms`: `ceil(n · batch1_ms / (load · 60,000))`, at least 1. At
/// `load = 1` the requests arrive on average exactly as fast as the model serves them one by
/// one, so queues form and batches grow in the busy minutes.
pub fn minutes_for_load(n: usize, batch1_ms: f64, load: f64) -> usize {
    let minutes = span_for_load(n, batch1_ms, load);
    if minutes.is_finite() && minutes >= 1.0 {
        minutes as usize
    } else {
        1
    }
}

/// [`minutes_for_load`] before it is made a count: `ceil(n · batch1_ms / (load · 60,000))`, which
/// can be 0, above [`MAX_SPAN_MINUTES`] or not finite (a sweep plan refuses a load that gives
/// a span outside 1 to [`MAX_SPAN_MINUTES`]).
pub fn span_for_load(n: usize, batch1_ms: f64, load: f64) -> f64 {
    (n as f64 * batch1_ms / (load * MINUTE_MS)).ceil()
}

/// A synthetic trace: the per-minute counts and the arrivals.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticTrace {
    /// Requests in each minute of the span (sum `n`).
    pub per_minute: Vec<u64>,
    /// Arrival times (ms), non-decreasing, minute `i` in `[i * 60000, (i + 1) * 60000)`.
    pub arrivals_ms: Vec<f64>,
}

/// The synthetic Azure-like trace of exactly `n` requests for `seed`.
pub fn synthetic_azure(
    n: usize,
    seed: u64,
    shape: &SyntheticShape,
) -> Result<SyntheticTrace, TraceGenError> {
    check_n("synthetic_azure", n)?;
    let switch = shape.validate()?;
    let mut rng = Xoshiro256StarStar::seed_from_u64(seed);
    let weights = minute_weights(&mut rng, shape, switch);
    let per_minute = apportion(n as u64, &weights);
    let mut arrivals_ms = Vec::with_capacity(n);
    let mut offsets = Vec::new();
    let mut centres = Vec::new();
    for (minute, &count) in per_minute.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let bursts = (1 + rng.poisson((count - 1) as f64 / shape.burst_size)).min(count);
        centres.clear();
        centres.extend((0..bursts).map(|_| rng.uniform() * MINUTE_MS));
        offsets.clear();
        for _ in 0..count {
            let centre = centres[rng.below(bursts) as usize];
            offsets.push((centre + rng.exponential(shape.burst_spread_ms)) % MINUTE_MS);
        }
        offsets.sort_by(f64::total_cmp);
        let start = minute as f64 * MINUTE_MS;
        arrivals_ms.extend(offsets.iter().map(|offset| start + offset));
    }
    Ok(SyntheticTrace {
        per_minute,
        arrivals_ms,
    })
}

/// The Markov chain's switching probabilities per minute.
#[derive(Clone, Copy, Debug)]
struct Switch {
    on_to_off: f64,
    off_to_on: f64,
}

impl SyntheticShape {
    fn invalid(parameter: &'static str, value: f64, expected: &'static str) -> TraceGenError {
        TraceGenError::InvalidParameter {
            kind: "synthetic_azure",
            parameter,
            value,
            expected: expected.into(),
        }
    }

    /// Checks every parameter against its range (the `parameter` of the error is the field's
    /// name):
    ///
    /// | field | range |
    /// |---|---|
    /// | `minutes` | 1 to [`MAX_SPAN_MINUTES`] |
    /// | `start_minute` | 0 to 1,439 (a minute of the day) |
    /// | `diurnal_amplitude` | `[0, 1)` |
    /// | `peak_minute` | `[0, 1440)` |
    /// | `off_fraction` | `[0, 1)` |
    /// | `mean_off_minutes` | 1 to 1,000,000, and at least `off_fraction / (1 - off_fraction)` |
    /// | `minute_sigma` | `[0, 10]` |
    /// | `burst_size` | 1 to 1,000,000 |
    /// | `burst_spread_ms` | `(0, 60000]` (at most a minute) |
    pub fn check(&self) -> Result<(), TraceGenError> {
        self.validate().map(|_| ())
    }

    /// Checks the parameters and derives the chain's switching probabilities.
    fn validate(&self) -> Result<Switch, TraceGenError> {
        let bad = Self::invalid;
        if self.minutes == 0 || self.minutes > MAX_SPAN_MINUTES {
            return Err(bad("minutes", self.minutes as f64, "1 to 1,000,000"));
        }
        if self.start_minute >= DAY_MINUTES as usize {
            return Err(bad(
                "start_minute",
                self.start_minute as f64,
                "a minute of the day, 0 to 1439",
            ));
        }
        if !(0.0..1.0).contains(&self.diurnal_amplitude) {
            return Err(bad(
                "diurnal_amplitude",
                self.diurnal_amplitude,
                "in [0, 1)",
            ));
        }
        if !(0.0..DAY_MINUTES).contains(&self.peak_minute) {
            return Err(bad(
                "peak_minute",
                self.peak_minute,
                "a minute of the day in [0, 1440)",
            ));
        }
        if !(0.0..1.0).contains(&self.off_fraction) {
            return Err(bad("off_fraction", self.off_fraction, "in [0, 1)"));
        }
        let odds = self.off_fraction / (1.0 - self.off_fraction);
        if !(1.0..=1e6).contains(&self.mean_off_minutes) {
            return Err(bad(
                "mean_off_minutes",
                self.mean_off_minutes,
                "a number in [1, 1000000]",
            ));
        }
        if odds > self.mean_off_minutes {
            return Err(bad(
                "mean_off_minutes",
                self.mean_off_minutes,
                "at least off_fraction / (1 - off_fraction) (on runs cannot be shorter than a minute)",
            ));
        }
        if !(0.0..=10.0).contains(&self.minute_sigma) {
            return Err(bad("minute_sigma", self.minute_sigma, "in [0, 10]"));
        }
        if !(1.0..=1e6).contains(&self.burst_size) {
            return Err(bad(
                "burst_size",
                self.burst_size,
                "a number in [1, 1000000]",
            ));
        }
        if !(self.burst_spread_ms > 0.0 && self.burst_spread_ms <= MINUTE_MS) {
            return Err(bad(
                "burst_spread_ms",
                self.burst_spread_ms,
                "a number of ms in (0, 60000]",
            ));
        }
        let off_to_on = 1.0 / self.mean_off_minutes;
        Ok(Switch {
            on_to_off: off_to_on * odds,
            off_to_on,
        })
    }
}

/// Steps 1 and 2 of the model: each minute's weight (0 when off).
fn minute_weights(
    rng: &mut Xoshiro256StarStar,
    shape: &SyntheticShape,
    switch: Switch,
) -> Vec<f64> {
    let sigma = shape.minute_sigma;
    let mut on = true;
    (0..shape.minutes)
        .map(|i| {
            if i > 0 {
                let u = rng.uniform();
                on = if on {
                    u >= switch.on_to_off
                } else {
                    u < switch.off_to_on
                };
            }
            if !on {
                return 0.0;
            }
            let minute_of_day = (shape.start_minute + i) as f64;
            let phase = (minute_of_day - shape.peak_minute) / DAY_MINUTES;
            let diurnal = 1.0 + shape.diurnal_amplitude * det_math::cos_turns(phase);
            diurnal * rng.lognormal(-0.5 * sigma * sigma, sigma)
        })
        .collect()
}

/// Bits of resolution of the integer weights in [`apportion`].
const WEIGHT_BITS: u32 = 40;

/// Step 3: `n` split in proportion to `weights` by largest remainders, exactly. Weights are
/// rounded to integers relative to the largest (2^40 for it); all-zero weights give all zeros.
fn apportion(n: u64, weights: &[f64]) -> Vec<u64> {
    let max = weights.iter().copied().fold(0.0, f64::max);
    if max <= 0.0 || n == 0 {
        return vec![0; weights.len()];
    }
    let scale = (1u64 << WEIGHT_BITS) as f64 / max;
    let ints: Vec<u128> = weights
        .iter()
        .map(|&w| (w * scale).round() as u128)
        .collect();
    let total: u128 = ints.iter().sum();
    let n = u128::from(n);
    let mut counts: Vec<u64> = ints.iter().map(|&w| (n * w / total) as u64).collect();
    let given: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first, then the earlier minute.
    order.sort_by_key(|&i| (std::cmp::Reverse(n * ints[i] % total), i));
    for &i in order.iter().take((n - given) as usize) {
        counts[i] += 1;
    }
    counts
}
