//! `ee-backend`: the real early-exit backend's command line.

mod forward_cmd;
mod models_cmd;
mod probe_cmd;
mod profile_cmd;

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
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", apparate::text::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
