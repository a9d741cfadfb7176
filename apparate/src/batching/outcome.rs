//! What a generator returns: its outcome, or the error of a run the original could not finish.
//! A module of its own so that the generators do not import `batching/mod.rs`, which
//! dispatches to them ([`super::Scheme::run`]).

use super::trace::TraceError;
use thiserror::Error;

/// What a generator returns (the artifact's `get_batch_decision` return values).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchingOutcome {
    /// The batch size recorded for each batch, in serving order. For tf_serve it can exceed the
    /// number of requests actually served in that batch (see [`tf_serve()`](super::tf_serve())).
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
