//! Backend inputs in a distributed sweep (issue #13): a `device = "cuda"` spec waits, saying
//! so, until a `--gpu` worker builds the inputs; the workers then run every task on that
//! build (fetched through the coordinator), with the results of `worker --local`.
//!
//! `APPARATE_EE_BACKEND` points at a small script standing in for `ee-backend` until it has
//! `gen-data` (as in `worker/tests/backend_grid.rs`): it answers `--version`, logs each
//! `gen-data` call and writes a real artifact folder with `worker gen-data`.

use crate::util::{bin, fresh_dir, result_files, TestCluster};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn stand_in_backend(dir: &Path) -> PathBuf {
    let script = dir.join("ee-backend.sh");
    let body = format!(
        r#"#!/bin/sh
set -e
if [ "$1" = "--version" ]; then echo "ee-backend-stand-in 1"; exit 0; fi
[ "$1" = "gen-data" ] || {{ echo "error: unknown command $1" >&2; exit 2; }}
shift
echo "$*" >> "{calls}"
model=; dataset=; out=; seed=0
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2;; --dataset) dataset=$2;; --out) out=$2;; --seed) seed=$2;;
  esac
  shift 2
done
"{worker}" gen-data --out "$out" --scale 0.01 --models "$model" --datasets "$dataset" --seed "$seed" >/dev/null 2>&1
"#,
        calls = dir.join("calls").display(),
        worker = bin("worker").display(),
    );
    std::fs::write(&script, body).expect("write script");
    let status = Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    assert!(status.success());
    script
}

fn calls(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("calls"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Result files without the inputs folder (its manifest records where it was built).
fn task_results(root: &Path) -> BTreeMap<String, Vec<u8>> {
    result_files(root)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("inputs/") && k != "sweep.json")
        .collect()
}

#[test]
fn a_cuda_backend_sweep_waits_for_a_gpu_worker_that_builds_the_inputs_for_all() {
    let dir = fresh_dir("backend-cuda");
    std::fs::write(dir.join("weights.bin"), b"weights v1").expect("weights");
    std::fs::create_dir(dir.join("frames")).expect("frames");
    std::fs::write(dir.join("frames/0001.png"), b"frame one").expect("frame");
    std::fs::write(dir.join("frames/0002.png"), b"frame two").expect("frame");
    let script = stand_in_backend(&dir);
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        "name = \"be\"\n[inputs]\nkind = \"backend\"\nmodel = \"resnet18\"\ndataset = \"auburn\"\n\
         weights = \"weights.bin\"\ndata = \"frames\"\ndevice = \"cuda\"\n\
         [traces.video30]\nkind = \"fixed\"\nqps = 30.0\nn = 500\n\
         [[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\n\
         traces = [\"video30\"]\nslo_multiplier = [2.0]\nbatch_size = [2, 4, 8]\n",
    )
    .expect("write spec");
    let env_var = ("APPARATE_EE_BACKEND", script.to_str().expect("utf-8 path"));
    let mut c = TestCluster::new(&dir, &spec);
    c.coordinator_env = vec![(env_var.0.to_string(), env_var.1.to_string())];
    c.start_coordinator(&[]);
    c.start_worker(&[], &[env_var]);
    c.await_log_line(Some(0), "registered as");
    c.await_log_line(
        None,
        "every task waits for a GPU worker to build them; none is registered",
    );
    let status = Command::new(bin("coordinator"))
        .args(["status", "--out"])
        .arg(&c.out)
        .output()
        .expect("status runs");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("inputs\tbackend inputs ") && status.contains("waits for a GPU worker"),
        "{status}"
    );
    assert_eq!(calls(&dir), 0, "a worker without --gpu builds nothing");

    c.start_worker(&["--gpu"], &[env_var]);
    c.await_sweep(true);
    assert_eq!(calls(&dir), 1, "built once");
    assert!(c.workers[1].log_text().contains("building backend inputs"));
    let fetched: usize = c
        .workers
        .iter()
        .map(|w| {
            w.log_text()
                .matches("fetched input profile_pickles_bs/")
                .count()
        })
        .sum();
    assert!(
        fetched > 0,
        "the tasks ran on the build fetched from the coordinator"
    );
    let status = Command::new(bin("coordinator"))
        .args(["status", "--out"])
        .arg(&c.out)
        .output()
        .expect("status runs");
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(status.contains(": built in "), "{status}");

    // The same spec with `worker --local` (it builds its own inputs): the same results.
    let local = dir.join("local");
    let o = Command::new(bin("worker"))
        .args(["--local", "--no-report", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&local)
        .env(env_var.0, env_var.1)
        .env("RUST_LOG", "warn")
        .output()
        .expect("worker --local runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(calls(&dir), 2);
    let (expected, actual) = (task_results(&local), task_results(&c.out));
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>()
    );
    assert_eq!(expected.len(), 3 * 7 + 1, "3 tasks of 7 files, one summary");
    for (k, v) in &expected {
        assert!(actual.get(k) == Some(v), "{k} differs");
    }
}
