//! Backend inputs (`[inputs] kind = "backend"`): a real model run once by `ee-backend gen-data`
//! into a content-addressed artifact folder, `<results>/inputs/<digest>/`, that every task of
//! the sweep then reads as [`Inputs::Artifact`].
//!
//! * The **digest** ([`inputs_digest`]) is the SHA-256 of the canonical JSON of the weights
//!   file's SHA-256, the data (a file's SHA-256, or every file of a folder by its relative path,
//!   in name order), the labels file's SHA-256, the model, its name in the files, the dataset
//!   name, the device, the seed and `ee-backend --version`. It is the task digest `backend` ([`DIGEST_KEY`]), so a
//!   different model, weights file, data, device, seed or backend never reuses results.
//! * The folder is **built** ([`ensure_built`]) into `inputs/.tmp/<digest>/` and renamed into
//!   place only after `gen-data` exited with 0, wrote every file the tasks read, and its
//!   manifest ([`MANIFEST_FILE`]: the digest and every file's size and SHA-256) was written. A
//!   crash or a failed `gen-data` leaves only `.tmp` debris, cleared by the next build.
//! * A folder is **reused** only when its manifest names the expected digest and the folder
//!   holds exactly the listed files with their sizes and SHA-256 ([`verify_inputs_dir`]);
//!   anything else is removed and built again.
//! * `ee-backend` is the binary named by `APPARATE_EE_BACKEND` ([`ENV_EE_BACKEND`]), else the
//!   one beside the running executable, as [`crate::report_hook`] finds `analysis`
//!   ([`find_ee_backend`]).

use crate::input_file::check_regular;
use crate::safe_write::{self, Durability};
use crate::sweep::digest::{canonical_json, file_sha256, sha256_hex};
use crate::task::{BackendDevice, Inputs};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment variable naming the `ee-backend` binary to run.
pub const ENV_EE_BACKEND: &str = "APPARATE_EE_BACKEND";
/// The key of the inputs digest among a task's digests.
pub const DIGEST_KEY: &str = "backend";
/// The manifest written into a built inputs folder.
pub const MANIFEST_FILE: &str = "inputs-manifest.json";
/// The manifest's format name.
pub const MANIFEST_FORMAT: &str = "apparate-backend-inputs";
/// The manifest's format version (a newer one is refused, and the folder rebuilt).
pub const MANIFEST_VERSION: u32 = 1;
/// How to build the backend.
pub const BUILD_HINT: &str = "cargo build --release -p backend";
/// Deepest folder nesting read from a data folder (a link loop ends here).
const MAX_DATA_DEPTH: usize = 32;

/// Backend inputs that cannot be located, hashed or built. None is worth retrying without a
/// change, except [`BackendError::Io`].
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No `ee-backend` binary was found.
    #[error("ee-backend not found (looked for {looked}); build it with `{BUILD_HINT}` or set {ENV_EE_BACKEND} to its path")]
    NotFound {
        /// Where it was looked for.
        looked: String,
    },
    /// `ee-backend --version` did not run or answer.
    #[error("{}: `--version` failed: {message}", exe.display())]
    Version {
        /// The binary.
        exe: PathBuf,
        /// Why.
        message: String,
    },
    /// An input of the backend (weights, data, labels) cannot be read for the digest.
    #[error("{}: {problem}", path.display())]
    Input {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `ee-backend gen-data` failed, or did not write what the tasks read; nothing was kept.
    #[error("`{} gen-data` for model {model}: {message}", exe.display())]
    Build {
        /// The binary.
        exe: PathBuf,
        /// The model.
        model: String,
        /// Its exit status and the last line it wrote on stderr, or the missing file.
        message: String,
    },
    /// A folder handed in as a build is not one (no folder, a file the tasks read missing, a
    /// link inside); nothing was kept.
    #[error("{}: {message}", dir.display())]
    NotABuild {
        /// The folder.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The inputs folder cannot be written (retryable).
    #[error("{}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackendError + '_ {
    move |source| BackendError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The `ee-backend` binary and its `--version` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendExe {
    /// The binary.
    pub path: PathBuf,
    /// What `--version` printed (trimmed), part of the inputs digest.
    pub version: String,
}

/// Name of the backend executable on this platform.
pub fn ee_backend_exe_name() -> String {
    format!("ee-backend{}", std::env::consts::EXE_SUFFIX)
}

/// The `ee-backend` binary: `$APPARATE_EE_BACKEND` when set (it must be a file), else the one
/// beside the running executable (or one folder up, where cargo puts test executables).
pub fn find_ee_backend() -> Result<PathBuf, BackendError> {
    if let Some(p) = std::env::var_os(ENV_EE_BACKEND) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(BackendError::NotFound {
                looked: format!("{ENV_EE_BACKEND}={}, which is not a file", p.display()),
            })
        };
    }
    let mut looked = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            looked.push(dir.join(ee_backend_exe_name()));
            if let Some(up) = dir.parent() {
                looked.push(up.join(ee_backend_exe_name()));
            }
        }
    }
    if let Some(p) = looked.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    let looked: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
    Err(BackendError::NotFound {
        looked: if looked.is_empty() {
            format!("{ENV_EE_BACKEND} (unset)")
        } else {
            format!("{} and {ENV_EE_BACKEND} (unset)", looked.join(", "))
        },
    })
}

/// Runs `exe --version` and returns its trimmed stdout.
pub fn backend_version(exe: &Path) -> Result<String, BackendError> {
    let fail = |message: String| BackendError::Version {
        exe: exe.to_path_buf(),
        message,
    };
    let out = Command::new(exe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}{}",
            out.status,
            last_line(&out.stderr)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        )));
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if version.is_empty() {
        return Err(fail("it printed nothing".to_string()));
    }
    Ok(version)
}

/// [`find_ee_backend`], then [`backend_version`].
pub fn locate() -> Result<BackendExe, BackendError> {
    let path = find_ee_backend()?;
    let version = backend_version(&path)?;
    Ok(BackendExe { path, version })
}

/// The line of a failed command's stderr to report: the last one starting with `error`, else
/// the last non-empty one.
pub(crate) fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rfind(|l| l.starts_with("error"))
        .or(lines.last())
        .map(|l| l.to_string())
}

/// Removes whatever is at `path` (a folder with its contents, a file, a link: never what a link
/// points to); nothing there is fine.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A borrowed view of [`Inputs::Backend`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackendInputs<'a> {
    /// `--model`.
    pub model: &'a str,
    /// `--name` (passed only when it is not `model`).
    pub name: &'a str,
    /// `--dataset`.
    pub dataset: &'a str,
    /// `--weights`.
    pub weights: &'a Path,
    /// `--data`.
    pub data: &'a Path,
    /// `--labels`.
    pub labels: Option<&'a Path>,
    /// `--device`.
    pub device: BackendDevice,
    /// `--seed`.
    pub seed: Option<u64>,
}

impl<'a> BackendInputs<'a> {
    /// The backend inputs of `inputs`, if they are that kind.
    pub fn of(inputs: &'a Inputs) -> Option<BackendInputs<'a>> {
        match inputs {
            Inputs::Backend {
                model,
                name,
                dataset,
                weights,
                data,
                labels,
                device,
                seed,
            } => Some(BackendInputs {
                model,
                name,
                dataset,
                weights,
                data,
                labels: labels.as_deref(),
                device: *device,
                seed: *seed,
            }),
            _ => None,
        }
    }

    /// The `gen-data` arguments writing into `out`.
    pub fn gen_data_args(&self, out: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "gen-data".into(),
            "--model".into(),
            self.model.into(),
            "--weights".into(),
            self.weights.into(),
            "--data".into(),
            self.data.into(),
        ];
        if let Some(l) = self.labels {
            args.extend(["--labels".into(), l.into()]);
        }
        if self.name != self.model {
            args.extend(["--name".into(), self.name.into()]);
        }
        args.extend([
            "--dataset".into(),
            self.dataset.into(),
            "--device".into(),
            self.device.name().into(),
            "--out".into(),
            out.into(),
        ]);
        if let Some(s) = self.seed {
            args.extend(["--seed".into(), s.to_string().into()]);
        }
        args
    }
}

fn input_sha(path: &Path) -> Result<String, BackendError> {
    file_sha256(path).map_err(|e| BackendError::Input {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

/// The data's part of the digest: a file's SHA-256, or every file of a folder (recursively,
/// in name order) by its `/`-separated relative path.
fn data_material(data: &Path) -> Result<serde_json::Value, BackendError> {
    let meta = std::fs::metadata(data).map_err(|e| BackendError::Input {
        path: data.to_path_buf(),
        problem: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Ok(serde_json::json!({"file": input_sha(data)?}));
    }
    let mut files = Vec::new();
    walk_data(data, "", 0, &mut files)?;
    if files.is_empty() {
        return Err(BackendError::Input {
            path: data.to_path_buf(),
            problem: "the data folder holds no file".to_string(),
        });
    }
    let files: Vec<serde_json::Value> = files
        .into_iter()
        .map(|(path, sha256)| serde_json::json!({"path": path, "sha256": sha256}))
        .collect();
    Ok(serde_json::json!({ "folder": files }))
}

fn walk_data(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, String)>,
) -> Result<(), BackendError> {
    let bad = |path: &Path, problem: String| BackendError::Input {
        path: path.to_path_buf(),
        problem,
    };
    if depth > MAX_DATA_DEPTH {
        return Err(bad(
            dir,
            format!("folders nested deeper than {MAX_DATA_DEPTH} levels (a link loop?)"),
        ));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| bad(dir, e.to_string()))? {
        let entry = entry.map_err(|e| bad(dir, e.to_string()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(bad(
                &entry.path(),
                "a file name that is not UTF-8".to_string(),
            ));
        };
        names.push(name.to_string());
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::metadata(&path).map_err(|e| bad(&path, e.to_string()))?;
        if meta.is_dir() {
            walk_data(&path, &rel, depth + 1, out)?;
        } else {
            check_regular(&path).map_err(|e| bad(&path, e.to_string()))?;
            out.push((rel, input_sha(&path)?));
        }
    }
    Ok(())
}

/// The JSON the inputs digest is taken over (see the module docs).
pub fn digest_material(
    b: &BackendInputs<'_>,
    backend_version: &str,
) -> Result<serde_json::Value, BackendError> {
    let labels = match b.labels {
        Some(l) => serde_json::Value::String(input_sha(l)?),
        None => serde_json::Value::Null,
    };
    Ok(serde_json::json!({
        "format": format!("{MANIFEST_FORMAT}/{MANIFEST_VERSION}"),
        "backend_version": backend_version,
        "model": b.model,
        "name": b.name,
        "dataset": b.dataset,
        "device": b.device.name(),
        "seed": b.seed,
        "weights": input_sha(b.weights)?,
        "data": data_material(b.data)?,
        "labels": labels,
    }))
}

/// The inputs digest (see the module docs): reads the weights, data and labels.
pub fn inputs_digest(b: &BackendInputs<'_>, backend_version: &str) -> Result<String, BackendError> {
    let material = digest_material(b, backend_version)?;
    Ok(sha256_hex(canonical_json(&material).as_bytes()))
}

/// `<results>/inputs/`.
pub fn inputs_root(results_root: &Path) -> PathBuf {
    results_root.join("inputs")
}

/// `<results>/inputs/<digest>/`.
pub fn inputs_dir(results_root: &Path, digest: &str) -> PathBuf {
    inputs_root(results_root).join(digest)
}

/// One file of a built inputs folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsFile {
    /// `/`-separated path relative to the folder.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256.
    pub sha256: String,
}

/// [`MANIFEST_FILE`]: what a built folder is and holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsManifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The inputs digest (the folder's name).
    pub digest: String,
    /// `ee-backend --version`.
    pub backend_version: String,
    /// The `gen-data` arguments (paths as given then; not part of the digest).
    pub command: Vec<String>,
    /// Every file of the folder but the manifest, in path order.
    pub files: Vec<InputsFile>,
}

/// Every regular file under `dir` but the manifest (path order); links and other kinds refused.
fn describe(dir: &Path) -> Result<Vec<InputsFile>, String> {
    let mut out = Vec::new();
    describe_into(dir, "", 0, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn describe_into(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<InputsFile>,
) -> Result<(), String> {
    if depth > MAX_DATA_DEPTH {
        return Err(format!("{}: nested too deep", dir.display()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let ft = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if ft.is_dir() {
            describe_into(&path, &rel, depth + 1, out)?;
        } else if ft.is_file() {
            if rel == MANIFEST_FILE {
                continue;
            }
            let bytes = entry
                .metadata()
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            let sha256 = file_sha256(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.push(InputsFile {
                path: rel,
                bytes,
                sha256,
            });
        } else {
            return Err(format!(
                "{}: not a regular file or folder (a link?)",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Why a folder at `inputs/<digest>/` cannot be reused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputsProblem {
    /// Nothing there.
    #[error("not built")]
    Missing,
    /// Something there, but not a complete build of these inputs.
    #[error("{0}")]
    Invalid(String),
}

/// Checks a built folder: a real folder whose manifest names `digest` and lists exactly the
/// files it holds, with their sizes and SHA-256.
pub fn verify_inputs_dir(dir: &Path, digest: &str) -> Result<InputsManifest, InputsProblem> {
    let invalid = |m: String| InputsProblem::Invalid(m);
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(InputsProblem::Missing),
        Err(e) => return Err(invalid(format!("{}: {e}", dir.display()))),
        Ok(m) if !m.is_dir() => {
            return Err(invalid(format!(
                "{}: not a real folder (a link or a file)",
                dir.display()
            )))
        }
        Ok(_) => {}
    }
    let path = dir.join(MANIFEST_FILE);
    let bytes = crate::input_file::read_regular(&path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let manifest: InputsManifest =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if manifest.format != MANIFEST_FORMAT || manifest.version > MANIFEST_VERSION {
        return Err(invalid(format!(
            "{}: format {} version {}, expected {MANIFEST_FORMAT} version {MANIFEST_VERSION}",
            path.display(),
            manifest.format,
            manifest.version
        )));
    }
    if manifest.digest != digest {
        return Err(invalid(format!(
            "{}: digest {}, expected {digest}",
            path.display(),
            manifest.digest
        )));
    }
    let found = describe(dir).map_err(invalid)?;
    if found != manifest.files {
        return Err(invalid(format!(
            "{}: the files differ from its manifest (sizes, SHA-256 or names)",
            dir.display()
        )));
    }
    Ok(manifest)
}

/// What [`ensure_built`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Built {
    /// A complete folder was there already; `gen-data` did not run.
    Reused(PathBuf),
    /// `gen-data` ran and its folder was put in place.
    Built(PathBuf),
}

impl Built {
    /// The folder.
    pub fn dir(&self) -> &Path {
        match self {
            Built::Reused(d) | Built::Built(d) => d,
        }
    }
}

/// A fresh staging path `<results>/inputs/.tmp/<name>` (its parents created as real folders,
/// anything at the path removed), where a build is written before [`publish_build`].
pub fn staging_dir(results_root: &Path, name: &str) -> Result<PathBuf, BackendError> {
    let root = inputs_root(results_root);
    safe_write::real_dir(&root).map_err(io_err(&root))?;
    let staging = root.join(".tmp");
    safe_write::real_dir(&staging).map_err(io_err(&staging))?;
    let out = staging.join(name);
    remove_any(&out).map_err(io_err(&out))?;
    Ok(out)
}

/// Puts the build in `staged` (written by `gen-data` here, or uploaded by a worker) in place as
/// `<results>/inputs/<digest>/`: checks that it is a real folder of regular files holding every
/// file of `needed`, writes its manifest, renames it into place (replacing nothing: an
/// existing folder there is removed first) and returns the manifest. `staged` is left as it
/// is on error (the caller removes it).
pub fn publish_build(
    results_root: &Path,
    staged: &Path,
    digest: &str,
    backend_version: &str,
    command: Vec<String>,
    needed: &[PathBuf],
) -> Result<InputsManifest, BackendError> {
    let not_a_build = |message: String| BackendError::NotABuild {
        dir: staged.to_path_buf(),
        message,
    };
    match std::fs::symlink_metadata(staged) {
        Ok(m) if m.is_dir() => {}
        _ => return Err(not_a_build("wrote no folder there".to_string())),
    }
    for rel in needed {
        if check_regular(&staged.join(rel)).is_err() {
            return Err(not_a_build(format!(
                "did not write {} (a file the tasks read)",
                rel.display()
            )));
        }
    }
    let files = describe(staged).map_err(not_a_build)?;
    let manifest = InputsManifest {
        format: MANIFEST_FORMAT.to_string(),
        version: MANIFEST_VERSION,
        digest: digest.to_string(),
        backend_version: backend_version.to_string(),
        command,
        files,
    };
    let mut text = serde_json::to_vec_pretty(&manifest).map_err(|e| not_a_build(e.to_string()))?;
    text.push(b'\n');
    let manifest_path = staged.join(MANIFEST_FILE);
    safe_write::write_bytes(&manifest_path, Durability::Sync, &text)
        .map_err(io_err(&manifest_path))?;
    let root = inputs_root(results_root);
    let dir = root.join(digest);
    remove_any(&dir).map_err(io_err(&dir))?;
    std::fs::rename(staged, &dir).map_err(io_err(&dir))?;
    if let Ok(d) = std::fs::File::open(&root) {
        let _ = d.sync_all();
    }
    Ok(manifest)
}

/// Makes `<results>/inputs/<digest>/` hold a complete build of `b`: reuses a verified folder,
/// or runs `exe gen-data` into `inputs/.tmp/<digest>/` and renames it into place once it
/// succeeded and holds every file of `needed` (paths relative to the folder). The caller holds
/// the results directory's lock (one builder at a time).
pub fn ensure_built(
    results_root: &Path,
    b: &BackendInputs<'_>,
    exe: &BackendExe,
    digest: &str,
    needed: &[PathBuf],
) -> Result<Built, BackendError> {
    let root = inputs_root(results_root);
    safe_write::real_dir(&root).map_err(io_err(&root))?;
    let dir = root.join(digest);
    match verify_inputs_dir(&dir, digest) {
        Ok(_) => return Ok(Built::Reused(dir)),
        Err(InputsProblem::Missing) => {}
        Err(InputsProblem::Invalid(why)) => {
            tracing::warn!("inputs folder {} is rebuilt: {why}", dir.display());
            remove_any(&dir).map_err(io_err(&dir))?;
        }
    }
    let out = staging_dir(results_root, digest)?;
    let args = b.gen_data_args(&out);
    tracing::info!(
        "building inputs {} with {} gen-data (model {}, device {})",
        &digest[..digest.len().min(12)],
        exe.path.display(),
        b.model,
        b.device.name()
    );
    let fail = |message: String| {
        let _ = remove_any(&out);
        BackendError::Build {
            exe: exe.path.clone(),
            model: b.model.to_string(),
            message,
        }
    };
    let run = Command::new(&exe.path)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot start it: {e}")))?;
    if !run.status.success() {
        return Err(fail(format!(
            "{}{}",
            run.status,
            last_line(&run.stderr)
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        )));
    }
    let command = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    publish_build(results_root, &out, digest, &exe.version, command, needed).map_err(|e| {
        let _ = remove_any(&out);
        match e {
            BackendError::NotABuild { message, .. } => BackendError::Build {
                exe: exe.path.clone(),
                model: b.model.to_string(),
                message: format!("it exited with 0 but {message}"),
            },
            other => other,
        }
    })?;
    Ok(Built::Built(dir))
}

/// One line about a plan's backend inputs for `worker plan` / `coordinator plan` (`None` for
/// other inputs): model, device, backend, digest and whether `<results>/inputs/<digest>/` holds
/// a verified build.
pub fn plan_line(
    model: &str,
    device: BackendDevice,
    exe: &BackendExe,
    digest: &str,
    results_root: &Path,
) -> String {
    let dir = inputs_dir(results_root, digest);
    let state = match verify_inputs_dir(&dir, digest) {
        Ok(_) => "built".to_string(),
        Err(InputsProblem::Missing) => "not built yet".to_string(),
        Err(InputsProblem::Invalid(why)) => format!("to rebuild: {why}"),
    };
    format!(
        "# inputs: backend model {model} on {}, {} ({}), digest {digest}, folder {} ({state})",
        device.name(),
        exe.version,
        exe.path.display(),
        dir.display()
    )
}

/// The files a worker fetches to build backend inputs elsewhere (`source/...` paths, the same
/// layout the digest reads): each with the local path it is read from and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources {
    /// `(path in the sources folder, local path, SHA-256)`, in path order.
    pub files: Vec<(String, PathBuf, String)>,
    /// The weights' path in the sources folder.
    pub weights: String,
    /// The labels' path in the sources folder.
    pub labels: Option<String>,
    /// The data's path in the sources folder (a file, or the folder `source/data`).
    pub data: String,
}

fn file_name_of(path: &Path) -> Result<String, BackendError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| BackendError::Input {
            path: path.to_path_buf(),
            problem: "no UTF-8 file name".to_string(),
        })
}

/// The [`Sources`] of `b` (reads every file for its SHA-256).
pub fn sources(b: &BackendInputs<'_>) -> Result<Sources, BackendError> {
    let mut files = Vec::new();
    let weights = format!("source/weights/{}", file_name_of(b.weights)?);
    files.push((
        weights.clone(),
        b.weights.to_path_buf(),
        input_sha(b.weights)?,
    ));
    let labels = match b.labels {
        Some(l) => {
            let p = format!("source/labels/{}", file_name_of(l)?);
            files.push((p.clone(), l.to_path_buf(), input_sha(l)?));
            Some(p)
        }
        None => None,
    };
    let is_dir = std::fs::metadata(b.data).is_ok_and(|m| m.is_dir());
    let data = if is_dir {
        let mut found = Vec::new();
        walk_data(b.data, "", 0, &mut found)?;
        for (rel, sha) in found {
            let local = b.data.join(&rel);
            files.push((format!("source/data/{rel}"), local, sha));
        }
        "source/data".to_string()
    } else {
        let p = format!("source/data/{}", file_name_of(b.data)?);
        files.push((p.clone(), b.data.to_path_buf(), input_sha(b.data)?));
        p
    };
    files.sort();
    Ok(Sources {
        files,
        weights,
        labels,
        data,
    })
}
