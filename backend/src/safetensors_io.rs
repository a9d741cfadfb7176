//! Saving and loading modules as safetensors files with burn-store.
//!
//! MERGE: `backend/src/weights.rs` (the weights work) brings load/save helpers whose errors name
//! the file and the tensor; these two functions are swapped for them at merge.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::backend::Backend;

/// A safetensors file that cannot be written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum SafetensorsIoError {
    /// burn-store refused the file or the module (a missing or misshaped tensor, ...).
    #[error("{}: {problem}", path.display())]
    Store {
        /// The file.
        path: PathBuf,
        /// What burn-store said.
        problem: String,
    },
    /// Writing the file failed.
    #[error("{}: cannot write: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
}

/// Writes every tensor of `module` to `path` (atomically, through `apparate::safe_write`).
pub fn save_module<B: Backend, M: Module<B>>(
    module: &M,
    path: &Path,
) -> Result<(), SafetensorsIoError> {
    let store_err = |problem: String| SafetensorsIoError::Store {
        path: path.to_path_buf(),
        problem,
    };
    // One metadata entry: burn-store's default ones live in a HashMap whose order changes from
    // run to run, which would make the same weights give different bytes.
    let mut store = SafetensorsStore::from_bytes(None)
        .clear_metadata()
        .metadata("producer", crate::BACKEND_VERSION);
    module
        .save_into(&mut store)
        .map_err(|e| store_err(e.to_string()))?;
    let bytes = store.get_bytes().map_err(|e| store_err(e.to_string()))?;
    apparate::safe_write::write_bytes(path, apparate::safe_write::Durability::Sync, &bytes).map_err(
        |cause| SafetensorsIoError::Io {
            path: path.to_path_buf(),
            cause,
        },
    )
}

/// Loads `path` into `module` (shapes checked, every tensor of the module required).
pub fn load_module<B: Backend, M: Module<B>>(
    mut module: M,
    path: &Path,
) -> Result<M, SafetensorsIoError> {
    let mut store = SafetensorsStore::from_file(path);
    module
        .load_from(&mut store)
        .map_err(|e| SafetensorsIoError::Store {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
    Ok(module)
}
