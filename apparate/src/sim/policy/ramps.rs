//! The ramp moves both signal policies share (spec §7 Part B, §8 Part C).

use crate::sim::adaptation::{Adaptation, RunContext};
use crate::sim::family::EXITS_ENOUGH;
use crate::sim::numeric::new_ramps;

/// Shared "negative ramps" step of both policies after a re-tune was not adopted: either
/// collapse to the last negative ramp (when every active ramp, `latest` included, is
/// negative), or remove the negatives and add one ramp halfway between the last active ramp
/// and `latest`, unless the kept ramps already exit enough.
///
/// The new ramp gets the family's new-ramp threshold. Returns what the CV policy assigns to
/// `after_ramp_adjustment` (`None`: left unchanged); the NLP policy, which assigns nothing in
/// this branch, ignores it.
pub(crate) fn handle_negatives(
    state: &mut Adaptation,
    run: &RunContext<'_>,
    negatives: &[usize],
) -> Option<bool> {
    let avg_er = state.history.average_exit_rates();
    let &last_negative = negatives.last()?;
    let all_negative = negatives.len() == state.config.len();
    if negatives.contains(&run.latest) && all_negative {
        if state.config.len() > 1 {
            for &neg in &negatives[..negatives.len() - 1] {
                state.history.clear(neg);
                state.ramp_quota += 1;
            }
            let t = state.config.thresholds.last().copied().unwrap_or(0.0);
            state.config.ramp_ids = vec![last_negative];
            state.config.thresholds = vec![t];
            return Some(true);
        }
        return Some(false);
    }
    for &neg in negatives {
        state.history.clear(neg);
        state.ramp_quota += 1;
    }
    let last_active = state.config.ramp_ids.last().copied().unwrap_or(0);
    let left = last_negative.max(last_active) + 1;
    let right = run.latest;
    let mut kept_exit_rate = 0.0;
    for (j, &a) in state.config.ramp_ids.iter().enumerate() {
        if !negatives.contains(&a) {
            kept_exit_rate += avg_er.get(j).copied().unwrap_or(0.0);
        }
    }
    state.config.retain_ids(|a| !negatives.contains(&a));
    if kept_exit_rate > EXITS_ENOUGH || left > right {
        return Some(true);
    }
    let new = new_ramps(left, right, 1)[0];
    state.config.push(new, run.family.new_ramp_threshold());
    state.ramp_quota -= 1;
    state.clear_active();
    Some(true)
}

/// The "move earlier" / "add earlier" step when no ramp is negative: with quota left, add a
/// ramp halfway before the first one; without, drop the ramp with the highest mean utility and
/// add one halfway before the first, with the family's new-ramp threshold. Returns whether a
/// ramp changed (`None`: nothing to do).
pub(crate) fn move_or_add_earlier(
    state: &mut Adaptation,
    run: &RunContext<'_>,
    scores: &[(usize, usize, f64)],
) -> Option<bool> {
    let new_threshold = run.family.new_ramp_threshold();
    let a0 = state.config.ramp_ids.first().copied()?;
    if state.ramp_quota > 0 {
        if a0 > 1 {
            state
                .config
                .prepend(new_ramps(0, a0 - 1, 1)[0], new_threshold);
            state.ramp_quota -= 1;
            state.clear_active();
            return Some(true);
        }
        return Some(false);
    }
    if a0 < 2 {
        return Some(false);
    }
    state.clear_active();
    if let Some(&(pos, _, _)) = scores.last() {
        state.config.remove_at(pos);
    }
    state
        .config
        .prepend(new_ramps(0, a0 - 1, 1)[0], new_threshold);
    Some(true)
}
