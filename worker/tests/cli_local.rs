//! The real `worker --local` and `worker plan` binaries on small sweeps over a golden scenario's
//! artifact inputs: complete runs, reruns that do nothing, `--jobs` independence, failing
//! tasks, debris from killed runs, and specs refused before any work.

use crate::util::{auburn_data, copy_tree, fresh_temp_dir};
use apparate::sweep::SweepSpec;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_worker")
}

const FIXED_30: &str = r#"
[traces.fixed_30]
source = "artifact_decisions"
file = "{model}_{slo}_fixed_30.pickle"
"#;

/// A spec over `data` (resnet18 × auburn) with these traces and extra grid lines.
fn write_spec(dir: &Path, data: &Path, traces: &str, grid_traces: &str, extra: &str) -> PathBuf {
    let text = format!(
        "name = \"cli\"\n[inputs]\nkind = \"artifact\"\ndir = {:?}\n{traces}\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [{grid_traces}]\nslo_multiplier = [1]\nbatch_size = [4]\n{extra}\n",
        data.display().to_string()
    );
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).expect("write spec");
    path
}

fn local(spec: &Path, out: &Path, jobs: Option<u32>) -> Output {
    let mut cmd = Command::new(worker_bin());
    cmd.arg("--local")
        .arg("--no-report")
        .arg("--spec")
        .arg(spec)
        .arg("--out")
        .arg(out);
    if let Some(j) = jobs {
        cmd.arg("--jobs").arg(j.to_string());
    }
    cmd.output().expect("worker runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

/// Every file under `root` (relative path → bytes), without the lock file and staging debris.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read dir") {
            let e = e.expect("entry");
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if rel == ".lock" || rel.starts_with("tasks/.tmp") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A manifest's JSON without its timings.
fn without_timings(bytes: &[u8]) -> Json {
    let mut v: Json = serde_json::from_slice(bytes).expect("manifest JSON");
    v.as_object_mut().expect("object").remove("timings");
    v
}

fn task_dirs(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.join("tasks"))
        .expect("tasks dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".tmp")
        .collect();
    v.sort();
    v
}

#[test]
fn a_local_sweep_completes_and_a_second_run_does_no_work_and_prints_the_same_summary() {
    let tmp = fresh_temp_dir("local-rerun");
    let spec = write_spec(
        &tmp,
        &auburn_data(),
        FIXED_30,
        "\"fixed_30\"",
        "accuracy_budget = [0.01, 0.02]",
    );
    let out = tmp.join("out");
    let first = local(&spec, &out, Some(2));
    assert_ok(&first);
    let summary = text(&first.stdout);
    assert_eq!(summary.lines().count(), 2, "one summary line per CV task");
    assert!(summary.lines().all(
        |l| l.starts_with("[resnet18_auburn, video]: Serving with complete, overall accuracy")
    ));
    assert_eq!(
        std::fs::read_to_string(out.join("output_cv.txt")).expect("output_cv.txt"),
        summary
    );
    // The golden run's summary line is the faithful task's.
    let golden_log = std::fs::read_to_string(
        auburn_data()
            .parent()
            .expect("scenario")
            .join("expected/log.txt"),
    )
    .expect("golden log");
    assert_eq!(summary.lines().next(), golden_log.lines().last());
    let dirs = task_dirs(&out);
    assert_eq!(dirs.len(), 2);
    let sweep: Json =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).expect("sweep.json"))
            .expect("sweep.json is JSON");
    assert_eq!(sweep["format"], "apparate-rs/sweep-plan");
    let planned: Vec<String> = sweep["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|k| k.as_str().expect("key").to_string())
        .collect();
    let mut sorted = planned.clone();
    sorted.sort();
    assert_eq!(sorted, dirs);
    for d in &dirs {
        let m: Json = serde_json::from_slice(
            &std::fs::read(out.join("tasks").join(d).join("manifest.json")).expect("manifest"),
        )
        .expect("manifest JSON");
        assert_eq!(m["format"], "apparate-rs/task-manifest");
        assert_eq!(m["key"], d.as_str());
        assert_eq!(m["status"], "complete");
        // A sweep stores batches.jsonl and log.txt compressed by default (issue #15).
        for f in [
            "summary.json",
            "batches.jsonl.zst",
            "latencies.pickle",
            "requests.parquet",
            "log.txt.zst",
            "baselines.json",
        ] {
            assert!(out.join("tasks").join(d).join(f).is_file(), "{d}/{f}");
        }
    }
    let before = tree(&out);

    let second = local(&spec, &out, Some(2));
    assert_ok(&second);
    assert_eq!(text(&second.stdout), summary, "same summary");
    assert!(
        text(&second.stderr).contains("2 tasks: 0 run now, 2 already complete, 0 failed"),
        "{}",
        text(&second.stderr)
    );
    // No work: every task file, manifests (and their timings) included, is untouched.
    assert_eq!(tree(&out), before);

    let plan = Command::new(worker_bin())
        .args(["plan", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("worker plan runs");
    assert_ok(&plan);
    let rows = text(&plan.stdout);
    let rows: Vec<Vec<&str>> = rows.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], i.to_string());
        assert_eq!(row[1], planned[i]);
        assert_eq!(row[2], "cv/resnet18/auburn/fixed_30");
        assert_eq!(row[3], "complete");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn results_are_byte_identical_with_one_or_two_jobs_except_manifest_timings() {
    let tmp = fresh_temp_dir("local-jobs");
    let spec = write_spec(
        &tmp,
        &auburn_data(),
        FIXED_30,
        "\"fixed_30\"",
        "batching = [\"clockwork\", \"uniform\"]\naccuracy_budget = [0.01, 0.05]",
    );
    let (one, two) = (tmp.join("one"), tmp.join("two"));
    let a = local(&spec, &one, Some(1));
    assert_ok(&a);
    let b = local(&spec, &two, Some(2));
    assert_ok(&b);
    assert_eq!(a.stdout, b.stdout);
    let (ta, tb) = (tree(&one), tree(&two));
    assert_eq!(
        ta.keys().collect::<Vec<_>>(),
        tb.keys().collect::<Vec<_>>(),
        "same files"
    );
    assert_eq!(task_dirs(&one).len(), 4);
    for (name, bytes) in &ta {
        if name.ends_with("manifest.json") {
            assert_eq!(without_timings(bytes), without_timings(&tb[name]), "{name}");
        } else {
            assert!(bytes == &tb[name], "{name} differs between --jobs 1 and 2");
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_corrupt_input_fails_its_task_naming_the_file_while_the_others_complete() {
    let tmp = fresh_temp_dir("local-corrupt");
    let data = tmp.join("data");
    copy_tree(&auburn_data(), &data);
    let good = data.join("batch_decisions/resnet18_1_fixed_30.pickle");
    let bytes = std::fs::read(&good).expect("decisions");
    let bad = data.join("batch_decisions/broken.pickle");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).expect("truncated copy");
    let traces = format!(
        "{FIXED_30}\n[traces.broken]\nsource = \"artifact_decisions\"\nfile = \"broken.pickle\"\n"
    );
    let spec = write_spec(&tmp, &data, &traces, "\"broken\", \"fixed_30\"", "");
    let out = tmp.join("out");
    let o = local(&spec, &out, Some(2));
    assert!(
        !o.status.success(),
        "a failed task makes the exit code non-zero"
    );
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("1 of 2 tasks failed") && stderr.contains("failures"),
        "{stderr}"
    );
    assert!(stderr.contains("broken.pickle"), "{stderr}");
    // The good task completed and its summary line was printed.
    let dirs = task_dirs(&out);
    assert_eq!(dirs.len(), 1);
    assert!(
        dirs[0].starts_with("cv-resnet18-auburn-fixed_30-"),
        "{dirs:?}"
    );
    assert_eq!(text(&o.stdout).lines().count(), 1);
    // The failure record names the file and the problem.
    let failures: Vec<PathBuf> = std::fs::read_dir(out.join("failures"))
        .expect("failures dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(failures.len(), 1);
    let rec: Json =
        serde_json::from_slice(&std::fs::read(&failures[0]).expect("record")).expect("JSON");
    assert_eq!(rec["format"], "apparate-rs/task-failure");
    assert_eq!(rec["kind"], "input");
    assert_eq!(rec["retryable"], false);
    assert_eq!(rec["task"], "cv/resnet18/auburn/broken");
    let msg = rec["message"].as_str().expect("message");
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
    assert!(
        failures[0]
            .file_name()
            .expect("name")
            .to_string_lossy()
            .starts_with("cv-resnet18-auburn-broken-"),
        "{failures:?}"
    );
    // Nothing of the failed task is left in staging.
    assert_eq!(
        std::fs::read_dir(out.join("tasks/.tmp"))
            .expect("staging")
            .count(),
        0
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn staging_debris_and_an_incomplete_task_folder_are_ignored_and_redone() {
    let tmp = fresh_temp_dir("local-debris");
    let spec = write_spec(
        &tmp,
        &auburn_data(),
        FIXED_30,
        "\"fixed_30\"",
        "accuracy_budget = [0.01, 0.02]",
    );
    let plan = SweepSpec::load(&spec)
        .expect("parses")
        .plan()
        .expect("valid");
    let keys: Vec<String> = plan.tasks().map(|t| t.key.to_string()).collect();
    let out = tmp.join("out");
    // As a killed run leaves them: a half-written staging folder, and a task folder without a
    // manifest (as if someone deleted it).
    let debris = out.join("tasks/.tmp").join(format!("{}-999999", keys[0]));
    std::fs::create_dir_all(&debris).expect("debris");
    std::fs::write(debris.join("log.txt"), "partial").expect("debris file");
    let partial = out.join("tasks").join(&keys[1]);
    std::fs::create_dir_all(&partial).expect("partial");
    std::fs::write(partial.join("log.txt"), "partial").expect("partial file");
    let o = local(&spec, &out, Some(2));
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains("2 tasks: 2 run now, 0 already complete, 0 failed"),
        "{}",
        text(&o.stderr)
    );
    assert!(!debris.exists());
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(task_dirs(&out), sorted);
    for k in &keys {
        let (_, log) =
            apparate::storage::read_result(&out.join("tasks").join(k), "log.txt", 1 << 30)
                .expect("log");
        let log = String::from_utf8(log).expect("utf-8");
        assert!(log.starts_with("args: Namespace("), "{k}: {log:.40}");
        assert!(out.join("tasks").join(k).join("manifest.json").is_file());
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_bad_spec_is_refused_before_any_work_naming_the_key_or_the_file() {
    let tmp = fresh_temp_dir("local-refused");
    let out = tmp.join("out");
    let spec = write_spec(&tmp, &auburn_data(), FIXED_30, "\"fixed_30\"", "");
    let text_of = std::fs::read_to_string(&spec).expect("spec");
    std::fs::write(&spec, text_of.replace("\"resnet18\"", "\"resnet19\"")).expect("write");
    let o = local(&spec, &out, None);
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("nothing was run")
            && stderr.contains("grid[0].models[0]: unknown model \"resnet19\""),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");

    let data = tmp.join("data");
    copy_tree(&auburn_data(), &data);
    std::fs::remove_file(data.join("simulation_pickles/auburn_resnet18.pickle")).expect("rm");
    let spec = write_spec(&tmp, &data, FIXED_30, "\"fixed_30\"", "");
    let o = local(&spec, &out, None);
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("task cv/resnet18/auburn/fixed_30: missing input file")
            && stderr.contains("simulation_pickles/auburn_resnet18.pickle"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");

    std::fs::write(
        &spec,
        "name = \"x\"\n[inputs]\nkind = \"embedded\"\nscale = \"big\"\n",
    )
    .expect("write");
    let o = local(&spec, &out, None);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("scale = \"big\""),
        "{}",
        text(&o.stderr)
    );
    assert!(!out.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn worker_plan_lists_the_builtin_grid_in_order() {
    let tmp = fresh_temp_dir("plan-builtin");
    let o = Command::new(worker_bin())
        .arg("plan")
        .arg("--out")
        .arg(tmp.join("none"))
        .output()
        .expect("worker plan runs");
    assert_ok(&o);
    let stdout = text(&o.stdout);
    let labels: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('\t').nth(2).expect("label"))
        .collect();
    assert_eq!(labels.len(), 56);
    assert_eq!(labels[0], "cv/resnet18/auburn/video30");
    assert_eq!(labels[1], "cv/resnet50/auburn/video30");
    assert_eq!(labels[6], "cv/resnet18/hampton/video30");
    assert_eq!(labels[48], "nlp/distilbert-base/amazon_reviews/azure");
    assert_eq!(labels[55], "nlp/gpt2-medium/imdb/azure");
    assert!(stdout.lines().all(|l| l.ends_with("\tpending")));
    assert!(!tmp.join("none").exists(), "a dry run writes nothing");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Issue #6: `worker --local` runs the `analysis` binary found beside it (`apparate::report_hook`)
/// as `analysis report --results OUT`, says how to build it when there is none (and still
/// succeeds), and skips it with `--no-report`. A copy of the worker binary in a temporary
/// folder, beside a stand-in `analysis` script, keeps this independent of what else is built.
#[cfg(unix)]
#[test]
fn worker_local_runs_the_analysis_binary_beside_it_or_says_how_to_build_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = fresh_temp_dir("report-hook");
    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let worker = bin.join("worker");
    std::fs::copy(worker_bin(), &worker).expect("copy worker");
    let spec = write_spec(&tmp, &auburn_data(), FIXED_30, "\"fixed_30\"", "");
    let run = |out: &str, extra: &[&str]| {
        // A just-written executable can be briefly "busy" (ETXTBSY) while another test
        // thread's fork still holds the copy's write handle: retry that error only.
        for _ in 0..50 {
            match Command::new(&worker)
                .arg("--local")
                .args(extra)
                .arg("--spec")
                .arg(&spec)
                .arg("--out")
                .arg(tmp.join(out))
                .output()
            {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                other => return other.expect("worker runs"),
            }
        }
        panic!("{} stays busy", worker.display());
    };
    let missing = run("a", &[]);
    assert_ok(&missing);
    assert!(
        text(&missing.stderr).contains("cargo build --release -p analysis"),
        "{}",
        text(&missing.stderr)
    );
    let args = tmp.join("args.txt");
    let script = bin.join("analysis");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > '{}'\n", args.display()),
    )
    .expect("stand-in analysis");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let present = run("b", &[]);
    assert_ok(&present);
    assert_eq!(
        std::fs::read_to_string(&args).expect("analysis was run"),
        format!("report --results {}\n", tmp.join("b").display())
    );
    std::fs::remove_file(&args).expect("remove args");
    assert_ok(&run("c", &["--no-report"]));
    assert!(!args.exists(), "--no-report runs nothing");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Issue #11 item 7: a spec whose trace would serve almost nothing (`qps = 1e-300`: 1 of 700
/// requests) or whose SLO is infinite is refused by `worker plan` and `worker --local` before
/// any task runs, in one line naming the key and its range.
#[test]
fn issue11_out_of_range_values_are_refused_by_plan_and_local_before_any_task() {
    let tmp = fresh_temp_dir("local-ranges");
    let out = tmp.join("out");
    let spec = tmp.join("spec.toml");
    let base = "name = \"ranges\"\n[inputs]\nkind = \"embedded\"\nscale = 0.01\n[traces.v]\nkind = \"fixed\"\nqps = 30\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"v\"]\nslo_multiplier = [2]\nbatch_size = [4]\n";
    for (from, to, want) in [
        (
            "qps = 30",
            "qps = 1e-300",
            "traces.v.qps: 1e-300 is out of range; expected at least",
        ),
        (
            "slo_multiplier = [2]",
            "slo_multiplier = [1e308]",
            "grid[0].slo_multiplier[0]: 1e308 is out of range; expected a number in [1, 1000]",
        ),
        (
            "kind = \"fixed\"\nqps = 30",
            "kind = \"synthetic_azure\"\nshape = { burst_size = nan }",
            "traces.v.shape.burst_size: NaN is out of range",
        ),
    ] {
        std::fs::write(&spec, base.replace(from, to)).expect("write spec");
        let plan = Command::new(worker_bin())
            .args(["plan", "--spec"])
            .arg(&spec)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("worker plan runs");
        let local = local(&spec, &out, None);
        for o in [plan, local] {
            let stderr = text(&o.stderr);
            assert!(!o.status.success(), "{to}: accepted\n{stderr}");
            let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(want)).collect();
            assert_eq!(lines.len(), 1, "{to}: one line with {want:?}:\n{stderr}");
            assert!(!out.exists(), "{to}: nothing written");
        }
    }
    std::fs::write(&spec, base).expect("write spec");
    let plan = Command::new(worker_bin())
        .args(["plan", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("worker plan runs");
    assert_ok(&plan);
    let _ = std::fs::remove_dir_all(&tmp);
}
