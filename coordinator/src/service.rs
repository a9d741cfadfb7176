//! The gRPC service: the tonic handlers. They convert the wire messages, check them and drive
//! the [`crate::ledger::Ledger`] through the [`Shared`] state ([`crate::shared`], which acts
//! on its events: the SQLite store, the results directory, the logs); an upload's files are
//! received and checked by [`crate::upload`].
//!
//! A result is received into `tasks/.tmp/<key>-<attempt>/`, each file checked against the size
//! and SHA-256 the worker announced, and committed (manifest written; synced, renamed into
//! `tasks/` and recorded by the group committer, [`crate::commit`]) only if its attempt is
//! still the current one. A result must hold exactly the files a task produces
//! ([`apparate::task::RESULT_FILES`], under the names of the sweep's storage), each with the size and digest announced; the manifest the
//! coordinator writes is the leased task's, and the staged folder is checked with
//! [`apparate::results::check_staged`] (the check `worker --local` applies) before it is
//! committed. Anything else is refused (`accepted: false` with the reason), nothing is
//! committed, and the attempt fails (retryable, counted: after `--max-attempts` such
//! attempts the task fails with kind `invalid_result`).

use crate::commit::{CommitError, CommitJob};
use crate::ids::{AttemptId, WorkerId};
use crate::ledger::{LedgerError, LedgerEvent, Pull};
use crate::store::StoreError;
use crate::upload;
use apparate::results::{FailureKind, Manifest, Timings};
use apparate::task::Inputs;
use proto::v1 as pb;
use proto::v1::coordinator_server::Coordinator;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

pub use crate::shared::{Shared, Snapshot, WorkerProgress};

/// The tonic service over [`Shared`].
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

impl Service {
    /// A service over the sweep's shared state.
    pub fn new(shared: Arc<Shared>) -> Service {
        Service { shared }
    }

    /// A backend-inputs build that sent something that is not a build fails.
    fn fail_build(&self, worker: WorkerId, build: u64, reason: &str) {
        let mut core = self.shared.lock();
        let core = &mut *core;
        if let Some(b) = core.backend.as_mut() {
            b.on_failed(worker, build, reason);
        }
        self.shared.record_backend_state(core);
    }
}

fn ledger_status(e: LedgerError) -> Status {
    match e {
        LedgerError::UnknownWorker { .. } => Status::not_found(e.to_string()),
        LedgerError::NotCurrent { .. } => Status::failed_precondition(e.to_string()),
    }
}

fn store_status(e: StoreError) -> Status {
    Status::internal(e.to_string())
}

fn check_protocol(v: u32) -> Result<(), Status> {
    if v != proto::PROTOCOL_VERSION {
        return Err(Status::failed_precondition(format!(
            "protocol version {v} is not this coordinator's {}",
            proto::PROTOCOL_VERSION
        )));
    }
    Ok(())
}

/// `rel` joined to `root` if every component of `rel` is a plain name (never `..`, a root or a
/// prefix), so the result stays under `root`.
pub fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(p))
}

#[tonic::async_trait]
impl Coordinator for Service {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterReply>, Status> {
        let r = request.into_inner();
        check_protocol(r.protocol_version)?;
        if r.code_version != self.shared.code_version {
            return Err(Status::failed_precondition(format!(
                "worker code version {} is not the sweep's {}",
                r.code_version, self.shared.code_version
            )));
        }
        let mut core = self.shared.lock();
        let id = core.ledger.on_register_with(&r.host, r.gpu);
        core.store
            .record_worker(id, &r.host, r.slots, r.has_inputs, r.gpu)
            .map_err(store_status)?;
        core.workers.push(WorkerProgress {
            id,
            host: r.host.clone(),
            done: 0,
            since: Instant::now(),
            last_seen: Instant::now(),
            told_done: false,
            gpu: r.gpu,
        });
        tracing::info!(
            "worker {id} registered from {} ({} slots{}{})",
            r.host,
            r.slots,
            if r.has_inputs { ", has the inputs" } else { "" },
            if r.gpu { ", gpu" } else { "" }
        );
        self.shared.record_live_state(&mut core);
        let lease_ms = u64::try_from(self.shared.lease.as_millis()).unwrap_or(u64::MAX);
        Ok(Response::new(pb::RegisterReply {
            worker_id: id.get(),
            heartbeat_interval_ms: (lease_ms / crate::HEARTBEATS_PER_LEASE).max(1),
            lease_ms,
            result_storage: self.shared.writer.storage().name().to_string(),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        let r = request.into_inner();
        check_protocol(r.protocol_version)?;
        let held: Vec<AttemptId> = r.attempts.iter().map(|&a| AttemptId::new(a)).collect();
        let now = Instant::now();
        let mut core = self.shared.lock();
        if let Some(w) = core.workers.iter_mut().find(|w| w.id.get() == r.worker_id) {
            w.last_seen = now;
        }
        match core
            .ledger
            .on_heartbeat(WorkerId::new(r.worker_id), &held, now)
        {
            Ok(revoked) => Ok(Response::new(pb::HeartbeatReply {
                revoked: revoked.iter().map(|a| a.get()).collect(),
                unknown_worker: false,
            })),
            Err(LedgerError::UnknownWorker { .. }) => Ok(Response::new(pb::HeartbeatReply {
                revoked: r.attempts,
                unknown_worker: true,
            })),
            Err(e) => Err(ledger_status(e)),
        }
    }

    async fn pull_task(
        &self,
        request: Request<pb::PullTaskRequest>,
    ) -> Result<Response<pb::PullTaskReply>, Status> {
        let worker = WorkerId::new(request.into_inner().worker_id);
        let now = Instant::now();
        let mut core = self.shared.lock();
        // Backend inputs not built yet: no task; the build for a worker that may take it.
        let waits_for_inputs = core.ledger.counts().pending > 0
            && core.backend.as_ref().is_some_and(|b| b.built.is_none());
        if waits_for_inputs {
            let core = &mut *core;
            let known = core.workers.iter_mut().find(|w| w.id == worker);
            let gpu = known.as_ref().is_some_and(|w| w.gpu);
            if let Some(w) = known {
                w.last_seen = now;
            }
            let offer = core.backend.as_mut().and_then(|b| b.offer(worker, gpu));
            self.shared.record_backend_state(core);
            let reply = match offer {
                Some(build) => pb::pull_task_reply::Reply::Build(build),
                None => pb::pull_task_reply::Reply::Wait(pb::Wait {
                    retry_after_ms: 500,
                    reason: String::new(),
                }),
            };
            return Ok(Response::new(pb::PullTaskReply { reply: Some(reply) }));
        }
        let (pull, events) = core.ledger.on_pull(worker, now).map_err(ledger_status)?;
        self.shared.act(&mut core, &events);
        if let Some(w) = core.workers.iter_mut().find(|w| w.id == worker) {
            w.last_seen = now;
            w.told_done |= pull == Pull::Finished;
        }
        let reply = match pull {
            Pull::Lease { task, attempt } => {
                let planned = core
                    .tasks
                    .get(task.get())
                    .ok_or_else(|| Status::internal("task index out of range"))?;
                let task_spec_json = serde_json::to_string(&planned.spec)
                    .map_err(|e| Status::internal(e.to_string()))?;
                // Artifact inputs: digests from the plan; backend inputs: from the built
                // folder's manifest.
                let built = core.backend.as_ref().and_then(|b| b.built.as_ref());
                let mut inputs: Vec<pb::InputFile> = planned
                    .spec
                    .input_files()
                    .iter()
                    .filter_map(|p| {
                        let path = p.to_string_lossy().into_owned();
                        let sha256 = match &planned.spec.inputs {
                            Inputs::Backend { .. } => built?.get(&path)?.clone(),
                            _ => planned.digests.get(&path)?.clone(),
                        };
                        Some(pb::InputFile { path, sha256 })
                    })
                    .collect();
                // A live run serves the real model: it also needs the weights, data and labels
                // (`source/...`, as a builder fetches them).
                if planned.spec.live.is_some() {
                    if let Some(b) = core.backend.as_ref() {
                        inputs.extend(b.sources.files.iter().map(|(path, _, sha256)| {
                            pb::InputFile {
                                path: path.clone(),
                                sha256: sha256.clone(),
                            }
                        }));
                    }
                }
                pb::pull_task_reply::Reply::Lease(pb::Lease {
                    attempt_id: attempt.get(),
                    task_key: planned.key.to_string(),
                    task_spec_json,
                    digests: planned.digests.clone().into_iter().collect(),
                    inputs,
                })
            }
            Pull::Wait { blocked } => pb::pull_task_reply::Reply::Wait(pb::Wait {
                retry_after_ms: 200,
                reason: blocked.unwrap_or_default(),
            }),
            Pull::Finished => pb::pull_task_reply::Reply::Done(pb::SweepDone {}),
        };
        Ok(Response::new(pb::PullTaskReply { reply: Some(reply) }))
    }

    async fn upload_result(
        &self,
        request: Request<Streaming<pb::ResultChunk>>,
    ) -> Result<Response<pb::ResultReply>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::ResultChunk {
                chunk: Some(pb::result_chunk::Chunk::Header(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("a result starts with its header")),
        };
        let worker = WorkerId::new(header.worker_id);
        let attempt = AttemptId::new(header.attempt_id);
        let reject = |reason: String| {
            tracing::warn!(
                "rejected the result of attempt {attempt} ({}) from worker {worker}: {reason}",
                header.task_key
            );
            Ok(Response::new(pb::ResultReply {
                accepted: false,
                reason,
            }))
        };
        // Fencing before receiving anything: only the current attempt's result is taken.
        let (staging, live) = {
            let core = self.shared.lock();
            let task = match core.ledger.current(worker, attempt) {
                Ok(t) => t,
                Err(e) => return reject(e.to_string()),
            };
            let Some(planned) = core.tasks.get(task.get()) else {
                return Err(Status::internal("task index out of range"));
            };
            if planned.key.as_str() != header.task_key {
                return reject(format!("attempt {attempt} is for {}", planned.key));
            }
            let staging = self
                .shared
                .writer
                .dir()
                .staging_root()
                .join(format!("{}-{attempt}", planned.key));
            (staging, planned.spec.live.is_some())
        };
        // From here on a refusal is the attempt's failure: its result is not a result.
        let refuse = |reason: String| {
            let reason = format!("not a result of {}: {reason}", header.task_key);
            self.shared.fail_attempt(worker, attempt, &reason);
            reject(reason)
        };
        if let Err(reason) = upload::check_file_list(&header, self.shared.writer.storage(), live) {
            return refuse(reason);
        }
        let received = match upload::receive_files(&mut stream, &header, &staging).await {
            Ok(received) => received,
            Err(upload::Refusal::Transport(reason)) => {
                let _ = apparate::results::remove_any(&staging);
                return reject(reason);
            }
            Err(upload::Refusal::Invalid(reason)) => {
                let _ = apparate::results::remove_any(&staging);
                return refuse(reason);
            }
        };
        let timings = Timings {
            started_unix_ms: header.started_unix_ms,
            run_ms: header.run_ms,
            total_ms: header.total_ms,
        };
        let manifest = {
            let mut core = self.shared.lock();
            // Still current? (Its lease may have expired while the files travelled.) From here
            // on the lease cannot expire until the commit is recorded or aborted.
            let task = match core.ledger.on_commit_start(worker, attempt) {
                Ok(t) => t,
                Err(e) => {
                    drop(core);
                    let _ = std::fs::remove_dir_all(&staging);
                    return reject(e.to_string());
                }
            };
            match core.tasks.get(task.get()) {
                Some(planned) => Manifest::new(
                    &planned,
                    &core.code_version,
                    received,
                    usize::try_from(header.num_requests).unwrap_or(usize::MAX),
                    header.summary_lines.clone(),
                    timings,
                ),
                None => return Err(Status::internal("task index out of range")),
            }
        };
        // The manifest, written here (not synced); then files, manifest and folders synced,
        // the folder renamed into `tasks/` and the result recorded in the ledger by the group
        // committer, together with every other result staged meanwhile (one sync for the
        // batch). Acknowledged only after all that.
        if let Err(e) = self.shared.writer.write_manifest(&staging, &manifest) {
            tracing::error!("cannot commit {}: {e}", manifest.key);
            self.shared.writer.discard(&staging);
            self.shared
                .lock()
                .ledger
                .on_commit_abort(attempt, Instant::now());
            return Err(Status::internal(e.to_string()));
        }
        // The check `worker --local` applies before it commits (and every reader after).
        if let Err(p) = apparate::results::check_staged(&staging, &manifest) {
            self.shared.writer.discard(&staging);
            return refuse(p.to_string());
        }
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let job = CommitJob {
            worker,
            attempt,
            staging,
            key: manifest.key,
            reply,
        };
        if let Err(std::sync::mpsc::SendError(job)) = self.shared.committer.send(job) {
            self.shared.writer.discard(&job.staging);
            self.shared
                .lock()
                .ledger
                .on_commit_abort(attempt, Instant::now());
            return Err(Status::unavailable(CommitError::Stopped.to_string()));
        }
        match outcome.await {
            Ok(Ok(())) => Ok(Response::new(pb::ResultReply {
                accepted: true,
                reason: String::new(),
            })),
            Ok(Err(CommitError::Ledger(e))) => Err(ledger_status(e)),
            Ok(Err(e)) => Err(Status::internal(e.to_string())),
            Err(_) => {
                // The committer dropped the job unanswered (it stopped): the lease runs again.
                self.shared
                    .lock()
                    .ledger
                    .on_commit_abort(attempt, Instant::now());
                Err(Status::unavailable(CommitError::Stopped.to_string()))
            }
        }
    }

    async fn report_failure(
        &self,
        request: Request<pb::TaskFailed>,
    ) -> Result<Response<pb::FailureReply>, Status> {
        let r = request.into_inner();
        let worker = WorkerId::new(r.worker_id);
        let attempt = AttemptId::new(r.attempt_id);
        let (kind, message) = match &r.reason {
            Some(pb::task_failed::Reason::TaskError(e)) => (
                serde_json::from_value(serde_json::Value::String(e.kind.clone()))
                    .unwrap_or(FailureKind::Output),
                e.message.clone(),
            ),
            Some(pb::task_failed::Reason::InputUnavailable(e)) => (
                FailureKind::Input,
                format!("input {} unavailable: {}", e.path, e.message),
            ),
            None => (FailureKind::Output, "no reason given".to_string()),
        };
        let mut core = self.shared.lock();
        let is_build = core
            .backend
            .as_ref()
            .is_some_and(|b| b.digest == r.task_key);
        if is_build {
            let core = &mut *core;
            let accepted = core
                .backend
                .as_mut()
                .is_some_and(|b| b.on_failed(worker, r.attempt_id, &message));
            self.shared.record_backend_state(core);
            return Ok(Response::new(pb::FailureReply {
                accepted,
                reason: if accepted {
                    String::new()
                } else {
                    "not the current build".to_string()
                },
            }));
        }
        let task = match core.ledger.current(worker, attempt) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("ignored a failure report of attempt {attempt}: {e}");
                return Ok(Response::new(pb::FailureReply {
                    accepted: false,
                    reason: e.to_string(),
                }));
            }
        };
        tracing::warn!(
            "attempt {attempt} ({}) failed on worker {worker}: {message}",
            r.task_key
        );
        core.kinds.insert(task, kind);
        let events = core
            .ledger
            .on_failure(
                worker,
                attempt,
                r.retryable,
                r.counts_toward_limit,
                &message,
            )
            .map_err(ledger_status)?;
        if !events
            .iter()
            .any(|e| matches!(e, LedgerEvent::TaskFailed { .. }))
        {
            core.kinds.remove(&task);
        }
        self.shared.act(&mut core, &events);
        Ok(Response::new(pb::FailureReply {
            accepted: true,
            reason: String::new(),
        }))
    }

    async fn return_lease(
        &self,
        request: Request<pb::ReturnLeaseRequest>,
    ) -> Result<Response<pb::ReturnLeaseReply>, Status> {
        let r = request.into_inner();
        let mut core = self.shared.lock();
        match core
            .ledger
            .on_return(WorkerId::new(r.worker_id), AttemptId::new(r.attempt_id))
        {
            Ok(events) => {
                tracing::info!(
                    "worker w{} handed back attempt a{}",
                    r.worker_id,
                    r.attempt_id
                );
                self.shared.act(&mut core, &events);
            }
            Err(e) => tracing::debug!("ignored a lease hand-back: {e}"),
        }
        Ok(Response::new(pb::ReturnLeaseReply {}))
    }

    type FetchInputStream = tokio_stream::wrappers::ReceiverStream<Result<pb::InputChunk, Status>>;

    async fn fetch_input(
        &self,
        request: Request<pb::FetchInputRequest>,
    ) -> Result<Response<Self::FetchInputStream>, Status> {
        let r = request.into_inner();
        let path = if r.path.starts_with("source/") {
            // A source of a backend-inputs build, for the worker holding that build or the
            // current attempt of a live task.
            let core = self.shared.lock();
            let Some(b) = core.backend.as_ref() else {
                return Err(Status::invalid_argument("this sweep has no backend inputs"));
            };
            let worker = WorkerId::new(r.worker_id);
            let live_attempt = || {
                core.ledger
                    .current(worker, AttemptId::new(r.attempt_id))
                    .ok()
                    .and_then(|t| core.tasks.get(t.get()))
                    .is_some_and(|p| p.spec.live.is_some())
            };
            if !b.holds(worker, r.attempt_id) && !live_attempt() {
                return Err(Status::permission_denied(format!(
                    "worker {} holds no build {} of the backend inputs, nor a live task's attempt {}",
                    r.worker_id, r.attempt_id, r.attempt_id
                )));
            }
            b.source_file(&r.path)
                .ok_or_else(|| {
                    Status::permission_denied(format!("{} is not a backend source", r.path))
                })?
                .to_path_buf()
        } else {
            let core = self.shared.lock();
            let task = core
                .ledger
                .current(WorkerId::new(r.worker_id), AttemptId::new(r.attempt_id))
                .map_err(ledger_status)?;
            let planned = core
                .tasks
                .get(task.get())
                .ok_or_else(|| Status::internal("task index out of range"))?;
            let dir = match &planned.spec.inputs {
                Inputs::Artifact { dir } => dir,
                Inputs::Backend { .. } => match core.backend.as_ref() {
                    Some(b) if b.built.is_some() => &b.dir,
                    _ => return Err(Status::unavailable("the backend inputs are not built yet")),
                },
                Inputs::Embedded { .. } => {
                    return Err(Status::invalid_argument("this task has no input files"))
                }
            };
            // Only the task's own input files, by their exact relative paths.
            let listed = planned
                .spec
                .input_files()
                .iter()
                .any(|p| p.to_string_lossy() == r.path);
            if !listed {
                return Err(Status::permission_denied(format!(
                    "{} is not an input of {}",
                    r.path, planned.key
                )));
            }
            safe_join(dir, &r.path)
                .ok_or_else(|| Status::permission_denied(format!("unsafe path {:?}", r.path)))?
        };
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            // Only a regular file, read up to the size it had when opened (the plan checked
            // it, but it may have been replaced since): never a FIFO or a device.
            let mut file = match apparate::input_file::open_regular(&path) {
                Ok((f, len)) => f.take(len),
                Err(e) => {
                    let _ = tx
                        .blocking_send(Err(Status::not_found(format!("{}: {e}", path.display()))));
                    return;
                }
            };
            let mut buf = vec![0u8; proto::CHUNK_BYTES];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        let chunk = pb::InputChunk {
                            data: buf[..n].to_vec(),
                        };
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(format!(
                            "{}: {e}",
                            path.display()
                        ))));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn upload_inputs(
        &self,
        request: Request<Streaming<pb::ResultChunk>>,
    ) -> Result<Response<pb::ResultReply>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::ResultChunk {
                chunk: Some(pb::result_chunk::Chunk::Header(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("an upload starts with its header")),
        };
        let worker = WorkerId::new(header.worker_id);
        let build = header.attempt_id;
        let reply = |accepted: bool, reason: String| {
            if !accepted {
                tracing::warn!(
                    "refused backend inputs from worker {worker} (build {build}): {reason}"
                );
            }
            Ok(Response::new(pb::ResultReply { accepted, reason }))
        };
        let (digest, version, needed) = {
            let core = self.shared.lock();
            match core.backend.as_ref() {
                Some(b) if b.holds(worker, build) && b.digest == header.task_key => (
                    b.digest.clone(),
                    b.backend_version.clone(),
                    b.needed.clone(),
                ),
                _ => return reply(false, "not the current build of the backend inputs".into()),
            }
        };
        let mut names = std::collections::HashSet::new();
        for f in &header.files {
            if !crate::backend::plain_relative_path(&f.name) || !names.insert(f.name.as_str()) {
                let reason = format!("bad or repeated file path {:?}", f.name);
                self.fail_build(worker, build, &reason);
                return reply(false, reason);
            }
        }
        let root = self.shared.writer.dir().root().to_path_buf();
        let staging = match apparate::backend_inputs::staging_dir(&root, &format!("upload-{build}"))
        {
            Ok(p) => p,
            Err(e) => return Err(Status::internal(e.to_string())),
        };
        if let Err(refusal) = upload::receive_files(&mut stream, &header, &staging).await {
            let _ = apparate::results::remove_any(&staging);
            let reason = match refusal {
                upload::Refusal::Transport(r) => return reply(false, r),
                upload::Refusal::Invalid(r) => r,
            };
            self.fail_build(worker, build, &reason);
            return reply(false, reason);
        }
        let command = vec![format!("gen-data on worker {worker} (build {build})")];
        let published = {
            let staging = staging.clone();
            tokio::task::spawn_blocking(move || {
                apparate::backend_inputs::publish_build(
                    &root, &staging, &digest, &version, command, &needed,
                )
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
        };
        match published {
            Ok(manifest) => {
                let mut core = self.shared.lock();
                let core = &mut *core;
                if let Some(b) = core.backend.as_mut() {
                    b.on_built(
                        manifest
                            .files
                            .into_iter()
                            .map(|f| (f.path, f.sha256))
                            .collect(),
                    );
                }
                self.shared.record_backend_state(core);
                reply(true, String::new())
            }
            Err(e) => {
                let _ = apparate::results::remove_any(&staging);
                let reason = e.to_string();
                self.fail_build(worker, build, &reason);
                reply(false, reason)
            }
        }
    }
}
