//! Artifact reader tests (filled by the readers work).
