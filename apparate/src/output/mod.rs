//! Writers for one run's result files (DESIGN "Single run, artifact-compatible"):
//! `summary.json`, `batches.jsonl`, `latencies.pickle`, `requests.parquet`, `log.txt`
//! (`batches.jsonl` and `log.txt` compressed on the way, as `.zst`, when asked:
//! [`write_run_stored`], [`crate::storage`]).
//!
//! Every file is written to a temporary name in the same directory and renamed into place,
//! so a reader never sees a half-written file, and a symbolic link in the output folder is
//! replaced, never written through ([`crate::safe_write`]).

mod requests_parquet;

pub use requests_parquet::{
    read_requests_parquet, write_requests_parquet, ExtraColumns, RequestRow,
};

use crate::sim::record::{BatchRecord, Requests, RunResult, Summary};
use crate::storage::Storage;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A result file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Creating, writing or renaming the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The Parquet encoder failed.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: parquet::errors::ParquetError,
    },
    /// The pickle encoder failed.
    #[error("{path}: pickle: {source}")]
    Pickle {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_pickle::Error,
    },
    /// Per-request extra columns do not match the number of served requests.
    #[error("column {column} has {got} values; expected {expected} (one per served request)")]
    ColumnLength {
        /// Column name.
        column: &'static str,
        /// Values given.
        got: usize,
        /// Served requests.
        expected: usize,
    },
}

/// Queueing delay of each of the first `served` requests in served order: the k-th served
/// request is the k-th non-`None` entry of a decision file's `per_request_stats`, as the
/// artifact's plotting scripts align them. Stats with fewer pairs than `served` are refused
/// ([`StatsTooShort`]), never padded.
pub fn served_queueing(
    per_request_stats: &[Option<(f64, f64)>],
    served: usize,
) -> Result<Vec<Option<f64>>, StatsTooShort> {
    let queueing: Vec<Option<f64>> = per_request_stats
        .iter()
        .flatten()
        .map(|&(q, _)| Some(q))
        .take(served)
        .collect();
    if queueing.len() < served {
        return Err(StatsTooShort {
            len: per_request_stats.len(),
            pairs: queueing.len(),
            served,
        });
    }
    Ok(queueing)
}

/// `per_request_stats` holds fewer `(queueing_ms, vanilla_ms)` pairs than requests were served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsTooShort {
    /// Entries in the list (pairs and `None`s).
    pub len: usize,
    /// Pairs among them.
    pub pairs: usize,
    /// Requests served.
    pub served: usize,
}

impl StatsTooShort {
    /// Where the list ends (`per_request_stats[len]`), what was expected there and what was
    /// found, for an [`ArtifactError::Field`](crate::artifact::ArtifactError::Field).
    pub fn field_parts(&self) -> (String, String, String) {
        (
            format!("per_request_stats[{}]", self.len),
            format!(
                "a (queueing_ms, vanilla_ms) pair for each of the {} requests served (pair {} of {})",
                self.served,
                self.pairs + 1,
                self.served
            ),
            format!(
                "the end of the list ({} entries, {} of them pairs)",
                self.len, self.pairs
            ),
        )
    }
}

/// Writes all five result files of a run into `dir` (created if missing), plain.
/// `args_line` is the first line of `log.txt` (the artifact's `args: Namespace(...)`).
pub fn write_run(
    dir: &Path,
    result: &RunResult,
    extra: &ExtraColumns,
    args_line: &str,
) -> Result<(), OutputError> {
    write_run_stored(dir, result, extra, args_line, Storage::Plain)
}

/// As [`write_run`], storing the files as `storage` says (`batches.jsonl` and `log.txt`
/// compressed while they are written, for [`Storage::Zstd`]).
pub fn write_run_stored(
    dir: &Path,
    result: &RunResult,
    extra: &ExtraColumns,
    args_line: &str,
    storage: Storage,
) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let n = result.requests.len();
    if let Some(q) = &extra.queueing_ms {
        check_len("queueing_ms", q.len(), n)?;
    }
    if let Some(o) = &extra.optimal_ms {
        check_len("optimal_ms", o.len(), n)?;
    }
    if let Some(o) = &extra.static_ms {
        check_len("static_ms", o.len(), n)?;
    }
    if let Some(o) = &extra.static_correct {
        check_len("static_correct", o.len(), n)?;
    }
    write_atomic(&dir.join("summary.json"), |w| {
        let mut text = serde_json::to_string_pretty(&summary_json(&result.summary))
            .map_err(std::io::Error::other)?;
        text.push('\n');
        w.write_all(text.as_bytes())
    })?;
    let batches = "batches.jsonl";
    write_atomic(&dir.join(storage.stored_name(batches)), |w| {
        storage.write_through(batches, w, |w| {
            for b in &result.batches {
                serde_json::to_writer(&mut *w, &BatchLine::from(b))
                    .map_err(std::io::Error::other)?;
                w.write_all(b"\n")?;
            }
            Ok(())
        })
    })?;
    write_latencies_pickle(&dir.join("latencies.pickle"), &result.requests.inference_ms)?;
    let path = dir.join("requests.parquet");
    write_requests_parquet(&path, &result.requests, extra)
        .map_err(|source| OutputError::Parquet { path, source })?;
    let log = "log.txt";
    write_atomic(&dir.join(storage.stored_name(log)), |w| {
        storage.write_through(log, w, |w| {
            writeln!(w, "{args_line}")?;
            for line in &result.log {
                writeln!(w, "{line}")?;
            }
            Ok(())
        })
    })?;
    Ok(())
}

fn check_len(column: &'static str, got: usize, expected: usize) -> Result<(), OutputError> {
    if got == expected {
        Ok(())
    } else {
        Err(OutputError::ColumnLength {
            column,
            got,
            expected,
        })
    }
}

/// The artifact's `apparate_latency` pickle: a list of per-request inference latencies (ms).
pub fn write_latencies_pickle(path: &Path, latencies: &[f64]) -> Result<(), OutputError> {
    let bytes =
        serde_pickle::to_vec(&latencies, serde_pickle::SerOptions::new()).map_err(|source| {
            OutputError::Pickle {
                path: path.to_path_buf(),
                source,
            }
        })?;
    write_atomic(path, |w| w.write_all(&bytes))
}

fn keyed(m: &BTreeMap<usize, f64>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<Map<_, _>>(),
    )
}

/// `summary.json` content.
pub fn summary_json(s: &Summary) -> Value {
    json!({
        "overall_accuracy": s.overall_accuracy,
        "overall_latency_improvement": s.overall_latency_improvement,
        "exit_rate": keyed(&s.exit_rate),
        "ramp_accuracy": keyed(&s.ramp_accuracy),
        "num_requests": s.num_requests,
        "num_batches": s.num_batches,
    })
}

/// One `batches.jsonl` line, serialised without building a `Value` (integer map keys become
/// strings, as in `batch_json`).
#[derive(serde::Serialize)]
struct BatchLine<'a> {
    batch: usize,
    n: usize,
    bs: usize,
    ramp_ids: &'a [usize],
    thresholds: &'a [f64],
    acc: f64,
    latency_improvement: f64,
    exit_rate: &'a [f64],
    ramp_acc: &'a BTreeMap<usize, f64>,
}

impl<'a> From<&'a BatchRecord> for BatchLine<'a> {
    fn from(b: &'a BatchRecord) -> Self {
        BatchLine {
            batch: b.batch,
            n: b.n,
            bs: b.bs,
            ramp_ids: &b.ramp_ids,
            thresholds: &b.thresholds,
            acc: b.acc,
            latency_improvement: b.latency_improvement,
            exit_rate: &b.exit_rate,
            ramp_acc: &b.ramp_acc,
        }
    }
}

/// One `batches.jsonl` line as a JSON value.
pub fn batch_json(b: &BatchRecord) -> Value {
    json!({
        "batch": b.batch,
        "n": b.n,
        "bs": b.bs,
        "ramp_ids": b.ramp_ids,
        "thresholds": b.thresholds,
        "acc": b.acc,
        "latency_improvement": b.latency_improvement,
        "exit_rate": b.exit_rate,
        "ramp_acc": keyed(&b.ramp_acc),
    })
}

/// Writes `path` through a buffered temporary file and renames it into place (a link at `path`
/// is replaced, never followed).
pub fn write_atomic(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), OutputError> {
    crate::safe_write::write_atomic(path, crate::safe_write::Durability::Flush, body).map_err(
        |source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        },
    )
}

/// Summary statistics of one mode's run, for `baselines.json`.
fn mode_json(r: &RunResult) -> Value {
    let lat = &r.requests.inference_ms;
    let mut sorted = lat.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = if lat.is_empty() {
        0.0
    } else {
        crate::sim::numeric::numpy_mean(lat)
    };
    json!({
        "overall_accuracy": r.summary.overall_accuracy,
        "overall_latency_improvement": r.summary.overall_latency_improvement,
        "mean_inference_ms": mean,
        "median_inference_ms": percentile(&sorted, 50.0),
        "p95_inference_ms": percentile(&sorted, 95.0),
        "exit_rate": keyed(&r.summary.exit_rate),
        "ramp_ids": r.final_state.ramp_ids,
        "thresholds": r.final_state.thresholds,
    })
}

/// numpy's default `percentile` (linear interpolation at `p/100 * (n-1)`) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// `baselines.json`: Apparate, the oracle and the static early-exit baseline on the same
/// batches (accuracy, latency improvement, inference-latency mean / median / p95, exit rates,
/// final ramps and thresholds).
pub fn write_baselines(
    dir: &Path,
    apparate: &RunResult,
    oracle: &RunResult,
    fixed: &RunResult,
) -> Result<(), OutputError> {
    let v = json!({
        "apparate": mode_json(apparate),
        "oracle": mode_json(oracle),
        "static": mode_json(fixed),
    });
    write_atomic(&dir.join("baselines.json"), |w| {
        let mut text = serde_json::to_string_pretty(&v).map_err(std::io::Error::other)?;
        text.push('\n');
        w.write_all(text.as_bytes())
    })
}

/// Rows of `requests.parquet` as plain values (used by readers and tests).
pub fn request_rows(requests: &Requests, extra: &ExtraColumns) -> Vec<RequestRow> {
    (0..requests.len())
        .map(|k| RequestRow {
            request: k as i64,
            batch: requests.batch[k] as i32,
            batch_size: requests.batch_size[k] as i32,
            exit_point: requests.exit_point[k] as i32,
            correct: requests.correct[k],
            inference_ms: requests.inference_ms[k],
            vanilla_ms: requests.vanilla_ms[k],
            queueing_ms: extra.queueing_ms.as_ref().and_then(|q| q[k]),
            optimal_ms: extra.optimal_ms.as_ref().map(|o| o[k]),
            static_ms: extra.static_ms.as_ref().map(|o| o[k]),
            static_correct: extra.static_correct.as_ref().map(|o| o[k]),
        })
        .collect()
}
