//! Clockwork's batching (spec §9.2; Clockwork OSDI'20 §5.3 "Scheduling INFER"), as the artifact
//! emulates it for a single model and one SLO.
//!
//! Every arrived request is queued once per supported batch size `b`. Each round, queue `b`
//! keeps only the requests that could still finish in time if served at size `b` now
//! (`t + M[b] <= deadline`) and were not passed by an earlier batch. Each non-empty queue offers
//! a strategy "serve `b` requests, starting no later than `deadline(head) - M[b]`"; the strategy
//! with the earliest such deadline whose queue holds at least `b` requests runs, and the clock
//! advances by `M[b]`. When every queue is empty the clock jumps to the next arrival.
//!
//! Quirks kept from the original:
//! * the intake does not advance `next` when it scans to the end of the trace, so when the clock
//!   equals the last arrival exactly, the same requests are queued again in the next round
//!   (duplicates that can fill a batch: `Σ decisions` then exceeds the number of served
//!   requests);
//! * for the same reason, a jump to "the next arrival" can move the clock *backwards*;
//! * once the clock passes the last arrival and nothing new comes in, the loop stops and
//!   requests still sitting in queues are abandoned (their stats stay `None`);
//! * `last_dropped` is raised to just below the smallest head id of the non-empty queues.

use super::emulation::{id, Emulation};
use super::online::{Dispatcher, Emulated, OnlineError};
use super::outcome::{BatchingError, BatchingOutcome};
use super::trace::{RequestTrace, ServingTimes};

/// Runs clockwork over `trace` with serving times `serving`.
///
/// Errors: [`BatchingError::NoValidStrategy`] where the original asserts (batch size 1 not
/// supported, or a zero-slack request whose strategy deadline rounds below the clock),
/// [`BatchingError::Stalled`] where it would loop forever (an SLO shorter than the smallest
/// batch's serving time).
pub fn clockwork(
    trace: &RequestTrace,
    serving: &ServingTimes,
) -> Result<BatchingOutcome, BatchingError> {
    clockwork_online(trace, serving, &mut Emulated).map_err(OnlineError::into_batching)
}

/// [`clockwork()`] with the clock moved by `dispatcher` ([`super::online`]): a live server
/// executes each batch as it is formed, and the scheme sees the time it took.
pub fn clockwork_online<D: Dispatcher>(
    trace: &RequestTrace,
    serving: &ServingTimes,
    dispatcher: &mut D,
) -> Result<BatchingOutcome, OnlineError<D::Error>> {
    let deadline = trace.deadline_ms();
    let mut em = Emulation::new(trace, serving, dispatcher);
    let mut queues: Vec<Vec<usize>> = vec![Vec::new(); serving.sizes().len()];
    // Set by a round that found every queue empty and could not move the clock forward. A
    // second such round in a row leaves the state exactly as the first did: a fixed point.
    let mut idle_without_progress = false;

    while em.unfinished() {
        let Some(incoming) = em.intake() else {
            break; // past the last arrival, nothing new: queued requests are abandoned
        };
        for (queue, &m) in queues.iter_mut().zip(serving.m_ms()) {
            queue.extend_from_slice(&incoming);
            // The original keeps `not (t + M > deadline) and id > last_served`; inputs are
            // finite, so `not >` is `<=`.
            let (t, last_served) = (em.t, em.last_served);
            queue.retain(|&rid| t + m <= deadline[rid] && id(rid) > last_served);
        }

        let Some(min_head) = queues.iter().filter_map(|q| q.first().copied()).min() else {
            // Every queue is empty: sleep until the next arrival, or stop.
            let Some(&next_arrival) = trace.arrival_ms().get(em.next) else {
                break;
            };
            if next_arrival == em.t {
                if idle_without_progress {
                    return Err(OnlineError::from(BatchingError::Stalled {
                        time_ms: em.t,
                        next_request: em.next,
                    }));
                }
                idle_without_progress = true;
            } else {
                idle_without_progress = false;
            }
            em.idle_until(next_arrival)?;
            continue;
        };
        idle_without_progress = false;
        em.last_dropped = em.last_dropped.max(id(min_head) - 1);

        // One strategy per size, in size order; an empty queue gives +inf (invalid). A stable
        // sort by deadline, as Python's `list.sort`.
        let mut strategies: Vec<(usize, f64)> = queues
            .iter()
            .zip(serving.m_ms())
            .enumerate()
            .map(|(index, (queue, &m))| {
                let head_deadline = queue.first().map_or(f64::INFINITY, |&h| deadline[h]);
                (index, head_deadline - m)
            })
            .collect();
        strategies.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
        let chosen = strategies.iter().find(|&&(index, strategy_deadline)| {
            strategy_deadline != f64::INFINITY
                && strategy_deadline >= em.t
                && queues[index].len() >= serving.sizes()[index]
        });
        let Some(&(index, _)) = chosen else {
            return Err(OnlineError::from(BatchingError::NoValidStrategy {
                time_ms: em.t,
                queued: queues[0].len(),
            }));
        };

        let batch = &queues[index][..serving.sizes()[index]];
        if !em.serve(batch, index)? {
            break; // the dispatcher stopped the run
        }
        if let Some(&last) = batch.last() {
            em.last_served = id(last);
        }
    }
    Ok(em.finish())
}
