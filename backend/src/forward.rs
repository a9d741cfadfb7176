//! One forward pass on a given input, for parity checks against PyTorch
//! (`scripts/gpu/validate.sh`): the input comes from a safetensors file, the logits go to JSON.
//!
//! Input file: a tensor `input` (f32, `[batch, channels, height, width]`) for CV models, or
//! `input_ids` (i64 or i32, `[batch, seq]`) with an optional `attention_mask` (same shape; all
//! ones when absent) for NLP models.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::models::{ModelInput, StagedModel};

/// Why the forward pass could not run.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The input file is unreadable or not what is expected.
    #[error("{}: {place}: {expected}", path.display())]
    Input {
        /// The file.
        path: PathBuf,
        /// The tensor or part concerned.
        place: String,
        /// What was expected (and found).
        expected: String,
    },
    /// An input the model cannot take (images for a text model, the wrong channel count, token
    /// ids it cannot embed).
    #[error("the input does not fit the model {model}: expected {expected}")]
    Mismatch {
        /// The model.
        model: String,
        /// What it takes.
        expected: String,
    },
    /// The logits could not be read back from the device.
    #[error("reading the logits back: {reason}")]
    Readback {
        /// What burn said.
        reason: String,
    },
}

/// Reads a model input from a safetensors file (layout in the module doc).
pub fn read_input<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<ModelInput<B>, ForwardError> {
    let err = |place: &str, expected: String| ForwardError::Input {
        path: path.to_path_buf(),
        place: place.to_string(),
        expected,
    };
    let bytes = std::fs::read(path).map_err(|e| err("file", format!("a readable file ({e})")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| err("file", format!("a safetensors file ({e})")))?;
    if let Ok(view) = st.tensor("input") {
        let shape = view.shape().to_vec();
        if view.dtype() != Dtype::F32 || shape.len() != 4 {
            return Err(err(
                "input",
                format!(
                    "f32 with 4 dimensions [batch, channels, height, width], found {:?} {:?}",
                    view.dtype(),
                    shape
                ),
            ));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let data = TensorData::new(values, shape);
        return Ok(ModelInput::Images(Tensor::<B, 4>::from_data(data, device)));
    }
    let ids = read_int(&st, "input_ids").map_err(|e| err("input_ids", e))?;
    let Some((ids, shape)) = ids else {
        return Err(err(
            "tensors",
            format!(
                "`input` (images) or `input_ids` (tokens), found {:?}",
                st.names()
            ),
        ));
    };
    let mask = match read_int(&st, "attention_mask").map_err(|e| err("attention_mask", e))? {
        Some((mask, mshape)) if mshape == shape => mask,
        Some((_, mshape)) => {
            return Err(err(
                "attention_mask",
                format!("the shape of input_ids {shape:?}, found {mshape:?}"),
            ))
        }
        None => vec![1; ids.len()],
    };
    Ok(ModelInput::Tokens {
        ids: Tensor::<B, 2, Int>::from_data(TensorData::new(ids, shape.clone()), device),
        mask: Tensor::<B, 2, Int>::from_data(TensorData::new(mask, shape), device),
    })
}

/// Integer values and their shape.
type IntTensor = (Vec<i64>, Vec<usize>);

/// An integer `[batch, seq]` tensor as i64 values, `None` when absent.
fn read_int(st: &SafeTensors<'_>, name: &str) -> Result<Option<IntTensor>, String> {
    let Ok(view) = st.tensor(name) else {
        return Ok(None);
    };
    let shape = view.shape().to_vec();
    if shape.len() != 2 {
        return Err(format!("2 dimensions [batch, seq], found {shape:?}"));
    }
    let values = match view.dtype() {
        Dtype::I64 => view
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        Dtype::I32 => view
            .data()
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        other => return Err(format!("i64 or i32, found {other:?}")),
    };
    Ok(Some((values, shape)))
}

/// Refuses an input the model cannot take, before running it: the kind (images or tokens) and,
/// for images, the channel count of the model's own example input; for tokens, negative ids.
pub fn check_fits<B: Backend, M: StagedModel<B>>(
    model: &M,
    input: &ModelInput<B>,
) -> Result<(), ForwardError> {
    let mismatch = |expected: String| ForwardError::Mismatch {
        model: model.name().to_string(),
        expected,
    };
    let device = match input {
        ModelInput::Images(x) => x.device(),
        ModelInput::Tokens { ids, .. } => ids.device(),
    };
    match (model.example_input(1, 1, &device), input) {
        (ModelInput::Images(want), ModelInput::Images(got)) => {
            let (want, got) = (want.dims(), got.dims());
            if want[1] != got[1] {
                return Err(mismatch(format!(
                    "images of {} channels, found {}",
                    want[1], got[1]
                )));
            }
        }
        (ModelInput::Tokens { .. }, ModelInput::Tokens { ids, .. }) => {
            let min = ids.clone().min().into_scalar().elem::<i64>();
            if min < 0 {
                return Err(mismatch(format!("token ids >= 0, found {min}")));
            }
        }
        (ModelInput::Images(_), ModelInput::Tokens { .. }) => {
            return Err(mismatch("images (`input`), found token ids".into()))
        }
        (ModelInput::Tokens { .. }, ModelInput::Images(_)) => {
            return Err(mismatch("token ids (`input_ids`), found images".into()))
        }
    }
    Ok(())
}

/// The model's final logits on `input`, one row per sample (stem, every segment, finish).
pub fn forward_logits<B: Backend, M: StagedModel<B>>(
    model: &M,
    input: ModelInput<B>,
) -> Result<Vec<Vec<f32>>, ForwardError> {
    check_fits(model, &input)?;
    let mut x = model.stem(input);
    for i in 0..model.num_sites() {
        x = model.segment(i, x);
    }
    let logits = model.finish(x);
    let [_, classes] = logits.dims();
    let values: Vec<f32> = logits
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| ForwardError::Readback {
            reason: format!("{e:?}"),
        })?;
    Ok(values.chunks(classes.max(1)).map(<[f32]>::to_vec).collect())
}
