//! `ee-backend forward`: one forward pass of a model on an input from a safetensors file, the
//! logits written as JSON (`scripts/gpu/validate.sh` compares them with PyTorch's).

use std::path::PathBuf;

use anyhow::{Context, Result};
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
    let logits = backend::with_backend!(&selected, B, device, {
        let model = backend::open::open_model_with::<B>(
            &args.model,
            Some(&args.weights),
            args.num_classes,
            &device,
        )?;
        let input = backend::forward::read_input::<B>(&args.input, &device)?;
        if let (backend::models::AnyModel::Nlp(m), ModelInput::Tokens { ids, .. }) =
            (&model, &input)
        {
            // Ids past the vocabulary or sequences past the position table cannot be embedded.
            use burn::tensor::ElementConversion;
            let [_, seq] = ids.dims();
            let max = ids.clone().max().into_scalar().elem::<i64>();
            let vocab = usize::try_from(max).unwrap_or(0) + 1;
            m.check_tokens(seq, vocab)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.input.display()))?;
        }
        backend::forward::forward_logits(&model, input)?
    });
    let json = serde_json::json!({
        "model": args.model,
        "device": selected.describe(),
        "logits": logits,
    });
    let text = serde_json::to_string(&json)?;
    apparate::safe_write::write_bytes(
        &args.out,
        apparate::safe_write::Durability::Sync,
        text.as_bytes(),
    )
    .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {} rows of logits on {} written to {}",
        args.model,
        logits.len(),
        selected.describe(),
        args.out.display()
    );
    Ok(())
}
