//! The worker's report hook (`apparate::report_hook`) driving the real `analysis` binary. The
//! `worker --local` side (finding the binary beside it, the hint when it is missing) is tested
//! in the worker crate (`worker/tests/cli_local.rs`) with a copy of the worker binary, so no
//! test here needs a `worker` executable (cargo builds only this package's binaries for it).

use crate::util::{analysis_bin, copy_subset, fresh_temp_dir};
use apparate::report_hook::{run_analysis_with, ReportRun};

#[test]
fn the_report_hook_builds_the_report_with_the_analysis_binary() {
    let dir = fresh_temp_dir("hook");
    copy_subset(4, &dir);
    let run = run_analysis_with(&analysis_bin(), &dir);
    assert!(matches!(run, ReportRun::Done { .. }), "{run}");
    assert!(dir.join("report/report.html").is_file());
    assert!(dir.join("report/figures/fig12_cv_wins.png").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_hook_says_how_to_build_analysis_when_it_is_missing() {
    let r = ReportRun::Missing { looked_in: None };
    assert!(r.to_string().contains("cargo build --release -p analysis"));
    let failed = run_analysis_with(
        std::path::Path::new("/nonexistent/analysis"),
        std::path::Path::new("/tmp"),
    );
    assert!(matches!(failed, ReportRun::Failed { .. }));
}
