//! `check_signals_cv` (spec §7): threshold reaction every batch, ramp check every 30.

use crate::sim::controller::Controller;
use crate::sim::error::SimError;
use crate::sim::family::REPEATED_VIOLATIONS;
use crate::sim::latency::BatchSize;
use crate::sim::pyfmt::py_float;
use std::collections::BTreeMap;

/// Runs after batch `i` (served at rounded size `bs`).
pub(crate) fn check_signals(
    ctl: &mut Controller<'_>,
    i: usize,
    bs: BatchSize,
) -> Result<(), SimError> {
    let floor = ctl.floor;
    // Part A: thresholds.
    if ctl.violation_counter >= REPEATED_VIOLATIONS || ctl.cumulative_accuracy() < floor {
        for j in 0..ctl.config.len() {
            let a = ctl.config.ramp_ids[j];
            if ctl.curr_ramp_acc.get(&a).is_some_and(|&acc| acc < floor) {
                ctl.config.thresholds[j] = 0.0;
            }
        }
    } else if ctl.last_batch_violated || ctl.after_ramp_adjustment || i == 1 {
        ctl.config.thresholds = ctl.tune(bs, &BTreeMap::new())?.thresholds;
        ctl.after_ramp_adjustment = false;
    }

    // Part B: ramp check.
    if !i.is_multiple_of(ctl.interval) {
        return Ok(());
    }
    ctl.violation_counter = 0;
    let negatives: Vec<usize> = ctl
        .config
        .ramp_ids
        .iter()
        .copied()
        .filter(|&r| ctl.history.utilities(r).iter().all(|&u| u <= 0.0))
        .collect();
    let scores = ctl.ramp_scores();
    let text: Vec<String> = scores
        .iter()
        .map(|(j, r, m)| format!("[{j}, {r}, {}]", py_float(*m)))
        .collect();
    ctl.log.push(format!("ramp scores: [{}]", text.join(", ")));
    if !negatives.is_empty() {
        let tuned = ctl.tune(bs, &BTreeMap::new())?;
        if tuned.li - ctl.curr_li > ctl.family.retune_adoption_gap() {
            ctl.config.thresholds = tuned.thresholds;
            return Ok(());
        }
        if let Some(after) =
            super::handle_negatives(ctl, &negatives, ctl.family.new_ramp_threshold(), true)
        {
            ctl.after_ramp_adjustment = after;
        }
        return Ok(());
    }
    if let Some(after) = super::move_or_add_earlier(ctl, &scores, ctl.family.new_ramp_threshold()) {
        ctl.after_ramp_adjustment = after;
    }
    Ok(())
}
