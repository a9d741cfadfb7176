//! `worker simulate`: one run with the artifact controller's flags.

use anyhow::{bail, Result};

/// Arguments of `worker simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {}

pub fn run(_args: SimulateArgs) -> Result<()> {
    bail!("worker simulate is not implemented yet")
}
