//! [`SimError`]: the inputs the simulator cannot run on. Its own module so that the
//! controller and the policies both use it without importing each other for it.

/// Inputs the simulator cannot run on. Each names what is wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    /// `--batch_size` is not one of the profiled sizes.
    #[error("--batch_size {batch_size} is not a profiled batch size (expected one of 1, 2, 4, 8, 16, 32, 64)")]
    UnsupportedBatchSize {
        /// The size given.
        batch_size: usize,
    },
    /// The bootstrap data has no ramp or no sample.
    #[error(
        "bootstrap data has {ramps} ramps and {samples} samples; expected at least one of each"
    )]
    EmptyBootstrap {
        /// R.
        ramps: usize,
        /// N.
        samples: usize,
    },
    /// The simulation data has fewer ramps than the bootstrap data.
    #[error("simulation data has {simulation} ramps but bootstrap data has {bootstrap}; expected the same R")]
    RampCountMismatch {
        /// R of the bootstrap pickle.
        bootstrap: usize,
        /// R of the simulation pickle.
        simulation: usize,
    },
    /// A latency table has fewer ramp entries than the pickles' R.
    #[error("latency table for batch size {batch_size} has {entries} ramp entries; expected at least R = {ramps}")]
    LatencyTableTooShort {
        /// Batch size of the table.
        batch_size: usize,
        /// Ramp entries in it.
        entries: usize,
        /// R.
        ramps: usize,
    },
    /// A latency is not a finite positive number where the simulator divides by it.
    #[error("latency table for batch size {batch_size}: vanilla latency {value} is not a positive finite number")]
    BadVanillaLatency {
        /// Batch size of the table.
        batch_size: usize,
        /// The value.
        value: f64,
    },
    /// A batch observation that does not match the configuration it was served with
    /// ([`crate::sim::Session::observe`]).
    #[error(
        "a batch observation must hold {requests} values for each of the {active} active ramps"
    )]
    ObservationMismatch {
        /// Active ramps of the configuration.
        active: usize,
        /// Requests in the batch.
        requests: usize,
    },
    /// A uniform chunk larger than 64 samples has no profile.
    #[error("uniform batch of {n} samples exceeds the largest profiled batch size 64")]
    BatchTooLarge {
        /// Samples in the batch.
        n: usize,
    },
    /// Nothing was served, so there is no summary (the original divides by zero).
    #[error("no sample was served: the simulation data has {samples} samples (the last is never served) and the first batch needs {first_batch}")]
    NothingServed {
        /// N of the simulation pickle.
        samples: usize,
        /// Size of the first batch.
        first_batch: usize,
    },
    /// The active ramps' sample windows went out of step (the original would crash).
    #[error("internal: sample windows of ramps {ramp_ids:?} are not aligned at batch {batch}")]
    HistoryMisaligned {
        /// Active ramps.
        ramp_ids: Vec<usize>,
        /// Batch number.
        batch: usize,
    },
}

/// The input that holds the value a [`SimError`] is about, so that callers that know the
/// files can name the right one (the simulator itself reads no file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Culprit {
    /// A command-line flag or task parameter (`--batch_size`), no file.
    Flags,
    /// The bootstrap pickle.
    Bootstrap,
    /// The simulation pickle (compared with the bootstrap pickle).
    Simulation,
    /// The profile pickles of one batch size.
    Profile {
        /// The batch size.
        batch_size: usize,
    },
    /// The simulation pickle together with the batch decisions (the stream is too short for
    /// the first batch); for the uniform scheme, the simulation pickle alone.
    SimulationAndDecisions,
    /// A bug of the simulator, not of any input.
    Internal,
}

impl SimError {
    /// Which input holds the offending value.
    pub fn culprit(&self) -> Culprit {
        match self {
            SimError::UnsupportedBatchSize { .. } | SimError::BatchTooLarge { .. } => {
                Culprit::Flags
            }
            SimError::EmptyBootstrap { .. } => Culprit::Bootstrap,
            SimError::RampCountMismatch { .. } => Culprit::Simulation,
            SimError::LatencyTableTooShort { batch_size, .. }
            | SimError::BadVanillaLatency { batch_size, .. } => Culprit::Profile {
                batch_size: *batch_size,
            },
            SimError::NothingServed { .. } => Culprit::SimulationAndDecisions,
            SimError::HistoryMisaligned { .. } | SimError::ObservationMismatch { .. } => {
                Culprit::Internal
            }
        }
    }
}
