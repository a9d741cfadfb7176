//! Request arrival traces (spec §9.2, `create_request`): the inputs of the batching schemes.
//!
//! A trace is a `Vec<f64>` of arrival times in ms, non-decreasing, request id = index. One entry
//! point, [`generate`], turns a [`TraceSpec`] (which can live in a TOML sweep spec) into one:
//!
//! * [`TraceSpec::Fixed`] — the artifact's fixed-rate trace ([`fixed_rate`]); first arrival 0.
//! * [`TraceSpec::Poisson`] — the artifact's Poisson trace, numpy's legacy generator reproduced
//!   ([`poisson()`]); first arrival 0.
//! * [`TraceSpec::AzureCsv`] — a function of the real Azure Functions 2019 trace
//!   ([`azure_csv_trace`]); minute-aligned, first arrival at the first non-empty minute's start.
//! * [`TraceSpec::SyntheticAzure`] — an Azure-shaped stand-in ([`synthetic_azure()`]);
//!   minute-aligned, first arrival within minute 0.
//!
//! Generation is deterministic: the same spec (and file) gives the same bits on every platform
//! ([`rng`] says why, and why its output is part of the results contract). [`shape`] measures a
//! trace's Azure-style shape statistics.
//!
//! ```
//! use apparate::traces::{generate, TraceSpec};
//!
//! let spec: TraceSpec = serde_json::from_str(r#"{"kind": "poisson", "n": 5, "qps": 30}"#)?;
//! assert_eq!(spec, TraceSpec::Poisson { n: 5, qps: 30.0, seed: 2023 });
//! let arrivals = generate(&spec)?;
//! assert_eq!(arrivals.len(), 5);
//! assert_eq!(arrivals[0], 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod azure;
mod common;
pub mod fixed;
pub mod poisson;
pub mod rng;
pub mod shape;
pub mod synthetic_azure;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use azure::{azure_csv_trace, AzureCsvError, FunctionPick, Spread};
pub use common::{TraceGenError, MAX_QPS, MAX_REQUESTS, MAX_SPAN_MINUTES};
pub use fixed::fixed_rate;
pub use poisson::poisson;
pub use shape::ShapeStats;
pub use synthetic_azure::{
    minutes_for_load, span_for_load, synthetic_azure, SyntheticShape, SyntheticTrace,
};

/// What trace to generate. Serialised with a `kind` tag, e.g. in TOML:
///
/// ```toml
/// [trace]
/// kind = "azure_csv"
/// path = "azure/invocations_per_function_md.anon.d01.csv"
/// function = { row = 7188 }
/// cap = 250050
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TraceSpec {
    /// `n` requests `1000 / qps` ms apart ([`fixed_rate`]).
    Fixed {
        /// Number of requests (default 70,000, the artifact's).
        #[serde(default = "default_n")]
        n: usize,
        /// Requests per second.
        qps: f64,
    },
    /// `n` requests with exponential gaps of mean `1000 / qps` ms from numpy's legacy generator
    /// ([`poisson()`]).
    Poisson {
        /// Number of requests (default 70,000, the artifact's).
        #[serde(default = "default_n")]
        n: usize,
        /// Requests per second.
        qps: f64,
        /// `np.random.seed` (default 2023, the artifact's).
        #[serde(default = "default_numpy_seed")]
        seed: u32,
    },
    /// A function of a real Azure Functions 2019 per-minute file ([`azure_csv_trace`]).
    AzureCsv {
        /// The CSV file (relative paths are resolved against the working directory).
        path: PathBuf,
        /// Which function (default: row 7188, the artifact's).
        #[serde(default)]
        function: FunctionPick,
        /// Cap on the number of requests (default 700,000, the artifact's).
        #[serde(default = "default_cap")]
        cap: u64,
        /// Placement within a minute (default `even`, the artifact's).
        #[serde(default)]
        within_minute: Spread,
        /// Seed for `within_minute = "poisson"` (default 0; unused for `even`).
        #[serde(default)]
        seed: u64,
    },
    /// An Azure-shaped synthetic trace of exactly `n` requests ([`synthetic_azure()`]).
    SyntheticAzure {
        /// Number of requests.
        n: usize,
        /// Seed.
        seed: u64,
        /// Shape parameters (defaults: see [`SyntheticShape`]).
        #[serde(default)]
        shape: SyntheticShape,
    },
}

fn default_n() -> usize {
    fixed::ARTIFACT_REQUESTS
}

fn default_numpy_seed() -> u32 {
    poisson::ARTIFACT_SEED
}

fn default_cap() -> u64 {
    azure::ARTIFACT_CAP
}

impl TraceSpec {
    /// The `kind` tag: `fixed`, `poisson`, `azure_csv` or `synthetic_azure`.
    pub fn kind(&self) -> &'static str {
        match self {
            TraceSpec::Fixed { .. } => "fixed",
            TraceSpec::Poisson { .. } => "poisson",
            TraceSpec::AzureCsv { .. } => "azure_csv",
            TraceSpec::SyntheticAzure { .. } => "synthetic_azure",
        }
    }

    /// Checks every parameter against its documented range without generating anything (an
    /// `azure_csv` file is not opened: its function and counts are checked when it is read).
    /// [`generate`] runs the same checks first; a sweep plan runs them on every task's trace.
    ///
    /// * `n`: 1 to [`MAX_REQUESTS`];
    /// * `qps` (`fixed`, `poisson`): finite, in (0, [`MAX_QPS`]], and at least
    ///   `(n - 1) / (MAX_SPAN_MINUTES · 60)` so that the trace spans at most [`MAX_SPAN_MINUTES`];
    /// * `cap` (`azure_csv`): 1 to [`MAX_REQUESTS`];
    /// * `shape` (`synthetic_azure`): see [`SyntheticShape::check`].
    pub fn check(&self) -> Result<(), TraceGenError> {
        let kind = self.kind();
        match self {
            TraceSpec::Fixed { n, qps } | TraceSpec::Poisson { n, qps, .. } => {
                check_count(kind, "n", *n as u64)?;
                check_rate(kind, *n, *qps)
            }
            TraceSpec::AzureCsv { cap, .. } => check_count(kind, "cap", *cap),
            TraceSpec::SyntheticAzure { n, shape, .. } => {
                check_count(kind, "n", *n as u64)?;
                shape.check()
            }
        }
    }
}

/// A request count (`n`, `cap`) must be 1 to [`MAX_REQUESTS`].
fn check_count(kind: &'static str, parameter: &'static str, n: u64) -> Result<(), TraceGenError> {
    if n == 0 || n > MAX_REQUESTS as u64 {
        return Err(TraceGenError::InvalidParameter {
            kind,
            parameter,
            value: n as f64,
            expected: "1 to 100,000,000 requests".into(),
        });
    }
    Ok(())
}

/// A rate must be finite, in (0, [`MAX_QPS`]], and keep `n` requests within
/// [`MAX_SPAN_MINUTES`].
fn check_rate(kind: &'static str, n: usize, qps: f64) -> Result<(), TraceGenError> {
    let bad = |expected: String| TraceGenError::InvalidParameter {
        kind,
        parameter: "qps",
        value: qps,
        expected,
    };
    if !(qps.is_finite() && qps > 0.0 && qps <= MAX_QPS) {
        return Err(bad(
            "a finite number of requests per second in (0, 1000000]".into(),
        ));
    }
    let span_s = n.saturating_sub(1) as f64 / qps;
    let max_s = MAX_SPAN_MINUTES as f64 * 60.0;
    if span_s > max_s {
        return Err(bad(format!(
            "at least {} requests per second, so that its {n} requests span at most {MAX_SPAN_MINUTES} minutes",
            n.saturating_sub(1) as f64 / max_s
        )));
    }
    Ok(())
}

/// The arrival times (ms) `spec` describes (after [`TraceSpec::check`]).
pub fn generate(spec: &TraceSpec) -> Result<Vec<f64>, TraceGenError> {
    spec.check()?;
    match spec {
        TraceSpec::Fixed { n, qps } => fixed_rate(*n, *qps),
        TraceSpec::Poisson { n, qps, seed } => poisson(*n, *qps, *seed),
        TraceSpec::AzureCsv {
            path,
            function,
            cap,
            within_minute,
            seed,
        } => azure_csv_trace(path, function, *cap, *within_minute, *seed),
        TraceSpec::SyntheticAzure { n, seed, shape } => {
            Ok(synthetic_azure(*n, *seed, shape)?.arrivals_ms)
        }
    }
}
