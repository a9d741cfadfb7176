//! Ramp heads, one per site, separate from the frozen backbone (as the artifact's `BranchPoint`s):
//! CV ramps are `AdaptiveAvgPool2d(1) -> Flatten -> Linear(C, classes)`; NLP ramps are DeeBERT's
//! highway, `BertPooler` (dense + tanh on token 0) then `Linear(H, classes)` (dropout is the
//! identity at inference). Decoder models (GPT-2) have no token 0 summary: their highways read
//! the last real (non-padding) token instead ([`TokenPool::LastReal`], chosen by
//! [`StagedModel::ramp_token`]).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::models::{Activation, Family, StagedModel};

/// Which token an NLP ramp reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TokenPool {
    /// Token 0 (`[CLS]` for BERT and DistilBERT), as DeeBERT's highway.
    #[default]
    First,
    /// The last token whose attention mask is 1 (GPT-2: a causal model's summary of the whole
    /// sequence; the same position `GPT2ForSequenceClassification` classifies).
    LastReal,
}

/// The hidden state `[B, H]` of the last real token of every sample: the rightmost position whose
/// mask is 1 (either padding side works; position 0 when a row is all padding).
pub fn last_real_token<B: Backend>(
    hidden: &Tensor<B, 3>,
    mask: &Tensor<B, 2, burn::tensor::Int>,
) -> Tensor<B, 2> {
    let [b, s, h] = hidden.dims();
    let positions =
        Tensor::<B, 1, burn::tensor::Int>::arange(0..s as i64, &hidden.device()).reshape([1, s]);
    let last = (positions * mask.clone()).argmax(1); // [B, 1]
    let index = last.reshape([b, 1, 1]).expand([b, 1, h]);
    hidden.clone().gather(1, index).reshape([b, h])
}

/// One ramp head.
#[derive(Module, Debug)]
pub struct Ramp<B: Backend> {
    /// The highway's pooler (NLP only): dense `H -> H`, then tanh, on the token `token` picks.
    pub pooler: Option<Linear<B>>,
    /// The classifier `width -> classes`.
    pub classifier: Linear<B>,
    /// Which token an NLP head reads (not a parameter; CV heads ignore it).
    #[module(skip)]
    pub token: TokenPool,
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
            token: TokenPool::First,
        }
    }

    /// The same head reading `token` (NLP).
    pub fn with_token(mut self, token: TokenPool) -> Ramp<B> {
        self.token = token;
        self
    }

    /// The features the classifier reads: the global average pool of a feature map `[B, C]`, or
    /// the pooled token `[B, H]` (token 0, or the last real token for [`TokenPool::LastReal`];
    /// tanh of the dense layer; the raw token when the head has no pooler).
    pub fn features(&self, x: &Activation<B>) -> Tensor<B, 2> {
        self.pool(site_input(x, self.token))
    }

    /// The highway's pooler (tanh of the dense layer) on a [`site_input`]; the identity for
    /// heads without one (CV).
    pub fn pool(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.pooler {
            Some(dense) => tanh(dense.forward(input)),
            None => input,
        }
    }

    /// The logits `[B, classes]` from already computed [`Ramp::features`].
    pub fn classify(&self, features: Tensor<B, 2>) -> Tensor<B, 2> {
        self.classifier.forward(features)
    }

    /// The logits `[B, classes]` from an already computed [`site_input`] (training caches those):
    /// the same as [`Ramp::forward`] on the activation.
    pub fn forward_input(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        self.classify(self.pool(input))
    }

    /// The logits `[B, classes]` on the activation at the ramp's site.
    pub fn forward(&self, x: &Activation<B>) -> Tensor<B, 2> {
        self.classify(self.features(x))
    }
}

/// What a head reads of its site's activation before any parameter: the global average pool of a
/// feature map `[B, C]`, or one token's hidden state `[B, H]` (token 0, or the last real one).
/// Parameter-free, so ramp training caches it once per sample.
pub fn site_input<B: Backend>(x: &Activation<B>, token: TokenPool) -> Tensor<B, 2> {
    match x {
        Activation::Image(maps) => {
            let [b, c, h, w] = maps.dims();
            maps.clone()
                .reshape([b, c, h * w])
                .mean_dim(2)
                .reshape([b, c])
        }
        Activation::Tokens { hidden, mask } => {
            let [b, _, h] = hidden.dims();
            match token {
                TokenPool::First => hidden.clone().slice([0..b, 0..1]).reshape([b, h]),
                TokenPool::LastReal => last_real_token(hidden, mask),
            }
        }
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
                .with_token(model.ramp_token())
            })
            .collect();
        RampSet { ramps }
    }
}
