//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// `../shared/golden`, relative to the workspace root. Panics (fails the test) with a clear
/// message when the folder is missing: golden parity must never be skipped silently.
pub fn golden_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("worker crate has a parent directory")
        .to_path_buf();
    let dir = root.join("..").join("shared").join("golden");
    assert!(
        dir.is_dir(),
        "golden data missing: expected {} (the shared/ folder beside the repository root)",
        dir.display()
    );
    dir
}

/// A fresh, empty folder under the system temp dir, unique to this process and `tag`.
pub fn fresh_temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("worker-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Copies the folder tree `src` to `dst` (created).
pub fn copy_tree(src: &std::path::Path, dst: &std::path::Path) {
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

/// The artifact data of the golden scenario `cv-resnet18-auburn`.
pub fn auburn_data() -> PathBuf {
    golden_dir().join("cv-resnet18-auburn").join("data")
}

/// The sweep spec of one task: resnet18 × auburn over the golden scenario's artifact inputs,
/// its recorded fixed-30 decisions, SLO 1, batch size 4.
pub fn one_task_spec_toml() -> String {
    format!(
        "name = \"a\"\n[inputs]\nkind = \"artifact\"\ndir = {:?}\n[traces.fixed_30]\nsource = \"artifact_decisions\"\nfile = \"resnet18_1_fixed_30.pickle\"\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"fixed_30\"]\nslo_multiplier = [1]\nbatch_size = [4]\n",
        auburn_data().display().to_string()
    )
}

/// [`one_task_spec_toml`] written to `dir/spec.toml`; its path.
#[allow(dead_code)] // used by worker/tests, which include this module
pub fn write_one_task_spec(dir: &Path) -> PathBuf {
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, one_task_spec_toml()).expect("spec");
    spec
}

/// The plan of [`one_task_spec_toml`].
pub fn one_task_plan() -> apparate::sweep::Plan {
    apparate::sweep::SweepSpec::from_toml(&one_task_spec_toml(), "test", Path::new("."))
        .expect("parses")
        .plan()
        .expect("valid")
}

/// The golden scenario's task (resnet18 × auburn, its recorded fixed-30 decisions, clockwork,
/// SLO 1, batch size 4) over the artifact inputs in `dir`.
pub fn auburn_task_over(dir: PathBuf) -> apparate::task::TaskSpec {
    use apparate::sim::{Family, Overrides, StaticRamps};
    use apparate::task::{BatchingScheme, Inputs, TaskParams, TaskSpec, TaskTrace};
    TaskSpec {
        grid: "cv".into(),
        family: Family::Cv,
        model: "resnet18".into(),
        dataset: "auburn".into(),
        trace: TaskTrace::ArtifactDecisions {
            name: "fixed_30".into(),
            file: "resnet18_1_fixed_30.pickle".into(),
        },
        params: TaskParams {
            batching: BatchingScheme::Clockwork,
            slo_multiplier: 1.0,
            batch_size: 4,
            static_ramps: StaticRamps::AllSites,
            overrides: Overrides::default(),
        },
        seed: 0,
        inputs: Inputs::Artifact { dir },
        live: None,
    }
}
