//! The artifact's batch-decision generators (spec §9.2, `batch_systems.get_batch_decision`):
//! given a request trace, an SLO and the vanilla serving time of each batch size, emulate a
//! serving system and record the batch sizes it would run and each request's queueing delay.
//!
//! * [`trace`] — validated inputs: [`RequestTrace`], [`ServingTimes`], [`TfServeParams`].
//! * [`clockwork`](mod@clockwork) — Clockwork's per-batch-size queues and earliest-deadline strategies.
//! * [`tf_serve`](mod@tf_serve) — TensorFlow Serving's single queue with size / timeout triggers.
//! * [`file`](mod@file) — the `golden/batching-*/trace.json` input and the decision-file output (JSON).
//! * [`online`](mod@online) — the same schemes driven by a live server's clock ([`Dispatcher`]).
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
mod outcome;

pub mod clockwork;
pub mod file;
pub mod online;
pub mod tf_serve;
pub mod trace;

pub use clockwork::{clockwork, clockwork_online};
pub use file::{DecisionFile, TraceFile, TraceFileError};
pub use online::{Dispatcher, Emulated, FormedBatch, OnlineError};
pub use outcome::{BatchingError, BatchingOutcome};
pub use tf_serve::{tf_serve, tf_serve_online};
pub use trace::{RequestTrace, ServingTimes, TfServeParams, TraceError};

use serde::{Deserialize, Serialize};

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

    /// Runs this scheme online, the clock moved by `dispatcher` ([`online`](mod@online)).
    pub fn run_online<D: Dispatcher>(
        self,
        trace: &RequestTrace,
        serving: &ServingTimes,
        tf_serve_params: &TfServeParams,
        dispatcher: &mut D,
    ) -> Result<BatchingOutcome, OnlineError<D::Error>> {
        match self {
            Scheme::Clockwork => clockwork_online(trace, serving, dispatcher),
            Scheme::TfServe => tf_serve_online(trace, serving, tf_serve_params, dispatcher),
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
