//! How a model's ramps respond to a sample: correctness (agreement with the final model) and
//! max-softmax confidence, from the sample's difficulty and the ramp's depth.
//!
//! A ramp at depth fraction `f` of a model with capability `κ` has margin
//! `m = κ·(3.2·f^e) − 1.3 − d` (`e` = 0.6 for CNNs, 1.8 for transformers) on a sample of difficulty `d`. It agrees with the final model
//! with probability `1 − ½·σ(−5m)` (a coin flip for hopeless samples, certain for easy ones);
//! one uniform draw per sample decides agreement at every depth, so a sample a ramp gets right
//! is also right at deeper ramps. Confidence is `0.5 + 0.5·σ(z)` with logit
//! `z = 1.6·m + c + ε` (`c`: the scene's miscalibration, `ε ~ N(0, 0.5)`), 2.0 lower when the
//! ramp is wrong; and with a small probability a ramp is wrong at confidence 0.97–1.0.

use super::datasets::{DatasetPreset, DifficultyStream};
use super::models::ModelPreset;
use crate::sim::RampData;
use crate::traces::rng::det_math;
use crate::traces::rng::xoshiro::Xoshiro256StarStar;

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + det_math::exp(-x))
}

/// Per-ramp confidences and correctness of `model` on the samples of `stream`.
pub fn respond(
    model: &ModelPreset,
    dataset: &DatasetPreset,
    stream: &DifficultyStream,
    rng: &mut Xoshiro256StarStar,
) -> RampData {
    let n = stream.difficulty.len();
    let r = model.sites;
    let reach: Vec<f64> = (0..r)
        .map(|k| {
            model.capability
                * 3.2
                * det_math::exp(0.6 * det_math::ln(model.site_fraction(k).max(1e-9)))
                - 1.3
        })
        .collect();
    let mut conf = vec![Vec::with_capacity(n); r];
    let mut acc = vec![Vec::with_capacity(n); r];
    for i in 0..n {
        let d = stream.difficulty[i];
        let cal = stream.calibration[i];
        let u = rng.uniform();
        for k in 0..r {
            let m = reach[k] - d;
            let p_right = 1.0 - 0.5 * sigmoid(-5.0 * m);
            let noise = 0.5 * rng.standard_normal();
            let (c, ok) = if rng.uniform() < dataset.confidently_wrong {
                (0.97 + 0.03 * rng.uniform(), false)
            } else {
                let ok = u < p_right;
                let z = 1.6 * m + cal + noise - if ok { 0.0 } else { 2.0 };
                (0.5 + 0.5 * sigmoid(z), ok)
            };
            conf[k].push(c);
            acc[k].push(ok);
        }
    }
    RampData { conf, acc }
}
