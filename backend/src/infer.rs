//! Inference: every ramp's confidence and agreement with the final model for every sample, as
//! the artifact's sample pickles (`controller.serve(store_entropy_pickle=True)`):
//!
//! * `conf = max softmax` of the ramp's logits (NLP: stored as `1 - (1 - max softmax)`, as the
//!   artifact's `pickle_format_convert` does);
//! * `acc = (ramp argmax == final argmax)`: acc means agreement with the final model.
//!
//! The dataset is split as the paper does ([`split`]): the first part (10 % by default) is the
//! bootstrap part, whose first share trains the ramps ([`crate::train`]) and whose rest
//! validates them; it is written as the bootstrap pickle, the rest as the simulation pickle.
//!
//! The bookkeeping (softmax to confidence, agreement, splitting) is plain functions over
//! `f32` logits, tested without burn.

use std::ops::Range;

use apparate::sim::{Family, RampData};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::data::ImageSpec;
use crate::models::{Activation, ModelInput, StagedModel};
use crate::ramps::RampSet;

/// The index of the largest value (the first of equal ones; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// The largest softmax probability of `logits` (computed in `f64`, shifted by the maximum).
pub fn max_softmax(logits: &[f32]) -> f64 {
    let Some(max) = logits.iter().copied().map(f64::from).reduce(f64::max) else {
        return 0.0;
    };
    let sum: f64 = logits.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    1.0 / sum
}

/// The confidence the pickles store for a maximum softmax probability `p`: `p` for CV,
/// `1 - (1 - p)` for NLP (the artifact's converter; not always bit-equal to `p`).
pub fn stored_confidence(p: f64, family: Family) -> f64 {
    match family {
        Family::Cv => p,
        Family::Nlp => 1.0 - (1.0 - p),
    }
}

/// The share of positions where `a` and `b` agree (0 for empty lists).
pub fn agreement(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n as f64
}

/// Row-wise argmax of `[n, classes]` logits stored flat.
pub fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    logits.chunks(classes.max(1)).map(argmax).collect()
}

/// How a dataset of `n` samples is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The bootstrap part (written as the bootstrap pickle): `train` then `validation`.
    pub bootstrap: Range<usize>,
    /// Trains the ramps.
    pub train: Range<usize>,
    /// Validates them.
    pub validation: Range<usize>,
    /// The rest: the served stream (the simulation pickle).
    pub simulation: Range<usize>,
}

/// A split that cannot be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SplitError {
    /// Too few samples for one training, one validation and two simulation samples.
    #[error("{n} samples are too few: at least 4 are needed (1 to train ramps, 1 to validate them, 2 to simulate)")]
    TooFew {
        /// The dataset size.
        n: usize,
    },
    /// A fraction outside (0, 1).
    #[error("{what} {value} is out of range; expected a number in (0, 1)")]
    BadFraction {
        /// Which one.
        what: &'static str,
        /// The value.
        value: f64,
    },
}

/// The paper's split: the first `bootstrap_fraction` of the samples (rounded up; 10 % in the
/// paper) is the bootstrap part; its first `train_share` (rounded; 1:9 train/validation = 0.1
/// in the paper) trains the ramps. Every part keeps at least one sample (the simulation two).
pub fn split(n: usize, bootstrap_fraction: f64, train_share: f64) -> Result<Split, SplitError> {
    for (what, value) in [
        ("bootstrap fraction", bootstrap_fraction),
        ("train share", train_share),
    ] {
        if !(value > 0.0 && value < 1.0) {
            return Err(SplitError::BadFraction { what, value });
        }
    }
    if n < 4 {
        return Err(SplitError::TooFew { n });
    }
    let boot = ((n as f64 * bootstrap_fraction).ceil() as usize).clamp(2, n - 2);
    let train = ((boot as f64 * train_share).round() as usize).clamp(1, boot - 1);
    Ok(Split {
        bootstrap: 0..boot,
        train: 0..train,
        validation: train..boot,
        simulation: boot..n,
    })
}

/// `RampData` of `range`: per ramp, the stored confidence of its logits and its agreement with
/// the final logits. `ramp_logits[r]` and `final_logits` are `[n, classes]` flat over the whole
/// dataset.
pub fn ramp_data(
    ramp_logits: &[Vec<f32>],
    final_logits: &[f32],
    classes: usize,
    family: Family,
    range: Range<usize>,
) -> RampData {
    let rows = |v: &[f32]| -> Vec<Vec<f32>> {
        v.chunks(classes.max(1))
            .skip(range.start)
            .take(range.len())
            .map(<[f32]>::to_vec)
            .collect()
    };
    let finals: Vec<usize> = rows(final_logits).iter().map(|r| argmax(r)).collect();
    let mut data = RampData {
        conf: Vec::with_capacity(ramp_logits.len()),
        acc: Vec::with_capacity(ramp_logits.len()),
    };
    for logits in ramp_logits {
        let rs = rows(logits);
        data.conf.push(
            rs.iter()
                .map(|r| stored_confidence(max_softmax(r), family))
                .collect(),
        );
        data.acc.push(
            rs.iter()
                .zip(&finals)
                .map(|(r, &f)| argmax(r) == f)
                .collect(),
        );
    }
    data
}

/// A dataset in memory, ready to be cut into batches.
#[derive(Clone, Debug)]
pub enum Samples {
    /// Normalised images, `[n][c][h][w]` flat.
    Images {
        /// The values.
        pixels: Vec<f32>,
        /// Their shape.
        spec: ImageSpec,
    },
    /// Token ids and attention masks, `[n][seq_len]` flat (from a [`crate::data::TextEncoder`]).
    Tokens {
        /// Token ids.
        ids: Vec<i64>,
        /// Attention mask (1 = token).
        mask: Vec<i64>,
        /// Tokens per sample.
        seq_len: usize,
    },
}

impl Samples {
    /// The number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::Images { pixels, spec } => {
                pixels.len() / (spec.channels * spec.height * spec.width).max(1)
            }
            Samples::Tokens { ids, seq_len, .. } => ids.len() / (*seq_len).max(1),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Samples `range` as a model input on `device`.
    pub fn batch<B: Backend>(&self, range: Range<usize>, device: &B::Device) -> ModelInput<B> {
        let n = range.len();
        match self {
            Samples::Images { pixels, spec } => {
                let per = spec.channels * spec.height * spec.width;
                let data = TensorData::new(
                    pixels[range.start * per..range.end * per].to_vec(),
                    [n, spec.channels, spec.height, spec.width],
                );
                ModelInput::Images(Tensor::from_data(data, device))
            }
            Samples::Tokens { ids, mask, seq_len } => {
                let s = *seq_len;
                let cut = |v: &[i64]| {
                    Tensor::<B, 2, Int>::from_data(
                        TensorData::new(v[range.start * s..range.end * s].to_vec(), [n, s]),
                        device,
                    )
                };
                ModelInput::Tokens {
                    ids: cut(ids),
                    mask: cut(mask),
                }
            }
        }
    }
}

/// A tensor's values.
pub fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, InferError> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| InferError::Tensor {
            problem: format!("{e:?}"),
        })
}

/// Runs `input` through `model`, calling `at_site(i, activation)` at every ramp site; returns
/// the final logits.
pub fn walk<B: Backend, M: StagedModel<B>>(
    model: &M,
    input: ModelInput<B>,
    mut at_site: impl FnMut(usize, &Activation<B>) -> Result<(), InferError>,
) -> Result<Tensor<B, 2>, InferError> {
    let mut x = model.stem(input);
    for i in 0..model.num_sites() {
        x = model.segment(i, x);
        at_site(i, &x)?;
    }
    Ok(model.finish(x))
}

/// Inference failed.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A tensor's values could not be read back.
    #[error("cannot read a tensor's values: {problem}")]
    Tensor {
        /// burn's message.
        problem: String,
    },
    /// The ramps do not fit the model.
    #[error("{problem}")]
    Mismatch {
        /// What does not fit.
        problem: String,
    },
}

/// Every ramp's logits and the final logits of every sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// `ramp_logits[r]`: `[n, classes]` flat.
    pub ramp_logits: Vec<Vec<f32>>,
    /// `[n, classes]` flat.
    pub final_logits: Vec<f32>,
    /// Classes per row.
    pub classes: usize,
}

/// One ramp per site of `model`, or an error saying how many of each.
pub fn check_ramps<B: Backend, M: StagedModel<B>>(
    model: &M,
    ramps: &RampSet<B>,
) -> Result<(), InferError> {
    if ramps.ramps.len() != model.num_sites() {
        return Err(InferError::Mismatch {
            problem: format!(
                "{} ramps for a model with {} ramp sites",
                ramps.ramps.len(),
                model.num_sites()
            ),
        });
    }
    Ok(())
}

/// Runs the whole dataset through `model` and every ramp of `ramps`, `batch` samples at a time;
/// `progress` is called with the number of samples done.
pub fn run<B: Backend, M: StagedModel<B>>(
    model: &M,
    ramps: &RampSet<B>,
    samples: &Samples,
    batch: usize,
    device: &B::Device,
    mut progress: impl FnMut(usize),
) -> Result<Outputs, InferError> {
    check_ramps(model, ramps)?;
    let n = samples.len();
    let mut out = Outputs {
        ramp_logits: vec![Vec::new(); model.num_sites()],
        final_logits: Vec::new(),
        classes: model.num_classes(),
    };
    let mut start = 0;
    while start < n {
        let end = (start + batch.max(1)).min(n);
        let input = samples.batch::<B>(start..end, device);
        let fin = walk(model, input, |i, x| {
            let logits = ramps.ramps[i].forward(x);
            out.ramp_logits[i].extend(values(logits)?);
            Ok(())
        })?;
        out.final_logits.extend(values(fin)?);
        progress(end - start);
        start = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_argmax() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
        assert!((max_softmax(&[0.0, 0.0]) - 0.5).abs() < 1e-12);
        let p = max_softmax(&[1000.0, 0.0, 0.0]);
        assert!(p > 0.999_999 && p <= 1.0);
        let e = (1.0f64).exp();
        assert!((max_softmax(&[1.0, 0.0]) - e / (e + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn nlp_confidence_is_one_minus_entropy_form() {
        let p = 0.1;
        assert_eq!(stored_confidence(p, Family::Cv), p);
        // 1 - (1 - 0.1) is 0.09999999999999998 in binary64, as in Python.
        assert_eq!(stored_confidence(p, Family::Nlp), 0.099_999_999_999_999_98);
        assert_ne!(stored_confidence(p, Family::Nlp), p);
    }

    #[test]
    fn split_follows_the_paper_and_keeps_every_part() {
        let s = split(1797, 0.1, 0.1).unwrap();
        assert_eq!(s.bootstrap, 0..180);
        assert_eq!(s.train, 0..18);
        assert_eq!(s.validation, 18..180);
        assert_eq!(s.simulation, 180..1797);
        let s = split(4, 0.1, 0.1).unwrap();
        assert_eq!((s.train, s.validation, s.simulation), (0..1, 1..2, 2..4));
        assert_eq!(split(3, 0.1, 0.1), Err(SplitError::TooFew { n: 3 }));
        assert!(matches!(
            split(10, 1.0, 0.1),
            Err(SplitError::BadFraction { .. })
        ));
    }

    #[test]
    fn ramp_data_marks_agreement_with_the_final_answer() {
        // 3 samples, 2 classes; final answers 0, 1, 1.
        let fin = [2.0, 0.0, 0.0, 1.0, 0.0, 3.0];
        let ramp = vec![0.0, 0.0, 5.0, 0.0, 0.0, 1.0];
        let d = ramp_data(&[ramp], &fin, 2, Family::Cv, 1..3);
        assert_eq!(d.acc, vec![vec![false, true]]);
        assert_eq!(d.conf[0].len(), 2);
        assert!((d.conf[0][0] - max_softmax(&[5.0, 0.0])).abs() < 1e-15);
        assert_eq!(agreement(&[1, 2, 3], &[1, 0, 3]), 2.0 / 3.0);
        assert_eq!(argmax_rows(&fin, 2), vec![0, 1, 1]);
    }
}
