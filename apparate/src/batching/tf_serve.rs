//! TensorFlow Serving's batching (spec §9.2), as the artifact emulates it.
//!
//! Arrived requests join one FIFO queue, capped at `max_enqueued_batches * max_batch_size`. A
//! batch goes out when some queued request arrived more than `batch_timeout_ms` after the last
//! served request's arrival (the first such request, at index `x`, closes the batch), when the
//! queue holds `max_batch_size` requests, or when the trace has been fully scanned. Otherwise the
//! clock jumps to the next arrival.
//!
//! Quirks kept from the original:
//! * the timeout compares **arrival** times: `last_served_time` is the arrival of the last
//!   request served, starting at `-1`, not a service time;
//! * a batch of `x + 1 <= max_batch_size` requests is **recorded** as the smallest supported size
//!   `>= x + 1` and served with that size's `M`, so `Σ decisions` can exceed the number of
//!   requests served;
//! * when the queue is over its cap it is truncated, and `last_dropped` is raised to the id of
//!   the last request **kept** (which can end the loop while requests are still queued);
//! * `last_served` is the largest id in the batch;
//! * the intake quirks of [`clockwork`](mod@super::clockwork) (un-advanced `next` at the end of the trace,
//!   abandoned queue when the trace is over) apply here too.

use super::emulation::{id, Emulation};
use super::online::{Dispatcher, Emulated, OnlineError};
use super::outcome::{BatchingError, BatchingOutcome};
use super::trace::{RequestTrace, ServingTimes, TfServeParams};

/// Runs tf_serve over `trace` with serving times `serving` and batching parameters `params`.
///
/// Errors: [`BatchingError::Input`] for parameters the original crashes or spins on (a zero
/// count, a non-finite timeout); [`BatchingError::MaxBatchSizeUnsupported`] /
/// [`BatchingError::NoSizeFits`] when a batch has to be recorded at a size `serving` lacks.
pub fn tf_serve(
    trace: &RequestTrace,
    serving: &ServingTimes,
    params: &TfServeParams,
) -> Result<BatchingOutcome, BatchingError> {
    tf_serve_online(trace, serving, params, &mut Emulated).map_err(OnlineError::into_batching)
}

/// [`tf_serve()`] with the clock moved by `dispatcher` ([`super::online`]).
pub fn tf_serve_online<D: Dispatcher>(
    trace: &RequestTrace,
    serving: &ServingTimes,
    params: &TfServeParams,
    dispatcher: &mut D,
) -> Result<BatchingOutcome, OnlineError<D::Error>> {
    params
        .validate()
        .map_err(|e| OnlineError::from(BatchingError::from(e)))?;
    let arrival = trace.arrival_ms();
    let max_queued = params
        .max_enqueued_batches
        .saturating_mul(params.max_batch_size);
    let mut em = Emulation::new(trace, serving, dispatcher);
    let mut queue: Vec<usize> = Vec::new();
    let mut last_served_time = -1.0_f64;

    while em.unfinished() {
        let Some(incoming) = em.intake() else {
            break; // past the last arrival, nothing new: the queue is abandoned
        };
        queue.extend_from_slice(&incoming);
        if queue.len() > max_queued {
            queue.truncate(max_queued);
            if let Some(&last_kept) = queue.last() {
                em.last_dropped = em.last_dropped.max(id(last_kept));
            }
        }

        let timed_out = queue
            .iter()
            .position(|&rid| arrival[rid] - last_served_time > params.batch_timeout_ms);
        let serve_now =
            timed_out.is_some() || queue.len() >= params.max_batch_size || em.next == trace.len();
        if !serve_now {
            // `next < N` here: `next == N` always serves.
            em.idle_until(arrival[em.next])?;
            continue;
        }

        // Without a timed-out request the batch closes at the queue's last element.
        let Some(x) = timed_out.or_else(|| queue.len().checked_sub(1)) else {
            // Unreachable with max_batch_size >= 1 (an empty queue never has to serve); the
            // original would spin here serving an empty batch.
            return Err(OnlineError::from(BatchingError::Stalled {
                time_ms: em.t,
                next_request: em.next,
            }));
        };
        let (count, size_index) = if x + 1 > params.max_batch_size {
            let index = serving
                .index_of(params.max_batch_size)
                .ok_or(BatchingError::MaxBatchSizeUnsupported {
                    max_batch_size: params.max_batch_size,
                })
                .map_err(OnlineError::from)?;
            (params.max_batch_size, index)
        } else {
            let index = serving
                .round_up_index(x + 1)
                .ok_or(BatchingError::NoSizeFits { requests: x + 1 })
                .map_err(OnlineError::from)?;
            (x + 1, index)
        };

        let batch: Vec<usize> = queue.drain(..count).collect();
        if !em.serve(&batch, size_index)? {
            break; // the dispatcher stopped the run
        }
        if let (Some(&last), Some(&max_id)) = (batch.last(), batch.iter().max()) {
            last_served_time = arrival[last];
            em.last_served = id(max_id);
        }
    }
    Ok(em.finish())
}
