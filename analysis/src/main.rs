//! The `analysis` binary: `analysis report --results DIR [--out DIR]`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "analysis",
    version,
    about = "Tables, figures and a report from a results directory"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build the report (tables, figures, report.md, report.html) of a results directory.
    Report {
        /// The results directory (worker --local --out DIR).
        #[arg(long, value_name = "DIR", default_value = "results")]
        results: PathBuf,
        /// Output folder (default: DIR/report).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Threads for drawing figures (default: all cores).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Report { results, out, jobs } => {
            let outcome = analysis::build_report(&analysis::ReportOptions { results, out, jobs })?;
            for p in &outcome.problems {
                eprintln!("skipped: {p}");
            }
            let live = if outcome.live > 0 {
                format!(" ({} live)", outcome.live)
            } else {
                String::new()
            };
            println!(
                "report: {} of {} tasks{live}, {} problem(s), {:.2} s: {}",
                outcome.tasks,
                outcome.planned,
                outcome.problems.len(),
                outcome.seconds,
                outcome.report_html.display()
            );
        }
    }
    Ok(())
}
