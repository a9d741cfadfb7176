//! Issue #16, item 2: `coordinator sweep` on a real pseudo-terminal (`script` from util-linux)
//! shows a compact table at the end instead of every task's summary line.

use crate::util::{bin, embedded_spec, fresh_dir, Proc, TestCluster};
use std::process::Command;

/// `'text'` for `sh -c`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The lines a terminal ends up showing: ANSI escape sequences removed, and of a line that
/// was overwritten after a carriage return (the progress bar), only the last text.
fn screen_lines(raw: &str) -> String {
    let mut plain = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .replace("\r\n", "\n")
        .lines()
        .map(|l| l.rsplit('\r').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn issue16_coordinator_sweep_on_a_terminal_shows_the_table_instead_of_the_summary_lines() {
    let dir = fresh_dir("terminal-coordinator");
    let spec = embedded_spec(&dir, &["resnet18"], &["auburn", "hampton"]);
    let mut c = TestCluster::new(&dir, &spec);
    let args = [
        bin("coordinator").display().to_string(),
        "sweep".into(),
        "--spec".into(),
        spec.display().to_string(),
        "--out".into(),
        c.out.display().to_string(),
        "--token-file".into(),
        c.token_file.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--no-report".into(),
    ];
    let line: Vec<String> = args.iter().map(|a| quote(a)).collect();
    // `script` runs the coordinator on a fresh pseudo-terminal and copies what the terminal
    // shows to its own stdout, the log file.
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &line.join(" "), "/dev/null"]);
    c.coordinator = Some(Proc::spawn(
        "coordinator on a terminal",
        &mut cmd,
        dir.join("coordinator-tty.log"),
    ));
    let listening = c.await_log_line(None, "listening on ");
    c.addr = listening
        .rsplit("listening on ")
        .next()
        .map(|s| s.trim().to_string())
        .expect("address");
    c.start_worker(&[], &[]);
    c.await_sweep(true);
    let shown = screen_lines(&c.coordinator_log());
    let summary = std::fs::read_to_string(c.out.join("output_cv.txt")).expect("output_cv.txt");
    assert_eq!(summary.lines().count(), 2, "{summary}");
    for l in summary.lines() {
        assert!(!shown.contains(l), "summary line on the terminal:\n{shown}");
    }
    let rows: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with("resnet18  "))
        .collect();
    assert_eq!(rows.len(), 2, "{shown}");
    assert!(rows.iter().all(|r| r.ends_with(" %  done")), "{shown}");
    assert!(
        shown.contains("2 tasks: 2 done, 0 failed, 0 not run; summary lines: "),
        "{shown}"
    );
}
