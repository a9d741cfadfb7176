//! `ee-backend infer`: every ramp's confidence and agreement for every sample, as the bootstrap
//! and simulation pickles.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use backend::device::select;
use backend::gendata::{prepare_out_dir, write_samples, Names};
use backend::infer::{ramp_data, run, split, Outputs, Samples, Split};
use backend::models::StagedModel;
use backend::open::{open_model, open_samples, Model, DEFAULT_SEQ_LEN};
use backend::ramps::RampSet;
use burn::tensor::backend::Backend;

use crate::args::{bar, ModelArgs, NameArgs, SplitArgs};

#[derive(clap::Args, Debug)]
pub struct InferArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub names: NameArgs,
    /// The ramp heads (from train-ramps).
    #[arg(long)]
    pub ramps: PathBuf,
    /// The data folder to write into (created; refused when it holds files, unless
    /// --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace files of the same names in a folder that holds files.
    #[arg(long)]
    pub overwrite: bool,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

/// Runs every sample through the model and its ramps.
pub fn outputs<B: Backend>(
    model: &Model<B>,
    ramps: &RampSet<B>,
    samples: &Samples,
    batch: usize,
    dev: &B::Device,
) -> Result<Outputs> {
    let pb = bar(samples.len() as u64, "infer");
    let out = run(model, ramps, samples, batch, dev, |k| pb.inc(k as u64))?;
    pb.finish_and_clear();
    Ok(out)
}

/// Writes the bootstrap (`split.bootstrap`) and simulation pickles; returns their paths.
pub fn write_pickles(out: &Path, names: &Names, o: &Outputs, sp: &Split) -> Result<Vec<PathBuf>> {
    let boot = ramp_data(
        &o.ramp_logits,
        &o.final_logits,
        o.classes,
        names.family,
        sp.bootstrap.clone(),
    );
    let sim = ramp_data(
        &o.ramp_logits,
        &o.final_logits,
        o.classes,
        names.family,
        sp.simulation.clone(),
    );
    let files = write_samples(out, names, &boot, &sim)?;
    let exits: Vec<String> = sim
        .acc
        .iter()
        .map(|a| {
            format!(
                "{:.3}",
                a.iter().filter(|&&x| x).count() as f64 / a.len().max(1) as f64
            )
        })
        .collect();
    println!(
        "{} bootstrap and {} simulation samples, {} ramps; simulation agreement per ramp: {}",
        boot.conf[0].len(),
        sim.conf[0].len(),
        sim.conf.len(),
        exits.join(", ")
    );
    Ok(files)
}

pub fn infer_cmd(a: InferArgs) -> Result<()> {
    let selected = select(a.model.device)?;
    tracing::info!("device: {}", selected.describe());
    backend::with_backend!(&selected, B, dev, infer_on::<B>(&a, &dev))
}

fn infer_on<B: Backend>(a: &InferArgs, dev: &B::Device) -> Result<()> {
    let dev = dev.clone();
    let model: Model<B> = open_model(&a.model.model, a.model.weights.as_deref(), &dev)?;
    let names = Names::new(
        a.names.name.as_deref().unwrap_or(&a.model.model),
        a.names.dataset.as_deref(),
        model.family(),
    )?;
    let ramps = backend::weights::load(model.ramps(&dev), &a.ramps)?;
    let (samples, _) = open_samples(
        &model,
        &a.model.data,
        a.model.weights.as_deref(),
        DEFAULT_SEQ_LEN,
        &dev,
    )?;
    let sp = split(
        samples.len(),
        a.split.bootstrap_fraction,
        a.split.train_share,
    )
    .with_context(|| format!("{}", a.model.data.display()))?;
    prepare_out_dir(&a.out, a.overwrite)?;
    let o = outputs(&model, &ramps, &samples, a.batch, &dev)?;
    for f in write_pickles(&a.out, &names, &o, &sp)? {
        println!("wrote {}", f.display());
    }
    Ok(())
}
