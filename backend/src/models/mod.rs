//! The paper's models as staged networks: a stem, one segment per ramp site (segment `i` ends at
//! site `i`), then the rest of the network and its head. The ramp heads are separate modules
//! ([`crate::ramps`]) that read the activation at their site; the backbone stays frozen. Every
//! command (profile, train-ramps, infer) drives models through [`StagedModel`] only.

pub mod bert;
pub mod gpt2;
pub mod hf;
pub mod nlp;
pub mod tiny;
pub mod transformer;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

pub mod registry;
pub mod resnet;
pub mod vgg;

pub use registry::{build, AnyModel, ModelError, ModelInfo, MODELS};

/// The model family (the simulator's own enum): decides the ramp head (CV: global average pool +
/// linear; NLP: the DeeBERT highway) and the artifact's naming rules.
pub use apparate::sim::Family;

/// A batch of inputs.
#[derive(Clone, Debug)]
pub enum ModelInput<B: Backend> {
    /// Images, `[batch, channels, height, width]`, already normalised.
    Images(Tensor<B, 4>),
    /// Token ids `[batch, seq]` and the attention mask `[batch, seq]` (1 = token, 0 = padding).
    Tokens {
        /// Token ids.
        ids: Tensor<B, 2, Int>,
        /// Attention mask.
        mask: Tensor<B, 2, Int>,
    },
}

/// What flows between segments.
#[derive(Clone, Debug)]
pub enum Activation<B: Backend> {
    /// Feature maps `[batch, channels, height, width]`.
    Image(Tensor<B, 4>),
    /// Hidden states `[batch, seq, hidden]` with the attention mask `[batch, seq]` (1 = token).
    Tokens {
        /// Hidden states.
        hidden: Tensor<B, 3>,
        /// Attention mask.
        mask: Tensor<B, 2, Int>,
    },
}

/// A network cut at its ramp sites.
///
/// Running `stem`, then `segment(0) .. segment(num_sites() - 1)`, then `finish` is exactly the
/// original model's forward pass. A ramp head at site `i` ([`crate::ramps::Ramp`]) reads the
/// activation that `segment(i)` returned, whose width (channels or hidden size) is
/// `site_width(i)`.
pub trait StagedModel<B: Backend> {
    /// The model's name as the artifact spells it (`resnet50`, `bert-base`, ...).
    fn name(&self) -> &str;
    /// CV or NLP.
    fn family(&self) -> Family;
    /// The number of ramp sites.
    fn num_sites(&self) -> usize;
    /// The number of output classes of the final head (and of every ramp).
    fn num_classes(&self) -> usize;
    /// Everything before the first segment.
    fn stem(&self, input: ModelInput<B>) -> Activation<B>;
    /// Segment `i`: from site `i - 1` (or the stem) to site `i`.
    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B>;
    /// After the last site: the rest of the network and its classifier, `[batch, classes]`.
    fn finish(&self, x: Activation<B>) -> Tensor<B, 2>;
    /// The width of the activation at site `i`: channels (CV) or hidden size (NLP).
    fn site_width(&self, i: usize) -> usize;
    /// A batch of `batch` random inputs of the model's input shape (images of its resolution, or
    /// `seq_len` tokens), for profiling.
    fn example_input(&self, batch: usize, seq_len: usize, device: &B::Device) -> ModelInput<B>;
    /// Which token the NLP ramps of this model read: token 0 (BERT, DistilBERT; the default) or
    /// the last real token (GPT-2). CV models ignore it.
    fn ramp_token(&self) -> crate::ramps::TokenPool {
        crate::ramps::TokenPool::First
    }
}

/// The images of a CV model's input.
///
/// # Panics
///
/// On token input: a CV model was driven with an NLP batch (a programming error).
pub(crate) fn images<B: Backend>(input: ModelInput<B>) -> Tensor<B, 4> {
    match input {
        ModelInput::Images(x) => x,
        ModelInput::Tokens { .. } => panic!("a CV model was given token ids instead of images"),
    }
}

/// The feature maps of a CV activation.
///
/// # Panics
///
/// On hidden states: a CV segment was given an NLP activation (a programming error).
pub(crate) fn maps<B: Backend>(x: Activation<B>) -> Tensor<B, 4> {
    match x {
        Activation::Image(x) => x,
        Activation::Tokens { .. } => panic!("a CV segment was given hidden states"),
    }
}
