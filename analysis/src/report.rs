//! `analysis report`: loads a results directory, writes the tables, figures, `report.md` and
//! `report.html` into `DIR/report/` (or `--out`).

use crate::doc::{self, Block};
use crate::error::{io_err, AnalysisError};
use crate::figures::{self, Curve, ExitBars, Timeline};
use crate::live::{self, LiveRow, LiveTask};
use crate::load::{self, Inventory, LoadedTask, Problem};
use crate::stats;
use crate::tables::{self, fixed, ModelRow, Table, TaskRow};
use apparate::sim::Family;
use apparate::task::Inputs;
use polars::prelude::DataFrame;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What to report on and where.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The results directory (`worker --local --out DIR`).
    pub results: PathBuf,
    /// Output folder; default `results/report/`.
    pub out: Option<PathBuf>,
    /// Threads for drawing figures (default: all cores).
    pub jobs: Option<usize>,
}

/// What a report run produced.
#[derive(Clone, Debug)]
pub struct ReportOutcome {
    /// The report folder.
    pub out: PathBuf,
    /// Tasks in the report, simulated and live.
    pub tasks: usize,
    /// Live tasks among them (issue #14: only in the live-against-simulated table and figure).
    pub live: usize,
    /// Tasks of the plan (`sweep.json`), or the tasks found when there is none.
    pub planned: usize,
    /// Files that could not be used.
    pub problems: Vec<Problem>,
    /// `report.md`.
    pub report_md: PathBuf,
    /// `report.html`.
    pub report_html: PathBuf,
    /// Seconds taken.
    pub seconds: f64,
}

/// The published ranges of `../shared/spec/paper.md` ("Published numbers").
pub mod paper {
    /// Median latency reduction vs vanilla, CV (%).
    pub const CV_MEDIAN_WIN: (f64, f64) = (40.5, 91.5);
    /// Median latency reduction vs vanilla, NLP (%).
    pub const NLP_MEDIAN_WIN: (f64, f64) = (10.0, 24.2);
    /// 25th-percentile latency reduction, NLP (%).
    pub const NLP_P25_WIN: (f64, f64) = (16.0, 37.3);
    /// Accuracy constraint: within 1 % of the original model.
    pub const MIN_ACCURACY: f64 = 99.0;
    /// Static EE baselines lose up to this much accuracy, CV / NLP (%).
    pub const STATIC_LOSS: (f64, f64) = (23.9, 17.8);
    /// Apparate's tail latency is this much lower than the static baselines' (%).
    pub const TAIL_VS_STATIC: (f64, f64) = (0.9, 9.4);
}

/// Writes `path` through a temporary file in the same folder renamed into place: a symbolic
/// link at `path` is replaced, never written through.
fn write(path: &Path, text: &str) -> Result<(), AnalysisError> {
    apparate::safe_write::write_bytes(
        path,
        apparate::safe_write::Durability::Flush,
        text.as_bytes(),
    )
    .map_err(io_err(path))
}

fn range_text(v: &[f64], digits: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.is_empty() || !lo.is_finite() {
        "–".to_string()
    } else {
        format!("{}–{}", fixed(lo, digits), fixed(hi, digits))
    }
}

fn within(v: &[f64], r: (f64, f64)) -> String {
    if v.is_empty() {
        return "no data".into();
    }
    let inside = v.iter().filter(|x| **x >= r.0 && **x <= r.1).count();
    format!("{inside} of {} inside", v.len())
}

/// The side-by-side with the paper's published ranges.
fn paper_table(rows: &[TaskRow<'_>], models: &[ModelRow]) -> Table {
    let fam = |f: Family| models.iter().filter(move |m| m.family == f);
    let cv_med: Vec<f64> = fam(Family::Cv).map(|m| m.win.median).collect();
    let nlp_med: Vec<f64> = fam(Family::Nlp).map(|m| m.win.median).collect();
    let nlp_p25: Vec<f64> = fam(Family::Nlp).map(|m| m.win_p25.median).collect();
    let tasks = |f: Family| {
        rows.iter()
            .filter(move |r| r.task.manifest.spec.family == f)
    };
    let acc: Vec<f64> = rows.iter().map(|r| r.stats.accuracy).collect();
    let loss = |f: Family| -> Vec<f64> {
        tasks(f)
            .filter_map(|r| r.stats.static_accuracy.map(|s| r.stats.accuracy - s))
            .collect()
    };
    let tail: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            r.stats
                .fixed
                .map(|s| stats::win(r.stats.apparate.p95, s.p95))
        })
        .collect();
    let header = ["claim", "paper", "this run", "check"];
    let mut t = Table {
        header: header.iter().map(|s| s.to_string()).collect(),
        rows: Vec::new(),
    };
    let p = |r: (f64, f64)| format!("{}–{} %", r.0, r.1);
    t.rows.push(vec![
        "median latency reduction vs vanilla, CV (per-model median over videos)".into(),
        p(paper::CV_MEDIAN_WIN),
        format!("{} %", range_text(&cv_med, 1)),
        within(&cv_med, paper::CV_MEDIAN_WIN),
    ]);
    t.rows.push(vec![
        "median latency reduction vs vanilla, NLP (per-model median over datasets)".into(),
        p(paper::NLP_MEDIAN_WIN),
        format!("{} %", range_text(&nlp_med, 1)),
        within(&nlp_med, paper::NLP_MEDIAN_WIN),
    ]);
    t.rows.push(vec![
        "25th-percentile latency reduction, NLP (per-model median over datasets)".into(),
        p(paper::NLP_P25_WIN),
        format!("{} %", range_text(&nlp_p25, 1)),
        within(&nlp_p25, paper::NLP_P25_WIN),
    ]);
    let acc_ok = acc.iter().filter(|a| **a >= paper::MIN_ACCURACY).count();
    t.rows.push(vec![
        "accuracy (agreement with the original model), every task".into(),
        format!("≥ {} %", paper::MIN_ACCURACY),
        format!("{} %", range_text(&acc, 2)),
        format!("{acc_ok} of {} at or above", acc.len()),
    ]);
    for (f, name, paper_loss) in [
        (Family::Cv, "CV", paper::STATIC_LOSS.0),
        (Family::Nlp, "NLP", paper::STATIC_LOSS.1),
    ] {
        let l = loss(f);
        let lost = l.iter().filter(|x| **x > 0.0).count();
        t.rows.push(vec![
            format!("static EE baseline's accuracy loss vs Apparate, {name} (per task)"),
            format!("up to {paper_loss} points"),
            format!("{} points", range_text(&l, 1)),
            format!("static less accurate on {lost} of {}", l.len()),
        ]);
    }
    t.rows.push(vec![
        "Apparate's p95 latency below the static baseline's (per task)".into(),
        p(paper::TAIL_VS_STATIC),
        format!("{} %", range_text(&tail, 1)),
        within(&tail, paper::TAIL_VS_STATIC),
    ]);
    t
}

enum Job {
    Timeline(usize),
    Exits(usize),
    Fig12,
    Fig13,
    Fig14,
    LiveCdf,
}

fn safe_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Builds the whole report. Single tasks that cannot be read are skipped and listed in
/// [`ReportOutcome::problems`] (and in the report); only an unusable results directory or an
/// unwritable output folder is an error.
///
/// The steps: `Dirs::create`, `load`, `compute`, `write_tables`, `draw_figures` and
/// `write_documents`.
pub fn build_report(opts: &ReportOptions) -> Result<ReportOutcome, AnalysisError> {
    let start = Instant::now();
    let dirs = Dirs::create(opts)?;
    let threads = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut loaded = load(&opts.results, threads, start)?;
    let computed = compute(&loaded.inv.tasks, &loaded.frames, &loaded.live, start)?;
    let written = write_tables(&dirs, &loaded.inv, &computed)?;
    let timeline_problems = draw_figures(&dirs, &computed, threads)?;
    loaded.inv.problems.extend(timeline_problems);
    tracing::debug!("figures after {:.2} s", start.elapsed().as_secs_f64());
    let documents = write_documents(&dirs, &loaded.inv, &computed, &written)?;
    Ok(ReportOutcome {
        out: dirs.out,
        tasks: computed.rows.len() + computed.live.len(),
        live: computed.live.len(),
        planned: loaded.inv.planned(),
        problems: loaded.inv.problems,
        report_md: documents.report_md,
        report_html: documents.report_html,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The report folder and the folders inside it.
struct Dirs {
    /// The report folder (`--out`, or `results/report/`).
    out: PathBuf,
    /// `tables/`.
    tables: PathBuf,
    /// `figures/`.
    figures: PathBuf,
    /// `figures/tasks/`.
    task_figures: PathBuf,
}

/// Fig. 12's file name in `figures/`, without extension.
const FIG12: &str = "fig12_cv_wins";
/// Fig. 13's file name in `figures/`, without extension.
const FIG13: &str = "fig13_cv_p95";
/// Fig. 14's file name in `figures/`, without extension.
const FIG14: &str = "fig14_nlp_cdf";
/// The live-against-simulated CDFs' file name in `figures/`, without extension.
const LIVE_CDF: &str = "live_vs_simulated_cdf";

impl Dirs {
    /// Makes the folders. `--out` is the user's folder (used as it resolves); the default
    /// `report/` and the folders inside the output are ours: a link there is refused, never
    /// written through.
    fn create(opts: &ReportOptions) -> Result<Self, AnalysisError> {
        let out = match &opts.out {
            Some(out) => {
                std::fs::create_dir_all(out).map_err(io_err(out))?;
                out.clone()
            }
            None => {
                let out = opts.results.join("report");
                apparate::safe_write::real_dir(&out).map_err(io_err(&out))?;
                out
            }
        };
        let tables = out.join("tables");
        let figures = out.join("figures");
        let task_figures = figures.join("tasks");
        for d in [&tables, &figures, &task_figures] {
            apparate::safe_write::real_dir(d).map_err(io_err(d))?;
        }
        Ok(Dirs {
            out,
            tables,
            figures,
            task_figures,
        })
    }

    /// A figure of the whole run (`figures/NAME`), without extension.
    fn figure(&self, name: &str) -> PathBuf {
        self.figures.join(name)
    }

    /// One of a task's figures (`figures/tasks/KEY-WHAT`), without extension.
    fn task_figure(&self, r: &TaskRow<'_>, what: &str) -> PathBuf {
        self.task_figures
            .join(format!("{}-{what}", safe_name(r.task.key())))
    }
}

/// The inventory and the rows of its usable tasks.
struct Loaded {
    /// The tasks whose rows could be used, the plan and the problems so far.
    inv: Inventory,
    /// Each task's requests, in the order of `inv.tasks` (all present).
    frames: Vec<Option<DataFrame>>,
    /// The usable live tasks (`inv.live`) with their requests and `serve.json`.
    live: Vec<LiveTask>,
}

/// Discovers the tasks of `results` and decodes their rows.
fn load(results: &Path, threads: usize, start: Instant) -> Result<Loaded, AnalysisError> {
    let mut inv = load::discover(results)?;
    tracing::info!(
        "{}: {} complete task(s) of {} ({} live), {} problem(s)",
        results.display(),
        inv.tasks.len() + inv.live.len(),
        inv.planned(),
        inv.live.len(),
        inv.problems.len()
    );
    let frames = stats::load_frames(&inv.tasks, threads, &mut inv.problems);
    // A task whose rows could not be used is a problem (listed), not a result: it leaves every
    // table, figure and summary file.
    let (tasks, frames): (Vec<_>, Vec<_>) = std::mem::take(&mut inv.tasks)
        .into_iter()
        .zip(frames)
        .filter(|(_, f)| f.is_some())
        .unzip();
    inv.tasks = tasks;
    // Live tasks: the same checks of their rows, and a readable, uninterrupted serve.json.
    let live_frames = stats::load_frames(&inv.live, threads, &mut inv.problems);
    let mut live = Vec::new();
    for (task, frame) in std::mem::take(&mut inv.live).into_iter().zip(live_frames) {
        let Some(frame) = frame else { continue };
        match live::read_serve(&task) {
            Ok(serve) => {
                inv.live.push(task.clone());
                live.push(LiveTask { task, frame, serve });
            }
            Err(p) => inv.problems.push(p),
        }
    }
    tracing::debug!("decoded after {:.2} s", start.elapsed().as_secs_f64());
    Ok(Loaded { inv, frames, live })
}

/// The numbers of the report.
struct Computed<'a> {
    /// One row per task with statistics.
    rows: Vec<TaskRow<'a>>,
    /// The per-model aggregates of `rows`.
    models: Vec<ModelRow>,
    /// One row per live task, against its simulated partner in `rows`.
    live: Vec<LiveRow>,
}

impl Computed<'_> {
    /// The models of one family, in order.
    fn family(&self, family: Family) -> Vec<&ModelRow> {
        self.models.iter().filter(|m| m.family == family).collect()
    }
}

/// Computes the per-task statistics and the per-model aggregates.
fn compute<'a>(
    tasks: &'a [LoadedTask],
    frames: &'a [Option<DataFrame>],
    live: &[LiveTask],
    start: Instant,
) -> Result<Computed<'a>, AnalysisError> {
    let stats = stats::task_stats(frames)?;
    tracing::debug!("statistics after {:.2} s", start.elapsed().as_secs_f64());
    let rows: Vec<TaskRow<'_>> = tasks
        .iter()
        .zip(stats)
        .zip(frames)
        .filter_map(|((task, s), frame)| {
            let stats = s?;
            let final_exit = tables::final_exit(task, &stats);
            Some(TaskRow {
                task,
                stats,
                final_exit,
                frame: frame.as_ref()?,
            })
        })
        .collect();
    let models = tables::model_rows(&rows);
    let live = live::live_rows(live, &rows)?;
    Ok(Computed { rows, models, live })
}

/// What [`write_tables`] wrote.
struct Written {
    /// The table files, in the order written.
    files: Vec<PathBuf>,
    /// The artifact-style summary lines per grid.
    summaries: BTreeMap<String, String>,
}

/// Writes the tables into `tables/`.
fn write_tables(
    dirs: &Dirs,
    inv: &Inventory,
    computed: &Computed<'_>,
) -> Result<Written, AnalysisError> {
    let rows = &computed.rows;
    let models = &computed.models;
    let mut files = Vec::new();
    let mut put = |name: &str, text: String| -> Result<(), AnalysisError> {
        let p = dirs.tables.join(name);
        write(&p, &text)?;
        files.push(p);
        Ok(())
    };
    put("tasks.csv", tables::tasks_table(rows, true).to_csv())?;
    put("tasks.md", tables::tasks_table(rows, false).to_markdown())?;
    put("exit_shares.csv", tables::exits_table(rows).to_csv())?;
    put("fig12_wins.csv", tables::fig12_table(models, true).to_csv())?;
    put(
        "fig12_wins.md",
        tables::fig12_table(models, false).to_markdown(),
    )?;
    put("fig13_p95.csv", tables::fig13_table(models, true).to_csv())?;
    put(
        "fig13_p95.md",
        tables::fig13_table(models, false).to_markdown(),
    )?;
    put("nlp_diffs.csv", tables::nlp_table(rows, true).to_csv())?;
    put("nlp_diffs.md", tables::nlp_table(rows, false).to_markdown())?;
    put(
        "live_vs_simulated.csv",
        live::live_table(&computed.live, true).to_csv(),
    )?;
    put(
        "live_vs_simulated.md",
        live::live_table(&computed.live, false).to_markdown(),
    )?;
    let summaries = tables::summary_lines(inv);
    for (grid, text) in &summaries {
        put(&format!("output_{}.txt", safe_name(grid)), text.clone())?;
    }
    Ok(Written { files, summaries })
}

/// Draws the figures in parallel on `threads` threads. Returns the timelines that could not be
/// drawn as problems; a figure that cannot be saved is an error.
fn draw_figures(
    dirs: &Dirs,
    computed: &Computed<'_>,
    threads: usize,
) -> Result<Vec<Problem>, AnalysisError> {
    let rows = &computed.rows;
    let cv = computed.family(Family::Cv);
    let nlp = computed.family(Family::Nlp);
    let cv_numbers: Vec<String> = computed
        .models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.family == Family::Cv)
        .map(|(i, _)| format!("#{}", i + 1))
        .collect();
    let mut jobs = Vec::new();
    if !cv.is_empty() {
        jobs.push(Job::Fig12);
        jobs.push(Job::Fig13);
    }
    if !nlp.is_empty() {
        jobs.push(Job::Fig14);
    }
    if !computed.live.is_empty() {
        jobs.push(Job::LiveCdf);
    }
    for i in 0..rows.len() {
        jobs.push(Job::Timeline(i));
        jobs.push(Job::Exits(i));
    }
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::<Problem>::new());
    let errors = Mutex::new(Vec::<AnalysisError>::new());
    let fig12_base = dirs.figure(FIG12);
    let fig13_base = dirs.figure(FIG13);
    let fig14_base = dirs.figure(FIG14);
    let live_base = dirs.figure(LIVE_CDF);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let result = match job {
                    Job::Fig12 => figures::save(
                        &figures::fig12(
                            cv.iter().map(|m| m.label.clone()).collect(),
                            cv_numbers.clone(),
                            cv.iter().map(|m| m.win).collect(),
                            cv.iter().map(|m| m.optimal_win).collect(),
                        ),
                        &fig12_base,
                    ),
                    Job::Fig13 => figures::save(
                        &figures::fig13(
                            cv.iter().map(|m| m.label.clone()).collect(),
                            cv_numbers.clone(),
                            cv.iter().map(|m| m.p95_apparate).collect(),
                            cv.iter().map(|m| m.p95_vanilla).collect(),
                        ),
                        &fig13_base,
                    ),
                    Job::Fig14 => fig14(&nlp, rows).and_then(|p| figures::save(&p, &fig14_base)),
                    Job::LiveCdf => figures::save(&live::cdf_figure(&computed.live), &live_base),
                    Job::Exits(i) => {
                        let r = &rows[*i];
                        figures::save(&exit_bars(r), &dirs.task_figure(r, "exits"))
                    }
                    Job::Timeline(i) => {
                        let r = &rows[*i];
                        match timeline(r) {
                            Ok(t) => figures::save(&t, &dirs.task_figure(r, "timeline")),
                            Err(p) => {
                                if let Ok(mut v) = problems.lock() {
                                    v.push(p);
                                }
                                continue;
                            }
                        }
                    }
                };
                if let Err(e) = result {
                    if let Ok(mut v) = errors.lock() {
                        v.push(e);
                    }
                }
            });
        }
    });
    if let Some(e) = errors.into_inner().ok().and_then(|mut v| v.pop()) {
        return Err(e);
    }
    Ok(problems.into_inner().unwrap_or_default())
}

/// Where [`write_documents`] wrote the report.
struct Documents {
    /// `report.md`.
    report_md: PathBuf,
    /// `report.html`.
    report_html: PathBuf,
}

/// Writes `report.md`, `report.html` and `problems.txt` (removed when there are none).
fn write_documents(
    dirs: &Dirs,
    inv: &Inventory,
    computed: &Computed<'_>,
    written: &Written,
) -> Result<Documents, AnalysisError> {
    let out = &dirs.out;
    let rows = &computed.rows;
    let models = &computed.models;
    let cv = computed.family(Family::Cv);
    let nlp = computed.family(Family::Nlp);
    let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).to_path_buf();
    let mut blocks = Vec::new();
    blocks.push(Block::Heading(1, "Apparate reproduction report".into()));
    blocks.extend(overview(inv, rows, &computed.live));
    if !inv.problems.is_empty() {
        blocks.push(Block::Heading(2, "Problems (skipped)".into()));
        blocks.push(Block::List(
            inv.problems
                .iter()
                .map(|p| format!("`{}`: {}", p.path.display(), p.message))
                .collect(),
        ));
    }
    blocks.push(Block::Heading(
        2,
        "Against the paper's published numbers".into(),
    ));
    blocks.push(Block::Para(
        "Published ranges from `spec/paper.md`; \"this run\" is the range over the models \
         (or tasks) of this results directory."
            .into(),
    ));
    blocks.push(Block::Table(paper_table(rows, models)));
    blocks.push(Block::Heading(2, "Figures".into()));
    let fig = |base: &Path, caption: &str| {
        Block::Figure(
            caption.to_string(),
            rel(&base.with_extension("png")),
            rel(&base.with_extension("svg")),
        )
    };
    if !cv.is_empty() {
        blocks.push(fig(
            &dirs.figure(FIG12),
            "Fig. 12: median end-to-end latency reduction vs vanilla per CV model; bar = median over videos, error bars = min and max",
        ));
        blocks.push(fig(
            &dirs.figure(FIG13),
            "Fig. 13: p95 end-to-end latency (ms) of Apparate and vanilla per CV model; bar = median over videos, error bars = min and max",
        ));
    }
    if !nlp.is_empty() {
        blocks.push(fig(
            &dirs.figure(FIG14),
            "Fig. 14: CDFs of end-to-end latency per NLP model, both datasets, Apparate (solid) vs vanilla (dashed); x axis cut at the 99th percentile",
        ));
    }
    blocks.push(Block::Heading(
        2,
        "Per model (Fig. 12 and 13 aggregates)".into(),
    ));
    blocks.push(Block::Table(tables::fig12_table(models, false)));
    blocks.push(Block::Table(tables::fig13_table(models, false)));
    if !nlp.is_empty() {
        blocks.push(Block::Heading(
            2,
            "NLP: p50 and p25 differences (Fig. 14 script)".into(),
        ));
        blocks.push(Block::Table(tables::nlp_table(rows, false)));
    }
    if !computed.live.is_empty() {
        blocks.push(Block::Heading(2, "Live against simulated".into()));
        blocks.push(Block::Para(
            "One row per live task (served by `ee-backend serve` with the real model; measured \
             queueing and inference) against the simulated task of the same spec. Latency is per \
             request, queueing + inference, in ms (a null queueing delay counts as 0: the latency \
             is then the inference alone); ratios are live / simulated; accuracy is \
             `summary.json`'s `overall_accuracy`; the exit rate is the share of requests that left \
             before the final exit; slow batches from `serve.json`. Empty (–) where there is no \
             simulated partner or the value is not known. Live tasks are in no other table or \
             figure. Full precision in `tables/live_vs_simulated.csv`."
                .into(),
        ));
        blocks.push(Block::Table(live::live_table(&computed.live, false)));
        blocks.push(fig(
            &dirs.figure(LIVE_CDF),
            "Per-request latency CDFs per live task: live (solid) against simulated (dashed); x axis cut at the larger 99th percentile",
        ));
    }
    blocks.push(Block::Heading(2, "Per task".into()));
    blocks.push(Block::Para(
        "Latencies are end-to-end (queueing + inference), in ms; wins are `100·(1 − Apparate/vanilla)` \
         at the given percentile. Full precision in `tables/tasks.csv`."
            .into(),
    ));
    blocks.push(Block::Table(tables::tasks_table(rows, false)));
    for (grid, text) in &written.summaries {
        blocks.push(Block::Details(
            format!("`output_{grid}.txt` (artifact-style summary lines, grid order)"),
            vec![Block::Pre(text.clone())],
        ));
    }
    blocks.push(Block::Heading(2, "Per-task figures".into()));
    for r in rows {
        let s = &r.task.manifest.spec;
        let mut inner = Vec::new();
        let tl = dirs.task_figure(r, "timeline");
        if tl.with_extension("png").is_file() {
            inner.push(fig(
                &tl,
                "controller timeline: active ramps and thresholds per batch",
            ));
        }
        inner.push(fig(
            &dirs.task_figure(r, "exits"),
            "exit-point distribution (Apparate)",
        ));
        blocks.push(Block::Details(
            format!(
                "{} / {} / {} (`{}`)",
                s.grid,
                s.model,
                s.dataset,
                r.task.key()
            ),
            inner,
        ));
    }
    blocks.push(Block::Heading(2, "Files".into()));
    blocks.push(Block::List(
        written
            .files
            .iter()
            .map(|p| format!("`{}`", rel(p).display()))
            .collect(),
    ));
    let report_md = out.join("report.md");
    let report_html = out.join("report.html");
    write(&report_md, &doc::markdown(&blocks))?;
    write(
        &report_html,
        &doc::html("Apparate reproduction report", &blocks, out),
    )?;
    let problems_path = out.join("problems.txt");
    if inv.problems.is_empty() {
        let _ = std::fs::remove_file(&problems_path);
    } else {
        let text: String = inv.problems.iter().map(|p| format!("{p}\n")).collect();
        write(&problems_path, &text)?;
    }
    Ok(Documents {
        report_md,
        report_html,
    })
}

fn overview(inv: &Inventory, rows: &[TaskRow<'_>], live: &[LiveRow]) -> Vec<Block> {
    let mut inputs: Vec<String> = Vec::new();
    let mut versions: Vec<String> = Vec::new();
    for t in inv.tasks.iter().chain(&inv.live) {
        let i = match &t.manifest.spec.inputs {
            Inputs::Embedded { scale } => format!("embedded synthetic workload, scale {scale}"),
            Inputs::Artifact { dir } => format!("artifact data in `{}`", dir.display()),
            Inputs::Backend { model, device, .. } => format!(
                "model `{model}` run by ee-backend on {} (inputs/<digest>/)",
                device.name()
            ),
        };
        if !inputs.contains(&i) {
            inputs.push(i);
        }
        if !versions.contains(&t.manifest.code_version) {
            versions.push(t.manifest.code_version.clone());
        }
    }
    let requests: u64 =
        rows.iter().map(|r| r.stats.n).sum::<u64>() + live.iter().map(|r| r.served).sum::<u64>();
    let live_note = if live.is_empty() {
        String::new()
    } else {
        format!(", {} of them live", live.len())
    };
    let plan = match &inv.plan {
        Some(p) => format!(
            "sweep `{}` (plan code version `{}`; grids {})",
            p.name,
            p.code_version,
            p.grids
                .iter()
                .map(|g| format!("`{}` {}", g.name, g.count))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "no `sweep.json`: coverage counts the task folders found".into(),
    };
    vec![
        Block::Para(format!(
            "**Coverage: {} of {} tasks**{live_note} ({} request rows).",
            rows.len() + live.len(),
            inv.planned(),
            requests
        )),
        Block::List(vec![
            format!("results: `{}`", inv.root.display()),
            plan,
            format!(
                "inputs: {}",
                if inputs.is_empty() {
                    "–".into()
                } else {
                    inputs.join("; ")
                }
            ),
            format!(
                "code version of the results: {}; analysis {}",
                if versions.is_empty() {
                    "–".into()
                } else {
                    versions.join(", ")
                },
                env!("CARGO_PKG_VERSION")
            ),
            "percentiles: numpy's default (linear interpolation; the median of an even count \
             averages the two middle values); latency = queueing + inference"
                .into(),
        ]),
    ]
}

fn exit_bars(r: &TaskRow<'_>) -> ExitBars {
    let s = &r.task.manifest.spec;
    ExitBars {
        title: format!(
            "Exit points: {} on {} ({} requests, {:.1} % early)",
            s.model,
            s.dataset,
            r.stats.n,
            100.0 * r.early_share()
        ),
        final_exit: r.final_exit,
        shares: r
            .stats
            .exits
            .iter()
            .map(|e| (e.exit_point, e.share))
            .collect(),
    }
}

fn timeline(r: &TaskRow<'_>) -> Result<Timeline, Problem> {
    let path = r.task.batches_path();
    let text = r.task.read_batches().map_err(|e| Problem {
        path: path.clone(),
        message: format!("cannot read (timeline left out): {e}"),
    })?;
    let s = &r.task.manifest.spec;
    Timeline::from_jsonl(
        format!("Controller timeline: {} on {}", s.model, s.dataset),
        i64::from(r.final_exit) - 1,
        &text,
        1500,
    )
    .map_err(|message| Problem {
        path,
        message: format!("{message} (timeline left out)"),
    })
}

fn fig14(nlp: &[&ModelRow], rows: &[TaskRow<'_>]) -> Result<figures::CdfPanels, AnalysisError> {
    let mut panels = Vec::new();
    for m in nlp {
        let mut curves = Vec::new();
        let mut xmax = 0.0f64;
        for (d, r) in rows
            .iter()
            .filter(|r| {
                let s = &r.task.manifest.spec;
                s.grid == m.grid && s.model == m.model && r.config() == m.config
            })
            .enumerate()
        {
            let (app, van) = stats::sorted_latencies(r.frame)?;
            xmax = xmax.max(r.stats.vanilla.p99).max(r.stats.apparate.p99);
            let color = figures::PALETTE[(2 * d) % figures::PALETTE.len()];
            let ds = &r.task.manifest.spec.dataset;
            curves.push(Curve {
                name: format!("Apparate, {ds}"),
                color,
                dashed: false,
                points: figures::cdf_points(&app, 600),
            });
            curves.push(Curve {
                name: format!("vanilla, {ds}"),
                color,
                dashed: true,
                points: figures::cdf_points(&van, 600),
            });
        }
        panels.push((m.label.clone(), (xmax * 1.02).max(1e-3), curves));
    }
    Ok(figures::CdfPanels {
        title: "Fig. 14: end-to-end latency CDFs, NLP models (Apparate solid, vanilla dashed)"
            .into(),
        panels,
        columns: 2,
    })
}

/// Loads only the inventory (for callers that want coverage without drawing): manifests, file
/// sizes and Parquet schemas are checked, the rows are not, so a task whose latencies are not
/// latencies (which [`build_report`] skips as a problem) still counts here.
pub fn coverage(results: &Path) -> Result<(usize, usize, Vec<Problem>), AnalysisError> {
    let inv = load::discover(results)?;
    Ok((inv.complete(), inv.planned(), inv.problems))
}
