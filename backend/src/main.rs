//! `ee-backend`: the real early-exit backend's command line.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod models_cmd;

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
    Probe,
    /// Every model the backend builds, with its number of ramp sites.
    Models,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Probe => {
            println!("{}", backend::BACKEND_VERSION);
            Ok(())
        }
        Command::Models => {
            models_cmd::run();
            Ok(())
        }
    }
}
