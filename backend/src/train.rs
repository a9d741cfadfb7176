//! Training on CPU with autodiff, seeded so that two runs give identical weights.
//!
//! * [`train_ramps`]: the ramp heads of a frozen backbone, as the paper does: on the training
//!   share of the bootstrap part ([`crate::infer::split`]), with labels = the final model's
//!   answer (argmax of `finish`). Each site's head input is computed once ([`crate::ramps::site_input`]: the
//!   pooled feature map for CV, token 0's hidden state for NLP, whose highway pooler trains),
//!   then every head is trained with AdamW and cross-entropy; each head's agreement with the
//!   final model on the validation share is reported.
//! * [`train_backbone`]: a small CNN ([`crate::models::tiny`]) on real labels, for tests and
//!   small experiments that have no pretrained weights.

use std::ops::Range;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use crate::infer::{agreement, argmax_rows, values, walk, InferError, Samples, Split};
use crate::models::tiny::DigitsCnn;
use crate::models::{ModelInput, StagedModel};
use crate::ramps::{Ramp, RampSet};

/// Optimiser settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// Passes over the training samples.
    pub epochs: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// Samples per step.
    pub batch: usize,
    /// Seeds the backend's generator (initial weights) and the shuffling.
    pub seed: u64,
}

/// A small deterministic generator (SplitMix64) for shuffling.
#[derive(Clone, Debug)]
pub struct Shuffler(u64);

impl Shuffler {
    /// Seeded.
    pub fn new(seed: u64) -> Shuffler {
        Shuffler(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

fn int_tensor<B: Backend>(v: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let data: Vec<i64> = v.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(data, [v.len()]), device)
}

/// What [`train_ramps`] reports for one ramp.
#[derive(Clone, Debug, PartialEq)]
pub struct RampReport {
    /// The site.
    pub site: usize,
    /// Agreement with the final model on the training samples.
    pub train_agreement: f64,
    /// Agreement with the final model on the validation samples.
    pub validation_agreement: f64,
}

/// The head inputs at every site and the final model's answers for samples `range`.
pub struct Cached<B: Backend> {
    /// `inputs[site]`: `[n, width]`.
    pub inputs: Vec<Tensor<B, 2>>,
    /// The final model's answer per sample.
    pub answers: Vec<usize>,
}

/// Runs the frozen backbone over `range` once, keeping each site's [`crate::ramps::site_input`].
pub fn cache_sites<B: Backend, M: StagedModel<B>>(
    model: &M,
    samples: &Samples,
    range: Range<usize>,
    batch: usize,
    device: &B::Device,
) -> Result<Cached<B>, InferError> {
    let sites = model.num_sites();
    let mut parts: Vec<Vec<Tensor<B, 2>>> = vec![Vec::new(); sites];
    let mut answers = Vec::with_capacity(range.len());
    let mut start = range.start;
    while start < range.end {
        let end = (start + batch.max(1)).min(range.end);
        let fin = walk(model, samples.batch::<B>(start..end, device), |i, x| {
            parts[i].push(crate::ramps::site_input(x, model.ramp_token()));
            Ok(())
        })?;
        answers.extend(argmax_rows(&values(fin)?, model.num_classes()));
        start = end;
    }
    Ok(Cached {
        inputs: parts.into_iter().map(|p| Tensor::cat(p, 0)).collect(),
        answers,
    })
}

fn fit_head<AD: AutodiffBackend>(
    mut ramp: Ramp<AD>,
    x: &Tensor<AD::InnerBackend, 2>,
    y: &[usize],
    opts: &TrainOptions,
    shuffler: &mut Shuffler,
    device: &AD::Device,
    tick: &mut dyn FnMut(),
) -> Ramp<AD::InnerBackend> {
    let loss_fn = CrossEntropyLossConfig::new().init::<AD>(device);
    let mut optim = AdamWConfig::new().init::<AD, Ramp<AD>>();
    let mut order: Vec<usize> = (0..y.len()).collect();
    for _ in 0..opts.epochs {
        shuffler.shuffle(&mut order);
        for chunk in order.chunks(opts.batch.max(1)) {
            let idx = int_tensor::<AD::InnerBackend>(chunk, device);
            let xb = Tensor::<AD, 2>::from_inner(x.clone().select(0, idx));
            let labels: Vec<usize> = chunk.iter().map(|&i| y[i]).collect();
            let yb = int_tensor::<AD>(&labels, device);
            let loss = loss_fn.forward(ramp.forward_input(xb), yb);
            let grads = GradientsParams::from_grads(loss.backward(), &ramp);
            ramp = optim.step(opts.lr, ramp, grads);
        }
        tick();
    }
    ramp.valid()
}

/// Trains one head per site of the frozen `model` (see the module doc). `tick` is called once
/// per head and epoch (`sites * epochs` in all).
pub fn train_ramps<AD: AutodiffBackend, M: StagedModel<AD::InnerBackend>>(
    model: &M,
    samples: &Samples,
    split: &Split,
    opts: &TrainOptions,
    device: &AD::Device,
    mut tick: impl FnMut(),
) -> Result<(RampSet<AD::InnerBackend>, Vec<RampReport>), InferError> {
    let inner = device;
    let train = cache_sites(model, samples, split.train.clone(), opts.batch, inner)?;
    let val = cache_sites(model, samples, split.validation.clone(), opts.batch, inner)?;
    AD::seed(device, opts.seed);
    let mut shuffler = Shuffler::new(opts.seed);
    let mut ramps = Vec::with_capacity(model.num_sites());
    let mut reports = Vec::with_capacity(model.num_sites());
    for site in 0..model.num_sites() {
        let init = Ramp::<AD>::new(
            model.family(),
            model.site_width(site),
            model.num_classes(),
            device,
        )
        .with_token(model.ramp_token());
        // burn initialises parameters lazily, on first use: a forward pass now fixes the order
        // in which they draw from the seeded generator.
        let _ = init.forward_input(Tensor::zeros([1, model.site_width(site)], device));
        let ramp = fit_head(
            init,
            &train.inputs[site],
            &train.answers,
            opts,
            &mut shuffler,
            device,
            &mut tick,
        );
        let guess = |x: &Tensor<AD::InnerBackend, 2>| -> Result<Vec<usize>, InferError> {
            Ok(argmax_rows(
                &values(ramp.forward_input(x.clone()))?,
                model.num_classes(),
            ))
        };
        reports.push(RampReport {
            site,
            train_agreement: agreement(&guess(&train.inputs[site])?, &train.answers),
            validation_agreement: agreement(&guess(&val.inputs[site])?, &val.answers),
        });
        ramps.push(ramp);
    }
    Ok((RampSet { ramps }, reports))
}

/// Trains the digits CNN on `labels` (one per sample of `samples`, images only) from a seeded
/// random start. `tick` is called once per step. Returns the model and its accuracy on the
/// training data.
pub fn train_backbone<AD: AutodiffBackend>(
    samples: &Samples,
    labels: &[usize],
    opts: &TrainOptions,
    device: &AD::Device,
    mut tick: impl FnMut(),
) -> Result<(DigitsCnn<AD::InnerBackend>, f64), InferError> {
    if samples.len() != labels.len() {
        return Err(InferError::Mismatch {
            problem: format!("{} samples but {} labels", samples.len(), labels.len()),
        });
    }
    let Samples::Images { pixels, spec } = samples else {
        return Err(InferError::Mismatch {
            problem: "the digits CNN reads images, not text".into(),
        });
    };
    AD::seed(device, opts.seed);
    let mut model = DigitsCnn::<AD>::new(device);
    // Lazily initialised parameters draw from the seeded generator in first-use order: fix it.
    let _ = model.forward(Tensor::zeros(
        [1, spec.channels, spec.height, spec.width],
        device,
    ));
    let loss_fn = CrossEntropyLossConfig::new().init::<AD>(device);
    let mut optim = AdamWConfig::new().init::<AD, DigitsCnn<AD>>();
    let mut shuffler = Shuffler::new(opts.seed);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    let per = spec.channels * spec.height * spec.width;
    for _ in 0..opts.epochs {
        shuffler.shuffle(&mut order);
        for chunk in order.chunks(opts.batch.max(1)) {
            let mut xs = Vec::with_capacity(chunk.len() * per);
            for &i in chunk {
                xs.extend_from_slice(&pixels[i * per..(i + 1) * per]);
            }
            let xb = Tensor::<AD, 4>::from_data(
                TensorData::new(xs, [chunk.len(), spec.channels, spec.height, spec.width]),
                device,
            );
            let ys: Vec<usize> = chunk.iter().map(|&i| labels[i]).collect();
            let loss = loss_fn.forward(model.forward(xb), int_tensor::<AD>(&ys, device));
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opts.lr, model, grads);
            tick();
        }
    }
    let model = model.valid();
    let inner = device;
    let mut answers = Vec::with_capacity(labels.len());
    let mut start = 0;
    while start < labels.len() {
        let end = (start + 256).min(labels.len());
        let ModelInput::Images(x) = samples.batch::<AD::InnerBackend>(start..end, inner) else {
            break;
        };
        answers.extend(argmax_rows(
            &values(model.forward(x))?,
            crate::models::tiny::CLASSES,
        ));
        start = end;
    }
    Ok((model, agreement(&answers, labels)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffler_is_seeded_and_permutes() {
        let mut a: Vec<usize> = (0..50).collect();
        let mut b = a.clone();
        Shuffler::new(7).shuffle(&mut a);
        Shuffler::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..50).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }
}
