//! The apparate library's integration tests, one binary. Golden data is read from
//! `../shared/golden` (beside the repository root); the tests fail loudly when it is missing.
//! Tests of the `worker` binary itself live in `worker/tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

/// Shared helpers: locating `../shared/golden`, temporary folders (also used by `worker/tests`).
mod util;

/// Comparing a batch-decision file with a golden `expected.json` (also used by `worker/tests`).
mod batching_expect;

/// Artifact readers on committed fixture pickles: numpy scalars, protocols, corrupt files.
mod artifact_readers;

/// Batching generators against `golden/batching-*`, plus their invariants.
mod batching_golden;

/// Golden parity of the simulator on every `golden/cv-*` and `golden/nlp-*` scenario.
mod sim_golden;

/// The worked examples of spec §13.
mod spec_examples;

/// Property tests for the invariants of spec §12.
mod invariants;

/// Request traces: numpy parity, fixed / Poisson / Azure CSV traces, the synthetic Azure shape.
mod traces;

/// Live serving (issue #14) with the replay model: the task's files, bit for bit.
mod serve;

/// One grid task end to end (`task::run_task`).
mod task_run;

/// Sweep specs: parsing, checks naming the key, the built-in grid, expansion order, task keys.
mod sweep_spec;

/// Backend inputs (issue #13): the spec's checks, the inputs digest.
mod backend_inputs;

/// The results directory: manifest versions (frozen v1 fixture), completeness, the lock.
mod results_layout;

/// Artifact writers: golden bytes, round trips through the readers, CPython loading them.
mod artifact_writers;

/// Log lines the golden scenarios do not reach: NLP's single latest ramp, wide numpy arrays.
mod log_lines;

/// Durations the binaries read (`--give-up-after`) and print.
mod flags;
