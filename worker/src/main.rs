//! The `worker` binary: runs simulations (`simulate`), batching generators (`batching`) and
//! writes the embedded workload in the artifact's layout (`gen-data`).

use anyhow::Result;
use clap::{Parser, Subcommand};

mod batching_cmd;
mod gen_data_cmd;
mod simulate_cmd;

#[derive(Parser)]
#[command(
    name = "worker",
    version,
    about = "Apparate early-exit simulator worker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one simulation with the artifact controller's flags.
    Simulate(Box<simulate_cmd::SimulateArgs>),
    /// Recompute a batch-decision list from a request trace (clockwork or tf_serve).
    Batching(batching_cmd::BatchingArgs),
    /// Write the embedded workload in the artifact's data layout (pickles, profile trees,
    /// batch decisions).
    GenData(gen_data_cmd::GenDataArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Simulate(args) => simulate_cmd::run(*args),
        Command::Batching(args) => batching_cmd::run(args),
        Command::GenData(args) => gen_data_cmd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
