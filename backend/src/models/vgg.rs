//! VGG-11/13/16 (configurations A, B, D; no batch norm: the artifact's `models/video/vgg.py`
//! `vgg{11,13,16}_earlyexit` call `make_layers(cfg[..])` with `batch_norm=False`) as
//! [`StagedModel`]s, with torchvision's module names (`features.N`, `classifier.N`).
//!
//! # Ramp sites: one after every convolution's ReLU (8 / 10 / 13)
//!
//! The artifact places VGG ramps with `summary_graph.py: get_exits_def`: it exports the model to
//! ONNX, builds the node graph, gives the first node path weight 1 and lets every node pass its
//! weight on split evenly over its out-edges (`get_bottleneck_nodes`); a cut vertex is a node of
//! path weight 1 and in-degree 1, skipping the first 5 and the last 7 nodes. Read literally on a
//! plain `Conv, Relu, MaxPool` chain, that rule would put a site on every `features` module from
//! index 5 on (16 / 20 / 26 sites). The data the artifact recorded says otherwise: its VGG-16
//! pickles (the simulator's golden scenario `cv-vgg16-oxford`, built to the artifact's shapes like
//! the ResNet and BERT ones, whose 8 / 16 / 12 / 6 ramps match their architectures exactly) hold
//! **13** ramps, one per convolution, and `apparate`'s embedded presets and profile writer use 8
//! / 10 / 13. With in-place ReLUs a convolution's output and its ReLU's are one tensor, and a
//! pool follows a ReLU, so the distinct exits are one per convolution block. We follow the
//! recorded data: site `i` is the output of the `i`-th convolution's ReLU (`features.k`, `k` the
//! ReLU's index), and `finish` runs what follows the last one (its max pool) and the classifier.
//!
//! | model | convolutions = sites | last site |
//! |---|---|---|
//! | vgg11 (A) | 8 | `features.19` |
//! | vgg13 (B) | 10 | `features.23` |
//! | vgg16 (D) | 13 | `features.29` |
//!
//! torchvision's VGG also has `avgpool = AdaptiveAvgPool2d((7, 7))` before the classifier (the
//! artifact's copy does not): at 224x224 input it is the identity, so both agree; it is kept so
//! that other input sizes behave as torchvision's.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::{Activation, Family, ModelInput, StagedModel};

/// One entry of a VGG configuration: a 3x3 convolution to that many channels (and its ReLU),
/// or a 2x2 max pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VggItem {
    /// `Conv2d(c_in, c, 3, padding=1)` then `ReLU`.
    Conv(usize),
    /// `MaxPool2d(2, 2)`.
    Pool,
}

/// A VGG's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VggConfig {
    /// The model's name (`vgg16`, ...).
    pub name: String,
    /// The `features` configuration (torchvision's `cfgs`).
    pub items: Vec<VggItem>,
    /// Classes of the last linear layer.
    pub num_classes: usize,
    /// Width of the two hidden linear layers (torchvision: 4096). Smaller values keep test
    /// models small (the first linear layer alone is 25088 x 4096 = 103 M parameters).
    pub hidden: usize,
    /// Input images are `input_size x input_size` (torchvision: 224).
    pub input_size: usize,
    /// The side of `avgpool`'s output (torchvision: 7).
    pub pool_size: usize,
}

const A: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
const B_: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
];
const D: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

fn items(cfg: &[usize]) -> Vec<VggItem> {
    cfg.iter()
        .map(|&c| {
            if c == 0 {
                VggItem::Pool
            } else {
                VggItem::Conv(c)
            }
        })
        .collect()
}

impl VggConfig {
    /// VGG-11 (configuration A).
    pub fn vgg11(num_classes: usize) -> VggConfig {
        VggConfig::standard("vgg11", A, num_classes)
    }

    /// VGG-13 (configuration B).
    pub fn vgg13(num_classes: usize) -> VggConfig {
        VggConfig::standard("vgg13", B_, num_classes)
    }

    /// VGG-16 (configuration D).
    pub fn vgg16(num_classes: usize) -> VggConfig {
        VggConfig::standard("vgg16", D, num_classes)
    }

    fn standard(name: &str, cfg: &[usize], num_classes: usize) -> VggConfig {
        VggConfig {
            name: name.to_string(),
            items: items(cfg),
            num_classes,
            hidden: 4096,
            input_size: 224,
            pool_size: 7,
        }
    }

    /// What each module of `features` is, in order: `(kind, output channels)`, kind one of
    /// `"conv"`, `"relu"`, `"pool"`.
    fn feature_modules(&self) -> Vec<(&'static str, usize)> {
        let mut out = Vec::new();
        let mut c = 3;
        for item in &self.items {
            match *item {
                VggItem::Conv(cout) => {
                    out.push(("conv", cout));
                    out.push(("relu", cout));
                    c = cout;
                }
                VggItem::Pool => out.push(("pool", c)),
            }
        }
        out
    }

    /// The `features` index of every ramp site: each convolution's ReLU.
    pub fn site_indices(&self) -> Vec<usize> {
        self.feature_modules()
            .iter()
            .enumerate()
            .filter(|(_, (kind, _))| *kind == "relu")
            .map(|(k, _)| k)
            .collect()
    }

    /// The number of ramp sites: one per convolution (see the module documentation).
    pub fn num_sites(&self) -> usize {
        self.site_indices().len()
    }

    /// The module name of every site, in order (`features.1`, `features.3`, ...).
    pub fn site_names(&self) -> Vec<String> {
        self.site_indices()
            .into_iter()
            .map(|k| format!("features.{k}"))
            .collect()
    }

    /// The activation shape `[channels, height, width]` at every site for a square input of
    /// `size` pixels, computed from the configuration alone.
    pub fn site_shapes(&self, size: usize) -> Vec<[usize; 3]> {
        let mut hw = size;
        let mut shapes = Vec::new();
        for (kind, c) in self.feature_modules() {
            if kind == "pool" {
                hw /= 2;
            }
            if kind == "relu" {
                shapes.push([c, hw, hw]);
            }
        }
        shapes
    }

    /// Channels at the end of `features`.
    fn last_channels(&self) -> usize {
        self.feature_modules().last().map_or(3, |m| m.1)
    }

    /// Builds the model (parameters are initialised lazily, on first use).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Vgg<B> {
        let mut features = Vec::new();
        let mut cin = 3;
        for item in &self.items {
            match *item {
                VggItem::Conv(cout) => {
                    features.push(VggLayer::Conv(
                        Conv2dConfig::new([cin, cout], [3, 3])
                            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                            .init(device),
                    ));
                    features.push(VggLayer::Relu(Relu::new()));
                    cin = cout;
                }
                VggItem::Pool => {
                    features.push(VggLayer::Pool(MaxPool2dConfig::new([2, 2]).init()));
                }
            }
        }
        let flat = self.last_channels() * self.pool_size * self.pool_size;
        let h = self.hidden;
        let classifier = vec![
            VggLayer::Linear(LinearConfig::new(flat, h).init(device)),
            VggLayer::Relu(Relu::new()),
            VggLayer::Dropout(DropoutConfig::new(0.5).init()),
            VggLayer::Linear(LinearConfig::new(h, h).init(device)),
            VggLayer::Relu(Relu::new()),
            VggLayer::Dropout(DropoutConfig::new(0.5).init()),
            VggLayer::Linear(LinearConfig::new(h, self.num_classes).init(device)),
        ];
        Vgg {
            features,
            avgpool: AdaptiveAvgPool2dConfig::new([self.pool_size, self.pool_size]).init(),
            classifier,
            config: self.clone(),
            sites: self.site_indices(),
        }
    }
}

/// One module of `features` or `classifier` (the store skips the variant names, so the paths
/// are torchvision's `features.N.weight`).
#[derive(Module, Debug)]
pub enum VggLayer<B: Backend> {
    /// 3x3 convolution, padding 1, with bias.
    Conv(Conv2d<B>),
    /// ReLU.
    Relu(Relu),
    /// 2x2 max pool, stride 2.
    Pool(MaxPool2d),
    /// Linear layer (classifier).
    Linear(Linear<B>),
    /// Dropout (classifier; the identity at inference).
    Dropout(Dropout),
}

impl<B: Backend> VggLayer<B> {
    fn forward4(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            VggLayer::Conv(c) => c.forward(x),
            VggLayer::Relu(r) => r.forward(x),
            VggLayer::Pool(p) => p.forward(x),
            VggLayer::Dropout(d) => d.forward(x),
            // Not in `features`.
            VggLayer::Linear(_) => x,
        }
    }

    fn forward2(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            VggLayer::Linear(l) => l.forward(x),
            VggLayer::Relu(r) => r.forward(x),
            VggLayer::Dropout(d) => d.forward(x),
            // Not in `classifier`.
            VggLayer::Conv(_) | VggLayer::Pool(_) => x,
        }
    }
}

/// A VGG.
#[derive(Module, Debug)]
pub struct Vgg<B: Backend> {
    /// Convolutions, ReLUs and max pools.
    pub features: Vec<VggLayer<B>>,
    /// Adaptive average pool to `pool_size x pool_size` (identity at 224x224).
    pub avgpool: AdaptiveAvgPool2d,
    /// Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear.
    pub classifier: Vec<VggLayer<B>>,
    /// The configuration it was built from.
    #[module(skip)]
    pub config: VggConfig,
    /// The `features` index of every ramp site ([`VggConfig::site_indices`]).
    #[module(skip)]
    pub sites: Vec<usize>,
}

impl<B: Backend> Vgg<B> {
    /// avgpool, flatten, classifier.
    pub fn head(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.avgpool.forward(x);
        let [b, c, h, w] = x.dims();
        let mut y = x.reshape([b, c * h * w]);
        for layer in &self.classifier {
            y = layer.forward2(y);
        }
        y
    }

    /// The plain (unstaged) forward pass, as torchvision's `VGG.forward`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = x;
        for layer in &self.features {
            x = layer.forward4(x);
        }
        self.head(x)
    }
}

impl<B: Backend> StagedModel<B> for Vgg<B> {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn family(&self) -> Family {
        Family::Cv
    }

    fn num_sites(&self) -> usize {
        self.config.num_sites()
    }

    fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        Activation::Image(super::images(input))
    }

    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        let sites = &self.sites;
        let end = match sites.get(i) {
            Some(&end) => end,
            None => panic!(
                "{}: no ramp site {i} (the model has {})",
                self.config.name,
                sites.len()
            ),
        };
        let start = if i == 0 { 0 } else { sites[i - 1] + 1 };
        let mut x = super::maps(x);
        for layer in &self.features[start..=end] {
            x = layer.forward4(x);
        }
        Activation::Image(x)
    }

    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        let mut x = super::maps(x);
        let rest = self.sites.last().map_or(0, |&last| last + 1);
        for layer in &self.features[rest..] {
            x = layer.forward4(x);
        }
        self.head(x)
    }

    fn site_width(&self, i: usize) -> usize {
        self.config
            .site_shapes(self.config.input_size)
            .get(i)
            .map_or(0, |s| s[0])
    }

    fn example_input(&self, batch: usize, _seq_len: usize, device: &B::Device) -> ModelInput<B> {
        let s = self.config.input_size;
        ModelInput::Images(Tensor::random(
            [batch, 3, s, s],
            Distribution::Normal(0.0, 1.0),
            device,
        ))
    }
}
