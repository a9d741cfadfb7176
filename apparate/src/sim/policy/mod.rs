//! The signal policies run after every batch: `check_signals_cv` (§7) and
//! `check_signals_nlp` (§8).

pub mod cv;
pub mod nlp;

use super::controller::Controller;
use super::numeric::new_ramps;

/// Shared "negative ramps" step of both policies after a re-tune was not adopted: either
/// collapse to the last negative ramp (when every active ramp, `latest` included, is
/// negative), or remove the negatives and add one ramp halfway between the last active ramp
/// and `latest`, unless the kept ramps already exit enough.
///
/// Returns what the CV policy assigns to `after_ramp_adjustment` (`None`: left unchanged).
pub(crate) fn handle_negatives(
    ctl: &mut Controller<'_>,
    negatives: &[usize],
    new_threshold: f64,
    cv: bool,
) -> Option<bool> {
    let avg_er = ctl.history.average_exit_rates();
    let &last_negative = negatives.last()?;
    let all_negative = negatives.len() == ctl.config.len();
    if negatives.contains(&ctl.latest) && all_negative {
        if ctl.config.len() > 1 {
            for &neg in &negatives[..negatives.len() - 1] {
                ctl.history.clear(neg);
                ctl.ramp_quota += 1;
            }
            let t = ctl.config.thresholds.last().copied().unwrap_or(0.0);
            ctl.config.ramp_ids = vec![last_negative];
            ctl.config.thresholds = vec![t];
            return cv.then_some(true);
        }
        return cv.then_some(false);
    }
    for &neg in negatives {
        ctl.history.clear(neg);
        ctl.ramp_quota += 1;
    }
    let last_active = ctl.config.ramp_ids.last().copied().unwrap_or(0);
    let left = last_negative.max(last_active) + 1;
    let right = ctl.latest;
    let mut kept_exit_rate = 0.0;
    for (j, &a) in ctl.config.ramp_ids.iter().enumerate() {
        if !negatives.contains(&a) {
            kept_exit_rate += avg_er.get(j).copied().unwrap_or(0.0);
        }
    }
    ctl.config.retain_ids(|a| !negatives.contains(&a));
    if kept_exit_rate > super::family::EXITS_ENOUGH || left > right {
        return cv.then_some(true);
    }
    let new = new_ramps(left, right, 1)[0];
    ctl.config.push(new, new_threshold);
    ctl.ramp_quota -= 1;
    ctl.clear_active();
    cv.then_some(true)
}

/// The "move earlier" / "add earlier" step when no ramp is negative: with quota left, add a
/// ramp halfway before the first one; without, drop the ramp with the highest mean utility and
/// add one halfway before the first. Returns whether a ramp changed (`None`: nothing to do).
pub(crate) fn move_or_add_earlier(
    ctl: &mut Controller<'_>,
    scores: &[(usize, usize, f64)],
    new_threshold: f64,
) -> Option<bool> {
    let a0 = ctl.config.ramp_ids.first().copied()?;
    if ctl.ramp_quota > 0 {
        if a0 > 1 {
            ctl.config
                .prepend(new_ramps(0, a0 - 1, 1)[0], new_threshold);
            ctl.ramp_quota -= 1;
            ctl.clear_active();
            return Some(true);
        }
        return Some(false);
    }
    if a0 < 2 {
        return Some(false);
    }
    ctl.clear_active();
    if let Some(&(pos, _, _)) = scores.last() {
        ctl.config.remove_at(pos);
    }
    ctl.config
        .prepend(new_ramps(0, a0 - 1, 1)[0], new_threshold);
    Some(true)
}
