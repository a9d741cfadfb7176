//! The whole loop through `coordinator sweep --cluster`: real sshd "hosts", the real
//! `coordinator` and `worker` binaries, a small sweep on the embedded workload.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cluster::binary::sha256_file;

use crate::util::{processes, refused_port, wait_until, Lab};

use e2e_tests::workspace_bin as bin;

/// Two CV tasks on the embedded workload at a small scale (seconds each in a debug build).
fn small_spec(dir: &Path) -> PathBuf {
    let text = "name = \"cluster-e2e\"\nseeds = [0]\n[inputs]\nkind = \"embedded\"\nscale = 0.03\n\
         [traces.video30]\nkind = \"fixed\"\nqps = 30.0\n\
         [[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\", \"oxford\"]\n\
         traces = [\"video30\"]\nbatching = [\"clockwork\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n";
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).expect("spec");
    path
}

/// Runs `coordinator sweep --cluster` to its end (deadline: 5 minutes), output captured.
fn sweep_with_cluster(lab: &Lab, cluster_file: &Path, out: &Path, extra: &[&str]) -> Output {
    let token = lab.path().join("token.txt");
    std::fs::write(&token, "cluster-e2e-token\n").expect("token");
    let stdout = lab.path().join("coordinator.stdout");
    let stderr = lab.path().join("coordinator.stderr");
    let mut child = Command::new(bin("coordinator"))
        .arg("sweep")
        .arg("--spec")
        .arg(small_spec(lab.path()))
        .args(["--listen", "127.0.0.1:0", "--out"])
        .arg(out)
        .arg("--token-file")
        .arg(&token)
        .arg("--cluster")
        .arg(cluster_file)
        .arg("--worker-bin")
        .arg(bin("worker"))
        .args(["--worker-slots", "1", "--stop-grace", "20"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout"))
        .stderr(std::fs::File::create(&stderr).expect("stderr"))
        .spawn()
        .expect("coordinator starts");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let status = wait_until(
        Duration::from_secs(300),
        "coordinator sweep --cluster to finish",
        || format!("stderr:\n{}\n{}", read(&stderr), lab.logs()),
        || child.try_wait().expect("try_wait"),
    );
    Output {
        status,
        stdout: read(&stdout).into_bytes(),
        stderr: read(&stderr).into_bytes(),
    }
}

fn complete_tasks(out: &Path) -> usize {
    std::fs::read_dir(out.join("tasks"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("manifest.json").is_file())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn coordinator_sweep_with_cluster_runs_two_workers_to_completion_and_stops_them() {
    let lab = Lab::new(2);
    let cluster_file = lab.write_cluster_file(&[]);
    let out = lab.path().join("results");
    let run = sweep_with_cluster(&lab, &cluster_file, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}\n{}", lab.logs());
    assert_eq!(complete_tasks(&out), 2, "{stderr}");
    // The whole loop ends with the report: built by the `analysis` binary beside the
    // coordinator when there is one, else the sweep says how to build it.
    let analysis = bin("coordinator").with_file_name("analysis");
    if analysis.is_file() {
        assert!(out.join("report/report.md").is_file(), "{stderr}");
    } else {
        assert!(
            stderr.contains("cargo build --release -p analysis"),
            "{stderr}"
        );
    }
    let argv0 = format!(
        "bin/worker-{}",
        sha256_file(&bin("worker")).expect("digest")
    );
    for node in ["node0", "node1"] {
        let wd = lab.path().join("hosts").join(node);
        // Both workers registered with the coordinator (they dialled it from the "node").
        let log = std::fs::read_to_string(wd.join("run/worker.log")).expect("worker log");
        assert!(log.contains("registered as worker"), "{node}:\n{log}");
        // And none is left running.
        let left = processes(&argv0, &wd);
        assert!(left.is_empty(), "{node}: left behind {left:?}");
        assert!(!wd.join("run/worker.pid").exists(), "{node}");
    }
}

#[test]
fn coordinator_sweep_with_cluster_skips_or_aborts_on_a_host_that_refuses_ssh() {
    let lab = Lab::new(1);
    let cluster_file = lab.write_cluster_file(&[("dead", refused_port())]);
    let argv0 = format!(
        "bin/worker-{}",
        sha256_file(&bin("worker")).expect("digest")
    );
    let wd0 = lab.path().join("hosts/node0");

    // Abort (the default): nothing runs, the host is named.
    let out = lab.path().join("aborted");
    let run = sweep_with_cluster(&lab, &cluster_file, &out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(stderr.contains("dead (ssh failed"), "{stderr}");
    assert_eq!(complete_tasks(&out), 0);
    assert!(processes(&argv0, &wd0).is_empty());

    // Skip: the sweep completes on node0 alone.
    let out = lab.path().join("skipped");
    let run = sweep_with_cluster(&lab, &cluster_file, &out, &["--on-unusable", "skip"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}\n{}", lab.logs());
    assert_eq!(complete_tasks(&out), 2, "{stderr}");
    let log = std::fs::read_to_string(wd0.join("run/worker.log")).expect("worker log");
    assert!(log.contains("registered as worker"), "{log}");
    assert!(processes(&argv0, &wd0).is_empty());
}
