//! The `TestCluster` harness: spawns the built `coordinator` and `worker` binaries, one log file
//! per process, `await_*` helpers that poll with a deadline, fail early when a child exited and
//! attach log tails; `kill` (SIGKILL) and restart; every child reaped in `Drop`.
//!
//! Binaries: `CARGO_BIN_EXE_*` exists only for binaries of the test's own package, so the
//! `coordinator` and `worker` binaries are looked up in the target directory next to this test
//! executable (`target/<profile>/`). `cargo test --workspace` builds both (each package has
//! integration tests); when one is missing, `cargo build --bins -p coordinator -p worker` is
//! run once.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any await may take (debug builds on a loaded 2-core machine).
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Path of a workspace binary (`coordinator` or `worker`).
pub fn bin(name: &str) -> PathBuf {
    e2e_tests::workspace_bin(name)
}

/// A fresh, empty folder for one test.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("apparate-e2e")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// A small spec on the embedded workload: `models` × `datasets` (CV), scale 0.03.
pub fn embedded_spec(dir: &Path, models: &[&str], datasets: &[&str]) -> PathBuf {
    let list = |xs: &[&str]| {
        xs.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "name = \"e2e\"\nseeds = [0]\n[inputs]\nkind = \"embedded\"\nscale = 0.03\n\
         [traces.video30]\nkind = \"fixed\"\nqps = 30.0\n\
         [[grid]]\nname = \"cv\"\nmodels = [{}]\ndatasets = [{}]\ntraces = [\"video30\"]\n\
         batching = [\"clockwork\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n",
        list(models),
        list(datasets)
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).expect("write spec");
    path
}

/// One child process and its log file.
pub struct Proc {
    /// For messages.
    pub name: String,
    child: Child,
    /// stdout and stderr.
    pub log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr into `log` (and `RUST_LOG=info`).
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
        let file = File::create(&log).expect("create log");
        let err = file.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .env("RUST_LOG", "info");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
            status: None,
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub fn tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends `signal` (e.g. `TERM`) with the `kill` tool.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One coordinator and its workers on loopback.
pub struct TestCluster {
    /// The test's folder.
    pub dir: PathBuf,
    /// The coordinator's `--out`.
    pub out: PathBuf,
    /// The spec.
    pub spec: PathBuf,
    /// The token file workers get by default.
    pub token_file: PathBuf,
    /// The coordinator (the latest one started).
    pub coordinator: Option<Proc>,
    coordinator_args: Vec<String>,
    coordinator_runs: usize,
    /// The coordinator's address (`127.0.0.1:PORT`).
    pub addr: String,
    /// Workers, in start order.
    pub workers: Vec<Proc>,
    /// URL scheme workers use (`http`, or `https` with TLS).
    pub scheme: &'static str,
    /// Environment variables the coordinator is started with.
    pub coordinator_env: Vec<(String, String)>,
}

impl TestCluster {
    /// A cluster over `spec` in `dir` (nothing started yet).
    pub fn new(dir: &Path, spec: &Path) -> TestCluster {
        let token_file = dir.join("token");
        std::fs::write(&token_file, "s3cret-e2e\n").expect("write token");
        TestCluster {
            dir: dir.to_path_buf(),
            out: dir.join("out"),
            spec: spec.to_path_buf(),
            token_file,
            coordinator: None,
            coordinator_args: Vec::new(),
            coordinator_runs: 0,
            addr: String::new(),
            workers: Vec::new(),
            scheme: "http",
            coordinator_env: Vec::new(),
        }
    }

    /// Starts `coordinator sweep` on port 0 and waits for its address. The lease is 10 s unless
    /// `extra` says otherwise, long enough that no lease expires under load unless a test
    /// wants it to (those pass a short `--lease-ms`).
    pub fn start_coordinator(&mut self, extra: &[&str]) {
        let mut args: Vec<String> = vec![
            "sweep".into(),
            "--spec".into(),
            self.spec.display().to_string(),
            "--out".into(),
            self.out.display().to_string(),
            "--token-file".into(),
            self.token_file.display().to_string(),
            "--log-every".into(),
            "1".into(),
            // The report (analysis binary) is tested in `analysis/tests`; here it would only
            // slow the scenarios down.
            "--no-report".into(),
        ];
        if !extra.contains(&"--lease-ms") {
            args.extend(["--lease-ms".to_string(), "10000".to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        self.coordinator_args = args;
        self.spawn_coordinator("127.0.0.1:0");
    }

    fn spawn_coordinator(&mut self, listen: &str) {
        self.coordinator_runs += 1;
        let log = self
            .dir
            .join(format!("coordinator-{}.log", self.coordinator_runs));
        let mut cmd = Command::new(bin("coordinator"));
        cmd.args(&self.coordinator_args).args(["--listen", listen]);
        for (k, v) in &self.coordinator_env {
            cmd.env(k, v);
        }
        let p = Proc::spawn("coordinator", &mut cmd, log);
        self.coordinator = Some(p);
        let line = self.await_log_line(None, "listening on ");
        self.addr = line
            .split("listening on ")
            .nth(1)
            .map(|s| s.trim().to_string())
            .expect("address");
    }

    /// Kills the coordinator (SIGKILL) and starts the same command again on the same port, so
    /// the running workers reconnect.
    pub fn restart_coordinator(&mut self) {
        if let Some(mut c) = self.coordinator.take() {
            c.kill();
        }
        let addr = self.addr.clone();
        self.spawn_coordinator(&addr);
    }

    /// Starts a worker (`--slots 1` unless `extra` says otherwise) with these environment
    /// variables; returns its index.
    pub fn start_worker(&mut self, extra: &[&str], env: &[(&str, &str)]) -> usize {
        let i = self.workers.len();
        let mut cmd = Command::new(bin("worker"));
        cmd.arg("--coordinator")
            .arg(format!("{}://{}", self.scheme, self.addr))
            .arg("--scratch")
            .arg(self.dir.join(format!("scratch-{i}")))
            .arg("--cache")
            .arg(self.dir.join("cache"));
        if !extra.contains(&"--token-file") {
            cmd.arg("--token-file").arg(&self.token_file);
        }
        if !extra.contains(&"--slots") {
            cmd.args(["--slots", "1"]);
        }
        cmd.args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = self.dir.join(format!("worker-{i}.log"));
        self.workers
            .push(Proc::spawn(&format!("worker {i}"), &mut cmd, log));
        i
    }

    fn all_tails(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.coordinator {
            s.push_str(&c.tail());
            s.push('\n');
        }
        for w in &self.workers {
            s.push_str(&w.tail());
            s.push('\n');
        }
        s
    }

    fn proc_mut(&mut self, which: Option<usize>) -> &mut Proc {
        match which {
            None => self.coordinator.as_mut().expect("a coordinator"),
            Some(i) => &mut self.workers[i],
        }
    }

    /// Waits until the log of the coordinator (`None`) or worker `Some(i)` holds `needle` `n`
    /// times; fails early if that process exited first. Returns the last matching line.
    pub fn await_log_count(&mut self, which: Option<usize>, needle: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let p = self.proc_mut(which);
            let text = p.log_text();
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
            if lines.len() >= n {
                return lines[n - 1].to_string();
            }
            if let Some(status) = p.exited() {
                // One more read: the line may have been written just before exiting.
                let text = p.log_text();
                if text.lines().filter(|l| l.contains(needle)).count() >= n {
                    continue;
                }
                let name = p.name.clone();
                panic!(
                    "{name} exited ({status}) before logging {needle:?} ×{n}\n{}",
                    self.all_tails()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "timed out waiting for {needle:?} ×{n}\n{}",
                    self.all_tails()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`Self::await_log_count`] with `n = 1`.
    pub fn await_log_line(&mut self, which: Option<usize>, needle: &str) -> String {
        self.await_log_count(which, needle, 1)
    }

    /// Waits for the coordinator (`None`) or a worker to exit; returns its status.
    pub fn await_exit(&mut self, which: Option<usize>) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.proc_mut(which).exited() {
                return s;
            }
            if start.elapsed() > DEADLINE {
                panic!("timed out waiting for an exit\n{}", self.all_tails());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the coordinator to finish the sweep and checks its exit code.
    pub fn await_sweep(&mut self, success: bool) {
        let status = self.await_exit(None);
        assert_eq!(
            status.success(),
            success,
            "coordinator exit {status}\n{}",
            self.all_tails()
        );
    }

    /// SIGKILL the coordinator (no restart).
    pub fn kill_coordinator(&mut self) {
        if let Some(c) = &mut self.coordinator {
            c.kill();
        }
    }

    /// SIGKILL worker `i`.
    pub fn kill_worker(&mut self, i: usize) {
        self.workers[i].kill();
    }

    /// The coordinator's log so far.
    pub fn coordinator_log(&self) -> String {
        self.coordinator
            .as_ref()
            .map(Proc::log_text)
            .unwrap_or_default()
    }

    /// `coordinator status --out` as rows: key → (state, attempts, succeeded).
    pub fn status(&self) -> BTreeMap<String, (String, u32, u32)> {
        let o = Command::new(bin("coordinator"))
            .args(["status", "--out"])
            .arg(&self.out)
            .output()
            .expect("coordinator status runs");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut rows = BTreeMap::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 6 || line.starts_with("worker ") {
                continue;
            }
            let num = |s: &str, p: &str| {
                s.strip_prefix(p)
                    .and_then(|n| n.parse().ok())
                    .expect("count")
            };
            rows.insert(
                f[1].to_string(),
                (
                    f[3].to_string(),
                    num(f[4], "attempts="),
                    num(f[5], "succeeded="),
                ),
            );
        }
        rows
    }

    /// Number of workers the ledger recorded.
    pub fn registered_workers(&self) -> usize {
        let o = Command::new(bin("coordinator"))
            .args(["status", "--out"])
            .arg(&self.out)
            .output()
            .expect("coordinator status runs");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("worker "))
            .count()
    }
}

impl Drop for TestCluster {
    /// Reaps every child (SIGKILL); removes the test's folder unless the test failed, so its
    /// logs stay for reading.
    fn drop(&mut self) {
        if let Some(c) = &mut self.coordinator {
            c.kill();
        }
        for w in &mut self.workers {
            w.kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `worker --local` over `spec` into `out` (the no-fault baseline).
pub fn run_local(spec: &Path, out: &Path) {
    let o = Command::new(bin("worker"))
        .args(["--local", "--no-report", "--jobs", "2", "--spec"])
        .arg(spec)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .output()
        .expect("worker --local runs");
    assert!(
        o.status.success(),
        "worker --local failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every result file under `root` (relative path → contents), manifests without their
/// timings; leaving out the coordinator's own files (ledger, address, lock, staging).
pub fn result_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .expect("under root")
            .to_string_lossy()
            .into_owned();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with("ledger.sqlite") || name == "coordinator.addr"
        {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let bytes = std::fs::read(&path).expect("read result file");
            let bytes = if name == "manifest.json" {
                let mut v: Json = serde_json::from_slice(&bytes).expect("manifest JSON");
                if let Some(m) = v.as_object_mut() {
                    m.remove("timings");
                }
                serde_json::to_vec_pretty(&v).expect("JSON")
            } else {
                bytes
            };
            out.insert(rel, bytes);
        }
    }
}

/// Asserts both result folders hold the same files with the same bytes (manifest timings
/// aside), naming the first difference.
pub fn assert_same_results(expected: &Path, actual: &Path) {
    let a = result_files(expected);
    let b = result_files(actual);
    let ka: Vec<&String> = a.keys().collect();
    let kb: Vec<&String> = b.keys().collect();
    assert_eq!(ka, kb, "different files");
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} differs");
    }
    assert!(
        a.keys().any(|k| k.starts_with("tasks/")),
        "no task results at all"
    );
}

/// Task keys listed in `out/sweep.json`.
pub fn planned_keys(out: &Path) -> Vec<String> {
    let v: Json =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).expect("sweep.json"))
            .expect("sweep.json parses");
    let mut keys = Vec::new();
    collect_keys(&v, &mut keys);
    keys
}

fn collect_keys(v: &Json, keys: &mut Vec<String>) {
    if let Some(arr) = v.get("tasks").and_then(Json::as_array) {
        for t in arr {
            if let Some(s) = t.as_str() {
                keys.push(s.to_string());
            } else if let Some(s) = t.get("key").and_then(Json::as_str) {
                keys.push(s.to_string());
            }
        }
    }
}

/// `127.0.0.1:PORT` where nothing listens (a port just bound and released).
pub fn closed_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = l.local_addr().expect("local address");
    drop(l);
    addr.to_string()
}
