//! Backend inputs in a `worker --local` sweep (issue #13 item 5): the inputs folder is built
//! once and reused (gen-data calls counted), a failing gen-data leaves nothing reusable, a
//! tampered folder is rebuilt, the tasks' results are those of the same folder given as
//! artifact inputs, and a missing `ee-backend` is one clear error before any work.
//!
//! `APPARATE_EE_BACKEND` points at a small script standing in for `ee-backend` until it has
//! `gen-data`: it answers `--version`, logs each `gen-data` call, and writes a real artifact
//! folder with `worker gen-data` (the embedded workload's data-folder writer, a real
//! component). With `fail` beside it, it writes the folder and then exits with 3, as a
//! backend that crashes after writing part of its output.

use crate::util::fresh_temp_dir;
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
    spec: PathBuf,
}

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
if [ -e "{fail}" ]; then echo "progress 50%" >&2; echo "error: weights.bin: tensor conv1.weight: missing" >&2; exit 3; fi
"#,
            calls = dir.join("calls").display(),
            worker = worker_bin(),
            fail = dir.join("fail").display(),
        );
        std::fs::write(&script, body).unwrap();
        let status = Command::new("chmod")
            .arg("+x")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        let spec = dir.join("spec.toml");
        std::fs::write(&spec, spec_text("kind = \"backend\"\nmodel = \"resnet18\"\ndataset = \"auburn\"\nweights = \"weights.bin\"\ndata = \"frames\"\ndevice = \"cpu\"\nseed = 0")).unwrap();
        Setup { dir, script, spec }
    }

    fn worker(&self, args: &[&str]) -> Output {
        Command::new(worker_bin())
            .args(args)
            .env("APPARATE_EE_BACKEND", &self.script)
            .current_dir(&self.dir)
            .output()
            .expect("worker runs")
    }

    fn local(&self, out: &str) -> Output {
        self.worker(&[
            "--local",
            "--no-report",
            "--spec",
            "spec.toml",
            "--out",
            out,
        ])
    }

    /// How many times gen-data ran.
    fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.join("calls"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// The one folder under `out/inputs/` (besides `.tmp`), if any.
    fn inputs_dirs(&self, out: &str) -> Vec<PathBuf> {
        let root = self.dir.join(out).join("inputs");
        let Ok(entries) = std::fs::read_dir(&root) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().is_some_and(|n| n != ".tmp"))
            .collect()
    }
}

fn spec_text(inputs: &str) -> String {
    format!(
        "name = \"be\"\n[inputs]\n{inputs}\n[traces.video30]\nkind = \"fixed\"\nqps = 30.0\nn = 500\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"video30\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n"
    )
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

fn task_dirs(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("tasks"))
        .map(|es| {
            es.map(|e| e.unwrap().path())
                .filter(|p| p.file_name().is_some_and(|n| n != ".tmp"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_backend_sweep_builds_its_inputs_once_and_reuses_them() {
    let s = Setup::new("backend-reuse");
    let plan = s.worker(&["plan", "--spec", "spec.toml", "--out", "res"]);
    assert_ok(&plan);
    let listing = text(&plan.stdout);
    assert!(
        listing.starts_with("# inputs: backend model resnet18 on cpu, ee-backend-stand-in 1")
            && listing.contains("(not built yet)"),
        "{listing}"
    );
    assert_eq!(s.calls(), 0, "planning runs no gen-data");

    assert_ok(&s.local("res"));
    assert_eq!(s.calls(), 1);
    let dirs = s.inputs_dirs("res");
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let digest = dirs[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(digest.len(), 64);
    assert!(listing.contains(&digest), "the plan names the digest");
    let manifest = std::fs::read_to_string(dirs[0].join("inputs-manifest.json")).unwrap();
    assert!(manifest.contains(&digest), "{manifest}");
    let out = s.dir.join("res");
    let tasks = task_dirs(&out);
    assert_eq!(tasks.len(), 1);
    let task_manifest = std::fs::read_to_string(tasks[0].join("manifest.json")).unwrap();
    assert!(
        task_manifest.contains(&format!("\"backend\": \"{digest}\"")),
        "the task's digests hold the inputs digest:\n{task_manifest}"
    );
    let plan = s.worker(&["plan", "--spec", "spec.toml", "--out", "res"]);
    assert!(text(&plan.stdout).contains("(built)"));

    // A second run: every task complete, no gen-data.
    assert_ok(&s.local("res"));
    assert_eq!(s.calls(), 1);
    // Tasks gone, inputs kept: they run again on the verified folder, no gen-data.
    std::fs::remove_dir_all(out.join("tasks")).unwrap();
    assert_ok(&s.local("res"));
    assert_eq!(s.calls(), 1);
    assert_eq!(task_dirs(&out).len(), 1);

    // A tampered inputs folder is not reused: built again.
    std::fs::remove_dir_all(out.join("tasks")).unwrap();
    let profile = dirs[0].join("profile_pickles_bs/resnet18_1_profile.pickle");
    let mut bytes = std::fs::read(&profile).unwrap();
    bytes.push(b'.');
    std::fs::write(&profile, bytes).unwrap();
    let o = s.local("res");
    assert_ok(&o);
    assert_eq!(s.calls(), 2);
    assert!(
        text(&o.stderr).contains("is rebuilt"),
        "{}",
        text(&o.stderr)
    );

    // The task's results are those of the built folder given as artifact inputs.
    let artifact_spec = spec_text(&format!("kind = \"artifact\"\ndir = {:?}", dirs[0]));
    std::fs::write(s.dir.join("spec.toml"), artifact_spec).unwrap();
    assert_ok(&s.local("res-artifact"));
    let art = task_dirs(&s.dir.join("res-artifact"));
    let be = task_dirs(&out);
    assert_eq!(art.len(), 1);
    assert_ne!(art[0].file_name(), be[0].file_name(), "different keys");
    // Every result file as stored (sweeps store zstd by default), byte for byte.
    for f in ["summary.json", "batches.jsonl", "log.txt", "baselines.json"] {
        let name = apparate::storage::Storage::Zstd.stored_name(f);
        assert_eq!(
            std::fs::read(art[0].join(&name)).unwrap(),
            std::fs::read(be[0].join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn a_failing_gen_data_leaves_no_reusable_folder() {
    let s = Setup::new("backend-fail");
    std::fs::write(s.dir.join("fail"), b"").unwrap();
    let o = s.local("res");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: backend inputs: ")
            && last.ends_with("exit status: 3: error: weights.bin: tensor conv1.weight: missing"),
        "{err}"
    );
    assert_eq!(s.calls(), 1);
    assert!(s.inputs_dirs("res").is_empty(), "nothing that counts");
    assert!(task_dirs(&s.dir.join("res")).is_empty(), "no task ran");

    std::fs::remove_file(s.dir.join("fail")).unwrap();
    assert_ok(&s.local("res"));
    assert_eq!(s.calls(), 2, "built again");
    assert_eq!(s.inputs_dirs("res").len(), 1);
    assert_eq!(task_dirs(&s.dir.join("res")).len(), 1);
}

#[test]
fn other_weights_or_device_give_other_task_keys() {
    let s = Setup::new("backend-keys");
    let key = |s: &Setup| {
        let o = s.worker(&["plan", "--spec", "spec.toml", "--out", "res"]);
        assert_ok(&o);
        let t = text(&o.stdout);
        t.lines()
            .nth(1)
            .unwrap()
            .split('\t')
            .nth(1)
            .unwrap()
            .to_string()
    };
    let k0 = key(&s);
    assert_eq!(k0, key(&s), "stable");
    std::fs::write(s.dir.join("weights.bin"), b"weights v2").unwrap();
    let k1 = key(&s);
    assert_ne!(k0, k1);
    let text0 = std::fs::read_to_string(&s.spec).unwrap();
    std::fs::write(&s.spec, text0.replace("\"cpu\"", "\"cuda\"")).unwrap();
    let k2 = key(&s);
    assert_ne!(k2, k1);
    assert_ne!(k2, k0);
}

#[test]
fn a_missing_ee_backend_is_one_clear_error_before_any_work() {
    let s = Setup::new("backend-missing");
    let o = Command::new(worker_bin())
        .args([
            "--local",
            "--no-report",
            "--spec",
            "spec.toml",
            "--out",
            "res",
        ])
        .env("APPARATE_EE_BACKEND", s.dir.join("no-such-backend"))
        .current_dir(&s.dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("spec.toml")
            && err.contains("ee-backend not found")
            && err.contains("APPARATE_EE_BACKEND"),
        "{err}"
    );
    assert!(!s.dir.join("res").exists(), "nothing written");
}
