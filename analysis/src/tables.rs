//! The report's tables: per task, per model (Fig. 12 / 13 aggregates), NLP differences, and the
//! artifact-style summary lines; written as CSV and Markdown.

use crate::load::{Inventory, LoadedTask};
use crate::stats::{win, Quantiles, TaskStats};
use apparate::sim::Family;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// numpy's default `percentile` of unsorted values (linear interpolation at `p/100 · (n − 1)`;
/// `p = 50` averages the two middle values of an even count). NaN for no values.
pub fn np_percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    apparate::output::percentile(&v, p)
}

/// Median, minimum and maximum of some values (numpy semantics for the median).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (NaN everywhere for none).
    pub fn of(values: &[f64]) -> Spread {
        Spread {
            median: np_percentile(values, 50.0),
            min: values.iter().copied().fold(f64::NAN, f64::min),
            max: values.iter().copied().fold(f64::NAN, f64::max),
        }
    }
}

/// A task with its statistics.
#[derive(Clone, Debug)]
pub struct TaskRow<'a> {
    /// The task.
    pub task: &'a LoadedTask,
    /// Its numbers.
    pub stats: TaskStats,
    /// The final exit's id (the model's number of ramp sites `R`).
    pub final_exit: i32,
    /// Its requests (the columns of [`crate::requests`]).
    pub frame: &'a polars::prelude::DataFrame,
}

impl TaskRow<'_> {
    /// The task's configuration apart from model and dataset (trace, batching, SLO, batch size,
    /// seed, overrides), e.g. `video30 clockwork slo2 bs4 seed0`.
    pub fn config(&self) -> String {
        config_label(self.task)
    }
    /// Share of requests that exited early (not at the final exit), 0–1.
    pub fn early_share(&self) -> f64 {
        self.stats
            .exits
            .iter()
            .filter(|e| e.exit_point != self.final_exit)
            .map(|e| e.share)
            .sum()
    }
}

/// `video30 clockwork slo2 bs4 seed0 [+overrides]`.
pub fn config_label(task: &LoadedTask) -> String {
    let s = &task.manifest.spec;
    let batching = batching_name(s);
    let mut label = format!(
        "{} {batching} slo{} bs{} seed{}",
        s.trace.name(),
        s.params.slo_multiplier,
        s.params.batch_size,
        s.seed
    );
    if let Ok(v) = serde_json::to_value(s.params.overrides) {
        if v.as_object().is_some_and(|o| !o.is_empty()) {
            let _ = write!(label, " {v}");
        }
    }
    if let Ok(v) = serde_json::to_value(s.params.static_ramps) {
        if v.as_str() != Some("all_sites") {
            let _ = write!(label, " static={}", v.as_str().unwrap_or("?"));
        }
    }
    label
}

/// The batching scheme's name in specs (`clockwork`, `uniform`, ...).
pub fn batching_name(spec: &apparate::task::TaskSpec) -> String {
    serde_json::to_value(spec.params.batching)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The final exit's id: the model's number of candidate ramp sites (embedded presets), else the
/// largest exit point seen.
pub fn final_exit(task: &LoadedTask, stats: &TaskStats) -> i32 {
    apparate::workload::models::preset(&task.manifest.spec.model)
        .map(|p| p.sites as i32)
        .unwrap_or_else(|| stats.exits.iter().map(|e| e.exit_point).max().unwrap_or(0))
}

/// Per-model aggregates over datasets (Fig. 12 and 13).
#[derive(Clone, Debug)]
pub struct ModelRow {
    /// Grid name.
    pub grid: String,
    /// CV or NLP.
    pub family: Family,
    /// Model name.
    pub model: String,
    /// The configuration shared by the model's tasks (see [`TaskRow::config`]).
    pub config: String,
    /// Label for figures: the model, plus the configuration when a model has several.
    pub label: String,
    /// Datasets aggregated.
    pub datasets: usize,
    /// Apparate's median win (%) over datasets.
    pub win: Spread,
    /// The oracle's median win (%) over datasets.
    pub optimal_win: Spread,
    /// Apparate's 25th-percentile win (%) over datasets.
    pub win_p25: Spread,
    /// Apparate's p95 latency (ms) over datasets.
    pub p95_apparate: Spread,
    /// Vanilla's p95 latency (ms) over datasets.
    pub p95_vanilla: Spread,
    /// Lowest accuracy (%) over datasets.
    pub min_accuracy: f64,
}

/// Groups tasks by (grid, model, configuration) in first-seen (grid) order.
pub fn model_rows(rows: &[TaskRow<'_>]) -> Vec<ModelRow> {
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String, String), Vec<&TaskRow<'_>>> = BTreeMap::new();
    for r in rows {
        let s = &r.task.manifest.spec;
        let k = (s.grid.clone(), s.model.clone(), r.config());
        if !groups.contains_key(&k) {
            order.push(k.clone());
        }
        groups.entry(k).or_default().push(r);
    }
    let mut configs_per_model: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, m, _) in &order {
        *configs_per_model.entry(m.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    for k in &order {
        let g = &groups[k];
        let collect = |f: &dyn Fn(&TaskRow<'_>) -> Option<f64>| -> Vec<f64> {
            g.iter().filter_map(|r| f(r)).collect()
        };
        let label = if configs_per_model.get(k.1.as_str()).copied().unwrap_or(0) > 1 {
            format!("{} ({})", k.1, k.2)
        } else {
            k.1.clone()
        };
        out.push(ModelRow {
            grid: k.0.clone(),
            family: g[0].task.manifest.spec.family,
            model: k.1.clone(),
            config: k.2.clone(),
            label,
            datasets: g.len(),
            win: Spread::of(&collect(&|r| Some(r.stats.win_p50()))),
            optimal_win: Spread::of(&collect(&|r| r.stats.optimal_win_p50())),
            win_p25: Spread::of(&collect(&|r| Some(r.stats.win_p25()))),
            p95_apparate: Spread::of(&collect(&|r| Some(r.stats.apparate.p95))),
            p95_vanilla: Spread::of(&collect(&|r| Some(r.stats.vanilla.p95))),
            min_accuracy: g
                .iter()
                .map(|r| r.stats.accuracy)
                .fold(f64::INFINITY, f64::min),
        });
    }
    out
}

/// A table: header and rows of already formatted cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// RFC 4180 CSV (fields with a comma, quote or newline are quoted).
    pub fn to_csv(&self) -> String {
        let field = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| field(c)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub fn to_markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        let line = |cells: &[String]| {
            format!(
                "| {} |\n",
                cells.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
            )
        };
        out.push_str(&line(&self.header));
        let numeric = |i: usize| {
            self.rows.iter().all(|r| {
                r.get(i)
                    .is_some_and(|c| c == "–" || c.is_empty() || c.parse::<f64>().is_ok())
            })
        };
        out.push_str(&format!(
            "|{}\n",
            (0..self.header.len())
                .map(|i| if numeric(i) { "---:|" } else { "---|" })
                .collect::<String>()
        ));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// Full precision for CSV (shortest round-trip representation), `NaN` for missing.
pub(crate) fn full(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        String::new()
    }
}

pub(crate) fn opt_full(x: Option<f64>) -> String {
    x.map(full).unwrap_or_default()
}

/// Rounds for Markdown.
pub fn fixed(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".to_string()
    }
}

pub(crate) fn opt_fixed(x: Option<f64>, digits: usize) -> String {
    x.map(|v| fixed(v, digits)).unwrap_or_else(|| "–".into())
}

/// Exit-point shares as `1: 82.5%, 3: 4.3%, R=33: 8.9%`.
pub fn exit_shares_text(r: &TaskRow<'_>) -> String {
    r.stats
        .exits
        .iter()
        .map(|e| {
            let name = if e.exit_point == r.final_exit {
                format!("R={}", e.exit_point)
            } else {
                e.exit_point.to_string()
            };
            format!("{name}: {:.1}%", 100.0 * e.share)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const KINDS: [&str; 4] = ["vanilla", "apparate", "optimal", "static"];

/// Per task: configuration, latencies (p25/p50/p95/p99, ms, queueing + inference) of the four
/// systems, wins, accuracies, exit-point shares. `precise` selects full precision (CSV) or
/// rounded (Markdown).
pub fn tasks_table(rows: &[TaskRow<'_>], precise: bool) -> Table {
    let mut header: Vec<String> = ["key", "grid", "model", "dataset", "config", "requests"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for k in KINDS {
        for p in ["p25", "p50", "p95", "p99"] {
            header.push(format!("{k}_{p}_ms"));
        }
    }
    for h in [
        "win_p50_pct",
        "win_p25_pct",
        "optimal_win_p50_pct",
        "static_win_p50_pct",
        "accuracy_pct",
        "static_accuracy_pct",
        "early_exit_pct",
        "exit_shares",
    ] {
        header.push(h.to_string());
    }
    let num = |x: f64, d: usize| if precise { full(x) } else { fixed(x, d) };
    let onum = |x: Option<f64>, d: usize| {
        if precise {
            opt_full(x)
        } else {
            opt_fixed(x, d)
        }
    };
    let mut t = Table {
        header,
        rows: Vec::new(),
    };
    for r in rows {
        let s = &r.task.manifest.spec;
        let mut row = vec![
            r.task.key().to_string(),
            s.grid.clone(),
            s.model.clone(),
            s.dataset.clone(),
            r.config(),
            r.stats.n.to_string(),
        ];
        let qs: [Option<Quantiles>; 4] = [
            Some(r.stats.vanilla),
            Some(r.stats.apparate),
            r.stats.optimal,
            r.stats.fixed,
        ];
        let getters: [fn(&Quantiles) -> f64; 4] = [|q| q.p25, |q| q.p50, |q| q.p95, |q| q.p99];
        for q in qs {
            for f in getters {
                row.push(onum(q.as_ref().map(f), 2));
            }
        }
        row.push(num(r.stats.win_p50(), 1));
        row.push(num(r.stats.win_p25(), 1));
        row.push(onum(r.stats.optimal_win_p50(), 1));
        row.push(onum(r.stats.static_win_p50(), 1));
        row.push(num(r.stats.accuracy, 2));
        row.push(onum(r.stats.static_accuracy, 2));
        row.push(num(100.0 * r.early_share(), 1));
        row.push(exit_shares_text(r));
        t.rows.push(row);
    }
    t
}

/// Long-format exit shares: one row per (task, exit point).
pub fn exits_table(rows: &[TaskRow<'_>]) -> Table {
    let mut t = Table::new(&[
        "key",
        "model",
        "dataset",
        "exit_point",
        "final",
        "requests",
        "share",
    ]);
    for r in rows {
        for e in &r.stats.exits {
            t.rows.push(vec![
                r.task.key().to_string(),
                r.task.manifest.spec.model.clone(),
                r.task.manifest.spec.dataset.clone(),
                e.exit_point.to_string(),
                (e.exit_point == r.final_exit).to_string(),
                e.count.to_string(),
                full(e.share),
            ]);
        }
    }
    t
}

/// Fig. 12 per model: median, min and max over datasets of Apparate's and the oracle's median
/// wins (%), with the 25th-percentile win and the lowest accuracy.
pub fn fig12_table(models: &[ModelRow], precise: bool) -> Table {
    let mut t = Table::new(&[
        "#",
        "grid",
        "model",
        "config",
        "datasets",
        "win_median_pct",
        "win_min_pct",
        "win_max_pct",
        "optimal_median_pct",
        "optimal_min_pct",
        "optimal_max_pct",
        "win_p25_median_pct",
        "min_accuracy_pct",
    ]);
    let num = |x: f64, d: usize| if precise { full(x) } else { fixed(x, d) };
    for (i, m) in models.iter().enumerate() {
        t.rows.push(vec![
            (i + 1).to_string(),
            m.grid.clone(),
            m.model.clone(),
            m.config.clone(),
            m.datasets.to_string(),
            num(m.win.median, 1),
            num(m.win.min, 1),
            num(m.win.max, 1),
            num(m.optimal_win.median, 1),
            num(m.optimal_win.min, 1),
            num(m.optimal_win.max, 1),
            num(m.win_p25.median, 1),
            num(m.min_accuracy, 2),
        ]);
    }
    t
}

/// Fig. 13 per model: median, min and max over datasets of the p95 latency (ms), Apparate and
/// vanilla.
pub fn fig13_table(models: &[ModelRow], precise: bool) -> Table {
    let mut t = Table::new(&[
        "#",
        "grid",
        "model",
        "config",
        "datasets",
        "apparate_p95_median_ms",
        "apparate_p95_min_ms",
        "apparate_p95_max_ms",
        "vanilla_p95_median_ms",
        "vanilla_p95_min_ms",
        "vanilla_p95_max_ms",
    ]);
    let num = |x: f64| if precise { full(x) } else { fixed(x, 2) };
    for (i, m) in models.iter().enumerate() {
        t.rows.push(vec![
            (i + 1).to_string(),
            m.grid.clone(),
            m.model.clone(),
            m.config.clone(),
            m.datasets.to_string(),
            num(m.p95_apparate.median),
            num(m.p95_apparate.min),
            num(m.p95_apparate.max),
            num(m.p95_vanilla.median),
            num(m.p95_vanilla.min),
            num(m.p95_vanilla.max),
        ]);
    }
    t
}

/// Per NLP task: p50 and p25 latencies (ms) of vanilla and Apparate and their differences
/// (vanilla − Apparate, ms), as the artifact's Fig. 14 script prints them.
pub fn nlp_table(rows: &[TaskRow<'_>], precise: bool) -> Table {
    let mut t = Table::new(&[
        "model",
        "dataset",
        "config",
        "vanilla_p50_ms",
        "apparate_p50_ms",
        "p50_diff_ms",
        "vanilla_p25_ms",
        "apparate_p25_ms",
        "p25_diff_ms",
        "win_p50_pct",
        "win_p25_pct",
    ]);
    let num = |x: f64, d: usize| if precise { full(x) } else { fixed(x, d) };
    for r in rows
        .iter()
        .filter(|r| r.task.manifest.spec.family == Family::Nlp)
    {
        let (v, a) = (&r.stats.vanilla, &r.stats.apparate);
        t.rows.push(vec![
            r.task.manifest.spec.model.clone(),
            r.task.manifest.spec.dataset.clone(),
            r.config(),
            num(v.p50, 2),
            num(a.p50, 2),
            num(v.p50 - a.p50, 2),
            num(v.p25, 2),
            num(a.p25, 2),
            num(v.p25 - a.p25, 2),
            num(win(a.p50, v.p50), 1),
            num(win(a.p25, v.p25), 1),
        ]);
    }
    t
}

/// The artifact-style `output_<grid>.txt` contents: every loaded task's summary lines, grid by
/// grid, in grid order.
pub fn summary_lines(inv: &Inventory) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for t in &inv.tasks {
        let text = out.entry(t.manifest.spec.grid.clone()).or_default();
        for l in &t.manifest.summary_lines {
            text.push_str(l);
            text.push('\n');
        }
    }
    out
}
