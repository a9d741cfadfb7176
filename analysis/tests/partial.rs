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
