//! Batch-decision pickles (spec §2.3): the batch sizes to serve, in order.
//!
//! The dict also holds `per_request_stats` (read for plotting) and bookkeeping keys that are
//! ignored here; in the artifact's Azure files `avg_qps` is a `numpy.float64`, which decodes
//! fine (and is never looked at).

use std::path::Path;

use serde_pickle::Value;

use super::decoder::DecodeOptions;
use super::error::ArtifactError;
use super::value::{decode_with, describe, dict_get, float_of, int_of, read_file};
use crate::sim::BatchSize;

/// The parts of a batch-decision pickle the port uses.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchDecisions {
    /// `batching_decision`: batch sizes in serving order, each in
    /// [`BATCH_SIZES`](crate::sim::BATCH_SIZES).
    pub batching_decision: Vec<BatchSize>,
    /// `per_request_stats`, indexed by request id, when the file has it: `None` for a request
    /// that was dropped, else `(queueing_ms, vanilla_ms)`.
    pub per_request_stats: Option<Vec<Option<(f64, f64)>>>,
}

/// Reads a batch-decision pickle (`{model}_1_fixed_30.pickle`, `{model}_azure.pickle`).
///
/// Errors name the file and the place, e.g. `batching_decision[17]` for a size outside
/// `1, 2, 4, ..., 64`, or `per_request_stats[3][1]` for a non-numeric latency.
pub fn read_batch_decisions(path: &Path) -> Result<BatchDecisions, ArtifactError> {
    let bytes = read_file(path)?;
    batch_decisions_from_bytes(path, &bytes)
}

/// [`read_batch_decisions`] on a pickle held in memory; `name` only names it in errors.
pub fn batch_decisions_from_bytes(
    name: &Path,
    bytes: &[u8],
) -> Result<BatchDecisions, ArtifactError> {
    // A stray global left in a key we never read (e.g. a bare dtype object) must not fail the
    // whole file; in the keys we read it would show up as None and be reported there.
    let options = DecodeOptions {
        replace_unresolved_globals: true,
    };
    let value = decode_with(name, bytes, options)?;
    batch_decisions_from_value(name, &value)
}

fn batch_decisions_from_value(path: &Path, value: &Value) -> Result<BatchDecisions, ArtifactError> {
    let field = |at: String, expected: &str, found: String| ArtifactError::Field {
        path: path.to_path_buf(),
        at,
        expected: expected.into(),
        found,
    };
    let Value::Dict(dict) = value else {
        return Err(field(
            "top level".into(),
            "a dict with key \"batching_decision\"",
            describe(value),
        ));
    };

    const DECISIONS: &str = "a list of batch sizes";
    let decisions = match dict_get(dict, "batching_decision") {
        Some(Value::List(items)) => items,
        Some(other) => {
            return Err(field(
                "batching_decision".into(),
                DECISIONS,
                describe(other),
            ))
        }
        None => {
            return Err(field(
                "batching_decision".into(),
                DECISIONS,
                "no such key".into(),
            ))
        }
    };
    let batching_decision = decisions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            int_of(v)
                .and_then(|n| usize::try_from(n).ok())
                .and_then(BatchSize::exact)
                .ok_or_else(|| {
                    field(
                        format!("batching_decision[{i}]"),
                        "a batch size in 1, 2, 4, 8, 16, 32, 64",
                        describe(v),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;

    const STATS: &str = "a list of None or (queueing_ms, vanilla_ms) pairs";
    const PAIR: &str = "None or a (queueing_ms, vanilla_ms) pair";
    const MS: &str = "a time in ms (float or int)";
    let per_request_stats = match dict_get(dict, "per_request_stats") {
        None => None,
        Some(Value::List(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::None => Ok(None),
                    Value::Tuple(pair) | Value::List(pair) if pair.len() == 2 => {
                        let ms = |k: usize| {
                            float_of(&pair[k]).ok_or_else(|| {
                                field(
                                    format!("per_request_stats[{i}][{k}]"),
                                    MS,
                                    describe(&pair[k]),
                                )
                            })
                        };
                        Ok(Some((ms(0)?, ms(1)?)))
                    }
                    other => Err(field(
                        format!("per_request_stats[{i}]"),
                        PAIR,
                        describe(other),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => return Err(field("per_request_stats".into(), STATS, describe(other))),
    };

    Ok(BatchDecisions {
        batching_decision,
        per_request_stats,
    })
}
