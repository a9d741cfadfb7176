//! End-to-end tests of distributed sweeps: real `coordinator` and `worker` processes on
//! loopback (issue #4). Scenario names are sentences.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

/// The `TestCluster` harness, result comparison and small specs.
mod util;

/// Backend inputs (issue #13): built by a GPU worker, fetched by every worker.
mod backend;
/// Crashes: a worker or the coordinator killed with SIGKILL mid-sweep.
mod crashes;
/// Undisturbed sweeps: three workers, byte-for-byte equal to `worker --local`.
mod distributed;
/// Workers that exit: the sweep done while a slot backs off; a coordinator killed or never
/// reachable (`--give-up-after`).
mod exits;
/// Artifact inputs fetched from the coordinator; a corrupt one.
mod inputs;
/// Live tasks (issue #14): leased only to a GPU worker for `device = "cuda"`, run alone
/// through `ee-backend serve` on the fetched model.
mod live;
/// Tokens and fencing: a wrong token, a superseded attempt's result, a forged upload.
mod security;
/// Workers as Slurm jobs, against a real one-node Slurm on loopback (issue #15).
mod slurm;
/// `coordinator sweep` on a real pseudo-terminal: the compact table at the end.
mod terminal;
