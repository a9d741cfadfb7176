//! Coordinator throughput: many in-process workers, tiny tasks.
//!
//! `cargo bench -p coordinator --bench throughput [-- TASKS WORKERS]` serves a plan of TASKS
//! tasks (the paper's CV grid over many seeds; default 2,016) on loopback with the real gRPC
//! service, ledger, SQLite store and results directory, and WORKERS (default 32) in-process
//! gRPC clients that lease a task, upload a result of the six files a task produces (tiny ones,
//! `summary.json` and `log.txt` consistent with the header's outcome) and pull again (before issue #11 it was one file; figures before it are not comparable). Nothing
//! is simulated: the figure is the coordinator's cost per task (lease + result accepted:
//! received, digest checked, staged, manifest written, renamed into `tasks/`, ledger updated).
//!
//! A third number, RESULTS, stops the run after that many results were accepted (the
//! throughput of a sweep whose ledger holds many more tasks than are run), and
//! `BENCH_SPEC=FILE` serves that spec instead (issue #15: `BENCH_SPEC=specs/million.toml`
//! `cargo bench --workspace --bench throughput -- 0 128 20000` measures 128 workers against a
//! ledger of a million tasks; TASKS is then ignored). The start-up figure covers the plan's
//! expansion, the completeness check of every task, the ledger database and the in-memory
//! ledger.
//!
//! `BENCH_KEEP=1` leaves the run's folder (printed) in place. Use it for back-to-back runs on a
//! journal-less ext4 (as on this machine): there, freshly deleted inodes are skipped when new
//! ones are allocated for the next 1-6 minutes (`recently_deleted` in ext4's `ialloc.c`), so
//! deleting one run's thousands of files makes the next run's file creation several times
//! slower. Delete the kept folders afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

use apparate::results::ResultsDir;
use apparate::sweep::SweepSpec;
use coordinator::{serve, Sweep, SweepOptions};
use proto::v1 as pb;
use proto::v1::coordinator_client::CoordinatorClient;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";

fn spec_text(seeds: usize) -> String {
    let seeds: Vec<String> = (0..seeds).map(|s| s.to_string()).collect();
    format!(
        "name = \"bench\"\nseeds = [{}]\n[inputs]\nkind = \"embedded\"\nscale = 0.01\n\
         [traces.video30]\nkind = \"fixed\"\nqps = 30.0\n[[grid]]\nname = \"cv\"\n\
         models = [\"resnet18\", \"resnet50\", \"resnet101\", \"vgg11\", \"vgg13\", \"vgg16\"]\n\
         datasets = [\"auburn\", \"hampton\", \"oxford\", \"calgary\", \"coral\", \"ohio\", \"bellevue1\", \"bellevue2\"]\n\
         traces = [\"video30\"]\nbatching = [\"clockwork\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n",
        seeds.join(", ")
    )
}

async fn fake_worker(addr: String, counter: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let channel = tonic::transport::Endpoint::from_shared(addr)
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let token: tonic::metadata::MetadataValue<_> =
        format!("Bearer {TOKEN}").parse().expect("header");
    let mut client =
        CoordinatorClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert(proto::AUTH_HEADER, token.clone());
            Ok(r)
        });
    let reg = client
        .register(pb::RegisterRequest {
            protocol_version: proto::PROTOCOL_VERSION,
            host: "bench".into(),
            slots: 1,
            has_inputs: false,
            gpu: false,
            code_version: apparate::code_version(),
        })
        .await
        .expect("register")
        .into_inner();
    // Six tiny files; `summary.json` and `log.txt` agree with the outcome the header states,
    // as the coordinator checks (issue #11).
    let bodies: Vec<Vec<u8>> = apparate::task::RESULT_FILES
        .iter()
        .map(|name| match *name {
            "summary.json" => b"{\"num_requests\": 1}\n".to_vec(),
            "log.txt" => b"args: bench\nbench\n".to_vec(),
            _ => vec![b'x'; 64],
        })
        .collect();
    let files: Vec<pb::ResultFile> = apparate::task::RESULT_FILES
        .iter()
        .zip(&bodies)
        .map(|(name, data)| pb::ResultFile {
            name: (*name).into(),
            size: data.len() as u64,
            sha256: apparate::sweep::digest::hex(Sha256::digest(data).as_slice()),
        })
        .collect();
    loop {
        // The server stops as soon as the sweep is finished: an error here is the end.
        let Ok(reply) = client
            .pull_task(pb::PullTaskRequest {
                worker_id: reg.worker_id,
            })
            .await
        else {
            return;
        };
        let reply = reply.into_inner().reply;
        match reply {
            Some(pb::pull_task_reply::Reply::Lease(lease)) => {
                let header = pb::ResultChunk {
                    chunk: Some(pb::result_chunk::Chunk::Header(pb::ResultHeader {
                        worker_id: reg.worker_id,
                        attempt_id: lease.attempt_id,
                        task_key: lease.task_key,
                        // A result holds exactly the files a task produces (issue #11).
                        files: files.clone(),
                        num_requests: 1,
                        summary_lines: vec!["bench".into()],
                        started_unix_ms: 0,
                        run_ms: 0,
                        total_ms: 0,
                    })),
                };
                let mut chunks = vec![header];
                for (file, data) in bodies.iter().enumerate() {
                    chunks.push(pb::ResultChunk {
                        chunk: Some(pb::result_chunk::Chunk::Data(pb::FileData {
                            file: file as u32,
                            data: data.clone(),
                        })),
                    });
                }
                // The server stops when the run has enough results: an error is the end.
                let Ok(r) = client.upload_result(tokio_stream::iter(chunks)).await else {
                    return;
                };
                let r = r.into_inner();
                assert!(r.accepted, "{}", r.reason);
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Some(pb::pull_task_reply::Reply::Wait(_)) => {
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            // The bench's spec has no backend inputs: no build is ever offered.
            Some(pb::pull_task_reply::Reply::Done(_))
            | Some(pb::pull_task_reply::Reply::Build(_))
            | None => return,
        }
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tasks = args.first().copied().unwrap_or(2016);
    let workers = args.get(1).copied().unwrap_or(32);
    let stop_after = args.get(2).copied().unwrap_or(usize::MAX);
    let seeds = tasks.div_ceil(48).max(1);
    let root = std::env::temp_dir().join(format!("apparate-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");
    let t_plan = Instant::now();
    let spec = match std::env::var_os("BENCH_SPEC") {
        Some(file) => SweepSpec::load(std::path::Path::new(&file)).expect("BENCH_SPEC"),
        None => SweepSpec::from_toml(&spec_text(seeds), "bench", &root).expect("spec"),
    };
    let plan = spec.plan().expect("plan");
    let n = plan.len();
    let planned = t_plan.elapsed();
    let writer = ResultsDir::new(root.join("out")).lock().expect("lock");
    let t_start = Instant::now();
    let sweep = Sweep::start(
        &plan,
        writer,
        &SweepOptions {
            lease: Duration::from_secs(30),
            max_attempts: 3,
            max_failures_in_row: 5,
            token: TOKEN.into(),
        },
    )
    .expect("start");
    let startup = t_start.elapsed();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let mut finished = sweep.shared().finished();
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let server = serve(&sweep, listener, None, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        });
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let run = async {
            let t0 = Instant::now();
            let handles: Vec<_> = (0..workers)
                .map(|_| tokio::spawn(fake_worker(addr.clone(), counter.clone())))
                .collect();
            let enough = async {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                while counter.load(std::sync::atomic::Ordering::Relaxed) < stop_after {
                    tick.tick().await;
                }
            };
            tokio::select! {
                _ = finished.wait_for(|f| *f) => {}
                _ = enough => {}
            }
            let elapsed = t0.elapsed();
            let _ = stop_tx.send(true);
            for h in handles {
                let _ = h.await;
            }
            elapsed
        };
        let (served, elapsed) = tokio::join!(server, run);
        served.expect("server");
        let done = counter.load(std::sync::atomic::Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        println!(
            "{n} tasks, {workers} in-process workers: plan {:.2} s, startup (completeness, \
             ledger) {:.2} s; {done} leases granted and {done} results accepted in \
             {secs:.2} s = {:.0} tasks/s ({:.2} ms per task)",
            planned.as_secs_f64(),
            startup.as_secs_f64(),
            done as f64 / secs,
            1e3 * secs / done.max(1) as f64
        );
    });
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
}
