//! Sweeps: the TOML spec ([`spec`]), its `[traces]` tables (`trace_spec`), the checks of its
//! values ([`validate`]), its expansion into tasks ([`grid`]), content-addressed task keys
//! ([`key`]) and input digests ([`digest`]).
//!
//! `worker --local` and the distributed coordinator (issue #4) both expand a spec with
//! [`SweepSpec::plan`], so they agree on every task, its key and its order.
//!
//! ```
//! use apparate::sweep::SweepSpec;
//!
//! let plan = SweepSpec::builtin()?.plan()?;
//! assert_eq!(plan.len(), 56);
//! let first = plan.task(0).expect("a task");
//! assert_eq!((first.spec.model.as_str(), first.spec.dataset.as_str()), ("resnet18", "auburn"));
//! assert!(first.key.as_str().starts_with("cv-resnet18-auburn-video30-slo2-bs4-"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod digest;
pub mod grid;
pub mod key;
pub mod spec;
mod trace_spec;
pub mod validate;

pub use crate::ids::TaskKey;
pub use grid::{GridInfo, Plan, PlannedTask};
pub use spec::{GridSpec, InputsKind, InputsSpec, SpecError, SweepSpec, BUILTIN_SPEC_TOML};

/// A sweep spec that cannot be loaded or expanded, with where it came from.
#[derive(Debug, thiserror::Error)]
#[error("invalid sweep spec ({origin}); nothing was run")]
pub struct LoadPlanError {
    /// The spec file, or `the built-in spec`.
    pub origin: String,
    /// What is wrong with it.
    #[source]
    pub source: SpecError,
}

/// Loads the spec file `path` (the built-in spec when `None`) and expands it: what
/// `worker --local`, `worker plan`, `coordinator sweep` and `coordinator plan` start from.
pub fn load_plan(path: Option<&std::path::Path>) -> Result<Plan, LoadPlanError> {
    let (spec, origin) = match path {
        Some(p) => (SweepSpec::load(p), p.display().to_string()),
        None => (SweepSpec::builtin(), "the built-in spec".to_string()),
    };
    spec.and_then(SweepSpec::plan)
        .map_err(|source| LoadPlanError { origin, source })
}
