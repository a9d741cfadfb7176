//! Live tasks in a `worker --local` sweep (issue #14 item 5): a spec with a simulated and a live
//! grid over the same backend model, data and trace. The live task is run by exec'ing
//! `ee-backend serve` into its staging folder, alone; its folder holds the result files and
//! `serve.json`, `timing.jsonl`; a failing, interrupted or incomplete serve commits nothing.
//!
//! `APPARATE_EE_BACKEND` points at a small script standing in for `ee-backend` (as in
//! `backend_grid.rs`): `gen-data` writes a real artifact folder with `worker gen-data`; `serve`
//! records its arguments, its task file and what else was staged while it ran, checks that
//! `--inputs` is the built folder and writes the files a live run writes (placeholder contents,
//! a real `summary.json` and `log.txt`). Files beside it change what it does: `serve-fail`
//! (exit 3 with an error line), `serve-interrupt` (`"interrupted": true`, exit 130; with
//! `serve-exit-0` exit 0 anyway), `serve-no-timing` (no `timing.jsonl`). The end-to-end test
//! through the real `ee-backend serve` is `backend/tests/live_grid.rs`.

use crate::util::fresh_temp_dir;
use apparate::results::{parse_manifest, verify_task_dir, Digests, MANIFEST_FILE};
use apparate::task::{LIVE_FILES, RESULT_FILES};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_worker")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Setup {
    dir: PathBuf,
    script: PathBuf,
}

const SPEC: &str = r#"name = "live"
[inputs]
kind = "backend"
model = "resnet18"
dataset = "auburn"
weights = "weights.bin"
data = "frames"
device = "cpu"
seed = 0

[traces.video30]
kind = "fixed"
qps = 30.0
n = 500
"#;

const SIM_GRID: &str = r#"
[[grid]]
name = "sim"
models = ["resnet18"]
datasets = ["auburn"]
traces = ["video30"]
slo_multiplier = [2.0, 3.0, 4.0, 5.0]
batch_size = [4]
"#;

const LIVE_GRID: &str = r#"
[[grid]]
name = "live"
kind = "live"
models = ["resnet18"]
datasets = ["auburn"]
traces = ["video30"]
slo_multiplier = [2.0]
batch_size = [4]
"#;

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = fresh_temp_dir(tag);
        std::fs::write(dir.join("weights.bin"), b"weights v1").unwrap();
        std::fs::create_dir(dir.join("frames")).unwrap();
        std::fs::write(dir.join("frames/0001.png"), b"frame one").unwrap();
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
echo "$*" >> "{dir}/serve-calls"
task=; inputs=; out=; store=
while [ $# -gt 0 ]; do
  case "$1" in
    --task) task=$2;; --inputs) inputs=$2;; --out) out=$2;; --store) store=$2;;
  esac
  shift 2
done
cp "$task" "{dir}/last-task.json"
ls -A "$(dirname "$out")" > "{dir}/staged-during-serve"
[ -f "$inputs/inputs-manifest.json" ] || {{ echo "error: $inputs is not a built inputs folder" >&2; exit 4; }}
[ "$store" = "plain" ] || {{ echo "error: the stand-in writes plain files only, not $store" >&2; exit 5; }}
if [ -e "{dir}/serve-fail" ]; then echo "loading the model" >&2; echo "error: forward failed at ramp 2" >&2; exit 3; fi
mkdir -p "$out"
interrupted=false
[ -e "{dir}/serve-interrupt" ] && interrupted=true
echo '{{"num_requests": 3}}' > "$out/summary.json"
printf 'args: a live run\nserved 3 requests\n' > "$out/log.txt"
for f in baselines.json batches.jsonl latencies.pickle requests.parquet; do echo "stand-in" > "$out/$f"; done
echo "{{\"clock\": \"fast\", \"executor\": \"model\", \"device\": \"cpu\", \"requests\": 3, \"served\": 3, \"dropped\": 0, \"batches\": 1, \"interrupted\": $interrupted}}" > "$out/serve.json"
[ -e "{dir}/serve-no-timing" ] || echo '{{"batch": 0, "bs": 3, "start_ms": 0.0, "predicted_ms": 1.0, "measured_ms": 1.2, "controller_us": 5.0, "slow": false}}' > "$out/timing.jsonl"
if [ "$interrupted" = true ] && [ ! -e "{dir}/serve-exit-0" ]; then echo "error: interrupted after 3 requests" >&2; exit 130; fi
exit 0
"#,
            worker = worker_bin(),
            dir = dir.display(),
        );
        std::fs::write(&script, body).unwrap();
        let status = Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        // The live grid first: its task starts while the other thread runs simulated ones.
        std::fs::write(
            dir.join("spec.toml"),
            format!("{SPEC}{LIVE_GRID}{SIM_GRID}"),
        )
        .unwrap();
        std::fs::write(dir.join("sim-only.toml"), format!("{SPEC}{SIM_GRID}")).unwrap();
        Setup { dir, script }
    }

    fn worker(&self, args: &[&str]) -> Output {
        Command::new(worker_bin())
            .args(args)
            .env("APPARATE_EE_BACKEND", &self.script)
            .current_dir(&self.dir)
            .output()
            .expect("worker runs")
    }

    fn local(&self) -> Output {
        self.worker(&[
            "--local",
            "--no-report",
            "--store",
            "plain",
            "--jobs",
            "2",
            "--spec",
            "spec.toml",
            "--out",
            "res",
        ])
    }

    fn serve_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("serve-calls"))
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }

    fn flag(&self, name: &str, on: bool) {
        let p = self.dir.join(name);
        if on {
            std::fs::write(p, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.join("res")
    }

    /// The task keys `worker plan` lists, in order.
    fn planned_keys(&self, spec: &str) -> Vec<String> {
        let o = self.worker(&["plan", "--spec", spec, "--out", "res"]);
        assert_ok(&o);
        text(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').nth(1).map(str::to_string))
            .collect()
    }
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "worker failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn task_dir(out: &Path, key: &str) -> PathBuf {
    out.join("tasks").join(key)
}

#[test]
fn a_live_grid_expands_to_live_tasks_and_leaves_the_simulated_keys_unchanged() {
    let s = Setup::new("live-plan");
    let sim = s.planned_keys("sim-only.toml");
    let both = s.planned_keys("spec.toml");
    assert_eq!(sim.len(), 4);
    assert_eq!(both.len(), 5);
    assert_eq!(
        both[1..],
        sim[..],
        "adding a live grid changes no simulated key"
    );
    assert!(
        both[0].starts_with("live-resnet18-auburn-video30-live-slo2-bs4-"),
        "{}",
        both[0]
    );
    // The clock is part of the key.
    let realtime = format!(
        "{SPEC}{}{SIM_GRID}",
        LIVE_GRID.replace("kind = \"live\"", "kind = \"live\"\nclock = \"realtime\"")
    );
    std::fs::write(s.dir.join("realtime.toml"), realtime).unwrap();
    let rt = s.planned_keys("realtime.toml");
    assert!(
        rt[0].starts_with("live-resnet18-auburn-video30-live-realtime-slo2-bs4-"),
        "{}",
        rt[0]
    );
    assert_eq!(rt[1..], sim[..]);
}

#[test]
fn a_live_task_runs_through_ee_backend_serve_alone_beside_the_simulated_ones() {
    let s = Setup::new("live-run");
    let keys = s.planned_keys("spec.toml");
    assert_ok(&s.local());
    let out = s.out();
    // Every task complete; the live folder holds the result files and the live files.
    let mut live_names: Vec<String> = RESULT_FILES
        .iter()
        .chain(LIVE_FILES.iter())
        .chain([&MANIFEST_FILE])
        .map(|n| n.to_string())
        .collect();
    live_names.sort();
    assert_eq!(sorted_names(&task_dir(&out, &keys[0])), live_names);
    for k in &keys[1..] {
        let names = sorted_names(&task_dir(&out, k));
        assert!(
            !names.iter().any(|n| LIVE_FILES.contains(&n.as_str())),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n == "summary.json"), "{names:?}");
    }
    let m = verify_task_dir(&task_dir(&out, &keys[0]), None, Digests::Verify).unwrap();
    assert_eq!(m.num_requests, 3);
    assert_eq!(m.summary_lines, vec!["served 3 requests".to_string()]);
    assert!(m.spec.live.is_some());

    // One serve call, on the built inputs folder, plain storage, with the task's spec.
    let calls = s.serve_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let inputs: Vec<PathBuf> = std::fs::read_dir(out.join("inputs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != ".tmp"))
        .collect();
    assert_eq!(inputs.len(), 1);
    assert!(
        calls[0].contains(&format!("--inputs {}", inputs[0].display()))
            || calls[0].contains(&format!(
                "--inputs {}",
                Path::new("res")
                    .join("inputs")
                    .join(inputs[0].file_name().unwrap())
                    .display()
            )),
        "{calls:?}"
    );
    assert!(calls[0].ends_with("--store plain"), "{calls:?}");
    let task: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.dir.join("last-task.json")).unwrap()).unwrap();
    assert_eq!(task["live"]["clock"], "fast");
    assert_eq!(task["inputs"]["kind"], "backend");
    assert_eq!(task["grid"], "live");
    // It ran alone: nothing else was staged while it ran (its own folder and task file only).
    let staged = std::fs::read_to_string(s.dir.join("staged-during-serve")).unwrap();
    let staged: Vec<&str> = staged.lines().collect();
    assert_eq!(staged.len(), 2, "{staged:?}");
    assert!(
        staged.iter().all(|n| n.starts_with(keys[0].as_str())),
        "{staged:?}"
    );

    // Again: every task complete, serve not called.
    assert_ok(&s.local());
    assert_eq!(s.serve_calls().len(), 1);

    // A live folder without timing.jsonl is not complete: the task runs again.
    std::fs::remove_file(task_dir(&out, &keys[0]).join("timing.jsonl")).unwrap();
    let problem = verify_task_dir(&task_dir(&out, &keys[0]), None, Digests::Verify)
        .unwrap_err()
        .to_string();
    assert!(problem.contains("timing.jsonl"), "{problem}");
    assert_ok(&s.local());
    assert_eq!(s.serve_calls().len(), 2);
    verify_task_dir(&task_dir(&out, &keys[0]), None, Digests::Verify).unwrap();
}

#[test]
fn a_live_folder_whose_serve_json_says_interrupted_is_never_complete() {
    let s = Setup::new("live-interrupted-folder");
    let keys = s.planned_keys("spec.toml");
    assert_ok(&s.local());
    let dir = task_dir(&s.out(), &keys[0]);
    // Rewrite serve.json as interrupted, with a manifest that lists its new size and digest:
    // only the interruption is wrong.
    let serve = dir.join("serve.json");
    let body = std::fs::read_to_string(&serve)
        .unwrap()
        .replace("\"interrupted\": false", "\"interrupted\": true");
    std::fs::write(&serve, &body).unwrap();
    let mpath = dir.join(MANIFEST_FILE);
    let mut manifest = parse_manifest(&mpath, &std::fs::read(&mpath).unwrap()).unwrap();
    for f in &mut manifest.files {
        if f.name == "serve.json" {
            f.bytes = body.len() as u64;
            f.sha256 = apparate::sweep::digest::sha256_hex(body.as_bytes());
        }
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let problem = verify_task_dir(&dir, None, Digests::Verify)
        .unwrap_err()
        .to_string();
    assert!(
        problem.contains("serve.json") && problem.contains("interrupted"),
        "{problem}"
    );
    // The sweep runs it again.
    assert_ok(&s.local());
    assert_eq!(s.serve_calls().len(), 2);
    verify_task_dir(&dir, None, Digests::Verify).unwrap();
}

#[test]
fn a_failing_interrupted_or_incomplete_serve_commits_nothing() {
    let s = Setup::new("live-fail");
    let keys = s.planned_keys("spec.toml");
    let live = task_dir(&s.out(), &keys[0]);
    let failure = s.out().join("failures").join(format!("{}.json", keys[0]));
    let record = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&failure).unwrap()).unwrap()
    };

    // Exit 3: the failure is the exit status and the last stderr line; the others complete.
    s.flag("serve-fail", true);
    let o = s.local();
    assert!(!o.status.success());
    assert!(!live.exists());
    for k in &keys[1..] {
        assert!(task_dir(&s.out(), k).join(MANIFEST_FILE).is_file());
    }
    let r = record();
    assert_eq!(r["kind"], "serve");
    assert_eq!(r["retryable"], false);
    let message = r["message"].as_str().unwrap();
    assert!(
        message.contains("exit status: 3") && message.ends_with("error: forward failed at ramp 2"),
        "{message}"
    );
    s.flag("serve-fail", false);

    // Interrupted (exit 130): retryable, nothing committed.
    s.flag("serve-interrupt", true);
    assert!(!s.local().status.success());
    assert!(!live.exists());
    let r = record();
    assert_eq!(r["retryable"], true);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .ends_with("error: interrupted after 3 requests"),
        "{r}"
    );

    // Exit 0 with "interrupted": true: not a result.
    s.flag("serve-exit-0", true);
    assert!(!s.local().status.success());
    assert!(!live.exists());
    let message = record()["message"].as_str().unwrap().to_string();
    assert!(message.contains("interrupted"), "{message}");
    s.flag("serve-interrupt", false);
    s.flag("serve-exit-0", false);

    // Exit 0 without timing.jsonl: not a result.
    s.flag("serve-no-timing", true);
    assert!(!s.local().status.success());
    assert!(!live.exists());
    let message = record()["message"].as_str().unwrap().to_string();
    assert!(message.contains("timing.jsonl"), "{message}");
    s.flag("serve-no-timing", false);

    // And once serve works, the task completes and its failure record is gone.
    assert_ok(&s.local());
    verify_task_dir(&live, None, Digests::Verify).unwrap();
    assert!(!failure.exists());
    // Nothing of the failed runs is left in the staging folder.
    assert!(sorted_names(&s.out().join("tasks/.tmp")).is_empty());
}
