//! Real OpenSSH servers on loopback ports act as hosts, each with its own work directory.
//!
//! The programs started here are real binaries (copies of the system's `sleep` and `sh`), to
//! test the machinery by itself: ssh, content-addressed copies, detached processes that
//! outlive the ssh session, clean stops. `full_loop.rs` runs the real coordinator and workers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cluster::deploy::{remote_binary, Action, DataTree};
use cluster::workers::{Started, State, Stopped};
use cluster::{load_hosts, run_with_cluster, ClusterRun, ClusterRunError, LoadOptions, OnUnusable};
use cluster::{Session, SshConfig};

use crate::util::{me, processes, program_copy, refused_port, session_id, wait_until, Lab};

fn ssh() -> SshConfig {
    SshConfig {
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(30),
        ..SshConfig::default()
    }
}

fn cluster_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cluster"))
}

fn ok<T: std::fmt::Debug>(results: &cluster::session::PerHost<T>) -> Vec<&T> {
    results
        .iter()
        .map(|(h, r)| match r {
            Ok(v) => v,
            Err(e) => panic!("host {}: {e}", h.name),
        })
        .collect()
}

#[test]
fn preflight_deploy_start_stop_on_two_hosts_leaves_no_process_behind() {
    let lab = Lab::new(2);
    let hosts = lab.hosts(&[]);
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0].user.as_deref(), Some(me().as_str()));
    let sleep = program_copy(lab.path(), "sleep");
    let data = lab.path().join("data");
    std::fs::create_dir_all(data.join("profile_pickles_bs")).expect("data");
    std::fs::write(data.join("README.txt"), "inputs\n").expect("data");
    std::fs::write(
        data.join("profile_pickles_bs/resnet18_1.pickle"),
        [0x80u8, 4, 0x2e],
    )
    .expect("data");
    let session = Session::new(hosts.clone(), ssh(), &sleep, Some(&data)).expect("session");
    let coordinator = TcpListener::bind("127.0.0.1:0").expect("coordinator stand-in");

    // Preflight: both usable, coordinator reachable from the "nodes".
    let reports =
        session.preflight(&session.requirements(Some(coordinator.local_addr().expect("addr"))));
    for r in &reports {
        assert!(r.usable(), "{}: {:?}\n{}", r.host, r.problems, lab.logs());
        assert_eq!(r.coordinator_reachable, Some(true));
        assert!(r.cores.unwrap_or(0) >= 1);
    }

    // Deploy twice: copied, then already present; the copies carry the right digest.
    let first = session.deploy();
    for d in ok(&first) {
        assert_eq!(d.binary, Action::Copied);
        assert_eq!(d.data, Some(Action::Copied));
    }
    // A binary damaged on one host is replaced there (its digest no longer matches).
    let damaged = PathBuf::from(&hosts[0].work_dir).join(remote_binary(&session.binary));
    std::fs::write(&damaged, b"not the binary").expect("damage");
    let again = session.deploy();
    let actions: Vec<Action> = ok(&again).iter().map(|d| d.binary).collect();
    assert_eq!(actions, [Action::Copied, Action::AlreadyPresent]);
    let again = session.deploy();
    for d in ok(&again) {
        assert_eq!(d.binary, Action::AlreadyPresent);
        assert_eq!(d.data, Some(Action::AlreadyPresent));
    }
    let tree = DataTree::scan(&data).expect("scan");
    for h in &hosts {
        let wd = PathBuf::from(&h.work_dir);
        let bin = wd.join(remote_binary(&session.binary));
        assert_eq!(
            cluster::binary::sha256_file(&bin).expect("remote binary"),
            session.binary.sha256
        );
        let remote_tree = DataTree::scan(&wd.join(tree.remote_dir())).expect("remote data");
        assert_eq!(remote_tree.files, tree.files);
    }

    // Start: detached, in its own session, pid recorded; token installed with mode 600.
    let token = b"secret-token\n";
    let started = session.start_program(Some(token), &["300".to_string()]);
    let pids: Vec<u32> = ok(&started)
        .into_iter()
        .map(|s| match s {
            Started::New { pid } => *pid,
            other => panic!("expected a new process, got {other:?}"),
        })
        .collect();
    let argv0 = remote_binary(&session.binary);
    for (h, pid) in hosts.iter().zip(&pids) {
        // The ssh session that started it is over; the process lives on, as a session leader.
        assert_eq!(session_id(*pid), Some(*pid), "host {}", h.name);
        let wd = PathBuf::from(&h.work_dir);
        let token_path = wd.join("run/token");
        assert_eq!(std::fs::read(&token_path).expect("token"), token);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let running = processes(&argv0, &wd);
        assert_eq!(running.len(), 1, "host {}: {running:?}", h.name);
        assert_eq!(running[0].0, *pid);
    }
    let status = session.status();
    assert_eq!(
        ok(&status),
        pids.iter()
            .map(|p| State::Running { pid: *p })
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    // Starting again leaves the running ones alone.
    for s in ok(&session.start_program(Some(token), &["300".to_string()])) {
        assert!(matches!(s, Started::AlreadyRunning { .. }), "{s:?}");
    }

    // The CLI sees the same (status, logs) through the same files.
    let cluster_file = lab.path().join("cluster.toml");
    let out = cluster_bin()
        .args(["status", "--hosts"])
        .arg(&cluster_file)
        .output()
        .expect("cluster status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, pid) in pids.iter().enumerate() {
        assert!(
            text.contains(&format!("node{i}  Running {{ pid: {pid} }}")),
            "{text}"
        );
    }
    let logs_dir = lab.path().join("fetched-logs");
    let out = cluster_bin()
        .args(["logs", "--hosts"])
        .arg(&cluster_file)
        .arg("--out")
        .arg(&logs_dir)
        .output()
        .expect("cluster logs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..2 {
        let log = std::fs::read_to_string(logs_dir.join(format!("node{i}.log"))).expect("log");
        assert!(log.contains("--- start"), "{log}");
        assert!(log.contains("300"), "{log}");
    }

    // Stop through the CLI: SIGTERM is enough for sleep.
    let out = cluster_bin()
        .args(["stop", "--grace", "10", "--hosts"])
        .arg(&cluster_file)
        .output()
        .expect("cluster stop");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("Terminated").count(), 2, "{text}");
    for h in &hosts {
        let left = processes(&argv0, Path::new(&h.work_dir));
        assert!(left.is_empty(), "host {}: left behind {left:?}", h.name);
    }
    for s in ok(&session.status()) {
        assert_eq!(*s, State::NotStarted);
    }
    // Stopping again is harmless.
    for s in ok(&session.stop(Duration::from_secs(1))) {
        assert_eq!(*s, Stopped::NotRunning);
    }
    drop(coordinator);
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_with_its_children() {
    let lab = Lab::new(1);
    let hosts = lab.hosts(&[]);
    let sh = program_copy(lab.path(), "sh");
    let session = Session::new(hosts.clone(), ssh(), &sh, None).expect("session");
    ok(&session.deploy());
    let marker = Path::new(&hosts[0].work_dir).join("child-started");
    let script = format!(
        "trap '' TERM; touch {}; while :; do sleep 1; done",
        marker.display()
    );
    let started = session.start_program(None, &["-c".to_string(), script]);
    ok(&started);
    wait_until(
        Duration::from_secs(20),
        "the remote script to run",
        || lab.logs(),
        || marker.exists().then_some(()),
    );
    let stopped = session.stop(Duration::from_millis(500));
    assert_eq!(ok(&stopped), [&Stopped::Killed]);
    let argv0 = remote_binary(&session.binary);
    let left = processes(&argv0, Path::new(&hosts[0].work_dir));
    assert!(left.is_empty(), "left behind: {left:?}");
    // Its `sleep` child was in the same process group: gone as well (it may take a moment
    // to be reaped by init).
    wait_until(
        Duration::from_secs(10),
        "the script's children to be gone",
        || format!("{:?}", processes("sleep", Path::new(&hosts[0].work_dir))),
        || {
            processes("sleep", Path::new(&hosts[0].work_dir))
                .is_empty()
                .then_some(())
        },
    );
}

#[test]
fn preflight_names_the_host_that_refuses_ssh_and_the_policy_decides() {
    let lab = Lab::new(1);
    let dead = refused_port();
    let cluster_file = lab.write_cluster_file(&[("dead", dead)]);
    let sleep = program_copy(lab.path(), "sleep");
    let coordinator = TcpListener::bind("127.0.0.1:0").expect("coordinator stand-in");
    let addr = coordinator.local_addr().expect("addr");

    // The CLI: a table naming the host, non-zero exit.
    let out = cluster_bin()
        .args([
            "preflight",
            "--connect-timeout",
            "5",
            "--min-disk-gb",
            "0.01",
            "--hosts",
        ])
        .arg(&cluster_file)
        .arg("--worker-bin")
        .arg(&sleep)
        .arg("--coordinator-addr")
        .arg(addr.to_string())
        .output()
        .expect("cluster preflight");
    let table = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{table}{stderr}");
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
            .to_string()
    };
    assert!(row("node0").ends_with("usable"), "{table}\n{}", lab.logs());
    let dead_row = row("dead");
    assert!(dead_row.contains("UNUSABLE: ssh failed"), "{table}");
    assert!(dead_row.contains("refused"), "{table}");
    assert!(stderr.contains("unusable: dead"), "{stderr}");

    // The whole loop, as `coordinator sweep --cluster` runs it.
    let hosts = load_hosts(&cluster_file, &LoadOptions::default()).expect("hosts");
    let session = Session::new(hosts, ssh(), &sleep, None).expect("session");
    let run = |on_unusable| ClusterRun {
        coordinator: addr,
        token: b"t".to_vec(),
        slots: Some(1),
        worker_extra: Vec::new(),
        on_unusable,
        stop_grace: Duration::from_secs(5),
    };
    // Abort: nothing starts, the error names the host.
    let mut called = false;
    let result: Result<(), ClusterRunError<std::io::Error>> =
        run_with_cluster(&session, &run(OnUnusable::Abort), |_| {
            called = true;
            Ok(())
        });
    let err = result.expect_err("abort");
    let chain = err.to_string();
    assert!(
        chain.contains("unusable hosts: dead (ssh failed"),
        "{chain}"
    );
    assert!(!called);
    let wd0 = lab.path().join("hosts/node0");
    assert!(!wd0.join("run/worker.pid").exists());
    // Skip: preflight leaves "dead" out and goes on with node0: deploy, then start of the
    // worker command line. (`sleep` stands in for the worker here: it refuses the worker's
    // flags and exits, so start either reports that, naming node0, or, if it was seen alive
    // first, the sweep runs on node0 alone.) Either way nothing is left.
    let argv0 = remote_binary(&session.binary);
    let result = run_with_cluster(&session, &run(OnUnusable::Skip), |hosts| {
        Ok::<_, std::io::Error>(hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>())
    });
    match result {
        Ok(used) => assert_eq!(used, ["node0"]),
        Err(ClusterRunError::Setup(e)) => {
            let text = e.to_string();
            assert!(text.starts_with("unusable hosts: node0 ("), "{text}");
            assert!(text.contains("exited at once"), "{text}");
        }
        Err(other) => panic!("{other:?}"),
    }
    assert!(processes(&argv0, &wd0).is_empty());
    let log = std::fs::read_to_string(wd0.join("run/worker.log")).expect("worker log");
    assert!(
        log.contains(&format!(
            "--coordinator http://{addr} --token-file run/token --slots 1"
        )),
        "{log}"
    );
    assert!(!wd0.join("run/worker.pid").exists());
}
