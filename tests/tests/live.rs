//! Live tasks in a distributed sweep (issue #14 item 5): a `device = "cuda"` spec with a
//! simulated and a live grid. The live task is leased only to the `--gpu` worker (the other one
//! runs the simulated tasks), which fetches the built inputs and the model's sources, runs
//! `ee-backend serve` alone with the task's paths pointing at its fetched copies, and uploads
//! the result files with `serve.json` and `timing.jsonl`.
//!
//! `APPARATE_EE_BACKEND` points at a small script standing in for `ee-backend` (as in
//! `backend.rs`): `gen-data` writes a real artifact folder with `worker gen-data`; `serve`
//! checks that the task's weights and data are there (the weights byte for byte the spec's),
//! records the paths and writes the files of a live run (placeholder contents, a real
//! `summary.json` and `log.txt`, plain: the sweep stores plain files).

use crate::util::{bin, fresh_dir, TestCluster};
use std::path::{Path, PathBuf};
use std::process::Command;

fn stand_in_backend(dir: &Path) -> PathBuf {
    let script = dir.join("ee-backend.sh");
    let body = format!(
        r#"#!/bin/sh
set -e
if [ "$1" = "--version" ]; then echo "ee-backend-stand-in 1"; exit 0; fi
cmd=$1
shift
if [ "$cmd" = "gen-data" ]; then
  model=; dataset=; out=; seed=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --model) model=$2;; --dataset) dataset=$2;; --out) out=$2;; --seed) seed=$2;;
    esac
    shift 2
  done
  "{worker}" gen-data --out "$out" --scale 0.01 --models "$model" --datasets "$dataset" --seed "$seed" >/dev/null 2>&1
  exit 0
fi
[ "$cmd" = "serve" ] || {{ echo "error: unknown command $cmd" >&2; exit 2; }}
task=; inputs=; out=; store=
while [ $# -gt 0 ]; do
  case "$1" in
    --task) task=$2;; --inputs) inputs=$2;; --out) out=$2;; --store) store=$2;;
  esac
  shift 2
done
scratch=$(dirname "$(dirname "$(dirname "$(dirname "$out")")")")
ls -d "$scratch"/run-*/tasks/.tmp/* > "{dir}/staged-during-$(basename "$out")"
weights=$(grep -o '"weights":"[^"]*"' "$task" | cut -d'"' -f4)
data=$(grep -o '"data":"[^"]*"' "$task" | cut -d'"' -f4)
echo "$weights" > "{dir}/served-weights"
echo "$data" > "{dir}/served-data"
cmp -s "$weights" "{dir}/weights.bin" || {{ echo "error: weights $weights are not the spec's" >&2; exit 6; }}
[ -f "$data/0001.png" ] && [ -f "$data/0002.png" ] || {{ echo "error: data $data is not the spec's frames" >&2; exit 6; }}
[ -f "$inputs/bootstrap_pickles/bootstrap_auburn_resnet18.pickle" ] || {{ echo "error: $inputs is not the built folder" >&2; exit 4; }}
[ "$store" = "plain" ] || {{ echo "error: the stand-in writes plain files only, not $store" >&2; exit 5; }}
mkdir -p "$out"
echo '{{"num_requests": 3}}' > "$out/summary.json"
printf 'args: a live run\nserved 3 requests\n' > "$out/log.txt"
for f in baselines.json batches.jsonl latencies.pickle requests.parquet; do echo "stand-in" > "$out/$f"; done
echo '{{"clock": "fast", "executor": "model", "device": "cuda", "requests": 3, "served": 3, "dropped": 0, "batches": 1, "interrupted": false}}' > "$out/serve.json"
echo '{{"batch": 0, "bs": 3, "start_ms": 0.0, "predicted_ms": 1.0, "measured_ms": 1.2, "controller_us": 5.0, "slow": false}}' > "$out/timing.jsonl"
"#,
        worker = bin("worker").display(),
        dir = dir.display(),
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

fn status(out: &Path) -> String {
    let o = Command::new(bin("coordinator"))
        .args(["status", "--out"])
        .arg(out)
        .output()
        .expect("status runs");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_cuda_live_task_runs_on_the_gpu_worker_alone_with_the_fetched_model() {
    let dir = fresh_dir("live-cuda");
    std::fs::write(dir.join("weights.bin"), b"weights v1").expect("weights");
    std::fs::create_dir(dir.join("frames")).expect("frames");
    std::fs::write(dir.join("frames/0001.png"), b"frame one").expect("frame");
    std::fs::write(dir.join("frames/0002.png"), b"frame two").expect("frame");
    let script = stand_in_backend(&dir);
    let spec = dir.join("spec.toml");
    let grid = |name: &str, extra: &str| {
        format!(
            "[[grid]]\nname = \"{name}\"\n{extra}models = [\"resnet18\"]\ndatasets = [\"auburn\"]\n\
             traces = [\"video30\"]\nbatch_size = [2, 4]\n"
        )
    };
    std::fs::write(
        &spec,
        format!(
            "name = \"live\"\n[inputs]\nkind = \"backend\"\nmodel = \"resnet18\"\ndataset = \"auburn\"\n\
             weights = \"weights.bin\"\ndata = \"frames\"\ndevice = \"cuda\"\n\
             [traces.video30]\nkind = \"fixed\"\nqps = 30.0\nn = 500\n{}{}",
            // More simulated tasks than the CPU worker takes at once, first: the GPU worker's
            // slots run them too, and would go on beside a live task, were it not alone.
            grid("cv", "slo_multiplier = [2.0, 3.0, 4.0, 5.0]\n"),
            grid("live", "kind = \"live\"\nslo_multiplier = [2.0]\n")
        ),
    )
    .expect("write spec");
    let env_var = ("APPARATE_EE_BACKEND", script.to_str().expect("utf-8 path"));
    let mut c = TestCluster::new(&dir, &spec);
    c.coordinator_env = vec![(env_var.0.to_string(), env_var.1.to_string())];
    c.start_coordinator(&["--store", "plain"]);
    let s = status(&c.out);
    assert!(
        s.contains("live\t2 live task(s) ask for device cuda and wait for a GPU worker; none is registered"),
        "{s}"
    );
    c.start_worker(&[], &[env_var]);
    c.await_log_line(Some(0), "registered as");
    c.start_worker(&["--gpu", "--slots", "2"], &[env_var]);
    c.await_sweep(true);

    // Both live tasks ran on the GPU worker, alone; the CPU worker ran none.
    let (cpu, gpu) = (c.workers[0].log_text(), c.workers[1].log_text());
    assert_eq!(
        gpu.matches("is a live run: it runs alone").count(),
        2,
        "{gpu}"
    );
    assert!(!cpu.contains("is a live run"), "{cpu}");
    // Nothing else was staged on the GPU worker while a live task ran (its own staging folder
    // and task file only), though it has two slots.
    let mut calls = 0;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let entry = entry.expect("entry");
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(own) = file.strip_prefix("staged-during-") else {
            continue;
        };
        calls += 1;
        let staged = std::fs::read_to_string(entry.path()).expect("staged");
        assert_eq!(staged.lines().count(), 2, "{file}: {staged}");
        for line in staged.lines() {
            let name = Path::new(line).file_name().expect("name").to_string_lossy();
            assert!(name.starts_with(own), "{file}: {staged}");
        }
    }
    assert_eq!(calls, 2);
    // With the model's sources fetched into its scratch folder (not the spec's own files).
    let weights = std::fs::read_to_string(dir.join("served-weights")).expect("served");
    let data = std::fs::read_to_string(dir.join("served-data")).expect("served");
    let scratch = dir.join("scratch-1").display().to_string();
    assert!(
        weights.trim().starts_with(&scratch)
            && weights.trim().ends_with("source/weights/weights.bin"),
        "{weights}"
    );
    assert!(
        data.trim().starts_with(&scratch) && data.trim().ends_with("source/data"),
        "{data}"
    );
    // Every task complete; the live folders hold the live files.
    let tasks: Vec<PathBuf> = std::fs::read_dir(c.out.join("tasks"))
        .expect("tasks")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != ".tmp"))
        .collect();
    assert_eq!(tasks.len(), 10, "{tasks:?}");
    for t in &tasks {
        let live = t
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("live-"));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.join("manifest.json")).expect("manifest"))
                .expect("json");
        assert_eq!(
            manifest["spec"]["live"].is_object(),
            live,
            "{}",
            t.display()
        );
        let listed: Vec<&str> = manifest["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["name"].as_str().expect("name"))
            .collect();
        for f in ["serve.json", "timing.jsonl"] {
            assert_eq!(t.join(f).is_file(), live, "{f} in {}", t.display());
            assert_eq!(listed.contains(&f), live, "{listed:?}");
        }
    }
    let s = status(&c.out);
    assert!(s.contains("10 tasks: 10 done"), "{s}");
}
