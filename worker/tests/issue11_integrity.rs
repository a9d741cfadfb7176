//! Issue #11, item 1: a task folder counts as complete only when it holds exactly the files a
//! real run of its task produces, each with the size and SHA-256 its manifest lists, under a
//! manifest that is the task's own. Every forgery below was taken as complete before the fix;
//! now it is invalid, `worker plan` says why, and `worker --local` runs the task again and
//! replaces the folder with a real result.

use crate::util::{copy_tree, fresh_temp_dir};
use crate::util::{one_task_plan, write_one_task_spec};
use apparate::results::{
    Manifest, ManifestProblem, ResultFile, ResultsDir, TaskStatus, Timings, MANIFEST_FILE,
};
use apparate::sweep::digest::sha256_hex;
use apparate::sweep::{Plan, PlannedTask};
use apparate::task::RESULT_FILES;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_worker")
}

/// A results directory with one real, complete run of the one-task plan (made once).
fn pristine() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let plan = one_task_plan();
        let task = plan.task(0).expect("task");
        let root = fresh_temp_dir("issue11-pristine");
        let writer = ResultsDir::new(&root).lock().expect("lock");
        apparate::local::execute(&task, &writer, plan.code_version()).expect("the task runs");
        root
    })
}

/// A fresh copy of the pristine results directory, its plan, task and task folder.
fn copy(tag: &str) -> (PathBuf, Plan, PlannedTask, PathBuf) {
    let plan = one_task_plan();
    let task = plan.task(0).expect("task");
    let root = fresh_temp_dir(&format!("issue11-{tag}"));
    copy_tree(pristine(), &root);
    let _ = std::fs::remove_file(root.join(".lock"));
    let dir = ResultsDir::new(&root).task_dir(&task.key);
    assert!(
        matches!(
            ResultsDir::new(&root).status(&task, plan.code_version()),
            TaskStatus::Complete(_)
        ),
        "the copy starts complete"
    );
    (root, plan, task, dir)
}

fn read_manifest(dir: &Path) -> Manifest {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).expect("manifest");
    apparate::results::parse_manifest(&path, &bytes).expect("parses")
}

fn write_manifest(dir: &Path, m: &Manifest) {
    let mut text = serde_json::to_string_pretty(m).expect("json");
    text.push('\n');
    std::fs::write(dir.join(MANIFEST_FILE), text).expect("write manifest");
}

/// The status of the task in `root`, which must be invalid; returns the problem's text.
fn invalid(root: &Path, plan: &Plan, task: &PlannedTask) -> (ManifestProblem, String) {
    match ResultsDir::new(root).status(task, plan.code_version()) {
        TaskStatus::Invalid(p) => {
            let text = p.to_string();
            (p, text)
        }
        other => panic!("expected an invalid task folder, got {other:?}"),
    }
}

/// `worker plan` calls the task invalid; `worker --local` runs it again and leaves a real,
/// complete result (exactly the task's files, matching the pristine run byte for byte).
fn rerun_replaces_it(root: &Path, task: &PlannedTask, expect_in_plan: &str) {
    let spec = write_one_task_spec(root);
    let plan_out = Command::new(worker_bin())
        .args(["plan", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(root)
        .output()
        .expect("worker plan");
    let stdout = String::from_utf8_lossy(&plan_out.stdout);
    assert!(
        stdout.contains(task.key.as_str())
            && stdout.contains("invalid (")
            && stdout.contains(expect_in_plan),
        "worker plan must call the task invalid ({expect_in_plan}):\n{stdout}"
    );
    let run = Command::new(worker_bin())
        // The pristine result is plain: so is the rerun, to compare them byte for byte.
        .args([
            "--local",
            "--no-report",
            "--jobs",
            "1",
            "--store",
            "plain",
            "--spec",
        ])
        .arg(&spec)
        .arg("--out")
        .arg(root)
        .output()
        .expect("worker --local");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let dir = ResultsDir::new(root).task_dir(&task.key);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("task folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = RESULT_FILES.iter().map(|s| s.to_string()).collect();
    expected.push(MANIFEST_FILE.to_string());
    expected.sort();
    assert_eq!(names, expected);
    let pristine_dir = ResultsDir::new(pristine()).task_dir(&task.key);
    for name in RESULT_FILES {
        let meta = std::fs::symlink_metadata(dir.join(name)).expect("file");
        assert!(meta.file_type().is_file(), "{name} is a regular file");
        assert_eq!(
            std::fs::read(dir.join(name)).expect("new"),
            std::fs::read(pristine_dir.join(name)).expect("pristine"),
            "{name} is the real run's"
        );
    }
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn issue11_a_folder_with_one_foreign_file_and_a_manifest_listing_it_is_not_complete() {
    let (root, plan, task, dir) = copy("evil-only");
    // The issue's forgery: tasks/<key>/{evil.txt, manifest.json}, the manifest the task's own
    // (key, spec, digests, code version), listing evil.txt with its true size and digest.
    std::fs::remove_dir_all(&dir).expect("clear");
    std::fs::create_dir(&dir).expect("folder");
    let evil = b"not a result\n";
    std::fs::write(dir.join("evil.txt"), evil).expect("evil");
    let files = vec![ResultFile {
        name: "evil.txt".into(),
        bytes: evil.len() as u64,
        sha256: sha256_hex(evil),
    }];
    let timings = Timings {
        started_unix_ms: 0,
        run_ms: 0,
        total_ms: 0,
    };
    let m = Manifest::new(&task, plan.code_version(), files, 1, vec![], timings);
    write_manifest(&dir, &m);
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::FileSet { .. }), "{p:?}");
    assert!(
        text.contains("lists the files [evil.txt], expected exactly [baselines.json"),
        "{text}"
    );
    rerun_replaces_it(&root, &task, "evil.txt");
}

#[test]
fn issue11_an_extra_file_beside_a_real_result_is_not_complete() {
    let (root, plan, task, dir) = copy("extra");
    std::fs::write(dir.join("evil.txt"), "extra\n").expect("evil");
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::FileSet { .. }), "{p:?}");
    assert!(
        text.contains("evil.txt: not a file a task produces"),
        "{text}"
    );
    rerun_replaces_it(&root, &task, "evil.txt");
}

#[test]
fn issue11_a_result_file_changed_at_the_same_size_is_not_complete() {
    let (root, plan, task, dir) = copy("same-size");
    let path = dir.join("summary.json");
    let mut bytes = std::fs::read(&path).expect("summary");
    let at = bytes
        .iter()
        .position(|b| b.is_ascii_digit())
        .expect("a digit");
    bytes[at] = if bytes[at] == b'9' {
        b'8'
    } else {
        bytes[at] + 1
    };
    std::fs::write(&path, &bytes).expect("tamper");
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::Digest { .. }), "{p:?}");
    assert!(
        text.contains("summary.json: SHA-256 is ") && text.contains("the manifest lists"),
        "{text}"
    );
    rerun_replaces_it(&root, &task, "SHA-256");
}

#[test]
fn issue11_a_result_file_that_is_a_link_to_a_true_copy_is_not_complete() {
    let (root, plan, task, dir) = copy("file-link");
    let outside = root.join("outside-log.txt");
    std::fs::copy(dir.join("log.txt"), &outside).expect("copy");
    std::fs::remove_file(dir.join("log.txt")).expect("remove");
    std::os::unix::fs::symlink(&outside, dir.join("log.txt")).expect("link");
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::File { .. }), "{p:?}");
    assert!(
        text.contains("log.txt: expected") && text.contains("symbolic link"),
        "{text}"
    );
    rerun_replaces_it(&root, &task, "symbolic link");
}

#[test]
fn issue11_a_manifest_with_another_spec_or_other_input_digests_under_the_same_key_is_not_complete()
{
    let (root, plan, task, dir) = copy("spec");
    let real = read_manifest(&dir);
    let mut m = real.clone();
    m.spec.params.batch_size = 8;
    write_manifest(&dir, &m);
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::NotThisTask { .. }), "{p:?}");
    assert!(
        text.contains("task spec is not the planned task's"),
        "{text}"
    );
    let mut m = real.clone();
    if let Some(d) = m.digests.values_mut().next() {
        *d = sha256_hex(b"other input");
    }
    write_manifest(&dir, &m);
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::NotThisTask { .. }), "{p:?}");
    assert!(
        text.contains("input digests are not the planned task's"),
        "{text}"
    );
    // Without the plan (as the analysis reads it), the key no longer matches the manifest's
    // own spec and digests.
    match apparate::results::verify_task_dir(&dir, None, apparate::results::Digests::Verify) {
        Err(ManifestProblem::NotThisTask { what, .. }) => {
            assert!(what.contains("give the key"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    rerun_replaces_it(&root, &task, "input digests");
}

#[test]
fn issue11_a_task_folder_that_is_a_link_to_a_complete_result_is_not_complete() {
    let (root, plan, task, dir) = copy("folder-link");
    let elsewhere = fresh_temp_dir("issue11-elsewhere").join("result");
    std::fs::rename(&dir, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &dir).expect("link");
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::NotAFolder { .. }), "{p:?}");
    assert!(
        text.contains("expected a folder, found a symbolic link"),
        "{text}"
    );
    // The rerun replaces the link; the folder it pointed to is left as it was.
    rerun_replaces_it(&root, &task, "symbolic link");
    let pristine_dir = ResultsDir::new(pristine()).task_dir(&task.key);
    for name in RESULT_FILES.iter().chain([&MANIFEST_FILE]) {
        assert_eq!(
            std::fs::read(elsewhere.join(name)).expect("kept"),
            std::fs::read(pristine_dir.join(name)).expect("pristine"),
            "{name} behind the link is untouched"
        );
    }
    if let Some(parent) = elsewhere.parent() {
        let _ = std::fs::remove_dir_all(parent);
    }
}

#[test]
fn issue11_a_manifest_that_is_a_link_or_lists_a_file_twice_is_not_complete() {
    let (root, plan, task, dir) = copy("manifest-link");
    let real = read_manifest(&dir);
    let outside = root.join("manifest-elsewhere.json");
    std::fs::rename(dir.join(MANIFEST_FILE), &outside).expect("move");
    std::os::unix::fs::symlink(&outside, dir.join(MANIFEST_FILE)).expect("link");
    let (p, _) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::Unreadable { .. }), "{p:?}");
    std::fs::remove_file(dir.join(MANIFEST_FILE)).expect("unlink");
    let mut m = real;
    let first = m.files[0].clone();
    m.files.push(first);
    write_manifest(&dir, &m);
    let (p, _) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::FileSet { .. }), "{p:?}");
    rerun_replaces_it(&root, &task, "expected exactly");
}

#[test]
fn issue11_a_manifest_whose_outcome_is_not_its_files_is_not_complete() {
    let (root, plan, task, dir) = copy("outcome");
    let real = read_manifest(&dir);
    // Forged summary lines (what `output_<grid>.txt` is made of).
    let mut m = real.clone();
    m.summary_lines = vec!["resnet18 auburn 99.99 99.99".into()];
    write_manifest(&dir, &m);
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::NotThisTask { .. }), "{p:?}");
    assert!(
        text.contains("summary lines are not the last lines of log.txt"),
        "{text}"
    );
    // Another request count.
    let mut m = real;
    m.num_requests += 1;
    write_manifest(&dir, &m);
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::NotThisTask { .. }), "{p:?}");
    assert!(text.contains("summary.json says"), "{text}");
    rerun_replaces_it(&root, &task, "summary.json says");
}

#[test]
fn issue11_fifos_and_an_oversized_manifest_are_refused_without_hanging() {
    let (root, plan, task, dir) = copy("fifo");
    // A FIFO in place of a result file, and one beside it: never opened.
    std::fs::remove_file(dir.join("log.txt")).expect("remove");
    let mkfifo = |p: &Path| {
        let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo runs");
        assert!(ok.success());
    };
    mkfifo(&dir.join("log.txt"));
    let (p, _) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::File { .. }), "{p:?}");
    std::fs::remove_file(dir.join("log.txt")).expect("remove");
    let pristine_dir = ResultsDir::new(pristine()).task_dir(&task.key);
    std::fs::copy(pristine_dir.join("log.txt"), dir.join("log.txt")).expect("restore");
    mkfifo(&dir.join("evil"));
    let (p, _) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::FileSet { .. }), "{p:?}");
    std::fs::remove_file(dir.join("evil")).expect("remove");
    // A manifest far larger than any real one is not read into memory.
    let f = std::fs::File::create(dir.join(MANIFEST_FILE)).expect("manifest");
    f.set_len(1 << 40).expect("sparse 1 TiB");
    let (p, text) = invalid(&root, &plan, &task);
    assert!(matches!(p, ManifestProblem::Unreadable { .. }), "{p:?}");
    assert!(text.contains("more than any"), "{text}");
    rerun_replaces_it(&root, &task, "more than any");
}
