//! `worker gen-data`: the embedded workload written in the artifact's data layout.

use anyhow::{Context, Result};
use apparate::gendata::{
    generate, plan, GenDataError, GenDataSpec, CV_SLO_MULTIPLIER, NLP_SLO_MULTIPLIER,
};
use std::path::PathBuf;

/// Arguments of `worker gen-data`.
#[derive(clap::Args, Debug)]
pub struct GenDataArgs {
    /// Where to write the artifact layout (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Workload scale: 1 = paper scale (70,000 frames per video; 250,050 / 179,767 reviews).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Workload seed (also seeds the synthetic Azure trace of the NLP decisions).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Models, comma-separated (default: all ten).
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
    /// Datasets, comma-separated (default: all ten); each model gets those of its family.
    #[arg(long, value_delimiter = ',')]
    datasets: Option<Vec<String>>,
    /// SLO of the CV decisions as a multiple of the batch-size-1 vanilla latency (the built-in
    /// spec's value by default).
    #[arg(long, default_value_t = CV_SLO_MULTIPLIER)]
    cv_slo_multiplier: f64,
    /// SLO of the NLP decisions as a multiple of the batch-size-1 vanilla latency (the
    /// built-in spec's value by default).
    #[arg(long, default_value_t = NLP_SLO_MULTIPLIER)]
    nlp_slo_multiplier: f64,
}

/// The command line as typed, for the README (arguments with spaces or quotes are quoted).
fn invocation() -> String {
    std::env::args()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./,=:".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Plans, writes every file, logs a summary.
pub fn run(args: GenDataArgs) -> Result<()> {
    let spec = GenDataSpec {
        scale: args.scale,
        seed: args.seed,
        models: args.models,
        datasets: args.datasets,
        cv_slo_multiplier: args.cv_slo_multiplier,
        nlp_slo_multiplier: args.nlp_slo_multiplier,
    };
    let plan = plan(&spec)?;
    let pairs: usize = plan.models.iter().map(|m| m.datasets.len()).sum();
    tracing::info!(
        models = plan.models.len(),
        pairs,
        scale = plan.scale,
        seed = plan.seed,
        out = %args.out.display(),
        "generating the artifact layout"
    );
    let report = match generate(&plan, &args.out, &invocation()) {
        Ok(report) => report,
        Err(e @ GenDataError::Decisions { .. }) => {
            return Err(anyhow::Error::new(e).context(
                "nothing written: a decision trace cannot be batched \
                 (--cv-slo-multiplier / --nlp-slo-multiplier change the SLO)",
            ))
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!("writing the artifact layout into {}", args.out.display())
            })
        }
    };
    tracing::info!(
        files = report.files.len(),
        out = %args.out.display(),
        "artifact layout written"
    );
    Ok(())
}
