//! The results directory: manifest format versions (a frozen v1 fixture), completeness checks,
//! the writer's lock.

use crate::util::{fresh_temp_dir, one_task_plan};
use apparate::results::{
    parse_manifest, FormatVersion, ManifestProblem, ResultsDir, ResultsError, TaskStatus,
    FORMAT_VERSION,
};
use std::path::{Path, PathBuf};

fn fixture() -> (PathBuf, Vec<u8>) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results/manifest-v1.json");
    let bytes = std::fs::read(&path).expect("fixture");
    (path, bytes)
}

#[test]
fn the_frozen_v1_manifest_is_still_read() {
    let (path, bytes) = fixture();
    let m = parse_manifest(&path, &bytes).expect("v1 manifest parses");
    assert_eq!(m.version, FormatVersion { major: 1, minor: 0 });
    assert_eq!(
        m.key.as_str(),
        "cv-resnet18-auburn-fixed_30-slo1-bs4-6d69c79099ec1044"
    );
    assert_eq!(m.spec.model, "resnet18");
    assert_eq!(m.files.len(), 6);
    assert_eq!(m.summary_lines.len(), 1);
    assert_eq!(m.digests.len(), 17);
    assert_eq!(m.timings.run_ms, 1400);
}

#[test]
fn a_manifest_of_a_newer_major_is_refused_naming_both_versions_and_a_newer_minor_is_read() {
    let (path, bytes) = fixture();
    let text = String::from_utf8(bytes).expect("utf-8");
    let newer = text.replace("\"version\": \"1.0\"", "\"version\": \"2.0\"");
    let err = parse_manifest(&path, newer.as_bytes()).expect_err("newer major");
    assert!(matches!(err, ManifestProblem::NewerVersion { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("version 2.0 is newer than this worker's 1.0"),
        "{msg}"
    );
    // A newer minor may add fields; an older reader ignores them.
    let minor = text
        .replace("\"version\": \"1.0\"", "\"version\": \"1.7\"")
        .replace(
            "\"status\": \"complete\",",
            "\"status\": \"complete\",\n  \"extra\": 1,",
        );
    parse_manifest(&path, minor.as_bytes()).expect("newer minor is read");
    let other = text.replace("apparate-rs/task-manifest", "something-else");
    assert!(matches!(
        parse_manifest(&path, other.as_bytes()),
        Err(ManifestProblem::WrongFormat { .. })
    ));
    assert!(matches!(
        parse_manifest(&path, &text.as_bytes()[..100]),
        Err(ManifestProblem::Malformed { .. })
    ));
}

#[test]
fn a_task_counts_as_complete_only_with_a_matching_manifest_and_all_its_files() {
    let plan = one_task_plan();
    let task = plan.task(0).expect("task");
    let cv = plan.code_version();
    let root = fresh_temp_dir("results-status");
    let dir = ResultsDir::new(&root);
    assert!(matches!(dir.status(&task, cv), TaskStatus::Missing));
    let writer = dir.lock().expect("lock");
    // A real run of the task, committed.
    let manifest = apparate::local::execute(&task, &writer, cv).expect("the task runs");
    let names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, apparate::task::RESULT_FILES);
    assert!(
        std::fs::read_dir(dir.staging_root())
            .expect("staging")
            .next()
            .is_none(),
        "staging folder renamed away"
    );
    match dir.status(&task, cv) {
        TaskStatus::Complete(m) => assert_eq!(m.summary_lines, manifest.summary_lines),
        other => panic!("{other:?}"),
    }
    // Another code version: not complete.
    assert!(matches!(
        dir.status(&task, "9.9.9+results.9"),
        TaskStatus::Invalid(ManifestProblem::Mismatch { .. })
    ));
    // A truncated result file: not complete, the message names the file.
    let log = dir.task_dir(&task.key).join("log.txt");
    let size = std::fs::metadata(&log).expect("log").len();
    std::fs::write(&log, "hel").expect("truncate");
    match dir.status(&task, cv) {
        TaskStatus::Invalid(p @ ManifestProblem::File { .. }) => {
            let expected = format!("log.txt: expected {size} bytes, found 3");
            assert!(p.to_string().contains(&expected), "{p}")
        }
        other => panic!("{other:?}"),
    }
    // Running it again replaces the incomplete folder.
    apparate::local::execute(&task, &writer, cv).expect("the task runs again");
    assert!(matches!(dir.status(&task, cv), TaskStatus::Complete(_)));
    drop(writer);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn one_writer_at_a_time_and_staging_debris_is_cleared_by_the_next() {
    let root = fresh_temp_dir("results-lock");
    let dir = ResultsDir::new(&root);
    let first = dir.lock().expect("first lock");
    match dir.lock() {
        Err(ResultsError::InUse { holder, .. }) => {
            assert_eq!(holder, format!("pid {}", std::process::id()))
        }
        other => panic!("second writer must be refused: {other:?}"),
    }
    let debris = dir.staging_root().join("some-key-12345");
    std::fs::create_dir_all(&debris).expect("debris");
    std::fs::write(debris.join("log.txt"), "partial").expect("debris file");
    drop(first);
    let _second = dir.lock().expect("lock after release");
    assert!(!debris.exists(), "staging debris cleared");
    assert!(dir.staging_root().is_dir());
    assert_eq!(FORMAT_VERSION.to_string(), "1.0");
    let _ = std::fs::remove_dir_all(&root);
}
