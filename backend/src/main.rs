//! `ee-backend`: the real early-exit backend's command line.

mod forward_cmd;
mod models_cmd;
mod probe_cmd;
mod profile_cmd;

mod args;
mod gendata_cmd;
mod infer_cmd;
mod serve_cmd;
mod train_cmd;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The real early-exit backend: the paper's models with ramps on CPU or CUDA, written as the
/// artifact's data layout.
#[derive(Parser, Debug)]
#[command(name = "ee-backend", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Devices, driver, memory, and what `--device auto` would use.
    Probe(probe_cmd::Args),
    /// Time a model per batch size (segments, ramps, whole model) into profile pickles and
    /// profile.json; or turn a PyTorch profile JSON into them (--from-json).
    Profile(profile_cmd::Args),
    /// One forward pass of a model on a given input, logits written as JSON (parity checks).
    Forward(forward_cmd::Args),
    /// Every model the backend builds, with its number of ramp sites.
    Models,
    /// Train a small backbone (digits-cnn) from scratch on labelled images.
    TrainBackbone(train_cmd::TrainBackboneArgs),
    /// Train the ramp heads of a frozen backbone (labels = the final model's answers).
    TrainRamps(train_cmd::TrainRampsArgs),
    /// Every ramp's confidence and agreement for every sample, as bootstrap and simulation
    /// pickles.
    Infer(infer_cmd::InferArgs),
    /// train-ramps + infer + profile into one artifact-format data folder.
    GenData(Box<gendata_cmd::GenDataArgs>),
    /// Serve a model live: requests from a trace, batched online, the Apparate controller
    /// choosing ramps and thresholds from what the ramps say (issue #14).
    Serve(Box<serve_cmd::ServeArgs>),
}

fn main() -> std::process::ExitCode {
    apparate::logging::init();
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Probe(args) => probe_cmd::run(&args),
        Command::Profile(args) => profile_cmd::run(&args),
        Command::Forward(args) => forward_cmd::run(&args),
        Command::Models => {
            models_cmd::run();
            Ok(())
        }
        Command::TrainBackbone(a) => train_cmd::train_backbone_cmd(a),
        Command::TrainRamps(a) => train_cmd::train_ramps_cmd(a),
        Command::Infer(a) => infer_cmd::infer_cmd(a),
        Command::GenData(a) => gendata_cmd::gen_data_cmd(*a),
        Command::Serve(a) => match serve_cmd::run(*a) {
            // Interrupted: the files hold what was served; 128 + SIGINT.
            Ok(true) => return std::process::ExitCode::from(130),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            eprintln!("error: {}", apparate::text::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
