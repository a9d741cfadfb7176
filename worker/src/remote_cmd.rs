//! `worker --coordinator URL`: a remote worker of a distributed sweep.
//!
//! Registers, then runs up to `--slots` tasks at once: each slot pulls a task under a lease,
//! fetches missing artifact inputs (checked against their SHA-256, cached by digest), runs it
//! with the code of `worker --local` (`worker::local::execute`) on a blocking thread into a
//! scratch folder and streams the files back in chunks. A heartbeat task on the async runtime
//! renews the leases (simulation never runs there, so heartbeats never stall). When the
//! coordinator is away, calls are retried with exponential backoff.
//!
//! Signals: the first SIGINT/SIGTERM stops pulling and lets running tasks finish and upload;
//! a second hands the leases back and exits at once.
//!
//! Fault injection for tests (documented in `tests/README.md`): with
//! `APPARATE_FAULT_STALL=PATH` the worker stalls after its first lease until `PATH` exists, then
//! runs and uploads that task even if its lease was lost meanwhile; with
//! `APPARATE_FAULT_STALL_SILENT=1` it also sends no heartbeats while stalled; with
//! `APPARATE_FAULT_FORGE=FILE` its first upload is not the task's result but `FILE` alone (a
//! hostile worker, issue #11; the coordinator must refuse it).

use anyhow::{anyhow, bail, Context, Result};
use proto::v1 as pb;
use proto::v1::coordinator_client::CoordinatorClient;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::codegen::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};
use worker::local::{execute, TaskFailure};
use worker::results::{FailureKind, ResultsDir};
use worker::sweep::digest::file_sha256;
use worker::sweep::{PlannedTask, TaskKey};
use worker::task::{Inputs, TaskSpec};

#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// Work for the coordinator at URL (`http://HOST:PORT`, or `https://` with TLS).
    #[arg(long, value_name = "URL", conflicts_with = "local")]
    pub coordinator: Option<String>,
    /// File holding the coordinator's token.
    #[arg(long, value_name = "FILE", requires = "coordinator")]
    pub token_file: Option<PathBuf>,
    /// Tasks run at once (default: all cores).
    #[arg(long, value_name = "N", requires = "coordinator", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub slots: Option<u32>,
    /// A local copy of the artifact data directory (otherwise inputs are fetched from the
    /// coordinator and cached).
    #[arg(long, value_name = "DIR", requires = "coordinator")]
    pub data: Option<PathBuf>,
    /// Cache of fetched inputs, by SHA-256 (default: $TMPDIR/apparate-worker-cache).
    #[arg(long, value_name = "DIR", requires = "coordinator")]
    pub cache: Option<PathBuf>,
    /// Scratch folder for running tasks (default: $TMPDIR/apparate-worker-<pid>).
    #[arg(long, value_name = "DIR", requires = "coordinator")]
    pub scratch: Option<PathBuf>,
    /// Report a GPU to the coordinator.
    #[arg(long, requires = "coordinator")]
    pub gpu: bool,
    /// CA (PEM) the coordinator's TLS certificate must chain to.
    #[arg(long, value_name = "PEM", requires = "coordinator")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Server name to check in the coordinator's certificate (default: the URL's host).
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_domain: Option<String>,
}

/// Adds the token to every call.
#[derive(Clone)]
struct Auth(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        req.metadata_mut()
            .insert(proto::AUTH_HEADER, self.0.clone());
        Ok(req)
    }
}

type Client = CoordinatorClient<InterceptedService<Channel, Auth>>;

struct Worker {
    client: Client,
    id: AtomicU64,
    slots: u32,
    has_inputs: bool,
    gpu: bool,
    host: String,
    data: Option<PathBuf>,
    cache: PathBuf,
    scratch: PathBuf,
    code_version: String,
    /// Attempts running now.
    held: Mutex<HashSet<u64>>,
    /// Attempts the coordinator no longer accepts.
    revoked: Mutex<HashSet<u64>>,
    heartbeat_every: AtomicU64,
    stopping: AtomicBool,
    heartbeats_paused: AtomicBool,
    stall_used: AtomicBool,
    /// The forging fault hook was used (it acts once).
    forge_used: AtomicBool,
}

/// Exponential backoff for calls while the coordinator is away.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

fn transient(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Internal
    )
}

fn fatal(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unauthenticated | Code::FailedPrecondition | Code::PermissionDenied
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

pub fn run(args: RemoteArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run_async(args))
}

async fn connect(args: &RemoteArgs, token: &str) -> Result<Client> {
    let url = args.coordinator.clone().unwrap_or_default();
    let mut endpoint = Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad coordinator URL {url:?}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    if let Some(ca) = &args.tls_ca {
        let read =
            |p: &PathBuf| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if let (Some(c), Some(k)) = (&args.tls_cert, &args.tls_key) {
            tls = tls.identity(Identity::from_pem(read(c)?, read(k)?));
        }
        if let Some(d) = &args.tls_domain {
            tls = tls.domain_name(d.clone());
        }
        endpoint = endpoint.tls_config(tls).context("TLS configuration")?;
    }
    let channel = endpoint.connect_lazy();
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| anyhow!("the token holds characters not allowed in a header"))?;
    Ok(CoordinatorClient::with_interceptor(channel, Auth(value))
        .max_decoding_message_size(8 * 1024 * 1024))
}

async fn run_async(args: RemoteArgs) -> Result<()> {
    let token_file = args
        .token_file
        .clone()
        .ok_or_else(|| anyhow!("--coordinator needs --token-file"))?;
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("cannot read the token file {}", token_file.display()))?
        .trim()
        .to_string();
    let client = connect(&args, &token).await?;
    let tmp = std::env::temp_dir();
    let scratch = args
        .scratch
        .clone()
        .unwrap_or_else(|| tmp.join(format!("apparate-worker-{}", std::process::id())));
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| tmp.join("apparate-worker-cache"));
    for d in [&scratch, &cache] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let slots = args
        .slots
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let w = Arc::new(Worker {
        client,
        id: AtomicU64::new(0),
        slots,
        has_inputs: args.data.is_some(),
        gpu: args.gpu,
        host: hostname(),
        data: args.data.clone(),
        cache,
        scratch: scratch.clone(),
        code_version: worker::code_version(),
        held: Mutex::new(HashSet::new()),
        revoked: Mutex::new(HashSet::new()),
        heartbeat_every: AtomicU64::new(1000),
        stopping: AtomicBool::new(false),
        heartbeats_paused: AtomicBool::new(false),
        stall_used: AtomicBool::new(false),
        forge_used: AtomicBool::new(false),
    });
    let signals = Signals::install();
    w.register().await?;
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(4);
    let heartbeat = tokio::spawn(heartbeat_loop(Arc::clone(&w), fatal_tx.clone()));
    let mut slots_set = tokio::task::JoinSet::new();
    for _ in 0..slots {
        slots_set.spawn(slot_loop(Arc::clone(&w), fatal_tx.clone()));
    }
    drop(fatal_tx);
    let signals = signal_loop(Arc::clone(&w), signals);
    tokio::pin!(signals);
    let result = loop {
        tokio::select! {
            Some(e) = fatal_rx.recv() => break Err(e),
            joined = slots_set.join_next() => match joined {
                None => break Ok(()),
                Some(Err(e)) => break Err(anyhow!("a slot panicked: {e}")),
                Some(Ok(())) => {}
            },
            () = &mut signals => {
                w.return_leases().await;
                break Err(anyhow!("stopped by a second signal; leases handed back"));
            }
        }
    };
    heartbeat.abort();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// SIGINT and SIGTERM, registered before the worker registers (so a signal is never lost to
/// the default action once the worker is known to the coordinator).
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.int) => {},
                () = recv(&mut self.term) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves on the second SIGINT/SIGTERM; the first sets `stopping`.
async fn signal_loop(w: Arc<Worker>, mut signals: Signals) {
    signals.next().await;
    tracing::warn!("stopping: finishing running tasks (signal again to hand them back)");
    w.stopping.store(true, Ordering::SeqCst);
    signals.next().await;
}

impl Worker {
    fn client(&self) -> Client {
        self.client.clone()
    }

    fn id(&self) -> u64 {
        self.id.load(Ordering::SeqCst)
    }

    /// Registers (retrying while the coordinator is away).
    async fn register(&self) -> Result<()> {
        let mut backoff = BACKOFF_START;
        loop {
            let req = pb::RegisterRequest {
                protocol_version: proto::PROTOCOL_VERSION,
                host: self.host.clone(),
                slots: self.slots,
                has_inputs: self.has_inputs,
                gpu: self.gpu,
                code_version: self.code_version.clone(),
            };
            match self.client().register(req).await {
                Ok(r) => {
                    let r = r.into_inner();
                    self.id.store(r.worker_id, Ordering::SeqCst);
                    self.heartbeat_every
                        .store(r.heartbeat_interval_ms.max(1), Ordering::SeqCst);
                    tracing::info!(
                        "registered as worker w{} ({} slots, lease {} ms)",
                        r.worker_id,
                        self.slots,
                        r.lease_ms
                    );
                    return Ok(());
                }
                Err(s) if fatal(&s) => {
                    bail!("the coordinator refused this worker: {}", s.message())
                }
                Err(s) => {
                    tracing::warn!(
                        "coordinator unreachable ({}); retrying in {backoff:?}",
                        s.message()
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn return_leases(&self) {
        let held: Vec<u64> = self
            .held
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default();
        for attempt in held {
            let req = pb::ReturnLeaseRequest {
                worker_id: self.id(),
                attempt_id: attempt,
            };
            let _ = self.client().return_lease(req).await;
            tracing::info!("handed back attempt a{attempt}");
        }
    }

    fn is_revoked(&self, attempt: u64) -> bool {
        self.revoked
            .lock()
            .map(|r| r.contains(&attempt))
            .unwrap_or(false)
    }
}

async fn heartbeat_loop(w: Arc<Worker>, fatal_tx: tokio::sync::mpsc::Sender<anyhow::Error>) {
    loop {
        let every = Duration::from_millis(w.heartbeat_every.load(Ordering::SeqCst));
        tokio::time::sleep(every).await;
        if w.heartbeats_paused.load(Ordering::SeqCst) {
            continue;
        }
        let attempts: Vec<u64> = w
            .held
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default();
        let req = pb::HeartbeatRequest {
            protocol_version: proto::PROTOCOL_VERSION,
            worker_id: w.id(),
            attempts,
        };
        match w.client().heartbeat(req).await {
            Ok(r) => {
                let r = r.into_inner();
                // Attempts that finished while the heartbeat travelled are not news.
                let still_held: Vec<u64> = match w.held.lock() {
                    Ok(h) => r.revoked.into_iter().filter(|a| h.contains(a)).collect(),
                    Err(_) => Vec::new(),
                };
                if !still_held.is_empty() {
                    tracing::warn!("the coordinator revoked attempts {still_held:?}");
                    if let Ok(mut rv) = w.revoked.lock() {
                        rv.extend(still_held);
                    }
                }
                if r.unknown_worker {
                    tracing::warn!(
                        "the coordinator does not know this worker (restarted?); registering again"
                    );
                    if let Err(e) = w.register().await {
                        let _ = fatal_tx.send(e).await;
                        return;
                    }
                }
            }
            Err(s) if fatal(&s) => {
                let _ = fatal_tx
                    .send(anyhow!(
                        "the coordinator refused a heartbeat: {}",
                        s.message()
                    ))
                    .await;
                return;
            }
            Err(s) => tracing::debug!("heartbeat failed: {}", s.message()),
        }
    }
}

async fn slot_loop(w: Arc<Worker>, fatal_tx: tokio::sync::mpsc::Sender<anyhow::Error>) {
    let mut backoff = BACKOFF_START;
    while !w.stopping.load(Ordering::SeqCst) {
        let req = pb::PullTaskRequest { worker_id: w.id() };
        let reply = match w.client().pull_task(req).await {
            Ok(r) => {
                backoff = BACKOFF_START;
                r.into_inner().reply
            }
            Err(s) if fatal(&s) => {
                let _ = fatal_tx
                    .send(anyhow!(
                        "the coordinator refused this worker: {}",
                        s.message()
                    ))
                    .await;
                return;
            }
            Err(s) if s.code() == Code::NotFound => {
                // Unknown worker id (the coordinator restarted): the heartbeat re-registers.
                tracing::debug!("pull: {}", s.message());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(s) => {
                tracing::debug!("pull failed ({}); retrying in {backoff:?}", s.message());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        match reply {
            Some(pb::pull_task_reply::Reply::Lease(lease)) => run_lease(&w, lease).await,
            Some(pb::pull_task_reply::Reply::Wait(wait)) => {
                if !wait.reason.is_empty() {
                    // Blocked after too many failures in a row: nothing more to do here.
                    let _ = fatal_tx.send(anyhow!("{}", wait.reason)).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(wait.retry_after_ms.clamp(10, 5000)))
                    .await;
            }
            Some(pb::pull_task_reply::Reply::Done(_)) => {
                tracing::info!("the sweep is done");
                return;
            }
            None => tokio::time::sleep(BACKOFF_START).await,
        }
    }
}

/// A failure to report.
struct Failed {
    retryable: bool,
    counts: bool,
    reason: pb::task_failed::Reason,
}

impl From<TaskFailure> for Failed {
    fn from(f: TaskFailure) -> Failed {
        let kind = serde_json::to_value(f.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "output".to_string());
        Failed {
            retryable: f.retryable,
            // A task that fails on its own inputs is not the worker's fault.
            counts: f.retryable,
            reason: pb::task_failed::Reason::TaskError(pb::TaskError {
                kind,
                message: f.message,
            }),
        }
    }
}

fn input_unavailable(path: &str, message: String) -> Failed {
    Failed {
        retryable: true,
        counts: true,
        reason: pb::task_failed::Reason::InputUnavailable(pb::InputUnavailable {
            path: path.to_string(),
            message,
        }),
    }
}

fn planned_task(lease: &pb::Lease) -> Result<PlannedTask, String> {
    let key = TaskKey::parse(&lease.task_key).map_err(|e| e.to_string())?;
    let spec: TaskSpec =
        serde_json::from_str(&lease.task_spec_json).map_err(|e| format!("task spec: {e}"))?;
    let digests: BTreeMap<String, String> = lease.digests.clone().into_iter().collect();
    Ok(PlannedTask {
        index: 0,
        key,
        spec,
        digests,
    })
}

async fn run_lease(w: &Arc<Worker>, lease: pb::Lease) {
    let attempt = lease.attempt_id;
    if let Ok(mut h) = w.held.lock() {
        h.insert(attempt);
    }
    tracing::info!("leased {} as attempt a{attempt}", lease.task_key);
    let stalled = stall_hook(w, attempt).await;
    let outcome = run_attempt(w, &lease).await;
    let result = match outcome {
        Ok(dir) => {
            let r = if w.is_revoked(attempt) && !stalled {
                tracing::warn!("attempt a{attempt} was revoked; its result is dropped");
                Ok(())
            } else {
                upload(w, &lease, &dir).await
            };
            let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(&dir));
            r
        }
        Err(f) => report_failure(w, &lease, f).await,
    };
    if let Err(e) = result {
        tracing::error!("attempt a{attempt} ({}): {e:#}", lease.task_key);
    }
    let _ = std::fs::remove_dir_all(w.scratch.join(format!("inputs-a{attempt}")));
    if let Ok(mut h) = w.held.lock() {
        h.remove(&attempt);
    }
}

/// The fault-injection hook (see the module docs). Returns whether this attempt was stalled.
async fn stall_hook(w: &Worker, attempt: u64) -> bool {
    let Some(path) = std::env::var_os("APPARATE_FAULT_STALL") else {
        return false;
    };
    if w.stall_used.swap(true, Ordering::SeqCst) {
        return false;
    }
    let silent = std::env::var("APPARATE_FAULT_STALL_SILENT").is_ok_and(|v| v == "1");
    if silent {
        w.heartbeats_paused.store(true, Ordering::SeqCst);
    }
    let path = PathBuf::from(path);
    tracing::warn!(
        "fault hook: stalling attempt a{attempt} until {} exists{}",
        path.display(),
        if silent { " (no heartbeats)" } else { "" }
    );
    while !path.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.heartbeats_paused.store(false, Ordering::SeqCst);
    tracing::warn!("fault hook: attempt a{attempt} resumes");
    true
}

/// Fetches the inputs and runs the task; returns the folder holding its files and manifest.
async fn run_attempt(w: &Arc<Worker>, lease: &pb::Lease) -> Result<PathBuf, Failed> {
    let attempt = lease.attempt_id;
    let mut task = planned_task(lease).map_err(|m| Failed {
        retryable: false,
        counts: false,
        reason: pb::task_failed::Reason::TaskError(pb::TaskError {
            kind: "input".to_string(),
            message: format!("unreadable lease: {m}"),
        }),
    })?;
    if let Inputs::Artifact { .. } = task.spec.inputs {
        let dir = match &w.data {
            Some(d) => d.clone(),
            None => fetch_inputs(w, lease).await?,
        };
        task.spec.inputs = Inputs::Artifact { dir };
    }
    let run_dir = w.scratch.join(format!("run-a{attempt}"));
    let code_version = w.code_version.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let writer = ResultsDir::new(&run_dir).lock().map_err(|e| TaskFailure {
            kind: FailureKind::Results,
            retryable: true,
            message: e.to_string(),
        })?;
        execute(&task, &writer, &code_version)?;
        Ok::<PathBuf, TaskFailure>(writer.dir().task_dir(&task.key))
    })
    .await;
    match joined {
        Ok(Ok(dir)) => Ok(dir),
        Ok(Err(f)) => Err(Failed::from(f)),
        Err(e) => Err(Failed::from(TaskFailure {
            kind: FailureKind::Panic,
            retryable: false,
            message: format!("the task thread died: {e}"),
        })),
    }
}

/// Makes the lease's input files available under `inputs-a<attempt>/` (hard links into the
/// digest cache, fetched when missing) and returns that folder.
async fn fetch_inputs(w: &Arc<Worker>, lease: &pb::Lease) -> Result<PathBuf, Failed> {
    let dir = w.scratch.join(format!("inputs-a{}", lease.attempt_id));
    for input in &lease.inputs {
        let fail = |m: String| input_unavailable(&input.path, m);
        let Some(target) = safe_join(&dir, &input.path) else {
            return Err(fail("unsafe input path".to_string()));
        };
        if input.sha256.len() != 64 || !input.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail(format!("bad digest {:?}", input.sha256)));
        }
        let cached = w.cache.join(&input.sha256);
        if !cached.exists() {
            fetch_one(w, lease.attempt_id, input, &cached)
                .await
                .map_err(|e| fail(format!("{e:#}")))?;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        }
        if std::fs::hard_link(&cached, &target).is_err() {
            std::fs::copy(&cached, &target).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(dir)
}

async fn fetch_one(w: &Worker, attempt: u64, input: &pb::InputFile, cached: &Path) -> Result<()> {
    let req = pb::FetchInputRequest {
        worker_id: w.id(),
        attempt_id: attempt,
        path: input.path.clone(),
    };
    let mut stream = w.client().fetch_input(req).await?.into_inner();
    // A fresh temporary file beside the cache entry (created exclusively: never through a
    // link), renamed into place once its digest is checked.
    let (tmp, mut f) = worker::safe_write::create_temp_beside(cached)?;
    let received = async {
        use std::io::Write;
        while let Some(chunk) = stream.message().await? {
            f.write_all(&chunk.data)?;
        }
        f.sync_all()?;
        Ok::<(), anyhow::Error>(())
    }
    .await;
    drop(f);
    if let Err(e) = received {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let digest = file_sha256(&tmp)?;
    if digest != input.sha256 {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{}: fetched bytes have SHA-256 {digest}, the lease says {}",
            input.path,
            input.sha256
        );
    }
    std::fs::rename(&tmp, cached)?;
    tracing::info!("fetched input {} ({})", input.path, &input.sha256[..12]);
    Ok(())
}

fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    let plain = !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then(|| root.join(p))
}

async fn report_failure(w: &Worker, lease: &pb::Lease, f: Failed) -> Result<()> {
    let req = pb::TaskFailed {
        worker_id: w.id(),
        attempt_id: lease.attempt_id,
        task_key: lease.task_key.clone(),
        retryable: f.retryable,
        counts_toward_limit: f.counts,
        reason: Some(f.reason),
    };
    let mut backoff = BACKOFF_START;
    for _ in 0..8 {
        match w.client().report_failure(req.clone()).await {
            Ok(r) => {
                let r = r.into_inner();
                if r.accepted {
                    tracing::warn!("reported the failure of attempt a{}", lease.attempt_id);
                } else {
                    tracing::warn!("failure report ignored: {}", r.reason);
                }
                return Ok(());
            }
            Err(s) if transient(&s) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(s) => bail!("cannot report the failure: {}", s.message()),
        }
    }
    bail!("cannot report the failure: the coordinator stays unreachable")
}

/// Streams the task's files (all but the manifest, which the coordinator writes) and the
/// outcome from the local manifest.
async fn upload(w: &Worker, lease: &pb::Lease, dir: &Path) -> Result<()> {
    let mpath = dir.join(worker::results::MANIFEST_FILE);
    let bytes =
        std::fs::read(&mpath).with_context(|| format!("cannot read {}", mpath.display()))?;
    let manifest = worker::results::parse_manifest(&mpath, &bytes).map_err(|p| anyhow!("{p}"))?;
    let header = pb::ResultHeader {
        worker_id: w.id(),
        attempt_id: lease.attempt_id,
        task_key: lease.task_key.clone(),
        files: manifest
            .files
            .iter()
            .map(|f| pb::ResultFile {
                name: f.name.clone(),
                size: f.bytes,
                sha256: f.sha256.clone(),
            })
            .collect(),
        num_requests: manifest.num_requests as u64,
        summary_lines: manifest.summary_lines.clone(),
        started_unix_ms: manifest.timings.started_unix_ms,
        run_ms: manifest.timings.run_ms,
        total_ms: manifest.timings.total_ms,
    };
    let mut header = header;
    let mut paths: Vec<PathBuf> = manifest.files.iter().map(|f| dir.join(&f.name)).collect();
    if let Some(forged) = std::env::var_os("APPARATE_FAULT_FORGE") {
        if !w.forge_used.swap(true, Ordering::SeqCst) {
            let forged = PathBuf::from(forged);
            let bytes = std::fs::read(&forged)
                .with_context(|| format!("fault hook: cannot read {}", forged.display()))?;
            tracing::warn!("fault hook: uploading {} as the result", forged.display());
            header.files = vec![pb::ResultFile {
                name: forged
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                size: bytes.len() as u64,
                sha256: worker::sweep::digest::sha256_hex(&bytes),
            }];
            paths = vec![forged];
        }
    }
    let mut backoff = BACKOFF_START;
    for _ in 0..8 {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::ResultChunk>(4);
        let files: Vec<PathBuf> = paths.clone();
        let first = pb::ResultChunk {
            chunk: Some(pb::result_chunk::Chunk::Header(header.clone())),
        };
        let sender = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Read;
            if tx.blocking_send(first).is_err() {
                return Ok(());
            }
            let mut buf = vec![0u8; proto::CHUNK_BYTES];
            for (i, path) in files.iter().enumerate() {
                let mut f = std::fs::File::open(path)?;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    let chunk = pb::ResultChunk {
                        chunk: Some(pb::result_chunk::Chunk::Data(pb::FileData {
                            file: i as u32,
                            data: buf[..n].to_vec(),
                        })),
                    };
                    if tx.blocking_send(chunk).is_err() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        });
        let res = w
            .client()
            .upload_result(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        let read = sender.await;
        match (res, read) {
            (_, Ok(Err(e))) => bail!("cannot read a result file: {e}"),
            (Ok(r), _) => {
                let r = r.into_inner();
                if r.accepted {
                    tracing::info!("result of attempt a{} accepted", lease.attempt_id);
                } else {
                    tracing::warn!(
                        "result of attempt a{} rejected: {}",
                        lease.attempt_id,
                        r.reason
                    );
                }
                return Ok(());
            }
            (Err(s), _) if transient(&s) && !w.is_revoked(lease.attempt_id) => {
                tracing::warn!("upload failed ({}); retrying in {backoff:?}", s.message());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            (Err(s), _) => bail!("upload refused: {}", s.message()),
        }
    }
    bail!("upload failed: the coordinator stays unreachable")
}
