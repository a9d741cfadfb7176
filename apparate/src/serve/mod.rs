//! Live early-exit serving (issue #14): the simulator's controller ([`crate::sim::Session`])
//! driving a model online. Requests arrive from a trace, batches form with the same clockwork
//! and tf_serve code as the decision generators ([`crate::batching::online`]), the model runs
//! each batch with the controller's current ramps and thresholds, and the controller adapts
//! from what the ramps said.
//!
//! * [`EarlyExitModel`]: what runs a batch. [`ReplayModel`] answers from recorded samples (no
//!   model, no measurement); the backend (`ee-backend serve`) runs a real model and measures.
//! * [`ServeClock`]: `virtual` (a batch takes its profiled time, idle gaps are skipped: with
//!   [`ReplayModel`] this is the simulator, bit for bit), `fast` (idle gaps skipped, batches
//!   take the time they really took) or `realtime` (the wall clock; the server sleeps until
//!   requests arrive).
//! * [`serve_task`]: a task served end to end into its result files, plus `serve.json` and
//!   `timing.jsonl` ([`crate::task::LIVE_FILES`]).
//!
//! The contract with the simulator: every batch consumes the next `size` samples of the
//! stream, exactly as the simulator consumes the decision list, and the run ends when the
//! trace is served, the stream cannot fill the next batch, or the caller stops it.
//!
//! **A request leaves at its exit, the batch runs on.** A request whose ramp is confident
//! enough is answered there (its measured latency is the time its ramp's output was ready),
//! but its row stays in the batch up to the final exit: the controller needs every active
//! ramp's agreement with the final output for every request, as the simulator's recorded
//! samples have it (Apparate does the same; its controller would otherwise get no feedback on
//! the requests that exit).

mod files;
mod replay;
mod server;
mod task;

pub use files::{ServeReport, TimingRow};
pub use replay::ReplayModel;
pub use server::{serve, Served, Source};
pub use task::{serve_task, ServeError, ServeOutcome};

use crate::sim::{config::RampConfig, LatencyTable};
use std::ops::Range;
use std::sync::atomic::AtomicBool;

/// How time passes in a serving run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServeClock {
    /// A batch takes the serving time the scheme assumed (`M[b]`, the profile's vanilla
    /// latency); idle gaps are skipped. Nothing measured decides anything: reproducible.
    Virtual,
    /// Idle gaps are skipped; a batch takes the wall time it really took.
    Fast,
    /// The wall clock: arrivals at their times, the server sleeps when idle.
    Realtime,
}

impl ServeClock {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            ServeClock::Virtual => "virtual",
            ServeClock::Fast => "fast",
            ServeClock::Realtime => "realtime",
        }
    }

    /// Parses `virtual`, `fast` or `realtime`.
    pub fn parse(text: &str) -> Option<ServeClock> {
        [ServeClock::Virtual, ServeClock::Fast, ServeClock::Realtime]
            .into_iter()
            .find(|c| c.name() == text)
    }
}

impl From<crate::task::LiveClock> for ServeClock {
    fn from(c: crate::task::LiveClock) -> ServeClock {
        match c {
            crate::task::LiveClock::Realtime => ServeClock::Realtime,
            crate::task::LiveClock::Fast => ServeClock::Fast,
        }
    }
}

/// What a served batch produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelBatch {
    /// `conf[j][k]`: active ramp `j`'s confidence on sample `k` (as the artifact stores it).
    pub conf: Vec<Vec<f64>>,
    /// `acc[j][k]`: whether active ramp `j` agreed with the final output on sample `k`.
    pub acc: Vec<Vec<bool>>,
    /// When the outputs were ready, measured; `None` when nothing was measured (replay): the
    /// profile's predictions stand.
    pub measured: Option<Measured>,
}

/// Measured times of one batch, in ms from its start.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// When each active ramp's outputs were ready (in the configuration's order).
    pub ramp_ms: Vec<f64>,
    /// When the final outputs were ready (the batch's whole time).
    pub final_ms: f64,
}

/// What runs batches: a real model with ramps, or recorded samples.
pub trait EarlyExitModel {
    /// Why a batch could not run.
    type Error: std::fmt::Display;

    /// Samples the stream holds (the simulator's stream: a recording of `N` samples serves
    /// `N - 1`, [`ReplayModel`] applies that rule).
    fn stream_len(&self) -> usize;

    /// Runs stream samples `samples` as one batch with `config`'s active ramps.
    fn run_batch(
        &mut self,
        samples: Range<usize>,
        config: &RampConfig,
    ) -> Result<ModelBatch, Self::Error>;

    /// Measures batch size `bs` again (`--reprofile`); `None` when this model cannot (replay).
    fn reprofile(&mut self, bs: usize) -> Result<Option<LatencyTable>, Self::Error> {
        let _ = bs;
        Ok(None)
    }

    /// Where it runs, in words (for `serve.json`).
    fn device(&self) -> String;
}

/// How a serving run behaves beyond its inputs.
#[derive(Clone, Copy)]
pub struct ServeOptions<'s> {
    /// How time passes.
    pub clock: ServeClock,
    /// A batch whose measured time is more than this factor away from the profile's
    /// prediction (either way) is slow: logged and counted (tail safety).
    pub slow_factor: f64,
    /// Re-profile a batch size online after this many slow batches of that size in a row
    /// (`None`: never, the faithful default).
    pub reprofile_after: Option<usize>,
    /// Set (e.g. by a signal handler) to stop before the next batch; what was served is kept.
    pub stop: Option<&'s AtomicBool>,
    /// Called after every batch with the number of samples served so far.
    pub progress: Option<&'s dyn Fn(usize)>,
    /// Vanilla serving, the baseline of live early exits: no ramp runs and the controller
    /// decides nothing; every request takes the final exit. Same trace, batching and clock.
    pub vanilla: bool,
}

impl Default for ServeOptions<'_> {
    fn default() -> Self {
        ServeOptions {
            clock: ServeClock::Virtual,
            slow_factor: DEFAULT_SLOW_FACTOR,
            reprofile_after: None,
            stop: None,
            progress: None,
            vanilla: false,
        }
    }
}

/// The default of [`ServeOptions::slow_factor`].
pub const DEFAULT_SLOW_FACTOR: f64 = 2.0;
