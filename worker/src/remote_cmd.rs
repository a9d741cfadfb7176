//! `worker --coordinator URL`: a remote worker of a distributed sweep.
//!
//! Registers, then runs up to `--slots` tasks at once: each slot pulls a task under a lease,
//! fetches missing artifact inputs (checked against their SHA-256, cached by digest), runs it
//! with the code of `worker --local` (`apparate::local::execute`) on a blocking thread into a
//! scratch folder and streams the files back in chunks. A heartbeat task on the async runtime
//! renews the leases (simulation, hashing and copying inputs, reading result files never run
//! there: they go to `spawn_blocking`, so heartbeats never stall). When the
//! coordinator is away, calls are retried with exponential backoff.
//!
//! A live task (issue #14: `kind = "live"` grids) runs alone: the worker fetches the built
//! backend-inputs folder and the model's weights, data and labels, waits for the tasks running
//! beside it to end, pulls nothing new meanwhile, and runs `ee-backend serve` into the scratch
//! folder; its folder holds the result files and `serve.json`, `timing.jsonl`. The coordinator
//! leases a live task that asks for `device = "cuda"` only to a worker started with `--gpu`.
//!
//! Signals: the first SIGINT/SIGTERM stops pulling and lets running tasks finish and upload;
//! a second hands the leases back and exits at once.
//!
//! Exit: as soon as any slot hears that the sweep is done, the worker exits 0; the other slots
//! abandon what they are doing (a retry, a backoff: with every task done or failed for good, no
//! lease they hold can still count). When calls fail and no reply has come for
//! `--give-up-after` (default 10 minutes: a coordinator killed, or never reachable), it exits
//! non-zero with one line saying so.
//!
//! Fault injection for tests (documented in `tests/README.md`): with
//! `APPARATE_FAULT_STALL=PATH` the worker stalls after its first lease until `PATH` exists, then
//! runs and uploads that task even if its lease was lost meanwhile; with
//! `APPARATE_FAULT_STALL_SILENT=1` it also sends no heartbeats while stalled. With
//! `APPARATE_FAULT_BACKOFF=PATH` the first slot to pull acts as if that pull had failed and
//! stays in its backoff until `PATH` exists. With `APPARATE_FAULT_FORGE=FILE` its first upload
//! is not the task's result but `FILE` alone (a hostile worker, issue #11; the coordinator
//! must refuse it).

#[path = "remote_build.rs"]
mod build;

use anyhow::{anyhow, bail, Context, Result};
use apparate::ids::{AttemptId, WorkerId};
use apparate::local::{execute_live, execute_on, TaskFailure};
use apparate::results::{FailureKind, ResultsDir};
use apparate::storage::Storage;
use apparate::sweep::digest::file_sha256;
use apparate::sweep::{PlannedTask, TaskKey};
use apparate::task::{Inputs, TaskSpec};
use proto::v1 as pb;
use proto::v1::coordinator_client::CoordinatorClient;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::codegen::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

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
    // The doc comment is the `--help` text too, so it stays free of markup.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long, value_name = "DIR", requires = "coordinator")]
    pub scratch: Option<PathBuf>,
    /// This machine has a GPU: the coordinator may give it the building of backend inputs of a
    /// `device = "cuda"` spec (`ee-backend gen-data`, with the `ee-backend` beside `worker` or
    /// `$APPARATE_EE_BACKEND`).
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
    /// Exit (non-zero) when calls to the coordinator fail and none has had a reply for this
    /// long: a number and a unit (500ms, 30s, 10m, 2h).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_give_up, requires = "coordinator")]
    pub give_up_after: Duration,
}

fn parse_give_up(text: &str) -> Result<Duration, String> {
    apparate::duration::parse_duration(text).map_err(|e| e.to_string())
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
    /// The [`WorkerId`] the coordinator gave at the last registration (its raw number, so
    /// that a re-registration can replace it); read and set through [`Worker::id`] and
    /// [`Worker::set_id`].
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
    held: Mutex<HashSet<AttemptId>>,
    /// Attempts the coordinator no longer accepts.
    revoked: Mutex<HashSet<AttemptId>>,
    /// Milliseconds between heartbeats, as the coordinator said at registration.
    heartbeat_every: AtomicU64,
    /// How results are stored, as the coordinator said at registration.
    storage: Mutex<Storage>,
    stopping: AtomicBool,
    heartbeats_paused: AtomicBool,
    stall_used: AtomicBool,
    backoff_hook_used: AtomicBool,
    /// The coordinator's URL (for messages).
    url: String,
    /// When this process started; [`Worker::contact_ms`] counts from here.
    started: Instant,
    /// Milliseconds after `started` of the last reply from the coordinator.
    contact_ms: AtomicU64,
    /// Milliseconds after `started` of the last call that got no reply.
    failure_ms: AtomicU64,
    /// `--give-up-after`.
    give_up: Duration,
    /// The forging fault hook was used (it acts once).
    forge_used: AtomicBool,
    /// A live task runs alone: it holds this for writing while it runs (after the tasks
    /// running beside it ended), every other task for reading, and a slot waits for it to be
    /// free before it pulls.
    alone: tokio::sync::RwLock<()>,
}

/// How a slot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotEnd {
    /// The coordinator said the sweep is done: the whole worker ends.
    SweepDone,
    /// Stopping after a signal, or a fatal error already sent on the channel.
    Stopped,
}

/// The heartbeat interval (ms) until registration replaces it with the coordinator's
/// (`RegisterReply.heartbeat_interval_ms`: the lease divided by the coordinator's
/// `HEARTBEATS_PER_LEASE`, a quarter of it, so that a lease survives two lost heartbeats in a
/// row). The heartbeat loop only starts once registered, so no heartbeat is timed by this
/// value; it is still a safe one: a quarter of a 4 s lease, more often than the coordinator's
/// default lease of 10 s asks for (every 2.5 s), never too rarely for a lease of 4 s or more.
const HEARTBEAT_MS_BEFORE_REGISTER: u64 = 1000;

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
    let result = rt.block_on(run_async(args));
    // A task abandoned on a blocking thread (the sweep is done, or the worker gave up) must
    // not hold the exit: its result can no longer count.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn connect(args: &RemoteArgs, token: &str) -> Result<Client> {
    let url = args.coordinator.clone().unwrap_or_default();
    let mut endpoint = Endpoint::from_shared(url.clone())
        .with_context(|| format!("bad coordinator URL {url:?}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    if let Some(ca) = &args.tls_ca {
        let read = |p: &PathBuf| {
            apparate::input_file::read_regular(p)
                .with_context(|| format!("cannot read {}", p.display()))
        };
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
    let token = apparate::input_file::read_regular_to_string(&token_file)
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
        code_version: apparate::code_version(),
        held: Mutex::new(HashSet::new()),
        revoked: Mutex::new(HashSet::new()),
        heartbeat_every: AtomicU64::new(HEARTBEAT_MS_BEFORE_REGISTER),
        storage: Mutex::new(Storage::Plain),
        stopping: AtomicBool::new(false),
        heartbeats_paused: AtomicBool::new(false),
        stall_used: AtomicBool::new(false),
        backoff_hook_used: AtomicBool::new(false),
        url: args.coordinator.clone().unwrap_or_default(),
        started: Instant::now(),
        contact_ms: AtomicU64::new(0),
        failure_ms: AtomicU64::new(0),
        give_up: args.give_up_after,
        forge_used: AtomicBool::new(false),
        alone: tokio::sync::RwLock::new(()),
    });
    let signals = Signals::install();
    tokio::select! {
        r = w.register() => r?,
        e = give_up_watch(&w) => return Err(e),
    }
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(4);
    let heartbeat = tokio::spawn(heartbeat_loop(Arc::clone(&w), fatal_tx.clone()));
    let mut slots_set = tokio::task::JoinSet::new();
    for _ in 0..slots {
        slots_set.spawn(slot_loop(Arc::clone(&w), fatal_tx.clone()));
    }
    drop(fatal_tx);
    let signals = signal_loop(Arc::clone(&w), signals);
    tokio::pin!(signals);
    let give_up = give_up_watch(&w);
    tokio::pin!(give_up);
    let result = loop {
        tokio::select! {
            Some(e) = fatal_rx.recv() => break Err(e),
            joined = slots_set.join_next() => match joined {
                None => break Ok(()),
                Some(Err(e)) => break Err(anyhow!("a slot panicked: {e}")),
                Some(Ok(SlotEnd::SweepDone)) => {
                    if !slots_set.is_empty() {
                        tracing::info!(
                            "leaving {} other slot(s): nothing is left to run",
                            slots_set.len()
                        );
                    }
                    break Ok(());
                }
                Some(Ok(SlotEnd::Stopped)) => {}
            },
            () = &mut signals => {
                w.return_leases().await;
                break Err(anyhow!("stopped by a second signal; leases handed back"));
            }
            e = &mut give_up => break Err(e),
        }
    };
    // The remaining slots (in a call, a backoff or a task) are dropped where they wait.
    slots_set.abort_all();
    heartbeat.abort();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Resolves (with the error to exit with) once the coordinator has been unreachable for
/// `--give-up-after` ([`Worker::gave_up`]).
async fn give_up_watch(w: &Worker) -> anyhow::Error {
    let every = (w.give_up / 8).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        if w.gave_up() {
            return anyhow!(
                "giving up: the coordinator at {} has been unreachable for longer than \
                 --give-up-after {}",
                w.url,
                apparate::duration::format_flag_duration(w.give_up)
            );
        }
    }
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

    fn id(&self) -> WorkerId {
        WorkerId::new(self.id.load(Ordering::SeqCst))
    }

    fn set_id(&self, id: WorkerId) {
        self.id.store(id.get(), Ordering::SeqCst);
    }

    /// The attempts running now.
    fn held_attempts(&self) -> Vec<AttemptId> {
        self.held
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Records a reply from the coordinator (any answer, even a refusal: it is reachable).
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.contact_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// Records a call that got no reply (the coordinator away, or the network).
    fn call_failed(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.failure_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// Whether the coordinator counts as unreachable for longer than `--give-up-after`: a call
    /// failed after the last reply, and that reply (or the start) is that long ago. Quiet
    /// periods without calls (a long task between heartbeats) do not count.
    fn gave_up(&self) -> bool {
        let contact = self.contact_ms.load(Ordering::SeqCst);
        let failed = self.failure_ms.load(Ordering::SeqCst);
        failed > contact
            && self
                .started
                .elapsed()
                .saturating_sub(Duration::from_millis(contact))
                >= self.give_up
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
                    self.touch();
                    let r = r.into_inner();
                    let id = WorkerId::new(r.worker_id);
                    self.set_id(id);
                    self.heartbeat_every
                        .store(r.heartbeat_interval_ms.max(1), Ordering::SeqCst);
                    let Some(storage) = Storage::parse(&r.result_storage) else {
                        bail!(
                            "the coordinator asks for results stored as {:?}; this worker \
                             stores them plain or zstd",
                            r.result_storage
                        );
                    };
                    *self.storage.lock().unwrap_or_else(|p| p.into_inner()) = storage;
                    tracing::info!(
                        "registered as worker {id} ({} slots, lease {} ms)",
                        self.slots,
                        r.lease_ms
                    );
                    return Ok(());
                }
                Err(s) if fatal(&s) => {
                    bail!("the coordinator refused this worker: {}", s.message())
                }
                Err(s) => {
                    self.call_failed();
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
        for attempt in self.held_attempts() {
            let req = pb::ReturnLeaseRequest {
                worker_id: self.id().get(),
                attempt_id: attempt.get(),
            };
            let _ = self.client().return_lease(req).await;
            tracing::info!("handed back attempt {attempt}");
        }
    }

    fn is_revoked(&self, attempt: AttemptId) -> bool {
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
        let req = pb::HeartbeatRequest {
            protocol_version: proto::PROTOCOL_VERSION,
            worker_id: w.id().get(),
            attempts: w.held_attempts().iter().map(|a| a.get()).collect(),
        };
        match w.client().heartbeat(req).await {
            Ok(r) => {
                w.touch();
                let r = r.into_inner();
                // Attempts that finished while the heartbeat travelled are not news.
                let still_held: Vec<AttemptId> = match w.held.lock() {
                    Ok(h) => r
                        .revoked
                        .into_iter()
                        .map(AttemptId::new)
                        .filter(|a| h.contains(a))
                        .collect(),
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
            Err(s) => {
                w.call_failed();
                tracing::debug!("heartbeat failed: {}", s.message());
            }
        }
    }
}

async fn slot_loop(w: Arc<Worker>, fatal_tx: tokio::sync::mpsc::Sender<anyhow::Error>) -> SlotEnd {
    let mut backoff = BACKOFF_START;
    while !w.stopping.load(Ordering::SeqCst) {
        backoff_hook(&w).await;
        // No new task while a live task runs (or waits to run) alone.
        drop(w.alone.read().await);
        let req = pb::PullTaskRequest {
            worker_id: w.id().get(),
        };
        let reply = match w.client().pull_task(req).await {
            Ok(r) => {
                w.touch();
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
                return SlotEnd::Stopped;
            }
            Err(s) if s.code() == Code::NotFound => {
                // Unknown worker id (the coordinator restarted): the heartbeat re-registers.
                w.touch();
                tracing::debug!("pull: {}", s.message());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(s) => {
                w.call_failed();
                tracing::debug!("pull failed ({}); retrying in {backoff:?}", s.message());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        match reply {
            Some(pb::pull_task_reply::Reply::Lease(lease)) => run_lease(&w, lease).await,
            Some(pb::pull_task_reply::Reply::Build(b)) => build::run_build(&w, b).await,
            Some(pb::pull_task_reply::Reply::Wait(wait)) => {
                if !wait.reason.is_empty() {
                    // Blocked after too many failures in a row: nothing more to do here.
                    let _ = fatal_tx.send(anyhow!("{}", wait.reason)).await;
                    return SlotEnd::Stopped;
                }
                tokio::time::sleep(Duration::from_millis(wait.retry_after_ms.clamp(10, 5000)))
                    .await;
            }
            Some(pb::pull_task_reply::Reply::Done(_)) => {
                tracing::info!("the sweep is done");
                return SlotEnd::SweepDone;
            }
            None => tokio::time::sleep(BACKOFF_START).await,
        }
    }
    SlotEnd::Stopped
}

/// The fault-injection hook `APPARATE_FAULT_BACKOFF=PATH` (see the module docs): the first
/// slot to get here waits, as in the backoff after a failed pull, until `PATH` exists.
async fn backoff_hook(w: &Worker) {
    let Some(path) = std::env::var_os("APPARATE_FAULT_BACKOFF") else {
        return;
    };
    if w.backoff_hook_used.swap(true, Ordering::SeqCst) {
        return;
    }
    let path = PathBuf::from(path);
    tracing::warn!(
        "fault hook: a slot backs off until {} exists",
        path.display()
    );
    while !path.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!("fault hook: the slot retries");
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
    // The proto edge: from here on the attempt is typed.
    let attempt = AttemptId::new(lease.attempt_id);
    if let Ok(mut h) = w.held.lock() {
        h.insert(attempt);
    }
    tracing::info!("leased {} as attempt {attempt}", lease.task_key);
    let stalled = stall_hook(w, attempt).await;
    let outcome = run_attempt(w, attempt, &lease).await;
    let result = match outcome {
        Ok(dir) => {
            let r = if w.is_revoked(attempt) && !stalled {
                tracing::warn!("attempt {attempt} was revoked; its result is dropped");
                Ok(())
            } else {
                upload(w, attempt, &lease, &dir).await
            };
            let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(&dir));
            r
        }
        Err(f) => report_failure(w, attempt, &lease, f).await,
    };
    if let Err(e) = result {
        tracing::error!("attempt {attempt} ({}): {e:#}", lease.task_key);
    }
    let _ = std::fs::remove_dir_all(w.scratch.join(format!("inputs-{attempt}")));
    let _ = std::fs::remove_dir_all(w.scratch.join(format!("sources-{attempt}")));
    if let Ok(mut h) = w.held.lock() {
        h.remove(&attempt);
    }
}

/// The fault-injection hook (see the module docs). Returns whether this attempt was stalled.
async fn stall_hook(w: &Worker, attempt: AttemptId) -> bool {
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
        "fault hook: stalling attempt {attempt} until {} exists{}",
        path.display(),
        if silent { " (no heartbeats)" } else { "" }
    );
    while !path.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.heartbeats_paused.store(false, Ordering::SeqCst);
    tracing::warn!("fault hook: attempt {attempt} resumes");
    true
}

/// Fetches the inputs and runs the task; returns the folder holding its files and manifest.
async fn run_attempt(
    w: &Arc<Worker>,
    attempt: AttemptId,
    lease: &pb::Lease,
) -> Result<PathBuf, Failed> {
    let mut task = planned_task(lease).map_err(|m| Failed {
        retryable: false,
        counts: false,
        reason: pb::task_failed::Reason::TaskError(pb::TaskError {
            kind: "input".to_string(),
            message: format!("unreadable lease: {m}"),
        }),
    })?;
    if task.spec.live.is_some() {
        return run_live_attempt(w, attempt, lease, task).await;
    }
    // The spec the task runs on; `task.spec` stays the planned one (its manifest and key).
    let mut run_spec = task.spec.clone();
    match task.spec.inputs {
        Inputs::Artifact { .. } => {
            let dir = match &w.data {
                Some(d) => d.clone(),
                None => fetch_inputs(w, attempt, lease).await?,
            };
            task.spec.inputs = Inputs::Artifact { dir: dir.clone() };
            run_spec.inputs = Inputs::Artifact { dir };
        }
        // The folder the backend built: always fetched from the coordinator (`--data` is the
        // artifact's data, not it).
        Inputs::Backend { .. } => {
            let dir = fetch_inputs(w, attempt, lease).await?;
            run_spec.inputs = Inputs::Artifact { dir };
        }
        Inputs::Embedded { .. } => {}
    }
    let code_version = w.code_version.clone();
    let _beside = w.alone.read().await;
    run_blocking(w, attempt, move |writer| {
        execute_on(&task, &run_spec, writer, &code_version)?;
        Ok(writer.dir().task_dir(&task.key))
    })
    .await
}

/// Runs `run` on a blocking thread with a results writer over this attempt's scratch folder
/// (in the sweep's storage); `run` returns the task's folder there.
async fn run_blocking(
    w: &Arc<Worker>,
    attempt: AttemptId,
    run: impl FnOnce(&apparate::results::ResultsWriter) -> Result<PathBuf, TaskFailure> + Send + 'static,
) -> Result<PathBuf, Failed> {
    let run_dir = w.scratch.join(format!("run-{attempt}"));
    let storage = *w.storage.lock().unwrap_or_else(|p| p.into_inner());
    let joined = tokio::task::spawn_blocking(move || {
        let writer = ResultsDir::new(&run_dir)
            .lock_stored(storage)
            .map_err(|e| TaskFailure {
                kind: FailureKind::Results,
                retryable: true,
                message: e.to_string(),
            })?;
        run(&writer)
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

/// A live task (issue #14): fetches the built backend-inputs folder and the model's sources
/// (weights, data, labels: the lease's `source/...` files), waits until no other task runs
/// here, and runs `ee-backend serve` alone ([`apparate::local::execute_live`]) with the spec's
/// weights, data and labels pointing at the fetched copies.
async fn run_live_attempt(
    w: &Arc<Worker>,
    attempt: AttemptId,
    lease: &pb::Lease,
    task: PlannedTask,
) -> Result<PathBuf, Failed> {
    let refused = |message: String| Failed {
        retryable: false,
        counts: false,
        reason: pb::task_failed::Reason::TaskError(pb::TaskError {
            kind: "serve".to_string(),
            message,
        }),
    };
    let inputs_dir = w.scratch.join(format!("inputs-{attempt}"));
    let sources_dir = w.scratch.join(format!("sources-{attempt}"));
    let (sources, built): (Vec<pb::InputFile>, Vec<pb::InputFile>) = lease
        .inputs
        .iter()
        .cloned()
        .partition(|i| i.path.starts_with("source/"));
    fetch_into(w, attempt, &built, &inputs_dir).await?;
    fetch_into(w, attempt, &sources, &sources_dir).await?;
    let live_spec = {
        let listed: Vec<&str> = sources.iter().map(|i| i.path.as_str()).collect();
        local_sources(&task.spec, &sources_dir, &listed).map_err(refused)?
    };
    let code_version = w.code_version.clone();
    let _alone = w.alone.write().await;
    tracing::info!("attempt {attempt} is a live run: it runs alone on this worker");
    run_blocking(w, attempt, move |writer| {
        let exe = apparate::backend_inputs::locate().map_err(|e| TaskFailure {
            kind: FailureKind::Serve,
            retryable: false,
            message: e.to_string(),
        })?;
        execute_live(
            &task,
            &live_spec,
            &inputs_dir,
            &exe.path,
            writer,
            &code_version,
        )?;
        Ok(writer.dir().task_dir(&task.key))
    })
    .await
}

/// `spec` with its backend weights, data and labels at their fetched copies under `dir`
/// (named as [`apparate::backend_inputs::sources`] names them: `source/weights/<file>`,
/// `source/labels/<file>`, and `source/data/<file>` for a data file or the folder
/// `source/data` for a data folder). `listed`: the source paths the lease named.
fn local_sources(spec: &TaskSpec, dir: &Path, listed: &[&str]) -> Result<TaskSpec, String> {
    let mut s = spec.clone();
    let Inputs::Backend {
        weights,
        data,
        labels,
        ..
    } = &mut s.inputs
    else {
        return Err("a live task without backend inputs".to_string());
    };
    let name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| format!("{}: no UTF-8 file name", p.display()))
    };
    let weights_path = format!("source/weights/{}", name(weights)?);
    let data_file = format!("source/data/{}", name(data)?);
    let data_files = listed
        .iter()
        .filter(|p| p.starts_with("source/data/"))
        .count();
    let mut local = vec![(weights, weights_path)];
    let data_path = if data_files == 1 && listed.contains(&data_file.as_str()) {
        data_file
    } else {
        "source/data".to_string()
    };
    local.push((data, data_path));
    if let Some(l) = labels {
        let p = format!("source/labels/{}", name(l)?);
        local.push((l, p));
    }
    for (path, rel) in local {
        if rel != "source/data" && !listed.contains(&rel.as_str()) {
            return Err(format!("the lease does not name the source {rel}"));
        }
        *path = safe_join(dir, &rel).ok_or_else(|| format!("unsafe source path {rel:?}"))?;
    }
    Ok(s)
}

/// Makes the lease's input files available under `inputs-a<attempt>/` (hard links into the
/// digest cache, fetched when missing) and returns that folder.
async fn fetch_inputs(
    w: &Arc<Worker>,
    attempt: AttemptId,
    lease: &pb::Lease,
) -> Result<PathBuf, Failed> {
    let dir = w.scratch.join(format!("inputs-{attempt}"));
    fetch_into(w, attempt, &lease.inputs, &dir).await?;
    Ok(dir)
}

/// Makes `inputs` available under `dir` (hard links into the digest cache, fetched when
/// missing).
async fn fetch_into(
    w: &Arc<Worker>,
    attempt: AttemptId,
    inputs: &[pb::InputFile],
    dir: &Path,
) -> Result<(), Failed> {
    for input in inputs {
        let fail = |m: String| input_unavailable(&input.path, m);
        let Some(target) = safe_join(dir, &input.path) else {
            return Err(fail("unsafe input path".to_string()));
        };
        if input.sha256.len() != 64 || !input.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(fail(format!("bad digest {:?}", input.sha256)));
        }
        let cached = w.cache.join(&input.sha256);
        if !cached.exists() {
            fetch_one(w, attempt, input, &cached).await.map_err(|e| {
                w.call_failed();
                fail(format!("{e:#}"))
            })?;
        }
        blocking(move || link_or_copy(&cached, &target))
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Runs blocking file work (hashing, copying, syncing a fetched input) on tokio's blocking
/// pool, off the async runtime: its two threads also carry the heartbeats, which must not wait
/// behind a large input.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(format!("the file thread died: {e}")))?
}

/// Places a cached input at `target` (creating its folder): a hard link, or a copy where the
/// cache is on another file system.
fn link_or_copy(cached: &Path, target: &Path) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::hard_link(cached, target).is_err() {
        std::fs::copy(cached, target)?;
    }
    Ok(())
}

async fn fetch_one(
    w: &Worker,
    attempt: AttemptId,
    input: &pb::InputFile,
    cached: &Path,
) -> Result<()> {
    let req = pb::FetchInputRequest {
        worker_id: w.id().get(),
        attempt_id: attempt.get(),
        path: input.path.clone(),
    };
    let mut stream = w.client().fetch_input(req).await?.into_inner();
    // A fresh temporary file beside the cache entry (created exclusively: never through a
    // link), renamed into place once its digest is checked.
    let (tmp, mut f) = apparate::safe_write::create_temp_beside(cached)?;
    let received = async {
        use std::io::Write;
        let mut written: u64 = 0;
        while let Some(chunk) = stream.message().await? {
            written = written.saturating_add(chunk.data.len() as u64);
            if written > apparate::input_file::MAX_INPUT_BYTES {
                bail!(
                    "{}: the coordinator sent more than {} bytes, the limit for an input file",
                    input.path,
                    apparate::input_file::MAX_INPUT_BYTES
                );
            }
            f.write_all(&chunk.data)?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    if let Err(e) = received {
        drop(f);
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let digest = {
        let tmp = tmp.clone();
        blocking(move || {
            f.sync_all()?;
            drop(f);
            file_sha256(&tmp)
        })
        .await?
    };
    if digest != input.sha256 {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{}: fetched bytes have SHA-256 {digest}, the lease says {}",
            input.path,
            input.sha256
        );
    }
    w.touch();
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

async fn report_failure(
    w: &Worker,
    attempt: AttemptId,
    lease: &pb::Lease,
    f: Failed,
) -> Result<()> {
    let req = pb::TaskFailed {
        worker_id: w.id().get(),
        attempt_id: attempt.get(),
        task_key: lease.task_key.clone(),
        retryable: f.retryable,
        counts_toward_limit: f.counts,
        reason: Some(f.reason),
    };
    let mut backoff = BACKOFF_START;
    for _ in 0..8 {
        match w.client().report_failure(req.clone()).await {
            Ok(r) => {
                w.touch();
                let r = r.into_inner();
                if r.accepted {
                    tracing::warn!("reported the failure of attempt {attempt}");
                } else {
                    tracing::warn!("failure report ignored: {}", r.reason);
                }
                return Ok(());
            }
            Err(s) if transient(&s) => {
                w.call_failed();
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
async fn upload(w: &Worker, attempt: AttemptId, lease: &pb::Lease, dir: &Path) -> Result<()> {
    let mpath = dir.join(apparate::results::MANIFEST_FILE);
    let bytes =
        std::fs::read(&mpath).with_context(|| format!("cannot read {}", mpath.display()))?;
    let manifest = apparate::results::parse_manifest(&mpath, &bytes).map_err(|p| anyhow!("{p}"))?;
    let header = pb::ResultHeader {
        worker_id: w.id().get(),
        attempt_id: attempt.get(),
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
                sha256: apparate::sweep::digest::sha256_hex(&bytes),
            }];
            paths = vec![forged];
        }
    }
    let mut backoff = BACKOFF_START;
    for _ in 0..8 {
        let (stream, sender) = stream_files(header.clone(), paths.clone());
        let res = w.client().upload_result(stream).await;
        let read = sender.await;
        match (res, read) {
            (_, Ok(Err(e))) => bail!("cannot read a result file: {e}"),
            (Ok(r), _) => {
                w.touch();
                let r = r.into_inner();
                if r.accepted {
                    tracing::info!("result of attempt {attempt} accepted");
                } else {
                    tracing::warn!("result of attempt {attempt} rejected: {}", r.reason);
                }
                return Ok(());
            }
            (Err(s), _) if transient(&s) && !w.is_revoked(attempt) => {
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

/// Streams `header`, then every file of `files` in chunks of at most `proto::CHUNK_BYTES`, into
/// a channel (read on a blocking thread): the request of `UploadResult` and `UploadInputs`. The
/// handle's error is a file that could not be read; a closed channel ends it early.
pub(crate) fn stream_files(
    header: pb::ResultHeader,
    files: Vec<PathBuf>,
) -> (
    tokio_stream::wrappers::ReceiverStream<pb::ResultChunk>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ResultChunk>(4);
    let first = pb::ResultChunk {
        chunk: Some(pb::result_chunk::Chunk::Header(header)),
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
                        file: u32::try_from(i).unwrap_or(u32::MAX),
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
    (tokio_stream::wrappers::ReceiverStream::new(rx), sender)
}
