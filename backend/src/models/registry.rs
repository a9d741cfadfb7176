//! Every model of the paper by its artifact name: [`build`] makes one, [`AnyModel`] drives any of
//! them through [`StagedModel`] by dispatch, and [`MODELS`] lists them (for `ee-backend models`
//! and for error messages).
//!
//! To add a model family: a variant in [`AnyModel`], its arms in the `dispatch!` uses, its names
//! in [`MODELS`] and an arm in [`build`] (the NLP models go beside the CV ones, marked below).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use std::path::Path;

use super::hf::{HfError, LoadOptions};
use super::nlp::{build_nlp, NlpModel};
use super::resnet::{ResNet, ResNetConfig};
use super::tiny::{self, DigitsCnn};
use super::vgg::{Vgg, VggConfig};
use super::{Activation, Family, ModelInput, StagedModel};
use crate::ramps::{RampSet, TokenPool};
use crate::weights::{self, WeightsError};

/// One known model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// The artifact's name (`resnet50`, ...).
    pub name: &'static str,
    /// CV or NLP.
    pub family: Family,
    /// Its ramp sites.
    pub sites: usize,
    /// What it is, in a few words.
    pub about: &'static str,
}

/// Every model [`build`] knows, in the paper's order.
pub const MODELS: &[ModelInfo] = &[
    ModelInfo {
        name: "resnet18",
        family: Family::Cv,
        sites: 8,
        about: "torchvision ResNet-18, a ramp after every basic block",
    },
    ModelInfo {
        name: "resnet50",
        family: Family::Cv,
        sites: 16,
        about: "torchvision ResNet-50, a ramp after every bottleneck",
    },
    ModelInfo {
        name: "resnet101",
        family: Family::Cv,
        sites: 33,
        about: "torchvision ResNet-101, a ramp after every bottleneck",
    },
    ModelInfo {
        name: "vgg11",
        family: Family::Cv,
        sites: 8,
        about: "VGG-11 (A, no batch norm), a ramp after every convolution's ReLU",
    },
    ModelInfo {
        name: "vgg13",
        family: Family::Cv,
        sites: 10,
        about: "VGG-13 (B, no batch norm), a ramp after every convolution's ReLU",
    },
    ModelInfo {
        name: "vgg16",
        family: Family::Cv,
        sites: 13,
        about: "VGG-16 (D, no batch norm), a ramp after every convolution's ReLU",
    },
    ModelInfo {
        name: "distilbert-base",
        family: Family::Nlp,
        sites: 6,
        about: "Hugging Face DistilBERT (6 layers, H 768), a highway after every layer",
    },
    ModelInfo {
        name: "bert-base",
        family: Family::Nlp,
        sites: 12,
        about: "Hugging Face BERT-base (12 layers, H 768), a highway after every layer",
    },
    ModelInfo {
        name: "bert-large",
        family: Family::Nlp,
        sites: 24,
        about: "Hugging Face BERT-large (24 layers, H 1024), a highway after every layer",
    },
    ModelInfo {
        name: "gpt2-medium",
        family: Family::Nlp,
        sites: 24,
        about: "Hugging Face GPT-2 medium (24 blocks, H 1024), last-real-token heads (our choice)",
    },
    ModelInfo {
        name: "digits-cnn",
        family: Family::Cv,
        sites: 3,
        about: "a small CNN for 8x8 grey digits (tests, examples), a ramp after each of 3 stages",
    },
    ModelInfo {
        name: "bert-tiny",
        family: Family::Nlp,
        sites: 2,
        about: "BERT with 2 layers, H 32, vocabulary 100 (tests)",
    },
    ModelInfo {
        name: "distilbert-tiny",
        family: Family::Nlp,
        sites: 2,
        about: "DistilBERT with 2 layers, H 32, vocabulary 100 (tests)",
    },
    ModelInfo {
        name: "gpt2-tiny",
        family: Family::Nlp,
        sites: 2,
        about: "GPT-2 with 2 blocks, H 32, vocabulary 100 (tests)",
    },
];

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The name is not one of [`MODELS`].
    #[error("unknown model `{name}`: expected one of {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A model needs at least one class.
    #[error("model `{name}`: the number of classes must be at least 1, got {num_classes}")]
    NoClasses {
        /// The name asked for.
        name: String,
        /// The number given.
        num_classes: usize,
    },
}

/// Any model of the paper.
///
/// A `Module` itself, so [`crate::weights`] loads and saves it whole (the store skips the variant
/// name, so the tensor paths are the wrapped model's own: `conv1.weight`, `features.0.bias`).
// One model per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyModel<B: Backend> {
    /// ResNet-18/50/101 (or a custom [`ResNetConfig`]).
    ResNet(ResNet<B>),
    /// VGG-11/13/16 (or a custom [`VggConfig`]).
    Vgg(Vgg<B>),
    /// BERT, DistilBERT, GPT-2 (Hugging Face names).
    Nlp(NlpModel<B>),
    /// The small digits CNN.
    Digits(DigitsCnn<B>),
}

/// Weights that did not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A torchvision-named (or our own) checkpoint.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A Hugging Face checkpoint.
    #[error(transparent)]
    Hf(#[from] HfError),
}

impl<B: Backend> AnyModel<B> {
    /// The model with the weights of `path`: torchvision names (safetensors or a `torch.save`
    /// zip) for CV models, Hugging Face safetensors for NLP ones (a bare encoder loads too, the
    /// head then keeps its initial values). Every tensor is checked before any is applied.
    pub fn with_weights(self, path: &Path) -> Result<AnyModel<B>, LoadError> {
        Ok(match self {
            AnyModel::Nlp(mut m) => {
                let opts = LoadOptions {
                    allow_missing_head: true,
                };
                m.load_hf(path, opts)?;
                AnyModel::Nlp(m)
            }
            other => weights::load(other, path)?,
        })
    }

    /// Fresh ramp heads for every site, initialised as the artifact does (BERT's highway poolers
    /// copy the model's pooler).
    pub fn ramps(&self, device: &B::Device) -> RampSet<B> {
        match self {
            AnyModel::Nlp(m) => m.ramps(device),
            other => RampSet::for_model(other, device),
        }
    }
}

/// Builds the model the artifact calls `name` with `num_classes` outputs (`digits-cnn` always has
/// 10), randomly initialised
/// (parameters materialise lazily, on first use; load weights with [`crate::weights::load`]).
pub fn build<B: Backend>(
    name: &str,
    num_classes: usize,
    device: &B::Device,
) -> Result<AnyModel<B>, ModelError> {
    if num_classes == 0 {
        return Err(ModelError::NoClasses {
            name: name.to_string(),
            num_classes,
        });
    }
    let model = match name {
        "resnet18" => AnyModel::ResNet(ResNetConfig::resnet18(num_classes).init(device)),
        "resnet50" => AnyModel::ResNet(ResNetConfig::resnet50(num_classes).init(device)),
        "resnet101" => AnyModel::ResNet(ResNetConfig::resnet101(num_classes).init(device)),
        "vgg11" => AnyModel::Vgg(VggConfig::vgg11(num_classes).init(device)),
        "vgg13" => AnyModel::Vgg(VggConfig::vgg13(num_classes).init(device)),
        "vgg16" => AnyModel::Vgg(VggConfig::vgg16(num_classes).init(device)),
        tiny::NAME => AnyModel::Digits(DigitsCnn::new(device)),
        nlp if MODELS
            .iter()
            .any(|m| m.name == nlp && m.family == Family::Nlp) =>
        {
            match build_nlp(nlp, num_classes, device) {
                Ok(m) => AnyModel::Nlp(m),
                Err(_) => return Err(unknown(name)),
            }
        }
        _ => return Err(unknown(name)),
    };
    Ok(model)
}

/// What [`MODELS`] says of `name` (its family and sites), without building it.
pub fn info(name: &str) -> Result<&'static ModelInfo, ModelError> {
    MODELS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| unknown(name))
}

fn unknown(name: &str) -> ModelError {
    ModelError::Unknown {
        name: name.to_string(),
        known: MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
    }
}

/// Calls `$body` with `$m` bound to the wrapped model.
macro_rules! dispatch {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            AnyModel::ResNet($m) => $body,
            AnyModel::Vgg($m) => $body,
            AnyModel::Nlp($m) => $body,
            AnyModel::Digits($m) => $body,
        }
    };
}

impl<B: Backend> StagedModel<B> for AnyModel<B> {
    fn name(&self) -> &str {
        dispatch!(self, m => m.name())
    }

    fn family(&self) -> Family {
        dispatch!(self, m => m.family())
    }

    fn num_sites(&self) -> usize {
        dispatch!(self, m => m.num_sites())
    }

    fn num_classes(&self) -> usize {
        dispatch!(self, m => m.num_classes())
    }

    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        dispatch!(self, m => m.stem(input))
    }

    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        dispatch!(self, m => m.segment(i, x))
    }

    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        dispatch!(self, m => m.finish(x))
    }

    fn site_width(&self, i: usize) -> usize {
        dispatch!(self, m => m.site_width(i))
    }

    fn example_input(&self, batch: usize, seq_len: usize, device: &B::Device) -> ModelInput<B> {
        dispatch!(self, m => m.example_input(batch, seq_len, device))
    }

    fn ramp_token(&self) -> TokenPool {
        dispatch!(self, m => m.ramp_token())
    }
}
