//! Per-task statistics over `requests.parquet`, computed with polars' lazy API: the tasks'
//! frames (decoded by [`crate::requests`]) concatenated lazily and grouped by task.
//!
//! **Percentiles follow numpy's defaults**: linear interpolation between the two nearest ranks
//! at position `p/100 · (n − 1)` of the sorted values (polars `QuantileMethod::Linear`), so the
//! median of an even count averages the two middle values. End-to-end latency is
//! `queueing_ms + X` (a null `queueing_ms`, the uniform scheme's, counts as 0), as in the
//! artifact's plotting scripts (`../shared/spec/paper.md`, "How the figures are computed").

use crate::error::AnalysisError;
use crate::load::{LoadedTask, Problem};
use polars::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The percentiles reported for a latency distribution (ms).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quantiles {
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The share of requests that left at one exit point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExitShare {
    /// Ramp id, or R for the final exit.
    pub exit_point: i32,
    /// Requests.
    pub count: u64,
    /// Fraction of all requests (0–1).
    pub share: f64,
}

/// One task's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskStats {
    /// Served requests.
    pub n: u64,
    /// Vanilla end-to-end latency (queueing + vanilla inference).
    pub vanilla: Quantiles,
    /// Apparate end-to-end latency.
    pub apparate: Quantiles,
    /// Oracle (optimal exits), when computed.
    pub optimal: Option<Quantiles>,
    /// Static early-exit baseline, when computed.
    pub fixed: Option<Quantiles>,
    /// Apparate's accuracy (% agreement with the original model).
    pub accuracy: f64,
    /// The static baseline's accuracy (%), when computed.
    pub static_accuracy: Option<f64>,
    /// Exit-point shares, by exit point.
    pub exits: Vec<ExitShare>,
}

/// `100 · (1 − a / b)`: the latency reduction of `a` against `b`, in %.
pub fn win(a: f64, b: f64) -> f64 {
    100.0 * (1.0 - a / b)
}

impl TaskStats {
    /// Median win of Apparate over vanilla (%), the Fig. 12 number.
    pub fn win_p50(&self) -> f64 {
        win(self.apparate.p50, self.vanilla.p50)
    }
    /// 25th-percentile win (%).
    pub fn win_p25(&self) -> f64 {
        win(self.apparate.p25, self.vanilla.p25)
    }
    /// The oracle's median win (%).
    pub fn optimal_win_p50(&self) -> Option<f64> {
        self.optimal.map(|o| win(o.p50, self.vanilla.p50))
    }
    /// The static baseline's median win (%).
    pub fn static_win_p50(&self) -> Option<f64> {
        self.fixed.map(|o| win(o.p50, self.vanilla.p50))
    }
}

const PERCENTILES: [(&str, f64); 4] = [("p25", 0.25), ("p50", 0.5), ("p95", 0.95), ("p99", 0.99)];
const SERIES: [&str; 4] = ["van", "app", "opt", "sta"];

fn end_to_end(column: &str) -> Expr {
    col("queueing_ms").fill_null(lit(0.0)) + col(column)
}

/// All frames as one lazy frame with a `task` column (the index into the task list).
fn concat_frames(frames: &[(u32, &DataFrame)]) -> PolarsResult<LazyFrame> {
    let parts: Vec<LazyFrame> = frames
        .iter()
        .map(|(i, df)| (*df).clone().lazy().with_column(lit(*i).alias("task")))
        .collect();
    concat(parts, UnionArgs::default())
}

fn summary_query(lf: LazyFrame) -> PolarsResult<DataFrame> {
    let mut aggs = vec![
        len().alias("n"),
        (col("correct").cast(DataType::Float64).mean() * lit(100.0)).alias("acc"),
        (col("static_correct").cast(DataType::Float64).mean() * lit(100.0)).alias("sacc"),
    ];
    for s in SERIES {
        for (name, q) in PERCENTILES {
            aggs.push(
                col(s)
                    .quantile(lit(q), QuantileMethod::Linear)
                    .alias(format!("{s}_{name}")),
            );
        }
    }
    lf.select([
        col("task"),
        col("correct"),
        col("static_correct"),
        end_to_end("vanilla_ms").alias("van"),
        end_to_end("inference_ms").alias("app"),
        end_to_end("optimal_ms").alias("opt"),
        end_to_end("static_ms").alias("sta"),
    ])
    .group_by([col("task")])
    .agg(aggs)
    .collect()
}

fn exits_query(lf: LazyFrame) -> PolarsResult<DataFrame> {
    lf.group_by([col("task"), col("exit_point")])
        .agg([len().alias("count")])
        .collect()
}

fn f64_at(df: &DataFrame, column: &str, row: usize) -> Option<f64> {
    let c = df.column(column).ok()?;
    let c = c.cast(&DataType::Float64).ok()?;
    c.f64().ok()?.get(row)
}

fn quantiles(df: &DataFrame, series: &str, row: usize) -> Option<Quantiles> {
    Some(Quantiles {
        p25: f64_at(df, &format!("{series}_p25"), row)?,
        p50: f64_at(df, &format!("{series}_p50"), row)?,
        p95: f64_at(df, &format!("{series}_p95"), row)?,
        p99: f64_at(df, &format!("{series}_p99"), row)?,
    })
}

fn stats_of(frames: &[(u32, &DataFrame)]) -> PolarsResult<HashMap<u32, TaskStats>> {
    let lf = concat_frames(frames)?;
    let summary = summary_query(lf.clone())?;
    let exits = exits_query(lf)?;
    let mut exit_map: HashMap<u32, Vec<ExitShare>> = HashMap::new();
    for i in 0..exits.height() {
        let (Some(task), Some(point), Some(count)) = (
            f64_at(&exits, "task", i),
            f64_at(&exits, "exit_point", i),
            f64_at(&exits, "count", i),
        ) else {
            continue;
        };
        exit_map.entry(task as u32).or_default().push(ExitShare {
            exit_point: point as i32,
            count: count as u64,
            share: 0.0,
        });
    }
    let mut out = HashMap::new();
    for i in 0..summary.height() {
        let Some(task) = f64_at(&summary, "task", i).map(|t| t as u32) else {
            continue;
        };
        let n = f64_at(&summary, "n", i).unwrap_or(0.0) as u64;
        let (Some(vanilla), Some(apparate)) =
            (quantiles(&summary, "van", i), quantiles(&summary, "app", i))
        else {
            continue; // no rows: reported by the caller
        };
        let mut exits = exit_map.remove(&task).unwrap_or_default();
        exits.sort_by_key(|e| e.exit_point);
        for e in &mut exits {
            e.share = e.count as f64 / n.max(1) as f64;
        }
        out.insert(
            task,
            TaskStats {
                n,
                vanilla,
                apparate,
                optimal: quantiles(&summary, "opt", i),
                fixed: quantiles(&summary, "sta", i),
                accuracy: f64_at(&summary, "acc", i).unwrap_or(f64::NAN),
                static_accuracy: f64_at(&summary, "sacc", i),
                exits,
            },
        );
    }
    Ok(out)
}

/// The largest latency magnitude a row may hold, in ms (about 32 years): a trace spans at most
/// 1,000,000 minutes (6·10^10 ms), so anything past this is a corrupt value, not a wait.
pub const MAX_LATENCY_MS: f64 = 1e12;

/// How a latency column's (non-null) values are bounded below.
#[derive(Clone, Copy, PartialEq)]
enum Floor {
    /// Inference takes time: `> 0` (a win divides by the vanilla latency).
    Positive,
    /// A queueing delay may be 0, or round a hair below it: `>= -MAX_LATENCY_MS`.
    Any,
}

/// The latency columns and their floors.
const LATENCY_COLUMNS: [(&str, Floor); 5] = [
    ("inference_ms", Floor::Positive),
    ("vanilla_ms", Floor::Positive),
    ("queueing_ms", Floor::Any),
    ("optimal_ms", Floor::Positive),
    ("static_ms", Floor::Positive),
];

/// Checks that every latency of a frame is a finite number of ms in its column's range, so that
/// no percentile, table or figure is computed from NaN, an infinity or a value like -1e308.
/// The error names the column, how many rows are bad, and the first one.
pub fn check_latencies(df: &DataFrame) -> Result<(), String> {
    for (name, floor) in LATENCY_COLUMNS {
        let fits = |v: f64| match floor {
            Floor::Positive => v > 0.0 && v <= MAX_LATENCY_MS,
            Floor::Any => (-MAX_LATENCY_MS..=MAX_LATENCY_MS).contains(&v),
        };
        let Ok(column) = df.column(name) else {
            continue; // required columns are checked when the file is read
        };
        let values = column.f64().map_err(|e| format!("column {name}: {e}"))?;
        let mut bad = 0usize;
        let mut first: Option<(usize, f64)> = None;
        for (row, v) in values.into_iter().enumerate() {
            let Some(v) = v else { continue };
            if !fits(v) {
                bad += 1;
                first.get_or_insert((row, v));
            }
        }
        if let Some((row, v)) = first {
            // Described, not printed: the report must not show the value itself.
            let what = if v.is_nan() {
                "not a number"
            } else if v.is_infinite() {
                "infinite"
            } else if v > MAX_LATENCY_MS {
                "above the range"
            } else {
                "below the range"
            };
            let range = match floor {
                Floor::Positive => "(0, 10^12]",
                Floor::Any => "[-10^12, 10^12]",
            };
            return Err(format!(
                "column {name}: {bad} of {} rows are not a latency (the first, row {row}, is {what}); expected finite numbers of ms in {range}",
                df.height()
            ));
        }
    }
    Ok(())
}

/// Decodes every task's `requests.parquet` (on `threads` threads). A file that cannot be
/// decoded, has no rows or holds a latency that is not one ([`check_latencies`]) gives `None`
/// and a [`Problem`] naming the file and the task: the task is skipped.
pub fn load_frames(
    tasks: &[LoadedTask],
    threads: usize,
    problems: &mut Vec<Problem>,
) -> Vec<Option<DataFrame>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<DataFrame, String>>>> =
        tasks.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(tasks.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = tasks.get(i) else { break };
                let r = crate::requests::read_frame(&t.requests_path());
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(r);
                }
            });
        }
    });
    tasks
        .iter()
        .zip(slots)
        .map(|(t, slot)| {
            let r = slot
                .into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("not read".into()));
            let r = r.and_then(|df| {
                check_latencies(&df)
                    .map(|()| df)
                    .map_err(|e| format!("task {} skipped: {e}", t.key()))
            });
            match r {
                Ok(df) if df.height() > 0 => Some(df),
                Ok(_) => {
                    problems.push(Problem {
                        path: t.requests_path(),
                        message: "no request rows".into(),
                    });
                    None
                }
                Err(message) => {
                    problems.push(Problem {
                        path: t.requests_path(),
                        message,
                    });
                    None
                }
            }
        })
        .collect()
}

/// The statistics of every task with a frame, in the tasks' order (one lazy query over all).
pub fn task_stats(frames: &[Option<DataFrame>]) -> Result<Vec<Option<TaskStats>>, AnalysisError> {
    let present: Vec<(u32, &DataFrame)> = frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.as_ref().map(|df| (i as u32, df)))
        .collect();
    if present.is_empty() {
        return Ok(vec![None; frames.len()]);
    }
    let mut by_task = stats_of(&present).map_err(|source| AnalysisError::Polars {
        what: format!("{} task frames", present.len()),
        source,
    })?;
    Ok((0..frames.len())
        .map(|i| by_task.remove(&(i as u32)))
        .collect())
}

/// Sorted end-to-end latencies (ms) of Apparate and vanilla of one task's frame, for CDFs.
pub fn sorted_latencies(df: &DataFrame) -> Result<(Vec<f64>, Vec<f64>), AnalysisError> {
    let err = |source| AnalysisError::Polars {
        what: "latency CDF".into(),
        source,
    };
    let out = df
        .clone()
        .lazy()
        .select([
            end_to_end("inference_ms")
                .sort(Default::default())
                .alias("app"),
            end_to_end("vanilla_ms")
                .sort(Default::default())
                .alias("van"),
        ])
        .collect()
        .map_err(err)?;
    let get = |name: &str| -> Result<Vec<f64>, AnalysisError> {
        Ok(out
            .column(name)
            .and_then(|c| c.f64().cloned())
            .map_err(err)?
            .into_iter()
            .flatten()
            .collect())
    };
    Ok((get("app")?, get("van")?))
}
