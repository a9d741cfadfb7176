//! Running the report at the end of a sweep. polars (in the `analysis` crate) takes minutes to
//! compile, so `worker` and `coordinator` do not link it: they run the `analysis` binary that
//! was built beside them (the folder of [`std::env::current_exe`]) as
//! `analysis report --results DIR`, and say how to build it when it is missing. Nothing here
//! fails a sweep: the outcome is returned for the caller to log.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Name of the analysis executable on this platform.
pub fn analysis_exe_name() -> String {
    format!("analysis{}", std::env::consts::EXE_SUFFIX)
}

/// How to build the analysis binary.
pub const BUILD_HINT: &str = "cargo build --release -p analysis";

/// The `analysis` binary beside the running executable, if there is one.
pub fn find_analysis() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let candidates = [
        dir.join(analysis_exe_name()),
        // cargo puts test and example executables one folder deeper (target/*/deps, examples)
        dir.parent()?.join(analysis_exe_name()),
    ];
    candidates.into_iter().find(|p| p.is_file())
}

/// What [`run_analysis`] did.
#[derive(Debug)]
pub enum ReportRun {
    /// The report was built (the analysis binary exited with 0).
    Done {
        /// The binary that ran.
        exe: PathBuf,
        /// `DIR/report/`.
        report_dir: PathBuf,
    },
    /// No `analysis` binary beside this executable; nothing was run.
    Missing {
        /// Where it was looked for.
        looked_in: Option<PathBuf>,
    },
    /// The binary ran but failed, or could not be started.
    Failed {
        /// The binary.
        exe: PathBuf,
        /// Exit status or the start error.
        message: String,
    },
}

impl std::fmt::Display for ReportRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportRun::Done { report_dir, .. } => {
                write!(f, "report written to {}", report_dir.display())
            }
            ReportRun::Missing { looked_in } => write!(
                f,
                "no report: the `analysis` binary is not built{}; build it with `{BUILD_HINT}` \
                 (beside the worker) and run `analysis report --results DIR`",
                looked_in
                    .as_ref()
                    .map(|d| format!(" (looked in {})", d.display()))
                    .unwrap_or_default()
            ),
            ReportRun::Failed { exe, message } => {
                write!(f, "report failed ({}: {message})", exe.display())
            }
        }
    }
}

/// Runs `analysis report --results <results>` with the `analysis` binary found by
/// [`find_analysis`], its output going to this process's stdout and stderr.
pub fn run_analysis(results: &Path) -> ReportRun {
    let Some(exe) = find_analysis() else {
        return ReportRun::Missing {
            looked_in: std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf)),
        };
    };
    run_analysis_with(&exe, results)
}

/// Runs the report on `results` ([`run_analysis`]) and logs the outcome: partial results are
/// fine for the report, and a missing or failing `analysis` binary never fails the sweep.
pub fn run_and_log(results: &Path) {
    match run_analysis(results) {
        r @ ReportRun::Done { .. } => tracing::info!("{r}"),
        r => tracing::warn!("{r}"),
    }
}

/// Runs `<exe> report --results <results>`.
pub fn run_analysis_with(exe: &Path, results: &Path) -> ReportRun {
    match Command::new(exe)
        .arg("report")
        .arg("--results")
        .arg(results)
        .status()
    {
        Ok(s) if s.success() => ReportRun::Done {
            exe: exe.to_path_buf(),
            report_dir: results.join("report"),
        },
        Ok(s) => ReportRun::Failed {
            exe: exe.to_path_buf(),
            message: format!("exit status {s}"),
        },
        Err(e) => ReportRun::Failed {
            exe: exe.to_path_buf(),
            message: e.to_string(),
        },
    }
}
