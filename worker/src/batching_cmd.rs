//! `worker batching`: trace in, decision file out.

use anyhow::{Context, Result};
use apparate::batching::{DecisionFile, TraceFile};
use std::path::{Path, PathBuf};

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

/// Reads the trace, runs the scheme it names, writes the decision file and logs a summary.
pub fn run(args: BatchingArgs) -> Result<()> {
    let path = &args.trace;
    let text = apparate::input_file::read_regular_to_string(path)
        .with_context(|| format!("cannot read trace file {}", path.display()))?;
    let input = TraceFile::from_json_str(&text)
        .with_context(|| format!("invalid trace file {}", path.display()))?;
    let outcome = input
        .run()
        .with_context(|| format!("{} failed on {}", input.scheme, path.display()))?;
    let file = DecisionFile::new(input.scheme, &outcome);
    write_atomically(&args.out, &file)?;
    tracing::info!(
        scheme = %input.scheme,
        requests = file.total_num_requests,
        batches = file.num_batches,
        served = file.num_served,
        end_time_ms = file.end_time,
        out = %args.out.display(),
        "batching decisions written"
    );
    Ok(())
}

/// Writes `file` as JSON to a temporary sibling of `out`, then renames it into place, so a
/// reader never sees a half-written file and a link at `out` is replaced, never followed.
fn write_atomically(out: &Path, file: &DecisionFile) -> Result<()> {
    let mut json = serde_json::to_string(file).context("cannot encode the decision file")?;
    json.push('\n');
    apparate::safe_write::write_bytes(
        out,
        apparate::safe_write::Durability::Flush,
        json.as_bytes(),
    )
    .with_context(|| format!("cannot write {}", out.display()))
}
