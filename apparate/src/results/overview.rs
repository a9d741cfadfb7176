//! What the end of a sweep prints on stdout (`worker --local`, `coordinator sweep`).
//!
//! The artifact-style summary line of a task (overall exit rate and ramp accuracy dictionaries,
//! hundreds of characters, sometimes the last `serve_batch` line too) always goes to
//! `output_<grid>.txt`. On stdout it is printed when stdout is not a terminal (a log, a pipe:
//! unchanged for scripts) or with `--verbose`; a terminal gets instead a compact table, one row
//! per task: model, dataset, median win, accuracy, status ([`EndOutput::choose`]).
//!
//! The table reads only small files: each complete task's `summary.json` (accuracy) and, when
//! the report has been built, `report/tables/tasks.csv` (the median win with queueing, as in
//! Fig. 12). Task keys are content-addressed, so a row of an older report is still the same
//! task's number.

use super::{ResultsDir, ResultsError, ResultsWriter, TaskStatus};
use crate::ids::TaskKey;
use crate::sweep::Plan;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Above this many tasks the table lists only the tasks that are not done.
pub const MAX_TABLE_ROWS: usize = 60;

/// Which of the two end-of-sweep outputs go to stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndOutput {
    /// Every complete task's summary lines (the content of `output_<grid>.txt`).
    pub summary_lines: bool,
    /// The compact table ([`render_table`]).
    pub table: bool,
}

impl EndOutput {
    /// A terminal gets the table, and the summary lines only with `--verbose`; anything else
    /// (a file, a pipe) gets the summary lines, as before.
    pub fn choose(stdout_is_terminal: bool, verbose: bool) -> EndOutput {
        EndOutput {
            summary_lines: verbose || !stdout_is_terminal,
            table: stdout_is_terminal,
        }
    }
}

/// Where a task stands at the end of a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowStatus {
    /// Complete in the results directory.
    Done,
    /// Has a failure record.
    Failed,
    /// Neither (an interrupted sweep).
    NotRun,
}

impl RowStatus {
    fn text(self) -> &'static str {
        match self {
            RowStatus::Done => "done",
            RowStatus::Failed => "failed",
            RowStatus::NotRun => "not run",
        }
    }
}

/// One task's row.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    /// The task's label (`grid/model/dataset/trace`), shown when model and dataset do not
    /// identify a task.
    pub label: String,
    /// Model.
    pub model: String,
    /// Dataset.
    pub dataset: String,
    /// Median end-to-end win of Apparate over vanilla in % (from the report), if known.
    pub median_win_pct: Option<f64>,
    /// Apparate's accuracy in % (`summary.json`), if complete.
    pub accuracy_pct: Option<f64>,
    /// Status.
    pub status: RowStatus,
}

/// The `# inputs: ...` line `worker plan` and `coordinator plan` print first for a plan over
/// backend inputs ([`crate::backend_inputs::plan_line`]); `None` for other inputs.
pub fn backend_inputs_line(plan: &Plan, results_root: &Path) -> Option<String> {
    let bp = plan.backend()?;
    let b = crate::backend_inputs::BackendInputs::of(plan.inputs())?;
    Some(crate::backend_inputs::plan_line(
        b.model,
        b.device,
        &bp.exe,
        &bp.digest,
        results_root,
    ))
}

/// `report/tables/tasks.csv` of the results directory.
pub fn report_tasks_csv(dir: &ResultsDir) -> PathBuf {
    dir.root().join("report").join("tables").join("tasks.csv")
}

/// `report/report.html` of the results directory.
pub fn report_html(dir: &ResultsDir) -> PathBuf {
    dir.root().join("report").join("report.html")
}

/// The rows of every task of `plan`, in grid order.
pub fn table_rows(plan: &Plan, dir: &ResultsDir) -> Vec<TableRow> {
    let wins = read_report_wins(&report_tasks_csv(dir));
    plan.tasks()
        .map(|task| {
            let (status, accuracy_pct) = match dir.status(&task, plan.code_version()) {
                TaskStatus::Complete(_) => (RowStatus::Done, read_accuracy(dir, &task.key)),
                _ if dir.read_failure(&task.key).is_some() => (RowStatus::Failed, None),
                _ => (RowStatus::NotRun, None),
            };
            let median_win_pct = match status {
                RowStatus::Done => wins.get(task.key.as_str()).copied(),
                _ => None,
            };
            TableRow {
                label: task.label(),
                model: task.spec.model.clone(),
                dataset: task.spec.dataset.clone(),
                median_win_pct,
                accuracy_pct,
                status,
            }
        })
        .collect()
}

fn read_accuracy(dir: &ResultsDir, key: &TaskKey) -> Option<f64> {
    let bytes = std::fs::read(dir.task_dir(key).join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("overall_accuracy")?
        .as_f64()
        .filter(|x| x.is_finite())
}

/// `key → win_p50_pct` from the report's `tasks.csv`; empty when it is missing or unreadable
/// (the table then shows `-`).
fn read_report_wins(path: &Path) -> BTreeMap<String, f64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let mut lines = text.lines();
    let Some(header) = lines.next().map(csv_fields) else {
        return BTreeMap::new();
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(k), Some(w)) = (col("key"), col("win_p50_pct")) else {
        return BTreeMap::new();
    };
    lines
        .filter_map(|line| {
            let f = csv_fields(line);
            let win: f64 = f.get(w)?.parse().ok().filter(|x: &f64| x.is_finite())?;
            Some((f.get(k)?.clone(), win))
        })
        .collect()
}

/// The fields of one CSV line (RFC 4180 quoting, as the report writes it).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// The compact table: a header, one row per task (only the tasks that are not done when there
/// are more than [`MAX_TABLE_ROWS`]), then one line of counts naming where the rest is:
/// the report when `report` exists, else the `output_<grid>.txt` files in `summaries`.
pub fn render_table(rows: &[TableRow], report: Option<&Path>, summaries: &[PathBuf]) -> String {
    let pairs: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.model.as_str(), r.dataset.as_str()))
        .collect();
    let with_label = pairs.len() < rows.len();
    let shown: Vec<&TableRow> = if rows.len() > MAX_TABLE_ROWS {
        rows.iter()
            .filter(|r| r.status != RowStatus::Done)
            .take(MAX_TABLE_ROWS)
            .collect()
    } else {
        rows.iter().collect()
    };
    let width = |f: &dyn Fn(&TableRow) -> usize, title: &str| {
        shown
            .iter()
            .map(|r| f(r))
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let wm = width(&|r| r.model.len(), "model");
    let wd = width(&|r| r.dataset.len(), "dataset");
    let mut out = String::new();
    let mut line = |model: &str, dataset: &str, win: &str, acc: &str, status: &str, label: &str| {
        let mut l = format!("{model:wm$}  {dataset:wd$}  {win:>10}  {acc:>8}  {status}");
        if with_label {
            let _ = write!(l, "{:pad$}  {label}", "", pad = 7 - status.len().min(7));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    if !shown.is_empty() {
        line(
            "model",
            "dataset",
            "median win",
            "accuracy",
            "status",
            "task",
        );
    }
    for r in &shown {
        let win = r
            .median_win_pct
            .map_or_else(|| "-".to_string(), |w| format!("{w:.1} %"));
        let acc = r
            .accuracy_pct
            .map_or_else(|| "-".to_string(), |a| format!("{a:.2} %"));
        line(&r.model, &r.dataset, &win, &acc, r.status.text(), &r.label);
    }
    let count = |s: RowStatus| rows.iter().filter(|r| r.status == s).count();
    let mut footer = format!(
        "{} tasks: {} done, {} failed, {} not run",
        rows.len(),
        count(RowStatus::Done),
        count(RowStatus::Failed),
        count(RowStatus::NotRun)
    );
    if shown.len() < rows.len() {
        let _ = write!(footer, " (only the tasks not done are listed)");
    }
    match report {
        Some(p) => {
            let _ = write!(footer, "; report: {}", p.display());
        }
        None => {
            let names: Vec<String> = summaries.iter().map(|p| p.display().to_string()).collect();
            let _ = write!(footer, "; summary lines: {}", names.join(", "));
        }
    }
    out.push_str(&footer);
    out.push('\n');
    out
}

/// The end of a sweep, shared by `worker --local` and `coordinator sweep`: each grid's summary
/// lines into `output_<grid>.txt` (and on stdout off a terminal or with `verbose`), each grid's
/// summary in the log, the report (unless `no_report`), then on a terminal the compact table.
pub fn finish_sweep(
    plan: &Plan,
    writer: &ResultsWriter,
    verbose: bool,
    no_report: bool,
) -> Result<(), ResultsError> {
    let shown = EndOutput::choose(
        std::io::IsTerminal::is_terminal(&std::io::stdout()),
        verbose,
    );
    let summaries = writer.write_summaries(plan, |_, line| {
        if shown.summary_lines {
            println!("{line}");
        }
    })?;
    for s in &summaries {
        s.log();
    }
    if !no_report {
        crate::report_hook::run_and_log(writer.dir().root());
    }
    if shown.table {
        print!("{}", table_text(plan, writer.dir()));
    }
    Ok(())
}

/// The table of `plan` over `dir` ([`table_rows`] and [`render_table`]), naming the report
/// when it exists.
pub fn table_text(plan: &Plan, dir: &ResultsDir) -> String {
    let rows = table_rows(plan, dir);
    let html = report_html(dir);
    let summaries: Vec<PathBuf> = plan
        .grids()
        .into_iter()
        .map(|g| dir.summary_path(&g.name))
        .collect();
    render_table(&rows, html.is_file().then_some(html.as_path()), &summaries)
}
