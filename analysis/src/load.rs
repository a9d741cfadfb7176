//! Finding the complete tasks of a results directory (`tasks/<key>/manifest.json` +
//! `requests.parquet`) and the plan they belong to (`sweep.json`). Anything malformed becomes a
//! [`Problem`] naming the file; the task is skipped and the report goes on.

use crate::error::{io_err, AnalysisError};
use apparate::results::{verify_task_dir, Digests, Manifest, ManifestProblem};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Columns of `requests.parquet` the report needs.
pub const REQUIRED_COLUMNS: [&str; 7] = [
    "exit_point",
    "correct",
    "inference_ms",
    "vanilla_ms",
    "queueing_ms",
    "optimal_ms",
    "static_ms",
];

/// A file the report could not use, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file (or folder).
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// A grid of the plan (`sweep.json`'s `grids`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PlanGrid {
    /// Grid name (`cv`, `nlp`, ...).
    pub name: String,
    /// Index of its first task.
    pub first: usize,
    /// Number of tasks.
    pub count: usize,
}

/// What `sweep.json` says about the sweep.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PlanInfo {
    /// Sweep name.
    pub name: String,
    /// Code version of the plan.
    pub code_version: String,
    /// Grids in order.
    pub grids: Vec<PlanGrid>,
    /// Task keys in grid order.
    pub tasks: Vec<String>,
}

/// A complete task found under `tasks/`.
#[derive(Clone, Debug)]
pub struct LoadedTask {
    /// Its folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Position in the plan's grid order (`usize::MAX` if the plan does not list it).
    pub order: usize,
}

impl LoadedTask {
    /// `tasks/<key>/requests.parquet`.
    pub fn requests_path(&self) -> PathBuf {
        self.dir.join("requests.parquet")
    }
    /// `tasks/<key>/batches.jsonl`, or `batches.jsonl.zst` when its manifest says the task's
    /// files are stored compressed ([`apparate::storage`]).
    pub fn batches_path(&self) -> PathBuf {
        self.dir
            .join(self.manifest.storage.stored_name("batches.jsonl"))
    }

    /// The contents of `batches.jsonl`, decompressed when stored compressed.
    pub fn read_batches(&self) -> std::io::Result<String> {
        let path = self.batches_path();
        let compressed = self.manifest.storage != apparate::storage::Storage::Plain;
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut apparate::storage::open_stored(&path, compressed)?,
            &mut text,
        )?;
        Ok(text)
    }
    /// The task key.
    pub fn key(&self) -> &str {
        self.manifest.key.as_str()
    }
    /// A live run (its spec's `live` is set, issue #14): measured, not simulated.
    pub fn is_live(&self) -> bool {
        self.manifest.spec.live.is_some()
    }
}

/// Everything found in a results directory.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// The results directory.
    pub root: PathBuf,
    /// The plan, when `sweep.json` is present and readable.
    pub plan: Option<PlanInfo>,
    /// Complete, valid simulated tasks, in grid order (tasks the plan does not list come last,
    /// by key). Only these enter the paper's tables and figures.
    pub tasks: Vec<LoadedTask>,
    /// Complete, valid live tasks ([`LoadedTask::is_live`]), in the same order. Kept apart: they
    /// enter only the live-against-simulated table and figure ([`crate::live`]), so no paper
    /// table counts a model, dataset and trace twice.
    pub live: Vec<LoadedTask>,
    /// Files that could not be used.
    pub problems: Vec<Problem>,
}

impl Inventory {
    /// Tasks the sweep has in all: the plan's count, or the number of complete tasks seen
    /// (simulated and live).
    pub fn planned(&self) -> usize {
        match &self.plan {
            Some(p) => p.tasks.len(),
            None => self.complete(),
        }
    }

    /// Complete tasks found, simulated and live.
    pub fn complete(&self) -> usize {
        self.tasks.len() + self.live.len()
    }
}

/// Reads `sweep.json` and validates every `tasks/<key>/` with the workers' completeness check
/// (exactly the files a task produces, each with its listed size and SHA-256; a manifest whose
/// key is its folder's and its own spec's) and the schema of `requests.parquet`.
pub fn discover(root: &Path) -> Result<Inventory, AnalysisError> {
    let tasks_dir = root.join("tasks");
    if !tasks_dir.is_dir() {
        return Err(AnalysisError::NotResults {
            dir: root.to_path_buf(),
        });
    }
    let mut problems = Vec::new();
    let plan_path = root.join("sweep.json");
    let plan = if plan_path.is_file() {
        match std::fs::read(&plan_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<PlanInfo>(&b).map_err(|e| e.to_string()))
        {
            Ok(p) => Some(p),
            Err(message) => {
                problems.push(Problem {
                    path: plan_path,
                    message,
                });
                None
            }
        }
    } else {
        None
    };
    let order: std::collections::HashMap<&str, usize> = plan
        .as_ref()
        .map(|p| {
            p.tasks
                .iter()
                .enumerate()
                .map(|(i, k)| (k.as_str(), i))
                .collect()
        })
        .unwrap_or_default();
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(&tasks_dir).map_err(io_err(&tasks_dir))? {
        let entry = entry.map_err(io_err(&tasks_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue; // tasks/.tmp holds tasks still being written
        }
        dirs.push(entry.path());
    }
    dirs.sort();
    let mut tasks = Vec::new();
    for dir in dirs {
        match check_task(&dir) {
            Ok(manifest) => {
                let order = order
                    .get(manifest.key.as_str())
                    .copied()
                    .unwrap_or(usize::MAX);
                tasks.push(LoadedTask {
                    dir,
                    manifest,
                    order,
                });
            }
            Err(p) => problems.push(p),
        }
    }
    tasks.sort_by(|a, b| (a.order, a.key()).cmp(&(b.order, b.key())));
    let (live, tasks): (Vec<_>, Vec<_>) = tasks.into_iter().partition(LoadedTask::is_live);
    Ok(Inventory {
        root: root.to_path_buf(),
        plan,
        tasks,
        live,
        problems,
    })
}

/// The check every writer applies ([`verify_task_dir`]: exactly the files a task produces,
/// regular files with the listed sizes and SHA-256, a manifest whose key is its folder's and
/// its own spec's), then the columns of `requests.parquet`.
fn check_task(dir: &Path) -> Result<Manifest, Problem> {
    let manifest = verify_task_dir(dir, None, Digests::Verify).map_err(problem_of)?;
    let rpath = dir.join("requests.parquet");
    check_parquet(&rpath).map_err(|message| Problem {
        path: rpath,
        message,
    })?;
    Ok(manifest)
}

/// Reads the footer of a `requests.parquet` and checks the columns the report needs.
fn check_parquet(path: &Path) -> Result<(), String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let names: Vec<String> = (0..schema.num_columns())
        .map(|i| schema.column(i).name().to_string())
        .collect();
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n == c))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing column(s) {}", missing.join(", ")))
    }
}

/// A [`ManifestProblem`] as a [`Problem`] naming the file (or folder) it is about.
fn problem_of(e: ManifestProblem) -> Problem {
    let path = match &e {
        ManifestProblem::Unreadable { path, .. }
        | ManifestProblem::Malformed { path, .. }
        | ManifestProblem::WrongFormat { path, .. }
        | ManifestProblem::NewerVersion { path, .. }
        | ManifestProblem::Mismatch { path, .. }
        | ManifestProblem::NotAFolder { path, .. }
        | ManifestProblem::NotThisTask { path, .. }
        | ManifestProblem::FileSet { path, .. }
        | ManifestProblem::Digest { path, .. }
        | ManifestProblem::File { path, .. } => path.clone(),
    };
    let message = match &e {
        ManifestProblem::Unreadable { source, .. } => format!("cannot read the manifest: {source}"),
        _ => strip_path(&e.to_string(), &path),
    };
    Problem { path, message }
}

/// The worker's manifest errors start with the path; the problem carries it separately.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}
