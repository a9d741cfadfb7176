//! Issue #11: the report never writes through a symbolic link (a linked output file is
//! replaced, a linked folder is refused with a message naming it), and a task folder counts
//! only when it passes the workers' completeness check (exactly the files a task produces, each
//! with the size and SHA-256 its manifest lists).

use crate::util::{copy_subset, fresh_temp_dir};
use std::path::{Path, PathBuf};

const PRECIOUS: &str = "precious: must never be written through a link\n";

fn victim(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, PRECIOUS).expect("victim");
    p
}

fn report(results: &Path) -> Result<analysis::ReportOutcome, analysis::AnalysisError> {
    analysis::build_report(&analysis::ReportOptions {
        results: results.to_path_buf(),
        out: None,
        jobs: Some(1),
    })
}

fn task_dirs(results: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(results.join("tasks"))
        .expect("tasks")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn issue11_linked_report_files_are_replaced_never_written_through() {
    let base = fresh_temp_dir("issue11-report-files");
    let results = base.join("results");
    copy_subset(2, &results);
    let out = results.join("report");
    std::fs::create_dir_all(out.join("figures")).expect("report dirs");
    let links = [
        out.join("report.md"),
        out.join("report.html"),
        out.join("figures/fig12_cv_wins.png"),
        out.join("figures/fig12_cv_wins.svg"),
    ];
    let mut victims = Vec::new();
    for (i, l) in links.iter().enumerate() {
        let v = victim(&base, &format!("victim-{i}"));
        std::os::unix::fs::symlink(&v, l).expect("link");
        victims.push(v);
    }
    report(&results).expect("report builds");
    for v in &victims {
        assert_eq!(
            std::fs::read_to_string(v).expect("victim"),
            PRECIOUS,
            "{}",
            v.display()
        );
    }
    for l in &links {
        let m = std::fs::symlink_metadata(l).expect("written");
        assert!(
            m.file_type().is_file(),
            "{} is a regular file now",
            l.display()
        );
    }
    assert!(std::fs::read_to_string(&links[0])
        .expect("report.md")
        .contains("Coverage"));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn issue11_a_linked_report_folder_is_refused_naming_it() {
    let base = fresh_temp_dir("issue11-report-folder");
    let results = base.join("results");
    copy_subset(1, &results);
    for linked in [results.join("report"), results.join("report/figures")] {
        let elsewhere = base.join(format!(
            "elsewhere-{}",
            linked.file_name().expect("name").to_string_lossy()
        ));
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        if let Some(parent) = linked.parent() {
            std::fs::create_dir_all(parent).expect("parent");
        }
        std::os::unix::fs::symlink(&elsewhere, &linked).expect("link");
        let err = report(&results).expect_err("a linked folder is refused");
        let text = err.to_string();
        assert!(
            text.contains(&linked.display().to_string()) && text.contains("symbolic link"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("elsewhere").count(),
            0,
            "nothing written behind {}",
            linked.display()
        );
        std::fs::remove_file(&linked).expect("unlink");
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn issue11_tasks_with_a_foreign_file_or_same_size_tampering_are_skipped_and_named() {
    let base = fresh_temp_dir("issue11-report-integrity");
    let results = base.join("results");
    copy_subset(3, &results);
    let dirs = task_dirs(&results);
    // An extra file beside a real result.
    let extra = dirs[0].join("evil.txt");
    std::fs::write(&extra, "extra\n").expect("evil");
    // batches.jsonl changed at the same size (the report reads it for the timelines).
    let tampered = dirs[1].join("batches.jsonl");
    let mut bytes = std::fs::read(&tampered).expect("batches");
    let at = bytes
        .iter()
        .position(|b| b.is_ascii_digit())
        .expect("digit");
    bytes[at] = if bytes[at] == b'9' {
        b'8'
    } else {
        bytes[at] + 1
    };
    std::fs::write(&tampered, &bytes).expect("tamper");
    let outcome = report(&results).expect("report builds");
    assert_eq!(outcome.tasks, 1, "only the untouched task counts");
    let named: Vec<&Path> = outcome.problems.iter().map(|p| p.path.as_path()).collect();
    assert!(named.contains(&extra.as_path()), "{:?}", outcome.problems);
    assert!(
        named.contains(&tampered.as_path()),
        "{:?}",
        outcome.problems
    );
    let _ = std::fs::remove_dir_all(&base);
}
