//! Partial results (half the grid) with one corrupt task file: the report is still produced,
//! counts what is there against the plan, and names the corrupt file.

use crate::util::{analysis_bin, copy_subset, copy_tree, fresh_temp_dir, small_grid};
use std::process::Command;

#[test]
fn half_the_tasks_and_one_corrupt_file_still_give_a_report_naming_the_file() {
    let src = small_grid();
    let dir = fresh_temp_dir("partial");
    std::fs::copy(src.join("sweep.json"), dir.join("sweep.json")).expect("sweep.json");
    let mut keys: Vec<_> = std::fs::read_dir(src.join("tasks"))
        .expect("tasks")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| !n.to_string_lossy().starts_with('.'))
        .collect();
    keys.sort();
    let kept: Vec<_> = keys.iter().step_by(2).collect();
    assert_eq!(kept.len(), 28);
    for k in &kept {
        copy_tree(&src.join("tasks").join(k), &dir.join("tasks").join(k));
    }
    // Same size (the manifest's size check passes), not Parquet any more.
    let corrupt = dir.join("tasks").join(kept[3]).join("requests.parquet");
    let len = std::fs::metadata(&corrupt).expect("parquet").len() as usize;
    std::fs::write(&corrupt, vec![b'x'; len]).expect("corrupt");
    let out = Command::new(analysis_bin())
        .args(["report", "--results"])
        .arg(&dir)
        .output()
        .expect("analysis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("27 of 56 tasks"), "{stdout}");
    let name = corrupt.display().to_string();
    assert!(stderr.contains(&name), "stderr names the file: {stderr}");
    let md = std::fs::read_to_string(dir.join("report/report.md")).expect("report.md");
    assert!(md.contains("Coverage: 27 of 56 tasks"), "coverage line");
    assert!(md.contains(&name), "report.md names the corrupt file");
    let html = std::fs::read_to_string(dir.join("report/report.html")).expect("report.html");
    assert!(html.contains(&name), "report.html names the corrupt file");
    assert!(dir.join("report/figures/fig12_cv_wins.png").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_manifest_is_skipped_and_named() {
    let dir = fresh_temp_dir("broken-manifest");
    copy_subset(6, &dir);
    let victim = std::fs::read_dir(dir.join("tasks"))
        .expect("tasks")
        .map(|e| e.expect("entry").path())
        .find(|p| p.join("manifest.json").is_file())
        .expect("a task");
    std::fs::write(victim.join("manifest.json"), b"{\"format\": 3").expect("truncate");
    let outcome = analysis::build_report(&analysis::ReportOptions {
        results: dir.clone(),
        out: None,
        jobs: Some(1),
    })
    .expect("report builds");
    assert_eq!((outcome.tasks, outcome.planned), (5, 56));
    assert_eq!(outcome.problems.len(), 1);
    assert_eq!(outcome.problems[0].path, victim.join("manifest.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_folder_that_is_not_a_results_directory_is_an_error() {
    let dir = fresh_temp_dir("not-results");
    let err = analysis::build_report(&analysis::ReportOptions {
        results: dir.clone(),
        out: None,
        jobs: None,
    })
    .expect_err("no tasks/");
    assert!(err.to_string().contains("no tasks/ folder"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A change to a task's rows.
type Poison = fn(&mut [apparate::output::RequestRow]);

/// Rewrites `task`'s `requests.parquet` with `poison` applied to its rows, and its manifest's
/// size for the file (so that only the values are wrong).
fn rewrite_requests(task: &std::path::Path, poison: impl Fn(&mut [apparate::output::RequestRow])) {
    use apparate::output::{read_requests_parquet, write_requests_parquet, ExtraColumns};
    let path = task.join("requests.parquet");
    let mut rows = read_requests_parquet(&path).expect("rows");
    poison(&mut rows);
    let requests = apparate::sim::record::Requests {
        batch: rows.iter().map(|r| r.batch as u32).collect(),
        batch_size: rows.iter().map(|r| r.batch_size as u32).collect(),
        exit_point: rows.iter().map(|r| r.exit_point as usize).collect(),
        correct: rows.iter().map(|r| r.correct).collect(),
        inference_ms: rows.iter().map(|r| r.inference_ms).collect(),
        vanilla_ms: rows.iter().map(|r| r.vanilla_ms).collect(),
    };
    let extra = ExtraColumns {
        queueing_ms: Some(rows.iter().map(|r| r.queueing_ms).collect()),
        optimal_ms: Some(rows.iter().map(|r| r.optimal_ms.unwrap_or(0.0)).collect()),
        static_ms: Some(rows.iter().map(|r| r.static_ms.unwrap_or(0.0)).collect()),
        static_correct: Some(
            rows.iter()
                .map(|r| r.static_correct.unwrap_or(false))
                .collect(),
        ),
    };
    write_requests_parquet(&path, &requests, &extra).expect("write");
    set_listed_size(task, "requests.parquet");
}

/// Lists the file `name` of `task` in its manifest with its current size and SHA-256, as a run
/// that had written these bytes would (the poisoned rows are then judged as data, not as a
/// tampered file).
fn set_listed_size(task: &std::path::Path, name: &str) {
    let bytes = std::fs::metadata(task.join(name)).expect("size").len();
    let sha256 = apparate::sweep::digest::file_sha256(&task.join(name)).expect("digest");
    let mpath = task.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&mpath).expect("manifest")).expect("json");
    for f in manifest["files"].as_array_mut().expect("files") {
        if f["name"] == name {
            f["bytes"] = bytes.into();
            f["sha256"] = sha256.clone().into();
        }
    }
    std::fs::write(&mpath, serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
}

/// Every file the report wrote, as text (figures' SVGs included; PNGs are skipped).
fn report_texts(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x != "png") {
                out.push((p.clone(), std::fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    out
}

/// Issue #11 item 8: tasks whose rows hold NaN, infinite, absurd (-1e308) or zero latencies are
/// skipped and listed as problems by task key; no table, figure or document shows such a
/// number, and the count of problems says so.
#[test]
fn issue11_non_finite_latencies_skip_the_task_and_are_named_as_problems() {
    let dir = fresh_temp_dir("non-finite");
    copy_subset(6, &dir);
    let mut tasks: Vec<_> = std::fs::read_dir(dir.join("tasks"))
        .expect("tasks")
        .map(|e| e.expect("entry").path())
        .collect();
    tasks.sort();
    let poisons: [(&str, Poison); 4] = [
        ("inference_ms", |rows| rows[3].inference_ms = f64::NAN),
        ("vanilla_ms", |rows| {
            for r in rows.iter_mut().step_by(2) {
                r.vanilla_ms = -1e308;
            }
        }),
        ("queueing_ms", |rows| {
            rows[0].queueing_ms = Some(f64::INFINITY)
        }),
        // Finite, but a win over a zero vanilla latency would be NaN.
        ("vanilla_ms", |rows| {
            for r in rows.iter_mut() {
                r.vanilla_ms = 0.0;
            }
        }),
    ];
    for (task, (_, poison)) in tasks.iter().zip(poisons) {
        rewrite_requests(task, poison);
    }
    // A good task whose batches.jsonl holds a NaN threshold (the worker's layout, which the
    // fast reader parses): its timeline is left out and named, the task stays.
    let batches = tasks[4].join("batches.jsonl");
    let text = std::fs::read_to_string(&batches).expect("batches");
    let line = text
        .lines()
        .position(|l| !l.contains("\"thresholds\":[]"))
        .expect("a batch with ramps");
    let poisoned: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i != line {
                return l.to_string();
            }
            let at = l.find("\"thresholds\":[").expect("thresholds") + 14;
            let end = at + l[at..].find([',', ']']).expect("value end");
            format!("{}NaN{}", &l[..at], &l[end..])
        })
        .collect();
    std::fs::write(&batches, poisoned.join("\n") + "\n").expect("write");
    set_listed_size(&tasks[4], "batches.jsonl");
    let outcome = analysis::build_report(&analysis::ReportOptions {
        results: dir.clone(),
        out: None,
        jobs: Some(2),
    })
    .expect("report builds");
    assert_eq!((outcome.tasks, outcome.planned), (2, 56));
    assert_eq!(outcome.problems.len(), 5, "{:?}", outcome.problems);
    let timeline = outcome
        .problems
        .iter()
        .find(|p| p.path == batches)
        .expect("timeline problem");
    assert!(
        timeline
            .message
            .contains(&format!("line {}: the threshold of ramp", line + 1))
            && timeline.message.contains("timeline left out"),
        "{timeline}"
    );
    for (task, (column, _)) in tasks.iter().zip(poisons) {
        let key = task
            .file_name()
            .expect("key")
            .to_string_lossy()
            .into_owned();
        let p = outcome
            .problems
            .iter()
            .find(|p| p.path == task.join("requests.parquet"))
            .unwrap_or_else(|| panic!("no problem for {key}: {:?}", outcome.problems));
        assert!(
            p.message.contains(&format!("task {key} skipped"))
                && p.message.contains(&format!("column {column}")),
            "{p}"
        );
    }
    let md = std::fs::read_to_string(dir.join("report/report.md")).expect("report.md");
    assert!(md.contains("Coverage: 2 of 56 tasks"), "coverage");
    for (path, text) in report_texts(&dir.join("report")) {
        for bad in ["NaN", "nan", "inf", "e308", "e+308"] {
            // Word-ish match: `inf` must not match e.g. `inference_ms` or `info`.
            let hit = text.match_indices(bad).any(|(i, _)| {
                let after = text[i + bad.len()..].chars().next();
                let before = text[..i].chars().next_back();
                !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !before.is_some_and(|c| c.is_ascii_alphabetic())
            });
            assert!(!hit, "{} shows {bad:?}", path.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
