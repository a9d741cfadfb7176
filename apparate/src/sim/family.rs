//! The two model families and the constants that differ between them (spec §6.0).

/// CV (`--dataset video`) or NLP (any other dataset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Image classification on video frames: `check_signals_cv`.
    Cv,
    /// Text classification: `check_signals_nlp`.
    Nlp,
}

impl Family {
    /// The artifact switches on `--dataset`: anything other than `video` is NLP.
    pub fn from_dataset(dataset: &str) -> Family {
        if dataset == "video" {
            Family::Cv
        } else {
            Family::Nlp
        }
    }

    /// `cv` or `nlp`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Cv => "cv",
            Family::Nlp => "nlp",
        }
    }

    /// `NUM_RAMP_BUDGET`: 3 (CV) / 2 (NLP), and 1 whenever the arch contains `resnet18` or `vgg`.
    pub fn ramp_budget(self, arch: &str) -> usize {
        if arch.contains("resnet18") || arch.contains("vgg") {
            1
        } else {
            match self {
                Family::Cv => 3,
                Family::Nlp => 2,
            }
        }
    }

    /// `RAMP_CHECK_INTERVAL`: batches between ramp checks.
    pub fn ramp_check_interval(self) -> usize {
        match self {
            Family::Cv => 30,
            Family::Nlp => 100,
        }
    }

    /// Gap (percentage points) a re-tune must beat the current batch's improvement by.
    pub fn retune_adoption_gap(self) -> f64 {
        match self {
            Family::Cv => 2.0,
            Family::Nlp => 5.0,
        }
    }

    /// Threshold given to a newly added ramp.
    pub fn new_ramp_threshold(self) -> f64 {
        match self {
            Family::Cv => 0.0,
            Family::Nlp => 0.01,
        }
    }
}

/// `ACC_LOSS_BUDGET_ACTUAL`: serving-time accuracy floor is `1 - 0.01`.
pub const ACC_LOSS_BUDGET_ACTUAL: f64 = 0.01;

/// The serving-time accuracy floor, `1 - budget` computed in f64; `None` is the artifact's
/// `ACC_LOSS_BUDGET_ACTUAL` (floor `1 - 0.01`).
pub fn accuracy_floor(budget: Option<f64>) -> f64 {
    1.0 - budget.unwrap_or(ACC_LOSS_BUDGET_ACTUAL)
}

/// Exit-rate share above which the kept ramps "already exit enough" (no ramp is added).
pub const EXITS_ENOUGH: f64 = 0.9;

/// Violating batches since the last ramp check from which both policies react to violations
/// (CV: thresholds of bad ramps to 0; NLP: threshold decay).
pub const REPEATED_VIOLATIONS: usize = 2;

/// NLP ramp check: a ramp is negative when more than this share of its utilities is negative.
pub const NLP_NEGATIVE_THRESHOLD: f64 = 0.6;

/// NLP ramp check: initial (and reset) value of the mutable positive threshold.
pub const NLP_POSITIVE_THRESHOLD: f64 = 0.6;

/// NLP ramp check: the positive threshold after a ramp moved (later with negatives, earlier
/// without).
pub const NLP_POSITIVE_THRESHOLD_RAISED: f64 = 1.0;

/// NLP ramp check: the positive threshold is reset when this many recorded configurations in a
/// row (the last entries of `ramp_history`) are equal.
pub const NLP_STABLE_CHECKS: usize = 5;

/// NLP: batch offset after a check at which a full re-tune happens if none did, in percent of
/// the check interval (40 of the artifact's 100).
pub const NLP_RETUNE_OFFSET_PERCENT: usize = 40;

/// NLP: threshold decay factor on repeated accuracy violations.
pub const NLP_VIOLATION_DECAY: f64 = 0.1;
