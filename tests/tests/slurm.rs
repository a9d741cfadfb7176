//! Workers as Slurm jobs (issue #15), against a real Slurm: each test starts a one-node
//! cluster on loopback (munged, slurmctld, slurmd of Debian's `slurm-wlm`) with its own
//! config, ports and key in a temporary folder, points the commands at it with `SLURM_CONF`,
//! and tears it down (jobs cancelled, daemons stopped) on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::{
    assert_same_results, bin, embedded_spec, fresh_dir, run_local, Proc, TestCluster, DEADLINE,
};

fn find(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{program} not found: these tests need Debian's slurm-wlm and munge; \
         scripts/test.sh installs them (apt-get install --no-install-recommends slurm-wlm munge)"
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("address").port()
}

fn user() -> String {
    let o = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Polls `f` until it is true, failing with `what` and `context()` after `timeout`.
fn wait_for(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A one-node Slurm cluster on loopback; everything in `dir`.
pub struct SlurmLab {
    dir: PathBuf,
    conf: PathBuf,
    munged: Option<Proc>,
    slurmctld: Option<Proc>,
    slurmd: Option<Proc>,
}

impl SlurmLab {
    /// Starts munged, slurmctld and slurmd, and waits until the node is idle.
    pub fn start(name: &str) -> SlurmLab {
        let dir = fresh_dir(name);
        for d in ["munge", "state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(d)).expect("create folder");
        }
        let key = dir.join("munge/munge.key");
        let bytes: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 13) as u8).collect();
        std::fs::write(&key, bytes).expect("munge key");
        set_mode(&key, 0o600);
        let socket = dir.join("munge/munge.socket");
        let mut lab = SlurmLab {
            conf: dir.join("slurm.conf"),
            dir: dir.clone(),
            munged: None,
            slurmctld: None,
            slurmd: None,
        };
        let mut munged = Command::new(find("munged"));
        munged
            .arg("--foreground")
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!(
                "--log-file={}",
                dir.join("log/munged.log").display()
            ))
            .arg(format!(
                "--pid-file={}",
                dir.join("munge/munged.pid").display()
            ))
            .arg(format!(
                "--seed-file={}",
                dir.join("munge/munged.seed").display()
            ));
        lab.munged = Some(Proc::spawn(
            "munged",
            &mut munged,
            dir.join("log/munged.out"),
        ));
        wait_for(
            DEADLINE,
            "munged's socket",
            || lab.logs(),
            || socket.exists(),
        );

        let user = user();
        let conf = format!(
            "ClusterName=apparate-test\n\
             SlurmctldHost=localhost\n\
             SlurmctldPort={ctld}\n\
             SlurmdPort={slurmd}\n\
             SlurmUser={user}\n\
             SlurmdUser={user}\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             StateSaveLocation={dir}/state\n\
             SlurmdSpoolDir={dir}/spool\n\
             SlurmctldPidFile={dir}/slurmctld.pid\n\
             SlurmdPidFile={dir}/slurmd.pid\n\
             SlurmctldLogFile={dir}/log/slurmctld.log\n\
             SlurmdLogFile={dir}/log/slurmd.log\n\
             MailProg=/bin/true\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             MpiDefault=none\n\
             ReturnToService=2\n\
             MinJobAge=600\n\
             KillWait=2\n\
             InactiveLimit=0\n\
             NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n\
             PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n",
            ctld = free_port(),
            slurmd = free_port(),
            socket = socket.display(),
            dir = dir.display(),
        );
        std::fs::write(&lab.conf, conf).expect("slurm.conf");
        let mut ctld = Command::new(find("slurmctld"));
        ctld.args(["-D", "-i", "-f"])
            .arg(&lab.conf)
            .env("SLURM_CONF", &lab.conf);
        lab.slurmctld = Some(Proc::spawn(
            "slurmctld",
            &mut ctld,
            dir.join("log/slurmctld.out"),
        ));
        let mut d = Command::new(find("slurmd"));
        d.args(["-D", "-N", "localhost", "-f"])
            .arg(&lab.conf)
            .env("SLURM_CONF", &lab.conf);
        lab.slurmd = Some(Proc::spawn("slurmd", &mut d, dir.join("log/slurmd.out")));
        wait_for(
            DEADLINE,
            "the Slurm node to be idle",
            || lab.logs(),
            || {
                lab.cmd("sinfo")
                    .args(["--noheader", "--format=%T"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
                    .unwrap_or(false)
            },
        );
        lab
    }

    /// A Slurm command pointed at this cluster.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Runs a Slurm command; its standard output (it must succeed).
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let o = self
            .cmd(program)
            .args(args)
            .output()
            .expect("slurm command runs");
        assert!(
            o.status.success(),
            "{program} {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `SLURM_CONF` for the coordinator.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("SLURM_CONF".into(), self.conf.display().to_string())]
    }

    /// Elements with a live state (`squeue`: pending, running, completing).
    pub fn live_jobs(&self) -> Vec<String> {
        self.run(
            "squeue",
            &[
                "--noheader",
                "--array",
                "--states=PENDING,RUNNING,COMPLETING,CONFIGURING",
                "--format=%i",
            ],
        )
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// The daemons' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for name in [
            "slurmctld.log",
            "slurmd.log",
            "slurmctld.out",
            "slurmd.out",
            "munged.out",
        ] {
            let text = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(15);
            s.push_str(&format!("--- {name} ---\n{}\n", lines[from..].join("\n")));
        }
        s
    }
}

impl Drop for SlurmLab {
    /// Cancels every job (so no job step outlives the cluster), then stops the daemons.
    fn drop(&mut self) {
        if self.slurmctld.is_some() {
            let _ = self
                .cmd("scancel")
                .arg(format!("--user={}", user()))
                .output();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                let o = self
                    .cmd("squeue")
                    .args(["--noheader", "--format=%i"])
                    .output();
                match o {
                    Ok(o) if o.status.success() && o.stdout.is_empty() => break,
                    Ok(o) if !o.status.success() => break,
                    Err(_) => break,
                    _ => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        for p in [&self.slurmd, &self.slurmctld, &self.munged]
            .into_iter()
            .flatten()
        {
            p.signal("TERM");
        }
        let start = Instant::now();
        for p in [&mut self.slurmd, &mut self.slurmctld, &mut self.munged]
            .into_iter()
            .flatten()
        {
            while start.elapsed() < Duration::from_secs(10) && p.running() {
                std::thread::sleep(Duration::from_millis(50));
            }
            p.kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The coordinator's flags for a sweep through `--slurm` with `n` workers.
fn slurm_flags(n: u32) -> Vec<String> {
    [
        "--slurm",
        "--slurm-workers",
        &n.to_string(),
        "--slurm-poll",
        "0.5",
        "--worker-bin",
        &bin("worker").display().to_string(),
        // Leftovers (none expected) end on their own.
        "--worker-arg=--give-up-after",
        "--worker-arg=60s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn jobs_file(out: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(out.join(".slurm/jobs.tsv"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn status_text(out: &Path) -> String {
    let o = Command::new(bin("coordinator"))
        .args(["status", "--out"])
        .arg(out)
        .output()
        .expect("status runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_sweep_through_slurm_equals_worker_local_byte_for_byte() {
    let slurm = SlurmLab::start("slurm-equal-daemons");
    let dir = fresh_dir("slurm-equal");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn", "hampton", "oxford"]);
    let baseline = dir.join("local");
    run_local(&spec, &baseline);

    let mut c = TestCluster::new(&dir, &spec);
    c.coordinator_env = slurm.env();
    let flags = slurm_flags(2);
    c.start_coordinator(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    c.await_sweep(true);
    assert_same_results(&baseline, &c.out);
    let log = c.coordinator_log();
    assert!(log.contains("submitted the workers' job array"), "{log}");
    assert_eq!(c.registered_workers(), 2, "{log}");
    // `coordinator status` lists the two elements and their Slurm states.
    let status = status_text(&c.out);
    let elements: Vec<&str> = status
        .lines()
        .filter(|l| l.starts_with("slurm job "))
        .collect();
    assert_eq!(elements.len(), 2, "{status}");
    // The token reached the jobs through a file only the user can read.
    let token = c.out.join(".slurm/token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "token file mode {mode:o}");
    let script = std::fs::read_to_string(c.out.join(".slurm/workers.sbatch")).expect("script");
    assert!(!script.contains("s3cret"), "{script}");
    // Nothing is left running.
    wait_for(
        DEADLINE,
        "the array to end",
        || slurm.logs(),
        || slurm.live_jobs().is_empty(),
    );
}

#[test]
fn scancel_of_an_element_mid_sweep_loses_nothing_and_the_sweep_completes() {
    let slurm = SlurmLab::start("slurm-scancel-daemons");
    let dir = fresh_dir("slurm-scancel");
    let spec = embedded_spec(
        &dir,
        &["resnet18", "vgg11"],
        &["auburn", "hampton", "oxford"],
    );
    let baseline = dir.join("local");
    run_local(&spec, &baseline);

    let mut c = TestCluster::new(&dir, &spec);
    c.coordinator_env = slurm.env();
    // One worker: the sweep completes only if the cancelled element is replaced.
    let mut flags = slurm_flags(1);
    flags.extend(["--lease-ms".to_string(), "2000".to_string()]);
    c.start_coordinator(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    c.await_log_line(None, "leased ");
    let running = slurm.live_jobs();
    assert_eq!(running.len(), 1, "{running:?}");
    let element = running[0].clone();
    slurm.run("scancel", &[&element]);
    c.await_sweep(true);
    assert_same_results(&baseline, &c.out);
    let log = c.coordinator_log();
    assert!(log.contains("submitting 1 more"), "{log}");
    let jobs = jobs_file(&c.out);
    assert!(jobs.len() >= 2, "{jobs:?}");
    assert!(
        jobs.iter()
            .any(|(e, s)| *e == element && s.starts_with("CANCELLED")),
        "{element} not cancelled in {jobs:?}"
    );
    wait_for(
        DEADLINE,
        "the arrays to end",
        || slurm.logs(),
        || slurm.live_jobs().is_empty(),
    );
}

#[test]
fn ctrl_c_mid_sweep_cancels_the_array() {
    let slurm = SlurmLab::start("slurm-interrupt-daemons");
    let dir = fresh_dir("slurm-interrupt");
    let spec = embedded_spec(
        &dir,
        &["resnet18", "vgg11"],
        &["auburn", "hampton", "oxford"],
    );
    let mut c = TestCluster::new(&dir, &spec);
    c.coordinator_env = slurm.env();
    let flags = slurm_flags(2);
    c.start_coordinator(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    c.await_log_line(None, "leased ");
    assert!(!slurm.live_jobs().is_empty());
    if let Some(p) = &c.coordinator {
        p.signal("INT");
    }
    c.await_sweep(false);
    let log = c.coordinator_log();
    assert!(
        log.contains("interrupted before the sweep finished"),
        "{log}"
    );
    assert!(log.contains("cancelled the workers' job arrays"), "{log}");
    wait_for(
        DEADLINE,
        "the array to end",
        || slurm.logs(),
        || slurm.live_jobs().is_empty(),
    );
}

#[test]
fn workers_that_die_at_once_are_resubmitted_a_bounded_number_of_times_then_the_sweep_fails() {
    let slurm = SlurmLab::start("slurm-dying-daemons");
    let dir = fresh_dir("slurm-dying");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let mut c = TestCluster::new(&dir, &spec);
    c.coordinator_env = slurm.env();
    // `false` as the worker: every element fails at once.
    let mut flags = slurm_flags(1);
    let at = flags
        .iter()
        .position(|f| f == "--worker-bin")
        .expect("flag")
        + 1;
    flags[at] = "/bin/false".into();
    c.start_coordinator(&flags.iter().map(String::as_str).collect::<Vec<_>>());
    c.await_sweep(false);
    let log = c.coordinator_log();
    // 1 element first, then replacements up to 4N+4 = 8 in all.
    assert!(
        log.contains("8 elements submitted and only 0 of 1 live: the workers keep ending"),
        "{log}"
    );
    assert!(log.contains("the workers' launcher gave up"), "{log}");
    assert_eq!(
        log.matches("submitted the workers' job array").count(),
        8,
        "{log}"
    );
    // No task ran.
    let status = c.status();
    assert!(
        status.values().all(|(state, _, _)| state == "pending"),
        "{status:?}"
    );
    wait_for(
        DEADLINE,
        "no job left",
        || slurm.logs(),
        || slurm.live_jobs().is_empty(),
    );
}

fn run_bin(name: &str, slurm: &SlurmLab, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin(name));
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, v) in slurm.env() {
        cmd.env(k, v);
    }
    cmd.output().expect("runs")
}

#[test]
fn a_partition_that_does_not_exist_is_refused_before_any_task_runs_and_preflight_checks_slurm() {
    let slurm = SlurmLab::start("slurm-refusals-daemons");
    let dir = fresh_dir("slurm-refusals");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn"]);
    let token = dir.join("token");
    std::fs::write(&token, "t0ken\n").expect("token");
    let out = dir.join("out");
    let o = run_bin(
        "coordinator",
        &slurm,
        &[
            "sweep",
            "--spec",
            &spec.display().to_string(),
            "--listen",
            "127.0.0.1:0",
            "--out",
            &out.display().to_string(),
            "--token-file",
            &token.display().to_string(),
            "--no-report",
            "--slurm",
            "--slurm-partition",
            "nosuch",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(
        stderr.contains("--slurm-partition nosuch: no such partition (sinfo lists: debug)"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
    assert!(!out.join("tasks").exists(), "a task ran");
    assert!(slurm
        .run("squeue", &["--noheader", "--states=all"])
        .is_empty());

    // preflight --slurm: sinfo, the partition, a test job that reaches the coordinator.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let dir_s = dir.display().to_string();
    let o = run_bin(
        "cluster",
        &slurm,
        &[
            "preflight",
            "--slurm",
            "--coordinator-addr",
            &addr,
            "--slurm-dir",
            &dir_s,
        ],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&o.stderr),
        slurm.logs()
    );
    assert!(stdout.contains("partition  debug: up"), "{stdout}");
    assert!(stdout.contains(&format!("reached {addr}")), "{stdout}");
    // A coordinator nobody listens on: the test job says so.
    drop(listener);
    let o = run_bin(
        "cluster",
        &slurm,
        &[
            "preflight",
            "--slurm",
            "--coordinator-addr",
            &addr,
            "--slurm-dir",
            &dir_s,
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains(&format!("the test job did not reach {addr}")),
        "{stderr}"
    );
    let o = run_bin(
        "cluster",
        &slurm,
        &["preflight", "--slurm", "--slurm-partition", "nosuch"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such partition"));

    // slurm-script prints what sweep --slurm submits.
    let o = run_bin(
        "cluster",
        &slurm,
        &[
            "slurm-script",
            "--coordinator",
            "10.0.0.1:50051",
            "--token-file",
            "/shared/token",
            "--worker-bin",
            "/shared/worker",
            "--log-dir",
            "/shared/logs",
            "--slurm-partition",
            "debug",
        ],
    );
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(script.contains("#SBATCH --partition=debug\n"), "{script}");
    assert!(
        script.contains("exec /shared/worker --coordinator http://10.0.0.1:50051 --token-file /shared/token --slots \"$slots\""),
        "{script}"
    );
}
