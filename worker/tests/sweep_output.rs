//! What the end of a sweep prints on stdout (issue #16, item 2): the choice between the
//! summary lines and the compact table, the table itself, and `worker --local` on a real
//! pseudo-terminal (`script` from util-linux) and on a pipe.

use crate::util::fresh_temp_dir;
use apparate::results::overview::{
    render_table, table_text, EndOutput, RowStatus, TableRow, MAX_TABLE_ROWS,
};
use apparate::results::ResultsDir;
use apparate::sweep::SweepSpec;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[test]
fn a_terminal_gets_the_table_and_the_summary_lines_only_with_verbose() {
    let cases = [
        // (stdout is a terminal, --verbose) → (summary lines, table)
        ((true, false), (false, true)),
        ((true, true), (true, true)),
        ((false, false), (true, false)),
        ((false, true), (true, false)),
    ];
    for ((terminal, verbose), (summary_lines, table)) in cases {
        assert_eq!(
            EndOutput::choose(terminal, verbose),
            EndOutput {
                summary_lines,
                table
            },
            "terminal {terminal}, verbose {verbose}"
        );
    }
}

fn row(model: &str, dataset: &str, status: RowStatus) -> TableRow {
    let done = status == RowStatus::Done;
    TableRow {
        label: format!("cv/{model}/{dataset}/video30"),
        model: model.to_string(),
        dataset: dataset.to_string(),
        median_win_pct: done.then_some(80.04),
        accuracy_pct: done.then_some(99.126),
        status,
    }
}

#[test]
fn the_table_has_one_short_row_per_task_and_a_line_of_counts() {
    let rows = [
        row("resnet18", "auburn", RowStatus::Done),
        row("bert-base", "amazon_reviews", RowStatus::Failed),
        TableRow {
            median_win_pct: None,
            ..row("vgg11", "oxford", RowStatus::Done)
        },
        row("vgg11", "hampton", RowStatus::NotRun),
    ];
    let text = render_table(&rows, None, &[PathBuf::from("out/output_cv.txt")]);
    assert_eq!(
        text,
        "\
model      dataset         median win  accuracy  status
resnet18   auburn              80.0 %   99.13 %  done
bert-base  amazon_reviews           -         -  failed
vgg11      oxford                   -   99.13 %  done
vgg11      hampton                  -         -  not run
4 tasks: 2 done, 1 failed, 1 not run; summary lines: out/output_cv.txt
"
    );
    let with_report = render_table(&rows[..1], Some(Path::new("out/report/report.html")), &[]);
    assert!(
        with_report
            .ends_with("1 tasks: 1 done, 0 failed, 0 not run; report: out/report/report.html\n"),
        "{with_report}"
    );
}

#[test]
fn tasks_sharing_model_and_dataset_are_told_apart_by_their_label() {
    let mut a = row("resnet18", "auburn", RowStatus::Done);
    let mut b = row("resnet18", "auburn", RowStatus::Failed);
    a.label = "cv/resnet18/auburn/fixed_30".into();
    b.label = "cv/resnet18/auburn/azure".into();
    let text = render_table(&[a, b], None, &[]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("status   task"), "{text}");
    assert!(
        lines[1].ends_with("done     cv/resnet18/auburn/fixed_30"),
        "{text}"
    );
    assert!(
        lines[2].ends_with("failed   cv/resnet18/auburn/azure"),
        "{text}"
    );
}

#[test]
fn a_large_sweep_lists_only_the_tasks_that_are_not_done() {
    let mut rows: Vec<TableRow> = (0..MAX_TABLE_ROWS + 5)
        .map(|i| row("resnet18", &format!("d{i}"), RowStatus::Done))
        .collect();
    rows[7].status = RowStatus::Failed;
    let text = render_table(&rows, None, &[]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].starts_with("resnet18  d7 "), "{text}");
    assert!(
        lines[2].starts_with(
            "65 tasks: 64 done, 1 failed, 0 not run (only the tasks not done are listed)"
        ),
        "{text}"
    );
}

/// Two tiny tasks on the embedded workload.
fn spec(dir: &Path) -> PathBuf {
    let text = "name = \"tty\"\nseeds = [0]\n[inputs]\nkind = \"embedded\"\nscale = 0.03\n\
        [traces.video30]\nkind = \"fixed\"\nqps = 30.0\n\
        [[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\", \"hampton\"]\n\
        traces = [\"video30\"]\nbatching = [\"clockwork\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n";
    let path = dir.join("spec.toml");
    std::fs::write(&path, text).expect("write spec");
    path
}

fn local_args(spec: &Path, out: &Path) -> Vec<String> {
    vec![
        "--local".into(),
        "--no-report".into(),
        "--jobs".into(),
        "2".into(),
        "--spec".into(),
        spec.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]
}

/// The lines a terminal ends up showing: ANSI escape sequences removed, and of a line that
/// was overwritten after a carriage return (the progress bar), only the last text.
fn screen_lines(raw: &str) -> String {
    let mut plain = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then a final letter.
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

/// Runs the worker with `args` on a fresh pseudo-terminal (stdout and stderr); returns what
/// the terminal showed ([`screen_lines`]).
fn on_a_terminal(args: &[String]) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut cmd = quote(env!("CARGO_BIN_EXE_worker"));
    for a in args {
        cmd.push(' ');
        cmd.push_str(&quote(a));
    }
    let o: Output = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("`script` (util-linux) runs");
    let text = screen_lines(&String::from_utf8_lossy(&o.stdout));
    assert!(o.status.success(), "worker failed on a terminal:\n{text}");
    text
}

#[test]
fn issue16_worker_local_on_a_terminal_shows_the_table_instead_of_the_summary_lines() {
    let dir = fresh_temp_dir("tty-local");
    let spec = spec(&dir);
    let out = dir.join("out");
    let shown = on_a_terminal(&local_args(&spec, &out));
    let summary = std::fs::read_to_string(out.join("output_cv.txt")).expect("output_cv.txt");
    assert_eq!(summary.lines().count(), 2, "{summary}");
    for line in summary.lines() {
        assert!(
            !shown.contains(line),
            "summary line on the terminal:\n{shown}"
        );
    }
    assert!(!shown.contains("overall accuracy"), "{shown}");
    let table: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.starts_with("model "))
        .collect();
    assert_eq!(table.len(), 4, "{shown}");
    assert!(table[0].contains("median win  accuracy  status"), "{shown}");
    assert!(
        table[1].starts_with("resnet18  auburn ") && table[1].ends_with(" %  done"),
        "{shown}"
    );
    assert!(
        table[2].starts_with("resnet18  hampton ") && table[2].ends_with(" %  done"),
        "{shown}"
    );
    assert_eq!(
        table[3],
        format!(
            "2 tasks: 2 done, 0 failed, 0 not run; summary lines: {}",
            out.join("output_cv.txt").display()
        )
    );

    // --verbose brings the summary lines back (the run is cached: same lines, same table).
    let mut args = local_args(&spec, &out);
    args.push("--verbose".into());
    let verbose = on_a_terminal(&args);
    for line in summary.lines() {
        assert!(verbose.contains(line), "{verbose}");
    }
    assert!(verbose.contains(table[0]), "{verbose}");

    // Not a terminal: the summary lines on stdout, exactly, and no table.
    let piped = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(local_args(&spec, &out))
        .env("RUST_LOG", "warn")
        .output()
        .expect("worker runs");
    assert!(piped.status.success());
    assert_eq!(String::from_utf8_lossy(&piped.stdout), summary);

    // With a report: the median wins come from its tasks.csv (quoted fields with commas, as
    // the report writes them), and the footer names report.html.
    let plan = SweepSpec::load(&spec).expect("spec").plan().expect("plan");
    let results = ResultsDir::new(&out);
    let keys: Vec<String> = plan.tasks().map(|t| t.key.to_string()).collect();
    let tables = out.join("report").join("tables");
    std::fs::create_dir_all(&tables).expect("report folder");
    std::fs::write(
        tables.join("tasks.csv"),
        format!(
            "key,config,win_p50_pct,accuracy_pct,exit_shares\n\
             {},\"fixed_30, clockwork, \"\"slo\"\" 2\",71.26,99.8,\"0: 50.0%, 8: 50.0%\"\n\
             {},plain,NaN,99.9,x\n",
            keys[0], keys[1]
        ),
    )
    .expect("tasks.csv");
    std::fs::write(out.join("report").join("report.html"), "<html></html>").expect("html");
    let text = table_text(&plan, &results);
    let lines: Vec<&str> = text.lines().collect();
    let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cells(lines[1])[2..],
        ["71.3", "%", "99.81", "%", "done"],
        "{text}"
    );
    assert_eq!(cells(lines[2])[2], "-", "NaN in the report: {text}");
    assert!(
        lines[3].ends_with(&format!(
            "; report: {}",
            out.join("report").join("report.html").display()
        )),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
