//! The serving loop: batches from a [`Source`], run by an [`EarlyExitModel`], observed by the
//! controller ([`Session`]), timed by the [`ServeClock`].

use super::files::{ServeReport, TimingRow};
use super::{EarlyExitModel, ModelBatch, ServeClock, ServeOptions};
use crate::batching::{
    Dispatcher, FormedBatch, OnlineError, RequestTrace, Scheme, ServingTimes, TfServeParams,
};
use crate::output::served_queueing;
use crate::sim::config::RampConfig;
use crate::sim::record::Requests;
use crate::sim::{BatchObservation, BatchSize, Session, SimError};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Where batches come from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// Requests arriving by a trace, batched online by `scheme`.
    Trace {
        /// Arrivals and SLO.
        requests: &'a RequestTrace,
        /// The serving times the scheme plans with (`M[b]`).
        serving: &'a ServingTimes,
        /// Clockwork or tf_serve.
        scheme: Scheme,
        /// tf_serve's parameters.
        params: &'a TfServeParams,
    },
    /// Recorded batch sizes (a decision file), served back to back; queueing from the file's
    /// per-request stats as the simulator maps them.
    Decisions {
        /// The sizes.
        sizes: &'a [BatchSize],
        /// The file's `per_request_stats`, if it has them.
        stats: Option<&'a [Option<(f64, f64)>]>,
    },
    /// Fixed chunks of `batch_size` samples (the uniform scheme), back to back; no queueing.
    Uniform {
        /// The chunk size.
        batch_size: usize,
    },
}

/// What a serving run produced, before it is written.
#[derive(Debug)]
pub struct Served {
    /// The size of every served batch (what the simulator would call the decision list).
    pub decisions: Vec<BatchSize>,
    /// Measured latency of each served sample (ms, from its batch's start to its exit), where
    /// the model measured; the profile's prediction otherwise.
    pub inference_ms: Vec<f64>,
    /// Queueing of each served sample (ms), where known.
    pub queueing_ms: Option<Vec<Option<f64>>>,
    /// One row per batch.
    pub timing: Vec<TimingRow>,
    /// Counts and overheads.
    pub report: ServeReport,
    /// A vanilla run's requests (every one at the final exit); `None` when the controller
    /// served (its [`Session`] holds them).
    pub vanilla: Option<Requests>,
}

/// Why a serving run failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeLoopError {
    /// The batching scheme refused the trace.
    #[error("batching: {0}")]
    Batching(#[from] crate::batching::BatchingError),
    /// The model failed on a batch.
    #[error("batch {batch}: {message}")]
    Model {
        /// The batch (1-based).
        batch: usize,
        /// The model's message.
        message: String,
    },
    /// The controller refused what the model returned.
    #[error("batch {batch}: {source}")]
    Controller {
        /// The batch (1-based).
        batch: usize,
        /// Cause.
        source: SimError,
    },
    /// The decision file's stats do not cover the served requests.
    #[error("{0}")]
    Stats(String),
}

struct Server<'m, 'o, 's, M> {
    session: &'m mut Session<'s>,
    /// The trace's arrival times (a trace source only).
    arrivals: &'m [f64],
    model: &'m mut M,
    opts: &'m ServeOptions<'o>,
    origin: Instant,
    stream_len: usize,
    pos: usize,
    decisions: Vec<BatchSize>,
    inference_ms: Vec<f64>,
    /// Per sample, for a trace source: its request's queueing (padding: `None`).
    queueing_ms: Vec<Option<f64>>,
    timing: Vec<TimingRow>,
    report: ServeReport,
    slow_streak: Vec<usize>,
    /// The requests of a vanilla run (the controller keeps them otherwise).
    vanilla: Requests,
}

impl<M: EarlyExitModel> Server<'_, '_, '_, M> {
    fn stopped(&self) -> bool {
        self.opts.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn wall_ms(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1e3
    }

    /// Tail safety: a batch measured more than the slow factor away from its prediction is
    /// logged (the first ten) and counted; with `reprofile_after`, a batch size slow that many
    /// times in a row is measured again and the controller decides with the new table.
    /// Returns whether the batch was slow.
    fn tail_safety(
        &mut self,
        batch: usize,
        bs: BatchSize,
        predicted_ms: f64,
        measured_ms: Option<f64>,
    ) -> bool {
        let factor = self.opts.slow_factor;
        let slow =
            measured_ms.is_some_and(|m| m > predicted_ms * factor || m * factor < predicted_ms);
        if slow {
            self.report.slow_batches += 1;
            if self.report.slow_batches <= 10 {
                tracing::warn!(
                    "batch {batch} (bs {}): measured {:.3} ms, the profile predicted {predicted_ms:.3} ms (more than {factor}x away){}",
                    bs.get(),
                    measured_ms.unwrap_or(f64::NAN),
                    if self.report.slow_batches == 10 { "; further slow batches are only counted" } else { "" }
                );
            }
            self.slow_streak[bs.index()] += 1;
        } else {
            self.slow_streak[bs.index()] = 0;
        }
        if let Some(after) = self.opts.reprofile_after {
            if self.slow_streak[bs.index()] >= after.max(1) {
                self.slow_streak[bs.index()] = 0;
                match self.model.reprofile(bs.get()) {
                    Ok(Some(table)) => match self.session.replace_table(bs, table) {
                        Ok(()) => {
                            self.report.reprofiled.push(bs.get());
                            tracing::info!(
                                "re-profiled batch size {} after batch {batch}",
                                bs.get()
                            );
                        }
                        Err(e) => {
                            tracing::warn!("re-profile of batch size {} refused: {e}", bs.get())
                        }
                    },
                    Ok(None) => {}
                    Err(e) => tracing::warn!("re-profile of batch size {} failed: {e}", bs.get()),
                }
            }
        }
        slow
    }

    /// Serves the next `n` samples starting at clock `start`; `queueing` gives each request's
    /// queueing when the batch came from a trace. Returns the batch's duration on the clock,
    /// or `None` when the stream cannot fill it or the run was stopped.
    fn serve_samples(
        &mut self,
        start: f64,
        n: usize,
        serving_ms: f64,
        queueing: Option<Vec<Option<f64>>>,
    ) -> Result<Option<f64>, ServeLoopError> {
        if self.stopped() {
            self.report.interrupted = true;
            return Ok(None);
        }
        if self.pos + n > self.stream_len || n == 0 {
            return Ok(None);
        }
        let batch = self.decisions.len() + 1;
        let config = if self.opts.vanilla {
            RampConfig::with_zero_thresholds(Vec::new())
        } else {
            self.session.config().clone()
        };
        let wall0 = Instant::now();
        let ran: ModelBatch = self
            .model
            .run_batch(self.pos..self.pos + n, &config)
            .map_err(|e| ServeLoopError::Model {
                batch,
                message: e.to_string(),
            })?;
        let wall_ms = wall0.elapsed().as_secs_f64() * 1e3;
        let bs = BatchSize::round_up(n).ok_or(ServeLoopError::Controller {
            batch,
            source: SimError::BatchTooLarge { n },
        })?;
        let c0 = Instant::now();
        if self.opts.vanilla {
            // No controller: every request takes the final exit, at the profile's V.
            let v = self.session.tables().get(bs).vanilla_ms;
            let r = self.session.num_ramps();
            for _ in 0..n {
                self.vanilla.push(batch, bs.get(), r, true, v, v);
            }
        } else {
            let obs = BatchObservation {
                conf: ran.conf.iter().map(Vec::as_slice).collect(),
                acc: ran.acc.iter().map(Vec::as_slice).collect(),
            };
            self.session
                .observe(n, &obs)
                .map_err(|source| ServeLoopError::Controller { batch, source })?;
        }
        let controller_us = c0.elapsed().as_secs_f64() * 1e6;

        // Each sample's latency: measured at its exit, or the profile's.
        let requests = if self.opts.vanilla {
            &self.vanilla
        } else {
            self.session.requests()
        };
        let first = requests.len() - n;
        let r = self.session.num_ramps();
        for k in 0..n {
            let predicted = requests.inference_ms[first + k];
            let ms = match &ran.measured {
                None => predicted,
                Some(m) => {
                    let exit = requests.exit_point[first + k];
                    if exit >= r {
                        m.final_ms
                    } else {
                        config
                            .ramp_ids
                            .iter()
                            .position(|&a| a == exit)
                            .and_then(|j| m.ramp_ms.get(j).copied())
                            .unwrap_or(m.final_ms)
                    }
                }
            };
            self.inference_ms.push(ms);
        }
        let predicted_ms = self
            .session
            .tables()
            .get(bs)
            .exit_latencies(&config.ramp_ids)
            .no_exit();
        let measured_ms = ran.measured.as_ref().map(|m| m.final_ms);
        let slow = self.tail_safety(batch, bs, predicted_ms, measured_ms);
        let duration = match self.opts.clock {
            ServeClock::Virtual => serving_ms,
            ServeClock::Fast => wall_ms,
            ServeClock::Realtime => (self.wall_ms() - start).max(0.0),
        };
        self.timing.push(TimingRow {
            batch,
            n,
            bs: bs.get(),
            start_ms: start,
            predicted_ms,
            measured_ms,
            wall_ms,
            controller_us,
            slow,
        });
        self.report.controller_us.push(controller_us);
        if let Some(q) = queueing {
            let served = q.iter().filter(|x| x.is_some()).count();
            self.report.served += served;
            let mut q = q;
            q.resize(n, None);
            self.queueing_ms.extend(q);
        } else {
            self.report.served += n;
        }
        self.decisions.push(bs);
        self.pos += n;
        if batch == 1 {
            tracing::info!(
                "first batch served: {n} samples in {wall_ms:.3} ms (the profile predicted {predicted_ms:.3} ms)"
            );
        }
        if let Some(progress) = self.opts.progress {
            progress(self.pos);
        }
        Ok(Some(duration))
    }
}

impl<M: EarlyExitModel> Dispatcher for Server<'_, '_, '_, M> {
    type Error = ServeLoopError;

    fn idle_until(&mut self, now_ms: f64, arrival_ms: f64) -> Result<f64, ServeLoopError> {
        if self.opts.clock != ServeClock::Realtime {
            return Ok(arrival_ms);
        }
        // Sleep in short slices so that a stop request is seen; once stopped, pretend the
        // arrival came (the next batch is then refused and the run ends).
        loop {
            let now = self.wall_ms();
            if now >= arrival_ms {
                return Ok(now.max(now_ms));
            }
            if self.stopped() {
                return Ok(arrival_ms);
            }
            let wait = ((arrival_ms - now) / 1e3).min(0.05);
            std::thread::sleep(std::time::Duration::from_secs_f64(wait));
        }
    }

    fn serve(
        &mut self,
        now_ms: f64,
        batch: &FormedBatch<'_>,
    ) -> Result<Option<f64>, ServeLoopError> {
        let start = match self.opts.clock {
            ServeClock::Realtime => self.wall_ms().max(now_ms),
            _ => now_ms,
        };
        let queueing: Vec<Option<f64>> = batch
            .requests
            .iter()
            .map(|&rid| self.arrivals.get(rid).map(|a| start - a))
            .collect();
        Ok(self
            .serve_samples(start, batch.size, batch.serving_ms, Some(queueing))?
            .map(|d| start + d))
    }
}

/// Serves `source` with `model`, the controller in `session` (fresh from
/// [`Session::start`]). The run's records stay in `session` ([`Session::finish`]).
pub fn serve<M: EarlyExitModel>(
    session: &mut Session<'_>,
    model: &mut M,
    source: Source<'_>,
    opts: &ServeOptions<'_>,
) -> Result<Served, ServeLoopError> {
    let stream_len = model.stream_len();
    let arrivals: &[f64] = match source {
        Source::Trace { requests, .. } => requests.arrival_ms(),
        Source::Decisions { .. } | Source::Uniform { .. } => &[],
    };
    let mut server = Server {
        session,
        arrivals,
        model,
        opts,
        origin: Instant::now(),
        stream_len,
        pos: 0,
        decisions: Vec::new(),
        inference_ms: Vec::new(),
        queueing_ms: Vec::new(),
        timing: Vec::new(),
        report: ServeReport::new(opts.clock),
        slow_streak: vec![0; crate::sim::BATCH_SIZES.len()],
        vanilla: Requests::default(),
    };
    server.report.device = server.model.device();
    server.report.vanilla = opts.vanilla;
    let queueing_ms = match source {
        Source::Trace {
            requests,
            serving,
            scheme,
            params,
        } => {
            server.report.requests = requests.len();
            scheme
                .run_online(requests, serving, params, &mut server)
                .map_err(|e| match e {
                    OnlineError::Batching(b) => ServeLoopError::Batching(b),
                    OnlineError::Dispatch(d) => d,
                })?;
            Some(std::mem::take(&mut server.queueing_ms))
        }
        Source::Decisions { sizes, stats } => {
            let mut t = 0.0;
            for &size in sizes {
                let serving_ms = server.session.tables().get(size).vanilla_ms;
                match server.serve_samples(t, size.get(), serving_ms, None)? {
                    Some(d) => t += d,
                    None => break,
                }
            }
            server.report.requests = server.inference_ms.len();
            match stats {
                None => None,
                Some(stats) => Some(
                    served_queueing(stats, server.inference_ms.len()).map_err(|short| {
                        ServeLoopError::Stats(format!(
                            "the decision file's per_request_stats hold {} pairs, {} requests were served",
                            short.pairs, short.served
                        ))
                    })?,
                ),
            }
        }
        Source::Uniform { batch_size } => {
            let mut t = 0.0;
            loop {
                let n = batch_size.min(server.stream_len.saturating_sub(server.pos));
                let Some(size) = BatchSize::round_up(n) else {
                    break;
                };
                let serving_ms = server.session.tables().get(size).vanilla_ms;
                match server.serve_samples(t, n, serving_ms, None)? {
                    Some(d) => t += d,
                    None => break,
                }
            }
            server.report.requests = server.inference_ms.len();
            None
        }
    };
    server.report.batches = server.decisions.len();
    server.report.samples = server.inference_ms.len();
    if let Source::Trace { .. } = source {
        server.report.dropped = server.report.requests.saturating_sub(server.report.served);
    }
    Ok(Served {
        vanilla: opts.vanilla.then_some(server.vanilla),
        decisions: server.decisions,
        inference_ms: server.inference_ms,
        queueing_ms,
        timing: server.timing,
        report: server.report,
    })
}
