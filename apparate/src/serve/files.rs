//! The files a serving run writes beside a task's result files ([`crate::task::LIVE_FILES`]):
//! `serve.json` ([`ServeReport`]) and `timing.jsonl` ([`TimingRow`], one line per batch).

use super::ServeClock;
use crate::output::{percentile, write_atomic, OutputError};
use serde::Serialize;
use serde_json::json;
use std::path::Path;

/// One batch as the clock saw it: what the profile predicted next to what was measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimingRow {
    /// Batch number (from 1).
    pub batch: usize,
    /// Samples in the batch.
    pub n: usize,
    /// Rounded batch size.
    pub bs: usize,
    /// When it started on the run's clock (ms).
    pub start_ms: f64,
    /// The profile's time for the batch with its active ramps, up to the final exit (ms).
    pub predicted_ms: f64,
    /// The measured time up to the final exit (ms); `null` when nothing was measured (replay).
    pub measured_ms: Option<f64>,
    /// Wall time the model call took (ms), whatever the clock.
    pub wall_ms: f64,
    /// The controller's time on this batch (`observe`: exits, records, adaptation), µs.
    pub controller_us: f64,
    /// Measured more than the slow factor away from the prediction.
    pub slow: bool,
}

/// How a serving run went (`serve.json`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServeReport {
    /// The clock's name.
    pub clock: String,
    /// `model` or `replay` (set by the caller).
    pub executor: String,
    /// Vanilla serving: no ramps, no controller (the baseline).
    pub vanilla: bool,
    /// Where the model ran.
    pub device: String,
    /// Requests in the trace (for a decision file or uniform chunks: the samples served).
    pub requests: usize,
    /// Requests served (padding of a rounded-up tf_serve batch not counted).
    pub served: usize,
    /// Samples the controller observed (= rows of `requests.parquet`).
    pub samples: usize,
    /// Trace requests not served: their deadline passed, or the run ended first.
    pub dropped: usize,
    /// Batches served.
    pub batches: usize,
    /// Stopped by the caller (Ctrl-C) before the trace or the stream ran out.
    pub interrupted: bool,
    /// Batches measured more than `slow_factor` away from the profile.
    pub slow_batches: usize,
    /// The factor (set by the caller).
    pub slow_factor: f64,
    /// Batch sizes re-profiled online, in order.
    pub reprofiled: Vec<usize>,
    /// The controller's time per batch (µs).
    pub controller_us: Vec<f64>,
}

impl ServeReport {
    pub(crate) fn new(clock: ServeClock) -> ServeReport {
        ServeReport {
            clock: clock.name().to_string(),
            ..ServeReport::default()
        }
    }

    /// `serve.json`'s content; `latencies_ms` are the served samples' queueing + inference
    /// latencies (for the measured percentiles).
    pub fn to_json(&self, latencies_ms: &[f64]) -> serde_json::Value {
        let stats = |v: &[f64]| {
            let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            s.sort_by(f64::total_cmp);
            if s.is_empty() {
                return json!(null);
            }
            json!({
                "mean": s.iter().sum::<f64>() / s.len() as f64,
                "median": percentile(&s, 50.0),
                "p95": percentile(&s, 95.0),
                "p99": percentile(&s, 99.0),
                "max": s[s.len() - 1],
            })
        };
        json!({
            "clock": self.clock,
            "executor": self.executor,
            "vanilla": self.vanilla,
            "device": self.device,
            "requests": self.requests,
            "served": self.served,
            "samples": self.samples,
            "dropped": self.dropped,
            "batches": self.batches,
            "interrupted": self.interrupted,
            "slow_batches": self.slow_batches,
            "slow_factor": self.slow_factor,
            "reprofiled": self.reprofiled,
            "controller_us": stats(&self.controller_us),
            "latency_ms": stats(latencies_ms),
        })
    }
}

/// Writes `serve.json` and `timing.jsonl` into `dir`.
pub(crate) fn write_serve_files(
    dir: &Path,
    report: &ServeReport,
    timing: &[TimingRow],
    latencies_ms: &[f64],
) -> Result<(), OutputError> {
    write_atomic(&dir.join("serve.json"), |w| {
        let mut text = serde_json::to_string_pretty(&report.to_json(latencies_ms))
            .map_err(std::io::Error::other)?;
        text.push('\n');
        w.write_all(text.as_bytes())
    })?;
    write_atomic(&dir.join("timing.jsonl"), |w| {
        for row in timing {
            serde_json::to_writer(&mut *w, row).map_err(std::io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}
