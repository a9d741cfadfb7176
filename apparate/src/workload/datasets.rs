//! Dataset presets: a latent per-sample *difficulty* stream, and how confident ramps are.
//!
//! Videos (8 traffic cameras): frames come in scenes (geometric lengths); each scene has its
//! own base difficulty and its own confidence *miscalibration* (lighting, weather: ramps turn
//! over- or under-confident for a while); within a scene difficulty follows an AR(1) process
//! (neighbouring frames look alike); a slow sinusoidal drift moves the whole stream (day to
//! night); rare spikes model occlusions. Scene changes and drift are what force Apparate to
//! re-tune thresholds and move ramps.
//!
//! Reviews (Amazon, IMDB): samples are independent, with a slow drift of the mean difficulty
//! and milder miscalibration episodes.
//!
//! Difficulty is on the scale of ramp margins (see `responses`): around 0 a mid-depth ramp is
//! unsure; below 0 samples are easy.

use super::models::hash_unit;
use crate::sim::Family;
use crate::traces::rng::det_math;
use crate::traces::rng::xoshiro::Xoshiro256StarStar;

/// One dataset's preset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DatasetPreset {
    /// Dataset name.
    pub name: &'static str,
    /// CV (video) or NLP (reviews).
    pub family: Family,
    /// Mean difficulty.
    pub mean: f64,
    /// Standard deviation of scene base difficulty (videos) or of sample difficulty (reviews).
    pub spread: f64,
    /// Mean scene length in samples (videos; 0 = independent samples).
    pub scene_len: f64,
    /// AR(1) coefficient within a scene.
    pub rho: f64,
    /// Stationary standard deviation of the AR(1) part.
    pub ar_sd: f64,
    /// Amplitude of the slow drift of the mean difficulty.
    pub drift: f64,
    /// Drift period in samples.
    pub drift_period: f64,
    /// Standard deviation of a scene's confidence miscalibration (logit offset).
    pub calibration_sd: f64,
    /// Probability of a hard spike (occlusion, sarcasm) per sample.
    pub spike_rate: f64,
    /// Size of a spike (added difficulty).
    pub spike: f64,
    /// Probability that a ramp answers confidently and wrongly, per sample and ramp.
    pub confidently_wrong: f64,
    /// How much lower a wrong answer's confidence logit is than a right one's: a video ramp's
    /// wrong answers are often still confident (2.0); a sentiment head that gets a review wrong
    /// is mostly unsure (6.0).
    pub wrong_shift: f64,
}

const fn video(
    name: &'static str,
    mean: f64,
    spread: f64,
    scene_len: f64,
    drift: f64,
    calibration_sd: f64,
) -> DatasetPreset {
    DatasetPreset {
        name,
        family: Family::Cv,
        mean,
        spread,
        scene_len,
        rho: 0.97,
        ar_sd: 0.35,
        drift,
        drift_period: 40_000.0,
        calibration_sd,
        spike_rate: 0.002,
        spike: 2.0,
        confidently_wrong: 0.0004,
        wrong_shift: 2.0,
    }
}

const fn reviews(name: &'static str, mean: f64, spread: f64, drift: f64) -> DatasetPreset {
    DatasetPreset {
        name,
        family: Family::Nlp,
        mean,
        spread,
        scene_len: 3000.0,
        rho: 0.0,
        ar_sd: 0.0,
        drift,
        drift_period: 120_000.0,
        calibration_sd: 0.25,
        spike_rate: 0.004,
        spike: 1.5,
        confidently_wrong: 0.0002,
        wrong_shift: 6.0,
    }
}

/// The paper's ten datasets.
pub const DATASETS: [DatasetPreset; 10] = [
    video("auburn", -1.70, 0.40, 4000.0, 0.30, 0.30),
    video("hampton", -1.50, 0.45, 3000.0, 0.35, 0.35),
    video("oxford", -1.80, 0.35, 5000.0, 0.25, 0.30),
    video("calgary", -1.55, 0.45, 2500.0, 0.40, 0.40),
    video("coral", -1.90, 0.30, 6000.0, 0.20, 0.25),
    video("ohio", -1.40, 0.50, 2000.0, 0.45, 0.45),
    video("bellevue1", -1.65, 0.40, 3500.0, 0.30, 0.30),
    video("bellevue2", -1.55, 0.45, 3000.0, 0.35, 0.35),
    reviews("amazon_reviews", -0.95, 0.70, 0.25),
    reviews("imdb", -0.85, 0.75, 0.30),
];

/// The preset of `name`.
pub fn preset(name: &str) -> Option<&'static DatasetPreset> {
    DATASETS.iter().find(|d| d.name == name)
}

/// Per-sample difficulty and the confidence miscalibration in force for it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DifficultyStream {
    /// Latent difficulty of each sample.
    pub difficulty: Vec<f64>,
    /// Confidence logit offset of each sample's scene.
    pub calibration: Vec<f64>,
}

impl DatasetPreset {
    /// `n` samples of the difficulty process, starting `offset` samples into the drift cycle.
    pub fn stream(
        &self,
        n: usize,
        offset: usize,
        rng: &mut Xoshiro256StarStar,
    ) -> DifficultyStream {
        let mut difficulty = Vec::with_capacity(n);
        let mut calibration = Vec::with_capacity(n);
        let phase = hash_unit(self.name, 7);
        let mut scene_left = 0usize;
        let mut scene_base = 0.0;
        let mut scene_cal = 0.0;
        let mut ar = rng.standard_normal() * self.ar_sd;
        let innovation = self.ar_sd * (1.0 - self.rho * self.rho).max(0.0).sqrt();
        for i in 0..n {
            if scene_left == 0 {
                scene_left = if self.scene_len > 0.0 {
                    1 + rng.exponential(self.scene_len) as usize
                } else {
                    usize::MAX
                };
                scene_base = if self.family == Family::Cv {
                    rng.normal(0.0, self.spread)
                } else {
                    0.0
                };
                scene_cal = rng.normal(0.0, self.calibration_sd);
            }
            scene_left -= 1;
            let t = (i + offset) as f64 / self.drift_period + phase;
            let drift = self.drift * det_math::cos_turns(t);
            let own = if self.family == Family::Nlp {
                rng.normal(0.0, self.spread)
            } else {
                ar = self.rho * ar + innovation * rng.standard_normal();
                ar
            };
            let spike = if rng.uniform() < self.spike_rate {
                self.spike
            } else {
                0.0
            };
            difficulty.push(self.mean + drift + scene_base + own + spike);
            calibration.push(scene_cal);
        }
        DifficultyStream {
            difficulty,
            calibration,
        }
    }
}
