//! torchvision's ResNets (18/50/101) as [`StagedModel`]s, with a ramp site after every residual
//! block, as the artifact's `models/video/resnet_earlyexit.py` (`get_exits_def_{18,50,101}`:
//! `layer{i}.{j}.relu2` for basic blocks, `layer{i}.{j}.relu3` for bottlenecks, i.e. the block's
//! output after the residual addition): 8, 16 and 33 sites.
//!
//! The module fields are named as torchvision's (`conv1`, `bn1`, `layer1.0.conv1`,
//! `layer2.0.downsample.0`, `fc`, ...), so a torchvision checkpoint loads through
//! [`crate::weights`] without remapping. `downsample` is a list of [`DownsampleLayer`]s (an
//! enum, whose variant names the store skips) to give torchvision's `downsample.0` (the 1x1
//! convolution) and `downsample.1` (its batch norm).
//!
//! Batch norms use their running statistics only on a backend without autodiff: on
//! [`crate::device::CpuTrain`] burn's `BatchNorm` normalises with (and updates) batch statistics,
//! so a frozen backbone must run on the inner backend (`model.valid()`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::{Activation, Family, ModelInput, StagedModel};

/// The residual block kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34), expansion 1.
    Basic,
    /// 1x1, 3x3 (strided), 1x1 convolutions (ResNet-50/101/152, torchvision's "v1.5"),
    /// expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// Output channels over `planes`.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// A ResNet's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNetConfig {
    /// The model's name (`resnet50`, ...).
    pub name: String,
    /// Basic blocks or bottlenecks.
    pub block: BlockKind,
    /// Blocks in `layer1` .. `layer4`.
    pub layers: [usize; 4],
    /// Classes of `fc`.
    pub num_classes: usize,
    /// Channels of the stem and of `layer1`'s planes (torchvision: 64); `layer{k}` has
    /// `base_width << (k - 1)` planes. Smaller values give tiny models for tests.
    pub base_width: usize,
    /// Input images are `input_size x input_size` (torchvision: 224).
    pub input_size: usize,
}

impl ResNetConfig {
    /// torchvision's ResNet-18.
    pub fn resnet18(num_classes: usize) -> ResNetConfig {
        ResNetConfig::standard("resnet18", BlockKind::Basic, [2, 2, 2, 2], num_classes)
    }

    /// torchvision's ResNet-50.
    pub fn resnet50(num_classes: usize) -> ResNetConfig {
        ResNetConfig::standard("resnet50", BlockKind::Bottleneck, [3, 4, 6, 3], num_classes)
    }

    /// torchvision's ResNet-101.
    pub fn resnet101(num_classes: usize) -> ResNetConfig {
        ResNetConfig::standard(
            "resnet101",
            BlockKind::Bottleneck,
            [3, 4, 23, 3],
            num_classes,
        )
    }

    fn standard(
        name: &str,
        block: BlockKind,
        layers: [usize; 4],
        num_classes: usize,
    ) -> ResNetConfig {
        ResNetConfig {
            name: name.to_string(),
            block,
            layers,
            num_classes,
            base_width: 64,
            input_size: 224,
        }
    }

    /// The number of ramp sites (one per residual block).
    pub fn num_sites(&self) -> usize {
        self.layers.iter().sum()
    }

    /// The artifact's name of every site, in order (`layer1.0` .. `layer4.2`).
    pub fn site_names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.num_sites());
        for (i, &n) in self.layers.iter().enumerate() {
            for j in 0..n {
                names.push(format!("layer{}.{j}", i + 1));
            }
        }
        names
    }

    /// The activation shape `[channels, height, width]` at every site for a square input of
    /// `size` pixels, computed from the configuration alone (no model is built).
    pub fn site_shapes(&self, size: usize) -> Vec<[usize; 3]> {
        // conv1 (7x7, stride 2, padding 3), then the max pool (3x3, stride 2, padding 1).
        let mut hw = conv_out(conv_out(size, 7, 2, 3), 3, 2, 1);
        let mut shapes = Vec::with_capacity(self.num_sites());
        for (i, &n) in self.layers.iter().enumerate() {
            let channels = (self.base_width << i) * self.block.expansion();
            if i > 0 {
                // The first block of layer2..4 strides by 2 (3x3 conv, padding 1).
                hw = conv_out(hw, 3, 2, 1);
            }
            shapes.extend(std::iter::repeat_n([channels, hw, hw], n));
        }
        shapes
    }

    /// Builds the model (parameters are initialised lazily, on first use).
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResNet<B> {
        let w = self.base_width;
        let conv1 = Conv2dConfig::new([3, w], [7, 7])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
            .with_bias(false)
            .init(device);
        let maxpool = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        let mut inplanes = w;
        let mut layers = Vec::with_capacity(4);
        for (i, &n) in self.layers.iter().enumerate() {
            let planes = w << i;
            let stride = if i == 0 { 1 } else { 2 };
            let mut blocks = Vec::with_capacity(n);
            for j in 0..n {
                let s = if j == 0 { stride } else { 1 };
                blocks.push(Block::new(self.block, inplanes, planes, s, device));
                inplanes = planes * self.block.expansion();
            }
            layers.push(blocks);
        }
        // Four layers are pushed above, so the conversion cannot fail.
        let [layer1, layer2, layer3, layer4]: [Vec<Block<B>>; 4] =
            layers.try_into().unwrap_or_default();
        ResNet {
            conv1,
            bn1: BatchNormConfig::new(w).init(device),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            fc: LinearConfig::new(inplanes, self.num_classes).init(device),
            config: self.clone(),
        }
    }
}

/// The output size of a convolution or pooling window.
fn conv_out(size: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    (size + 2 * padding - kernel) / stride + 1
}

/// One layer of a block's shortcut projection (torchvision's `downsample` `Sequential`).
#[derive(Module, Debug)]
pub enum DownsampleLayer<B: Backend> {
    /// `downsample.0`: 1x1 convolution, strided, no bias.
    Conv(Conv2d<B>),
    /// `downsample.1`: batch norm.
    Norm(BatchNorm<B>),
}

/// A residual block: basic (`conv3`/`bn3` absent) or bottleneck.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    /// First convolution (3x3 strided for basic blocks, 1x1 for bottlenecks).
    pub conv1: Conv2d<B>,
    /// Its batch norm.
    pub bn1: BatchNorm<B>,
    /// Second convolution (3x3; strided in bottlenecks).
    pub conv2: Conv2d<B>,
    /// Its batch norm.
    pub bn2: BatchNorm<B>,
    /// Third convolution (bottlenecks only: 1x1 expanding to `4 * planes`).
    pub conv3: Option<Conv2d<B>>,
    /// Its batch norm.
    pub bn3: Option<BatchNorm<B>>,
    /// The shortcut projection (empty when the shortcut is the identity).
    pub downsample: Vec<DownsampleLayer<B>>,
}

fn conv<B: Backend>(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    device: &B::Device,
) -> Conv2d<B> {
    let pad = kernel / 2;
    Conv2dConfig::new([cin, cout], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .init(device)
}

impl<B: Backend> Block<B> {
    fn new(
        kind: BlockKind,
        inplanes: usize,
        planes: usize,
        stride: usize,
        device: &B::Device,
    ) -> Block<B> {
        let out = planes * kind.expansion();
        let downsample = if stride != 1 || inplanes != out {
            vec![
                DownsampleLayer::Conv(conv(inplanes, out, 1, stride, device)),
                DownsampleLayer::Norm(BatchNormConfig::new(out).init(device)),
            ]
        } else {
            Vec::new()
        };
        match kind {
            BlockKind::Basic => Block {
                conv1: conv(inplanes, planes, 3, stride, device),
                bn1: BatchNormConfig::new(planes).init(device),
                conv2: conv(planes, planes, 3, 1, device),
                bn2: BatchNormConfig::new(planes).init(device),
                conv3: None,
                bn3: None,
                downsample,
            },
            BlockKind::Bottleneck => Block {
                conv1: conv(inplanes, planes, 1, 1, device),
                bn1: BatchNormConfig::new(planes).init(device),
                conv2: conv(planes, planes, 3, stride, device),
                bn2: BatchNormConfig::new(planes).init(device),
                conv3: Some(conv(planes, out, 1, 1, device)),
                bn3: Some(BatchNormConfig::new(out).init(device)),
                downsample,
            },
        }
    }

    /// The block's output (after the residual addition and its ReLU: the artifact's
    /// `relu2` / `relu3`).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut identity = x.clone();
        for layer in &self.downsample {
            identity = match layer {
                DownsampleLayer::Conv(c) => c.forward(identity),
                DownsampleLayer::Norm(n) => n.forward(identity),
            };
        }
        let mut y = relu(self.bn1.forward(self.conv1.forward(x)));
        y = self.bn2.forward(self.conv2.forward(y));
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            y = bn3.forward(conv3.forward(relu(y)));
        }
        relu(y + identity)
    }
}

/// A torchvision ResNet.
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// Stem convolution, 7x7 stride 2.
    pub conv1: Conv2d<B>,
    /// Its batch norm.
    pub bn1: BatchNorm<B>,
    /// 3x3 stride-2 max pool.
    pub maxpool: MaxPool2d,
    /// Stage 1 (stride 1).
    pub layer1: Vec<Block<B>>,
    /// Stage 2 (first block strides by 2).
    pub layer2: Vec<Block<B>>,
    /// Stage 3.
    pub layer3: Vec<Block<B>>,
    /// Stage 4.
    pub layer4: Vec<Block<B>>,
    /// The classifier after the global average pool.
    pub fc: Linear<B>,
    /// The configuration it was built from.
    #[module(skip)]
    pub config: ResNetConfig,
}

impl<B: Backend> ResNet<B> {
    /// The block at site `i` (blocks in order over `layer1` .. `layer4`).
    fn block(&self, i: usize) -> Option<&Block<B>> {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flat_map(|l| l.iter())
            .nth(i)
    }

    /// The stem on images: `conv1`, `bn1`, ReLU, max pool.
    pub fn stem_images(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.maxpool
            .forward(relu(self.bn1.forward(self.conv1.forward(x))))
    }

    /// Global average pool, flatten, `fc`.
    pub fn head(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let [b, c, h, w] = x.dims();
        let pooled = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        self.fc.forward(pooled)
    }

    /// The plain (unstaged) forward pass, as torchvision's `ResNet.forward`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.stem_images(x);
        for layer in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            for block in layer {
                x = block.forward(x);
            }
        }
        self.head(x)
    }
}

impl<B: Backend> StagedModel<B> for ResNet<B> {
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
        Activation::Image(self.stem_images(super::images(input)))
    }

    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        let x = super::maps(x);
        match self.block(i) {
            Some(block) => Activation::Image(block.forward(x)),
            None => panic!(
                "{}: no ramp site {i} (the model has {})",
                self.config.name,
                self.num_sites()
            ),
        }
    }

    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        self.head(super::maps(x))
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
