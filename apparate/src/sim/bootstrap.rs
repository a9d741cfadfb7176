//! Bootstrap (spec §6.2): greedy ramp addition decides how many ramps to start with; they are
//! then placed evenly between ramp 0 and the latest useful ramp, all thresholds 0.

use super::evaluate::{gap_order, ramp_utilities, EvalData};
use super::latency::LatencyTable;
use super::numeric::new_ramps;
use super::samples::RampData;
use super::tuning::{tune_with_orders, ACC_LOSS_BUDGET_TUNING};
use std::collections::BTreeMap;

/// Bootstrap: a configuration's no-exit latency must stay below `V * (1 + 0.05)`.
pub const TAIL_LATENCY_BUDGET: f64 = 0.05;

/// What greedy ramp addition chose (only its length is used by the controller).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RampAddition {
    /// Chosen ramp ids, ascending.
    pub ramp_ids: Vec<usize>,
    /// The tuned thresholds of the configuration adopted last.
    pub thresholds: Vec<f64>,
    /// Its latency improvement (formula §4.2).
    pub latency_savings: f64,
    /// Its accuracy.
    pub acc: f64,
}

/// The outcome of the bootstrap phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Bootstrap {
    /// Greedy ramp addition's result.
    pub ramp_addition: RampAddition,
    /// `l`: how many ramps the run starts with.
    pub num_initial_ramps: usize,
    /// `R + 1`.
    pub total_num_ramps: usize,
    /// The last ramp whose solo exit is not slower than the vanilla model.
    pub latest_possible_ramp: usize,
    /// The evenly spaced initial ramps (thresholds all 0).
    pub initial_ramp_ids: Vec<usize>,
}

/// `1.0 - conf` for every ramp and sample.
pub fn gaps_of(data: &RampData) -> Vec<Vec<f64>> {
    data.conf
        .iter()
        .map(|c| c.iter().map(|&x| 1.0 - x).collect())
        .collect()
}

/// The artifact's `ramp_addition_tail_latency`: add, one at a time and up to `budget`, the
/// candidate with the best score whose configuration stays feasible and inside the tail budget.
pub fn ramp_addition(data: &RampData, table: &LatencyTable, budget: usize) -> RampAddition {
    let r = data.num_ramps();
    let gaps = gaps_of(data);
    // Every candidate set re-tunes on the same samples: sort each ramp's gaps once.
    let orders: Vec<Vec<u32>> = gaps.iter().map(|g| gap_order(g)).collect();
    let no_fixed = BTreeMap::new();
    let mut result = RampAddition::default();
    while result.ramp_ids.len() < budget {
        let mut best: Option<(usize, RampAddition)> = None;
        let mut best_score = 0.0;
        for c in (0..r).filter(|c| !result.ramp_ids.contains(c)) {
            let mut ids = result.ramp_ids.clone();
            ids.push(c);
            ids.sort_unstable();
            let g: Vec<&[f64]> = ids.iter().map(|&a| gaps[a].as_slice()).collect();
            let a: Vec<&[bool]> = ids.iter().map(|&a| data.acc[a].as_slice()).collect();
            let o = ids.iter().map(|&a| orders[a].clone()).collect();
            let tuned = tune_with_orders(
                &ids,
                EvalData { gaps: &g, acc: &a },
                Some(o),
                table,
                &no_fixed,
            );
            let lat = table.exit_latencies(&ids);
            let pos = ids.iter().position(|&a| a == c).unwrap_or(0);
            let utility = ramp_utilities(&tuned.er, &lat, &ids, table)[pos];
            let score = utility / table.ramp_ms(c);
            if tuned.acc < 1.0 - ACC_LOSS_BUDGET_TUNING {
                continue;
            }
            if score > best_score
                && (lat.no_exit() - lat.vanilla_ms) / lat.vanilla_ms < TAIL_LATENCY_BUDGET
            {
                best_score = score;
                best = Some((
                    c,
                    RampAddition {
                        ramp_ids: ids,
                        thresholds: tuned.thresholds,
                        latency_savings: tuned.li,
                        acc: tuned.acc,
                    },
                ));
            }
        }
        match best {
            Some((_, chosen)) => result = chosen,
            None => break,
        }
    }
    result
}

/// The whole bootstrap phase on the bootstrap data, with the latency table of `--batch_size`.
pub fn bootstrap(data: &RampData, table: &LatencyTable, budget: usize) -> Bootstrap {
    let ramp_addition = ramp_addition(data, table, budget);
    let num_initial_ramps = ramp_addition.ramp_ids.len().max(1);
    let r = data.num_ramps();
    let latest_possible_ramp = table.latest_possible_ramp(r);
    let initial_ramp_ids = new_ramps(0, latest_possible_ramp, num_initial_ramps);
    Bootstrap {
        ramp_addition,
        num_initial_ramps,
        total_num_ramps: r + 1,
        latest_possible_ramp,
        initial_ramp_ids,
    }
}
