//! Building a sweep's backend inputs for the coordinator (a `BuildInputs` reply to a pull; see
//! `coordinator::backend`): fetch the spec's weights, data and labels (digest-checked, through
//! the input cache), check that they give the sweep's inputs digest with this machine's
//! `ee-backend` (the same version as the coordinator's), run `ee-backend gen-data` into a
//! scratch folder ([`apparate::backend_inputs::ensure_built`]) and send the folder with
//! `UploadInputs`. A failure is reported with `ReportFailure` (the build id as the attempt, the
//! digest as the task key).

use super::{blocking, fetch_one, link_or_copy, safe_join, transient, Worker};
use super::{BACKOFF_MAX, BACKOFF_START};
use anyhow::{anyhow, bail, Context, Result};
use apparate::backend_inputs::{self as bi, BackendInputs};
use apparate::ids::AttemptId;
use apparate::task::BackendDevice;
use proto::v1 as pb;
use std::path::PathBuf;
use std::sync::Arc;

/// Runs build `b` and reports its outcome.
pub(super) async fn run_build(w: &Arc<Worker>, b: pb::BuildInputs) {
    let build = b.build_id;
    tracing::info!(
        "building backend inputs {} (model {}, device {}) as build {build}",
        &b.digest[..b.digest.len().min(12)],
        b.model,
        b.device
    );
    let dir = w.scratch.join(format!("build-{build}"));
    if let Err(e) = build_and_upload(w, &b, &dir).await {
        let message = format!("{e:#}");
        tracing::error!("build {build} of the backend inputs failed: {message}");
        let req = pb::TaskFailed {
            worker_id: w.id().get(),
            attempt_id: build,
            task_key: b.digest.clone(),
            retryable: true,
            counts_toward_limit: false,
            reason: Some(pb::task_failed::Reason::TaskError(pb::TaskError {
                kind: "input".to_string(),
                message,
            })),
        };
        if let Err(s) = w.client().report_failure(req).await {
            tracing::warn!("cannot report the failed build: {}", s.message());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn build_and_upload(
    w: &Arc<Worker>,
    b: &pb::BuildInputs,
    dir: &std::path::Path,
) -> Result<()> {
    let exe = tokio::task::spawn_blocking(bi::locate)
        .await
        .map_err(|e| anyhow!("the backend thread died: {e}"))??;
    if exe.version != b.backend_version {
        bail!(
            "this worker's ee-backend ({}) is {:?}, the sweep's is {:?}",
            exe.path.display(),
            exe.version,
            b.backend_version
        );
    }
    let device =
        BackendDevice::parse(&b.device).ok_or_else(|| anyhow!("unknown device {:?}", b.device))?;
    let src = dir.join("src");
    for input in &b.sources {
        let Some(target) = safe_join(&src, &input.path) else {
            bail!("unsafe source path {:?}", input.path);
        };
        if input.sha256.len() != 64 || !input.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
            bail!("{}: bad digest {:?}", input.path, input.sha256);
        }
        let cached = w.cache.join(&input.sha256);
        if !cached.exists() {
            fetch_one(w, AttemptId::new(b.build_id), input, &cached)
                .await
                .with_context(|| format!("fetching {}", input.path))?;
        }
        blocking(move || link_or_copy(&cached, &target)).await?;
    }
    let path = |rel: &str| safe_join(&src, rel).ok_or_else(|| anyhow!("unsafe path {rel:?}"));
    let (weights, data) = (path(&b.weights)?, path(&b.data)?);
    let labels = if b.labels.is_empty() {
        None
    } else {
        Some(path(&b.labels)?)
    };
    let (model, dataset, digest) = (b.model.clone(), b.dataset.clone(), b.digest.clone());
    let name = if b.name.is_empty() {
        b.model.clone()
    } else {
        b.name.clone()
    };
    let seed = b.has_seed.then_some(b.seed);
    let results_root = dir.join("res");
    let built_dir: PathBuf = tokio::task::spawn_blocking(move || -> Result<PathBuf> {
        let view = BackendInputs {
            model: &model,
            name: &name,
            dataset: &dataset,
            weights: &weights,
            data: &data,
            labels: labels.as_deref(),
            device,
            seed,
        };
        let here = bi::inputs_digest(&view, &exe.version)?;
        if here != digest {
            bail!("the fetched sources give inputs digest {here}, the sweep's is {digest}");
        }
        std::fs::create_dir_all(&results_root)?;
        let built = bi::ensure_built(&results_root, &view, &exe, &digest, &[])?;
        Ok(built.dir().to_path_buf())
    })
    .await
    .map_err(|e| anyhow!("the build thread died: {e}"))??;
    let manifest = bi::verify_inputs_dir(&built_dir, &b.digest).map_err(|p| anyhow!("{p}"))?;
    upload_folder(w, b, &built_dir, &manifest).await
}

async fn upload_folder(
    w: &Worker,
    b: &pb::BuildInputs,
    dir: &std::path::Path,
    manifest: &bi::InputsManifest,
) -> Result<()> {
    let header = pb::ResultHeader {
        worker_id: w.id().get(),
        attempt_id: b.build_id,
        task_key: b.digest.clone(),
        files: manifest
            .files
            .iter()
            .map(|f| pb::ResultFile {
                name: f.path.clone(),
                size: f.bytes,
                sha256: f.sha256.clone(),
            })
            .collect(),
        ..pb::ResultHeader::default()
    };
    let paths: Vec<PathBuf> = manifest.files.iter().map(|f| dir.join(&f.path)).collect();
    let mut backoff = BACKOFF_START;
    for _ in 0..8 {
        let (stream, sender) = super::stream_files(header.clone(), paths.clone());
        let res = w.client().upload_inputs(stream).await;
        let read = sender.await;
        match (res, read) {
            (_, Ok(Err(e))) => bail!("cannot read a built file: {e}"),
            (Ok(r), _) => {
                w.touch();
                let r = r.into_inner();
                if r.accepted {
                    tracing::info!("backend inputs of build {} accepted", b.build_id);
                    return Ok(());
                }
                // The coordinator recorded the failure itself.
                tracing::warn!(
                    "backend inputs of build {} refused: {}",
                    b.build_id,
                    r.reason
                );
                return Ok(());
            }
            (Err(s), _) if transient(&s) => {
                w.call_failed();
                tracing::warn!("upload failed ({}); retrying in {backoff:?}", s.message());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            (Err(s), _) => bail!("upload refused: {}", s.message()),
        }
    }
    bail!("upload failed: the coordinator stays unreachable")
}
