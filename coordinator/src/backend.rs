//! Backend inputs in a distributed sweep (issue #13): a spec with `[inputs] kind = "backend"`
//! needs `<results>/inputs/<digest>/` built by `ee-backend gen-data` before its tasks can run.
//!
//! * The coordinator builds nothing itself. Until the folder is there, a pull gets no task:
//!   one worker at a time gets a [`pb::BuildInputs`] instead (for `device = "cuda"` only a
//!   worker registered with `--gpu`); every other pull waits. With no GPU worker registered
//!   for a `cuda` spec, the log says so every [`WARN_EVERY`] and `coordinator status` shows
//!   it (the ledger's `meta` row `backend_inputs`).
//! * The builder fetches the spec's weights, data and labels (`source/...`, digest-checked,
//!   through `FetchInput`), checks that they give the sweep's inputs digest with its own
//!   `ee-backend`, runs `gen-data`, and sends the folder with `UploadInputs`; the coordinator
//!   checks every file's size and SHA-256 and that the files the tasks read are there, writes
//!   the folder's manifest and renames it into place
//!   ([`apparate::backend_inputs::publish_build`]).
//! * Then tasks are leased as usual; their input files are the built folder's, which other
//!   workers fetch through the same digest-checked `FetchInput` as artifact inputs.
//! * A builder that fails reports it (`ReportFailure` with the build id and the digest); one
//!   that is not seen for two leases loses the build. After [`MAX_BUILD_FAILURES`] failed builds
//!   none is offered again (the log and status say why); fix the cause and restart.

use crate::ids::WorkerId;
use apparate::backend_inputs::{self as bi, BackendError, BackendInputs, Sources};
use apparate::sweep::Plan;
use apparate::task::BackendDevice;
use proto::v1 as pb;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the log repeats that backend inputs wait for a (GPU) worker.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// Failed builds after which none is offered again.
pub const MAX_BUILD_FAILURES: u32 = 3;

/// The worker holding the build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Builder {
    pub(crate) worker: WorkerId,
    pub(crate) build: u64,
}

/// The sweep's backend inputs and who builds them.
#[derive(Debug)]
pub(crate) struct BackendBuild {
    pub(crate) digest: String,
    model: String,
    name: String,
    dataset: String,
    device: BackendDevice,
    seed: Option<u64>,
    pub(crate) backend_version: String,
    pub(crate) sources: Sources,
    pub(crate) needed: Vec<PathBuf>,
    /// `<results>/inputs/<digest>/`.
    pub(crate) dir: PathBuf,
    /// Once built: each file (relative path) → SHA-256, from the folder's manifest.
    pub(crate) built: Option<BTreeMap<String, String>>,
    pub(crate) builder: Option<Builder>,
    next_build: u64,
    failures: u32,
    last_failure: Option<String>,
    last_warned: Option<Instant>,
}

impl BackendBuild {
    /// The state of `plan`'s backend inputs under `results_root` (`None` for other inputs):
    /// built when a verified folder is there.
    pub(crate) fn from_plan(
        plan: &Plan,
        results_root: &Path,
    ) -> Result<Option<BackendBuild>, BackendError> {
        let (Some(bp), Some(b)) = (plan.backend(), BackendInputs::of(plan.inputs())) else {
            return Ok(None);
        };
        let dir = bi::inputs_dir(results_root, &bp.digest);
        let built = bi::verify_inputs_dir(&dir, &bp.digest).ok().map(|m| {
            m.files
                .into_iter()
                .map(|f| (f.path, f.sha256))
                .collect::<BTreeMap<_, _>>()
        });
        Ok(Some(BackendBuild {
            digest: bp.digest.clone(),
            model: b.model.to_string(),
            name: b.name.to_string(),
            dataset: b.dataset.to_string(),
            device: b.device,
            seed: b.seed,
            backend_version: bp.exe.version.clone(),
            sources: bi::sources(&b)?,
            needed: plan.backend_needed_files(),
            dir,
            built,
            builder: None,
            next_build: 1,
            failures: 0,
            last_failure: None,
            last_warned: None,
        }))
    }

    fn short(&self) -> &str {
        &self.digest[..self.digest.len().min(12)]
    }

    /// Whether a worker (with a GPU or not) may build these inputs.
    pub(crate) fn can_build(&self, gpu: bool) -> bool {
        gpu || self.device != BackendDevice::Cuda
    }

    /// What `coordinator status` shows; `able`: registered workers that may build them.
    pub(crate) fn state_line(&self, able: usize) -> String {
        let what = format!(
            "backend inputs {} (model {}, device {})",
            self.short(),
            self.model,
            self.device.name()
        );
        if self.built.is_some() {
            return format!("{what}: built in {}", self.dir.display());
        }
        if self.failures >= MAX_BUILD_FAILURES {
            return format!(
                "{what}: {} builds failed, none is offered again (last: {}); fix the cause and restart the coordinator",
                self.failures,
                self.last_failure.as_deref().unwrap_or("?")
            );
        }
        if let Some(b) = self.builder {
            return format!(
                "{what}: being built by worker {} (build {})",
                b.worker, b.build
            );
        }
        let gpu = self.device == BackendDevice::Cuda;
        match (gpu, able) {
            (true, 0) => format!(
                "{what}: every task waits for a GPU worker to build them; none is registered (start one with `worker --coordinator URL --gpu`)"
            ),
            (false, 0) => format!("{what}: every task waits for a worker to build them"),
            _ => format!("{what}: to be built by the next worker that asks"),
        }
    }

    /// A pull while the inputs are not built: the build for this worker when it may take it
    /// (nobody holds it, the device allows it), else `None` (the worker waits).
    pub(crate) fn offer(&mut self, worker: WorkerId, gpu: bool) -> Option<pb::BuildInputs> {
        if self.built.is_some()
            || self.builder.is_some()
            || self.failures >= MAX_BUILD_FAILURES
            || !self.can_build(gpu)
        {
            return None;
        }
        let build = self.next_build;
        self.next_build += 1;
        self.builder = Some(Builder { worker, build });
        tracing::info!(
            "worker {worker} builds backend inputs {} (model {}, device {}) as build {build}",
            self.short(),
            self.model,
            self.device.name()
        );
        Some(pb::BuildInputs {
            build_id: build,
            digest: self.digest.clone(),
            model: self.model.clone(),
            dataset: self.dataset.clone(),
            device: self.device.name().to_string(),
            has_seed: self.seed.is_some(),
            seed: self.seed.unwrap_or(0),
            backend_version: self.backend_version.clone(),
            weights: self.sources.weights.clone(),
            labels: self.sources.labels.clone().unwrap_or_default(),
            data: self.sources.data.clone(),
            sources: self
                .sources
                .files
                .iter()
                .map(|(path, _, sha256)| pb::InputFile {
                    path: path.clone(),
                    sha256: sha256.clone(),
                })
                .collect(),
            name: self.name.clone(),
        })
    }

    /// Whether `worker` holds build `build`.
    pub(crate) fn holds(&self, worker: WorkerId, build: u64) -> bool {
        self.builder == Some(Builder { worker, build })
    }

    /// The local file of a source path, for its builder.
    pub(crate) fn source_file(&self, path: &str) -> Option<&Path> {
        self.sources
            .files
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, local, _)| local.as_path())
    }

    /// The build `build` failed on `worker`.
    pub(crate) fn on_failed(&mut self, worker: WorkerId, build: u64, message: &str) -> bool {
        if !self.holds(worker, build) {
            return false;
        }
        self.builder = None;
        self.failures += 1;
        self.last_failure = Some(message.to_string());
        tracing::error!(
            "worker {worker} failed to build backend inputs {} (failure {} of {MAX_BUILD_FAILURES}): {message}",
            self.short(),
            self.failures
        );
        true
    }

    /// The folder is in place.
    pub(crate) fn on_built(&mut self, files: BTreeMap<String, String>) {
        self.builder = None;
        self.built = Some(files);
        tracing::info!(
            "backend inputs {} built into {}",
            self.short(),
            self.dir.display()
        );
    }

    /// Drops the build of a worker not seen for `gone_after` (`last_seen`: when each
    /// registered worker was last seen); logs what waits, at most every [`WARN_EVERY`], while
    /// nobody builds (`able`: registered workers that may build).
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        last_seen: impl Fn(WorkerId) -> Option<Instant>,
        able: usize,
        gone_after: Duration,
    ) {
        if self.built.is_some() {
            return;
        }
        if let Some(b) = self.builder {
            let seen = last_seen(b.worker).map(|t| now.saturating_duration_since(t) <= gone_after);
            if seen != Some(true) {
                tracing::warn!(
                    "worker {} holding build {} of backend inputs {} is gone; the build is offered again",
                    b.worker,
                    b.build,
                    self.short()
                );
                self.builder = None;
            }
            return;
        }
        let due = self
            .last_warned
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
        if due {
            self.last_warned = Some(now);
            tracing::warn!("{}", self.state_line(able));
        }
    }
}

/// Whether `rel` is a relative path a built folder may hold: plain components, not hidden,
/// not the manifest.
pub(crate) fn plain_relative_path(rel: &str) -> bool {
    !rel.is_empty()
        && rel.len() <= 1000
        && rel != bi::MANIFEST_FILE
        && rel.split('/').all(|c| {
            !c.is_empty()
                && !c.starts_with('.')
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
        })
}
