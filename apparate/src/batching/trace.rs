//! The generators' inputs (spec §9.2): the request trace, the vanilla serving-time table and
//! the tf_serve parameters. Every constructor validates, so the schemes never see a NaN, an
//! unsorted trace or a serving-time table that does not line up with its batch sizes.

use thiserror::Error;

/// A request trace: request `id` arrives at `arrival_ms[id]` and must finish by
/// `deadline_ms[id] = arrival_ms[id] + slo_ms` (added in that order, as the artifact's
/// `Request.__init__` does). All requests share one SLO.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestTrace {
    arrival_ms: Vec<f64>,
    deadline_ms: Vec<f64>,
    slo_ms: f64,
}

impl RequestTrace {
    /// Builds a trace from arrival times (ms, request id = index) and the SLO (ms).
    ///
    /// Arrivals must be finite and non-decreasing (ties are allowed); the SLO must be finite.
    pub fn new(arrival_ms: Vec<f64>, slo_ms: f64) -> Result<RequestTrace, TraceError> {
        if !slo_ms.is_finite() {
            return Err(TraceError::NonFiniteSlo { value: slo_ms });
        }
        for (index, &value) in arrival_ms.iter().enumerate() {
            if !value.is_finite() {
                return Err(TraceError::NonFiniteArrival { index, value });
            }
            if let Some(&prev) = index.checked_sub(1).and_then(|i| arrival_ms.get(i)) {
                if value < prev {
                    return Err(TraceError::ArrivalsUnsorted { index, prev, value });
                }
            }
        }
        let deadline_ms = arrival_ms.iter().map(|&a| a + slo_ms).collect();
        Ok(RequestTrace {
            arrival_ms,
            deadline_ms,
            slo_ms,
        })
    }

    /// `N`, the number of requests.
    pub fn len(&self) -> usize {
        self.arrival_ms.len()
    }

    /// Whether the trace holds no request.
    pub fn is_empty(&self) -> bool {
        self.arrival_ms.is_empty()
    }

    /// Arrival times in ms, indexed by request id.
    pub fn arrival_ms(&self) -> &[f64] {
        &self.arrival_ms
    }

    /// Deadlines in ms (`arrival + slo`), indexed by request id.
    pub fn deadline_ms(&self) -> &[f64] {
        &self.deadline_ms
    }

    /// The SLO in ms.
    pub fn slo_ms(&self) -> f64 {
        self.slo_ms
    }
}

/// The supported batch sizes `B` and the vanilla serving time `M[b]` (ms) of each.
///
/// Sizes are strictly increasing and at least 1; serving times are finite, positive and strictly
/// increasing with the size (what clockwork relies on to find a strategy, up to rounding). The
/// artifact uses `B = [1, 2, 4, ..., 64]` ([`crate::sim::BATCH_SIZES`]); a subset is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct ServingTimes {
    sizes: Vec<usize>,
    m_ms: Vec<f64>,
}

impl ServingTimes {
    /// Builds the table; `m_ms[i]` is the serving time of `sizes[i]`.
    pub fn new(sizes: Vec<usize>, m_ms: Vec<f64>) -> Result<ServingTimes, TraceError> {
        if sizes.is_empty() {
            return Err(TraceError::NoBatchSizes);
        }
        for (index, &size) in sizes.iter().enumerate() {
            let prev = index.checked_sub(1).and_then(|i| sizes.get(i).copied());
            if size == 0 || prev.is_some_and(|p| size <= p) {
                return Err(TraceError::BatchSizesNotIncreasing { index, size });
            }
        }
        if m_ms.len() != sizes.len() {
            return Err(TraceError::ServingTimesLength {
                sizes: sizes.len(),
                serving_times: m_ms.len(),
            });
        }
        for (index, &value) in m_ms.iter().enumerate() {
            if !(value.is_finite() && value > 0.0) {
                return Err(TraceError::InvalidServingTime { index, value });
            }
            if let Some(&prev) = index.checked_sub(1).and_then(|i| m_ms.get(i)) {
                if value <= prev {
                    return Err(TraceError::ServingTimesNotIncreasing { index, prev, value });
                }
            }
        }
        Ok(ServingTimes { sizes, m_ms })
    }

    /// The supported batch sizes, ascending.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The serving times in ms, in the order of [`ServingTimes::sizes`].
    pub fn m_ms(&self) -> &[f64] {
        &self.m_ms
    }

    /// Position of batch size `size` in [`ServingTimes::sizes`] (the artifact's
    /// `supported_batch_sizes.index(size)`), or `None` if it is not supported.
    pub fn index_of(&self, size: usize) -> Option<usize> {
        self.sizes.iter().position(|&b| b == size)
    }

    /// Position of the smallest supported size `>= n`, or `None` if every size is smaller.
    pub fn round_up_index(&self, n: usize) -> Option<usize> {
        self.sizes.iter().position(|&b| n <= b)
    }
}

/// tf_serve's batching parameters (TensorFlow Serving's batch scheduler options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TfServeParams {
    /// Largest batch served at once (`max_batch_size`, artifact default 8). Must be a supported
    /// batch size for a full batch to be served.
    pub max_batch_size: usize,
    /// A queued request that arrived more than this many ms after the last served request's
    /// arrival forces a batch out (`batch_timeout_ms`, default 60).
    pub batch_timeout_ms: f64,
    /// The queue keeps at most `max_enqueued_batches * max_batch_size` requests
    /// (`max_enqueued_batches`, default 2).
    pub max_enqueued_batches: usize,
}

impl Default for TfServeParams {
    /// The artifact's defaults: 8, 60 ms, 2.
    fn default() -> Self {
        TfServeParams {
            max_batch_size: 8,
            batch_timeout_ms: 60.0,
            max_enqueued_batches: 2,
        }
    }
}

impl TfServeParams {
    /// Checks the values the original would crash or spin on: both counts at least 1 and a
    /// finite timeout.
    pub fn validate(&self) -> Result<(), TraceError> {
        if self.max_batch_size == 0 {
            return Err(TraceError::InvalidTfServeParam {
                name: "max_batch_size",
                value: 0.0,
            });
        }
        if self.max_enqueued_batches == 0 {
            return Err(TraceError::InvalidTfServeParam {
                name: "max_enqueued_batches",
                value: 0.0,
            });
        }
        if !self.batch_timeout_ms.is_finite() {
            return Err(TraceError::InvalidTfServeParam {
                name: "batch_timeout_ms",
                value: self.batch_timeout_ms,
            });
        }
        Ok(())
    }
}

/// An input the generators cannot run on.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TraceError {
    /// The SLO is NaN or infinite.
    #[error("the SLO must be a finite number of ms, got {value}")]
    NonFiniteSlo {
        /// The offending value.
        value: f64,
    },
    /// An arrival time is NaN or infinite.
    #[error("arrival of request {index} is not finite ({value})")]
    NonFiniteArrival {
        /// Request id.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Arrival times go backwards.
    #[error("arrivals must be non-decreasing: request {index} arrives at {value} ms, before request {} at {prev} ms", index - 1)]
    ArrivalsUnsorted {
        /// Request id of the first out-of-order arrival.
        index: usize,
        /// Arrival of the request before it.
        prev: f64,
        /// Its arrival.
        value: f64,
    },
    /// No batch size at all.
    #[error("at least one supported batch size is needed")]
    NoBatchSizes,
    /// Batch sizes are zero, repeated or out of order.
    #[error("batch sizes must be >= 1 and strictly increasing: entry {index} is {size}")]
    BatchSizesNotIncreasing {
        /// Position of the offending size.
        index: usize,
        /// The offending size.
        size: usize,
    },
    /// One serving time per batch size is needed.
    #[error("{serving_times} serving times for {sizes} batch sizes")]
    ServingTimesLength {
        /// Number of batch sizes.
        sizes: usize,
        /// Number of serving times.
        serving_times: usize,
    },
    /// A serving time is not a positive finite number.
    #[error("serving time {index} must be a positive finite number of ms, got {value}")]
    InvalidServingTime {
        /// Position of the offending time.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// Serving times do not grow with the batch size.
    #[error("serving times must be strictly increasing with the batch size: entry {index} is {value} ms, not above entry {} ({prev} ms)", index - 1)]
    ServingTimesNotIncreasing {
        /// Position of the offending time.
        index: usize,
        /// The time before it.
        prev: f64,
        /// The offending time.
        value: f64,
    },
    /// A tf_serve parameter the original would crash or loop forever on.
    #[error("tf_serve parameter {name} is invalid ({value}): the counts must be at least 1, the timeout finite")]
    InvalidTfServeParam {
        /// Parameter name (`max_batch_size`, `batch_timeout_ms`, `max_enqueued_batches`).
        name: &'static str,
        /// The offending value.
        value: f64,
    },
}
