//! The signal policies run after every batch: `check_signals_cv` (§7) and
//! `check_signals_nlp` (§8), and the ramp moves they share ([`ramps`]).

pub mod cv;
pub mod nlp;
pub mod ramps;

use super::adaptation::{Adaptation, BatchSignals, RunContext};
use super::error::SimError;
use super::family::Family;

/// Runs the family's policy after a batch of the adaptive controller: `check_signals_cv`
/// or `check_signals_nlp`.
pub(crate) fn check_signals(
    state: &mut Adaptation,
    run: &RunContext<'_>,
    batch: &BatchSignals<'_>,
) -> Result<(), SimError> {
    match run.family {
        Family::Cv => cv::check_signals(state, run, batch),
        Family::Nlp => nlp::check_signals(state, run, batch),
    }
}
