//! `ee-backend profile`: time a model per batch size into `DIR/profile_pickles_bs/` and
//! `DIR/profile.json`, or (`--from-json`) turn a PyTorch profile record (the reference script's,
//! same schema) into the same folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use apparate::sim::latency::BATCH_SIZES;
use backend::device::{select, DeviceChoice};
use backend::profile::{read_record, tables_from_record, write_profile_dir, ProfileOptions};

/// `ee-backend profile` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model to time (the artifact's name, e.g. resnet50, bert-base).
    #[arg(long, required_unless_present = "from_json")]
    model: Option<String>,
    /// Weights (safetensors or PyTorch checkpoint); random weights when absent (latency does not
    /// depend on them).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output classes of the final head and the ramps (the model's default when absent:
    /// 1000 for the CV models, 2 labels for the NLP ones).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Batch sizes to time; the profile pickles need all of 1,2,4,8,16,32,64 (a subset writes
    /// only profile.json).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    batch_sizes: Vec<usize>,
    /// Untimed runs per batch size.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Timed runs per batch size.
    #[arg(long, default_value_t = 30)]
    reps: usize,
    /// Tokens per sample (NLP models).
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Convert this profile record (e.g. `torch_ref.py`'s) instead of timing.
    #[arg(long, conflicts_with_all = ["weights", "batch_sizes", "warmup", "reps", "seq_len"])]
    from_json: Option<PathBuf>,
    /// The output folder (profile_pickles_bs/ and profile.json go in it).
    #[arg(long)]
    out: PathBuf,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<()> {
    if let Some(path) = &args.from_json {
        return from_json(path, args);
    }
    let missing: Vec<usize> = BATCH_SIZES
        .iter()
        .copied()
        .filter(|bs| !args.batch_sizes.contains(bs))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            ?missing,
            "not every batch size is timed: writing profile.json only, no profile pickles"
        );
    }
    let opts = ProfileOptions {
        batch_sizes: args.batch_sizes.clone(),
        warmup: args.warmup,
        reps: args.reps,
        seq_len: args.seq_len,
    };
    let selected = select(args.device)?;
    let model = args.model.as_deref().unwrap_or_default();
    let model_name = model.to_string();
    let (_record, written) = backend::with_backend!(&selected, B, device, {
        let model = backend::open::open_model_with::<B>(
            &model_name,
            args.weights.as_deref(),
            args.num_classes,
            &device,
        )?;
        let ramps = model.ramps(&device);
        let info = backend::device::device_record(&selected);
        backend::profile::profile_to_dir(&model, &ramps, &opts, &device, info, &args.out)?
    });
    println!(
        "{model_name} on {}: {} files written into {}",
        selected.describe(),
        written.len(),
        args.out.display()
    );
    Ok(())
}

fn from_json(path: &Path, args: &Args) -> Result<()> {
    let mut record = read_record(path)?;
    let name = path.display().to_string();
    // The pickles are the point of a conversion: every batch size must be there.
    tables_from_record(&record, &name)?;
    let model = args.model.clone().unwrap_or_else(|| record.model.clone());
    record.versions.insert(
        "converted_by".into(),
        format!("{} profile --from-json", backend::BACKEND_VERSION).into(),
    );
    let written = write_profile_dir(&args.out, &record, &model, &name)
        .with_context(|| format!("converting {name}"))?;
    println!(
        "{} files written into {} from {} (source: {})",
        written.len(),
        args.out.display(),
        name,
        record.source
    );
    Ok(())
}
