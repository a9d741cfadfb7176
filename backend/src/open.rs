//! Opening what a command names: a model (by name, with optional weights) and a dataset in the
//! form the model reads.
//! Models come from the registry ([`crate::models::registry`]); text datasets are tokenized with
//! the `tokenizer.json` beside the data file (or beside the weights).

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use crate::data::{self, DataError, ImageSpec};
use crate::infer::Samples;
use crate::models::registry::{self, AnyModel, LoadError, ModelError};
use crate::models::{ModelInput, StagedModel};
use crate::tokenizer::{Tokenizer, TokenizerError};

/// The models this build can open.
pub type Model<B> = AnyModel<B>;

/// The number of classes of models opened without weights that say otherwise: the paper's
/// binary tasks (traffic videos: car or not; reviews: positive or negative).
pub const DEFAULT_CLASSES: usize = 2;

/// A model or dataset that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// An unknown model name.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Weights that do not load.
    #[error(transparent)]
    Weights(#[from] LoadError),
    /// A tokenizer that does not load or encode.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// A dataset that does not load.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Token ids the model cannot embed.
    #[error("{}: {reason}", path.display())]
    Tokens {
        /// The tokenizer.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A text dataset without a tokenizer.
    #[error("{}: a text dataset needs a tokenizer.json beside it (or beside the weights); none found", path.display())]
    NoTokenizer {
        /// The dataset.
        path: PathBuf,
    },
}

/// The model `name`, randomly initialised (seed the backend first for a reproducible one), or
/// with the weights of `weights`; its number of classes read from the weights' final head, else
/// [`DEFAULT_CLASSES`].
pub fn open_model<B: Backend>(
    name: &str,
    weights: Option<&Path>,
    device: &B::Device,
) -> Result<Model<B>, OpenError> {
    open_model_with(name, weights, None, device)
}

/// [`open_model`] with the number of classes given (`None`: from the weights, else
/// [`DEFAULT_CLASSES`]).
pub fn open_model_with<B: Backend>(
    name: &str,
    weights: Option<&Path>,
    classes: Option<usize>,
    device: &B::Device,
) -> Result<Model<B>, OpenError> {
    let classes = match (classes, weights) {
        (Some(c), _) => c,
        (None, Some(path)) => head_classes(path)?.unwrap_or(DEFAULT_CLASSES),
        (None, None) => DEFAULT_CLASSES,
    };
    let model = registry::build::<B>(name, classes, device)?;
    match weights {
        Some(path) => Ok(model.with_weights(path)?),
        None => Ok(model),
    }
}

/// The final head's output count in a checkpoint: the first dimension of torchvision's
/// `fc.weight` / `classifier.6.weight` or Hugging Face's `classifier.weight` / `score.weight`;
/// `None` when it has no such tensor (a bare encoder).
pub fn head_classes(path: &Path) -> Result<Option<usize>, OpenError> {
    const HEADS: [&str; 4] = [
        "fc.weight",
        "classifier.6.weight",
        "classifier.weight",
        "score.weight",
    ];
    let tensors = crate::weights::list_tensors(path).map_err(LoadError::from)?;
    Ok(HEADS.iter().find_map(|head| {
        tensors
            .iter()
            .find(|(name, _)| name == head)
            .and_then(|(_, shape)| shape.first().copied())
    }))
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

/// Tokens per text sample (the artifact pads BERT inputs to 128).
pub const DEFAULT_SEQ_LEN: usize = 128;

/// The dataset `data` as `model` reads it: an image folder for CV models, a CSV / JSONL text
/// file for NLP ones (tokenized to `seq_len` with the `tokenizer.json` beside `data`, else beside
/// `weights`); the image files in order (empty for text).
pub fn open_samples<B: Backend>(
    model: &AnyModel<B>,
    data: &Path,
    weights: Option<&Path>,
    seq_len: usize,
    device: &B::Device,
) -> Result<(Samples, Vec<PathBuf>), OpenError> {
    match image_spec(model, device) {
        Some(spec) => {
            let files = data::list_images(data)?;
            let pixels = data::load_images(&files, &spec)?;
            Ok((Samples::Images { pixels, spec }, files))
        }
        None => {
            let texts = data::read_texts(data)?;
            let beside = |p: &Path| p.parent().map(|d| d.join("tokenizer.json"));
            let tokenizer_file = [Some(data), weights]
                .into_iter()
                .flatten()
                .filter_map(beside)
                .find(|f| f.is_file())
                .ok_or_else(|| OpenError::NoTokenizer {
                    path: data.to_path_buf(),
                })?;
            let tokenizer = Tokenizer::from_file(&tokenizer_file)?;
            if let AnyModel::Nlp(m) = model {
                m.check_tokens(seq_len, tokenizer.vocab_size())
                    .map_err(|e| OpenError::Tokens {
                        path: tokenizer_file.clone(),
                        reason: e.to_string(),
                    })?;
            }
            let mut ids = Vec::with_capacity(texts.len() * seq_len);
            let mut mask = Vec::with_capacity(texts.len() * seq_len);
            for text in &texts {
                let enc = tokenizer.encode(text, seq_len)?;
                ids.extend(enc.ids);
                mask.extend(enc.mask);
            }
            Ok((Samples::Tokens { ids, mask, seq_len }, Vec::new()))
        }
    }
}
