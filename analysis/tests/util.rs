//! Shared fixtures.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The paper's grid (48 CV + 8 NLP tasks) at this scale: 1,400 frames per video, about 5,000 /
/// 3,600 reviews. Small enough for debug builds, big enough for every figure.
pub const SCALE: f64 = 0.02;

/// A spec of the paper's grid at [`SCALE`] (specs/paper.toml with another scale and name).
pub fn small_spec_text() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("specs/paper.toml")).expect("specs/paper.toml");
    text.replace("scale = 1.0", &format!("scale = {SCALE}"))
        .replace("name = \"paper\"", "name = \"paper-small\"")
}

/// A fresh, empty folder under the system temp dir, unique to this process and `tag`.
pub fn fresh_temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("analysis-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Runs a spec with the worker library into `out`.
pub fn run_spec(text: &str, out: &Path) {
    let spec = apparate::sweep::SweepSpec::from_toml(text, "test spec", Path::new("."))
        .expect("valid spec");
    let plan = spec.plan().expect("plan");
    let dir = apparate::results::ResultsDir::new(out);
    let writer = dir.lock().expect("lock results dir");
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let report = apparate::local::run_plan(
        &plan,
        &writer,
        &apparate::local::LocalOptions {
            jobs,
            progress: apparate::local::Progress::Quiet,
        },
    )
    .expect("run plan");
    assert_eq!(report.failed, 0, "no task fails");
    writer.write_summaries(&plan, |_, _| {}).expect("summaries");
}

/// The full small grid, generated once per test process (read-only for the tests: copy it
/// before changing anything).
pub fn small_grid() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = fresh_temp_dir("small-grid");
        run_spec(&small_spec_text(), &dir);
        dir
    })
}

/// The report of the full small grid, built once with the library (into its own folder).
pub fn small_report() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = fresh_temp_dir("small-report");
        let outcome = analysis::build_report(&analysis::ReportOptions {
            results: small_grid().to_path_buf(),
            out: Some(out.clone()),
            jobs: None,
        })
        .expect("report builds");
        assert_eq!(outcome.tasks, 56);
        assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
        out
    })
}

/// Copies the folder tree `src` to `dst` (created).
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create copy target");
    for entry in std::fs::read_dir(src).expect("read source folder") {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy file");
        }
    }
}

/// The `analysis` binary of this build.
pub fn analysis_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_analysis"))
}

/// Reads a CSV written by the report (no quoted commas in the numeric columns used).
pub fn read_csv(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(split_csv(l))
                .collect::<std::collections::BTreeMap<_, _>>()
        })
        .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().expect("field").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("field").push(c),
        }
    }
    out
}

/// A copy of `sweep.json` and the first `n` task folders (by key) of the small grid in `dst`.
pub fn copy_subset(n: usize, dst: &Path) {
    let src = small_grid();
    std::fs::create_dir_all(dst.join("tasks")).expect("tasks dir");
    std::fs::copy(src.join("sweep.json"), dst.join("sweep.json")).expect("sweep.json");
    let mut keys: Vec<_> = std::fs::read_dir(src.join("tasks"))
        .expect("tasks")
        .map(|e| e.expect("entry").file_name())
        .filter(|k| !k.to_string_lossy().starts_with('.'))
        .collect();
    keys.sort();
    for k in keys.iter().take(n) {
        copy_tree(&src.join("tasks").join(k), &dst.join("tasks").join(k));
    }
}
