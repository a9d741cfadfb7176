//! `digits-cnn`: a small CNN for 8x8 grayscale digits (scikit-learn's digits data), with a ramp
//! site after each of its three conv stages and 10 classes.
//!
//! It is not a model of the paper: it exists so that the whole pipeline (backbone, ramp
//! training, inference, profiling, the simulator) runs end to end on CPU in seconds with a real
//! dataset and no pretrained weights (`ee-backend train-backbone` trains it). Use it, or a model
//! like it, as a tool for small experiments.
//!
//! ```text
//! input [B, 1, 8, 8]
//! segment 0: conv0 3x3 1->16, relu, conv0b 3x3 16->16, relu
//!                                                     site 0: [B, 16, 8, 8]
//! segment 1: max-pool 2, conv1 3x3 16->32, relu       site 1: [B, 32, 4, 4]
//! segment 2: max-pool 2, conv2 3x3 32->64, relu       site 2: [B, 64, 2, 2]
//! finish:    flatten, fc 256->10
//! ```
//!
//! Stage 0 has two convolutions: the ramp there reads the global average of the maps, and one
//! convolution of an 8x8 digit averages out to little more than the amount of ink.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::max_pool2d;
use burn::tensor::{Distribution, Tensor};

use super::{Activation, Family, ModelInput, StagedModel};
use crate::data::ImageSpec;

/// The model's name.
pub const NAME: &str = "digits-cnn";
/// Its input: one 8x8 grayscale plane.
pub const INPUT: ImageSpec = ImageSpec {
    channels: 1,
    height: 8,
    width: 8,
};
/// Its classes (the digits 0-9).
pub const CLASSES: usize = 10;
const WIDTHS: [usize; 3] = [16, 32, 64];

/// The digits CNN.
#[derive(Module, Debug)]
pub struct DigitsCnn<B: Backend> {
    /// Stage 0 convolutions.
    pub conv0: Conv2d<B>,
    /// The second one.
    pub conv0b: Conv2d<B>,
    /// Stage 1 convolution.
    pub conv1: Conv2d<B>,
    /// Stage 2 convolution.
    pub conv2: Conv2d<B>,
    /// The classifier.
    pub fc: Linear<B>,
}

fn conv<B: Backend>(cin: usize, cout: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl<B: Backend> DigitsCnn<B> {
    /// A randomly initialised model (seed the backend first for a reproducible one).
    pub fn new(device: &B::Device) -> DigitsCnn<B> {
        DigitsCnn {
            conv0: conv(1, WIDTHS[0], device),
            conv0b: conv(WIDTHS[0], WIDTHS[0], device),
            conv1: conv(WIDTHS[0], WIDTHS[1], device),
            conv2: conv(WIDTHS[1], WIDTHS[2], device),
            fc: LinearConfig::new(WIDTHS[2] * 4, CLASSES).init(device),
        }
    }

    /// The whole forward pass, `[B, 1, 8, 8]` to logits `[B, 10]`.
    pub fn forward(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.stem(ModelInput::Images(images));
        for i in 0..self.num_sites() {
            x = self.segment(i, x);
        }
        self.finish(x)
    }
}

fn maps<B: Backend>(x: Activation<B>) -> Tensor<B, 4> {
    match x {
        Activation::Image(t) => t,
        // Never produced by this model; a zero-size map keeps the trait infallible.
        Activation::Tokens { hidden, .. } => {
            let [b, _, _] = hidden.dims();
            Tensor::zeros([b, 1, 0, 0], &hidden.device())
        }
    }
}

impl<B: Backend> StagedModel<B> for DigitsCnn<B> {
    fn name(&self) -> &str {
        NAME
    }

    fn family(&self) -> Family {
        Family::Cv
    }

    fn num_sites(&self) -> usize {
        3
    }

    fn num_classes(&self) -> usize {
        CLASSES
    }

    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        match input {
            ModelInput::Images(t) => Activation::Image(t),
            ModelInput::Tokens { ids, .. } => {
                let [b, _] = ids.dims();
                Activation::Image(Tensor::zeros([b, 1, 8, 8], &ids.device()))
            }
        }
    }

    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        let x = maps(x);
        let pool = |t: Tensor<B, 4>| max_pool2d(t, [2, 2], [2, 2], [0, 0], [1, 1], false);
        Activation::Image(match i {
            0 => relu(self.conv0b.forward(relu(self.conv0.forward(x)))),
            1 => relu(self.conv1.forward(pool(x))),
            _ => relu(self.conv2.forward(pool(x))),
        })
    }

    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        let x = maps(x);
        let [b, c, h, w] = x.dims();
        self.fc.forward(x.reshape([b, c * h * w]))
    }

    fn site_width(&self, i: usize) -> usize {
        WIDTHS[i.min(2)]
    }

    fn example_input(&self, batch: usize, _seq_len: usize, device: &B::Device) -> ModelInput<B> {
        ModelInput::Images(Tensor::random(
            [batch, 1, 8, 8],
            Distribution::Uniform(0.0, 1.0),
            device,
        ))
    }
}
