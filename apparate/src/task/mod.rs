//! One task of the experiment grid: its canonical description ([`TaskSpec`]) and its execution
//! ([`run_task`]): inputs → trace → batching → Apparate, the oracle and the static early-exit
//! baseline on the same batches → result files.
//!
//! `worker --local` and the distributed sweep run tasks through this one function.

mod run;

pub(crate) use run::{args_line, culprit_files, load, online_setup};
pub use run::{
    batch_generated_trace, run_task, run_task_stored, GeneratedBatches, TaskError, TaskOutcome,
};

use crate::sim::{Family, Overrides, StaticRamps};
use crate::traces::TraceSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The files [`run_task`] writes into a task's folder ([`crate::storage::PLAIN_RESULT_FILES`]),
/// and the extra files of a live task ([`crate::storage::LIVE_FILES`]).
pub use crate::storage::{LIVE_FILES, PLAIN_RESULT_FILES as RESULT_FILES};

/// A live run (issue #14): the task is served by `ee-backend serve` with the real model of its
/// backend inputs (the controller drives real inference, online) instead of simulated from the
/// recorded samples. Its folder holds [`RESULT_FILES`] (measured queueing and inference times
/// in `requests.parquet`) plus [`LIVE_FILES`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveRun {
    /// How arrivals are replayed.
    pub clock: LiveClock,
}

/// How a live run replays its trace's arrivals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveClock {
    /// At their times on the wall clock: the server sleeps until a request arrives.
    Realtime,
    /// As fast as possible: idle gaps are skipped, inference time is measured.
    Fast,
}

impl LiveClock {
    /// The flag's spelling: `realtime` or `fast`.
    pub fn name(self) -> &'static str {
        match self {
            LiveClock::Realtime => "realtime",
            LiveClock::Fast => "fast",
        }
    }

    /// Parses `realtime` or `fast`.
    pub fn parse(text: &str) -> Option<LiveClock> {
        [LiveClock::Realtime, LiveClock::Fast]
            .into_iter()
            .find(|c| c.name() == text)
    }
}

/// Where a task's inputs come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Inputs {
    /// The built-in synthetic workload (`crate::workload`); nothing to download.
    Embedded {
        /// 1.0 = paper scale (70,000 frames per video; 250,050 / 179,767 reviews).
        scale: f64,
    },
    /// A directory in the artifact's data layout (`bootstrap_pickles/`, `simulation_pickles/`,
    /// `profile_pickles_bs/`, `batch_decisions/`).
    Artifact {
        /// The directory.
        dir: PathBuf,
    },
    /// A real model run once by `ee-backend gen-data` into the content-addressed folder
    /// `<results>/inputs/<digest>/` ([`crate::backend_inputs`]); the task then runs on that
    /// folder as on [`Inputs::Artifact`]. The paths are blanked in task keys: the inputs
    /// digest (in the task's digests as `backend`) stands for their contents.
    Backend {
        /// The backend's model name (`--model`).
        model: String,
        /// The model's name in the folder's file names and in the task (`--name` when it is
        /// not `model`).
        name: String,
        /// The dataset name in the folder's file names (`--dataset`).
        dataset: String,
        /// Weights file (`--weights`).
        weights: PathBuf,
        /// Dataset folder or file (`--data`).
        data: PathBuf,
        /// Labels file (`--labels`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        labels: Option<PathBuf>,
        /// Where the backend runs (`--device`).
        device: BackendDevice,
        /// The backend's seed (`--seed`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seed: Option<u64>,
    },
}

/// Where `ee-backend` runs a model (`--device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendDevice {
    /// CUDA when a usable GPU is found, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// An NVIDIA GPU (in a distributed sweep, only GPU workers build these inputs).
    Cuda,
}

impl BackendDevice {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            BackendDevice::Auto => "auto",
            BackendDevice::Cpu => "cpu",
            BackendDevice::Cuda => "cuda",
        }
    }

    /// Parses `auto`, `cpu` or `cuda`.
    pub fn parse(text: &str) -> Option<BackendDevice> {
        match text {
            "auto" => Some(BackendDevice::Auto),
            "cpu" => Some(BackendDevice::Cpu),
            "cuda" => Some(BackendDevice::Cuda),
            _ => None,
        }
    }
}

/// A task's request trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskTrace {
    /// Arrivals generated from `spec`, batched by the task's scheme with the model's vanilla
    /// latencies `V[bs]` as serving times.
    Generated {
        /// The trace's name in the sweep spec (e.g. `video30`, `azure`).
        name: String,
        /// The arrivals.
        spec: TraceSpec,
    },
    /// A batch-decision pickle recorded by the artifact, `batch_decisions/{file}` of the
    /// artifact inputs (e.g. `resnet18_1_fixed_30.pickle`); queueing from its
    /// `per_request_stats`.
    ArtifactDecisions {
        /// The trace's name in the sweep spec (e.g. `fixed_30`, `azure`).
        name: String,
        /// File name under `batch_decisions/`.
        file: String,
    },
}

impl TaskTrace {
    /// The trace's name.
    pub fn name(&self) -> &str {
        match self {
            TaskTrace::Generated { name, .. } | TaskTrace::ArtifactDecisions { name, .. } => name,
        }
    }
}

/// How requests are batched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchingScheme {
    /// Clockwork (the artifact's choice for every run).
    Clockwork,
    /// TF-Serving's timeout batcher.
    TfServe,
    /// Fixed chunks of `batch_size` from the sample stream; no trace needed, no queueing.
    Uniform,
}

impl BatchingScheme {
    /// The artifact's `--batching_scheme` spelling.
    pub fn name(self) -> &'static str {
        match self {
            BatchingScheme::Clockwork => "clockwork",
            BatchingScheme::TfServe => "tf_serve",
            BatchingScheme::Uniform => "uniform",
        }
    }
}

/// The parameters a sweep may vary (the paper's sensitivity studies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskParams {
    /// Batching scheme.
    pub batching: BatchingScheme,
    /// SLO as a multiple of the model's batch-size-1 vanilla latency (the artifact's "SLO
    /// multiplier", e.g. the `1` in `resnet18_1_fixed_30`). Used by clockwork and tf_serve.
    pub slo_multiplier: f64,
    /// The artifact's `--batch_size`: bootstrap profile size and uniform chunk size.
    pub batch_size: usize,
    /// Ramp set of the static early-exit baseline.
    #[serde(default = "default_static_ramps")]
    pub static_ramps: StaticRamps,
    /// Departures from the artifact's constants (accuracy budget, ramp budget, check interval).
    #[serde(default)]
    pub overrides: Overrides,
}

fn default_static_ramps() -> StaticRamps {
    StaticRamps::AllSites
}

/// One cell of the grid: everything that determines its results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The grid this task came from (its summary lines go to `output_{grid}.txt`).
    pub grid: String,
    /// CV or NLP: selects the controller's policy.
    pub family: Family,
    /// Model name (e.g. `resnet18`, `bert-base`).
    pub model: String,
    /// Dataset name (e.g. `auburn`, `imdb`).
    pub dataset: String,
    /// Request trace.
    pub trace: TaskTrace,
    /// Parameters.
    pub params: TaskParams,
    /// Seed of the embedded workload (ignored for artifact and backend inputs).
    pub seed: u64,
    /// Inputs.
    pub inputs: Inputs,
    /// A live run instead of a simulation (only with [`Inputs::Backend`]); absent for a
    /// simulated task, so simulated tasks keep their keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveRun>,
}

impl TaskSpec {
    /// The artifact's `--arch`: `{model}_{dataset}` for CV, `{model}` for NLP.
    pub fn arch(&self) -> String {
        match self.family {
            Family::Cv => format!("{}_{}", self.model, self.dataset),
            Family::Nlp => self.model.clone(),
        }
    }

    /// The artifact's `--dataset`: `video` for CV, the dataset for NLP.
    pub fn dataset_flag(&self) -> &str {
        match self.family {
            Family::Cv => "video",
            Family::Nlp => &self.dataset,
        }
    }

    /// Files a task with artifact inputs reads, relative to the artifact directory, in a fixed
    /// order (empty for embedded inputs; for backend inputs, the files it reads in the built
    /// folder). For artifact inputs their digests are part of the task's key.
    pub fn input_files(&self) -> Vec<PathBuf> {
        if let Inputs::Embedded { .. } = self.inputs {
            return Vec::new();
        }
        let (ds, m) = (&self.dataset, &self.model);
        let mut files = vec![
            PathBuf::from(format!("bootstrap_pickles/bootstrap_{ds}_{m}.pickle")),
            PathBuf::from(format!("simulation_pickles/{ds}_{m}.pickle")),
        ];
        let profile_model = match self.family {
            Family::Cv => m.split('_').next().unwrap_or(m).to_string(),
            Family::Nlp => m.clone(),
        };
        for bs in crate::sim::BATCH_SIZES {
            if self.family == Family::Cv {
                files.push(PathBuf::from(format!(
                    "profile_pickles_bs/{profile_model}_{bs}_profile.pickle"
                )));
            }
            files.push(PathBuf::from(format!(
                "profile_pickles_bs/{profile_model}_{bs}_earlyexit_profile.pickle"
            )));
        }
        if let TaskTrace::ArtifactDecisions { file, .. } = &self.trace {
            files.push(PathBuf::from("batch_decisions").join(file));
        }
        files
    }
}
