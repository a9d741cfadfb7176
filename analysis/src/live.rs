//! Live runs against simulated ones (issue #14): a live task (its spec's `live` set, served by
//! `ee-backend serve` with the real model) is paired with the simulated task of the same spec
//! without `live` (same model, dataset, trace, parameters, seed and inputs; the grid may be
//! another, since a live grid and its simulated twin are two grids of one spec), and the two
//! are compared in the table `live_vs_simulated` and in per-request latency CDFs.
//!
//! Live tasks never enter the paper's tables and figures ([`crate::load::Inventory::live`]).
//! Latency here is the per-request end-to-end latency, `queueing_ms + inference_ms` (measured
//! wall clock for a live task, simulated for its partner), with a null `queueing_ms` counting
//! as 0 (the latency is then the inference alone), as everywhere in the report.

use crate::error::AnalysisError;
use crate::figures::{self, CdfPanels, Curve};
use crate::load::{LoadedTask, Problem};
use crate::stats::{self, ExitShare, Quantiles};
use crate::tables::{self, fixed, full, opt_fixed, opt_full, Table, TaskRow};
use polars::prelude::DataFrame;
use serde::Deserialize;

/// The largest `serve.json` read (real ones are a few hundred bytes).
const MAX_SERVE_BYTES: u64 = 1024 * 1024;

/// What a live task's `serve.json` says, the fields the report uses (others are ignored;
/// absent ones are `None`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct ServeInfo {
    /// `realtime`, `fast` or `virtual`.
    pub clock: Option<String>,
    /// `model` or `replay`.
    pub executor: Option<String>,
    /// The device the model ran on.
    pub device: Option<String>,
    /// Requests that arrived.
    pub requests: Option<u64>,
    /// Requests served.
    pub served: Option<u64>,
    /// Requests dropped.
    pub dropped: Option<u64>,
    /// Batches run.
    pub batches: Option<u64>,
    /// The run was stopped before its end (such a folder is not a result).
    #[serde(default)]
    pub interrupted: bool,
    /// Batches whose measured latency was far from the profile's prediction.
    pub slow_batches: Option<u64>,
}

/// Reads and checks a live task's `serve.json`. A file that is not a `serve.json`, or says the
/// run was interrupted, is a [`Problem`] naming it: the task is not a result.
pub fn read_serve(task: &LoadedTask) -> Result<ServeInfo, Problem> {
    let path = task.dir.join("serve.json");
    let problem = |message: String| Problem {
        path: path.clone(),
        message,
    };
    let size = std::fs::metadata(&path)
        .map_err(|e| problem(format!("cannot read: {e}")))?
        .len();
    if size > MAX_SERVE_BYTES {
        return Err(problem(format!(
            "{size} bytes, more than a serve.json holds ({MAX_SERVE_BYTES}); live task {} skipped",
            task.key()
        )));
    }
    let bytes = std::fs::read(&path).map_err(|e| problem(format!("cannot read: {e}")))?;
    let info: ServeInfo = serde_json::from_slice(&bytes).map_err(|e| {
        problem(format!(
            "not a serve.json ({e}); expected an object with \"served\", \"slow_batches\", ...; live task {} skipped",
            task.key()
        ))
    })?;
    if info.interrupted {
        return Err(problem(format!(
            "the run was interrupted (\"interrupted\": true): live task {} is not a result, skipped",
            task.key()
        )));
    }
    Ok(info)
}

/// `summary.json`'s `overall_accuracy` (%), `None` when it cannot be read or is not a number.
pub fn summary_accuracy(task: &LoadedTask) -> Option<f64> {
    let path = task
        .dir
        .join(task.manifest.storage.stored_name("summary.json"));
    let bytes = std::fs::read(path).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("overall_accuracy")?
        .as_f64()
        .filter(|a| a.is_finite())
}

/// A live task with its requests and `serve.json`.
#[derive(Clone, Debug)]
pub struct LiveTask {
    /// The task.
    pub task: LoadedTask,
    /// Its `requests.parquet` (the columns of [`crate::requests`]).
    pub frame: DataFrame,
    /// Its `serve.json`.
    pub serve: ServeInfo,
}

/// The simulated partner of `live` among `rows`: the task whose spec is `live`'s without
/// `live`, in any grid. Of several (results of other code versions), the one with the same
/// input digests and code version, else the first in grid order.
pub fn partner<'r, 'a>(live: &LoadedTask, rows: &'r [TaskRow<'a>]) -> Option<&'r TaskRow<'a>> {
    let spec = &live.manifest.spec;
    // Every field but the grid's name (a live grid and its simulated twin are two grids of one
    // spec) and `live`; destructured, so that a new field must be decided on here.
    let same = |other: &apparate::task::TaskSpec| {
        let apparate::task::TaskSpec {
            grid: _,
            family,
            model,
            dataset,
            trace,
            params,
            seed,
            inputs,
            live,
        } = other;
        live.is_none()
            && *family == spec.family
            && *model == spec.model
            && *dataset == spec.dataset
            && *trace == spec.trace
            && *params == spec.params
            && *seed == spec.seed
            && *inputs == spec.inputs
    };
    let mut candidates = rows.iter().filter(|r| same(&r.task.manifest.spec));
    let first = candidates.clone().next();
    candidates
        .find(|r| {
            r.task.manifest.digests == live.manifest.digests
                && r.task.manifest.code_version == live.manifest.code_version
        })
        .or(first)
}

/// One row of `live_vs_simulated`: a live task and its simulated partner's numbers (`None`
/// where there is no partner or the value is not known).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveRow {
    /// The live task's key.
    pub key: String,
    /// The simulated partner's key.
    pub simulated_key: Option<String>,
    /// Model.
    pub model: String,
    /// Dataset.
    pub dataset: String,
    /// Trace name.
    pub trace: String,
    /// Batching scheme.
    pub batching: String,
    /// The live run's clock (`realtime` | `fast`, from the spec).
    pub clock: String,
    /// The device the model ran on (`serve.json`, else the spec's `device`).
    pub device: String,
    /// Served requests (rows of `requests.parquet`), live.
    pub served: u64,
    /// Served requests, simulated.
    pub simulated_served: Option<u64>,
    /// Requests dropped by the live server (`serve.json`).
    pub dropped: Option<u64>,
    /// Per-request latency (queueing + inference, ms), live.
    pub latency: Quantiles,
    /// Per-request latency, simulated.
    pub simulated_latency: Option<Quantiles>,
    /// `summary.json`'s `overall_accuracy` (%), live.
    pub accuracy: Option<f64>,
    /// `summary.json`'s `overall_accuracy` (%), simulated.
    pub simulated_accuracy: Option<f64>,
    /// Share of requests that exited before the final exit (0–1), live.
    pub exit_rate: f64,
    /// Share of requests that exited before the final exit (0–1), simulated.
    pub simulated_exit_rate: Option<f64>,
    /// Batches far from the profile's prediction (`serve.json` `slow_batches`).
    pub slow_batches: Option<u64>,
    /// Sorted per-request latencies (ms), live, for the CDF.
    pub latencies: Vec<f64>,
    /// Sorted per-request latencies (ms), simulated.
    pub simulated_latencies: Option<Vec<f64>>,
}

impl LiveRow {
    /// Live median / simulated median.
    pub fn p50_ratio(&self) -> Option<f64> {
        self.simulated_latency.map(|s| self.latency.p50 / s.p50)
    }
    /// Live p95 / simulated p95.
    pub fn p95_ratio(&self) -> Option<f64> {
        self.simulated_latency.map(|s| self.latency.p95 / s.p95)
    }
}

/// Share of `exits` not at `final_exit`.
fn early_share(exits: &[ExitShare], final_exit: i32) -> f64 {
    exits
        .iter()
        .filter(|e| e.exit_point != final_exit)
        .map(|e| e.share)
        .sum()
}

/// The rows of `live_vs_simulated`, one per live task, in the live tasks' order; `simulated`
/// are the report's simulated tasks (their partners).
pub fn live_rows(
    live: &[LiveTask],
    simulated: &[TaskRow<'_>],
) -> Result<Vec<LiveRow>, AnalysisError> {
    let frames: Vec<Option<DataFrame>> = live.iter().map(|l| Some(l.frame.clone())).collect();
    let stats = stats::task_stats(&frames)?;
    let mut out = Vec::with_capacity(live.len());
    for (l, s) in live.iter().zip(stats) {
        // Frames without rows were refused when loaded.
        let Some(s) = s else { continue };
        let spec = &l.task.manifest.spec;
        let sim = partner(&l.task, simulated);
        // The final exit: the model's number of ramp sites, else the largest exit point seen
        // in either run (the same for both, so the two exit rates compare).
        let final_exit = apparate::workload::models::preset(&spec.model)
            .map(|p| p.sites as i32)
            .unwrap_or_else(|| {
                s.exits
                    .iter()
                    .chain(sim.iter().flat_map(|r| r.stats.exits.iter()))
                    .map(|e| e.exit_point)
                    .max()
                    .unwrap_or(0)
            });
        let latencies = stats::sorted_latencies(&l.frame)?.0;
        let simulated_latencies = match sim {
            Some(r) => Some(stats::sorted_latencies(r.frame)?.0),
            None => None,
        };
        let device = l
            .serve
            .device
            .clone()
            .unwrap_or_else(|| match &spec.inputs {
                apparate::task::Inputs::Backend { device, .. } => device.name().to_string(),
                _ => String::new(),
            });
        out.push(LiveRow {
            key: l.task.key().to_string(),
            simulated_key: sim.map(|r| r.task.key().to_string()),
            model: spec.model.clone(),
            dataset: spec.dataset.clone(),
            trace: spec.trace.name().to_string(),
            batching: tables::batching_name(spec),
            clock: spec
                .live
                .as_ref()
                .map(|r| r.clock.name().to_string())
                .unwrap_or_default(),
            device,
            served: s.n,
            simulated_served: sim.map(|r| r.stats.n),
            dropped: l.serve.dropped,
            latency: s.apparate,
            simulated_latency: sim.map(|r| r.stats.apparate),
            accuracy: summary_accuracy(&l.task),
            simulated_accuracy: sim.and_then(|r| summary_accuracy(r.task)),
            exit_rate: early_share(&s.exits, final_exit),
            simulated_exit_rate: sim.map(|r| early_share(&r.stats.exits, final_exit)),
            slow_batches: l.serve.slow_batches,
            latencies,
            simulated_latencies,
        });
    }
    Ok(out)
}

/// The table `live_vs_simulated`: `precise` selects full precision (CSV, empty cells where
/// unknown) or rounded (Markdown, `–`).
pub fn live_table(rows: &[LiveRow], precise: bool) -> Table {
    let mut t = Table::new(&[
        "key",
        "simulated_key",
        "model",
        "dataset",
        "trace",
        "batching",
        "clock",
        "device",
        "live_served",
        "simulated_served",
        "live_dropped",
        "live_p50_ms",
        "simulated_p50_ms",
        "live_p95_ms",
        "simulated_p95_ms",
        "live_p99_ms",
        "simulated_p99_ms",
        "p50_ratio",
        "p95_ratio",
        "live_accuracy_pct",
        "simulated_accuracy_pct",
        "live_exit_rate_pct",
        "simulated_exit_rate_pct",
        "slow_batches",
    ]);
    let num = |x: f64, d: usize| if precise { full(x) } else { fixed(x, d) };
    let onum = |x: Option<f64>, d: usize| {
        if precise {
            opt_full(x)
        } else {
            opt_fixed(x, d)
        }
    };
    let ocount = |x: Option<u64>| match x {
        Some(v) => v.to_string(),
        None if precise => String::new(),
        None => "–".to_string(),
    };
    for r in rows {
        let sim = r.simulated_latency;
        t.rows.push(vec![
            r.key.clone(),
            r.simulated_key.clone().unwrap_or_else(|| {
                if precise {
                    String::new()
                } else {
                    "–".into()
                }
            }),
            r.model.clone(),
            r.dataset.clone(),
            r.trace.clone(),
            r.batching.clone(),
            r.clock.clone(),
            r.device.clone(),
            r.served.to_string(),
            ocount(r.simulated_served),
            ocount(r.dropped),
            num(r.latency.p50, 2),
            onum(sim.map(|q| q.p50), 2),
            num(r.latency.p95, 2),
            onum(sim.map(|q| q.p95), 2),
            num(r.latency.p99, 2),
            onum(sim.map(|q| q.p99), 2),
            onum(r.p50_ratio(), 2),
            onum(r.p95_ratio(), 2),
            onum(r.accuracy, 2),
            onum(r.simulated_accuracy, 2),
            num(100.0 * r.exit_rate, 1),
            onum(r.simulated_exit_rate.map(|e| 100.0 * e), 1),
            ocount(r.slow_batches),
        ]);
    }
    t
}

/// The figure: one panel per live task, its per-request latency CDF (solid) and its simulated
/// partner's (dashed) on one axis, cut at the larger 99th percentile.
pub fn cdf_figure(rows: &[LiveRow]) -> CdfPanels {
    let live_color = figures::PALETTE[3];
    let sim_color = figures::PALETTE[0];
    let panels = rows
        .iter()
        .map(|r| {
            let mut curves = Vec::new();
            if let Some(sim) = &r.simulated_latencies {
                curves.push(Curve {
                    name: "simulated".into(),
                    color: sim_color,
                    dashed: true,
                    points: figures::cdf_points(sim, 600),
                });
            }
            curves.push(Curve {
                name: format!("live ({}, {})", r.clock, r.device),
                color: live_color,
                dashed: false,
                points: figures::cdf_points(&r.latencies, 600),
            });
            let xmax = r
                .simulated_latency
                .map_or(r.latency.p99, |s| s.p99.max(r.latency.p99));
            let title = if r.simulated_key.is_some() {
                format!("{} on {}, {}", r.model, r.dataset, r.trace)
            } else {
                format!(
                    "{} on {}, {} (no simulated run)",
                    r.model, r.dataset, r.trace
                )
            };
            (title, (xmax * 1.02).max(1e-3), curves)
        })
        .collect();
    CdfPanels {
        title: "Per-request latency CDFs: live (solid) against simulated (dashed)".into(),
        panels,
        columns: rows.len().clamp(1, 2),
    }
}
