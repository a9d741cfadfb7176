//! The `worker` binary's integration tests, one binary: the real executable on golden scenarios,
//! small sweeps and bad inputs. The library's own tests are in `apparate/tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

/// Shared helpers (golden folder, temporary folders), the library tests' own module.
#[path = "../../apparate/tests/util.rs"]
#[allow(dead_code)]
mod util;

/// Comparing a batch-decision file with a golden `expected.json`, shared with the library tests.
#[path = "../../apparate/tests/batching_expect.rs"]
mod batching_expect;

/// `worker simulate` on golden scenarios and on bad inputs.
mod cli_simulate;

/// `worker batching` on a golden trace and on malformed traces.
mod cli_batching;

/// `worker --local` / `worker plan` on small artifact sweeps.
mod cli_local;

/// `worker gen-data`: its output replayed by `worker simulate` equals the embedded task.
mod gen_data;

/// Backend inputs in a sweep (issue #13): built once, reused, crash-safe, keyed by digest.
mod backend_grid;

/// Live tasks in a sweep (issue #14): run through `ee-backend serve`, alone; their folders
/// complete only with the live files and not interrupted.
mod live_grid;

/// What the end of a sweep prints: summary lines or the compact table, on a real terminal.
mod sweep_output;

/// Issue #11 items 3-6: hostile inputs (devices, FIFOs, impossible queueing and latencies,
/// refusals naming the right file).
mod hostile_inputs;

/// Issue #11: result integrity (only a real run's files make a task complete).
mod issue11_integrity;

/// Issue #11: no writer follows a symbolic link in a folder the user gives.
mod issue11_links;

/// Issue #15: results stored compressed lose nothing (plain vs zstd, `worker cat`, `zstd -d`).
mod issue15_storage;
