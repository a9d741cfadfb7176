//! The `worker` binary: sweeps on this machine (`--local`, `plan`), a remote worker of a
//! distributed sweep (`--coordinator`), single simulations
//! (`simulate`), batching generators (`batching`), the embedded workload in the artifact's
//! layout (`gen-data`) and a result file's contents, decompressed (`cat`, alias `show`).

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

mod batching_cmd;
mod gen_data_cmd;
mod local_cmd;
mod remote_cmd;
mod simulate_cmd;

#[derive(Parser)]
#[command(
    name = "worker",
    version,
    about = "Apparate early-exit simulator worker",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    local: local_cmd::LocalArgs,
    #[command(flatten)]
    remote: remote_cmd::RemoteArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run one simulation with the artifact controller's flags.
    Simulate(Box<simulate_cmd::SimulateArgs>),
    /// Recompute a batch-decision list from a request trace (clockwork or tf_serve).
    Batching(batching_cmd::BatchingArgs),
    /// List a sweep's tasks, their keys and whether each is complete in --out (runs nothing).
    Plan(local_cmd::PlanArgs),
    /// Write the embedded workload in the artifact's data layout (pickles, profile trees,
    /// batch decisions).
    GenData(gen_data_cmd::GenDataArgs),
    /// Print a task's result file, decompressed (`worker cat results/tasks/<key> log.txt`).
    #[command(alias = "show")]
    Cat(local_cmd::CatArgs),
}

fn main() -> std::process::ExitCode {
    apparate::logging::init();
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Some(Command::Simulate(args)) => simulate_cmd::run(*args),
        Some(Command::Batching(args)) => batching_cmd::run(args),
        Some(Command::Plan(args)) => local_cmd::run_plan_cmd(args),
        Some(Command::GenData(args)) => gen_data_cmd::run(args),
        Some(Command::Cat(args)) => local_cmd::run_cat(args),
        None if cli.local.local => local_cmd::run_local(cli.local),
        None if cli.remote.coordinator.is_some() => remote_cmd::run(cli.remote),
        None => {
            let _ = Cli::command().print_help();
            eprintln!(
                "\nerror: give --local (run a sweep here), --coordinator URL (work for a \
                 distributed sweep) or a subcommand"
            );
            return std::process::ExitCode::from(2);
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
