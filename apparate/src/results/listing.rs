//! The plan listing `worker plan` and `coordinator plan` print: one tab-separated row per task
//! (index, key, label, state), in the plan's order.

use std::io::Write;

use super::{ResultsDir, TaskStatus};
use crate::sweep::Plan;

/// How many tasks of a plan are in each state (the listing's last line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanCounts {
    /// Complete and valid in the results directory: a sweep skips them.
    pub complete: usize,
    /// Not complete, with a failure record from an earlier run.
    pub failed: usize,
    /// Not complete, never failed (missing, or a folder that will be replaced).
    pub pending: usize,
}

impl std::fmt::Display for PlanCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} tasks: {} complete, {} failed before, {} pending",
            self.complete + self.failed + self.pending,
            self.complete,
            self.failed,
            self.pending
        )
    }
}

/// Writes one row per task of `plan` to `out`: `index \t key \t label \t state`, where state is
/// `complete`, `invalid (why)`, `failed (kind: message)` or `pending`. Runs nothing.
pub fn write_plan_listing(
    plan: &Plan,
    dir: &ResultsDir,
    out: &mut impl Write,
) -> std::io::Result<PlanCounts> {
    let mut counts = PlanCounts::default();
    for task in plan.tasks() {
        let state = match dir.status(&task, plan.code_version()) {
            TaskStatus::Complete(_) => {
                counts.complete += 1;
                "complete".to_string()
            }
            other => {
                let failure = dir.read_failure(&task.key);
                if failure.is_some() {
                    counts.failed += 1;
                } else {
                    counts.pending += 1;
                }
                match (other, failure) {
                    (TaskStatus::Invalid(p), _) => format!("invalid ({p})"),
                    (_, Some(f)) => format!("failed ({:?}: {})", f.kind, f.message),
                    _ => "pending".to_string(),
                }
            }
        };
        writeln!(
            out,
            "{}\t{}\t{}\t{state}",
            task.index,
            task.key,
            task.label()
        )?;
    }
    Ok(counts)
}
