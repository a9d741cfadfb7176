//! Online batching: the schemes of [`clockwork`](mod@super::clockwork) and
//! [`tf_serve`](mod@super::tf_serve) driven by a [`Dispatcher`] that owns the clock. The
//! decision generators use [`Emulated`] (a batch of size `b` takes `M[b]`, an idle scheduler
//! jumps to the next arrival); a live server (`crate::serve`) executes each batch when it is
//! formed and reports when it finished, so the same scheduling code serves requests online.
//! With a dispatcher that behaves like [`Emulated`], the online run makes exactly the offline
//! decisions.

use super::outcome::BatchingError;
use std::convert::Infallible;

/// A batch a scheme has formed and wants served now.
#[derive(Clone, Copy, Debug)]
pub struct FormedBatch<'a> {
    /// Its position among the run's batches (0-based).
    pub index: usize,
    /// The trace's request ids in the batch, in queue order.
    pub requests: &'a [usize],
    /// The batch size the scheme records (tf_serve may record a size above `requests.len()`).
    pub size: usize,
    /// The serving time the scheme assumed for `size` (`M[size]`, ms).
    pub serving_ms: f64,
}

/// What runs the formed batches and owns the clock (ms from the start of the trace).
pub trait Dispatcher {
    /// What can go wrong while serving.
    type Error;

    /// Nothing is queued at `now_ms`: wait for the request arriving at `arrival_ms` (which
    /// may lie in the past: clockwork's intake quirk moves the clock backwards). Returns the
    /// clock afterwards.
    fn idle_until(&mut self, now_ms: f64, arrival_ms: f64) -> Result<f64, Self::Error>;

    /// Serve `batch` starting at `now_ms`. Returns the clock when it finished, or `None` to
    /// end the run before this batch (nothing more can be served).
    fn serve(&mut self, now_ms: f64, batch: &FormedBatch<'_>) -> Result<Option<f64>, Self::Error>;
}

/// The decision generators' clock: a batch takes exactly its serving time, idle time is
/// skipped.
#[derive(Clone, Copy, Debug, Default)]
pub struct Emulated;

impl Dispatcher for Emulated {
    type Error = Infallible;

    fn idle_until(&mut self, _now_ms: f64, arrival_ms: f64) -> Result<f64, Infallible> {
        Ok(arrival_ms)
    }

    fn serve(&mut self, now_ms: f64, batch: &FormedBatch<'_>) -> Result<Option<f64>, Infallible> {
        Ok(Some(now_ms + batch.serving_ms))
    }
}

/// An online run that failed: the scheme refused (as offline), or the dispatcher did.
#[derive(Debug, thiserror::Error)]
pub enum OnlineError<E> {
    /// The scheme cannot go on (the offline generator's errors).
    #[error(transparent)]
    Batching(#[from] BatchingError),
    /// The dispatcher failed.
    #[error("serving a batch failed")]
    Dispatch(E),
}

impl OnlineError<Infallible> {
    /// The scheme's error (an [`Emulated`] dispatcher cannot fail).
    pub fn into_batching(self) -> BatchingError {
        match self {
            OnlineError::Batching(e) => e,
            OnlineError::Dispatch(never) => match never {},
        }
    }
}
