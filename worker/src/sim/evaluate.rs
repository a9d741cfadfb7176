//! The exit rule and the performance measures built on it (spec §4).

use super::latency::{ExitLatencies, LatencyTable};
use super::numeric::round_py;
use std::collections::BTreeMap;

/// Samples to evaluate a configuration on, by active position: `gaps[j][i] = 1.0 - conf` of
/// the j-th active ramp on sample `i` (the exit rule compares this with the threshold), and
/// `acc[j][i]` whether that ramp agrees with the original model.
#[derive(Clone, Copy, Debug)]
pub struct EvalData<'a> {
    /// `1.0 - conf`, per active position.
    pub gaps: &'a [&'a [f64]],
    /// Correctness flags, per active position.
    pub acc: &'a [&'a [bool]],
}

impl EvalData<'_> {
    /// The sample count: the first active ramp's list length, as in the original.
    pub fn len(&self) -> usize {
        self.gaps.first().map_or(0, |g| g.len())
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The exit rule (§4.1): the first active position `j` with `gap < t_j`, strictly.
#[inline]
pub fn exit_position(thresholds: &[f64], gap_at: impl Fn(usize) -> f64) -> Option<usize> {
    thresholds
        .iter()
        .enumerate()
        .find_map(|(j, &t)| (gap_at(j) < t).then_some(j))
}

/// What `query_performance` returns (§4.2).
#[derive(Clone, Debug, PartialEq)]
pub struct Performance {
    /// Accuracy, rounded to 7 digits as Python's `round(x, 7)`.
    pub acc: f64,
    /// Latency improvement in percent, `((V - S) / V) * 100`.
    pub li: f64,
    /// Exit rates, one per active position plus the final exit.
    pub er: Vec<f64>,
}

/// The artifact's `query_performance` (§4.2), with its operation order.
pub fn query_performance(
    thresholds: &[f64],
    data: EvalData<'_>,
    lat: &ExitLatencies,
) -> Performance {
    PackedEval::new(data).evaluate(thresholds, lat)
}

/// [`EvalData`] laid out sample-major (`gaps[i * J + j]`) for repeated evaluation of
/// different thresholds on the same samples, as the greedy search does.
#[derive(Clone, Debug)]
pub struct PackedEval {
    gaps: Vec<f64>,
    acc: Vec<bool>,
    n: usize,
    j: usize,
}

impl PackedEval {
    /// Packs the first `data.len()` samples of every active position.
    pub fn new(data: EvalData<'_>) -> PackedEval {
        let n = data.len();
        let j = data.gaps.len();
        let mut gaps = Vec::with_capacity(n * j);
        let mut acc = Vec::with_capacity(n * j);
        for i in 0..n {
            for p in 0..j {
                gaps.push(data.gaps[p][i]);
                acc.push(data.acc[p][i]);
            }
        }
        PackedEval { gaps, acc, n, j }
    }

    /// `query_performance` for `thresholds` (one per active position).
    pub fn evaluate(&self, thresholds: &[f64], lat: &ExitLatencies) -> Performance {
        let (n, j_final) = (self.n, self.j);
        let mut count = [0usize; 16];
        let mut count_vec;
        let count: &mut [usize] = if j_final < 16 {
            &mut count[..=j_final]
        } else {
            count_vec = vec![0usize; j_final + 1];
            &mut count_vec
        };
        let mut correct = 0usize;
        if j_final > 0 {
            for (row, ok) in self
                .gaps
                .chunks_exact(j_final)
                .zip(self.acc.chunks_exact(j_final))
            {
                match row.iter().zip(thresholds).position(|(g, t)| g < t) {
                    Some(p) => {
                        count[p] += 1;
                        correct += usize::from(ok[p]);
                    }
                    None => {
                        count[j_final] += 1;
                        correct += 1;
                    }
                }
            }
        }
        let er: Vec<f64> = count.iter().map(|&c| c as f64 / n as f64).collect();
        let acc = round_py(correct as f64 / n as f64, 7);
        let mut s = 0.0;
        for (e, l) in er.iter().zip(&lat.per_exit) {
            s += e * l;
        }
        let li = ((lat.vanilla_ms - s) / lat.vanilla_ms) * 100.0;
        Performance { acc, li, er }
    }
}

/// The artifact's `get_batch_perf` (§4.4) for one served batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPerformance {
    /// Fraction of correct samples (not rounded).
    pub acc: f64,
    /// `(100 * (V - mean latency)) / V`.
    pub li: f64,
    /// Exit rates per active position plus the final exit.
    pub er: Vec<f64>,
}

/// Per-batch performance (§4.4). `exit_points[k]` is a ramp id or `final_exit` (= R).
pub fn batch_performance(
    latencies: &[f64],
    correct: &[bool],
    exit_points: &[usize],
    ramp_ids: &[usize],
    final_exit: usize,
    vanilla_ms: f64,
) -> BatchPerformance {
    let n = latencies.len() as f64;
    let acc = correct.iter().filter(|&&c| c).count() as f64 / n;
    let mut sum = 0.0;
    for &l in latencies {
        sum += l;
    }
    let m = sum / n;
    let li = (100.0 * (vanilla_ms - m)) / vanilla_ms;
    let mut count = vec![0usize; ramp_ids.len() + 1];
    for &e in exit_points {
        if e == final_exit {
            count[ramp_ids.len()] += 1;
        } else if let Some(pos) = ramp_ids.iter().position(|&a| a == e) {
            count[pos] += 1;
        }
    }
    let er = count.iter().map(|&c| c as f64 / n).collect();
    BatchPerformance { acc, li, er }
}

/// Ramp utilities (§4.5): `er[j] * (L[j+1] - L[j]) - (er[j+1] + ... + er[J]) * o_{a_j}`.
pub fn ramp_utilities(
    er: &[f64],
    lat: &ExitLatencies,
    ramp_ids: &[usize],
    table: &LatencyTable,
) -> Vec<f64> {
    let l = &lat.per_exit;
    ramp_ids
        .iter()
        .enumerate()
        .map(|(j, &a)| {
            let mut rest = 0.0;
            for e in &er[j + 1..] {
                rest += e;
            }
            er[j] * (l[j + 1] - l[j]) - rest * table.ramp_ms(a)
        })
        .collect()
}

/// Exit fractions and per-exit accuracies over samples (§4.6), keyed by exit point.
pub fn exit_stats(
    exit_points: &[usize],
    correct: &[bool],
) -> (BTreeMap<usize, f64>, BTreeMap<usize, f64>) {
    let mut counts: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (&e, &c) in exit_points.iter().zip(correct) {
        let entry = counts.entry(e).or_default();
        entry.0 += 1;
        entry.1 += usize::from(c);
    }
    let total = exit_points.len() as f64;
    let fraction = counts
        .iter()
        .map(|(&e, &(n, _))| (e, n as f64 / total))
        .collect();
    let accuracy = counts
        .iter()
        .map(|(&e, &(n, ok))| (e, ok as f64 / n as f64))
        .collect();
    (fraction, accuracy)
}
