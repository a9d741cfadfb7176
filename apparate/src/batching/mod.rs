//! The artifact's batch-decision generators (spec §9.2, `batch_systems.get_batch_decision`):
//! given a request trace, an SLO and the vanilla serving time of each batch size, emulate a
//! serving system and record the batch sizes it would run and each request's queueing delay.
//!
//! * [`trace`] — validated inputs: [`RequestTrace`], [`ServingTimes`], [`TfServeParams`].
//! * [`clockwork`](mod@clockwork) — Clockwork's per-batch-size queues and earliest-deadline strategies.
//! * [`tf_serve`](mod@tf_serve) — TensorFlow Serving's single queue with size / timeout triggers.
//! * [`file`](mod@file) — the `golden/batching-*/trace.json` input and the decision-file output (JSON).
//!
//! Both schemes are pure and deterministic (no I/O, no clock) and reproduce the original's
//! quirks, which the module docs list. Where the original would fail an assertion, raise or loop
//! forever, they return a [`BatchingError`] instead.
//!
//! From code, with a generated trace:
//!
//! ```
//! use apparate::batching::{clockwork, RequestTrace, ServingTimes};
//!
//! let arrivals: Vec<f64> = (0..12).map(|id| 2.0 * id as f64).collect();
//! let trace = RequestTrace::new(arrivals, 20.0)?;
//! let serving = ServingTimes::new(
//!     vec![1, 2, 4, 8, 16, 32, 64],
//!     vec![5.0, 6.0, 8.0, 12.0, 20.0, 36.0, 68.0],
//! )?;
//! let outcome = clockwork(&trace, &serving)?;
//! assert_eq!(outcome.batching_decision, [1, 2, 2, 4, 2]);
//! assert_eq!(outcome.per_request_stats[11], None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod emulation;

pub mod clockwork;
pub mod file;
pub mod tf_serve;
pub mod trace;

pub use clockwork::clockwork;
pub use file::{DecisionFile, TraceFile, TraceFileError};
pub use tf_serve::tf_serve;
pub use trace::{RequestTrace, ServingTimes, TfServeParams, TraceError};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A batching scheme whose decisions can be recomputed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// [`clockwork()`].
    Clockwork,
    /// [`tf_serve()`].
    TfServe,
}

impl Scheme {
    /// The name used in trace and decision files: `clockwork` or `tf_serve`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Clockwork => "clockwork",
            Scheme::TfServe => "tf_serve",
        }
    }

    /// The scheme called `name` (as in [`Scheme::name`]), if any.
    pub fn from_name(name: &str) -> Option<Scheme> {
        [Scheme::Clockwork, Scheme::TfServe]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// Runs this scheme. `tf_serve` parameters are ignored by clockwork, as in the original.
    pub fn run(
        self,
        trace: &RequestTrace,
        serving: &ServingTimes,
        tf_serve_params: &TfServeParams,
    ) -> Result<BatchingOutcome, BatchingError> {
        match self {
            Scheme::Clockwork => clockwork(trace, serving),
            Scheme::TfServe => tf_serve(trace, serving, tf_serve_params),
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a generator returns (the artifact's `get_batch_decision` return values).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchingOutcome {
    /// The batch size recorded for each batch, in serving order. For tf_serve it can exceed the
    /// number of requests actually served in that batch (see [`tf_serve()`]).
    pub batching_decision: Vec<usize>,
    /// Per request id: `(queueing_ms, M)` with `M` the serving time of the recorded batch size,
    /// or `None` if the request was never served (dropped or abandoned).
    pub per_request_stats: Vec<Option<(f64, f64)>>,
    /// The emulated clock (ms) when the loop ended.
    pub end_time: f64,
}

impl BatchingOutcome {
    /// `N`, the number of requests in the trace.
    pub fn total_num_requests(&self) -> usize {
        self.per_request_stats.len()
    }

    /// The number of batches.
    pub fn num_batches(&self) -> usize {
        self.batching_decision.len()
    }

    /// The number of requests with a stat (served at least once).
    pub fn num_served(&self) -> usize {
        self.per_request_stats.iter().flatten().count()
    }
}

/// A run the original could not finish.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum BatchingError {
    /// The inputs are invalid.
    #[error(transparent)]
    Input(#[from] TraceError),
    /// Clockwork found no strategy with a live deadline and enough queued requests (the
    /// original's `assert False, "Corner case: no valid strategy found"`). With batch size 1
    /// supported this needs a head request with zero slack whose strategy deadline
    /// `(arrival + slo) - M` rounds below the clock (e.g. `slo == M[0]`); without size 1, a
    /// queue shorter than every size is enough.
    #[error("clockwork found no valid strategy at t = {time_ms} ms (the smallest batch size's queue holds {queued})")]
    NoValidStrategy {
        /// The emulated clock.
        time_ms: f64,
        /// Length of the smallest size's queue.
        queued: usize,
    },
    /// The original would loop forever: nothing can be served, and the clock does not move
    /// (clockwork: every queued request would miss its deadline even at the smallest batch
    /// size and the trace's last arrival is the current time, i.e. an SLO shorter than `M[0]`).
    #[error("no progress possible at t = {time_ms} ms (next request {next_request}); the original loops forever here")]
    Stalled {
        /// The emulated clock.
        time_ms: f64,
        /// The scan position (`next_request_id`).
        next_request: usize,
    },
    /// tf_serve has to serve a full batch but `max_batch_size` is not a supported size (the
    /// original's `supported_batch_sizes.index(max_batch_size)` raises).
    #[error("tf_serve max_batch_size {max_batch_size} is not a supported batch size")]
    MaxBatchSizeUnsupported {
        /// The configured `max_batch_size`.
        max_batch_size: usize,
    },
    /// tf_serve has to round a batch of `requests` up to a supported size, and every supported
    /// size is smaller (the original would reuse the previous round's batch).
    #[error("tf_serve cannot round a batch of {requests} requests up to a supported size")]
    NoSizeFits {
        /// The number of requests to serve.
        requests: usize,
    },
}
