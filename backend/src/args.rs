//! Arguments and helpers shared by the commands of `ee-backend` (binary only).

use std::path::PathBuf;

use backend::device::{Cpu, DeviceChoice};

/// The CPU backend's device.
pub type CpuDevice = <Cpu as burn::tensor::backend::BackendTypes>::Device;
use indicatif::{ProgressBar, ProgressStyle};

/// The model and the data.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArgs {
    /// The model (e.g. digits-cnn).
    #[arg(long)]
    pub model: String,
    /// Its weights (safetensors); without them the model is randomly initialised from --seed.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The dataset: a folder of PNG/JPEG frames (CV) or a CSV/JSONL text file (NLP).
    #[arg(long)]
    pub data: PathBuf,
    /// The device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
}

/// Which samples train and validate the ramps (the paper: the first 10 %, split 1:9).
#[derive(clap::Args, Debug, Clone)]
pub struct SplitArgs {
    /// The share of the dataset (from its start) written as the bootstrap pickle; it trains
    /// and validates the ramps, the rest is the simulation stream.
    #[arg(long, default_value_t = 0.1)]
    pub bootstrap_fraction: f64,
    /// The share of the bootstrap part that trains the ramps (the rest validates them).
    #[arg(long, default_value_t = 0.1)]
    pub train_share: f64,
}

/// Ramp-training settings.
#[derive(clap::Args, Debug, Clone)]
pub struct RampTrainArgs {
    /// Seeds the heads' initial weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Passes over the training samples.
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// AdamW learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub lr: f64,
    /// Samples per step (and per inference batch).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

/// The names the pickles are written under.
#[derive(clap::Args, Debug, Clone)]
pub struct NameArgs {
    /// The dataset's name in the files (default: video for CV, reviews for NLP).
    #[arg(long)]
    pub dataset: Option<String>,
    /// The model's name in the files (default: --model). CV names must contain resnet or vgg
    /// (the simulator's rule); sweeps accept only the paper's names.
    #[arg(long)]
    pub name: Option<String>,
}

/// A progress bar of `len` steps (drawn only on a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// The command line, for the records.
pub fn invocation() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
