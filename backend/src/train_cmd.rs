//! `ee-backend train-backbone` and `ee-backend train-ramps`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use backend::device::{Cpu, CpuTrain};
use backend::infer::{split, Samples};
use backend::models::StagedModel;
use backend::open::{open_model, open_samples, Model, DEFAULT_SEQ_LEN};
use backend::ramps::RampSet;
use backend::train::{train_backbone, train_ramps, RampReport, TrainOptions};
use burn::tensor::backend::Backend;

use crate::args::{bar, CpuDevice, ModelArgs, RampTrainArgs, SplitArgs};
use backend::device::select;
use burn::backend::Autodiff;

/// `train-backbone`: a small model from a random start on real labels.
#[derive(clap::Args, Debug)]
pub struct TrainBackboneArgs {
    /// The model (only small ones: digits-cnn).
    #[arg(long)]
    pub model: String,
    /// A folder of PNG/JPEG frames, in file-name order.
    #[arg(long)]
    pub data: PathBuf,
    /// One label per line (or a CSV `label` column), one per frame in file-name order.
    #[arg(long)]
    pub labels: PathBuf,
    /// Where to write the weights (safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Passes over the data.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Seeds the initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.003)]
    pub lr: f64,
    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
}

pub fn train_backbone_cmd(a: TrainBackboneArgs) -> Result<()> {
    if a.model != backend::models::tiny::NAME {
        bail!(
            "train-backbone trains only small models from scratch ({}), not {:?}",
            backend::models::tiny::NAME,
            a.model
        );
    }
    let dev = CpuDevice::default();
    let model: Model<Cpu> = open_model(&a.model, None, &dev)?;
    let (samples, _) = open_samples(&model, &a.data, None, DEFAULT_SEQ_LEN, &dev)?;
    let labels = backend::data::read_labels(&a.labels, samples.len(), model.num_classes())?;
    let opts = TrainOptions {
        epochs: a.epochs,
        lr: a.lr,
        batch: a.batch,
        seed: a.seed,
    };
    let steps = a.epochs * samples.len().div_ceil(a.batch.max(1));
    let pb = bar(steps as u64, "train-backbone");
    let (model, acc) = train_backbone::<CpuTrain>(&samples, &labels, &opts, &dev, || pb.inc(1))?;
    pb.finish_and_clear();
    backend::weights::save(&model, &a.out)?;
    println!(
        "{}: trained on {} samples for {} epochs, training accuracy {:.4}; weights in {}",
        a.model,
        samples.len(),
        a.epochs,
        acc,
        a.out.display()
    );
    Ok(())
}

/// `train-ramps`: the ramp heads of a frozen backbone.
#[derive(clap::Args, Debug)]
pub struct TrainRampsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub train: RampTrainArgs,
    /// Where to write the ramp heads (safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

/// A model, its data and its trained ramps.
pub struct Trained<B: Backend> {
    pub model: Model<B>,
    pub samples: Samples,
    pub ramps: RampSet<B>,
    pub reports: Vec<RampReport>,
}

/// Opens the model and data, trains the ramps; the reports are printed. Shared with gen-data.
pub fn trained_ramps<B: Backend>(
    m: &ModelArgs,
    s: &SplitArgs,
    t: &RampTrainArgs,
    dev: &B::Device,
) -> Result<Trained<B>> {
    B::seed(dev, t.seed);
    let model: Model<B> = open_model(&m.model, m.weights.as_deref(), dev)?;
    if m.weights.is_none() {
        tracing::warn!(
            "no --weights: {} is randomly initialised (seed {})",
            m.model,
            t.seed
        );
    }
    let (samples, _) = open_samples(&model, &m.data, m.weights.as_deref(), DEFAULT_SEQ_LEN, dev)?;
    let sp = split(samples.len(), s.bootstrap_fraction, s.train_share)
        .with_context(|| format!("{}", m.data.display()))?;
    let opts = TrainOptions {
        epochs: t.epochs,
        lr: t.lr,
        batch: t.batch,
        seed: t.seed,
    };
    let pb = bar((t.epochs * model.num_sites()) as u64, "train-ramps");
    let (ramps, reports) =
        train_ramps::<Autodiff<B>, _>(&model, &samples, &sp, &opts, dev, || pb.inc(1))?;
    pb.finish_and_clear();
    println!(
        "ramps trained on samples {:?}, validated on {:?} (labels = the final model's answers)",
        sp.train, sp.validation
    );
    for r in &reports {
        println!(
            "ramp {}: agreement with the final model {:.4} (validation), {:.4} (training)",
            r.site, r.validation_agreement, r.train_agreement
        );
    }
    Ok(Trained {
        model,
        samples,
        ramps,
        reports,
    })
}

pub fn train_ramps_cmd(a: TrainRampsArgs) -> Result<()> {
    let selected = select(a.model.device)?;
    tracing::info!("device: {}", selected.describe());
    backend::with_backend!(&selected, B, dev, {
        let t = trained_ramps::<B>(&a.model, &a.split, &a.train, &dev)?;
        save(&t.ramps, &a.out)
    })
}

fn save<B: Backend>(ramps: &RampSet<B>, out: &Path) -> Result<()> {
    backend::weights::save(ramps, out)?;
    println!("ramp heads in {}", out.display());
    Ok(())
}
