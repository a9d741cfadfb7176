//! Ramp heads, one per site, separate from the frozen backbone (as the artifact's `BranchPoint`s):
//! CV ramps are `AdaptiveAvgPool2d(1) -> Flatten -> Linear(C, classes)`; NLP ramps are DeeBERT's
//! highway, `BertPooler` (dense + tanh on token 0) then `Linear(H, classes)` (dropout is the
//! identity at inference).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::models::{Activation, Family, StagedModel};

/// One ramp head.
#[derive(Module, Debug)]
pub struct Ramp<B: Backend> {
    /// The highway's pooler (NLP only): dense `H -> H`, then tanh, on token 0.
    pub pooler: Option<Linear<B>>,
    /// The classifier `width -> classes`.
    pub classifier: Linear<B>,
}

impl<B: Backend> Ramp<B> {
    /// A randomly initialised head for an activation of `width` channels (CV) or hidden units
    /// (NLP).
    pub fn new(family: Family, width: usize, classes: usize, device: &B::Device) -> Ramp<B> {
        let pooler = match family {
            Family::Cv => None,
            Family::Nlp => Some(LinearConfig::new(width, width).init(device)),
        };
        Ramp {
            pooler,
            classifier: LinearConfig::new(width, classes).init(device),
        }
    }

    /// The features the classifier reads: the global average pool of a feature map `[B, C]`, or
    /// the pooled token 0 `[B, H]` (tanh of the dense layer; the raw token 0 when the head has no
    /// pooler).
    pub fn features(&self, x: &Activation<B>) -> Tensor<B, 2> {
        match x {
            Activation::Image(maps) => {
                let [b, c, h, w] = maps.dims();
                maps.clone()
                    .reshape([b, c, h * w])
                    .mean_dim(2)
                    .reshape([b, c])
            }
            Activation::Tokens { hidden, .. } => {
                let [b, _, h] = hidden.dims();
                let first = hidden.clone().slice([0..b, 0..1]).reshape([b, h]);
                match &self.pooler {
                    Some(dense) => tanh(dense.forward(first)),
                    None => first,
                }
            }
        }
    }

    /// The logits `[B, classes]` from already computed [`Ramp::features`].
    pub fn classify(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.classifier.forward(features)
    }

    /// The logits `[B, classes]` on the activation at the ramp's site.
    pub fn forward(&self, x: &Activation<B>) -> Tensor<B, 2> {
        self.classify(self.features(x))
    }
}

/// Every ramp of a model, ramp `i` at site `i`.
#[derive(Module, Debug)]
pub struct RampSet<B: Backend> {
    /// The heads, in site order.
    pub ramps: Vec<Ramp<B>>,
}

impl<B: Backend> RampSet<B> {
    /// Randomly initialised heads for every site of `model`.
    pub fn for_model<M: StagedModel<B>>(model: &M, device: &B::Device) -> RampSet<B> {
        let ramps = (0..model.num_sites())
            .map(|i| {
                Ramp::new(
                    model.family(),
                    model.site_width(i),
                    model.num_classes(),
                    device,
                )
            })
            .collect();
        RampSet { ramps }
    }
}
