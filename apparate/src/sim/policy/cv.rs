//! `check_signals_cv` (spec §7): threshold reaction every batch, ramp check every 30.

use crate::sim::adaptation::{Adaptation, BatchSignals, RunContext};
use crate::sim::error::SimError;
use crate::sim::family::REPEATED_VIOLATIONS;
use crate::sim::pyfmt::py_float;
use std::collections::BTreeMap;

/// Runs after batch `batch.i` (served at rounded size `batch.bs`).
pub(crate) fn check_signals(
    state: &mut Adaptation,
    run: &RunContext<'_>,
    batch: &BatchSignals<'_>,
) -> Result<(), SimError> {
    let floor = run.floor;
    let i = batch.i;
    // Part A: thresholds.
    if state.violation_counter >= REPEATED_VIOLATIONS || batch.cumulative_accuracy < floor {
        for j in 0..state.config.len() {
            let a = state.config.ramp_ids[j];
            if batch.ramp_acc.get(&a).is_some_and(|&acc| acc < floor) {
                state.config.thresholds[j] = 0.0;
            }
        }
    } else if batch.violated || state.after_ramp_adjustment || i == 1 {
        state.config.thresholds = state.tune(run, batch, &BTreeMap::new())?.thresholds;
        state.after_ramp_adjustment = false;
    }

    // Part B: ramp check.
    if !i.is_multiple_of(run.interval) {
        return Ok(());
    }
    state.violation_counter = 0;
    let negatives: Vec<usize> = state
        .config
        .ramp_ids
        .iter()
        .copied()
        .filter(|&r| state.history.utilities(r).iter().all(|&u| u <= 0.0))
        .collect();
    let scores = state.ramp_scores();
    let text: Vec<String> = scores
        .iter()
        .map(|(j, r, m)| format!("[{j}, {r}, {}]", py_float(*m)))
        .collect();
    state
        .log
        .push(format!("ramp scores: [{}]", text.join(", ")));
    if !negatives.is_empty() {
        let tuned = state.tune(run, batch, &BTreeMap::new())?;
        if tuned.li - batch.li > run.family.retune_adoption_gap() {
            state.config.thresholds = tuned.thresholds;
            return Ok(());
        }
        if let Some(after) = super::ramps::handle_negatives(state, run, &negatives) {
            state.after_ramp_adjustment = after;
        }
        return Ok(());
    }
    if let Some(after) = super::ramps::move_or_add_earlier(state, run, &scores) {
        state.after_ramp_adjustment = after;
    }
    Ok(())
}
