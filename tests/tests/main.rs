//! End-to-end tests of distributed sweeps: real `coordinator` and `worker` processes on
//! loopback (issue #4). Scenario names are sentences.

/// The `TestCluster` harness, result comparison and small specs.
mod util;

/// Crashes: a worker or the coordinator killed with SIGKILL mid-sweep.
mod crashes;
/// Undisturbed sweeps: three workers, byte-for-byte equal to `worker --local`.
mod distributed;
/// Artifact inputs fetched from the coordinator; a corrupt one.
mod inputs;
/// Tokens and fencing: a wrong token, a superseded attempt's result, a forged upload.
mod security;
