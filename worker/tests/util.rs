//! Helpers shared by the integration tests.

use std::path::PathBuf;

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
