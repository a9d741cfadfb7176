//! A tiny seeded CNN (test-only) implementing `StagedModel`: a conv stem, three conv+ReLU
//! segments (three ramp sites), then global average pool + linear. Named `resnet-tiny` so the
//! profile pickles take the artifact's CV layout.

use backend::models::{Activation, Family, ModelInput, StagedModel};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

pub const SITES: usize = 3;
pub const CLASSES: usize = 5;
pub const SIDE: usize = 12;

#[derive(Module, Debug)]
pub struct TinyCnn<B: Backend> {
    stem: Conv2d<B>,
    blocks: Vec<Conv2d<B>>,
    fc: Linear<B>,
}

impl<B: Backend> TinyCnn<B> {
    pub fn new(device: &B::Device) -> TinyCnn<B> {
        let conv = |c_in, c_out| {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        TinyCnn {
            stem: conv(3, 4),
            blocks: vec![conv(4, 4), conv(4, 6), conv(6, 8)],
            fc: LinearConfig::new(8, CLASSES).init(device),
        }
    }
}

impl<B: Backend> StagedModel<B> for TinyCnn<B> {
    fn name(&self) -> &str {
        "resnet-tiny"
    }
    fn family(&self) -> Family {
        Family::Cv
    }
    fn num_sites(&self) -> usize {
        SITES
    }
    fn num_classes(&self) -> usize {
        CLASSES
    }
    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        match input {
            ModelInput::Images(x) => Activation::Image(relu(self.stem.forward(x))),
            ModelInput::Tokens { .. } => panic!("tiny CNN takes images"),
        }
    }
    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        match x {
            Activation::Image(x) => Activation::Image(relu(self.blocks[i].forward(x))),
            Activation::Tokens { .. } => panic!("tiny CNN takes images"),
        }
    }
    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        match x {
            Activation::Image(x) => {
                let [b, c, h, w] = x.dims();
                self.fc
                    .forward(x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]))
            }
            Activation::Tokens { .. } => panic!("tiny CNN takes images"),
        }
    }
    fn site_width(&self, i: usize) -> usize {
        [4, 6, 8][i]
    }
    fn example_input(&self, batch: usize, _seq_len: usize, device: &B::Device) -> ModelInput<B> {
        ModelInput::Images(Tensor::random(
            [batch, 3, SIDE, SIDE],
            Distribution::Normal(0.0, 1.0),
            device,
        ))
    }
}
