//! Profile pickles (spec §2.2) from latency tables: model-shaped trees of `profiler.Profile`
//! instances from which [`read_latency_tables`](crate::artifact::read_latency_tables) (and the
//! artifact's controller) recover the table bit for bit.
//!
//! The tree follows the model's PyTorch module structure (torchvision ResNets and VGGs,
//! DistilBERT / BERT / GPT-2 with highway ramps): a ramp site is a ResNet block, a VGG ReLU in
//! `features`, or a transformer layer. Every module gets all attributes of the artifact's
//! `Profile` class (`name, full_name, type, depth, num_params, num_params_pctg, input_shape,
//! output_shape, input_elem_bytes, output_elem_bytes, fwd_latency, fwd_latency_orig,
//! fwd_latency_pctg, vanilla_latency_up_until_me, ramp_latencies_up_until_me, macs,
//! macs_pctg, fwd_flops, fwd_flops_pctg, children`), with the artifact's quirks: leaves share
//! one empty `children` list and non-ramp modules one empty `ramp_latencies_up_until_me`
//! list; Dropout / Flatten leaves take the int `0`; a `ModuleList`'s `fwd_latency_orig` is the
//! int `0`.
//!
//! Latencies: the table fixes the values the readers use (spec §3):
//!
//! * CV vanilla tree (`{m}_{bs}_profile.pickle`): the site module's
//!   `vanilla_latency_up_until_me` is `v_r`, the root's `fwd_latency_orig` is `V`.
//! * CV early-exit tree (`{m}_{bs}_earlyexit_profile.pickle`): each site is a `BranchPoint`
//!   at the site's path, with children `branched_module` (the site module) and `branch_net`
//!   (the ramp, `fwd_latency = o_r`).
//! * NLP early-exit tree: `branch_net.vanilla_latency_up_until_me = v_r`,
//!   `branch_net.fwd_latency = o_r`, root `vanilla_latency_up_until_me = V`.
//!
//! The other modules' latencies are made up consistently: the vanilla time between two sites
//! is split over the modules in between by fixed per-type weights, each module's
//! `vanilla_latency_up_until_me` is the running sum (ending exactly on the table's values),
//! containers add up their children, and `fwd_latency_orig` is `fwd_latency` divided by a
//! calibration factor.

use std::path::{Path, PathBuf};

use super::{write_file, WriteError};
use crate::artifact::is_cv_arch;
use crate::sim::{LatencyTable, LatencyTables};
use pickle::write::PyValue;

/// `fwd_latency / fwd_latency_orig` for every module but the root (the artifact's profiles
/// normalise measured times by about this much).
const CALIBRATION: f64 = 1.025;
/// Shared-object ids within one profile pickle.
const SHARED_EMPTY_CHILDREN: u32 = 0;
const SHARED_EMPTY_RAMPS: u32 = 1;

/// Latency weights of leaf module types (share of the vanilla time between two sites).
mod weight {
    pub const CONV: f64 = 8.0;
    pub const LINEAR: f64 = 6.0;
    pub const EMBEDDING: f64 = 2.0;
    pub const NORM: f64 = 1.0;
    pub const ACTIVATION: f64 = 0.7;
    pub const POOL: f64 = 1.0;
    /// Dropout, Flatten: no measurable time (the int `0`).
    pub const NONE: f64 = 0.0;
}

/// The profile pickles of one model at one batch size.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileTrees {
    /// CV only: the vanilla tree, `{m}_{bs}_profile.pickle`.
    pub vanilla: Option<PyValue>,
    /// The early-exit tree, `{m}_{bs}_earlyexit_profile.pickle`.
    pub early_exit: PyValue,
}

/// The profile file names of `model` at batch size `bs`: the vanilla tree (CV only) and the
/// early-exit tree.
pub fn profile_file_names(model: &str, bs: usize) -> (Option<String>, String) {
    let vanilla = is_cv_arch(model).then(|| format!("{model}_{bs}_profile.pickle"));
    (vanilla, format!("{model}_{bs}_earlyexit_profile.pickle"))
}

/// Writes the profile pickles of `model` for every batch size of `tables` into `dir`
/// (created if missing), each atomically; returns the paths written, in batch-size order.
///
/// `model` is the profile name the controller looks up: `arch.split('_')[0]` for CV (e.g.
/// `resnet18`), the arch itself for NLP (e.g. `bert-base`). Whether it is CV follows the
/// artifact's rule ([`is_cv_arch`]).
pub fn write_profiles(
    dir: &Path,
    model: &str,
    tables: &LatencyTables,
) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|cause| WriteError::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let mut written = Vec::new();
    for (bs, table) in tables.iter() {
        let bs = bs.get();
        let trees = profile_trees(model, bs, table)?;
        let (vanilla_name, ee_name) = profile_file_names(model, bs);
        if let (Some(name), Some(tree)) = (vanilla_name, &trees.vanilla) {
            let path = dir.join(name);
            write_file(&path, |w| tree.dump_to(w).map(drop))?;
            written.push(path);
        }
        let path = dir.join(ee_name);
        write_file(&path, |w| trees.early_exit.dump_to(w).map(drop))?;
        written.push(path);
    }
    Ok(written)
}

/// The profile trees of `model` at batch size `bs` that encode `table`.
///
/// Errors: a table without ramps ([`WriteError::NoRamps`]) or with a non-finite latency
/// ([`WriteError::NonFinite`]).
pub fn profile_trees(
    model: &str,
    bs: usize,
    table: &LatencyTable,
) -> Result<ProfileTrees, WriteError> {
    check_table(model, bs, table)?;
    let arch = Architecture::build(model, table.ramps.len(), bs);
    let timing = Timing::assign(&arch, table);
    let ramp_ms: Vec<f64> = table.ramps.iter().map(|r| r.ramp_ms).collect();
    let vanilla_up_to: Vec<f64> = table.ramps.iter().map(|r| r.vanilla_up_to_ms).collect();
    let render = |mode: Mode| {
        let mut r = Renderer {
            timing: &timing,
            next_leaf: 0,
            ramp_ms: &ramp_ms,
            vanilla_up_to: &vanilla_up_to,
            ramps_so_far: Vec::new(),
            mode,
            root_fwd: 0.0,
        };
        r.root(&arch, table.vanilla_ms)
    };
    let early_exit = render(Mode::EarlyExit);
    let vanilla = arch.cv.then(|| render(Mode::Vanilla));
    Ok(ProfileTrees {
        vanilla,
        early_exit,
    })
}

fn check_table(model: &str, bs: usize, table: &LatencyTable) -> Result<(), WriteError> {
    if table.ramps.is_empty() {
        return Err(WriteError::NoRamps {
            what: format!("latency table of {model} at batch size {bs}"),
        });
    }
    let bad = |field: String| WriteError::NonFinite {
        what: format!("latency table of {model} at batch size {bs}"),
        field,
    };
    for (r, ramp) in table.ramps.iter().enumerate() {
        if !ramp.vanilla_up_to_ms.is_finite() {
            return Err(bad(format!("ramps[{r}].vanilla_up_to_ms")));
        }
        if !ramp.ramp_ms.is_finite() {
            return Err(bad(format!("ramps[{r}].ramp_ms")));
        }
    }
    if !table.vanilla_ms.is_finite() {
        return Err(bad("vanilla_ms".into()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Module structure

/// One module of the model, before latencies are assigned.
#[derive(Clone, Debug)]
struct Module {
    name: String,
    ty: String,
    params: i64,
    macs: i64,
    input_shape: Option<Vec<i64>>,
    output_shape: Option<Vec<i64>>,
    body: Body,
}

#[derive(Clone, Debug)]
enum Body {
    /// A leaf of the vanilla path in segment `seg` (0: before the first site, `r + 1`: up to
    /// site `r`, `R + 1`: after the last site).
    Leaf { seg: usize, weight: f64 },
    /// A container of child modules.
    Container(Vec<Module>),
    /// Ramp site `r`: the vanilla module where the ramp attaches and the ramp itself.
    Site {
        r: usize,
        module: Box<Module>,
        ramp: Box<Module>,
    },
}

/// A model's module tree and what the renderer needs to know about it.
struct Architecture {
    root: Module,
    /// CV (vanilla and early-exit trees) or NLP (early-exit tree only).
    cv: bool,
    /// Root type names of the vanilla and early-exit trees.
    vanilla_type: &'static str,
    ee_type: &'static str,
    /// Whether segment 0 (before the first site) holds modules.
    has_stem: bool,
    num_ramps: usize,
}

/// Builds modules; `seg` is the segment new leaves go to.
struct Builder {
    bs: i64,
    seg: usize,
}

fn shape(dims: &[i64]) -> Option<Vec<i64>> {
    Some(dims.to_vec())
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn leaf(
        &self,
        name: &str,
        ty: &str,
        weight: f64,
        params: i64,
        macs: i64,
        input_shape: Option<Vec<i64>>,
        output_shape: Option<Vec<i64>>,
    ) -> Module {
        Module {
            name: name.into(),
            ty: ty.into(),
            params,
            macs,
            input_shape,
            output_shape,
            body: Body::Leaf {
                seg: self.seg,
                weight,
            },
        }
    }

    fn conv2d(&self, name: &str, cin: i64, cout: i64, k: i64, hw: i64, bias: bool) -> Module {
        let params = cin * cout * k * k + if bias { cout } else { 0 };
        let macs = self.bs * cin * cout * k * k * hw * hw;
        let s = shape(&[self.bs, cout, hw, hw]);
        self.leaf(name, "Conv2d", weight::CONV, params, macs, s.clone(), s)
    }

    fn batch_norm(&self, name: &str, c: i64, hw: i64) -> Module {
        let s = shape(&[self.bs, c, hw, hw]);
        let macs = self.bs * c * hw * hw;
        self.leaf(name, "BatchNorm2d", weight::NORM, 2 * c, macs, s.clone(), s)
    }

    /// An element-wise module (ReLU, GELU, Tanh, Dropout, ...) on `dims`.
    fn elementwise(&self, name: &str, ty: &str, weight: f64, dims: &[i64]) -> Module {
        let s = shape(dims);
        self.leaf(name, ty, weight, 0, 0, s.clone(), s)
    }

    fn relu(&self, name: &str, c: i64, hw: i64) -> Module {
        self.elementwise(name, "ReLU", weight::ACTIVATION, &[self.bs, c, hw, hw])
    }

    fn pool(&self, name: &str, ty: &str, c: i64, hw: i64) -> Module {
        self.elementwise(name, ty, weight::POOL, &[self.bs, c, hw, hw])
    }

    fn dropout(&self, name: &str, dims: &[i64]) -> Module {
        self.elementwise(name, "Dropout", weight::NONE, dims)
    }

    /// A linear layer on `lead` leading dimensions (e.g. `[bs]` or `[bs, seq]`).
    fn linear(
        &self,
        name: &str,
        ty: &str,
        lead: &[i64],
        fin: i64,
        fout: i64,
        bias: bool,
    ) -> Module {
        let params = fin * fout + if bias { fout } else { 0 };
        let rows: i64 = lead.iter().product();
        let mut out = lead.to_vec();
        out.push(fout);
        let mut inp = lead.to_vec();
        inp.push(fin);
        self.leaf(
            name,
            ty,
            weight::LINEAR,
            params,
            rows * fin * fout,
            Some(inp),
            Some(out),
        )
    }

    fn layer_norm(&self, name: &str, lead: &[i64], d: i64) -> Module {
        let mut s = lead.to_vec();
        s.push(d);
        let rows: i64 = lead.iter().product();
        self.leaf(
            name,
            "LayerNorm",
            weight::NORM,
            2 * d,
            rows * d,
            Some(s.clone()),
            Some(s),
        )
    }

    fn embedding(&self, name: &str, lead: &[i64], n: i64, d: i64) -> Module {
        let mut s = lead.to_vec();
        s.push(d);
        let rows: i64 = lead.iter().product();
        self.leaf(
            name,
            "Embedding",
            weight::EMBEDDING,
            n * d,
            rows * d,
            Some(s.clone()),
            Some(s),
        )
    }
}

fn container(name: &str, ty: &str, children: Vec<Module>) -> Module {
    Module {
        name: name.into(),
        ty: ty.into(),
        params: children.iter().map(|c| c.params).sum(),
        macs: children.iter().map(|c| c.macs).sum(),
        input_shape: None,
        output_shape: None,
        body: Body::Container(children),
    }
}

fn site(r: usize, module: Module, ramp: Module) -> Module {
    Module {
        name: module.name.clone(),
        ty: module.ty.clone(),
        params: module.params,
        macs: module.macs,
        input_shape: None,
        output_shape: None,
        body: Body::Site {
            r,
            module: Box::new(module),
            ramp: Box::new(ramp),
        },
    }
}

/// Splits `total` items over `parts` groups following `pattern`'s proportions when the total
/// matches no known configuration: `pattern` itself when it sums to `total`, else groups as
/// even as possible, the remainder going to the largest groups of `pattern` first.
fn spread(total: usize, pattern: &[usize]) -> Vec<usize> {
    if pattern.iter().sum::<usize>() == total {
        return pattern.to_vec();
    }
    let parts = pattern.len();
    let mut counts = vec![total / parts; parts];
    let mut order: Vec<usize> = (0..parts).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pattern[i]));
    for &i in order.iter().take(total % parts) {
        counts[i] += 1;
    }
    counts
}

impl Architecture {
    fn build(model: &str, num_ramps: usize, bs: usize) -> Architecture {
        let bs = bs as i64;
        if is_cv_arch(model) {
            if model.contains("vgg") {
                vgg(model, num_ramps, bs)
            } else {
                resnet(model, num_ramps, bs)
            }
        } else if model.contains("distilbert") {
            distilbert(num_ramps, bs)
        } else if model.contains("gpt") {
            gpt2(model, num_ramps, bs)
        } else {
            bert(model, num_ramps, bs)
        }
    }
}

/// torchvision ResNet; a site is each residual block.
fn resnet(model: &str, num_ramps: usize, bs: i64) -> Architecture {
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
fn vgg(model: &str, num_ramps: usize, bs: i64) -> Architecture {
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

/// Sequence length of the NLP profiles.
const SEQ: i64 = 128;

/// DistilBERT with DeeBERT-style highways; a site is each transformer block.
fn distilbert(num_ramps: usize, bs: i64) -> Architecture {
    let (h, ffn) = (768, 3072);
    let tok = [bs, SEQ];
    let mut b = Builder { bs, seg: 0 };
    let embeddings = container(
        "embeddings",
        "Embeddings",
        vec![
            b.embedding("word_embeddings", &tok, 30522, h),
            b.embedding("position_embeddings", &tok, 512, h),
            b.layer_norm("LayerNorm", &tok, h),
            b.dropout("dropout", &[bs, SEQ, h]),
        ],
    );
    let mut layers = Vec::with_capacity(num_ramps);
    for r in 0..num_ramps {
        b.seg = r + 1;
        let block = container(
            &r.to_string(),
            "TransformerBlock",
            vec![
                container(
                    "attention",
                    "MultiHeadSelfAttention",
                    vec![
                        b.dropout("dropout", &[bs, 12, SEQ, SEQ]),
                        b.linear("q_lin", "Linear", &tok, h, h, true),
                        b.linear("k_lin", "Linear", &tok, h, h, true),
                        b.linear("v_lin", "Linear", &tok, h, h, true),
                        b.linear("out_lin", "Linear", &tok, h, h, true),
                    ],
                ),
                b.layer_norm("sa_layer_norm", &tok, h),
                container(
                    "ffn",
                    "FFN",
                    vec![
                        b.dropout("dropout", &[bs, SEQ, h]),
                        b.linear("lin1", "Linear", &tok, h, ffn, true),
                        b.linear("lin2", "Linear", &tok, ffn, h, true),
                        b.elementwise(
                            "activation",
                            "GELUActivation",
                            weight::ACTIVATION,
                            &[bs, SEQ, ffn],
                        ),
                    ],
                ),
                b.layer_norm("output_layer_norm", &tok, h),
            ],
        );
        let ramp = container(
            "branch_net",
            "DistilBertHighway",
            vec![
                b.linear("pre_classifier", "Linear", &[bs], h, h, true),
                b.dropout("dropout", &[bs, h]),
                b.linear("classifier", "Linear", &[bs], h, 2, true),
            ],
        );
        layers.push(site(r, block, ramp));
    }
    b.seg = num_ramps + 1;
    let model = container(
        "distilbert",
        "DistilBertModel",
        vec![
            embeddings,
            container(
                "transformer",
                "Transformer",
                vec![container("layer", "ModuleList", layers)],
            ),
        ],
    );
    let top = vec![
        model,
        b.linear("pre_classifier", "Linear", &[bs], h, h, true),
        b.linear("classifier", "Linear", &[bs], h, 2, true),
        b.dropout("dropout", &[bs, h]),
    ];
    Architecture {
        root: container("model", "DeeDistilBertForSequenceClassification", top),
        cv: false,
        vanilla_type: "DistilBertForSequenceClassification",
        ee_type: "DeeDistilBertForSequenceClassification",
        has_stem: true,
        num_ramps,
    }
}

/// The BERT pooler (dense + tanh on the first token).
fn bert_pooler(b: &Builder, h: i64) -> Module {
    container(
        "pooler",
        "BertPooler",
        vec![
            b.linear("dense", "Linear", &[b.bs], h, h, true),
            b.elementwise("activation", "Tanh", weight::ACTIVATION, &[b.bs, h]),
        ],
    )
}

/// BERT (base or large) with DeeBERT highways; a site is each encoder layer.
fn bert(model: &str, num_ramps: usize, bs: i64) -> Architecture {
    let (h, ffn, heads) = if model.contains("large") {
        (1024, 4096, 16)
    } else {
        (768, 3072, 12)
    };
    let tok = [bs, SEQ];
    let hidden = [bs, SEQ, h];
    let mut b = Builder { bs, seg: 0 };
    let embeddings = container(
        "embeddings",
        "BertEmbeddings",
        vec![
            b.embedding("word_embeddings", &tok, 30522, h),
            b.embedding("position_embeddings", &tok, 512, h),
            b.embedding("token_type_embeddings", &tok, 2, h),
            b.layer_norm("LayerNorm", &tok, h),
            b.dropout("dropout", &hidden),
        ],
    );
    let mut layers = Vec::with_capacity(num_ramps);
    for r in 0..num_ramps {
        b.seg = r + 1;
        let layer = container(
            &r.to_string(),
            "BertLayer",
            vec![
                container(
                    "attention",
                    "BertAttention",
                    vec![
                        container(
                            "self",
                            "BertSelfAttention",
                            vec![
                                b.linear("query", "Linear", &tok, h, h, true),
                                b.linear("key", "Linear", &tok, h, h, true),
                                b.linear("value", "Linear", &tok, h, h, true),
                                b.dropout("dropout", &[bs, heads, SEQ, SEQ]),
                            ],
                        ),
                        container(
                            "output",
                            "BertSelfOutput",
                            vec![
                                b.linear("dense", "Linear", &tok, h, h, true),
                                b.layer_norm("LayerNorm", &tok, h),
                                b.dropout("dropout", &hidden),
                            ],
                        ),
                    ],
                ),
                container(
                    "intermediate",
                    "BertIntermediate",
                    vec![
                        b.linear("dense", "Linear", &tok, h, ffn, true),
                        b.elementwise(
                            "intermediate_act_fn",
                            "GELUActivation",
                            weight::ACTIVATION,
                            &[bs, SEQ, ffn],
                        ),
                    ],
                ),
                container(
                    "output",
                    "BertOutput",
                    vec![
                        b.linear("dense", "Linear", &tok, ffn, h, true),
                        b.layer_norm("LayerNorm", &tok, h),
                        b.dropout("dropout", &hidden),
                    ],
                ),
            ],
        );
        let ramp = container(
            "branch_net",
            "BertHighway",
            vec![
                bert_pooler(&b, h),
                b.dropout("dropout", &[bs, h]),
                b.linear("classifier", "Linear", &[bs], h, 2, true),
            ],
        );
        layers.push(site(r, layer, ramp));
    }
    b.seg = num_ramps + 1;
    let model = container(
        "bert",
        "DeeBertModel",
        vec![
            embeddings,
            container(
                "encoder",
                "DeeBertEncoder",
                vec![container("layer", "ModuleList", layers)],
            ),
            bert_pooler(&b, h),
        ],
    );
    let top = vec![
        model,
        b.dropout("dropout", &[bs, h]),
        b.linear("classifier", "Linear", &[bs], h, 2, true),
    ];
    Architecture {
        root: container("model", "DeeBertForSequenceClassification", top),
        cv: false,
        vanilla_type: "BertForSequenceClassification",
        ee_type: "DeeBertForSequenceClassification",
        has_stem: true,
        num_ramps,
    }
}

/// GPT-2 with a highway after each block; a site is each transformer block.
fn gpt2(model: &str, num_ramps: usize, bs: i64) -> Architecture {
    let h = if model.contains("xl") {
        1600
    } else if model.contains("large") {
        1280
    } else if model.contains("medium") {
        1024
    } else {
        768
    };
    let tok = [bs, SEQ];
    let hidden = [bs, SEQ, h];
    let mut b = Builder { bs, seg: 0 };
    let mut transformer = vec![
        b.embedding("wte", &tok, 50257, h),
        b.embedding("wpe", &tok, 1024, h),
        b.dropout("drop", &hidden),
    ];
    let mut blocks = Vec::with_capacity(num_ramps);
    for r in 0..num_ramps {
        b.seg = r + 1;
        let block = container(
            &r.to_string(),
            "GPT2Block",
            vec![
                b.layer_norm("ln_1", &tok, h),
                container(
                    "attn",
                    "GPT2Attention",
                    vec![
                        b.linear("c_attn", "Conv1D", &tok, h, 3 * h, true),
                        b.linear("c_proj", "Conv1D", &tok, h, h, true),
                        b.dropout("attn_dropout", &[bs, h / 64, SEQ, SEQ]),
                        b.dropout("resid_dropout", &hidden),
                    ],
                ),
                b.layer_norm("ln_2", &tok, h),
                container(
                    "mlp",
                    "GPT2MLP",
                    vec![
                        b.linear("c_fc", "Conv1D", &tok, h, 4 * h, true),
                        b.linear("c_proj", "Conv1D", &tok, 4 * h, h, true),
                        b.elementwise(
                            "act",
                            "NewGELUActivation",
                            weight::ACTIVATION,
                            &[bs, SEQ, 4 * h],
                        ),
                        b.dropout("dropout", &hidden),
                    ],
                ),
            ],
        );
        let ramp = container(
            "branch_net",
            "GPT2Highway",
            vec![
                b.layer_norm("ln", &[bs], h),
                b.linear("classifier", "Linear", &[bs], h, 2, true),
            ],
        );
        blocks.push(site(r, block, ramp));
    }
    b.seg = num_ramps + 1;
    transformer.push(container("h", "ModuleList", blocks));
    transformer.push(b.layer_norm("ln_f", &tok, h));
    let top = vec![
        container("transformer", "GPT2Model", transformer),
        b.linear("score", "Linear", &[bs], h, 2, false),
    ];
    Architecture {
        root: container("model", "GPT2EarlyExitForSequenceClassification", top),
        cv: false,
        vanilla_type: "GPT2ForSequenceClassification",
        ee_type: "GPT2EarlyExitForSequenceClassification",
        has_stem: true,
        num_ramps,
    }
}

// ---------------------------------------------------------------------------------------------
// Latencies

/// Latency of each vanilla leaf, in pre-order (ramp subtrees excluded).
struct Timing {
    /// `(fwd_latency, vanilla_latency_up_until_me)`; `fwd` is `None` for a leaf that takes no
    /// measurable time (the int `0`).
    leaves: Vec<(Option<f64>, f64)>,
}

impl Timing {
    fn assign(arch: &Architecture, table: &LatencyTable) -> Timing {
        let mut leaves = Vec::new();
        collect_leaves(&arch.root, &mut leaves);
        let n = arch.num_ramps;
        let v = |r: usize| table.ramps[r].vanilla_up_to_ms;
        // Segment ends: the stem, then each site, then the whole model.
        let stem_end = if arch.has_stem {
            let first = v(0);
            let gap = if n > 1 {
                (v(n - 1) - first) / (n - 1) as f64
            } else {
                first / 2.0
            };
            (first - gap).max(0.05 * first).min(0.95 * first)
        } else {
            0.0
        };
        let mut ends = Vec::with_capacity(n + 2);
        ends.push(stem_end);
        ends.extend((0..n).map(v));
        ends.push(table.vanilla_ms);

        let mut out = vec![(None, 0.0); leaves.len()];
        let mut start = 0.0;
        for (seg, &end) in ends.iter().enumerate() {
            let members: Vec<usize> = (0..leaves.len()).filter(|&i| leaves[i].0 == seg).collect();
            let total: f64 = members.iter().map(|&i| leaves[i].1).sum();
            let last_timed = members.iter().rev().find(|&&i| leaves[i].1 > 0.0).copied();
            let mut clock = start;
            for &i in &members {
                let w = leaves[i].1;
                if w > 0.0 {
                    let before = clock;
                    clock = if Some(i) == last_timed {
                        end
                    } else {
                        clock + (end - start) * w / total
                    };
                    out[i] = (Some(clock - before), clock);
                } else {
                    out[i] = (None, clock);
                }
            }
            if last_timed.is_some() {
                start = end;
            }
        }
        Timing { leaves: out }
    }
}

/// `(segment, weight)` of every vanilla leaf in pre-order.
fn collect_leaves(m: &Module, out: &mut Vec<(usize, f64)>) {
    match &m.body {
        Body::Leaf { seg, weight } => out.push((*seg, *weight)),
        Body::Container(children) => children.iter().for_each(|c| collect_leaves(c, out)),
        Body::Site { module, .. } => collect_leaves(module, out),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The CV vanilla tree: sites are their plain modules.
    Vanilla,
    /// The early-exit tree: sites are `BranchPoint`s.
    EarlyExit,
}

/// A rendered node: the `Profile` object, its `fwd_latency` and its
/// `vanilla_latency_up_until_me`.
struct Rendered {
    value: PyValue,
    fwd: f64,
    vanilla: f64,
}

struct Renderer<'a> {
    timing: &'a Timing,
    next_leaf: usize,
    ramp_ms: &'a [f64],
    vanilla_up_to: &'a [f64],
    /// `o_0, ..., o_r` of the ramps rendered so far.
    ramps_so_far: Vec<f64>,
    mode: Mode,
    /// The root's `fwd_latency` (for `fwd_latency_pctg`).
    root_fwd: f64,
}

/// The attributes of one `Profile` node other than its children.
struct Attrs<'m> {
    module: &'m Module,
    name: &'m str,
    ty: &'m str,
    full_name: &'m str,
    depth: usize,
    fwd: PyValue,
    fwd_orig: PyValue,
    fwd_value: f64,
    vanilla: f64,
    ramps: PyValue,
    children: PyValue,
}

fn shape_value(s: &Option<Vec<i64>>) -> PyValue {
    match s {
        Some(dims) => PyValue::List(dims.iter().map(|&d| PyValue::Int(d)).collect()),
        None => PyValue::None,
    }
}

fn empty_shared(id: u32) -> PyValue {
    PyValue::Shared {
        id,
        value: Box::new(PyValue::List(Vec::new())),
    }
}

fn child_full_name(parent: &str, name: &str, depth: usize) -> String {
    if depth == 0 {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

impl Renderer<'_> {
    fn root(&mut self, arch: &Architecture, vanilla_ms: f64) -> PyValue {
        let ramps_total = self.ramp_ms.iter().fold(0.0, |acc, &o| acc + o);
        let (root_fwd, ty) = match self.mode {
            Mode::Vanilla => (vanilla_ms, arch.vanilla_type),
            Mode::EarlyExit => (vanilla_ms + ramps_total, arch.ee_type),
        };
        self.root_fwd = root_fwd;
        let m = &arch.root;
        let Body::Container(children) = &m.body else {
            unreachable!("every architecture's root is a container")
        };
        let rendered: Vec<Rendered> = children
            .iter()
            .map(|c| self.node(c, &c.name, "model", 1))
            .collect();
        // The root's vanilla time is the whole vanilla path, which ends exactly on V.
        let vanilla = rendered.last().map_or(vanilla_ms, |r| r.vanilla);
        let params: i64 = match self.mode {
            Mode::Vanilla => vanilla_params(m),
            Mode::EarlyExit => m_params_with_ramps(m),
        };
        let macs: i64 = match self.mode {
            Mode::Vanilla => vanilla_macs(m),
            Mode::EarlyExit => m_macs_with_ramps(m),
        };
        let attrs = Attrs {
            module: m,
            name: "model",
            ty,
            full_name: "model",
            depth: 0,
            fwd: PyValue::Float(root_fwd),
            fwd_orig: PyValue::Float(root_fwd),
            fwd_value: root_fwd,
            vanilla,
            ramps: empty_shared(SHARED_EMPTY_RAMPS),
            children: PyValue::List(rendered.into_iter().map(|r| r.value).collect()),
        };
        profile(&attrs, params, macs, self.root_fwd)
    }

    /// Renders `m` (named `name`, for the branched-module rename) under `parent_full`.
    fn node(&mut self, m: &Module, name: &str, parent_full: &str, depth: usize) -> Rendered {
        let full_name = child_full_name(parent_full, name, depth - 1);
        match &m.body {
            Body::Leaf { .. } => {
                let (fwd, vanilla) = self.timing.leaves[self.next_leaf];
                self.next_leaf += 1;
                let (fwd_v, fwd_orig_v, fwd_value) = match fwd {
                    Some(d) => (PyValue::Float(d), PyValue::Float(d / CALIBRATION), d),
                    None => (PyValue::Int(0), PyValue::Int(0), 0.0),
                };
                let attrs = Attrs {
                    module: m,
                    name,
                    ty: &m.ty,
                    full_name: &full_name,
                    depth,
                    fwd: fwd_v,
                    fwd_orig: fwd_orig_v,
                    fwd_value,
                    vanilla,
                    ramps: empty_shared(SHARED_EMPTY_RAMPS),
                    children: empty_shared(SHARED_EMPTY_CHILDREN),
                };
                Rendered {
                    value: profile(&attrs, m.params, m.macs, self.root_fwd),
                    fwd: fwd_value,
                    vanilla,
                }
            }
            Body::Container(children) => {
                let rendered: Vec<Rendered> = children
                    .iter()
                    .map(|c| self.node(c, &c.name, &full_name, depth + 1))
                    .collect();
                self.container(m, name, &m.ty, &full_name, depth, rendered)
            }
            Body::Site { r, module, ramp } => match self.mode {
                Mode::Vanilla => self.node(module, name, parent_full, depth),
                Mode::EarlyExit => {
                    let branched = self.node(module, "branched_module", &full_name, depth + 1);
                    let branch = self.ramp(ramp, *r, &full_name, depth + 1);
                    self.container(
                        m,
                        name,
                        "BranchPoint",
                        &full_name,
                        depth,
                        vec![branched, branch],
                    )
                }
            },
        }
    }

    fn container(
        &self,
        m: &Module,
        name: &str,
        ty: &str,
        full_name: &str,
        depth: usize,
        rendered: Vec<Rendered>,
    ) -> Rendered {
        let fwd = rendered.iter().fold(0.0, |acc, r| acc + r.fwd);
        let vanilla = rendered.last().map_or(0.0, |r| r.vanilla);
        let fwd_orig = if m.ty == "ModuleList" {
            PyValue::Int(0)
        } else {
            PyValue::Float(fwd / CALIBRATION)
        };
        let (params, macs) = match self.mode {
            Mode::Vanilla => (vanilla_params(m), vanilla_macs(m)),
            Mode::EarlyExit => (m_params_with_ramps(m), m_macs_with_ramps(m)),
        };
        let children = if rendered.is_empty() {
            empty_shared(SHARED_EMPTY_CHILDREN)
        } else {
            PyValue::List(rendered.into_iter().map(|r| r.value).collect())
        };
        let attrs = Attrs {
            module: m,
            name,
            ty,
            full_name,
            depth,
            fwd: PyValue::Float(fwd),
            fwd_orig,
            fwd_value: fwd,
            vanilla,
            ramps: empty_shared(SHARED_EMPTY_RAMPS),
            children,
        };
        Rendered {
            value: profile(&attrs, params, macs, self.root_fwd),
            fwd,
            vanilla,
        }
    }

    /// The ramp `branch_net` of site `r`: `fwd_latency = o_r`, vanilla time `v_r` throughout,
    /// the ramp latencies seen so far.
    fn ramp(&mut self, m: &Module, r: usize, parent_full: &str, depth: usize) -> Rendered {
        let o = self.ramp_ms[r];
        let v = self.vanilla_up_to[r];
        self.ramps_so_far.push(o);
        let full_name = format!("{parent_full}.branch_net");
        let Body::Container(children) = &m.body else {
            unreachable!("every ramp is a container")
        };
        let total: f64 = children
            .iter()
            .map(|c| match c.body {
                Body::Leaf { weight, .. } => weight,
                _ => weight::LINEAR,
            })
            .sum();
        let child_values: Vec<PyValue> = children
            .iter()
            .map(|c| self.ramp_part(c, &full_name, depth + 1, o, total, v))
            .collect();
        let attrs = Attrs {
            module: m,
            name: "branch_net",
            ty: &m.ty,
            full_name: &full_name,
            depth,
            fwd: PyValue::Float(o),
            fwd_orig: PyValue::Float(o / CALIBRATION),
            fwd_value: o,
            vanilla: v,
            ramps: PyValue::List(
                self.ramps_so_far
                    .iter()
                    .map(|&x| PyValue::Float(x))
                    .collect(),
            ),
            children: PyValue::List(child_values),
        };
        Rendered {
            value: profile(&attrs, m.params, m.macs, self.root_fwd),
            fwd: o,
            vanilla: v,
        }
    }

    /// A module inside a ramp: its share of the ramp's latency `o` by weight.
    fn ramp_part(
        &self,
        m: &Module,
        parent_full: &str,
        depth: usize,
        o: f64,
        total: f64,
        v: f64,
    ) -> PyValue {
        let full_name = format!("{parent_full}.{}", m.name);
        let (w, children) = match &m.body {
            Body::Leaf { weight, .. } => (*weight, empty_shared(SHARED_EMPTY_CHILDREN)),
            Body::Container(kids) => {
                let sub: f64 = kids
                    .iter()
                    .map(|c| match c.body {
                        Body::Leaf { weight, .. } => weight,
                        _ => weight::LINEAR,
                    })
                    .sum();
                let share = o * weight::LINEAR / total;
                let values = kids
                    .iter()
                    .map(|c| self.ramp_part(c, &full_name, depth + 1, share, sub, v))
                    .collect();
                (weight::LINEAR, PyValue::List(values))
            }
            Body::Site { .. } => unreachable!("ramps hold no sites"),
        };
        let (fwd, fwd_orig, fwd_value) = if w > 0.0 && total > 0.0 {
            let d = o * w / total;
            (PyValue::Float(d), PyValue::Float(d / CALIBRATION), d)
        } else {
            (PyValue::Int(0), PyValue::Int(0), 0.0)
        };
        let attrs = Attrs {
            module: m,
            name: &m.name,
            ty: &m.ty,
            full_name: &full_name,
            depth,
            fwd,
            fwd_orig,
            fwd_value,
            vanilla: v,
            ramps: empty_shared(SHARED_EMPTY_RAMPS),
            children,
        };
        profile(&attrs, m.params, m.macs, self.root_fwd)
    }
}

fn vanilla_params(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, .. } => vanilla_params(module),
        Body::Container(children) => children.iter().map(vanilla_params).sum(),
        Body::Leaf { .. } => m.params,
    }
}

fn vanilla_macs(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, .. } => vanilla_macs(module),
        Body::Container(children) => children.iter().map(vanilla_macs).sum(),
        Body::Leaf { .. } => m.macs,
    }
}

fn m_params_with_ramps(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, ramp, .. } => m_params_with_ramps(module) + ramp.params,
        Body::Container(children) => children.iter().map(m_params_with_ramps).sum(),
        Body::Leaf { .. } => m.params,
    }
}

fn m_macs_with_ramps(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, ramp, .. } => m_macs_with_ramps(module) + ramp.macs,
        Body::Container(children) => children.iter().map(m_macs_with_ramps).sum(),
        Body::Leaf { .. } => m.macs,
    }
}

/// One `profiler.Profile` instance, attributes in the artifact's order.
fn profile(a: &Attrs<'_>, params: i64, macs: i64, root_fwd: f64) -> PyValue {
    let leaf_bytes = |s: &Option<Vec<i64>>| match s {
        Some(_) => PyValue::Int(4),
        None => PyValue::None,
    };
    let pctg = if root_fwd != 0.0 {
        100.0 * a.fwd_value / root_fwd
    } else {
        0.0
    };
    let state = PyValue::str_dict(vec![
        ("name", PyValue::str(a.name)),
        ("full_name", PyValue::str(a.full_name)),
        ("type", PyValue::str(a.ty)),
        ("depth", PyValue::Int(a.depth as i64)),
        ("num_params", PyValue::Int(params)),
        ("num_params_pctg", PyValue::None),
        ("input_shape", shape_value(&a.module.input_shape)),
        ("output_shape", shape_value(&a.module.output_shape)),
        ("input_elem_bytes", leaf_bytes(&a.module.input_shape)),
        ("output_elem_bytes", leaf_bytes(&a.module.output_shape)),
        ("fwd_latency", a.fwd.clone()),
        ("fwd_latency_orig", a.fwd_orig.clone()),
        ("fwd_latency_pctg", PyValue::Float(pctg)),
        ("vanilla_latency_up_until_me", PyValue::Float(a.vanilla)),
        ("ramp_latencies_up_until_me", a.ramps.clone()),
        ("macs", PyValue::Int(macs)),
        ("macs_pctg", PyValue::None),
        ("fwd_flops", PyValue::Int(2 * macs)),
        ("fwd_flops_pctg", PyValue::None),
        ("children", a.children.clone()),
    ]);
    PyValue::Object {
        module: "profiler".into(),
        class: "Profile".into(),
        state: Box::new(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_known_configurations_and_fills_others_evenly() {
        assert_eq!(spread(16, &[3, 4, 6, 3]), vec![3, 4, 6, 3]);
        assert_eq!(spread(5, &[3, 4, 6, 3]), vec![1, 1, 2, 1]);
        assert_eq!(spread(2, &[2, 2, 2, 2]), vec![1, 1, 0, 0]);
    }
}
