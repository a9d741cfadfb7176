//! Checkpoints: torchvision-named safetensors load with no remapping, save then load gives the
//! same outputs, and bad checkpoints are refused naming the file and the tensor.

use std::path::Path;

use backend::device::Cpu;
use backend::models::resnet::{BlockKind, ResNetConfig};
use backend::models::vgg::{VggConfig, VggItem};
use backend::models::{Activation, Family, StagedModel};
use backend::ramps::{Ramp, RampSet};
use backend::weights::{self, LoadOptions, WeightsError};
use burn::tensor::{Distribution, Int, Tensor};

type Device = burn::tensor::Device<Cpu>;

fn values<const D: usize>(t: Tensor<Cpu, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn images(batch: usize, size: usize) -> Tensor<Cpu, 4> {
    Tensor::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        &Device::default(),
    )
}

/// One tensor of a hand-written checkpoint.
struct T {
    name: String,
    shape: Vec<usize>,
    /// `None`: an `I64` zero (as PyTorch's `num_batches_tracked`).
    data: Option<Vec<f32>>,
}

/// Writes a safetensors file by hand (the format: an 8-byte little-endian header length, a JSON
/// header of `{name: {dtype, shape, data_offsets}}`, then the raw little-endian data), so the
/// fixtures do not depend on the code under test.
fn write_safetensors(path: &Path, tensors: &[T]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for t in tensors {
        let start = data.len();
        let dtype = match &t.data {
            Some(v) => {
                assert_eq!(v.len(), t.shape.iter().product::<usize>(), "{}", t.name);
                for x in v {
                    data.extend_from_slice(&x.to_le_bytes());
                }
                "F32"
            }
            None => {
                for _ in 0..t.shape.iter().product::<usize>() {
                    data.extend_from_slice(&0i64.to_le_bytes());
                }
                "I64"
            }
        };
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": dtype, "shape": t.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// The state dict of torchvision's `ResNet(BasicBlock, layers, num_classes)` with the stem and
/// plane widths scaled to `width` (torchvision: 64), names and shapes as torchvision's
/// `resnet.py` makes them (written out here, independently of the crate's model).
///
/// Values: every convolution is zero; batch norms are the identity (weight 1, bias 0, mean 0,
/// var 1) except `layer4.{last}.bn2`, whose statistics are `bn_values(c)`; `fc` is `fc_values`.
/// So the network's output is known in closed form (see `expected_logits`).
fn torchvision_resnet(layers: [usize; 4], width: usize, classes: usize) -> Vec<T> {
    let mut out = Vec::new();
    let f = |name: &str, shape: Vec<usize>, v: Vec<f32>| T {
        name: name.to_string(),
        shape,
        data: Some(v),
    };
    let zeros = |shape: &[usize]| vec![0.0; shape.iter().product()];
    let last_bn2 = format!("layer4.{}.bn2", layers[3] - 1);
    let bn = |out: &mut Vec<T>, prefix: &str, c: usize| {
        let special = prefix == last_bn2;
        let (g, b, m, v) = if special {
            (0..c).map(bn_values).fold(
                (vec![], vec![], vec![], vec![]),
                |(mut g, mut b, mut m, mut v), (gi, bi, mi, vi)| {
                    g.push(gi);
                    b.push(bi);
                    m.push(mi);
                    v.push(vi);
                    (g, b, m, v)
                },
            )
        } else {
            (vec![1.0; c], vec![0.0; c], vec![0.0; c], vec![1.0; c])
        };
        out.push(f(&format!("{prefix}.weight"), vec![c], g));
        out.push(f(&format!("{prefix}.bias"), vec![c], b));
        out.push(f(&format!("{prefix}.running_mean"), vec![c], m));
        out.push(f(&format!("{prefix}.running_var"), vec![c], v));
        out.push(T {
            name: format!("{prefix}.num_batches_tracked"),
            shape: vec![],
            data: None,
        });
    };
    let conv = |out: &mut Vec<T>, name: &str, shape: Vec<usize>| {
        let v = zeros(&shape);
        out.push(f(name, shape, v));
    };
    conv(&mut out, "conv1.weight", vec![width, 3, 7, 7]);
    bn(&mut out, "bn1", width);
    let mut inplanes = width;
    for (i, &n) in layers.iter().enumerate() {
        let planes = width << i;
        for j in 0..n {
            let stride = if i > 0 && j == 0 { 2 } else { 1 };
            let p = format!("layer{}.{j}", i + 1);
            conv(
                &mut out,
                &format!("{p}.conv1.weight"),
                vec![planes, inplanes, 3, 3],
            );
            bn(&mut out, &format!("{p}.bn1"), planes);
            conv(
                &mut out,
                &format!("{p}.conv2.weight"),
                vec![planes, planes, 3, 3],
            );
            bn(&mut out, &format!("{p}.bn2"), planes);
            if stride != 1 || inplanes != planes {
                conv(
                    &mut out,
                    &format!("{p}.downsample.0.weight"),
                    vec![planes, inplanes, 1, 1],
                );
                bn(&mut out, &format!("{p}.downsample.1"), planes);
            }
            inplanes = planes;
        }
    }
    let (w, b) = fc_values(classes, inplanes);
    out.push(f("fc.weight", vec![classes, inplanes], w));
    out.push(f("fc.bias", vec![classes], b));
    out
}

/// `(weight, bias, running_mean, running_var)` of channel `c` of the last block's `bn2`.
fn bn_values(c: usize) -> (f32, f32, f32, f32) {
    let c = c as f32;
    (1.0 + 0.1 * c, (c - 10.0) * 0.05, 0.02 * c, 1.0 + 0.5 * c)
}

/// `fc.weight` (`[classes, features]`, PyTorch's layout, row-major) and `fc.bias`.
fn fc_values(classes: usize, features: usize) -> (Vec<f32>, Vec<f32>) {
    let w = (0..classes * features)
        .map(|i| {
            let (k, c) = (i / features, i % features);
            (k as f32 + 1.0) * 0.1 - c as f32 * 0.013
        })
        .collect();
    let b = (0..classes).map(|k| 0.5 - 0.25 * k as f32).collect();
    (w, b)
}

/// With zero convolutions, the last block outputs `relu(bn2(0))` per channel (its shortcut is
/// the previous block's output, itself `relu(0)`), the pool keeps it, and `fc` maps it.
fn expected_logits(classes: usize, features: usize) -> Vec<f32> {
    let (w, b) = fc_values(classes, features);
    let feat: Vec<f64> = (0..features)
        .map(|c| {
            let (g, beta, m, v) = bn_values(c);
            let y = (0.0 - m as f64) / (v as f64 + 1e-5).sqrt() * g as f64 + beta as f64;
            y.max(0.0)
        })
        .collect();
    (0..classes)
        .map(|k| {
            let dot: f64 = (0..features)
                .map(|c| w[k * features + c] as f64 * feat[c])
                .sum();
            (dot + b[k] as f64) as f32
        })
        .collect()
}

fn tiny_resnet18_layout(classes: usize) -> ResNetConfig {
    ResNetConfig {
        name: "tiny-resnet18".into(),
        block: BlockKind::Basic,
        layers: [2, 2, 2, 2],
        num_classes: classes,
        base_width: 4,
        input_size: 32,
    }
}

#[test]
fn a_torchvision_named_checkpoint_loads_with_no_remapping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resnet18-tiny.safetensors");
    write_safetensors(&path, &torchvision_resnet([2, 2, 2, 2], 4, 3));
    let model = tiny_resnet18_layout(3).init::<Cpu>(&Device::default());
    let model = weights::load(model, &path).unwrap();
    let logits = values(model.forward(images(2, 32)));
    let want = expected_logits(3, 32);
    assert!(want.iter().any(|v| v.abs() > 0.1), "a non-trivial fixture");
    for row in logits.chunks(3) {
        for (got, want) in row.iter().zip(&want) {
            assert!((got - want).abs() < 1e-4, "{row:?} vs {want:?}");
        }
    }

    // The same file under a prefix loads once the prefix is remapped away.
    let prefixed = dir.path().join("prefixed.safetensors");
    let mut tensors = torchvision_resnet([2, 2, 2, 2], 4, 3);
    for t in &mut tensors {
        t.name = format!("backbone.{}", t.name);
    }
    write_safetensors(&prefixed, &tensors);
    let fresh = tiny_resnet18_layout(3).init::<Cpu>(&Device::default());
    let err = weights::load(fresh, &prefixed).unwrap_err();
    assert!(matches!(err, WeightsError::MissingTensor { .. }), "{err}");
    let opts = LoadOptions {
        remap: vec![("^backbone\\.".into(), String::new())],
        ignore: vec![],
    };
    let fresh = tiny_resnet18_layout(3).init::<Cpu>(&Device::default());
    let model = weights::load_with(fresh, &prefixed, &opts).unwrap();
    let logits = values(model.forward(images(1, 32)));
    assert!((logits[0] - want[0]).abs() < 1e-4);
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let device = Device::default();
    let dir = tempfile::tempdir().unwrap();

    // A bottleneck ResNet (downsample, conv3/bn3).
    let cfg = ResNetConfig {
        name: "tiny".into(),
        block: BlockKind::Bottleneck,
        layers: [1, 2, 1, 1],
        num_classes: 5,
        base_width: 4,
        input_size: 32,
    };
    let a = cfg.init::<Cpu>(&device);
    let path = dir.path().join("resnet.safetensors");
    weights::save(&a, &path).unwrap();
    let b = cfg.init::<Cpu>(&device);
    let x = images(2, 32);
    let before = values(b.forward(x.clone()));
    let b = weights::load(b, &path).unwrap();
    let want = values(a.forward(x.clone()));
    assert_ne!(before, want, "two random initialisations differ");
    assert_eq!(values(b.forward(x)), want);
    // The file speaks torchvision: names and PyTorch layouts.
    let names = weights::list_tensors(&path).unwrap();
    let shape = |n: &str| {
        names
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no `{n}` in {names:?}"))
    };
    assert_eq!(shape("fc.weight"), [5, 128]);
    assert_eq!(shape("bn1.weight"), [4]);
    assert_eq!(shape("layer2.0.downsample.0.weight"), [32, 16, 1, 1]);
    assert_eq!(shape("layer2.0.downsample.1.running_var"), [32]);
    assert_eq!(shape("layer4.0.conv3.weight"), [128, 32, 1, 1]);
    assert!(names
        .iter()
        .all(|(k, _)| !k.contains("gamma") && !k.contains("Conv")));

    // A VGG (enum-wrapped `features.N` / `classifier.N`).
    let cfg = VggConfig {
        name: "tiny-vgg".into(),
        items: vec![
            VggItem::Conv(4),
            VggItem::Pool,
            VggItem::Conv(8),
            VggItem::Pool,
        ],
        num_classes: 3,
        hidden: 16,
        input_size: 16,
        pool_size: 2,
    };
    let a = cfg.init::<Cpu>(&device);
    let path = dir.path().join("vgg.safetensors");
    weights::save(&a, &path).unwrap();
    let b = weights::load(cfg.init::<Cpu>(&device), &path).unwrap();
    let x = images(2, 16);
    assert_eq!(values(b.forward(x.clone())), values(a.forward(x)));
    let names: Vec<String> = weights::list_tensors(&path)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for n in [
        "features.0.weight",
        "features.3.bias",
        "classifier.0.weight",
        "classifier.3.weight",
        "classifier.6.bias",
    ] {
        assert!(names.iter().any(|k| k == n), "no `{n}` in {names:?}");
    }

    // Ramp sets, CV and NLP.
    let model = ResNetConfig {
        layers: [1, 1, 1, 1],
        block: BlockKind::Basic,
        ..tiny_resnet18_layout(4)
    }
    .init::<Cpu>(&device);
    let ramps = RampSet::for_model(&model, &device);
    let path = dir.path().join("ramps.safetensors");
    weights::save(&ramps, &path).unwrap();
    let loaded = weights::load(RampSet::for_model(&model, &device), &path).unwrap();
    let mut act = model.stem(model.example_input(2, 0, &device));
    for i in 0..model.num_sites() {
        act = model.segment(i, act);
        assert_eq!(
            values(loaded.ramps[i].forward(&act)),
            values(ramps.ramps[i].forward(&act))
        );
    }
    let nlp = RampSet {
        ramps: (0..2)
            .map(|_| Ramp::new(Family::Nlp, 8, 3, &device))
            .collect(),
    };
    let path = dir.path().join("nlp-ramps.safetensors");
    weights::save(&nlp, &path).unwrap();
    let fresh = RampSet {
        ramps: (0..2)
            .map(|_| Ramp::new(Family::Nlp, 8, 3, &device))
            .collect(),
    };
    let loaded = weights::load(fresh, &path).unwrap();
    let act = Activation::Tokens {
        hidden: Tensor::random([2, 5, 8], Distribution::Normal(0.0, 1.0), &device),
        mask: Tensor::<Cpu, 2, Int>::ones([2, 5], &device),
    };
    for (a, b) in nlp.ramps.iter().zip(&loaded.ramps) {
        assert_eq!(values(a.forward(&act)), values(b.forward(&act)));
    }
}

fn fixture_with(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<T>)) -> std::path::PathBuf {
    let mut tensors = torchvision_resnet([2, 2, 2, 2], 4, 3);
    edit(&mut tensors);
    let path = dir.join(name);
    write_safetensors(&path, &tensors);
    path
}

fn fresh() -> backend::models::resnet::ResNet<Cpu> {
    tiny_resnet18_layout(3).init::<Cpu>(&Device::default())
}

#[test]
fn a_missing_tensor_is_named_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_with(dir.path(), "missing.safetensors", |t| {
        t.retain(|t| t.name != "layer3.1.bn1.running_var")
    });
    let err = weights::load(fresh(), &path).unwrap_err();
    match &err {
        WeightsError::MissingTensor { file, tensor, more } => {
            assert_eq!(file, &path);
            assert_eq!(tensor, "layer3.1.bn1.running_var");
            assert_eq!(*more, 0);
        }
        other => panic!("expected a missing tensor, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("missing.safetensors") && msg.contains("`layer3.1.bn1.running_var`"));
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn a_misshaped_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_with(dir.path(), "misshaped.safetensors", |ts| {
        for t in ts.iter_mut() {
            if t.name == "layer1.0.conv2.weight" {
                t.shape = vec![4, 4, 1, 1];
                t.data = Some(vec![0.0; 16]);
            }
        }
    });
    let err = weights::load(fresh(), &path).unwrap_err();
    match &err {
        WeightsError::WrongShape {
            file,
            tensor,
            expected,
            found,
            more,
        } => {
            assert_eq!(file, &path);
            assert_eq!(tensor, "layer1.0.conv2.weight");
            assert_eq!(expected, &[4, 4, 3, 3]);
            assert_eq!(found, &[4, 4, 1, 1]);
            assert_eq!(*more, 0);
        }
        other => panic!("expected a wrong shape, got {other}"),
    }
    assert!(err.to_string().contains("misshaped.safetensors"), "{err}");

    // A linear weight in PyTorch's layout: a 4-class checkpoint into a 3-class model.
    let path = dir.path().join("classes.safetensors");
    write_safetensors(&path, &torchvision_resnet([2, 2, 2, 2], 4, 4));
    let err = weights::load(fresh(), &path).unwrap_err();
    match &err {
        WeightsError::WrongShape {
            tensor,
            expected,
            found,
            more,
            ..
        } => {
            assert_eq!(tensor, "fc.bias");
            assert_eq!(
                (expected.as_slice(), found.as_slice()),
                (&[3][..], &[4][..])
            );
            assert_eq!(*more, 1, "fc.weight too");
        }
        other => panic!("expected a wrong shape, got {other}"),
    }
}

#[test]
fn an_unexpected_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_with(dir.path(), "extra.safetensors", |t| {
        t.push(T {
            name: "layer5.0.conv1.weight".into(),
            shape: vec![2, 2],
            data: Some(vec![0.0; 4]),
        })
    });
    let err = weights::load(fresh(), &path).unwrap_err();
    match &err {
        WeightsError::UnexpectedTensor { file, tensor, .. } => {
            assert_eq!(file, &path);
            assert_eq!(tensor, "layer5.0.conv1.weight");
        }
        other => panic!("expected an unexpected tensor, got {other}"),
    }
    // Ignoring it by name lets the load go through.
    let opts = LoadOptions {
        remap: vec![],
        ignore: vec!["layer5.0.conv1.weight".into()],
    };
    weights::load_with(fresh(), &path, &opts).unwrap();
}

#[test]
fn unreadable_and_unsupported_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("resnet18.onnx");
    std::fs::write(&onnx, b"not read").unwrap();
    let err = weights::load(fresh(), &onnx).unwrap_err();
    assert!(
        matches!(err, WeightsError::UnsupportedFormat { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("resnet18.onnx") && err.to_string().contains("safetensors"));

    let pt = dir.path().join("legacy.pth");
    std::fs::write(&pt, b"\x80\x02not a zip").unwrap();
    let err = weights::load(fresh(), &pt).unwrap_err();
    assert!(matches!(err, WeightsError::Unreadable { .. }), "{err}");
    assert!(
        err.to_string().contains("legacy.pth") && err.to_string().contains("zip"),
        "{err}"
    );

    let absent = dir.path().join("absent.safetensors");
    let err = weights::load(fresh(), &absent).unwrap_err();
    assert!(matches!(err, WeightsError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("absent.safetensors"), "{err}");

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"\x05\x00\x00\x00\x00\x00\x00\x00{oops").unwrap();
    let err = weights::load(fresh(), &garbage).unwrap_err();
    assert!(matches!(err, WeightsError::Unreadable { .. }), "{err}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");
}

/// `tests/fixtures/resnet18-tiny.pth`: the same state dict as `torchvision_resnet([2, 2, 2, 2],
/// 2, 3)`, written in `torch.save`'s zip format by `tests/fixtures/make_torch_checkpoint.py`
/// (Python's own pickler, no torch), with `fc.weight` a transposed view sharing its storage with
/// `fc.bias`.
#[test]
fn a_torch_save_checkpoint_loads_like_its_safetensors_twin() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resnet18-tiny.pth");
    let cfg = ResNetConfig {
        base_width: 2,
        ..tiny_resnet18_layout(3)
    };
    let names = weights::list_tensors(&path).unwrap();
    assert!(names
        .iter()
        .any(|(k, s)| k == "layer2.0.downsample.1.running_mean" && s == &[4]));
    assert!(names.iter().any(|(k, s)| k == "fc.weight" && s == &[3, 16]));
    let model = weights::load(cfg.init::<Cpu>(&Device::default()), &path).unwrap();
    let logits = values(model.forward(images(2, 32)));
    let want = expected_logits(3, 16);
    for row in logits.chunks(3) {
        for (got, want) in row.iter().zip(&want) {
            assert!((got - want).abs() < 1e-4, "{row:?} vs {want:?}");
        }
    }
    // The same tensors through a safetensors file give the same model.
    let dir = tempfile::tempdir().unwrap();
    let twin = dir.path().join("twin.safetensors");
    write_safetensors(&twin, &torchvision_resnet([2, 2, 2, 2], 2, 3));
    let twin_model = weights::load(cfg.init::<Cpu>(&Device::default()), &twin).unwrap();
    let x = images(1, 32);
    assert_eq!(
        values(twin_model.forward(x.clone())),
        values(model.forward(x))
    );
}

/// The full-size models expect exactly torchvision's state dict keys (less the
/// `num_batches_tracked` counters), with torchvision's shapes.
#[test]
fn full_size_models_expect_torchvisions_state_dict() {
    let device = Device::default();
    // torchvision's `len(state_dict())` minus one `num_batches_tracked` per batch norm:
    // resnet18 122 - 20, resnet50 320 - 53, resnet101 626 - 104.
    for (name, keys) in [("resnet18", 102), ("resnet50", 267), ("resnet101", 522)] {
        let model = backend::models::build::<Cpu>(name, 1000, &device).unwrap();
        let t = weights::expected_tensors(&model);
        assert_eq!(t.len(), keys, "{name}");
        assert_eq!(t["conv1.weight"], [64, 3, 7, 7], "{name}");
        assert_eq!(t["bn1.running_var"], [64], "{name}");
        assert!(t
            .keys()
            .all(|k| !k.contains("gamma") && !k.contains("beta")));
        if name == "resnet18" {
            assert_eq!(t["layer2.0.downsample.0.weight"], [128, 64, 1, 1]);
            assert_eq!(t["layer4.1.conv2.weight"], [512, 512, 3, 3]);
            assert_eq!(t["fc.weight"], [1000, 512]);
            assert!(!t.contains_key("layer1.0.downsample.0.weight"));
        } else {
            assert_eq!(t["layer1.0.downsample.0.weight"], [256, 64, 1, 1]);
            assert_eq!(t["layer1.0.downsample.1.running_mean"], [256]);
            assert_eq!(t["layer3.0.conv2.weight"], [256, 256, 3, 3]);
            assert_eq!(t["layer4.2.conv3.weight"], [2048, 512, 1, 1]);
            assert_eq!(t["fc.weight"], [1000, 2048]);
        }
    }
    // VGG-16's features at full size (the classifier narrowed: its first layer alone would be
    // 411 MB); torchvision has 13 convolutions and 3 linear layers, weight and bias each.
    let model = VggConfig {
        hidden: 64,
        ..VggConfig::vgg16(1000)
    }
    .init::<Cpu>(&device);
    let t = weights::expected_tensors(&model);
    assert_eq!(t.len(), 32);
    assert_eq!(t["features.0.weight"], [64, 3, 3, 3]);
    assert_eq!(t["features.28.weight"], [512, 512, 3, 3]);
    assert_eq!(t["features.28.bias"], [512]);
    assert_eq!(t["classifier.0.weight"], [64, 512 * 7 * 7]);
    assert_eq!(t["classifier.6.weight"], [1000, 64]);
}

/// `tests/fixtures/ramp-p4.pt`: `{"epoch": 3, "state_dict": {...}}` of one CV ramp, pickled with
/// protocol 4 (made by `tests/fixtures/make_torch_checkpoint.py`): the state dict is found under
/// its key and `ramps.0.classifier.weight` (PyTorch's `[out, in]`) lands transposed.
#[test]
fn a_protocol_4_training_checkpoint_loads_its_state_dict() {
    let device = Device::default();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ramp-p4.pt");
    let fresh = RampSet {
        ramps: vec![Ramp::new(Family::Cv, 4, 2, &device)],
    };
    let ramps = weights::load(fresh, &path).unwrap();
    // Channel c of a 2x2 map holds c + 1 everywhere: the pooled features are [1, 2, 3, 4].
    let maps: Vec<f32> = (0..4).flat_map(|c| [c as f32 + 1.0; 4]).collect();
    let act = Activation::Image(
        Tensor::<Cpu, 1>::from_floats(maps.as_slice(), &device).reshape([1, 4, 2, 2]),
    );
    let got = values(ramps.ramps[0].forward(&act));
    let w = [[0.5, -1.0, 0.25, 2.0], [-0.5, 1.5, 0.75, -0.25]];
    let b = [0.1, -0.2];
    for k in 0..2 {
        let want: f32 = (0..4).map(|c| w[k][c] * (c as f32 + 1.0)).sum::<f32>() + b[k];
        assert!((got[k] - want).abs() < 1e-5, "{got:?}");
    }
}
