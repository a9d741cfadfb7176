//! Issue #14: live tasks against simulated ones. The tasks are written here with the workers'
//! own writer (staging folder, `describe_files`, `Manifest::new`, `ResultsWriter::commit`), a
//! simulated task and its live partner (the same spec with `live` set, measured latencies,
//! `serve.json` and `timing.jsonl` as the contract says), with rows chosen so that every
//! percentile falls on a value written here.

use crate::util::{analysis_bin, fresh_temp_dir, read_csv};
use apparate::output::{write_latencies_pickle, write_requests_parquet, ExtraColumns};
use apparate::results::{describe_files, Manifest, ResultsDir, Timings};
use apparate::sim::record::Requests;
use apparate::storage::Storage;
use apparate::sweep::PlannedTask;
use apparate::task::{LiveClock, LiveRun, TaskSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The spec both tasks share: a real (backend) model, as a live task requires.
fn spec() -> TaskSpec {
    serde_json::from_value(serde_json::json!({
        "grid": "cv",
        "family": "cv",
        "model": "tiny-cnn",
        "dataset": "digits",
        "trace": {"source": "generated", "name": "video30",
                  "spec": {"kind": "fixed", "n": 64, "qps": 30.0}},
        "params": {"batching": "clockwork", "slo_multiplier": 2.0, "batch_size": 4,
                   "static_ramps": "all_sites", "overrides": {}},
        "seed": 0,
        "inputs": {"kind": "backend", "model": "tiny-cnn", "name": "tiny-cnn",
                   "dataset": "digits", "weights": "/nowhere/w.mpk", "data": "/nowhere/digits",
                   "device": "auto"}
    }))
    .expect("a task spec")
}

fn live_spec() -> TaskSpec {
    TaskSpec {
        live: Some(LiveRun {
            clock: LiveClock::Fast,
        }),
        ..spec()
    }
}

/// One request row: exit point, queueing (ms, `None`: unknown), inference (ms).
type Row = (usize, Option<f64>, f64);

/// The simulated task's 21 rows. End-to-end (queueing + inference; a null queueing counts as
/// 0) increases with i: 1.0, 1.75, 2.0, ..., 5.5 + 0.5·(i − 9) ...; rows 19 and 20 are 16.0.
/// Exit point `i % 4` (3 is the final exit).
fn simulated_rows() -> Vec<Row> {
    (0..21)
        .map(|i| {
            let q = if i % 2 == 1 { Some(0.25) } else { None };
            let inf = match i {
                19 => 15.75,
                20 => 16.0,
                _ => 1.0 + 0.5 * f64::from(i),
            };
            ((i % 4) as usize, q, inf)
        })
        .collect()
}

/// The live task's 41 rows (measured): queueing 0.5 + inference 2.0 + 0.25·i for i < 38,
/// row 38 at 20.0, rows 39 and 40 at 32.0. Exit point 3 (final) for i < 10, else 1.
fn live_rows() -> Vec<Row> {
    (0..41)
        .map(|i| {
            let inf = match i {
                38 => 19.5,
                39 | 40 => 31.5,
                _ => 2.0 + 0.25 * f64::from(i),
            };
            (if i < 10 { 3 } else { 1 }, Some(0.5), inf)
        })
        .collect()
}

/// Writes a complete task of `spec` with these rows (and `accuracy` in `summary.json`, plus
/// `extra` files such as `serve.json`, always plain) into `root` through the workers' writer,
/// its result files stored as `storage` says; returns its folder.
fn write_task(
    root: &Path,
    storage: Storage,
    spec: TaskSpec,
    rows: &[Row],
    accuracy: f64,
    extra: &[(&str, String)],
) -> PathBuf {
    let digests: BTreeMap<String, String> = [("backend".to_string(), "ab".repeat(32))]
        .into_iter()
        .collect();
    let code_version = apparate::code_version();
    let key = apparate::sweep::key::task_key(&spec, &digests, &code_version);
    let task = PlannedTask {
        index: 0,
        key,
        spec,
        digests,
    };
    let writer = ResultsDir::new(root)
        .lock_stored(storage)
        .expect("lock results dir");
    let staged = writer.stage(&task.key).expect("stage");
    let n = rows.len();
    let mut requests = Requests::with_capacity(n);
    for (i, (exit, _, inf)) in rows.iter().enumerate() {
        requests.batch.push(i as u32 + 1);
        requests.batch_size.push(1);
        requests.exit_point.push(*exit);
        requests.correct.push(true);
        requests.inference_ms.push(*inf);
        requests.vanilla_ms.push(40.0);
    }
    let extra_columns = ExtraColumns {
        queueing_ms: Some(rows.iter().map(|r| r.1).collect()),
        ..ExtraColumns::default()
    };
    write_requests_parquet(&staged.join("requests.parquet"), &requests, &extra_columns)
        .expect("requests.parquet");
    write_latencies_pickle(&staged.join("latencies.pickle"), &requests.inference_ms)
        .expect("latencies.pickle");
    let summary_line =
        format!("[tiny-cnn_digits, video]: Serving with complete, overall accuracy {accuracy}%");
    let summary = serde_json::json!({
        "overall_accuracy": accuracy,
        "overall_latency_improvement": 50.0,
        "exit_rate": {},
        "ramp_accuracy": {},
        "num_requests": n,
        "num_batches": n,
    });
    let batches: String = (1..=n)
        .map(|b| {
            format!(
                "{{\"batch\":{b},\"n\":1,\"bs\":1,\"ramp_ids\":[0,1,2],\"thresholds\":[0.1,0.2,0.3],\"acc\":1.0,\"latency_improvement\":50.0,\"exit_rate\":[0.25,0.25,0.25,0.25],\"ramp_acc\":{{}}}}\n"
            )
        })
        .collect();
    let files: Vec<(&str, String)> = vec![
        ("summary.json", format!("{summary:#}\n")),
        ("log.txt", format!("args: test\n{summary_line}\n")),
        ("batches.jsonl", batches),
        ("baselines.json", "{}\n".to_string()),
    ];
    for (name, text) in &files {
        let mut file =
            std::fs::File::create(staged.join(storage.stored_name(name))).expect("create");
        storage
            .write_through(name, &mut file, |w| w.write_all(text.as_bytes()))
            .expect("write a result file");
    }
    for (name, text) in extra {
        std::fs::write(staged.join(name), text).expect("write a live file");
    }
    let manifest = Manifest::new(
        &task,
        &code_version,
        describe_files(&staged).expect("describe files"),
        n,
        vec![summary_line],
        Timings {
            started_unix_ms: 0,
            run_ms: 1,
            total_ms: 1,
        },
    );
    writer.commit(&staged, &manifest).expect("commit the task");
    root.join("tasks").join(task.key.as_str())
}

/// `serve.json` and `timing.jsonl` of a live run of the 41 rows (2 requests dropped, 3 slow
/// batches; the spec's device `auto` ran on the CPU).
fn live_files() -> Vec<(&'static str, String)> {
    let serve = serde_json::json!({
        "clock": "fast", "executor": "model", "device": "cpu",
        "requests": 43, "served": 41, "dropped": 2, "batches": 41, "interrupted": false,
        "controller_us": {"median": 12.0, "p95": 30.0},
        "slow_batches": 3, "slow_factor": 2.0
    });
    let timing: String = (0..41)
        .map(|i| {
            format!(
                "{{\"batch\":{i},\"bs\":1,\"start_ms\":{}.0,\"predicted_ms\":2.0,\"measured_ms\":2.5,\"controller_us\":10.0,\"slow\":{}}}\n",
                i * 33,
                i < 3
            )
        })
        .collect();
    vec![
        ("serve.json", format!("{serve}\n")),
        ("timing.jsonl", timing),
    ]
}

fn report(results: &Path, out: &Path) -> analysis::ReportOutcome {
    analysis::build_report(&analysis::ReportOptions {
        results: results.to_path_buf(),
        out: Some(out.to_path_buf()),
        jobs: Some(2),
    })
    .expect("report builds")
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read folder") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir").to_path_buf();
                out.insert(rel, std::fs::read(&p).expect("read file"));
            }
        }
    }
    out
}

fn non_empty(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
}

#[test]
fn a_live_task_is_compared_with_its_simulated_partner_and_left_out_of_every_other_table() {
    let dir = fresh_temp_dir("live-pair");
    let results = dir.join("results");
    let sim_dir = write_task(
        &results,
        Storage::Plain,
        spec(),
        &simulated_rows(),
        97.5,
        &[],
    );
    let without = report(&results, &dir.join("without"));
    assert_eq!((without.tasks, without.live), (1, 0));

    let live_dir = write_task(
        &results,
        Storage::Plain,
        live_spec(),
        &live_rows(),
        95.25,
        &live_files(),
    );
    let with = report(&results, &dir.join("with"));
    assert!(with.problems.is_empty(), "{:?}", with.problems);
    assert_eq!((with.tasks, with.live, with.planned), (2, 1, 2));

    // The new table, by hand. Simulated (21 rows, sorted end-to-end = 1 + 0.5·i (+0.25 for
    // odd i), then 16, 16): median = row 10 = 6.0; p95 at position 19 = 16.0; p99 at 19.8,
    // between 16 and 16. Live (41 rows, 2.5 + 0.25·i, then 20, 32, 32): median = row 20 =
    // 7.5; p95 at position 38 = 20.0; p99 at 39.6, between 32 and 32.
    let table = read_csv(&dir.join("with/tables/live_vs_simulated.csv"));
    assert_eq!(table.len(), 1, "one row per live task");
    let row = &table[0];
    let expected = [
        (
            "key",
            live_dir
                .file_name()
                .expect("key")
                .to_string_lossy()
                .into_owned(),
        ),
        (
            "simulated_key",
            sim_dir
                .file_name()
                .expect("key")
                .to_string_lossy()
                .into_owned(),
        ),
        ("model", "tiny-cnn".into()),
        ("dataset", "digits".into()),
        ("trace", "video30".into()),
        ("batching", "clockwork".into()),
        ("clock", "fast".into()),
        ("device", "cpu".into()),
        ("live_served", "41".into()),
        ("simulated_served", "21".into()),
        ("live_dropped", "2".into()),
        ("live_p50_ms", "7.5".into()),
        ("simulated_p50_ms", "6".into()),
        ("live_p95_ms", "20".into()),
        ("simulated_p95_ms", "16".into()),
        ("live_p99_ms", "32".into()),
        ("simulated_p99_ms", "16".into()),
        ("p50_ratio", "1.25".into()),
        ("p95_ratio", "1.25".into()),
        ("live_accuracy_pct", "95.25".into()),
        ("simulated_accuracy_pct", "97.5".into()),
        ("slow_batches", "3".into()),
    ];
    for (column, value) in expected {
        assert_eq!(row.get(column), Some(&value), "column {column}");
    }
    // Exit rates: the final exit is the largest seen in either run (3). Simulated: exit points
    // i % 4, 5 of 21 at 3; live: 10 of 41 at 3.
    let rate = |c: &str| -> f64 { row[c].parse().expect("a number") };
    assert!((rate("live_exit_rate_pct") - 100.0 * 31.0 / 41.0).abs() < 1e-9);
    assert!((rate("simulated_exit_rate_pct") - 100.0 * 16.0 / 21.0).abs() < 1e-9);
    let md = std::fs::read_to_string(dir.join("with/tables/live_vs_simulated.md")).expect("md");
    assert!(
        md.contains("| 7.50 | 6.00 | 20.00 | 16.00 | 32.00 | 16.00 | 1.25 | 1.25 |"),
        "{md}"
    );

    // The figure, and the report lists both.
    for ext in ["png", "svg"] {
        let f = dir.join(format!("with/figures/live_vs_simulated_cdf.{ext}"));
        assert!(non_empty(&f), "{} written", f.display());
    }
    let report_md = std::fs::read_to_string(dir.join("with/report.md")).expect("report.md");
    assert!(report_md.contains("## Live against simulated"));
    assert!(report_md.contains("figures/live_vs_simulated_cdf.png"));
    assert!(report_md.contains("`tables/live_vs_simulated.csv`"));
    assert!(
        report_md.contains("Coverage: 2 of 2 tasks"),
        "coverage counts the live task"
    );

    // Every other table and figure is byte for byte what it was without the live task.
    let before = files_under(&dir.join("without"));
    let after = files_under(&dir.join("with"));
    let is_live_file = |p: &Path| {
        p.file_stem()
            .is_some_and(|s| s.to_string_lossy().starts_with("live_vs_simulated"))
    };
    let kept = |m: &BTreeMap<PathBuf, Vec<u8>>| -> BTreeMap<PathBuf, Vec<u8>> {
        m.iter()
            .filter(|(p, _)| {
                (p.starts_with("tables") || p.starts_with("figures")) && !is_live_file(p)
            })
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect()
    };
    let (before, after) = (kept(&before), kept(&after));
    assert!(before.keys().any(|p| p.ends_with("tasks.csv")));
    assert!(before.keys().any(|p| p.ends_with("output_cv.txt")));
    assert!(before.keys().any(|p| p.ends_with("fig12_cv_wins.svg")));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the same tables and figures (no per-task figure for the live task)"
    );
    for (p, b) in &before {
        assert!(
            after[p] == *b,
            "{} changed with a live task present",
            p.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_live_task_without_a_simulated_partner_is_shown_with_empty_simulated_columns() {
    let dir = fresh_temp_dir("live-alone");
    let results = dir.join("results");
    let live_dir = write_task(
        &results,
        Storage::Plain,
        live_spec(),
        &live_rows(),
        95.25,
        &live_files(),
    );
    let out = Command::new(analysis_bin())
        .args(["report", "--results"])
        .arg(&results)
        .output()
        .expect("analysis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 of 1 tasks (1 live), 0 problem(s)"),
        "{stdout}"
    );
    let report = results.join("report");
    let table = read_csv(&report.join("tables/live_vs_simulated.csv"));
    assert_eq!(table.len(), 1);
    let row = &table[0];
    assert_eq!(
        row["key"],
        live_dir.file_name().expect("key").to_string_lossy()
    );
    assert_eq!(row["live_p50_ms"], "7.5");
    assert_eq!(row["live_p95_ms"], "20");
    for column in [
        "simulated_key",
        "simulated_served",
        "simulated_p50_ms",
        "simulated_p95_ms",
        "simulated_p99_ms",
        "p50_ratio",
        "p95_ratio",
        "simulated_accuracy_pct",
        "simulated_exit_rate_pct",
    ] {
        assert_eq!(row[column], "", "column {column} is null");
    }
    // Without a partner the final exit is the largest the live run saw (3).
    let live_rate: f64 = row["live_exit_rate_pct"].parse().expect("a number");
    assert!((live_rate - 100.0 * 31.0 / 41.0).abs() < 1e-9);
    assert!(non_empty(&report.join("figures/live_vs_simulated_cdf.png")));
    assert!(non_empty(&report.join("figures/live_vs_simulated_cdf.svg")));
    // No paper table holds it.
    assert_eq!(read_csv(&report.join("tables/tasks.csv")).len(), 0);
    assert!(!report.join("tables/output_cv.txt").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_malformed_or_interrupted_serve_json_is_refused_with_one_line_naming_it() {
    let dir = fresh_temp_dir("live-serve-json");
    let results = dir.join("results");
    write_task(
        &results,
        Storage::Plain,
        live_spec(),
        &live_rows(),
        95.25,
        &live_files(),
    );
    let inv = analysis::load::discover(&results).expect("discover");
    assert_eq!(
        (inv.tasks.len(), inv.live.len()),
        (0, 1),
        "{:?}",
        inv.problems
    );
    let good = analysis::live::read_serve(&inv.live[0]).expect("serve.json");
    assert_eq!((good.served, good.slow_batches), (Some(41), Some(3)));
    // The same task read from a folder whose serve.json is not one, or says interrupted.
    let mut task = inv.live[0].clone();
    task.dir = dir.join("other");
    std::fs::create_dir_all(&task.dir).expect("folder");
    let serve = task.dir.join("serve.json");
    std::fs::write(&serve, "{\"served\": \"many\"}").expect("write");
    let p = analysis::live::read_serve(&task).expect_err("malformed");
    assert_eq!(p.path, serve);
    assert!(
        p.message.contains("not a serve.json") && p.message.contains("column"),
        "{p}"
    );
    assert!(!p.message.contains('\n'));
    std::fs::write(&serve, "{\"served\": 3, \"interrupted\": true}").expect("write");
    let p = analysis::live::read_serve(&task).expect_err("interrupted");
    assert!(p.message.contains("interrupted"), "{p}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_and_simulated_tasks_stored_compressed_give_the_plain_folders_table() {
    let dir = fresh_temp_dir("live-zstd");
    for (name, storage) in [("plain", Storage::Plain), ("zstd", Storage::Zstd)] {
        let results = dir.join(name);
        write_task(&results, storage, spec(), &simulated_rows(), 97.5, &[]);
        let live = write_task(
            &results,
            storage,
            live_spec(),
            &live_rows(),
            95.25,
            &live_files(),
        );
        assert_eq!(
            live.join("log.txt.zst").is_file(),
            storage == Storage::Zstd,
            "stored as asked"
        );
        let outcome = report(&results, &dir.join(format!("{name}-report")));
        assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
        assert_eq!((outcome.tasks, outcome.live), (2, 1));
    }
    let table = |name: &str| {
        std::fs::read(dir.join(format!("{name}-report/tables/live_vs_simulated.csv")))
            .expect("table")
    };
    assert_eq!(table("plain"), table("zstd"));
    assert_eq!(
        read_csv(&dir.join("zstd-report/tables/live_vs_simulated.csv"))[0]
            ["simulated_accuracy_pct"],
        "97.5"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
