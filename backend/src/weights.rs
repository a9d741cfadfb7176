//! Checkpoints: load a model's (or a ramp set's) weights from a file the user gives, and save any
//! module.
//!
//! One layout for everything: PyTorch's. Tensor names are the PyTorch module paths (torchvision's
//! `layer1.0.conv1.weight`, `features.0.bias`, `fc.weight`; Hugging Face's for the NLP models),
//! linear weights are `[out, in]` and batch norms hold `weight`/`bias`/`running_mean`/
//! `running_var`. burn-store's PyTorch adapters translate on the way in and out (burn's linear
//! weights are `[in, out]`, its batch norms `gamma`/`beta`), and enum variant names (used by the
//! models to give `Sequential`-style indices) are skipped. So a torchvision checkpoint loads as it
//! is, and what [`save`] writes loads back with [`load`] (and into PyTorch).
//!
//! Formats: safetensors, and PyTorch's `torch.save` zip checkpoints (`.pt`, `.pth`, `.bin`,
//! `.ckpt`: a state dict, or a dict holding one under `state_dict` or `model`), read by
//! [`crate::torch_pt`] rather than burn-store's `pytorch` feature (which pulls `zip` 8 with C
//! compression libraries and rebuilds burn).
//!
//! Every tensor is checked before anything is applied: a tensor the model needs and the file
//! lacks, a tensor in the file the model has no place for, and a shape that differs are errors
//! naming the file and the tensor (PyTorch names and layouts). Batch-norm `num_batches_tracked`
//! counters (PyTorch bookkeeping that inference never reads) and any names given in
//! [`LoadOptions::ignore`] are not "unexpected". Half and double precision tensors are converted
//! to `f32`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::module::Module;
use burn::store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, SafetensorsStore, TensorSnapshot,
};
use burn::tensor::backend::Backend;
use burn::tensor::DType;

use crate::torch_pt;

/// Names ending so are ignored when the model has no place for them.
const ALWAYS_IGNORED: &[&str] = &["num_batches_tracked"];

/// Why a checkpoint could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be opened or parsed.
    #[error("{}: cannot read the checkpoint: {reason}", file.display())]
    Unreadable {
        /// The checkpoint.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Not a format this build reads.
    #[error("{}: {reason}", file.display())]
    UnsupportedFormat {
        /// The checkpoint.
        file: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// The model needs a tensor the file lacks.
    #[error("{}: tensor `{tensor}` is missing{}", file.display(), more_note(*more, "missing"))]
    MissingTensor {
        /// The checkpoint.
        file: PathBuf,
        /// The first missing tensor (PyTorch name).
        tensor: String,
        /// How many more are missing.
        more: usize,
    },
    /// The file holds a tensor the model has no place for.
    #[error("{}: unexpected tensor `{tensor}` (the model has no such parameter){}", file.display(), more_note(*more, "unexpected"))]
    UnexpectedTensor {
        /// The checkpoint.
        file: PathBuf,
        /// The first unexpected tensor.
        tensor: String,
        /// How many more are unexpected.
        more: usize,
    },
    /// A tensor's shape differs from the model's.
    #[error("{}: tensor `{tensor}` has shape {found:?}, expected {expected:?}{}", file.display(), more_note(*more, "misshaped"))]
    WrongShape {
        /// The checkpoint.
        file: PathBuf,
        /// The tensor (PyTorch name).
        tensor: String,
        /// The model's shape (PyTorch layout).
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
        /// How many more are misshaped.
        more: usize,
    },
    /// A tensor is not a floating-point tensor where the model has a float parameter.
    #[error("{}: tensor `{tensor}` has dtype {found}, expected a float tensor", file.display())]
    WrongDtype {
        /// The checkpoint.
        file: PathBuf,
        /// The tensor.
        tensor: String,
        /// The file's dtype.
        found: String,
    },
    /// The store refused a tensor while applying (after the checks above passed).
    #[error("{}: cannot apply the weights: {reason}", file.display())]
    Apply {
        /// The checkpoint.
        file: PathBuf,
        /// What the store said.
        reason: String,
    },
    /// A remapping pattern is not a valid regular expression.
    #[error("bad key remapping `{pattern}`: {reason}")]
    BadRemap {
        /// The pattern.
        pattern: String,
        /// The regex error.
        reason: String,
    },
    /// The file could not be written.
    #[error("{}: cannot write the checkpoint: {reason}", file.display())]
    Write {
        /// The destination.
        file: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

fn more_note(more: usize, what: &str) -> String {
    if more == 0 {
        String::new()
    } else {
        format!(" ({more} more {what})")
    }
}

/// How to read a checkpoint whose names differ from the model's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Regex renames applied to the file's names before matching (`("^bert\\.", "")` drops a
    /// prefix), in order.
    pub remap: Vec<(String, String)>,
    /// Name suffixes to ignore when the model has no place for them (beyond
    /// `num_batches_tracked`), e.g. `embeddings.position_ids`.
    pub ignore: Vec<String>,
}

/// Converts half and double precision tensors to `f32` (the models' dtype).
#[derive(Clone, Debug, Default)]
struct ToF32Adapter;

impl ModuleAdapter for ToF32Adapter {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        if !matches!(snapshot.dtype, DType::F16 | DType::BF16 | DType::F64) {
            return snapshot.clone();
        }
        let data_fn = snapshot.clone_data_fn();
        TensorSnapshot::from_closure(
            Rc::new(move || Ok(data_fn()?.convert_dtype(DType::F32))),
            DType::F32,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// A checkpoint's format, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Safetensors,
    Torch,
}

/// The checkpoint format, from the file's extension.
fn check_format(path: &Path) -> Result<Format, WeightsError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("safetensors") => Ok(Format::Safetensors),
        Some("pt" | "pth" | "bin" | "ckpt") => Ok(Format::Torch),
        _ => Err(WeightsError::UnsupportedFormat {
            file: path.to_path_buf(),
            reason: "expected a `.safetensors` or a PyTorch (`.pt`, `.pth`, `.bin`, `.ckpt`) \
                     checkpoint"
                .to_string(),
        }),
    }
}

/// A store over the checkpoint: the file itself (safetensors), or a PyTorch checkpoint's state
/// dict re-encoded as safetensors in memory.
fn open_store(path: &Path) -> Result<SafetensorsStore, WeightsError> {
    match check_format(path)? {
        Format::Safetensors => Ok(SafetensorsStore::from_file(path)),
        Format::Torch => {
            let unreadable = |reason: String| WeightsError::Unreadable {
                file: path.to_path_buf(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
            let tensors = torch_pt::read(&bytes).map_err(unreadable)?;
            let st = torch_pt::to_safetensors(&tensors).map_err(unreadable)?;
            Ok(SafetensorsStore::from_bytes(Some(st)))
        }
    }
}

/// The tensors a checkpoint for `module` must hold: PyTorch names and shapes (PyTorch layouts),
/// sorted by name. Materialises the module's lazily initialised parameters.
pub fn expected_tensors<B: Backend, M: Module<B>>(module: &M) -> BTreeMap<String, Vec<usize>> {
    module
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|s| (s.full_path(), s.shape.to_vec()))
        .collect()
}

/// Loads the weights in `path` (PyTorch names and layouts, see the module documentation) into
/// `module`, with no renaming.
pub fn load<B: Backend, M: Module<B>>(module: M, path: &Path) -> Result<M, WeightsError> {
    load_with(module, path, &LoadOptions::default())
}

/// [`load`] with renames and ignored names.
pub fn load_with<B: Backend, M: Module<B>>(
    mut module: M,
    path: &Path,
    opts: &LoadOptions,
) -> Result<M, WeightsError> {
    let file = path.to_path_buf();
    let mut remapper = KeyRemapper::new();
    for (from, to) in &opts.remap {
        remapper = remapper
            .add_pattern(from, to)
            .map_err(|e| WeightsError::BadRemap {
                pattern: from.clone(),
                reason: e.to_string(),
            })?;
    }
    let mut store = open_store(path)?
        .remap(remapper)
        .skip_enum_variants(true)
        .allow_partial(true)
        .validate(false)
        .with_from_adapter(PyTorchToBurnAdapter.chain(ToF32Adapter));
    let found: BTreeMap<String, (Vec<usize>, DType)> = match store.get_all_snapshots() {
        Ok(all) => all
            .iter()
            .map(|(k, s)| (k.clone(), (s.shape.to_vec(), s.dtype)))
            .collect(),
        Err(e) => {
            return Err(WeightsError::Unreadable {
                file,
                reason: e.to_string(),
            })
        }
    };
    let expected = expected_tensors(&module);

    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !found.contains_key(*k))
        .collect();
    if let Some(first) = missing.first() {
        return Err(WeightsError::MissingTensor {
            file,
            tensor: (*first).clone(),
            more: missing.len() - 1,
        });
    }
    let ignored = |k: &str| {
        ALWAYS_IGNORED.iter().any(|s| k.ends_with(s)) || opts.ignore.iter().any(|s| k.ends_with(s))
    };
    let unexpected: Vec<&String> = found
        .keys()
        .filter(|k| !expected.contains_key(*k) && !ignored(k))
        .collect();
    if let Some(first) = unexpected.first() {
        return Err(WeightsError::UnexpectedTensor {
            file,
            tensor: (*first).clone(),
            more: unexpected.len() - 1,
        });
    }
    let mut misshaped = expected
        .iter()
        .filter_map(|(k, shape)| {
            let (fshape, _) = found.get(k)?;
            (fshape != shape).then(|| (k.clone(), shape.clone(), fshape.clone()))
        })
        .collect::<Vec<_>>();
    if !misshaped.is_empty() {
        let more = misshaped.len() - 1;
        let (tensor, expected, found) = misshaped.swap_remove(0);
        return Err(WeightsError::WrongShape {
            file,
            tensor,
            expected,
            found,
            more,
        });
    }
    for k in expected.keys() {
        if let Some((_, dtype)) = found.get(k) {
            if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64) {
                return Err(WeightsError::WrongDtype {
                    file,
                    tensor: k.clone(),
                    found: format!("{dtype:?}"),
                });
            }
        }
    }

    let result = module
        .load_from(&mut store)
        .map_err(|e| WeightsError::Apply {
            file: file.clone(),
            reason: e.to_string(),
        })?;
    if let Some(e) = result.errors.first() {
        return Err(WeightsError::Apply {
            file,
            reason: e.to_string(),
        });
    }
    if let Some((tensor, _)) = result.missing.first() {
        return Err(WeightsError::MissingTensor {
            file,
            tensor: tensor.clone(),
            more: result.missing.len() - 1,
        });
    }
    Ok(module)
}

/// Saves `module`'s weights to `path` as safetensors in PyTorch's names and layouts (see the
/// module documentation), replacing the file if it exists. [`load`] reads it back.
pub fn save<B: Backend, M: Module<B>>(module: &M, path: &Path) -> Result<(), WeightsError> {
    let write_err = |reason: String| WeightsError::Write {
        file: path.to_path_buf(),
        reason,
    };
    // One metadata entry: burn-store's default ones live in a HashMap whose order changes from
    // run to run, which would make the same weights give different bytes. Written atomically
    // (a temporary file renamed into place; a link at `path` is replaced, never followed).
    let mut store = SafetensorsStore::from_bytes(None)
        .clear_metadata()
        .metadata("producer", crate::BACKEND_VERSION)
        .skip_enum_variants(true)
        .with_to_adapter(BurnToPyTorchAdapter);
    module
        .save_into(&mut store)
        .map_err(|e| write_err(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| write_err(e.to_string()))?;
    apparate::safe_write::write_bytes(path, apparate::safe_write::Durability::Sync, &bytes)
        .map_err(|e| write_err(e.to_string()))
}

/// The tensors in a checkpoint (name, PyTorch shape), sorted by name, as `ee-backend`
/// and the tests inspect them.
pub fn list_tensors(path: &Path) -> Result<Vec<(String, Vec<usize>)>, WeightsError> {
    let mut store = open_store(path)?;
    let all = store
        .get_all_snapshots()
        .map_err(|e| WeightsError::Unreadable {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(all
        .iter()
        .map(|(k, s)| (k.clone(), s.shape.to_vec()))
        .collect())
}
