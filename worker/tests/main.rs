//! The worker crate's integration tests, one binary. Golden data is read from `../shared/golden`
//! (beside the repository root); the tests fail loudly when it is missing.

/// Shared helpers: locating `../shared/golden`, loading expected files.
mod util;

/// Artifact readers on committed fixture pickles: numpy scalars, protocols, corrupt files.
mod artifact_readers;

/// `worker batching` generators against `golden/batching-*`, plus their invariants.
mod batching_golden;

/// Golden parity of the simulator on every `golden/cv-*` and `golden/nlp-*` scenario.
mod sim_golden;

/// The worked examples of spec §13.
mod spec_examples;

/// Property tests for the invariants of spec §12.
mod invariants;

/// The real `worker simulate` binary on golden scenarios and on bad inputs.
mod cli_simulate;

/// Request traces: numpy parity, fixed / Poisson / Azure CSV traces, the synthetic Azure shape.
mod traces;

/// One grid task end to end (`task::run_task`).
mod task_run;

/// Sweep specs: parsing, checks naming the key, the built-in grid, expansion order, task keys.
mod sweep_spec;

/// The results directory: manifest versions (frozen v1 fixture), completeness, the lock.
mod results_layout;

/// The real `worker --local` / `worker plan` binaries on small artifact sweeps.
mod cli_local;

/// Artifact writers: golden bytes, round trips through the readers, CPython loading them.
mod artifact_writers;

/// `worker gen-data`: its output replayed by `worker simulate` equals the embedded task.
mod gen_data;

/// Issue #11: result integrity (only a real run's files make a task complete).
mod issue11_integrity;

/// Issue #11: no writer follows a symbolic link in a folder the user gives.
mod issue11_links;
