//! Hugging Face checkpoints (safetensors) for the NLP models, through burn-store.
//!
//! Loading first reads the file's header and compares it with the tensors the model has (in
//! Hugging Face names and layouts), so that every problem is reported with the file and the
//! tensor: a missing tensor, an unexpected one, or a wrong shape. Only then are the tensors
//! applied (burn-store's `PyTorchToBurnAdapter` transposes `Linear` weights and maps a layer
//! norm's `weight`/`bias` to `gamma`/`beta`; a key remapper maps the few names that differ).
//! Checkpoints of the bare encoder (`BertModel`, `GPT2Model`: no `bert.` / `transformer.`
//! prefix, no classifier) load too: the prefix is added, and with
//! [`LoadOptions::allow_missing_head`] the task head keeps its initial values. Buffers that
//! Hugging Face saves beside the parameters (`position_ids`, GPT-2's `attn.bias`) are ignored.
//!
//! Saving writes the same layout (Hugging Face names, PyTorch layouts), so a saved model loads
//! back into ours, and into `transformers`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::backend::Backend;
use serde::de::DeserializeOwned;

use super::bert::{Bert, DistilBert};
use super::gpt2::Gpt2;

/// Why a checkpoint or config could not be read, written or applied. Every variant names the
/// file.
#[derive(Debug, thiserror::Error)]
pub enum HfError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not what was expected (a safetensors header, a JSON config).
    #[error("{}: {what}: expected {expected}", file.display())]
    Format {
        /// The file.
        file: PathBuf,
        /// What was wrong, and where.
        what: String,
        /// What was expected there.
        expected: String,
    },
    /// The model has a parameter the checkpoint lacks.
    #[error("{}: tensor `{tensor}` is missing (the model needs it, shape {expected:?})", file.display())]
    Missing {
        /// The checkpoint.
        file: PathBuf,
        /// Its Hugging Face name.
        tensor: String,
        /// The shape the model expects (PyTorch layout).
        expected: Vec<usize>,
    },
    /// The checkpoint has a tensor the model has no place for.
    #[error("{}: unexpected tensor `{tensor}` (shape {shape:?}): expected only the tensors of {model}", file.display())]
    Unexpected {
        /// The checkpoint.
        file: PathBuf,
        /// Its name in the file.
        tensor: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The model it was loaded into.
        model: String,
    },
    /// A tensor's shape differs from the model's.
    #[error("{}: tensor `{tensor}` has shape {found:?}, expected {expected:?}", file.display())]
    Shape {
        /// The checkpoint.
        file: PathBuf,
        /// Its name in the file.
        tensor: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The shape the model expects (PyTorch layout).
        expected: Vec<usize>,
    },
    /// burn-store failed to read, apply or write the tensors.
    #[error("{}: {message}", file.display())]
    Store {
        /// The file.
        file: PathBuf,
        /// burn-store's message.
        message: String,
    },
}

/// How a model's module paths differ from Hugging Face's names.
#[derive(Clone, Debug)]
pub struct HfNaming {
    /// The encoder's prefix in a task checkpoint (`bert`, `distilbert`, `transformer`).
    pub prefix: &'static str,
    /// The encoder's top-level names, which a bare-encoder checkpoint has without the prefix.
    pub roots: &'static [&'static str],
    /// Path segments named differently: (Hugging Face, ours).
    pub renames: &'static [(&'static str, &'static str)],
    /// Name endings (whole path segments) of buffers Hugging Face saves beside the parameters
    /// (ignored on load).
    pub buffers: &'static [&'static str],
    /// Name prefixes of the task head (kept at their initial values when a checkpoint lacks them
    /// and [`LoadOptions::allow_missing_head`] is set).
    pub head: &'static [&'static str],
}

/// A model whose module paths are Hugging Face's names up to [`HfNaming`].
pub trait HfModel<B: Backend>: ModuleSnapshot<B> + Sized {
    /// The naming rules.
    fn hf_naming(&self) -> HfNaming;
    /// The model's name (for messages).
    fn hf_model_name(&self) -> String;
}

impl<B: Backend> HfModel<B> for Bert<B> {
    fn hf_naming(&self) -> HfNaming {
        HfNaming {
            prefix: "bert",
            roots: &["embeddings", "encoder", "pooler"],
            renames: &[("LayerNorm", "layer_norm"), ("self", "self_attn")],
            buffers: &["position_ids"],
            head: &["classifier.", "bert.pooler."],
        }
    }
    fn hf_model_name(&self) -> String {
        self.name.clone()
    }
}

impl<B: Backend> HfModel<B> for DistilBert<B> {
    fn hf_naming(&self) -> HfNaming {
        HfNaming {
            prefix: "distilbert",
            roots: &["embeddings", "transformer"],
            renames: &[("LayerNorm", "layer_norm")],
            buffers: &["position_ids"],
            head: &["pre_classifier.", "classifier."],
        }
    }
    fn hf_model_name(&self) -> String {
        self.name.clone()
    }
}

impl<B: Backend> HfModel<B> for Gpt2<B> {
    fn hf_naming(&self) -> HfNaming {
        HfNaming {
            prefix: "transformer",
            roots: &["wte", "wpe", "h", "ln_f"],
            renames: &[],
            buffers: &["attn.bias", "attn.masked_bias"],
            head: &["score."],
        }
    }
    fn hf_model_name(&self) -> String {
        self.name.clone()
    }
}

/// Loading options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Accept a checkpoint without the task head (a bare encoder): the head keeps its initial
    /// values and is listed in [`LoadReport::left_at_init`].
    pub allow_missing_head: bool,
}

/// What a load did besides applying tensors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors applied.
    pub applied: usize,
    /// Head tensors the checkpoint lacked (Hugging Face names), left at their initial values.
    pub left_at_init: Vec<String>,
    /// Buffers in the file that were ignored.
    pub ignored: Vec<String>,
}

/// The tensors of a safetensors file: name to shape (the header only; no data is read).
pub fn read_header(file: &Path) -> Result<BTreeMap<String, Vec<usize>>, HfError> {
    let read = |source| HfError::Read {
        file: file.to_path_buf(),
        source,
    };
    let format = |what: &str, expected: &str| HfError::Format {
        file: file.to_path_buf(),
        what: what.to_string(),
        expected: expected.to_string(),
    };
    let mut f = File::open(file).map_err(read)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|_| format("shorter than 8 bytes", "a safetensors file (header length)"))?;
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 {
        return Err(format(
            &format!("header length {len}"),
            "a safetensors header under 100 MB",
        ));
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header).map_err(|_| {
        format(
            "the file ends inside its header",
            "a complete safetensors header",
        )
    })?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| format(&format!("header: {e}"), "a JSON object"))?;
    let mut tensors = BTreeMap::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            continue;
        }
        let shape = entry
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| {
                format(
                    &format!("header entry `{name}`"),
                    "a `shape` array of non-negative integers",
                )
            })?;
        tensors.insert(name, shape);
    }
    Ok(tensors)
}

/// A model config read from Hugging Face's `config.json`, with what our implementation supports.
pub trait HfConfig: DeserializeOwned {
    /// The first unsupported setting: (field, expected, found).
    fn unsupported(&self) -> Option<(&'static str, String, String)>;
}

fn check_heads(hidden: usize, heads: usize) -> Option<(&'static str, String, String)> {
    (heads == 0 || !hidden.is_multiple_of(heads)).then(|| {
        (
            "attention heads",
            format!("a divisor of the hidden size {hidden}"),
            heads.to_string(),
        )
    })
}

impl HfConfig for super::bert::BertConfig {
    fn unsupported(&self) -> Option<(&'static str, String, String)> {
        if self.hidden_act != "gelu" {
            return Some((
                "hidden_act",
                "\"gelu\"".into(),
                format!("{:?}", self.hidden_act),
            ));
        }
        check_heads(self.hidden_size, self.num_attention_heads)
    }
}

impl HfConfig for super::bert::DistilBertConfig {
    fn unsupported(&self) -> Option<(&'static str, String, String)> {
        if self.activation != "gelu" {
            return Some((
                "activation",
                "\"gelu\"".into(),
                format!("{:?}", self.activation),
            ));
        }
        check_heads(self.dim, self.n_heads)
    }
}

impl HfConfig for super::gpt2::Gpt2Config {
    fn unsupported(&self) -> Option<(&'static str, String, String)> {
        if self.activation_function != "gelu_new" {
            return Some((
                "activation_function",
                "\"gelu_new\"".into(),
                format!("{:?}", self.activation_function),
            ));
        }
        check_heads(self.n_embd, self.n_head)
    }
}

/// A Hugging Face `config.json` into `T`, refusing settings our models do not implement.
pub fn read_config<T: HfConfig>(file: &Path) -> Result<T, HfError> {
    let text = std::fs::read_to_string(file).map_err(|source| HfError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| HfError::Format {
            file: file.to_path_buf(),
            what: format!("line {}, column {}: {e}", e.line(), e.column()),
            expected: format!(
                "a Hugging Face config with the fields of {}",
                short_type::<T>()
            ),
        })
        .and_then(|config: T| match config.unsupported() {
            None => Ok(config),
            Some((field, expected, found)) => Err(HfError::Format {
                file: file.to_path_buf(),
                what: format!("`{field}` is {found}"),
                expected,
            }),
        })
}

fn short_type<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Our module path to the Hugging Face name.
fn to_hf(path: &str, naming: &HfNaming) -> String {
    let mut name = format!(".{path}.");
    for (hf, ours) in naming.renames {
        name = name.replace(&format!(".{ours}."), &format!(".{hf}."));
    }
    name.trim_matches('.').to_string()
}

/// The model's tensors in Hugging Face names and PyTorch layouts: name to shape.
pub fn expected_tensors<B: Backend, M: HfModel<B>>(model: &M) -> BTreeMap<String, Vec<usize>> {
    let naming = model.hf_naming();
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), false)
        .into_iter()
        .map(|s| (to_hf(&s.full_path(), &naming), s.shape.to_vec()))
        .collect()
}

/// Loads the checkpoint `file` into `model`, checking every tensor first.
pub fn load_hf<B: Backend, M: HfModel<B>>(
    model: &mut M,
    file: &Path,
    opts: LoadOptions,
) -> Result<LoadReport, HfError> {
    let naming = model.hf_naming();
    let header = read_header(file)?;
    let expected = expected_tensors(model);
    let prefixed = format!("{}.", naming.prefix);
    let bare = !header.keys().any(|k| k.starts_with(&prefixed));
    let mut report = LoadReport::default();
    // The file's names as the model's Hugging Face names.
    let mut found = BTreeMap::new();
    for (name, shape) in &header {
        let is_buffer = |b: &&str| name == b || name.ends_with(&format!(".{b}"));
        if naming.buffers.iter().any(is_buffer) {
            report.ignored.push(name.clone());
            continue;
        }
        let root = name.split('.').next().unwrap_or_default();
        let full = if bare && naming.roots.contains(&root) {
            format!("{prefixed}{name}")
        } else {
            name.clone()
        };
        let Some(want) = expected.get(&full) else {
            return Err(HfError::Unexpected {
                file: file.to_path_buf(),
                tensor: name.clone(),
                shape: shape.clone(),
                model: model.hf_model_name(),
            });
        };
        if want != shape {
            return Err(HfError::Shape {
                file: file.to_path_buf(),
                tensor: name.clone(),
                found: shape.clone(),
                expected: want.clone(),
            });
        }
        found.insert(full, name.clone());
    }
    for (name, shape) in &expected {
        if found.contains_key(name) {
            continue;
        }
        let in_head = naming.head.iter().any(|h| name.starts_with(h));
        if opts.allow_missing_head && in_head {
            report.left_at_init.push(name.clone());
        } else {
            // Name it as the file would (without the prefix in a bare checkpoint).
            let tensor = match name.strip_prefix(&prefixed) {
                Some(rest) if bare => rest.to_string(),
                _ => name.clone(),
            };
            return Err(HfError::Missing {
                file: file.to_path_buf(),
                tensor,
                expected: shape.clone(),
            });
        }
    }

    let store_err = |message: String| HfError::Store {
        file: file.to_path_buf(),
        message,
    };
    let mut patterns: Vec<(String, String)> = Vec::new();
    if bare {
        patterns.push((
            format!("^({})\\.", naming.roots.join("|")),
            format!("{}.$1.", naming.prefix),
        ));
    }
    for (hf, ours) in naming.renames {
        patterns.push((format!("\\.{hf}\\."), format!(".{ours}.")));
    }
    let remapper = KeyRemapper::from_patterns(patterns).map_err(|e| store_err(e.to_string()))?;
    let mut store = SafetensorsStore::from_file(file)
        .with_from_adapter(PyTorchToBurnAdapter)
        .remap(remapper)
        .allow_partial(true)
        .validate(true);
    let result = model
        .load_from(&mut store)
        .map_err(|e| store_err(e.to_string()))?;
    if let Some(e) = result.errors.first() {
        return Err(store_err(e.to_string()));
    }
    report.applied = result.applied.len();
    Ok(report)
}

/// Saves `model` to `file` in Hugging Face names and PyTorch layouts (overwriting it).
pub fn save_hf<B: Backend, M: HfModel<B>>(model: &M, file: &Path) -> Result<(), HfError> {
    let naming = model.hf_naming();
    let store_err = |message: String| HfError::Store {
        file: file.to_path_buf(),
        message,
    };
    let patterns: Vec<(String, String)> = naming
        .renames
        .iter()
        .map(|(hf, ours)| (format!("\\.{ours}\\."), format!(".{hf}.")))
        .collect();
    let remapper = KeyRemapper::from_patterns(patterns).map_err(|e| store_err(e.to_string()))?;
    let mut store = SafetensorsStore::from_file(file)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(remapper)
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| store_err(e.to_string()))
}
