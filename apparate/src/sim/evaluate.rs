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
        performance_from_counts(count, correct, n, lat)
    }
}

/// The tail of `query_performance`: exit rates, rounded accuracy and latency improvement from
/// per-position exit counts and the number of correct samples.
fn performance_from_counts(
    count: &[usize],
    correct: usize,
    n: usize,
    lat: &ExitLatencies,
) -> Performance {
    let er: Vec<f64> = count.iter().map(|&c| c as f64 / n as f64).collect();
    let acc = round_py(correct as f64 / n as f64, 7);
    let mut s = 0.0;
    for (e, l) in er.iter().zip(&lat.per_exit) {
        s += e * l;
    }
    let li = ((lat.vanilla_ms - s) / lat.vanilla_ms) * 100.0;
    Performance { acc, li, er }
}

/// Sample indices sorted by ascending gap (ties in any order: tied samples always move
/// together).
pub fn gap_order(gaps: &[f64]) -> Vec<u32> {
    // Map f64 to u64 so that integer order equals `total_cmp` order.
    let mut keyed: Vec<(u64, u32)> = gaps
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let b = g.to_bits();
            let key = if b >> 63 == 1 { !b } else { b | (1 << 63) };
            (key, i as u32)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// `query_performance` for a threshold vector that changes one position at a time, upwards,
/// as in the greedy search. Keeps every sample's exit position; a trial raising `t_d` only
/// visits the samples whose gap at `d` lies in `[t_d, t'_d)` (each position's samples are
/// sorted by gap). Counts are integers, so results equal a full evaluation bit for bit.
#[derive(Clone, Debug)]
pub struct IncrementalEval {
    packed: PackedEval,
    /// Per position: sample indices sorted by gap at that position, and the sorted gaps.
    order: Vec<Vec<u32>>,
    sorted: Vec<Vec<f64>>,
    /// Current exit position of every sample (`J` for the final exit).
    pos: Vec<u32>,
    thresholds: Vec<f64>,
    count: Vec<usize>,
    correct: usize,
}

impl IncrementalEval {
    /// Evaluates `thresholds` in full and keeps the state.
    pub fn new(data: EvalData<'_>, thresholds: &[f64]) -> IncrementalEval {
        let order = data
            .gaps
            .iter()
            .map(|g| gap_order(&g[..data.len()]))
            .collect();
        IncrementalEval::with_orders(data, order, thresholds)
    }

    /// Like [`IncrementalEval::new`], with each position's sample order (ascending gap, as
    /// [`gap_order`] returns) computed by the caller, e.g. once per ramp for many tunes.
    pub fn with_orders(
        data: EvalData<'_>,
        order: Vec<Vec<u32>>,
        thresholds: &[f64],
    ) -> IncrementalEval {
        let packed = PackedEval::new(data);
        let j = packed.j;
        let sorted = order
            .iter()
            .enumerate()
            .map(|(p, idx)| {
                idx.iter()
                    .map(|&i| packed.gaps[i as usize * j + p])
                    .collect()
            })
            .collect();
        let mut ev = IncrementalEval {
            packed,
            order,
            sorted,
            pos: Vec::new(),
            thresholds: thresholds.to_vec(),
            count: Vec::new(),
            correct: 0,
        };
        ev.recount();
        ev
    }

    fn recount(&mut self) {
        let j = self.packed.j;
        self.count = vec![0; j + 1];
        self.correct = 0;
        self.pos = Vec::with_capacity(self.packed.n);
        if j == 0 {
            self.count[0] = self.packed.n;
            self.correct = self.packed.n;
            self.pos.resize(self.packed.n, 0);
            return;
        }
        for (row, ok) in self
            .packed
            .gaps
            .chunks_exact(j)
            .zip(self.packed.acc.chunks_exact(j))
        {
            let p = row
                .iter()
                .zip(&self.thresholds)
                .position(|(g, t)| g < t)
                .unwrap_or(j);
            self.count[p] += 1;
            self.correct += if p == j { 1 } else { usize::from(ok[p]) };
            self.pos.push(p as u32);
        }
    }

    /// The current thresholds.
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// Performance of the current thresholds.
    pub fn performance(&self, lat: &ExitLatencies) -> Performance {
        performance_from_counts(&self.count, self.correct, self.packed.n, lat)
    }

    /// Samples that would move to position `d` if `t_d` rose to `new_t`, as
    /// `(sample, old position)`.
    fn movers(&self, d: usize, new_t: f64) -> impl Iterator<Item = (usize, usize)> + '_ {
        let sorted = &self.sorted[d];
        let start = sorted.partition_point(|&g| g < self.thresholds[d]);
        sorted[start..]
            .iter()
            .zip(&self.order[d][start..])
            .take_while(move |(&g, _)| g < new_t)
            .map(|(_, &i)| (i as usize, self.pos[i as usize] as usize))
            .filter(move |&(_, p)| p > d)
    }

    fn correct_at(&self, i: usize, p: usize) -> usize {
        if p == self.packed.j {
            1
        } else {
            usize::from(self.packed.acc[i * self.packed.j + p])
        }
    }

    /// Performance if `t_d` were `new_t`, state unchanged.
    pub fn trial(&self, d: usize, new_t: f64, lat: &ExitLatencies) -> Performance {
        if new_t < self.thresholds[d] {
            let mut t = self.thresholds.clone();
            t[d] = new_t;
            return self.packed.evaluate(&t, lat);
        }
        let mut count = self.count.clone();
        let mut correct = self.correct;
        for (i, p) in self.movers(d, new_t) {
            count[p] -= 1;
            count[d] += 1;
            correct = correct - self.correct_at(i, p) + self.correct_at(i, d);
        }
        performance_from_counts(&count, correct, self.packed.n, lat)
    }

    /// Sets `t_d = new_t`.
    pub fn set(&mut self, d: usize, new_t: f64) {
        if new_t < self.thresholds[d] {
            self.thresholds[d] = new_t;
            self.recount();
            return;
        }
        let moved: Vec<(usize, usize)> = self.movers(d, new_t).collect();
        for (i, p) in moved {
            self.count[p] -= 1;
            self.count[d] += 1;
            self.correct = self.correct - self.correct_at(i, p) + self.correct_at(i, d);
            self.pos[i] = d as u32;
        }
        self.thresholds[d] = new_t;
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
