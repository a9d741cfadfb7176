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
//! complete ([`verify_task_dir`]) only when, all together:
//!
//! * `tasks/<key>/` is a real folder (not a link) holding exactly `manifest.json` and the files
//!   a task produces ([`crate::task::RESULT_FILES`]) under the names the manifest's storage
//!   gives them ([`Storage::result_files`]), and for a live task ([`TaskSpec::live`]) also
//!   [`crate::task::LIVE_FILES`] ([`Storage::task_files`]), each a regular file (not a link);
//! * a live task's `serve.json` does not say `"interrupted": true`;
//! * the manifest is valid (format, version), names the folder's key, and that key is the one
//!   its own spec, input digests and code version hash to ([`crate::sweep::key::task_key`]);
//!   when the planned task is known, the manifest's key, code version, location-free spec and
//!   input digests are the planned task's;
//! * the manifest lists exactly those files, and each has the listed size and SHA-256 (of the
//!   stored bytes: a compressed file is hashed as it is on disk);
//! * its outcome is the files' own: `num_requests` is `summary.json`'s, the summary lines are
//!   the last lines of `log.txt` (decompressed when stored as `log.txt.zst`).
//!
//! **Storage (issue #15).** A manifest's `storage` says how the files are stored: absent (or
//! `"plain"`) for the plain files, as every result before issue #15; `"zstd"` for
//! `batches.jsonl` and `log.txt` stored compressed as `batches.jsonl.zst` and `log.txt.zst`
//! ([`crate::storage`]). A `zstd` manifest has format version 1.1 (an older reader misreads
//! nothing: it finds files it does not expect, calls the result incomplete naming them, and
//! runs the task again); a plain one is still written as 1.0, byte for byte as before. Both forms are complete results: a sweep skips a complete
//! task in either form, whichever form it writes, so one folder may hold both.
//!
//! A folder that fails any of these is not complete: it is re-run (and replaced), as a damaged
//! one. Hashing every file costs a read of the results (about 1.5 GB for the default grid), so
//! a [`ResultsWriter`] hashes a task's files once per run: a task it committed or verified
//! itself is checked again by names and sizes only.
//!
//! Manifests, failure records and `sweep.json` start with a format name and a `"major.minor"`
//! version ([`FORMAT_VERSION`]); readers accept older versions and newer minors, and refuse
//! newer majors with a message naming both versions. Bump the minor for added fields, the major
//! for anything an older reader would misread.

mod listing;
pub mod overview;

pub use listing::{write_plan_listing, PlanCounts};

use crate::ids::TaskKey;
use crate::safe_write::{self, Durability};
use crate::storage::{self, Storage};
use crate::sweep::digest::{canonical_json, file_sha256};
use crate::sweep::key::{location_free, task_key};
use crate::sweep::{Plan, PlannedTask};
use crate::task::TaskSpec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Format name of `tasks/<key>/manifest.json`.
pub const MANIFEST_FORMAT: &str = "apparate-rs/task-manifest";
/// Format name of `failures/<key>.json`.
pub const FAILURE_FORMAT: &str = "apparate-rs/task-failure";
/// Format name of `sweep.json`.
pub const PLAN_FORMAT: &str = "apparate-rs/sweep-plan";
/// Version written into manifests of plain results, failure records and `sweep.json`.
pub const FORMAT_VERSION: FormatVersion = FormatVersion { major: 1, minor: 0 };
/// Version written into manifests of results stored compressed ([`Storage::Zstd`]): a minor
/// bump (the added `storage` field). An older reader misreads nothing: it finds files it does
/// not expect, judges the result incomplete (naming them) and runs the task again.
pub const STORED_MANIFEST_VERSION: FormatVersion = FormatVersion { major: 1, minor: 1 };
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
    /// How the result files are stored (absent: plain).
    #[serde(default, skip_serializing_if = "Storage::is_plain")]
    pub storage: Storage,
    /// The result files, by stored name, with the stored bytes' sizes and digests.
    pub files: Vec<ResultFile>,
    /// Requests served by Apparate.
    pub num_requests: usize,
    /// The artifact-style summary lines (`output_{grid}.txt`).
    pub summary_lines: Vec<String>,
    /// Timings.
    pub timings: Timings,
}

impl Manifest {
    /// The manifest of `task` with these files and outcome (its storage is the files' names':
    /// [`Storage::of_names`]).
    pub fn new(
        task: &PlannedTask,
        code_version: &str,
        files: Vec<ResultFile>,
        num_requests: usize,
        summary_lines: Vec<String>,
        timings: Timings,
    ) -> Manifest {
        let storage = Storage::of_names(files.iter().map(|f| f.name.as_str()));
        Manifest {
            format: MANIFEST_FORMAT.to_string(),
            version: match storage {
                Storage::Plain => FORMAT_VERSION,
                Storage::Zstd => STORED_MANIFEST_VERSION,
            },
            key: task.key.clone(),
            status: ManifestStatus::Complete,
            code_version: code_version.to_string(),
            spec: task.spec.clone(),
            digests: task.digests.clone(),
            storage,
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
    /// A worker's upload was not a complete result of its task (other files, sizes or digests
    /// than a task produces); it was refused and nothing was committed.
    InvalidResult,
    /// A live run's `ee-backend serve` failed (the message holds its exit status and the last
    /// line of its stderr) or was interrupted.
    Serve,
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
    /// A staged result is not what a task produces (nothing was committed).
    #[error("not committed: {message}")]
    NotAResult {
        /// The problem, naming the file.
        message: String,
    },
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
    /// `tasks/<key>/` is a symbolic link or not a folder.
    #[error("{path}: expected a folder, found {found}")]
    NotAFolder {
        /// The task folder.
        path: PathBuf,
        /// What is there.
        found: String,
    },
    /// The manifest does not describe this task (its key, spec, input digests or code version
    /// disagree with the folder, the planned task or each other).
    #[error("{path}: {what}")]
    NotThisTask {
        /// The manifest.
        path: PathBuf,
        /// Which part disagrees, with both values where short.
        what: String,
    },
    /// The folder or the manifest's file list is not exactly the files a task produces.
    #[error("{path}: {what}")]
    FileSet {
        /// The folder, the manifest or the unexpected entry.
        path: PathBuf,
        /// What is missing, extra or repeated.
        what: String,
    },
    /// A listed file's contents are not the ones the manifest lists.
    #[error("{path}: SHA-256 is {found}, the manifest lists {expected}")]
    Digest {
        /// The result file.
        path: PathBuf,
        /// Digest listed in the manifest.
        expected: String,
        /// Digest of the file.
        found: String,
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

    /// Whether `task` is complete (see the module docs; every file is hashed).
    pub fn status(&self, task: &PlannedTask, code_version: &str) -> TaskStatus {
        self.status_checked(task, code_version, Digests::Verify)
    }

    fn status_checked(
        &self,
        task: &PlannedTask,
        code_version: &str,
        digests: Digests,
    ) -> TaskStatus {
        let dir = self.task_dir(&task.key);
        if std::fs::symlink_metadata(&dir).is_err() {
            return TaskStatus::Missing;
        }
        match verify_task_dir(&dir, Some((task, code_version)), digests) {
            Ok(m) => TaskStatus::Complete(Box::new(m)),
            Err(p) => TaskStatus::Invalid(p),
        }
    }

    /// Takes the directory's lock (creating the directory), clears `tasks/.tmp/` left by killed
    /// runs, and returns the writer. Fails with [`ResultsError::InUse`] while another process
    /// holds it; the lock is released when the writer is dropped or the process dies.
    pub fn lock(&self) -> Result<ResultsWriter, ResultsError> {
        std::fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        let lock_path = self.root.join(".lock");
        let mut file = safe_write::open_no_follow(&lock_path).map_err(io_err(&lock_path))?;
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
        // Our folders inside the user's: links are refused (named), never followed.
        for d in [self.tasks_dir(), self.failures_dir()] {
            safe_write::real_dir(&d).map_err(io_err(&d))?;
        }
        // Debris of killed runs; a link here is removed itself, never what it points to.
        let staging = self.staging_root();
        remove_any(&staging)?;
        safe_write::real_dir(&staging).map_err(io_err(&staging))?;
        Ok(ResultsWriter {
            dir: self.clone(),
            _lock: file,
            hashed: Mutex::new(HashSet::new()),
            storage: Storage::Plain,
        })
    }

    /// As [`ResultsDir::lock`], for a writer whose tasks store their files as `storage` says
    /// (a sweep's default is [`Storage::Zstd`]; [`ResultsDir::lock`] gives plain files).
    pub fn lock_stored(&self, storage: Storage) -> Result<ResultsWriter, ResultsError> {
        let mut writer = self.lock()?;
        writer.storage = storage;
        Ok(writer)
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

/// Whether [`verify_task_dir`] hashes the result files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digests {
    /// Hash every file and compare with the manifest.
    Verify,
    /// Names, kinds and sizes only (for a folder this process already hashed).
    SizesOnly,
}

/// Checks that `dir` (a `tasks/<key>/` folder) holds a complete result (see the module docs)
/// and returns its manifest. `expected` is the planned task and the code version, when known
/// (the analysis does not know them and checks the manifest against itself and the folder).
pub fn verify_task_dir(
    dir: &Path,
    expected: Option<(&PlannedTask, &str)>,
    digests: Digests,
) -> Result<Manifest, ManifestProblem> {
    let found = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Some("a symbolic link".to_string()),
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some("something that is not a folder".to_string()),
        Err(e) => Some(format!("nothing readable ({e})")),
    };
    if let Some(found) = found {
        return Err(ManifestProblem::NotAFolder {
            path: dir.to_path_buf(),
            found,
        });
    }
    let path = dir.join(MANIFEST_FILE);
    let bytes = read_regular_file(&path).map_err(|source| ManifestProblem::Unreadable {
        path: path.clone(),
        source,
    })?;
    let manifest = parse_manifest(&path, &bytes)?;
    if let Some((task, code_version)) = expected {
        if manifest.key != task.key || manifest.code_version != code_version {
            return Err(ManifestProblem::Mismatch {
                path,
                found_key: manifest.key.to_string(),
                found_version: manifest.code_version,
                expected_version: code_version.to_string(),
            });
        }
        if location_free(&manifest.spec) != location_free(&task.spec) {
            return Err(not_this_task(
                &path,
                "its task spec is not the planned task's",
            ));
        }
        if manifest.digests != task.digests {
            return Err(not_this_task(
                &path,
                "its input digests are not the planned task's",
            ));
        }
    }
    check_folder_name(dir, &path, &manifest)?;
    check_manifest_itself(&path, &manifest)?;
    check_result_files(dir, &manifest, digests)?;
    Ok(manifest)
}

/// The checks of [`verify_task_dir`] that apply to a staging folder about to be committed with
/// `manifest` (its name is not the key yet; the files were just written or received and
/// hashed): the manifest's key is its own spec's, it lists exactly the files a task produces,
/// and the folder holds exactly those, with the listed sizes. Used by
/// [`ResultsWriter::commit`] and the coordinator before anything is published.
pub fn check_staged(staged: &Path, manifest: &Manifest) -> Result<(), ManifestProblem> {
    check_manifest_itself(&staged.join(MANIFEST_FILE), manifest)?;
    check_result_files(staged, manifest, Digests::SizesOnly)
}

fn not_this_task(path: &Path, what: &str) -> ManifestProblem {
    ManifestProblem::NotThisTask {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

/// Reads a file that must be a regular file (a link is refused, not followed).
fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let m = std::fs::symlink_metadata(path)?;
    if !m.file_type().is_file() {
        return Err(std::io::Error::other(
            "expected a regular file, found a symbolic link or something else",
        ));
    }
    if m.len() > MAX_MANIFEST_BYTES {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than any result's manifest or summary ({MAX_MANIFEST_BYTES})",
            m.len()
        )));
    }
    std::fs::read(path)
}

/// The manifest's key is its folder's name.
fn check_folder_name(dir: &Path, path: &Path, manifest: &Manifest) -> Result<(), ManifestProblem> {
    let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    if folder.as_deref() != Some(manifest.key.as_str()) {
        return Err(not_this_task(
            path,
            &format!(
                "it is the manifest of {}, in the folder of {}",
                manifest.key,
                folder.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// The manifest's key is the hash of its own spec, input digests and code version; it lists
/// exactly the files of `Storage::task_files` (the result files under the names of its storage,
/// and a live task's `LIVE_FILES`), once each, in order.
fn check_manifest_itself(path: &Path, manifest: &Manifest) -> Result<(), ManifestProblem> {
    let recomputed = task_key(&manifest.spec, &manifest.digests, &manifest.code_version);
    if recomputed != manifest.key {
        return Err(not_this_task(
            path,
            &format!(
                "its spec, input digests and code version give the key {recomputed}, not {}",
                manifest.key
            ),
        ));
    }
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    let live = manifest.spec.live.is_some();
    let expected = manifest.storage.task_files(live);
    if listed != expected {
        return Err(ManifestProblem::FileSet {
            path: path.to_path_buf(),
            what: format!(
                "lists the files [{}], expected exactly [{}] (storage {}{})",
                listed.join(", "),
                expected.join(", "),
                manifest.storage,
                if live { ", a live task" } else { "" }
            ),
        });
    }
    if manifest.storage != Storage::Plain && manifest.version < STORED_MANIFEST_VERSION {
        return Err(ManifestProblem::FileSet {
            path: path.to_path_buf(),
            what: format!(
                "storage {} needs manifest version {STORED_MANIFEST_VERSION}, it says {}",
                manifest.storage, manifest.version
            ),
        });
    }
    Ok(())
}

/// The folder holds exactly the listed files and the manifest, all regular files, each with
/// its listed size (and digest).
fn check_result_files(
    dir: &Path,
    manifest: &Manifest,
    digests: Digests,
) -> Result<(), ManifestProblem> {
    let set_problem = |path: PathBuf, what: String| ManifestProblem::FileSet { path, what };
    let entries =
        std::fs::read_dir(dir).map_err(|e| set_problem(dir.to_path_buf(), e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| set_problem(dir.to_path_buf(), e.to_string()))?;
        let name = entry.file_name();
        let stored = manifest.storage.task_files(manifest.spec.live.is_some());
        let known = name
            .to_str()
            .is_some_and(|n| n == MANIFEST_FILE || stored.contains(&n));
        if !known {
            return Err(set_problem(
                entry.path(),
                "not a file a task produces (a complete result holds only those and the manifest)"
                    .to_string(),
            ));
        }
    }
    for f in &manifest.files {
        let p = dir.join(&f.name);
        let found = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_file() && m.len() == f.bytes => None,
            Ok(m) if m.file_type().is_file() => Some(format!("found {}", m.len())),
            Ok(m) if m.file_type().is_symlink() => Some("found a symbolic link".to_string()),
            Ok(_) => Some("found something that is not a file".to_string()),
            Err(e) => Some(format!("cannot read it: {e}")),
        };
        if let Some(found) = found {
            return Err(ManifestProblem::File {
                path: p,
                expected: f.bytes,
                found,
            });
        }
    }
    check_outcome(dir, manifest)?;
    if digests == Digests::Verify {
        for f in &manifest.files {
            let p = dir.join(&f.name);
            let found = file_sha256(&p).map_err(|e| ManifestProblem::File {
                path: p.clone(),
                expected: f.bytes,
                found: format!("cannot read it: {e}"),
            })?;
            if found != f.sha256 {
                return Err(ManifestProblem::Digest {
                    path: p,
                    expected: f.sha256.clone(),
                    found,
                });
            }
        }
    }
    Ok(())
}

/// The last [`LOG_TAIL_BYTES`] of a result's `log.txt` (stored as `storage` says).
fn log_tail(dir: &Path, storage: Storage) -> Result<Vec<u8>, ManifestProblem> {
    let log_path = dir.join(storage.stored_name("log.txt"));
    match storage {
        Storage::Plain => read_tail(&log_path, LOG_TAIL_BYTES),
        Storage::Zstd => storage::open_stored(&log_path, true)
            .and_then(|r| storage::read_tail_of(r, LOG_TAIL_BYTES as usize, MAX_LOG_BYTES)),
    }
    .map_err(|e| ManifestProblem::File {
        path: log_path,
        expected: 0,
        found: format!("cannot read it: {e}"),
    })
}

/// The manifest's outcome is the files' own: `num_requests` is `summary.json`'s and the summary
/// lines are the last lines of `log.txt` (so they are covered by those files' digests). A live
/// task's `serve.json` must not say that the run was interrupted.
fn check_outcome(dir: &Path, manifest: &Manifest) -> Result<(), ManifestProblem> {
    let mpath = dir.join(MANIFEST_FILE);
    if manifest.spec.live.is_some() {
        check_not_interrupted(dir)?;
    }
    let summary_path = dir.join("summary.json");
    let summary: serde_json::Value = read_regular_file(&summary_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| ManifestProblem::FileSet {
            path: summary_path.clone(),
            what: format!("not a summary: {e}"),
        })?;
    let n = summary
        .get("num_requests")
        .and_then(serde_json::Value::as_u64);
    if n != Some(manifest.num_requests as u64) {
        return Err(not_this_task(
            &mpath,
            &format!(
                "num_requests is {}, summary.json says {}",
                manifest.num_requests,
                n.map_or_else(|| "nothing".to_string(), |n| n.to_string())
            ),
        ));
    }
    let tail = log_tail(dir, manifest.storage)?;
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().collect();
    let k = manifest.summary_lines.len();
    let matches = k <= MAX_SUMMARY_LINES
        && lines.len() >= k
        && lines[lines.len() - k..]
            .iter()
            .zip(&manifest.summary_lines)
            .all(|(a, b)| *a == b.as_str());
    if !matches {
        return Err(not_this_task(
            &mpath,
            &format!(
                "its summary lines are not the last lines of {}",
                manifest.storage.stored_name("log.txt")
            ),
        ));
    }
    Ok(())
}

/// A live run's `serve.json` is a JSON object that does not say `"interrupted": true` (a run
/// stopped by a signal writes complete files for what it served: never a task's result).
fn check_not_interrupted(dir: &Path) -> Result<(), ManifestProblem> {
    let path = dir.join(crate::task::LIVE_FILES[0]);
    let serve: serde_json::Value = read_regular_file(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| ManifestProblem::FileSet {
            path: path.clone(),
            what: format!("not a live run's report: {e}"),
        })?;
    match serve.get("interrupted") {
        _ if !serve.is_object() => Err(ManifestProblem::FileSet {
            path,
            what: "not a live run's report: expected a JSON object".to_string(),
        }),
        Some(serde_json::Value::Bool(true)) => Err(ManifestProblem::FileSet {
            path,
            what: "the live run was interrupted (\"interrupted\": true); an interrupted run is never a complete result".to_string(),
        }),
        _ => Ok(()),
    }
}

/// What a finished task's files say its outcome is (for the manifest of a task whose files
/// were written by another program, a live run's `ee-backend serve`): `num_requests` from
/// `summary.json`, and the last `summary_lines` lines of `log.txt` (stored as `storage` says).
pub fn outcome_of(
    dir: &Path,
    storage: Storage,
    summary_lines: usize,
) -> Result<(usize, Vec<String>), ManifestProblem> {
    let summary_path = dir.join("summary.json");
    let summary: serde_json::Value = read_regular_file(&summary_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| ManifestProblem::FileSet {
            path: summary_path.clone(),
            what: format!("not a summary: {e}"),
        })?;
    let n = summary
        .get("num_requests")
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| ManifestProblem::FileSet {
            path: summary_path.clone(),
            what: "not a summary: no num_requests".to_string(),
        })?;
    let tail = log_tail(dir, storage)?;
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().collect();
    let k = summary_lines.min(MAX_SUMMARY_LINES).min(lines.len());
    Ok((
        n,
        lines[lines.len() - k..]
            .iter()
            .map(|l| l.to_string())
            .collect(),
    ))
}

/// The most summary lines a task has (NLP: 2).
const MAX_SUMMARY_LINES: usize = 2;
/// How much of the end of `log.txt` is read to find the summary lines.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// The most `log.txt.zst` is decompressed to find its last lines (paper-scale logs are tens of
/// MB): a small forged file cannot make the check run for ever.
const MAX_LOG_BYTES: u64 = 4 << 30;
/// The largest manifest read (real ones are a few KB).
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// The last `max` bytes of a regular file.
fn read_tail(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let m = std::fs::symlink_metadata(path)?;
    if !m.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut f = File::open(path)?;
    let start = m.len().saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(buf)
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

/// Writes `path` through a temporary file + flush + rename (a link at `path` is replaced, never
/// followed; see [`crate::safe_write`]).
fn write_file_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), ResultsError> {
    safe_write::write_atomic(path, Durability::Sync, write).map_err(io_err(path))
}

/// Removes whatever is at `path` (a folder with its contents, a file, a link: never what a link
/// points to); nothing there is fine.
pub fn remove_any(path: &Path) -> Result<(), ResultsError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(io_err(path)),
        Ok(_) => std::fs::remove_file(path).map_err(io_err(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
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
    /// Keys whose files this writer hashed or wrote (checked again by sizes only).
    hashed: Mutex<HashSet<TaskKey>>,
    /// How the tasks it runs store their files.
    storage: Storage,
}

impl ResultsWriter {
    /// The directory.
    pub fn dir(&self) -> &ResultsDir {
        &self.dir
    }

    /// How the tasks this writer runs store their files (complete results of the other form
    /// are accepted as they are).
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// Whether `task` is complete (see the module docs). Its files are hashed the first time
    /// this writer looks at it; later looks (and tasks it committed) check sizes only.
    pub fn status(&self, task: &PlannedTask, code_version: &str) -> TaskStatus {
        let hashed = self
            .hashed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&task.key);
        let digests = if hashed {
            Digests::SizesOnly
        } else {
            Digests::Verify
        };
        let status = self.dir.status_checked(task, code_version, digests);
        if matches!(status, TaskStatus::Complete(_)) && !hashed {
            self.remember_hashed(&task.key);
        }
        status
    }

    fn remember_hashed(&self, key: &TaskKey) {
        self.hashed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
    }

    /// A fresh, empty staging folder for `key`: `tasks/.tmp/<key>-<pid>/`.
    pub fn stage(&self, key: &TaskKey) -> Result<PathBuf, ResultsError> {
        let path = self
            .dir
            .staging_root()
            .join(format!("{key}-{}", std::process::id()));
        remove_any(&path)?;
        std::fs::create_dir(&path).map_err(io_err(&path))?;
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
        check_staged(staged, manifest).map_err(|p| ResultsError::NotAResult {
            message: p.to_string(),
        })?;
        file.sync_all().map_err(io_err(&mpath))?;
        drop(file);
        sync_dir(staged);
        self.publish(staged, &manifest.key)?;
        sync_dir(&self.dir.tasks_dir());
        self.remember_hashed(&manifest.key);
        self.clear_failure(&manifest.key)
    }

    /// The first half of [`ResultsWriter::commit`], for callers that make many results durable
    /// together (the coordinator's group commit): writes `manifest.json` into the staging
    /// folder and returns it open, **not yet synced**. The caller must flush it, the result's
    /// files and the staging folder before [`ResultsWriter::publish`].
    pub fn write_manifest(&self, staged: &Path, manifest: &Manifest) -> Result<File, ResultsError> {
        let mpath = staged.join(MANIFEST_FILE);
        let bytes = json_line(manifest).map_err(|e| io_err(&mpath)(e))?;
        // The staging folder is ours and fresh; `create_new` still never follows a link.
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&mpath)
            .map_err(io_err(&mpath))?;
        file.write_all(&bytes).map_err(io_err(&mpath))?;
        Ok(file)
    }

    /// The second half of [`ResultsWriter::commit`]: renames a staging folder whose contents
    /// are on disk to `tasks/<key>/` (replacing an incomplete folder of that key). Syncs
    /// nothing: the rename is durable once `tasks/` is flushed
    /// ([`ResultsWriter::sync_tasks_dir`]).
    pub fn publish(&self, staged: &Path, key: &TaskKey) -> Result<(), ResultsError> {
        let target = self.dir.task_dir(key);
        // Whatever is there (a damaged folder, a link, a file) is moved away, never followed.
        if std::fs::symlink_metadata(&target).is_ok() {
            let old = self
                .dir
                .staging_root()
                .join(format!("{key}-{}.old", std::process::id()));
            remove_any(&old)?;
            std::fs::rename(&target, &old).map_err(io_err(&target))?;
            std::fs::rename(staged, &target).map_err(io_err(&target))?;
            let _ = remove_any(&old);
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
        self.write_plan_keys(plan, plan.tasks().map(|t| t.key))
    }

    /// As [`ResultsWriter::write_plan`], with the plan's task keys (in grid order) already
    /// computed by the caller (a million-task sweep computes them once).
    pub fn write_plan_keys(
        &self,
        plan: &Plan,
        keys: impl Iterator<Item = TaskKey>,
    ) -> Result<(), ResultsError> {
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
            for (index, key) in keys.enumerate() {
                let sep = if index + 1 < plan.len() { "," } else { "" };
                writeln!(w, "    {}{sep}", str_json(key.as_str()))?;
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
                    match self.status(&task, plan.code_version()) {
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
