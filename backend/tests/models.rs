//! The CV models: site counts and activation shapes of every full-size configuration, staged ==
//! plain forward, the registry.

use backend::device::Cpu;
use backend::models::resnet::{BlockKind, ResNetConfig};
use backend::models::vgg::{VggConfig, VggItem};
use backend::models::{build, Activation, ModelError, ModelInput, StagedModel, MODELS};
use backend::ramps::RampSet;
use burn::tensor::{Distribution, Tensor};

type Device = burn::tensor::Device<Cpu>;

fn images(batch: usize, size: usize) -> Tensor<Cpu, 4> {
    Tensor::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &Device::default(),
    )
}

fn values<const D: usize>(t: Tensor<Cpu, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs the staged path, returning every site's activation dims and the logits.
fn staged<M: StagedModel<Cpu>>(model: &M, x: Tensor<Cpu, 4>) -> (Vec<[usize; 4]>, Tensor<Cpu, 2>) {
    let mut act = model.stem(ModelInput::Images(x));
    let mut dims = Vec::new();
    for i in 0..model.num_sites() {
        act = model.segment(i, act);
        match &act {
            Activation::Image(t) => dims.push(t.dims()),
            Activation::Tokens { .. } => panic!("a CV model returned hidden states"),
        }
    }
    (dims, model.finish(act))
}

/// `[channels, side]` repeated `n` times, as `[channels, side, side]`.
fn rep(n: usize, c: usize, hw: usize) -> Vec<[usize; 3]> {
    vec![[c, hw, hw]; n]
}

/// torchvision's block outputs at 224x224 (independent of the crate's arithmetic).
fn torchvision_resnet_sites(layers: [usize; 4], expansion: usize) -> Vec<[usize; 3]> {
    let mut v = rep(layers[0], 64 * expansion, 56);
    v.extend(rep(layers[1], 128 * expansion, 28));
    v.extend(rep(layers[2], 256 * expansion, 14));
    v.extend(rep(layers[3], 512 * expansion, 7));
    v
}

#[test]
fn every_model_has_the_artifacts_site_count() {
    let device = Device::default();
    let expected = [
        ("resnet18", 8),
        ("resnet50", 16),
        ("resnet101", 33),
        ("vgg11", 8),
        ("vgg13", 10),
        ("vgg16", 13),
    ];
    for (name, sites) in expected {
        let info = MODELS.iter().find(|m| m.name == name).unwrap();
        assert_eq!(info.sites, sites, "{name} in MODELS");
        // Parameters are lazy: building a full-size model allocates nothing.
        let model = build::<Cpu>(name, 1000, &device).unwrap();
        assert_eq!(model.num_sites(), sites, "{name}");
        assert_eq!(model.name(), name);
        assert_eq!(model.num_classes(), 1000);
        assert_eq!(model.family(), backend::models::Family::Cv);
    }
    for info in MODELS {
        let model = build::<Cpu>(info.name, 2, &device).unwrap();
        assert_eq!(model.num_sites(), info.sites, "{}", info.name);
    }
}

#[test]
fn site_names_follow_the_artifact() {
    let r101 = ResNetConfig::resnet101(2).site_names();
    assert_eq!(r101.len(), 33);
    assert_eq!(r101[0], "layer1.0");
    assert_eq!(r101[3], "layer2.0");
    assert_eq!(r101[7], "layer3.0");
    assert_eq!(r101[29], "layer3.22");
    assert_eq!(r101[32], "layer4.2");
    let r18 = ResNetConfig::resnet18(2).site_names();
    assert_eq!(
        r18,
        [
            "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0",
            "layer4.1"
        ]
    );
    // One site per convolution, at its ReLU (torchvision's `features` indices).
    let v16 = VggConfig::vgg16(2).site_names();
    assert_eq!(
        v16,
        [1, 3, 6, 8, 11, 13, 15, 18, 20, 22, 25, 27, 29].map(|k| format!("features.{k}"))
    );
    let v11 = VggConfig::vgg11(2).site_names();
    assert_eq!(
        v11,
        [1, 4, 7, 9, 12, 14, 17, 19].map(|k| format!("features.{k}"))
    );
    assert_eq!(
        VggConfig::vgg13(2).site_names(),
        [1, 3, 6, 8, 11, 13, 16, 18, 21, 23].map(|k| format!("features.{k}"))
    );
}

#[test]
fn unknown_model_names_the_known_ones() {
    let err = build::<Cpu>("resnet34", 10, &Device::default()).unwrap_err();
    assert!(matches!(err, ModelError::Unknown { .. }));
    let msg = err.to_string();
    assert!(msg.contains("`resnet34`"), "{msg}");
    for info in MODELS {
        assert!(msg.contains(info.name), "{msg}");
    }
    let err = build::<Cpu>("vgg16", 0, &Device::default()).unwrap_err();
    assert!(matches!(err, ModelError::NoClasses { .. }), "{err}");
}

#[test]
fn full_size_resnets_have_torchvisions_shapes_at_every_site() {
    for (name, layers, expansion) in [
        ("resnet18", [2, 2, 2, 2], 1),
        ("resnet50", [3, 4, 6, 3], 4),
        ("resnet101", [3, 4, 23, 3], 4),
    ] {
        let model = build::<Cpu>(name, 1000, &Device::default()).unwrap();
        let want = torchvision_resnet_sites(layers, expansion);
        let cfg = match name {
            "resnet18" => ResNetConfig::resnet18(1000),
            "resnet50" => ResNetConfig::resnet50(1000),
            _ => ResNetConfig::resnet101(1000),
        };
        assert_eq!(cfg.site_shapes(224), want, "{name}: shapes from the config");
        for (i, w) in want.iter().enumerate() {
            assert_eq!(model.site_width(i), w[0], "{name} site {i} width");
        }
        let (dims, logits) = staged(&model, images(1, 224));
        let got: Vec<[usize; 3]> = dims
            .iter()
            .map(|d| {
                assert_eq!(d[0], 1);
                [d[1], d[2], d[3]]
            })
            .collect();
        assert_eq!(got, want, "{name}: shapes of a real forward pass");
        assert_eq!(logits.dims(), [1, 1000]);
    }
}

#[test]
fn full_size_vggs_have_the_right_shapes_at_every_site() {
    // Spot checks written from torchvision's layer list, independent of the crate's arithmetic.
    let v16 = VggConfig::vgg16(1000).site_shapes(224);
    assert_eq!(v16.len(), 13);
    assert_eq!(v16[0], [64, 224, 224]); // features.1: the first conv's ReLU
    assert_eq!(v16[2], [128, 112, 112]); // features.6: conv 64 -> 128 after the first pool
    assert_eq!(v16[4], [256, 56, 56]); // features.11: conv 128 -> 256
    assert_eq!(v16[7], [512, 28, 28]); // features.18: conv 256 -> 512
    assert_eq!(v16[12], [512, 14, 14]); // features.29: the last conv, before the last pool
    let v11 = VggConfig::vgg11(1000).site_shapes(224);
    assert_eq!(v11.len(), 8);
    assert_eq!(v11[0], [64, 224, 224]); // features.1
    assert_eq!(v11[1], [128, 112, 112]); // features.4: conv 64 -> 128 after the first pool
    assert_eq!(v11[7], [512, 14, 14]);
    let v13 = VggConfig::vgg13(1000).site_shapes(224);
    assert_eq!(v13.len(), 10);
    assert_eq!(v13[0], [64, 224, 224]);
    assert_eq!(v13[9], [512, 14, 14]);

    for (name, cfg) in [
        ("vgg11", VggConfig::vgg11(1000)),
        ("vgg13", VggConfig::vgg13(1000)),
        ("vgg16", VggConfig::vgg16(1000)),
    ] {
        let full = build::<Cpu>(name, 1000, &Device::default()).unwrap();
        let want = cfg.site_shapes(224);
        for (i, w) in want.iter().enumerate() {
            assert_eq!(full.site_width(i), w[0], "{name} site {i} width");
        }
    }

    // A real forward through VGG-16's full-size `features` (the classifier's hidden width is cut
    // from 4096 to 64 to keep the test's memory small: 25088 x 4096 floats are 411 MB).
    let cfg = VggConfig {
        hidden: 64,
        ..VggConfig::vgg16(1000)
    };
    let model = cfg.init::<Cpu>(&Device::default());
    let (dims, logits) = staged(&model, images(1, 224));
    let got: Vec<[usize; 3]> = dims.iter().map(|d| [d[1], d[2], d[3]]).collect();
    assert_eq!(got, v16);
    assert_eq!(logits.dims(), [1, 1000]);
}

fn tiny_resnet(block: BlockKind) -> ResNetConfig {
    ResNetConfig {
        name: "tiny-resnet".into(),
        block,
        layers: [1, 2, 1, 1],
        num_classes: 5,
        base_width: 4,
        input_size: 32,
    }
}

fn tiny_vgg() -> VggConfig {
    use VggItem::{Conv, Pool};
    VggConfig {
        name: "tiny-vgg".into(),
        items: vec![Conv(4), Pool, Conv(8), Conv(8), Pool, Conv(8), Pool],
        num_classes: 3,
        hidden: 16,
        input_size: 32,
        pool_size: 2,
    }
}

#[test]
fn staged_forward_equals_the_plain_forward() {
    let device = Device::default();
    for block in [BlockKind::Basic, BlockKind::Bottleneck] {
        let cfg = tiny_resnet(block);
        let model = cfg.init::<Cpu>(&device);
        let x = images(3, 32);
        let plain = values(model.forward(x.clone()));
        let (dims, logits) = staged(&model, x.clone());
        assert_eq!(logits.dims(), [3, 5]);
        let want: Vec<[usize; 4]> = cfg
            .site_shapes(32)
            .iter()
            .map(|s| [3, s[0], s[1], s[2]])
            .collect();
        assert_eq!(dims, want);
        let staged_logits = values(logits);
        assert!(max_abs_diff(&plain, &staged_logits) <= 1e-6, "{block:?}");
        // Deterministic: the same input twice gives the same logits.
        assert_eq!(values(model.forward(x)), plain);
        assert!(plain.iter().any(|v| *v != 0.0));
    }
    let cfg = tiny_vgg();
    let model = cfg.init::<Cpu>(&device);
    assert_eq!(model.num_sites(), 4); // one per convolution
    let x = images(2, 32);
    let plain = values(model.forward(x.clone()));
    let (dims, logits) = staged(&model, x);
    assert_eq!(
        dims.iter().map(|d| [d[1], d[2], d[3]]).collect::<Vec<_>>(),
        cfg.site_shapes(32)
    );
    assert!(max_abs_diff(&plain, &values(logits)) <= 1e-6);

    // Through the registry's dispatch, at full size.
    let model = build::<Cpu>("resnet18", 10, &device).unwrap();
    let x = images(1, 224);
    let (_, logits) = staged(&model, x.clone());
    let backend::models::AnyModel::ResNet(inner) = &model else {
        panic!("resnet18 is a ResNet");
    };
    assert!(max_abs_diff(&values(inner.forward(x)), &values(logits)) <= 1e-6);
}

#[test]
fn ramps_read_every_site() {
    let device = Device::default();
    let model = tiny_resnet(BlockKind::Bottleneck).init::<Cpu>(&device);
    let ramps = RampSet::for_model(&model, &device);
    assert_eq!(ramps.ramps.len(), model.num_sites());
    let mut act = model.stem(model.example_input(2, 0, &device));
    for (i, ramp) in ramps.ramps.iter().enumerate() {
        act = model.segment(i, act);
        assert_eq!(ramp.forward(&act).dims(), [2, 5], "site {i}");
    }
    assert_eq!(model.finish(act).dims(), [2, 5]);
}

#[test]
fn the_models_command_lists_every_model_with_its_sites() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ee-backend"))
        .arg("models")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for info in MODELS {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(info.name))
            .unwrap_or_else(|| panic!("no line for {} in\n{text}", info.name));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[2], info.sites.to_string(), "{line}");
    }
}
