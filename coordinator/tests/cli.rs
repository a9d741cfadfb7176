//! The `coordinator` binary's commands that need no workers (its sweeps are tested with real
//! workers in the workspace's `tests/` crate).

use std::process::Command;

fn coordinator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_coordinator"))
}

#[test]
fn plan_lists_the_builtin_grid_as_pending_in_the_words_of_worker_plan() {
    let dir = std::env::temp_dir().join(format!("coord-plan-{}", std::process::id()));
    let o = coordinator()
        .args(["plan", "--out"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text.lines().filter(|l| l.ends_with("\tpending")).count(),
        56
    );
    assert_eq!(text.lines().count(), 56, "one row per task on stdout");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("56 tasks: 0 complete, 0 failed before, 56 pending"));
}

#[test]
fn status_without_a_ledger_fails_with_the_folder_named() {
    let dir = std::env::temp_dir().join(format!("coord-status-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let o = coordinator()
        .args(["status", "--out"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(&dir.display().to_string()));
}

#[test]
fn sweep_refuses_an_empty_token_file() {
    let dir = std::env::temp_dir().join(format!("coord-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("token"), "\n").expect("token");
    let o = coordinator()
        .args(["sweep", "--listen", "127.0.0.1:0", "--out"])
        .arg(dir.join("out"))
        .arg("--token-file")
        .arg(dir.join("token"))
        .output()
        .expect("runs");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is empty"));
}

/// Issue #11: a token file that is a FIFO (or a device) is refused at once, naming it, instead
/// of blocking the coordinator on the open.
#[test]
fn issue11_sweep_refuses_a_token_file_that_is_not_a_regular_file() {
    let dir = std::env::temp_dir().join(format!("coord-token-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = dir.join("token.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    for token in [fifo.as_path(), std::path::Path::new("/dev/zero")] {
        let o = coordinator()
            .args(["sweep", "--listen", "127.0.0.1:0", "--out"])
            .arg(dir.join("out"))
            .arg("--token-file")
            .arg(token)
            .output()
            .expect("runs");
        assert!(!o.status.success());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&token.display().to_string()) && stderr.contains("not a regular file"),
            "{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
