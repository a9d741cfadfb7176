//! `check_signals_nlp` (spec §8): selective re-tuning, ×0.1 threshold decay on repeated
//! violations, and a ramp check every 100 batches driven by positive/negative counters.

use crate::sim::controller::Controller;
use crate::sim::error::SimError;
use crate::sim::family::{
    NLP_NEGATIVE_THRESHOLD, NLP_POSITIVE_THRESHOLD, NLP_POSITIVE_THRESHOLD_RAISED,
    NLP_RETUNE_OFFSET_PERCENT, NLP_STABLE_CHECKS, NLP_VIOLATION_DECAY, REPEATED_VIOLATIONS,
};
use crate::sim::latency::BatchSize;
use crate::sim::pyfmt::{py_float, py_int_list};
use std::collections::BTreeMap;

/// `x < y` in Python's list ordering.
fn lexless(x: &[usize], y: &[usize]) -> bool {
    x < y
}

/// Runs after batch `i` (served at rounded size `bs`).
pub(crate) fn check_signals(
    ctl: &mut Controller<'_>,
    i: usize,
    bs: BatchSize,
) -> Result<(), SimError> {
    let floor = ctl.floor;
    let interval = ctl.interval;
    let retune_at = NLP_RETUNE_OFFSET_PERCENT * interval / 100;
    // Part A: tuning.
    let scheduled = ctl.after_ramp_adjustment && i % interval == retune_at;
    if ctl.last_batch_violated || scheduled || i == 1 {
        let mut fixed = BTreeMap::new();
        if !scheduled {
            for (&a, &t) in ctl.config.ramp_ids.iter().zip(&ctl.config.thresholds) {
                match ctl.curr_ramp_acc.get(&a) {
                    Some(&acc) if acc > floor => {
                        fixed.insert(a, t);
                    }
                    Some(_) => {}
                    None => {
                        fixed.insert(a, t);
                    }
                }
            }
        }
        ctl.config.thresholds = ctl.tune(bs, &fixed)?.thresholds;
        ctl.after_ramp_adjustment = false;
    }
    // Part B: violation decay.
    if ctl.violation_counter >= REPEATED_VIOLATIONS {
        for j in 0..ctl.config.len() {
            let a = ctl.config.ramp_ids[j];
            if ctl.curr_ramp_acc.get(&a).is_some_and(|&acc| acc < floor) {
                ctl.config.thresholds[j] *= NLP_VIOLATION_DECAY;
            }
        }
    }
    // Part C: ramp check.
    if !i.is_multiple_of(interval) {
        return Ok(());
    }
    ctl.after_ramp_adjustment = true;
    ctl.violation_counter = 0;
    let mut negatives: Vec<usize> = Vec::new();
    let mut negative_idxs: Vec<usize> = Vec::new();
    let mut positives = 0.0f64;
    for (j, &r) in ctl.config.ramp_ids.iter().enumerate() {
        let u = ctl.history.utilities(r);
        let pos = u.iter().filter(|&&x| x >= 0.0).count() as f64;
        let neg = u.iter().filter(|&&x| x < 0.0).count() as f64;
        let len = u.len() as f64;
        if neg / len > NLP_NEGATIVE_THRESHOLD {
            negatives.push(r);
            negative_idxs.push(j);
        }
        if pos / len > ctl.positive_threshold {
            positives += 1.0;
        }
        ctl.log.push(format!(
            "ramp {r} positive counter {} negative counter {}",
            py_float(pos),
            py_float(neg)
        ));
    }
    let scores = ctl.ramp_scores();
    let history_line = |ctl: &Controller<'_>| {
        let prev = &ctl.ramp_history[ctl.ramp_history.len() - 2];
        format!(
            "self._ramp_history {} self._ramp_ids[0] {}",
            prev.first().map_or(String::new(), usize::to_string),
            ctl.config
                .ramp_ids
                .first()
                .map_or(String::new(), usize::to_string)
        )
    };
    if ctl.ramp_history.len() >= NLP_STABLE_CHECKS {
        ctl.log.push(history_line(ctl));
        let h = &ctl.ramp_history;
        let last = &h[h.len() - 1];
        if h[h.len() - NLP_STABLE_CHECKS..].iter().all(|x| x == last) {
            ctl.positive_threshold = NLP_POSITIVE_THRESHOLD;
        }
    }
    // The special cases assign the int 1, which Python prints without ".0".
    let mut positives_text = py_float(positives);
    if negatives.is_empty() && positives == 0.0 && ctl.config.len() == 1 {
        positives = 1.0;
        positives_text = "1".into();
    }
    if negatives.len() == 1 && ctl.config.len() == 1 && negatives[0] == ctl.latest {
        // The original empties `negative_ramps` but not `negative_ramp_idxs`: the log line
        // then reads `negative ramp: [] negative ramp idxs: [0]` (spec §8).
        negatives.clear();
        positives = 1.0;
        positives_text = "1".into();
    }
    ctl.log.push(format!(
        "negative ramp: {} negative ramp idxs: {}, num_positive_ramps {} positive threshold {}, negative threshold {} self._ramp_quota {}",
        py_int_list(&negatives),
        py_int_list(&negative_idxs),
        positives_text,
        py_float(ctl.positive_threshold),
        py_float(NLP_NEGATIVE_THRESHOLD),
        ctl.ramp_quota
    ));
    let new_threshold = ctl.family.new_ramp_threshold();
    if !negatives.is_empty() {
        if ctl.ramp_history.len() > 1 {
            ctl.log.push(history_line(ctl));
            if lexless(
                &ctl.config.ramp_ids,
                &ctl.ramp_history[ctl.ramp_history.len() - 2],
            ) {
                ctl.positive_threshold = NLP_POSITIVE_THRESHOLD_RAISED;
            }
        }
        let tuned = ctl.tune(bs, &BTreeMap::new())?;
        if tuned.li - ctl.curr_li > ctl.family.retune_adoption_gap() {
            ctl.config.thresholds = tuned.thresholds;
        } else {
            super::handle_negatives(ctl, &negatives, new_threshold, false);
        }
        return Ok(());
    }
    if positives < 1.0 {
        return Ok(());
    }
    if ctl.ramp_history.len() > 1 {
        ctl.log.push(history_line(ctl));
        if lexless(
            &ctl.ramp_history[ctl.ramp_history.len() - 2],
            &ctl.config.ramp_ids,
        ) {
            ctl.positive_threshold = NLP_POSITIVE_THRESHOLD_RAISED;
        }
    }
    super::move_or_add_earlier(ctl, &scores, new_threshold);
    Ok(())
}
