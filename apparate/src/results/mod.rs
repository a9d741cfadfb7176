//! The results directory (DESIGN, "Results directory"), shared by `worker --local` and the
//! coordinator (issue #4):
//!
//! ```text
//! OUT/
//!   .lock                    held (flock) by the one process writing OUT
//!   sweep.json               the expanded plan: canonical spec, code version, keys in order
//!   tasks/<key>/             a complete task: run_task's files + manifest.json
//!   tasks/.tmp/<key>-<pid>/  a task being written; renamed to tasks/<key>/ when complete
//!   failures/<key>.json      why a task failed (removed when it later succeeds)
//!   output_<grid>.txt        the artifact-style summary lines of a grid, in grid order
//! ```
//!
//! A folder under `tasks/` appears only when complete (written under `.tmp`, then renamed), so
//! a killed run leaves only `.tmp` debris, which the next writer clears. A task counts as
//! complete when its `manifest.json` is valid (format, version, key, code version) and every
//! file it lists is present with the listed size.
//!
//! Manifests, failure records and `sweep.json` start with a format name and a `"major.minor"`
//! version ([`FORMAT_VERSION`]); readers accept older versions and newer minors, and refuse
//! newer majors with a message naming both versions. Bump the minor for added fields, the major
//! for anything an older reader would misread.

mod listing;
pub mod overview;

pub use listing::{write_plan_listing, PlanCounts};

use crate::ids::TaskKey;
use crate::sweep::digest::{canonical_json, file_sha256};
use crate::sweep::{Plan, PlannedTask};
use crate::task::TaskSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Format name of `tasks/<key>/manifest.json`.
pub const MANIFEST_FORMAT: &str = "apparate-rs/task-manifest";
/// Format name of `failures/<key>.json`.
pub const FAILURE_FORMAT: &str = "apparate-rs/task-failure";
/// Format name of `sweep.json`.
pub const PLAN_FORMAT: &str = "apparate-rs/sweep-plan";
/// Version written into manifests, failure records and `sweep.json`.
pub const FORMAT_VERSION: FormatVersion = FormatVersion { major: 1, minor: 0 };
/// File name of a task's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A `"major.minor"` format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FormatVersion {
    /// Incompatible changes.
    pub major: u32,
    /// Compatible additions.
    pub minor: u32,
}

impl std::fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for FormatVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FormatVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parsed = s
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        match parsed {
            Some((major, minor)) => Ok(FormatVersion { major, minor }),
            None => Err(serde::de::Error::custom(format!(
                "version {s:?} is not \"major.minor\""
            ))),
        }
    }
}

/// A result file listed in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultFile {
    /// File name inside the task's folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
}

/// When and how long a task ran. The only part of a manifest that differs between two runs of
/// the same task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Start, in milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Milliseconds spent in `run_task`.
    pub run_ms: u64,
    /// Milliseconds from start to the manifest (run, hashing the files).
    pub total_ms: u64,
}

/// The state a manifest records; only complete tasks have one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStatus {
    /// Every listed file was written.
    Complete,
}

/// `tasks/<key>/manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub version: FormatVersion,
    /// The task's key (its folder name).
    pub key: TaskKey,
    /// Always `complete`.
    pub status: ManifestStatus,
    /// [`crate::code_version`] of the writer.
    pub code_version: String,
    /// The canonical task spec.
    pub spec: TaskSpec,
    /// Input digests (see [`PlannedTask::digests`]).
    pub digests: BTreeMap<String, String>,
    /// The result files, by name.
    pub files: Vec<ResultFile>,
    /// Requests served by Apparate.
    pub num_requests: usize,
    /// The artifact-style summary lines (`output_{grid}.txt`).
    pub summary_lines: Vec<String>,
    /// Timings.
    pub timings: Timings,
}

impl Manifest {
    /// The manifest of `task` with these files and outcome.
    pub fn new(
        task: &PlannedTask,
        code_version: &str,
        files: Vec<ResultFile>,
        num_requests: usize,
        summary_lines: Vec<String>,
        timings: Timings,
    ) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.to_string(),
            version: FORMAT_VERSION,
            key: task.key.clone(),
            status: ManifestStatus::Complete,
            code_version: code_version.to_string(),
            spec: task.spec.clone(),
            digests: task.digests.clone(),
            files,
            num_requests,
            summary_lines,
            timings,
        }
    }
}

/// Why a task failed, as recorded in `failures/<key>.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An artifact input file is missing or malformed (the message names it).
    Input,
    /// The embedded workload cannot be generated.
    Workload,
    /// The trace cannot be generated.
    Trace,
    /// The batching scheduler rejected the trace.
    Batching,
    /// A recorded decision file does not fit the inputs.
    TraceMismatch,
    /// The simulator refused the inputs.
    Sim,
    /// Writing a result file failed (retryable).
    Output,
    /// The results directory could not be written (retryable).
    Results,
    /// The task panicked (a bug; the message holds the panic's text).
    Panic,
    /// `tasks/<key>/` holds a manifest of a newer format major; it is left alone.
    NewerManifest,
    /// A distributed sweep lost the workers running it (`--max-attempts` times).
    Lost,
}

/// `failures/<key>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// [`FAILURE_FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written.
    pub version: FormatVersion,
    /// The task's key.
    pub key: TaskKey,
    /// `grid/model/dataset/trace`.
    pub task: String,
    /// [`crate::code_version`] of the writer.
    pub code_version: String,
    /// What kind of failure.
    pub kind: FailureKind,
    /// Whether running it again may succeed without changing the inputs.
    pub retryable: bool,
    /// The error, with its causes.
    pub message: String,
    /// The canonical task spec.
    pub spec: TaskSpec,
}

/// The results directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file or folder operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Another process is writing this results directory. Retry once it has finished.
    #[error("results directory {dir} is in use by another run ({holder}); wait for it to finish or use another --out")]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// What the lock file says about its holder.
        holder: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ResultsError + '_ {
    move |source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Why an existing `tasks/<key>/` does not count as complete.
#[derive(Debug, thiserror::Error)]
pub enum ManifestProblem {
    /// `manifest.json` is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The manifest.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not JSON of the expected shape.
    #[error("{path}: {message}")]
    Malformed {
        /// The manifest.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// Another format name.
    #[error("{path}: format is {found:?}, expected {MANIFEST_FORMAT:?}")]
    WrongFormat {
        /// The manifest.
        path: PathBuf,
        /// The format it names.
        found: String,
    },
    /// Written by a newer, incompatible version: never overwritten.
    #[error("{path}: manifest format version {found} is newer than this worker's {supported}; upgrade the worker or use another --out")]
    NewerVersion {
        /// The manifest.
        path: PathBuf,
        /// Its version.
        found: FormatVersion,
        /// Ours.
        supported: FormatVersion,
    },
    /// The manifest belongs to another key or code version.
    #[error("{path}: written for key {found_key} by code version {found_version}, expected {expected_version}")]
    Mismatch {
        /// The manifest.
        path: PathBuf,
        /// Its key.
        found_key: String,
        /// Its code version.
        found_version: String,
        /// Ours.
        expected_version: String,
    },
    /// A listed file is missing or has another size.
    #[error("{path}: expected {expected} bytes, {found}")]
    File {
        /// The result file.
        path: PathBuf,
        /// Size listed in the manifest.
        expected: u64,
        /// What was found.
        found: String,
    },
}

/// What `tasks/<key>/` holds for a task.
#[derive(Debug)]
pub enum TaskStatus {
    /// A valid manifest and all its files.
    Complete(Box<Manifest>),
    /// No folder for the key.
    Missing,
    /// A folder that does not count as complete (it will be replaced, except for
    /// [`ManifestProblem::NewerVersion`]).
    Invalid(ManifestProblem),
}

/// A results directory (read side). Writing goes through [`ResultsDir::lock`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultsDir {
    root: PathBuf,
}

impl ResultsDir {
    /// The results directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> ResultsDir {
        ResultsDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `tasks/`.
    pub fn tasks_dir(&self) -> PathBuf {
        self.root.join("tasks")
    }

    /// `tasks/<key>/`.
    pub fn task_dir(&self, key: &TaskKey) -> PathBuf {
        self.tasks_dir().join(key.as_str())
    }

    /// `tasks/.tmp/`, where tasks are written before they are complete.
    pub fn staging_root(&self) -> PathBuf {
        self.tasks_dir().join(".tmp")
    }

    /// `failures/`.
    pub fn failures_dir(&self) -> PathBuf {
        self.root.join("failures")
    }

    /// `failures/<key>.json`.
    pub fn failure_path(&self, key: &TaskKey) -> PathBuf {
        self.failures_dir().join(format!("{key}.json"))
    }

    /// `output_<grid>.txt`.
    pub fn summary_path(&self, grid: &str) -> PathBuf {
        self.root.join(format!("output_{grid}.txt"))
    }

    /// `sweep.json`.
    pub fn plan_path(&self) -> PathBuf {
        self.root.join("sweep.json")
    }

    /// Whether `task` is complete (see the module docs).
    pub fn status(&self, task: &PlannedTask, code_version: &str) -> TaskStatus {
        let dir = self.task_dir(&task.key);
        if !dir.is_dir() {
            return TaskStatus::Missing;
        }
        match self.read_manifest(&dir, task, code_version) {
            Ok(m) => TaskStatus::Complete(Box::new(m)),
            Err(p) => TaskStatus::Invalid(p),
        }
    }

    fn read_manifest(
        &self,
        dir: &Path,
        task: &PlannedTask,
        code_version: &str,
    ) -> Result<Manifest, ManifestProblem> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|source| ManifestProblem::Unreadable {
            path: path.clone(),
            source,
        })?;
        let manifest = parse_manifest(&path, &bytes)?;
        if manifest.key != task.key || manifest.code_version != code_version {
            return Err(ManifestProblem::Mismatch {
                path,
                found_key: manifest.key.to_string(),
                found_version: manifest.code_version,
                expected_version: code_version.to_string(),
            });
        }
        for f in &manifest.files {
            let p = dir.join(&f.name);
            let found = match std::fs::metadata(&p) {
                Ok(m) if m.is_file() && m.len() == f.bytes => continue,
                Ok(m) if m.is_file() => format!("found {}", m.len()),
                Ok(_) => "found something that is not a file".to_string(),
                Err(e) => format!("cannot read it: {e}"),
            };
            return Err(ManifestProblem::File {
                path: p,
                expected: f.bytes,
                found,
            });
        }
        Ok(manifest)
    }

    /// Takes the directory's lock (creating the directory), clears `tasks/.tmp/` left by killed
    /// runs, and returns the writer. Fails with [`ResultsError::InUse`] while another process
    /// holds it; the lock is released when the writer is dropped or the process dies.
    pub fn lock(&self) -> Result<ResultsWriter, ResultsError> {
        std::fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        let lock_path = self.root.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&lock_path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "unknown process".to_string());
                return Err(ResultsError::InUse {
                    dir: self.root.clone(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        file.set_len(0).map_err(io_err(&lock_path))?;
        writeln!(file, "pid {}", std::process::id()).map_err(io_err(&lock_path))?;
        let staging = self.staging_root();
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
        }
        for d in [self.tasks_dir(), staging, self.failures_dir()] {
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(ResultsWriter {
            dir: self.clone(),
            _lock: file,
        })
    }

    /// Reads `failures/<key>.json`, if present.
    pub fn read_failure(&self, key: &TaskKey) -> Option<FailureRecord> {
        let bytes = std::fs::read(self.failure_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Parses a manifest, checking its format name and version first.
pub fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest, ManifestProblem> {
    #[derive(Deserialize)]
    struct Header {
        format: String,
        version: FormatVersion,
    }
    let malformed = |e: serde_json::Error| ManifestProblem::Malformed {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let header: Header = serde_json::from_slice(bytes).map_err(malformed)?;
    if header.format != MANIFEST_FORMAT {
        return Err(ManifestProblem::WrongFormat {
            path: path.to_path_buf(),
            found: header.format,
        });
    }
    if header.version.major > FORMAT_VERSION.major {
        return Err(ManifestProblem::NewerVersion {
            path: path.to_path_buf(),
            found: header.version,
            supported: FORMAT_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(malformed)
}

/// Lists the regular files of `dir` (sorted by name, `manifest.json` excluded) with their sizes
/// and digests, and flushes each to disk.
pub fn describe_files(dir: &Path) -> Result<Vec<ResultFile>, ResultsError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let is_file = entry.file_type().map_err(io_err(dir))?.is_file();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_file && name != MANIFEST_FILE {
            names.push(name);
        }
    }
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let f = File::open(&path).map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))?;
        let bytes = f.metadata().map_err(io_err(&path))?.len();
        let sha256 = file_sha256(&path).map_err(io_err(&path))?;
        files.push(ResultFile {
            name,
            bytes,
            sha256,
        });
    }
    Ok(files)
}

/// Best-effort flush of a folder's entries (a no-op where folders cannot be opened).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Flushes a folder's entries to disk, reporting errors.
pub fn sync_dir_strict(dir: &Path) -> Result<(), ResultsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes `path` via `path.tmp` + flush + rename.
fn write_file_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), ResultsError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = BufWriter::new(file);
    write(&mut w).map_err(io_err(&tmp))?;
    let file = w.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent);
    }
    Ok(())
}

fn json_line<T: Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(value)?;
    v.push(b'\n');
    Ok(v)
}

/// What [`ResultsWriter::write_summaries`] wrote for a grid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridSummary {
    /// The grid.
    pub grid: String,
    /// `output_<grid>.txt`.
    pub path: PathBuf,
    /// Complete tasks whose lines were written.
    pub complete: usize,
    /// Tasks without a complete result (no lines).
    pub incomplete: usize,
}

impl GridSummary {
    /// Logs where the grid's summary lines went and how many tasks they cover.
    pub fn log(&self) {
        let left_out = if self.incomplete > 0 {
            format!(" ({} incomplete, left out)", self.incomplete)
        } else {
            String::new()
        };
        tracing::info!(
            "{}: summary lines of {} task(s){left_out}",
            self.path.display(),
            self.complete
        );
    }
}

/// The writing side of a results directory, holding its lock. Shareable between threads.
#[derive(Debug)]
pub struct ResultsWriter {
    dir: ResultsDir,
    _lock: File,
}

impl ResultsWriter {
    /// The directory.
    pub fn dir(&self) -> &ResultsDir {
        &self.dir
    }

    /// A fresh, empty staging folder for `key`: `tasks/.tmp/<key>-<pid>/`.
    pub fn stage(&self, key: &TaskKey) -> Result<PathBuf, ResultsError> {
        let path = self
            .dir
            .staging_root()
            .join(format!("{key}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
        }
        std::fs::create_dir_all(&path).map_err(io_err(&path))?;
        Ok(path)
    }

    /// Removes a staging folder (after a failure).
    pub fn discard(&self, staged: &Path) {
        let _ = std::fs::remove_dir_all(staged);
    }

    /// Writes `manifest.json` into the staging folder, flushes it, and renames the folder to
    /// `tasks/<key>/` (replacing an incomplete folder of that key). Clears the key's failure
    /// record.
    pub fn commit(&self, staged: &Path, manifest: &Manifest) -> Result<(), ResultsError> {
        // Written in place (no tmp + rename): the staging folder becomes visible as a whole,
        // by the rename below, only after the manifest and the folder are on disk.
        let file = self.write_manifest(staged, manifest)?;
        let mpath = staged.join(MANIFEST_FILE);
        file.sync_all().map_err(io_err(&mpath))?;
        drop(file);
        sync_dir(staged);
        self.publish(staged, &manifest.key)?;
        sync_dir(&self.dir.tasks_dir());
        self.clear_failure(&manifest.key)
    }

    /// The first half of [`ResultsWriter::commit`], for callers that make many results durable
    /// together (the coordinator's group commit): writes `manifest.json` into the staging
    /// folder and returns it open, **not yet synced**. The caller must flush it, the result's
    /// files and the staging folder before [`ResultsWriter::publish`].
    pub fn write_manifest(&self, staged: &Path, manifest: &Manifest) -> Result<File, ResultsError> {
        let mpath = staged.join(MANIFEST_FILE);
        let bytes = json_line(manifest).map_err(|e| io_err(&mpath)(e))?;
        let mut file = File::create(&mpath).map_err(io_err(&mpath))?;
        file.write_all(&bytes).map_err(io_err(&mpath))?;
        Ok(file)
    }

    /// The second half of [`ResultsWriter::commit`]: renames a staging folder whose contents
    /// are on disk to `tasks/<key>/` (replacing an incomplete folder of that key). Syncs
    /// nothing: the rename is durable once `tasks/` is flushed
    /// ([`ResultsWriter::sync_tasks_dir`]).
    pub fn publish(&self, staged: &Path, key: &TaskKey) -> Result<(), ResultsError> {
        let target = self.dir.task_dir(key);
        if target.exists() {
            let old = self
                .dir
                .staging_root()
                .join(format!("{key}-{}.old", std::process::id()));
            std::fs::rename(&target, &old).map_err(io_err(&target))?;
            std::fs::rename(staged, &target).map_err(io_err(&target))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(staged, &target).map_err(io_err(&target))?;
        }
        Ok(())
    }

    /// Flushes the entries of `tasks/` (the renames of [`ResultsWriter::publish`]) to disk.
    /// Unlike the best-effort flush of [`ResultsWriter::commit`], an error is returned.
    pub fn sync_tasks_dir(&self) -> Result<(), ResultsError> {
        sync_dir_strict(&self.dir.tasks_dir())
    }

    /// Writes `failures/<key>.json`.
    pub fn write_failure(&self, record: &FailureRecord) -> Result<(), ResultsError> {
        let path = self.dir.failure_path(&record.key);
        let bytes = json_line(record).map_err(|e| io_err(&path)(e))?;
        write_file_atomic(&path, |w| w.write_all(&bytes))
    }

    /// Removes `failures/<key>.json` if present.
    pub fn clear_failure(&self, key: &TaskKey) -> Result<(), ResultsError> {
        let path = self.dir.failure_path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Writes `sweep.json`: format, version, name, code version, the canonical spec and the
    /// task keys in grid order, one per line (streamed: memory does not grow with the plan).
    pub fn write_plan(&self, plan: &Plan) -> Result<(), ResultsError> {
        let path = self.dir.plan_path();
        let spec = serde_json::to_value(plan.spec()).map_err(|e| io_err(&path)(e.into()))?;
        let str_json = |s: &str| serde_json::Value::String(s.to_string()).to_string();
        write_file_atomic(&path, |w| {
            writeln!(w, "{{")?;
            writeln!(w, "  \"format\": {},", str_json(PLAN_FORMAT))?;
            writeln!(w, "  \"version\": \"{FORMAT_VERSION}\",")?;
            writeln!(w, "  \"name\": {},", str_json(&plan.spec().name))?;
            writeln!(w, "  \"code_version\": {},", str_json(plan.code_version()))?;
            writeln!(w, "  \"spec\": {},", canonical_json(&spec))?;
            let grids: Vec<serde_json::Value> = plan
                .grids()
                .into_iter()
                .map(|g| {
                    serde_json::json!({"name": g.name, "first": g.tasks.start, "count": g.tasks.len()})
                })
                .collect();
            writeln!(
                w,
                "  \"grids\": {},",
                canonical_json(&serde_json::Value::Array(grids))
            )?;
            writeln!(w, "  \"tasks\": [")?;
            for task in plan.tasks() {
                let sep = if task.index + 1 < plan.len() { "," } else { "" };
                writeln!(w, "    {}{sep}", str_json(task.key.as_str()))?;
            }
            writeln!(w, "  ]")?;
            writeln!(w, "}}")
        })
    }

    /// Writes `output_<grid>.txt` for every grid: the summary lines of its complete tasks in
    /// grid order, read from their manifests (tasks skipped by this run contribute too). Calls
    /// `on_line(grid, line)` for each line written.
    pub fn write_summaries(
        &self,
        plan: &Plan,
        mut on_line: impl FnMut(&str, &str),
    ) -> Result<Vec<GridSummary>, ResultsError> {
        let mut out = Vec::new();
        for g in plan.grids() {
            let path = self.dir.summary_path(&g.name);
            let (mut complete, mut incomplete) = (0, 0);
            write_file_atomic(&path, |w| {
                for i in g.tasks.clone() {
                    let Some(task) = plan.task(i) else { break };
                    match self.dir.status(&task, plan.code_version()) {
                        TaskStatus::Complete(m) => {
                            complete += 1;
                            for line in &m.summary_lines {
                                writeln!(w, "{line}")?;
                                on_line(&g.name, line);
                            }
                        }
                        _ => incomplete += 1,
                    }
                }
                Ok(())
            })?;
            out.push(GridSummary {
                grid: g.name,
                path,
                complete,
                incomplete,
            });
        }
        Ok(out)
    }
}
