//! The loop state both schemes share: the clock, the intake scan and the served / dropped
//! watermarks of `get_batch_decision`, plus the outcome being recorded. The clock moves only
//! through a [`Dispatcher`]: the emulated one of the decision generators, or a live server's.

use super::online::{Dispatcher, FormedBatch, OnlineError};
use super::outcome::BatchingOutcome;
use super::trace::{RequestTrace, ServingTimes};

/// One emulation run. Request ids are `i64` watermarks as in the original, where `-1` means
/// "none yet".
pub(super) struct Emulation<'a, D> {
    pub(super) trace: &'a RequestTrace,
    dispatcher: &'a mut D,
    pub(super) serving: &'a ServingTimes,
    /// `curr_time`, ms.
    pub(super) t: f64,
    /// `next_request_id`: where the next intake scan starts.
    pub(super) next: usize,
    /// `last_served_request_id`.
    pub(super) last_served: i64,
    /// `last_dropped_request_id`.
    pub(super) last_dropped: i64,
    batching_decision: Vec<usize>,
    per_request_stats: Vec<Option<(f64, f64)>>,
}

impl<'a, D: Dispatcher> Emulation<'a, D> {
    pub(super) fn new(
        trace: &'a RequestTrace,
        serving: &'a ServingTimes,
        dispatcher: &'a mut D,
    ) -> Self {
        Emulation {
            trace,
            dispatcher,
            serving,
            t: 0.0,
            next: 0,
            last_served: -1,
            last_dropped: -1,
            batching_decision: Vec::new(),
            per_request_stats: vec![None; trace.len()],
        }
    }

    /// The loop condition: `max(last_served, last_dropped) < N - 1`.
    pub(super) fn unfinished(&self) -> bool {
        self.last_served.max(self.last_dropped) < id(self.trace.len()) - 1
    }

    /// The intake at the top of each round. Scans from `next`: stops at the first request that
    /// has not arrived yet (making it `next`), collects the arrived ones whose deadline is still
    /// ahead, and raises `last_dropped` past the expired ones. When the scan reaches the end of
    /// the trace, `next` is **not** advanced, so a later round rescans (and re-collects) the same
    /// requests. Once the clock is past the last arrival, `next` becomes `N`; `None` then means
    /// "nothing came in: stop", abandoning whatever is still queued.
    pub(super) fn intake(&mut self) -> Option<Vec<usize>> {
        let arrival = self.trace.arrival_ms();
        let deadline = self.trace.deadline_ms();
        let mut incoming = Vec::new();
        for rid in self.next..arrival.len() {
            if arrival[rid] > self.t {
                self.next = rid;
                break;
            }
            if deadline[rid] > self.t {
                incoming.push(rid);
            } else {
                self.last_dropped = self.last_dropped.max(id(rid));
            }
        }
        if arrival.last().is_some_and(|&last| self.t > last) {
            self.next = arrival.len();
            if incoming.is_empty() {
                return None;
            }
        }
        Some(incoming)
    }

    /// Nothing to serve: the clock moves to `arrival_ms` (the dispatcher says where it is
    /// after waiting).
    pub(super) fn idle_until(&mut self, arrival_ms: f64) -> Result<(), OnlineError<D::Error>> {
        self.t = self
            .dispatcher
            .idle_until(self.t, arrival_ms)
            .map_err(OnlineError::Dispatch)?;
        Ok(())
    }

    /// Serves `batch` at the current time with the serving time of `sizes[size_index]`:
    /// `stats[r] = (t - arrival[r], M)`, records the size, and moves the clock to where the
    /// dispatcher says the batch ended (`t + M` when emulated). `Ok(false)`: the dispatcher
    /// did not serve it and the run stops. Setting `last_served` is left to the scheme (the
    /// two do it differently).
    pub(super) fn serve(
        &mut self,
        batch: &[usize],
        size_index: usize,
    ) -> Result<bool, OnlineError<D::Error>> {
        let m = self.serving.m_ms()[size_index];
        let size = self.serving.sizes()[size_index];
        let formed = FormedBatch {
            index: self.batching_decision.len(),
            requests: batch,
            size,
            serving_ms: m,
        };
        let Some(end) = self
            .dispatcher
            .serve(self.t, &formed)
            .map_err(OnlineError::Dispatch)?
        else {
            return Ok(false);
        };
        for &rid in batch {
            self.per_request_stats[rid] = Some((self.t - self.trace.arrival_ms()[rid], m));
        }
        self.t = end;
        self.batching_decision.push(size);
        Ok(true)
    }

    pub(super) fn finish(self) -> BatchingOutcome {
        BatchingOutcome {
            batching_decision: self.batching_decision,
            per_request_stats: self.per_request_stats,
            end_time: self.t,
        }
    }
}

/// A request id (or count) as the original's signed watermark type. Traces never come near
/// `i64::MAX` requests; saturate rather than wrap if one somehow did.
pub(super) fn id(rid: usize) -> i64 {
    i64::try_from(rid).unwrap_or(i64::MAX)
}
