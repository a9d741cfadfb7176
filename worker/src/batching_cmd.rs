//! `worker batching`: trace in, decision file out.

use anyhow::{bail, Result};
use std::path::PathBuf;

/// Arguments of `worker batching`.
#[derive(clap::Args)]
pub struct BatchingArgs {
    /// Request trace (the `golden/batching-*/trace.json` format).
    #[arg(long)]
    trace: PathBuf,
    /// Where to write the decisions (JSON).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: BatchingArgs) -> Result<()> {
    let _ = (&args.trace, &args.out);
    bail!("worker batching is not implemented yet")
}
