//! Every model of the paper by its artifact name: [`build`] makes one, [`AnyModel`] drives any of
//! them through [`StagedModel`] by dispatch, and [`MODELS`] lists them (for `ee-backend models`
//! and for error messages).
//!
//! To add a model family: a variant in [`AnyModel`], its arms in the `dispatch!` uses, its names
//! in [`MODELS`] and an arm in [`build`] (the NLP models go beside the CV ones, marked below).

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::resnet::{ResNet, ResNetConfig};
use super::vgg::{Vgg, VggConfig};
use super::{Activation, Family, ModelInput, StagedModel};

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
        sites: 16,
        about: "VGG-11 (A, no batch norm), ramps at the ONNX cut vertices features.5..20",
    },
    ModelInfo {
        name: "vgg13",
        family: Family::Cv,
        sites: 20,
        about: "VGG-13 (B, no batch norm), ramps at the ONNX cut vertices features.5..24",
    },
    ModelInfo {
        name: "vgg16",
        family: Family::Cv,
        sites: 26,
        about: "VGG-16 (D, no batch norm), ramps at the ONNX cut vertices features.5..30",
    },
    // NLP models (distilbert-base, bert-base, bert-large, gpt2-medium) go here.
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
    // NLP models go here.
}

/// Builds the model the artifact calls `name` with `num_classes` outputs, randomly initialised
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
        // NLP models go here.
        _ => {
            return Err(ModelError::Unknown {
                name: name.to_string(),
                known: MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
            })
        }
    };
    Ok(model)
}

/// Calls `$body` with `$m` bound to the wrapped model.
macro_rules! dispatch {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            AnyModel::ResNet($m) => $body,
            AnyModel::Vgg($m) => $body,
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
}
