//! `check_signals_nlp` (spec §8): selective re-tuning, ×0.1 threshold decay on repeated
//! violations, and a ramp check every 100 batches driven by positive/negative counters.

use crate::sim::adaptation::{Adaptation, BatchSignals, RunContext};
use crate::sim::error::SimError;
use crate::sim::family::{
    NLP_NEGATIVE_THRESHOLD, NLP_POSITIVE_THRESHOLD, NLP_POSITIVE_THRESHOLD_RAISED,
    NLP_RETUNE_OFFSET_PERCENT, NLP_STABLE_CHECKS, NLP_VIOLATION_DECAY, REPEATED_VIOLATIONS,
};
use crate::sim::pyfmt::{py_float, py_int_list};
use std::collections::BTreeMap;

/// `x < y` in Python's list ordering.
fn lexless(x: &[usize], y: &[usize]) -> bool {
    x < y
}

/// Runs after batch `batch.i` (served at rounded size `batch.bs`).
pub(crate) fn check_signals(
    state: &mut Adaptation,
    run: &RunContext<'_>,
    batch: &BatchSignals<'_>,
) -> Result<(), SimError> {
    let floor = run.floor;
    let interval = run.interval;
    let i = batch.i;
    let retune_at = NLP_RETUNE_OFFSET_PERCENT * interval / 100;
    // Part A: tuning.
    let scheduled = state.after_ramp_adjustment && i % interval == retune_at;
    if batch.violated || scheduled || i == 1 {
        let mut fixed = BTreeMap::new();
        if !scheduled {
            for (&a, &t) in state.config.ramp_ids.iter().zip(&state.config.thresholds) {
                match batch.ramp_acc.get(&a) {
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
        state.config.thresholds = state.tune(run, batch, &fixed)?.thresholds;
        state.after_ramp_adjustment = false;
    }
    // Part B: violation decay.
    if state.violation_counter >= REPEATED_VIOLATIONS {
        for j in 0..state.config.len() {
            let a = state.config.ramp_ids[j];
            if batch.ramp_acc.get(&a).is_some_and(|&acc| acc < floor) {
                state.config.thresholds[j] *= NLP_VIOLATION_DECAY;
            }
        }
    }
    // Part C: ramp check.
    if !i.is_multiple_of(interval) {
        return Ok(());
    }
    state.after_ramp_adjustment = true;
    state.violation_counter = 0;
    let mut negatives: Vec<usize> = Vec::new();
    let mut negative_idxs: Vec<usize> = Vec::new();
    let mut positives = 0.0f64;
    for (j, &r) in state.config.ramp_ids.iter().enumerate() {
        let u = state.history.utilities(r);
        let pos = u.iter().filter(|&&x| x >= 0.0).count() as f64;
        let neg = u.iter().filter(|&&x| x < 0.0).count() as f64;
        let len = u.len() as f64;
        if neg / len > NLP_NEGATIVE_THRESHOLD {
            negatives.push(r);
            negative_idxs.push(j);
        }
        if pos / len > state.positive_threshold {
            positives += 1.0;
        }
        state.log.push(format!(
            "ramp {r} positive counter {} negative counter {}",
            py_float(pos),
            py_float(neg)
        ));
    }
    let scores = state.ramp_scores();
    let history_line = |state: &Adaptation| {
        let prev = &state.ramp_history[state.ramp_history.len() - 2];
        format!(
            "self._ramp_history {} self._ramp_ids[0] {}",
            prev.first().map_or(String::new(), usize::to_string),
            state
                .config
                .ramp_ids
                .first()
                .map_or(String::new(), usize::to_string)
        )
    };
    if state.ramp_history.len() >= NLP_STABLE_CHECKS {
        state.log.push(history_line(state));
        let h = &state.ramp_history;
        let last = &h[h.len() - 1];
        if h[h.len() - NLP_STABLE_CHECKS..].iter().all(|x| x == last) {
            state.positive_threshold = NLP_POSITIVE_THRESHOLD;
        }
    }
    // The special cases assign the int 1, which Python prints without ".0".
    let mut positives_text = py_float(positives);
    if negatives.is_empty() && positives == 0.0 && state.config.len() == 1 {
        positives = 1.0;
        positives_text = "1".into();
    }
    if negatives.len() == 1 && state.config.len() == 1 && negatives[0] == run.latest {
        // The original empties `negative_ramps` but not `negative_ramp_idxs`: the log line
        // then reads `negative ramp: [] negative ramp idxs: [0]` (spec §8).
        negatives.clear();
        positives = 1.0;
        positives_text = "1".into();
    }
    state.log.push(format!(
        "negative ramp: {} negative ramp idxs: {}, num_positive_ramps {} positive threshold {}, negative threshold {} self._ramp_quota {}",
        py_int_list(&negatives),
        py_int_list(&negative_idxs),
        positives_text,
        py_float(state.positive_threshold),
        py_float(NLP_NEGATIVE_THRESHOLD),
        state.ramp_quota
    ));
    if !negatives.is_empty() {
        if state.ramp_history.len() > 1 {
            state.log.push(history_line(state));
            if lexless(
                &state.config.ramp_ids,
                &state.ramp_history[state.ramp_history.len() - 2],
            ) {
                state.positive_threshold = NLP_POSITIVE_THRESHOLD_RAISED;
            }
        }
        let tuned = state.tune(run, batch, &BTreeMap::new())?;
        if tuned.li - batch.li > run.family.retune_adoption_gap() {
            state.config.thresholds = tuned.thresholds;
        } else {
            super::ramps::handle_negatives(state, run, &negatives);
        }
        return Ok(());
    }
    if positives < 1.0 {
        return Ok(());
    }
    if state.ramp_history.len() > 1 {
        state.log.push(history_line(state));
        if lexless(
            &state.ramp_history[state.ramp_history.len() - 2],
            &state.config.ramp_ids,
        ) {
            state.positive_threshold = NLP_POSITIVE_THRESHOLD_RAISED;
        }
    }
    super::ramps::move_or_add_earlier(state, run, &scores);
    Ok(())
}
