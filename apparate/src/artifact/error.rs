//! The one error type of the artifact readers.
//!
//! Every variant names the file; the ones about content also name the place inside the pickle
//! (`conf[3][1207]`, `children[2].fwd_latency`, `batching_decision[17]`) and what was expected
//! there. The `Display` text is always a single line. None of these errors is worth retrying:
//! they describe the file's content, which does not change between attempts (only
//! [`ArtifactError::Io`] might, e.g. on a flaky network mount).

use std::path::PathBuf;

pub use pickle::PickleProblem;

/// Why an artifact file could not be read or turned into simulator inputs.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file could not be read from disk.
    #[error("{}: cannot read the file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A profile pickle for one of the batch sizes is not there (the artifact needs all seven).
    #[error(
        "{}: the profile for batch size {bs} is missing (one is needed for every batch size 1, 2, 4, ..., 64)",
        path.display()
    )]
    MissingProfile {
        /// The file that should exist.
        path: PathBuf,
        /// Its batch size.
        bs: usize,
    },

    /// The byte stream is not a pickle this decoder can read: cut short, random bytes, unknown
    /// or misused opcodes, a structure too deep or too large to decode safely, an object of an
    /// unknown class left in the data.
    #[error("{}: corrupt pickle at byte {offset}: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Offset of the opcode where the problem shows.
        offset: usize,
        /// What is wrong.
        problem: PickleProblem,
    },

    /// A value inside the pickle is missing or has the wrong type or value.
    #[error("{}: {at}: expected {expected}, found {found}", path.display())]
    Field {
        /// The file.
        path: PathBuf,
        /// Where inside the pickle, e.g. `conf[3][1207]` or `children[2].fwd_latency`.
        at: String,
        /// What the reader needs there.
        expected: String,
        /// What is there instead (a short description, never the whole value).
        found: String,
    },

    /// Two per-ramp sample lists differ in length (all ramps must cover the same samples).
    #[error(
        "{}: {at} holds {len} samples but {reference_at} holds {reference_len} (every ramp must hold the same samples)",
        path.display()
    )]
    RampLength {
        /// The file.
        path: PathBuf,
        /// The list that differs, e.g. `acc[4]`.
        at: String,
        /// Its length.
        len: usize,
        /// The list it is compared with, `conf[0]`.
        reference_at: String,
        /// That list's length.
        reference_len: usize,
    },

    /// A profile tree holds no ramp at all (no `branch_net` node for NLP, no `BranchPoint`
    /// matching the vanilla tree for CV); the original aborts here too.
    #[error("{}: no ramp found in the profile tree: {what}", path.display())]
    NoRamps {
        /// The early-exit profile.
        path: PathBuf,
        /// What was searched for.
        what: &'static str,
    },

    /// CV profiles: a module path of the vanilla tree runs into a leaf of the early-exit tree
    /// before all its components are resolved (the original fails an assertion here).
    #[error(
        "{}: {at}: module has no children, so \"{full_name}\" (from the vanilla profile) cannot be resolved",
        path.display()
    )]
    UnresolvablePath {
        /// The early-exit profile.
        path: PathBuf,
        /// The leaf where the lookup stopped (`children[4].children[0]`; empty for the root).
        at: String,
        /// The vanilla module's full name being looked up.
        full_name: String,
    },
}

impl ArtifactError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ArtifactError::Io { path, .. }
            | ArtifactError::MissingProfile { path, .. }
            | ArtifactError::Malformed { path, .. }
            | ArtifactError::Field { path, .. }
            | ArtifactError::RampLength { path, .. }
            | ArtifactError::NoRamps { path, .. }
            | ArtifactError::UnresolvablePath { path, .. } => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_name_file_and_place() {
        let e = ArtifactError::Field {
            path: "data/sim.pickle".into(),
            at: "conf[3][1207]".into(),
            expected: "a finite float confidence".into(),
            found: "NaN".into(),
        };
        assert_eq!(
            e.to_string(),
            "data/sim.pickle: conf[3][1207]: expected a finite float confidence, found NaN"
        );
        let e = ArtifactError::Malformed {
            path: "a.pickle".into(),
            offset: 7,
            problem: PickleProblem::BadOperand {
                op: "APPEND",
                expected: "a list",
            },
        };
        assert_eq!(
            e.to_string(),
            "a.pickle: corrupt pickle at byte 7: APPEND needs a list"
        );
        assert_eq!(e.path(), std::path::Path::new("a.pickle"));
    }
}
