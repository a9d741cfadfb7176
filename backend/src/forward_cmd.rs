//! `ee-backend forward`: one forward pass of a model on an input from a safetensors file, the
//! logits written as JSON (`scripts/gpu/validate.sh` compares them with PyTorch's).

use std::path::PathBuf;

use anyhow::{bail, Result};
use backend::device::{select, DeviceChoice};
use backend::models::ModelInput;

/// `ee-backend forward` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model (the artifact's name).
    #[arg(long)]
    model: String,
    /// Weights (safetensors with torchvision / Hugging Face names).
    #[arg(long)]
    weights: PathBuf,
    /// The input: `input` (f32 images) or `input_ids` (+ `attention_mask`) in a safetensors file.
    #[arg(long)]
    input: PathBuf,
    /// Output classes of the final head and the ramps (the model's default when absent:
    /// 1000 for the CV models, 2 labels for the NLP ones).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// The JSON file to write (`{model, device, logits: [[...], ...]}`).
    #[arg(long)]
    out: PathBuf,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    let selected = select(args.device)?;
    // The input is read (and checked) on the selected backend first.
    let shape = backend::with_backend!(&selected, B, device, {
        match backend::forward::read_input::<B>(&args.input, &device)? {
            ModelInput::Images(x) => format!("images {:?}", x.dims()),
            ModelInput::Tokens { ids, .. } => format!("tokens {:?}", ids.dims()),
        }
    });
    tracing::info!(input = %args.input.display(), "{shape}");
    // MERGE (models registry + weights): build, load, run, write:
    //   backend::with_backend!(&selected, B, device, {
    //       let model = backend::models::registry::build::<B>(&args.model, args.num_classes, &device)?;
    //       (load args.weights into model)
    //       let input = backend::forward::read_input::<B>(&args.input, &device)?;   (as above)
    //       let logits = backend::forward::forward_logits(&model, input)?;
    //       write {model, device: selected.describe(), logits} to args.out
    //   })
    bail!(
        "--model {}: this build has no model registry yet (it lands with the models work); \
         device {} was usable",
        args.model,
        selected.describe()
    )
}
