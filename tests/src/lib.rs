#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

static BUILD: Once = Once::new();

/// Path of a workspace binary (`coordinator`, `worker`, `analysis`) beside the running test
/// executable: `target/<profile>/deps/<test>-<hash>` → `target/<profile>/<name>`.
/// (`CARGO_BIN_EXE_*` exists only for a package's own binaries.) `cargo test --workspace`
/// builds them; if one is missing, `cargo build --bins -p coordinator -p worker` runs once.
/// Shared by this crate's tests and `cluster`'s.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
        BUILD.call_once(|| {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--bins", "-p", "coordinator", "-p", "worker"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo build runs");
            assert!(status.success(), "cargo build of the binaries failed");
        });
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}
