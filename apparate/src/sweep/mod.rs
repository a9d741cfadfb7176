//! Sweeps: the TOML spec ([`spec`]), its expansion into tasks ([`grid`]), content-addressed task
//! keys ([`key`]) and input digests ([`digest`]).
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

pub use crate::ids::TaskKey;
pub use grid::{GridInfo, Plan, PlannedTask};
pub use spec::{GridSpec, InputsKind, InputsSpec, SpecError, SweepSpec, BUILTIN_SPEC_TOML};
