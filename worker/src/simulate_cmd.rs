//! `worker simulate`: one run with the artifact controller's flags, results into `--out`.

use anyhow::{anyhow, bail, Result};
use apparate::artifact::{
    profile_paths, read_batch_decisions, read_latency_tables, read_ramp_data,
};
use apparate::output::{write_run_stored, ExtraColumns};
use apparate::sim::pyfmt::{py_float, py_str};
use apparate::sim::{simulate, Batching, Culprit, Mode, Overrides, RunSpec, SimError};
use apparate::storage::Storage;
use std::path::PathBuf;

/// The artifact's `--batching_scheme` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Scheme {
    /// Batch sizes from `--batch-decision-path` (recorded by Clockwork).
    Clockwork,
    /// Batch sizes from `--batch-decision-path` (recorded by TF-Serving).
    TfServe,
    /// Fixed chunks of `--batch-size` from the sample stream; no decision file.
    Uniform,
}

/// Arguments of `worker simulate`: the artifact controller's flags (dashes or underscores),
/// plus `--out`. Paths are plain paths (no `../` prefixing). Flags the simulator does not use
/// are accepted for compatibility and only echoed in the `args:` log line.
#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// `video` for CV models; anything else selects the NLP policy.
    #[arg(long, default_value = "urban")]
    dataset: String,
    /// Model name, e.g. `resnet18_auburn` (CV) or `bert-base` (NLP).
    #[arg(long, default_value = "resnet18_urban")]
    arch: String,
    /// Batch size of the bootstrap profile, and chunk size of the uniform scheme.
    #[arg(long = "batch-size", alias = "batch_size", default_value_t = 64)]
    batch_size: usize,
    /// Folder with the profile pickles (`profile_pickles_bs`).
    #[arg(long = "profile-dir", alias = "profile_dir")]
    profile_dir: PathBuf,
    /// Bootstrap pickle (`bootstrap_{ds}_{model}.pickle`).
    #[arg(long = "bootstrap-pickle-path", alias = "bootstrap_pickle_path")]
    bootstrap_pickle_path: PathBuf,
    /// Simulation pickle (`{ds}_{model}.pickle`): the served sample stream.
    #[arg(long = "simulation-pickle-path", alias = "simulation_pickle_path")]
    simulation_pickle_path: PathBuf,
    /// Batch-decision pickle; required unless the scheme is `uniform`.
    #[arg(long = "batch-decision-path", alias = "batch_decision_path")]
    batch_decision_path: Option<PathBuf>,
    /// How batches are formed.
    #[arg(
        long = "batching-scheme",
        alias = "batching_scheme",
        value_enum,
        default_value = "clockwork"
    )]
    batching_scheme: Scheme,
    /// Oracle mode: every ramp active, exit at the first correct ramp, capped at vanilla.
    #[arg(long = "optimal-exiting", alias = "optimal_exiting")]
    optimal_exiting: bool,
    /// SLO (ms); only echoed, as in the artifact.
    #[arg(long, default_value_t = 45.0)]
    slo: f64,
    /// Request rate; only echoed, as in the artifact.
    #[arg(long, default_value_t = 350.0)]
    qps: f64,
    /// Unused by the simulator (echoed).
    #[arg(long, default_value = "True")]
    earlyexit: String,
    /// Unused by the simulator (echoed).
    #[arg(long = "num-classes", alias = "num_classes", default_value_t = 3)]
    num_classes: i64,
    /// Unused by the simulator (echoed).
    #[arg(long = "data-dir", alias = "data_dir")]
    data_dir: Option<String>,
    /// Unused by the simulator (echoed).
    #[arg(long = "model-dir", alias = "model_dir")]
    model_dir: Option<String>,
    /// Unused by the simulator (echoed).
    #[arg(long, default_value = "True")]
    pretrained: String,
    /// Unused by the simulator (echoed).
    #[arg(long = "request-rate", alias = "request_rate", default_value_t = 300)]
    request_rate: i64,
    /// Where to write the result files (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Store `batches.jsonl` and `log.txt` compressed with zstd (`*.zst`, as a sweep's results
    /// folder does; `worker cat` or `zstd -d` reads them). Default: the artifact's plain files.
    #[arg(long)]
    compress: bool,
}

impl SimulateArgs {
    /// The artifact's `args: Namespace(...)` line, flags in argparse order.
    fn args_line(&self) -> String {
        let home = std::env::var("HOME").unwrap_or_default();
        let opt_path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("None".to_string(), |p| py_str(&p.to_string_lossy()))
        };
        let py_bool = |s: &str| if s.is_empty() { "False" } else { "True" };
        let scheme = match self.batching_scheme {
            Scheme::Clockwork => "clockwork",
            Scheme::TfServe => "tf_serve",
            Scheme::Uniform => "uniform",
        };
        format!(
            "args: Namespace(dataset={}, arch={}, earlyexit={}, batch_size={}, num_classes={}, data_dir={}, model_dir={}, pretrained={}, profile_dir={}, request_rate={}, slo={}, qps={}, batching_scheme={}, bootstrap_pickle_path={}, simulation_pickle_path={}, batch_decision_path={}, optimal_exiting={})",
            py_str(&self.dataset),
            py_str(&self.arch),
            py_bool(&self.earlyexit),
            self.batch_size,
            self.num_classes,
            py_str(self.data_dir.as_deref().unwrap_or(&format!("{home}/urban"))),
            py_str(self.model_dir.as_deref().unwrap_or(&format!("{home}/model_checkpoints"))),
            py_bool(&self.pretrained),
            py_str(&self.profile_dir.to_string_lossy()),
            self.request_rate,
            py_float(self.slo),
            py_float(self.qps),
            py_str(scheme),
            py_str(&self.bootstrap_pickle_path.to_string_lossy()),
            py_str(&self.simulation_pickle_path.to_string_lossy()),
            opt_path(&self.batch_decision_path),
            if self.optimal_exiting { "True" } else { "False" },
        )
    }
}

/// A simulator refusal, led by the file(s) holding the offending value.
fn sim_error(args: &SimulateArgs, e: &SimError) -> anyhow::Error {
    let files: Vec<PathBuf> = match e.culprit() {
        Culprit::Flags | Culprit::Internal => Vec::new(),
        Culprit::Bootstrap => vec![args.bootstrap_pickle_path.clone()],
        Culprit::Simulation => vec![
            args.simulation_pickle_path.clone(),
            args.bootstrap_pickle_path.clone(),
        ],
        Culprit::Profile { batch_size } => profile_paths(&args.profile_dir, &args.arch, batch_size),
        Culprit::SimulationAndDecisions => std::iter::once(args.simulation_pickle_path.clone())
            .chain(match args.batching_scheme {
                Scheme::Uniform => None,
                _ => args.batch_decision_path.clone(),
            })
            .collect(),
    };
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    if names.is_empty() {
        anyhow!("simulating {} on {}: {e}", args.arch, args.dataset)
    } else {
        anyhow!("{}: {e}", names.join(" and "))
    }
}

pub fn run(args: SimulateArgs) -> Result<()> {
    let tables = read_latency_tables(&args.profile_dir, &args.arch)?;
    let boot = read_ramp_data(&args.bootstrap_pickle_path)?;
    let sim = read_ramp_data(&args.simulation_pickle_path)?;
    let decisions = match (args.batching_scheme, &args.batch_decision_path) {
        (Scheme::Uniform, _) => None,
        (_, Some(path)) => Some(read_batch_decisions(path)?),
        (_, None) => bail!("--batch-decision-path is required unless --batching-scheme is uniform"),
    };
    let batching = match &decisions {
        Some(d) => Batching::Decisions(&d.batching_decision),
        None => Batching::Uniform,
    };
    let spec = RunSpec {
        arch: &args.arch,
        dataset: &args.dataset,
        batch_size: args.batch_size,
        batching,
        mode: if args.optimal_exiting {
            Mode::Oracle
        } else {
            Mode::Apparate
        },
        overrides: Overrides::default(),
        record_log: true,
    };
    let result = simulate(&spec, &tables, &boot, &sim).map_err(|e| sim_error(&args, &e))?;
    let queueing_ms = match (&decisions, &args.batch_decision_path) {
        (Some(d), Some(path)) => d.served_queueing(path, result.requests.len())?,
        _ => None,
    };
    let extra = ExtraColumns {
        queueing_ms,
        ..ExtraColumns::default()
    };
    let storage = if args.compress {
        Storage::Zstd
    } else {
        Storage::Plain
    };
    write_run_stored(&args.out, &result, &extra, &args.args_line(), storage)?;
    tracing::info!(
        requests = result.summary.num_requests,
        batches = result.summary.num_batches,
        accuracy = result.summary.overall_accuracy,
        improvement = result.summary.overall_latency_improvement,
        out = %args.out.display(),
        "simulation complete"
    );
    Ok(())
}
