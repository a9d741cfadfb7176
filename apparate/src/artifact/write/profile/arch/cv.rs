//! The CV model families: torchvision ResNets and VGGs, and their ramp.

use super::{spread, Architecture};
use crate::artifact::write::profile::tree::{container, shape, site, weight, Builder, Module};

/// torchvision ResNet; a site is each residual block.
pub(super) fn resnet(model: &str, num_ramps: usize, bs: i64) -> Architecture {
    let depth: usize = model
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(50);
    let bottleneck = depth >= 50;
    let pattern: &[usize] = match depth {
        18 => &[2, 2, 2, 2],
        34 | 50 => &[3, 4, 6, 3],
        101 => &[3, 4, 23, 3],
        152 => &[3, 8, 36, 3],
        _ => &[3, 4, 6, 3],
    };
    let stages = spread(num_ramps, pattern);
    let expansion = if bottleneck { 4 } else { 1 };
    let mut b = Builder { bs, seg: 0 };
    let mut top = vec![
        b.conv2d("conv1", 3, 64, 7, 112, false),
        b.batch_norm("bn1", 64, 112),
        b.relu("relu", 64, 112),
        b.pool("maxpool", "MaxPool2d", 64, 56),
    ];
    let mut cin = 64;
    let mut r = 0;
    for (s, &count) in stages.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let width = 64i64 << s;
        let hw = 56i64 >> s;
        let cout = width * expansion;
        let mut blocks = Vec::with_capacity(count);
        for k in 0..count {
            b.seg = r + 1;
            let name = k.to_string();
            let mut children = if bottleneck {
                vec![
                    b.conv2d("conv1", cin, width, 1, hw, false),
                    b.batch_norm("bn1", width, hw),
                    b.conv2d("conv2", width, width, 3, hw, false),
                    b.batch_norm("bn2", width, hw),
                    b.conv2d("conv3", width, cout, 1, hw, false),
                    b.batch_norm("bn3", cout, hw),
                    b.relu("relu", cout, hw),
                ]
            } else {
                vec![
                    b.conv2d("conv1", cin, width, 3, hw, false),
                    b.batch_norm("bn1", width, hw),
                    b.relu("relu", width, hw),
                    b.conv2d("conv2", width, width, 3, hw, false),
                    b.batch_norm("bn2", width, hw),
                ]
            };
            if k == 0 && (cin != cout || s > 0) {
                children.push(container(
                    "downsample",
                    "Sequential",
                    vec![
                        b.conv2d("0", cin, cout, 1, hw, false),
                        b.batch_norm("1", cout, hw),
                    ],
                ));
            }
            let mut block = container(
                &name,
                if bottleneck {
                    "Bottleneck"
                } else {
                    "BasicBlock"
                },
                children,
            );
            block.output_shape = shape(&[bs, cout, hw, hw]);
            blocks.push(site(r, block, cv_ramp(bs, cout)));
            cin = cout;
            r += 1;
        }
        top.push(container(&format!("layer{}", s + 1), "Sequential", blocks));
    }
    b.seg = num_ramps + 1;
    top.push(b.pool("avgpool", "AdaptiveAvgPool2d", cin, 1));
    top.push(b.linear("fc", "Linear", &[bs], cin, 1000, true));
    Architecture {
        root: container("model", "ResNet", top),
        cv: true,
        vanilla_type: "ResNet",
        ee_type: "ResNetEarlyExit",
        has_stem: true,
        num_ramps,
    }
}

/// torchvision VGG; a site is the ReLU after each convolution in `features`.
pub(super) fn vgg(model: &str, num_ramps: usize, bs: i64) -> Architecture {
    // Convolutions per stage (5 stages, each ending in a max-pool), as in torchvision's
    // configurations A (vgg11), B (vgg13), D (vgg16) and E (vgg19).
    let pattern: &[usize] = match num_ramps {
        8 => &[1, 1, 2, 2, 2],
        10 => &[2, 2, 2, 2, 2],
        13 => &[2, 2, 3, 3, 3],
        16 => &[2, 2, 4, 4, 4],
        _ if model.contains("11") => &[1, 1, 2, 2, 2],
        _ if model.contains("13") => &[2, 2, 2, 2, 2],
        _ => &[2, 2, 3, 3, 3],
    };
    let stages = spread(num_ramps, pattern);
    let mut b = Builder { bs, seg: 1 };
    let mut features = Vec::new();
    let mut cin = 3;
    let mut hw = 224;
    let mut r = 0;
    let mut pending_pool = false;
    for (s, &count) in stages.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let cout = (64i64 << s).min(512);
        for _ in 0..count {
            b.seg = r + 1;
            if pending_pool {
                hw /= 2;
                features.push(b.pool(&features.len().to_string(), "MaxPool2d", cin, hw));
                pending_pool = false;
            }
            features.push(b.conv2d(&features.len().to_string(), cin, cout, 3, hw, true));
            let relu = b.relu(&features.len().to_string(), cout, hw);
            features.push(site(r, relu, cv_ramp(bs, cout)));
            cin = cout;
            r += 1;
        }
        pending_pool = true;
    }
    b.seg = num_ramps + 1;
    features.push(b.pool(
        &features.len().to_string(),
        "MaxPool2d",
        cin,
        (hw / 2).max(1),
    ));
    let flat = cin * 7 * 7;
    let top = vec![
        container("features", "Sequential", features),
        b.pool("avgpool", "AdaptiveAvgPool2d", cin, 7),
        container(
            "classifier",
            "Sequential",
            vec![
                b.linear("0", "Linear", &[bs], flat, 4096, true),
                b.elementwise("1", "ReLU", weight::ACTIVATION, &[bs, 4096]),
                b.dropout("2", &[bs, 4096]),
                b.linear("3", "Linear", &[bs], 4096, 4096, true),
                b.elementwise("4", "ReLU", weight::ACTIVATION, &[bs, 4096]),
                b.dropout("5", &[bs, 4096]),
                b.linear("6", "Linear", &[bs], 4096, 1000, true),
            ],
        ),
    ];
    Architecture {
        root: container("model", "VGG", top),
        cv: true,
        vanilla_type: "VGG",
        ee_type: "VGGEarlyExit",
        has_stem: false,
        num_ramps,
    }
}

/// The CV ramp: global average pool, flatten, a linear classifier over 2 classes.
fn cv_ramp(bs: i64, c: i64) -> Module {
    let b = Builder { bs, seg: 0 };
    container(
        "branch_net",
        "Sequential",
        vec![
            b.pool("0", "AdaptiveAvgPool2d", c, 1),
            b.elementwise("1", "Flatten", weight::NONE, &[bs, c]),
            b.linear("2", "Linear", &[bs], c, 2, true),
        ],
    )
}
