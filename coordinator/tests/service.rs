//! The gRPC service in process: tokens, protocol versions, fencing and path checks, called
//! directly with a tonic client (no worker binary).

use apparate::results::ResultsDir;
use apparate::sweep::SweepSpec;
use coordinator::{serve, Sweep, SweepOptions};
use proto::v1 as pb;
use proto::v1::coordinator_client::CoordinatorClient;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const SPEC: &str = "name = \"svc\"\n[inputs]\nkind = \"embedded\"\nscale = 0.01\n\
    [traces.video30]\nkind = \"fixed\"\nqps = 30.0\n[[grid]]\nname = \"cv\"\n\
    models = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"video30\"]\n\
    batching = [\"clockwork\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n";

struct Server {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
}

async fn start(name: &str, lease: Duration) -> Server {
    start_spec(name, lease, SPEC).await
}

async fn start_spec(name: &str, lease: Duration, spec: &str) -> Server {
    start_prepared(name, lease, spec, |_, _| {}).await
}

/// [`start_spec`], with `prepare` run on the plan and the results folder before the sweep
/// starts.
async fn start_prepared(
    name: &str,
    lease: Duration,
    spec: &str,
    prepare: impl FnOnce(&apparate::sweep::Plan, &std::path::Path),
) -> Server {
    let dir = std::env::temp_dir().join(format!("coord-svc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let plan = SweepSpec::from_toml(spec, "test", &dir)
        .expect("spec")
        .plan()
        .expect("plan");
    prepare(&plan, &dir);
    let writer = ResultsDir::new(&dir).lock().expect("lock");
    let opts = SweepOptions {
        lease,
        max_attempts: 3,
        max_failures_in_row: 3,
        token: "right".into(),
    };
    let sweep = Sweep::start(&plan, writer, &opts).expect("start");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let ticks = sweep.tick_loop(Duration::from_millis(5), std::future::pending());
        tokio::select! {
            r = serve(&sweep, listener, None, async { let _ = rx.await; }) => r.expect("serve"),
            () = ticks => {}
        }
    });
    Server {
        addr,
        stop: Some(tx),
        task,
        dir,
    }
}

impl Server {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

type Client = CoordinatorClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
    >,
>;

async fn client(addr: &str, token: Option<&str>) -> Client {
    let channel = Channel::from_shared(addr.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let header: Option<tonic::metadata::MetadataValue<_>> =
        token.map(|t| format!("Bearer {t}").parse().expect("header"));
    CoordinatorClient::with_interceptor(
        channel,
        Box::new(move |mut r: tonic::Request<()>| {
            if let Some(h) = &header {
                r.metadata_mut().insert(proto::AUTH_HEADER, h.clone());
            }
            Ok(r)
        }),
    )
}

fn register_req(version: u32) -> pb::RegisterRequest {
    pb::RegisterRequest {
        protocol_version: version,
        host: "test".into(),
        slots: 1,
        has_inputs: false,
        gpu: false,
        code_version: apparate::code_version(),
    }
}

async fn lease(c: &mut Client, worker_id: u64) -> pb::Lease {
    match c
        .pull_task(pb::PullTaskRequest { worker_id })
        .await
        .expect("pull")
        .into_inner()
        .reply
    {
        Some(pb::pull_task_reply::Reply::Lease(l)) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_right_token_are_unauthenticated() {
    let s = start("token", Duration::from_secs(10)).await;
    for token in [None, Some("wrong")] {
        let mut c = client(&s.addr, token).await;
        let e = c.register(register_req(proto::PROTOCOL_VERSION)).await;
        assert_eq!(e.expect_err("refused").code(), Code::Unauthenticated);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_heartbeat_reject_protocol_mismatch() {
    let s = start("protocol", Duration::from_secs(10)).await;
    let mut c = client(&s.addr, Some("right")).await;
    let e = c.register(register_req(proto::PROTOCOL_VERSION + 1)).await;
    assert_eq!(e.expect_err("refused").code(), Code::FailedPrecondition);
    let id = c
        .register(register_req(proto::PROTOCOL_VERSION))
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    let e = c
        .heartbeat(pb::HeartbeatRequest {
            protocol_version: 0,
            worker_id: id,
            attempts: vec![],
        })
        .await;
    assert_eq!(e.expect_err("refused").code(), Code::FailedPrecondition);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_of_an_expired_attempt_or_with_an_unsafe_name_is_rejected() {
    let s = start("fencing", Duration::from_millis(100)).await;
    let mut c = client(&s.addr, Some("right")).await;
    let id = c
        .register(register_req(proto::PROTOCOL_VERSION))
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    let first = lease(&mut c, id).await;
    // An unsafe file name is refused before anything is written.
    let header = |attempt: u64, name: &str| pb::ResultChunk {
        chunk: Some(pb::result_chunk::Chunk::Header(pb::ResultHeader {
            worker_id: id,
            attempt_id: attempt,
            task_key: first.task_key.clone(),
            files: vec![pb::ResultFile {
                name: name.into(),
                size: 0,
                sha256: apparate::sweep::digest::sha256_hex(b""),
            }],
            ..Default::default()
        })),
    };
    let r = c
        .upload_result(tokio_stream::iter(vec![header(
            first.attempt_id,
            "../escape",
        )]))
        .await
        .expect("reply")
        .into_inner();
    assert!(!r.accepted && r.reason.contains("escape"), "{r:?}");
    // No heartbeat: the lease expires and the task is leased again under a new attempt.
    let second = loop {
        match c
            .pull_task(pb::PullTaskRequest { worker_id: id })
            .await
            .expect("pull")
            .into_inner()
            .reply
        {
            Some(pb::pull_task_reply::Reply::Lease(l)) => break l,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(second.task_key, first.task_key);
    assert!(second.attempt_id > first.attempt_id);
    let r = c
        .upload_result(tokio_stream::iter(vec![header(
            first.attempt_id,
            "summary.json",
        )]))
        .await
        .expect("reply")
        .into_inner();
    assert!(!r.accepted && r.reason.contains("not current"), "{r:?}");
    // The embedded task has no input files to fetch.
    let e = c
        .fetch_input(pb::FetchInputRequest {
            worker_id: id,
            attempt_id: second.attempt_id,
            path: "../../etc/passwd".into(),
        })
        .await;
    assert_eq!(e.expect_err("refused").code(), Code::InvalidArgument);
    s.stop().await;
}

/// Issue #11: a worker holding a live lease uploads something that is not a result of its task.
/// Each is refused with the reason, nothing is committed, and the attempt fails (the task is
/// leased again at once, without waiting for the lease to expire); after `--max-attempts` (3)
/// such attempts the task fails with kind `invalid_result`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue11_an_upload_that_is_not_a_result_is_refused_and_fails_the_attempt() {
    // A long lease: a new attempt can only come from the refusal failing the old one.
    let s = start("issue11", Duration::from_secs(600)).await;
    let mut c = client(&s.addr, Some("right")).await;
    let id = c
        .register(register_req(proto::PROTOCOL_VERSION))
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    let file = |name: &str, data: &[u8]| pb::ResultFile {
        name: name.into(),
        size: data.len() as u64,
        sha256: apparate::sweep::digest::sha256_hex(data),
    };
    let upload = |lease: &pb::Lease, files: Vec<pb::ResultFile>, bodies: Vec<Vec<u8>>| {
        let mut chunks = vec![pb::ResultChunk {
            chunk: Some(pb::result_chunk::Chunk::Header(pb::ResultHeader {
                worker_id: id,
                attempt_id: lease.attempt_id,
                task_key: lease.task_key.clone(),
                files,
                num_requests: 1,
                summary_lines: vec!["forged".into()],
                ..Default::default()
            })),
        }];
        for (i, data) in bodies.into_iter().enumerate() {
            chunks.push(pb::ResultChunk {
                chunk: Some(pb::result_chunk::Chunk::Data(pb::FileData {
                    file: i as u32,
                    data,
                })),
            });
        }
        tokio_stream::iter(chunks)
    };
    let evil = b"not a result\n".to_vec();
    let all: Vec<&str> = apparate::task::RESULT_FILES.to_vec();
    // 1. The issue's case: one foreign file.
    let first = lease(&mut c, id).await;
    let r = c
        .upload_result(upload(
            &first,
            vec![file("evil.txt", &evil)],
            vec![evil.clone()],
        ))
        .await
        .expect("reply")
        .into_inner();
    assert!(!r.accepted, "{r:?}");
    assert!(
        r.reason
            .contains("files [evil.txt], expected exactly [baselines.json"),
        "{r:?}"
    );
    // 2. Every file a task produces, plus one more.
    let second = lease(&mut c, id).await;
    assert_eq!(second.task_key, first.task_key);
    assert!(second.attempt_id > first.attempt_id);
    let mut files: Vec<_> = all.iter().map(|n| file(n, &evil)).collect();
    files.push(file("evil.txt", &evil));
    let r = c
        .upload_result(upload(&second, files, vec![evil.clone(); all.len() + 1]))
        .await
        .expect("reply")
        .into_inner();
    assert!(!r.accepted && r.reason.contains("evil.txt"), "{r:?}");
    // 3. The right names, but one file's bytes are not those announced.
    let third = lease(&mut c, id).await;
    assert!(third.attempt_id > second.attempt_id);
    let files: Vec<_> = all.iter().map(|n| file(n, &evil)).collect();
    let mut bodies = vec![evil.clone(); all.len()];
    bodies[2] = b"NOT a result\n".to_vec();
    let r = c
        .upload_result(upload(&third, files, bodies))
        .await
        .expect("reply")
        .into_inner();
    assert!(!r.accepted && r.reason.contains("announced"), "{r:?}");
    // Nothing was committed; three failed attempts fail the task.
    let results = ResultsDir::new(&s.dir);
    let key = apparate::ids::TaskKey::parse(&first.task_key).expect("key");
    assert!(std::fs::symlink_metadata(results.task_dir(&key)).is_err());
    let staged: Vec<_> = std::fs::read_dir(results.staging_root())
        .expect("staging")
        .collect();
    assert!(staged.is_empty(), "staging cleared: {staged:?}");
    let failure = results.read_failure(&key).expect("failure record");
    assert_eq!(failure.kind, apparate::results::FailureKind::InvalidResult);
    assert!(failure.retryable);
    assert!(failure.message.contains("not a result of"), "{failure:?}");
    s.stop().await;
}

/// Issue #11: the ledger database is never opened through a symbolic link in `--out`.
#[test]
fn issue11_a_linked_ledger_database_is_refused_naming_it() {
    let dir = std::env::temp_dir().join(format!("coord-svc-ledger-link-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).expect("out");
    for name in ["ledger.sqlite", "ledger.sqlite-wal"] {
        let linked = out.join(name);
        std::os::unix::fs::symlink(&victim, &linked).expect("link");
        let plan = SweepSpec::from_toml(SPEC, "test", &out)
            .expect("spec")
            .plan()
            .expect("plan");
        let writer = ResultsDir::new(&out).lock().expect("lock");
        let opts = SweepOptions {
            lease: Duration::from_secs(10),
            max_attempts: 3,
            max_failures_in_row: 3,
            token: "t".into(),
        };
        let err = match Sweep::start(&plan, writer, &opts) {
            Ok(_) => panic!("a linked {name} must be refused"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&linked.display().to_string()) && err.contains("symbolic link"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious\n"
        );
        std::fs::remove_file(&linked).expect("unlink");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stand-in `ee-backend` that only answers `--version` (no build runs in these tests: the
/// calls are made by hand), and the spec's weights and data, in `dir`.
fn backend_fixture(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir.join("frames")).expect("dirs");
    std::fs::write(dir.join("weights.bin"), b"weights").expect("weights");
    std::fs::write(dir.join("frames/0001.png"), b"frame").expect("frame");
    let script = dir.join("ee-backend.sh");
    std::fs::write(&script, "#!/bin/sh\necho ee-backend-stand-in 1\n").expect("script");
    let ok = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod")
        .success();
    assert!(ok);
    // Every test of this binary that plans backend inputs sets the same value.
    std::env::set_var("APPARATE_EE_BACKEND", &script);
    format!(
        "name = \"svc\"\n[inputs]\nkind = \"backend\"\nmodel = \"resnet18\"\ndataset = \"auburn\"\n\
         weights = {:?}\ndata = {:?}\ndevice = \"cuda\"\n\
         [traces.video30]\nkind = \"fixed\"\nqps = 30.0\nn = 100\n[[grid]]\nname = \"cv\"\n\
         models = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"video30\"]\n\
         slo_multiplier = [2.0]\nbatch_size = [4]\n",
        dir.join("weights.bin").display().to_string(),
        dir.join("frames").display().to_string()
    )
}

async fn pull(c: &mut Client, worker_id: u64) -> Option<pb::pull_task_reply::Reply> {
    c.pull_task(pb::PullTaskRequest { worker_id })
        .await
        .expect("pull")
        .into_inner()
        .reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_inputs_are_built_only_by_a_gpu_worker_holding_the_build() {
    let fixture =
        std::env::temp_dir().join(format!("coord-svc-backend-src-{}", std::process::id()));
    let spec = backend_fixture(&fixture);
    let s = start_spec("backend", Duration::from_secs(10), &spec).await;
    let mut c = client(&s.addr, Some("right")).await;
    let cpu = c
        .register(register_req(proto::PROTOCOL_VERSION))
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    // A worker without a GPU gets no task and no build: it waits.
    match pull(&mut c, cpu).await {
        Some(pb::pull_task_reply::Reply::Wait(w)) => assert!(w.reason.is_empty()),
        other => panic!("expected a wait, got {other:?}"),
    }
    let gpu = c
        .register(pb::RegisterRequest {
            gpu: true,
            ..register_req(proto::PROTOCOL_VERSION)
        })
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    let build = match pull(&mut c, gpu).await {
        Some(pb::pull_task_reply::Reply::Build(b)) => b,
        other => panic!("expected the build, got {other:?}"),
    };
    assert_eq!(
        (build.model.as_str(), build.device.as_str()),
        ("resnet18", "cuda")
    );
    let paths: Vec<&str> = build.sources.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["source/data/0001.png", "source/weights/weights.bin"]
    );
    // One build at a time: another GPU pull waits.
    assert!(matches!(
        pull(&mut c, gpu).await,
        Some(pb::pull_task_reply::Reply::Wait(_))
    ));
    // Sources go only to the worker holding the build.
    let fetch = |worker_id: u64| pb::FetchInputRequest {
        worker_id,
        attempt_id: build.build_id,
        path: "source/weights/weights.bin".into(),
    };
    let e = c
        .fetch_input(fetch(cpu))
        .await
        .expect_err("not the builder");
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut stream = c.fetch_input(fetch(gpu)).await.expect("fetch").into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes.extend(chunk.data);
    }
    assert_eq!(bytes, b"weights");
    // An upload from another worker is refused; one missing the files the tasks read fails
    // the build, which is then offered again.
    let upload = |worker_id: u64, name: &str| {
        let header = pb::ResultChunk {
            chunk: Some(pb::result_chunk::Chunk::Header(pb::ResultHeader {
                worker_id,
                attempt_id: build.build_id,
                task_key: build.digest.clone(),
                files: vec![pb::ResultFile {
                    name: name.into(),
                    size: 2,
                    sha256: apparate::sweep::digest::sha256_hex(b"hi"),
                }],
                ..Default::default()
            })),
        };
        let data = pb::ResultChunk {
            chunk: Some(pb::result_chunk::Chunk::Data(pb::FileData {
                file: 0,
                data: b"hi".to_vec(),
            })),
        };
        tokio_stream::iter(vec![header, data])
    };
    let r = c
        .upload_inputs(upload(cpu, "README.md"))
        .await
        .expect("reply")
        .into_inner();
    assert!(
        !r.accepted && r.reason.contains("not the current build"),
        "{r:?}"
    );
    let r = c
        .upload_inputs(upload(gpu, "../escape"))
        .await
        .expect("reply")
        .into_inner();
    assert!(!r.accepted && r.reason.contains("escape"), "{r:?}");
    let again = match pull(&mut c, gpu).await {
        Some(pb::pull_task_reply::Reply::Build(b)) => b,
        other => panic!("expected the build again, got {other:?}"),
    };
    assert_ne!(again.build_id, build.build_id);
    let r = c
        .upload_inputs({
            let mut chunks = vec![];
            let header = pb::ResultChunk {
                chunk: Some(pb::result_chunk::Chunk::Header(pb::ResultHeader {
                    worker_id: gpu,
                    attempt_id: again.build_id,
                    task_key: again.digest.clone(),
                    files: vec![pb::ResultFile {
                        name: "bootstrap_pickles/x.pickle".into(),
                        size: 2,
                        sha256: apparate::sweep::digest::sha256_hex(b"hi"),
                    }],
                    ..Default::default()
                })),
            };
            chunks.push(header);
            chunks.push(pb::ResultChunk {
                chunk: Some(pb::result_chunk::Chunk::Data(pb::FileData {
                    file: 0,
                    data: b"hi".to_vec(),
                })),
            });
            tokio_stream::iter(chunks)
        })
        .await
        .expect("reply")
        .into_inner();
    assert!(
        !r.accepted
            && r.reason
                .contains("did not write bootstrap_pickles/bootstrap_auburn_resnet18.pickle"),
        "{r:?}"
    );
    assert!(
        !s.dir.join("inputs").join(&again.digest).exists(),
        "nothing published"
    );
    s.stop().await;
    let _ = std::fs::remove_dir_all(&fixture);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_task_on_cuda_is_leased_only_to_a_gpu_worker_with_the_models_sources() {
    let fixture = std::env::temp_dir().join(format!("coord-svc-live-src-{}", std::process::id()));
    // The backend spec (device cuda) with a live grid beside its simulated one.
    let spec = format!(
        "{}\n[[grid]]\nname = \"cv-live\"\nkind = \"live\"\nmodels = [\"resnet18\"]\n\
         datasets = [\"auburn\"]\ntraces = [\"video30\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n",
        backend_fixture(&fixture)
    );
    // The inputs already built (placeholder files: no task runs here), so tasks are leased.
    let s = start_prepared("live", Duration::from_secs(10), &spec, |plan, dir| {
        let bp = plan.backend().expect("backend inputs");
        std::fs::create_dir_all(dir).expect("results folder");
        let staging = apparate::backend_inputs::staging_dir(dir, "prebuilt").expect("staging");
        let needed = plan.backend_needed_files();
        for rel in &needed {
            let p = staging.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
            std::fs::write(p, b"built").expect("file");
        }
        apparate::backend_inputs::publish_build(
            dir,
            &staging,
            &bp.digest,
            &bp.exe.version,
            vec!["test".into()],
            &needed,
        )
        .expect("published");
    })
    .await;
    let mut c = client(&s.addr, Some("right")).await;
    let cpu = c
        .register(register_req(proto::PROTOCOL_VERSION))
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    // The worker without a GPU gets the simulated task, then waits: the live one needs a GPU.
    let sim = lease(&mut c, cpu).await;
    assert!(
        sim.task_key
            .starts_with("cv-resnet18-auburn-video30-slo2-bs4-"),
        "{sim:?}"
    );
    assert!(!sim.inputs.iter().any(|i| i.path.starts_with("source/")));
    match pull(&mut c, cpu).await {
        Some(pb::pull_task_reply::Reply::Wait(w)) => assert!(w.reason.is_empty(), "{w:?}"),
        other => panic!("expected a wait, got {other:?}"),
    }
    // `coordinator status` says why it waits (recorded when the worker registered).
    let store = coordinator::store::Store::open_read_only(&s.dir).expect("ledger");
    let note = store
        .note(coordinator::shared::LIVE_NOTE)
        .expect("read")
        .expect("a live note");
    assert_eq!(
        note,
        "1 live task(s) ask for device cuda and wait for a GPU worker; none is registered (start one with `worker --coordinator URL --gpu`)"
    );
    drop(store);
    // A simulated task's attempt may not fetch the model's sources.
    let fetch = |worker_id: u64, attempt_id: u64| pb::FetchInputRequest {
        worker_id,
        attempt_id,
        path: "source/weights/weights.bin".into(),
    };
    let e = c
        .fetch_input(fetch(cpu, sim.attempt_id))
        .await
        .expect_err("not a live attempt");
    assert_eq!(e.code(), Code::PermissionDenied);
    let gpu = c
        .register(pb::RegisterRequest {
            gpu: true,
            ..register_req(proto::PROTOCOL_VERSION)
        })
        .await
        .expect("register")
        .into_inner()
        .worker_id;
    let live = lease(&mut c, gpu).await;
    assert!(
        live.task_key
            .starts_with("cv-live-resnet18-auburn-video30-live-slo2-bs4-"),
        "{live:?}"
    );
    let spec: apparate::task::TaskSpec =
        serde_json::from_str(&live.task_spec_json).expect("task spec");
    assert!(spec.live.is_some());
    // Its inputs: the built folder's files and the model's sources.
    let paths: Vec<&str> = live.inputs.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains(&"source/weights/weights.bin"), "{paths:?}");
    assert!(paths.contains(&"source/data/0001.png"), "{paths:?}");
    assert!(
        paths.iter().any(|p| p.starts_with("bootstrap_pickles/")),
        "{paths:?}"
    );
    let mut stream = c
        .fetch_input(fetch(gpu, live.attempt_id))
        .await
        .expect("fetch")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes.extend(chunk.data);
    }
    assert_eq!(bytes, b"weights");
    // Its result must carry the live files: the simulated file set alone is refused.
    let body = b"x".to_vec();
    let mut chunks = vec![pb::ResultChunk {
        chunk: Some(pb::result_chunk::Chunk::Header(pb::ResultHeader {
            worker_id: gpu,
            attempt_id: live.attempt_id,
            task_key: live.task_key.clone(),
            files: apparate::task::RESULT_FILES
                .iter()
                .map(|n| pb::ResultFile {
                    name: n.to_string(),
                    size: 1,
                    sha256: apparate::sweep::digest::sha256_hex(&body),
                })
                .collect(),
            num_requests: 1,
            ..Default::default()
        })),
    }];
    for i in 0..apparate::task::RESULT_FILES.len() {
        chunks.push(pb::ResultChunk {
            chunk: Some(pb::result_chunk::Chunk::Data(pb::FileData {
                file: i as u32,
                data: body.clone(),
            })),
        });
    }
    let r = c
        .upload_result(tokio_stream::iter(chunks))
        .await
        .expect("reply")
        .into_inner();
    assert!(
        !r.accepted && r.reason.contains("serve.json") && r.reason.contains("a live task"),
        "{r:?}"
    );
    s.stop().await;
    let _ = std::fs::remove_dir_all(&fixture);
}
