//! The sweep spec: a TOML file naming the inputs, the traces and one or more grids
//! (`docs/sweep-spec.md` is the user's reference; `specs/paper.toml` is [`SweepSpec::builtin`]).
//!
//! Parsing only checks the TOML's shape (unknown keys and wrong types are refused, with the line
//! and the key); [`SweepSpec::plan`] checks the meaning (names, ranges, files) before any work.

use crate::sim::StaticRamps;
use crate::task::BatchingScheme;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in spec: the paper's 56 tasks (48 CV + 8 NLP) on the embedded workload.
pub const BUILTIN_SPEC_TOML: &str = include_str!("../../../specs/paper.toml");

/// A sweep spec as written in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The sweep's name (shown in logs and `sweep.json`).
    pub name: String,
    /// Seeds of the embedded workload (and of synthetic traces that name none); default `[0]`.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Where the inputs come from.
    pub inputs: InputsSpec,
    /// Named traces the grids refer to: a `traces::TraceSpec` table (`kind = ...`) or a
    /// recorded decision file (`source = "artifact_decisions"`); checked by [`SweepSpec::plan`].
    #[serde(default)]
    pub traces: BTreeMap<String, toml::Table>,
    /// The grids, expanded in file order.
    pub grid: Vec<GridSpec>,
    /// Folder that relative paths in the spec (`inputs.dir`, Azure CSV `path`) are resolved
    /// against: the spec file's folder, or `.` for a spec given as text.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// `[inputs]`: the embedded workload, an artifact data folder, or a real model run by the
/// backend (`ee-backend gen-data`) into a content-addressed artifact folder
/// ([`crate::backend_inputs`]). (A flat table rather than a tagged enum, so that a wrong value
/// is reported at its own line and key.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsSpec {
    /// Which inputs.
    pub kind: InputsKind,
    /// Embedded only: 1.0 = paper scale (the default); must be in (0, 10].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Artifact only (required): a folder in the artifact's data layout (`bootstrap_pickles/`,
    /// `simulation_pickles/`, `profile_pickles_bs/`, `batch_decisions/`); a relative path is
    /// resolved against the spec file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Backend only (required): the model `ee-backend` runs (`digits-cnn`, `resnet50`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Backend only (required): the model's weights file; resolved like `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<PathBuf>,
    /// Backend only (required): the dataset, a folder (image frames) or a file (CSV/JSONL
    /// text); resolved like `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    /// Backend only (optional): a labels file; resolved like `dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Backend only: `auto` (the default), `cpu` or `cuda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Backend only (optional): the backend's seed (`--seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Backend only (optional): the model's name in the data folder's file names and the
    /// grids' `models` (`--name`); default: `model`. The simulator reads a model as CV only
    /// when its name contains `resnet` or `vgg`, so a CV model of another name (e.g.
    /// `digits-cnn`) needs one that does (e.g. `resnet-digits`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Backend only (optional): the dataset name in the data folder's file names and the
    /// grids' `datasets` (`--dataset`); default `video` for a CV model, `text` for an NLP one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

/// `inputs.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputsKind {
    /// The built-in synthetic workload (`crate::workload`).
    Embedded,
    /// A folder of the artifact's pickles.
    Artifact,
    /// A real model run once by `ee-backend gen-data` into `<results>/inputs/<digest>/`.
    Backend,
}

fn default_batching() -> Vec<BatchingScheme> {
    vec![BatchingScheme::Clockwork]
}

/// One `[[grid]]`: models × datasets × traces × parameter lists × seeds.
///
/// Expansion order (the artifact's job lists): datasets (outer), models, traces, then
/// `batching`, `slo_multiplier`, `batch_size`, `accuracy_budget`, `ramp_budget`,
/// `check_interval`, `static_ramps`, and seeds (inner), each list in the order written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSpec {
    /// The grid's name: `[a-z0-9_-]`, unique; its summary goes to `output_{name}.txt`.
    pub name: String,
    /// Model names, all of one family (CV or NLP).
    pub models: Vec<String>,
    /// Dataset names, of the models' family.
    pub datasets: Vec<String>,
    /// Names of traces defined under `[traces]`.
    pub traces: Vec<String>,
    /// Batching schemes (default `["clockwork"]`).
    #[serde(default = "default_batching")]
    pub batching: Vec<BatchingScheme>,
    /// SLO multipliers (> 0).
    pub slo_multiplier: Vec<f64>,
    /// The artifact's `--batch_size` values (1, 2, 4, 8, 16, 32 or 64).
    pub batch_size: Vec<usize>,
    /// Accuracy-loss budgets in (0, 1); omitted = the artifact's 0.01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_budget: Option<Vec<f64>>,
    /// Ramp budgets (≥ 1); omitted = the artifact's per-model budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_budget: Option<Vec<usize>>,
    /// Ramp check intervals in batches (≥ 1); omitted = the artifact's (30 CV, 100 NLP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_interval: Option<Vec<usize>>,
    /// Ramp sets of the static early-exit baseline; omitted = `["all_sites"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_ramps: Option<Vec<StaticRamps>>,
    /// `"simulated"` (omitted: the default) or `"live"`: the grid's tasks are served live by
    /// `ee-backend serve` with the real model of `[inputs] kind = "backend"` (issue #14)
    /// instead of simulated from its recorded samples. (Text rather than an enum, so that a
    /// wrong value is reported in one line naming `grid[i].kind`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Live grids only: how arrivals are replayed, `"fast"` (omitted: the default; idle gaps
    /// skipped) or `"realtime"` (at their times on the wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<String>,
}

/// A sweep spec that cannot be used. Nothing is run when any of these is returned; none is worth
/// retrying without changing the spec or the inputs.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec file cannot be read.
    #[error("cannot read sweep spec {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a value of the wrong type (the message
    /// shows the line and the key).
    #[error("{origin}: {source}")]
    Toml {
        /// The file, or `<built-in spec>` / `<text>`.
        origin: String,
        /// The parser's message.
        source: Box<toml::de::Error>,
    },
    /// A value is unknown, out of range or inconsistent; `key` is its path in the spec, e.g.
    /// `grid[0].models[2]`.
    #[error("{key}: {problem}")]
    Invalid {
        /// Where, e.g. `grid[1].batch_size[0]` or `traces.video30.qps`.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// An artifact input file of a task does not exist.
    #[error("task {task}: missing input file {file}{}", more_missing(*.also_missing))]
    MissingInput {
        /// The first task that needs it (grid, model, dataset, trace).
        task: String,
        /// The file.
        file: PathBuf,
        /// How many other distinct files are missing too.
        also_missing: usize,
    },
    /// The `ee-backend` binary that backend inputs need cannot be found or run.
    #[error("inputs.kind = \"backend\": {problem}")]
    Backend {
        /// What is wrong (where it was looked for, or how it failed).
        problem: String,
    },
    /// An input file exists but cannot be read (for its digest).
    #[error("cannot read input file {path}: {source}")]
    InputRead {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

fn more_missing(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => " (and 1 more missing file)".into(),
        n => format!(" (and {n} more missing files)"),
    }
}

impl SweepSpec {
    /// Parses TOML text; relative paths in it are resolved against `base_dir`. `origin` names
    /// the text in error messages (e.g. the file name).
    pub fn from_toml(text: &str, origin: &str, base_dir: &Path) -> Result<SweepSpec, SpecError> {
        let mut spec: SweepSpec = toml::from_str(text).map_err(|e| SpecError::Toml {
            origin: origin.to_string(),
            source: Box::new(e),
        })?;
        spec.base_dir = base_dir.to_path_buf();
        Ok(spec)
    }

    /// Reads and parses a spec file; relative paths are resolved against its folder.
    pub fn load(path: &Path) -> Result<SweepSpec, SpecError> {
        let text =
            crate::input_file::read_regular_to_string(path).map_err(|source| SpecError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::from_toml(&text, &path.display().to_string(), &base)
    }

    /// The built-in spec ([`BUILTIN_SPEC_TOML`], also shipped as `specs/paper.toml`).
    pub fn builtin() -> Result<SweepSpec, SpecError> {
        Self::from_toml(BUILTIN_SPEC_TOML, "<built-in spec>", Path::new("."))
    }

    // `SweepSpec::plan` is in `grid.rs`, next to `Plan::new`: `grid` (with `trace_spec` and
    // `validate`) reads the spec types, the spec does not depend on them.
}
