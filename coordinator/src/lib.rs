#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod backend;
pub mod commit;
pub mod ids;
pub mod ledger;
pub mod service;
pub mod shared;
pub mod store;
pub mod upload;

use apparate::ids::TaskKey;
use apparate::results::{ResultsError, ResultsWriter, TaskStatus};
use apparate::sweep::Plan;
use apparate::task::{BackendDevice, Inputs};
use ids::TaskIdx;
use ledger::{Ledger, LedgerConfig};
use service::Service;
use shared::Shared;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{PlannedRow, Store, StoreError};
use tokio::net::TcpListener;

pub use tonic::transport::ServerTlsConfig;

/// Heartbeats a worker sends per lease length: the interval the coordinator tells a worker at
/// `Register` (`RegisterReply.heartbeat_interval_ms`) is the lease divided by this, at least
/// 1 ms.
///
/// A lease expires one lease length after its last renewal (found by the tick loop, which runs
/// every eighth of a lease). With four heartbeats per lease, two in a row can be lost (or come
/// late) and the third still renews the lease with a quarter of it to spare, for call latency
/// and the worker's timer (it sleeps one interval after each call returns, so the beats drift
/// a little later). Only after three lost in a row does the fourth come at the lease's end,
/// too late: a worker cut off for about one lease loses its tasks promptly, while a lost
/// packet or two never costs a running task.
pub const HEARTBEATS_PER_LEASE: u64 = 4;

/// Options of a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Lease duration (workers heartbeat [`HEARTBEATS_PER_LEASE`] times per lease).
    pub lease: Duration,
    /// Counted attempts (lost workers, retryable failures) before a task fails for good.
    pub max_attempts: u32,
    /// Failures in a row after which a worker gets no more tasks.
    pub max_failures_in_row: u32,
    /// The token every call must carry.
    pub token: String,
}

/// Why a sweep could not start.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The results directory.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The ledger database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backend inputs' sources cannot be read.
    #[error("backend inputs: {0}")]
    Backend(#[from] apparate::backend_inputs::BackendError),
    /// The plan gave something that is not a task (a bug).
    #[error("the plan: {message}")]
    Plan {
        /// What is wrong.
        message: String,
    },
}

/// `f(0..n)` in order, computed on `threads` scoped threads in contiguous chunks.
fn par_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.clamp(1, 64);
    if threads == 1 || n < 4096 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(threads);
    let f = &f;
    let parts: Vec<Vec<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| s.spawn(move || (start..(start + chunk).min(n)).map(f).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut all = Vec::with_capacity(n);
    for p in parts {
        all.extend(p);
    }
    all
}

/// A sweep being served: the plan's tasks in a ledger, recorded in `--out/ledger.sqlite`.
pub struct Sweep {
    shared: Arc<Shared>,
}

impl Sweep {
    /// Expands nothing itself: takes `plan` (from `SweepSpec::plan`, as `worker --local`),
    /// writes `sweep.json`, finds the tasks already complete in `writer`'s directory (never
    /// re-run), records every task in the ledger database and closes the attempts a previous
    /// coordinator left open.
    pub fn start(
        plan: &Plan,
        writer: ResultsWriter,
        opts: &SweepOptions,
    ) -> Result<Sweep, SweepError> {
        // Every task's key, label and completeness computed once, on every core, and only
        // those kept (issue #15: a million planned tasks held 1.7 GB; tasks are computed again
        // from the plan when leased).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let rows: Vec<PlannedRow> = par_map(plan.len(), threads, |i| {
            plan.task(i).map(|t| PlannedRow {
                key: t.key.to_string(),
                label: t.label(),
                complete: matches!(
                    writer.dir().status(&t, plan.code_version()),
                    TaskStatus::Complete(_)
                ),
            })
        })
        .into_iter()
        .flatten()
        .collect();
        let keys: Vec<TaskKey> = rows
            .iter()
            .filter_map(|r| TaskKey::parse(&r.key).ok())
            .collect();
        if keys.len() != plan.len() {
            return Err(SweepError::Plan {
                message: format!(
                    "{} of {} planned tasks have no valid key",
                    plan.len() - keys.len(),
                    plan.len()
                ),
            });
        }
        writer.write_plan_keys(plan, keys.iter().cloned())?;
        let mut store = Store::open(writer.dir().root())?;
        let (first_attempt, first_worker) = store.begin_run(&rows)?;
        let ledger = Ledger::new(
            LedgerConfig {
                lease: opts.lease,
                max_attempts: opts.max_attempts.max(1),
                max_failures_in_row: opts.max_failures_in_row.max(1),
            },
            keys.into_iter().zip(rows.iter().map(|r| r.complete)),
            first_attempt,
            first_worker,
        );
        drop(rows);
        let mut ledger = ledger;
        // Live runs that ask for a GPU are leased only to `--gpu` workers.
        let live_gpu = plan.has_live()
            && matches!(
                plan.inputs(),
                Inputs::Backend {
                    device: BackendDevice::Cuda,
                    ..
                }
            );
        let mut live_gpu_tasks = 0;
        if live_gpu {
            for i in (0..plan.len()).filter(|&i| plan.is_live(i)) {
                ledger.require_gpu(TaskIdx::new(i));
                live_gpu_tasks += 1;
            }
        }
        let backend = backend::BackendBuild::from_plan(plan, writer.dir().root())?;
        let core = shared::new_core(
            ledger,
            store,
            plan.clone(),
            plan.code_version().to_string(),
            backend,
            live_gpu_tasks,
        );
        let (shared, jobs) = Shared::new(core, writer, opts.token.clone(), opts.lease);
        shared.record_backend_state(&mut shared.lock());
        shared.record_live_state(&mut shared.lock());
        commit::spawn(&shared, jobs);
        Ok(Sweep { shared })
    }

    /// The state shared by the service and the loops.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Expires overdue leases every `period` until `stop` resolves. The clock is read once per
    /// tick and passed in.
    pub async fn tick_loop(&self, period: Duration, stop: impl Future<Output = ()>) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = interval.tick() => self.shared.tick(Instant::now()),
            }
        }
    }
}

/// Serves the coordinator's gRPC service on a bound `listener` (tests bind `127.0.0.1:0`)
/// until `shutdown` resolves. Every call must carry the sweep's token.
pub async fn serve(
    sweep: &Sweep,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let shared = sweep.shared();
    let auth = Arc::clone(&shared);
    let svc = proto::v1::coordinator_server::CoordinatorServer::with_interceptor(
        Service::new(shared),
        move |req: tonic::Request<()>| auth.check_token(&req).map(|()| req),
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    // Accepted connections get TCP_NODELAY (tonic sets it only on listeners it binds itself):
    // without it, a reply can wait ~40 ms on Nagle + delayed ACK.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |conn| {
            if let Ok(stream) = &conn {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {e}");
                }
            }
            conn
        },
    );
    builder
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
