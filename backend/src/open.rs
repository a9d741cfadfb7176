//! Opening what a command names: a model (by name, with optional weights) and a dataset in the
//! form the model reads.
//!
//! MERGE: the model registry (`models::registry::build`, `AnyModel`) replaces [`Model`] and the
//! name match in [`open_model`]; [`crate::safetensors_io`] gives way to `weights.rs`.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use crate::data::{self, DataError, ImageSpec};
use crate::infer::Samples;
use crate::models::tiny::{self, DigitsCnn};
use crate::models::{ModelInput, StagedModel};
use crate::safetensors_io::{load_module, SafetensorsIoError};

/// The models this build can open.
pub type Model<B> = DigitsCnn<B>;

/// A model or dataset that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// An unknown model name.
    #[error("unknown model {name:?}; this build knows: {known}")]
    UnknownModel {
        /// The name given.
        name: String,
        /// The names it knows.
        known: String,
    },
    /// Weights that do not load.
    #[error(transparent)]
    Weights(#[from] SafetensorsIoError),
    /// A dataset that does not load.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A text dataset for an NLP model, before the tokenizer is wired in.
    #[error("{}: text datasets need the tokenizer (tokenizer.json), which this build does not have yet", path.display())]
    NoTokenizer {
        /// The dataset.
        path: PathBuf,
    },
}

/// The model `name`, randomly initialised (seed the backend first for a reproducible one), or
/// with the weights of `weights`.
pub fn open_model<B: Backend>(
    name: &str,
    weights: Option<&Path>,
    device: &B::Device,
) -> Result<Model<B>, OpenError> {
    if name != tiny::NAME {
        return Err(OpenError::UnknownModel {
            name: name.to_string(),
            known: tiny::NAME.to_string(),
        });
    }
    let model = DigitsCnn::new(device);
    match weights {
        Some(path) => Ok(load_module(model, path)?),
        None => Ok(model),
    }
}

/// The image input of `model` (from its example input), or `None` for a text model.
pub fn image_spec<B: Backend, M: StagedModel<B>>(
    model: &M,
    device: &B::Device,
) -> Option<ImageSpec> {
    match model.example_input(1, 8, device) {
        ModelInput::Images(t) => {
            let [_, channels, height, width] = t.dims();
            Some(ImageSpec {
                channels,
                height,
                width,
            })
        }
        ModelInput::Tokens { .. } => None,
    }
}

/// The dataset `data` as `model` reads it: an image folder for CV models, a CSV / JSONL text
/// file for NLP ones; the image files in order (empty for text).
pub fn open_samples<B: Backend, M: StagedModel<B>>(
    model: &M,
    data: &Path,
    device: &B::Device,
) -> Result<(Samples, Vec<PathBuf>), OpenError> {
    match image_spec(model, device) {
        Some(spec) => {
            let files = data::list_images(data)?;
            let pixels = data::load_images(&files, &spec)?;
            Ok((Samples::Images { pixels, spec }, files))
        }
        None => {
            // HOOK: the tokenizer (backend/src/tokenizer.rs) turns these into Samples::Tokens
            // through data::TextEncoder.
            let _texts = data::read_texts(data)?;
            Err(OpenError::NoTokenizer {
                path: data.to_path_buf(),
            })
        }
    }
}
