//! Threshold tuning: the artifact's greedy coordinate search (spec §5).

use super::evaluate::{EvalData, IncrementalEval, Performance};
use super::latency::LatencyTable;
use super::numeric::round_py;
use std::collections::BTreeMap;

/// Tuning feasibility: a candidate is feasible when `|1 - acc| < ACC_LOSS_BUDGET_TUNING`.
pub const ACC_LOSS_BUDGET_TUNING: f64 = 0.0001;
const INITIAL_STEP: f64 = 0.01;
const MIN_STEP: f64 = 0.001;

/// Result of a threshold search: thresholds per active position and their performance.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuned {
    /// Thresholds per active position.
    pub thresholds: Vec<f64>,
    /// Latency improvement (formula §4.2) of the last accepted move.
    pub li: f64,
    /// Exit rates of the last accepted move.
    pub er: Vec<f64>,
    /// Accuracy of the last accepted move.
    pub acc: f64,
}

/// The artifact's `tune_threshold` (§5.1): one greedy search from step 0.01. Ramps whose id is
/// a key of `fixed` start at (and, unless the all-neutral quirk hits them, keep) that value.
pub fn tune_thresholds(
    ramp_ids: &[usize],
    data: EvalData<'_>,
    table: &LatencyTable,
    fixed: &BTreeMap<usize, f64>,
) -> Tuned {
    tune_with_orders(ramp_ids, data, None, table, fixed)
}

/// [`tune_thresholds`] with each position's gap order precomputed (see
/// [`super::evaluate::gap_order`]); `None` computes them.
pub fn tune_with_orders(
    ramp_ids: &[usize],
    data: EvalData<'_>,
    orders: Option<Vec<Vec<u32>>>,
    table: &LatencyTable,
    fixed: &BTreeMap<usize, f64>,
) -> Tuned {
    let lat = table.exit_latencies(ramp_ids);
    let is_fixed: Vec<bool> = ramp_ids.iter().map(|a| fixed.contains_key(a)).collect();
    let mut step: Vec<f64> = is_fixed
        .iter()
        .map(|&f| if f { MIN_STEP } else { INITIAL_STEP })
        .collect();
    let mut t: Vec<f64> = ramp_ids
        .iter()
        .map(|a| fixed.get(a).copied().unwrap_or(0.0))
        .collect();
    let mut eval = match orders {
        Some(o) => IncrementalEval::with_orders(data, o, &t),
        None => IncrementalEval::new(data, &t),
    };
    let mut cur = eval.performance(&lat);
    loop {
        let ex = explore(&t, &step, &cur, &is_fixed, &eval, &lat);
        match ex.direction {
            Some(d) if t[d] <= 1.0 => {
                cur = ex.perf;
                t[d] = round_py(t[d] + step[d], 4);
                eval.set(d, t[d]);
                step[d] *= 2.0;
                for &k in &ex.positive {
                    if k != d {
                        step[k] *= 2.0;
                    }
                }
            }
            _ => {
                let mut progress = false;
                for k in 0..step.len() {
                    if round_py(step[k], 4) <= MIN_STEP || t[k] > 1.0 {
                        continue;
                    }
                    step[k] /= 2.0;
                    progress = true;
                }
                if !progress {
                    break;
                }
            }
        }
    }
    Tuned {
        thresholds: t,
        li: cur.li,
        er: cur.er,
        acc: cur.acc,
    }
}

/// What `explore_direction` decided.
struct Exploration {
    direction: Option<usize>,
    perf: Performance,
    /// Directions whose move kept `li` or `acc` unchanged ("positive" directions).
    positive: Vec<usize>,
}

/// The artifact's `explore_direction` (§5.3), quirks included: direction 0 counts as
/// "no best", and when every direction is neutral it moves ramp 0 with unchanged metrics.
fn explore(
    t: &[f64],
    step: &[f64],
    cur: &Performance,
    is_fixed: &[bool],
    eval: &IncrementalEval,
    lat: &super::latency::ExitLatencies,
) -> Exploration {
    let mut best: Option<(usize, Performance)> = None;
    let mut best_score = f64::INFINITY;
    let mut equal = 0usize;
    let mut positive: Vec<(usize, Performance)> = Vec::new();
    for d in 0..t.len() {
        if is_fixed[d] {
            continue;
        }
        let p = eval.trial(d, round_py(t[d] + step[d], 4), lat);
        if (1.0 - p.acc).abs() < ACC_LOSS_BUDGET_TUNING {
            let neutral = p.li == cur.li;
            let same_acc = p.acc == cur.acc;
            if !neutral {
                let score = (p.acc - cur.acc).abs() / (p.li - cur.li).abs();
                if score < best_score {
                    best_score = score;
                    best = Some((d, p.clone()));
                }
            } else {
                equal += 1;
            }
            if neutral || same_acc {
                positive.push((d, p));
            }
        }
    }
    let positive_dirs: Vec<usize> = positive.iter().map(|(d, _)| *d).collect();
    if equal == t.len() {
        return Exploration {
            direction: Some(0),
            perf: cur.clone(),
            positive: positive_dirs,
        };
    }
    let best_is_falsy = matches!(best, None | Some((0, _)));
    if best_is_falsy {
        if let Some((d, p)) = positive.into_iter().next() {
            return Exploration {
                direction: Some(d),
                perf: p,
                positive: positive_dirs,
            };
        }
    }
    match best {
        Some((d, p)) => Exploration {
            direction: Some(d),
            perf: p,
            positive: positive_dirs,
        },
        None => Exploration {
            direction: None,
            perf: cur.clone(),
            positive: positive_dirs,
        },
    }
}
