//! How a model's ramps respond to a sample: correctness (agreement with the final model) and
//! max-softmax confidence, from the sample's difficulty and the ramp's depth.
//!
//! A ramp at depth fraction `f` of a model with capability `κ` has margin
//! `m = κ·(3.2·f^e) − 1.3 − d` (`e`: the model's depth exponent, 0.6 for CNNs, 2.0 for transformers) on a sample of difficulty `d`. It agrees with the final model
//! with probability `1 − ½·σ(−5m)` (a coin flip for hopeless samples, certain for easy ones);
//! one uniform draw per sample decides agreement at every depth, so a sample a ramp gets right
//! is also right at deeper ramps. Confidence is `0.5 + 0.5·σ(z)` with logit
//! `z = 1.6·m + c + ε` (`c`: the scene's miscalibration, `ε` bell-shaped noise of sd 0.5), lower
//! by the dataset's `wrong_shift` (videos 2, reviews 6) when the ramp is wrong; and with a small probability a ramp is wrong at confidence 0.97–1.0.

use super::datasets::{DatasetPreset, DifficultyStream};
use super::models::ModelPreset;
use crate::sim::RampData;
use crate::traces::rng::det_math;
use crate::traces::rng::xoshiro::Xoshiro256StarStar;

/// `e^x` from basic IEEE operations in a fixed order (no libm, no fused multiply-add), so
/// the same bits on every platform; about 1e-15 relative error, ample for generating data.
pub(crate) fn fast_exp(x: f64) -> f64 {
    if x > 700.0 {
        return f64::INFINITY;
    }
    if x < -700.0 {
        return 0.0;
    }
    // x = k·ln2 + r, |r| <= ln2/2; e^r by a degree-13 Taylor polynomial (Horner).
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let k = (x * std::f64::consts::LOG2_E).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut e = 1.0 / factorial(13);
    for i in (0..13).rev() {
        e = e * r + 1.0 / factorial(i);
    }
    // Scale by 2^k in two steps so that subnormal results stay exact enough.
    let k = k as i32;
    let half = k / 2;
    e * f64::from_bits(((1023 + half) as u64) << 52)
        * f64::from_bits(((1023 + k - half) as u64) << 52)
}

const fn factorial(n: u32) -> f64 {
    let mut f = 1.0;
    let mut i = 2;
    while i <= n {
        f *= i as f64;
        i += 1;
    }
    f
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + fast_exp(-x))
}

/// A bell-shaped noise of standard deviation `sd`: the centred sum of four uniforms
/// (Irwin–Hall), cheap and deterministic.
fn bell(rng: &mut Xoshiro256StarStar, sd: f64) -> f64 {
    let s = rng.uniform() + rng.uniform() + rng.uniform() + rng.uniform() - 2.0;
    s * sd * 1.732_050_807_568_877_2 // sqrt(12 / 4)
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
                * det_math::exp(
                    model.depth_exponent * det_math::ln(model.site_fraction(k).max(1e-9)),
                )
                - 1.3
        })
        .collect();
    let mut conf = vec![Vec::with_capacity(n); r];
    let mut acc = vec![Vec::with_capacity(n); r];
    for i in 0..n {
        let d = stream.difficulty[i];
        let cal = stream.calibration[i];
        // Agreement at depth k: u < 1 − ½·σ(−5m), i.e. σ(−5m) < w with w = 2(1 − u): always
        // when w >= 1, else when −5m < logit(w). One logarithm per sample.
        let u = rng.uniform();
        let w = 2.0 * (1.0 - u);
        let logit_w = if w >= 1.0 {
            f64::INFINITY
        } else {
            det_math::ln(w / (1.0 - w))
        };
        for k in 0..r {
            let m = reach[k] - d;
            let noise = bell(rng, 0.5);
            let (c, ok) = if rng.uniform() < dataset.confidently_wrong {
                (0.97 + 0.03 * rng.uniform(), false)
            } else {
                let ok = -5.0 * m < logit_w;
                let z = 1.6 * m + cal + noise - if ok { 0.0 } else { dataset.wrong_shift };
                (0.5 + 0.5 * sigmoid(z), ok)
            };
            conf[k].push(c);
            acc[k].push(ok);
        }
    }
    RampData { conf, acc }
}

#[cfg(test)]
mod tests {
    use super::fast_exp;

    #[test]
    fn fast_exp_is_accurate() {
        for k in -400..=400 {
            let x = k as f64 * 0.37;
            let want = x.exp();
            let got = fast_exp(x);
            assert!(((got - want) / want).abs() < 1e-13, "{x}: {got} vs {want}");
        }
    }
}
