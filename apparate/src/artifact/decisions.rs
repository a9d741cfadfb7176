//! Batch-decision pickles (spec §2.3): the batch sizes to serve, in order.
//!
//! The dict also holds `per_request_stats` (read for plotting) and bookkeeping keys that are
//! ignored here; in the artifact's Azure files `avg_qps` is a `numpy.float64`, which decodes
//! fine (and is never looked at).

use std::path::Path;

use serde_pickle::Value;

use super::error::ArtifactError;
use super::value::{decode_with, describe, dict_get, float_of, int_of, read_file};
use crate::sim::BatchSize;
use pickle::decoder::DecodeOptions;
use pickle::lite::{self, V};

/// The largest time (ms) a `per_request_stats` entry may hold: 10^9 ms, about 11.6 days,
/// longer than any replayed trace. Larger values, like NaN, infinities and negative times,
/// are refused: they are not times a request can have waited or been served in.
pub const MAX_STATS_MS: f64 = 1e9;

/// Whether `x` is a time a `per_request_stats` entry may hold (see [`MAX_STATS_MS`]).
fn plausible_ms(x: f64) -> bool {
    (0.0..=MAX_STATS_MS).contains(&x)
}

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

impl BatchDecisions {
    /// The queueing delay of each of the first `served` requests (see
    /// [`served_queueing`](crate::output::served_queueing)); `None` when the file has no
    /// `per_request_stats`. A list with fewer pairs than `served` is refused, naming `path`
    /// (the decision file) and the index where the list ends.
    pub fn served_queueing(
        &self,
        path: &Path,
        served: usize,
    ) -> Result<Option<Vec<Option<f64>>>, ArtifactError> {
        let Some(stats) = &self.per_request_stats else {
            return Ok(None);
        };
        crate::output::served_queueing(stats, served)
            .map(Some)
            .map_err(|short| stats_too_short(path, short))
    }
}

/// The refusal of a decision file whose `per_request_stats` is shorter than the requests
/// served.
pub fn stats_too_short(path: &Path, short: crate::output::StatsTooShort) -> ArtifactError {
    let (at, expected, found) = short.field_parts();
    ArtifactError::Field {
        path: path.to_path_buf(),
        at,
        expected,
        found,
    }
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
    match fast_batch_decisions(bytes) {
        Some(decisions) => Ok(decisions),
        None => batch_decisions_generic(name, bytes),
    }
}

/// The generic path: the whole [`Value`] tree, every error worded.
pub(crate) fn batch_decisions_generic(
    name: &Path,
    bytes: &[u8],
) -> Result<BatchDecisions, ArtifactError> {
    let options = DecodeOptions {
        replace_unresolved_globals: true,
    };
    let value = decode_with(name, bytes, options)?;
    batch_decisions_from_value(name, &value)
}

/// The keys the fast path keeps, in the order of the `lite` field slots.
const DECISION_KEYS: [&str; 2] = ["batching_decision", "per_request_stats"];

/// The fast path ([`pickle::lite`]): `None` where it declines, and then the generic path gives
/// the result or the error. Where it accepts, it returns what the generic path returns.
pub(crate) fn fast_batch_decisions(bytes: &[u8]) -> Option<BatchDecisions> {
    let lite = lite::decode(bytes, &DECISION_KEYS, true)?;
    let V::Dict(dict) = lite.root() else {
        return None;
    };
    let Some(V::List(decisions)) = lite.field(dict, 0) else {
        return None;
    };
    // An empty list is refused by the generic path.
    if lite.len(decisions) == 0 {
        return None;
    }
    // As `int_of`, then a supported size (numpy integers are left to the generic path).
    let mut batching_decision = Vec::with_capacity(lite.len(decisions));
    for v in lite.elements(decisions) {
        let V::Int(n) = v else { return None };
        batching_decision.push(usize::try_from(n).ok().and_then(BatchSize::exact)?);
    }
    // As `float_of`, then a plausible time (the generic path words the refusal).
    let ms = |v: V| {
        match v {
            V::Float(x) => Some(x),
            V::Int(i) => Some(i as f64),
            _ => None,
        }
        .filter(|&x| plausible_ms(x))
    };
    let per_request_stats = match lite.field(dict, 1) {
        None => None,
        Some(V::List(stats)) => {
            let mut out = Vec::with_capacity(lite.len(stats));
            for v in lite.elements(stats) {
                out.push(match v {
                    V::None => None,
                    V::Tuple(pair) | V::List(pair) if lite.len(pair) == 2 => {
                        let mut it = lite.elements(pair);
                        Some((ms(it.next()?)?, ms(it.next()?)?))
                    }
                    _ => return None,
                });
            }
            Some(out)
        }
        Some(_) => return None,
    };
    Some(BatchDecisions {
        batching_decision,
        per_request_stats,
    })
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
    if batching_decision.is_empty() {
        return Err(field(
            "batching_decision".into(),
            "a non-empty list of batch sizes (an empty list serves no request)",
            "an empty list".into(),
        ));
    }

    const STATS: &str = "a list of None or (queueing_ms, vanilla_ms) pairs";
    const PAIR: &str = "None or a (queueing_ms, vanilla_ms) pair";
    const MS: &str = "a time in ms from 0 to 1e9 (float or int)";
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
                            float_of(&pair[k])
                                .filter(|&x| plausible_ms(x))
                                .ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use proptest::prelude::*;
    use serde_pickle::{HashableValue, SerOptions};

    use super::*;

    fn manifest_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// Every golden decision file, and every fixture pickle (most are not decision files).
    fn files() -> Vec<(PathBuf, bool)> {
        let mut files = Vec::new();
        let golden = manifest_dir().join("../../shared/golden");
        assert!(golden.is_dir(), "golden data missing: {}", golden.display());
        for scenario in std::fs::read_dir(&golden).expect("golden dir") {
            let dir = scenario
                .expect("golden entry")
                .path()
                .join("data/batch_decisions");
            if let Ok(entries) = std::fs::read_dir(dir) {
                files.extend(entries.map(|e| (e.expect("golden file").path(), true)));
            }
        }
        assert_eq!(files.len(), 5, "the five golden decision files");
        for entry in
            std::fs::read_dir(manifest_dir().join("tests/fixtures/pickles")).expect("fixtures")
        {
            let path = entry.expect("fixture entry").path();
            if path.extension().is_some_and(|e| e == "pickle") {
                let good = path.file_name().is_some_and(|n| {
                    n == "decisions_azure_numpy.pickle" || n == "decisions_no_stats.pickle"
                });
                files.push((path, good));
            }
        }
        files.sort();
        files
    }

    fn outcome(r: Result<BatchDecisions, ArtifactError>) -> Result<String, String> {
        // Debug output shows every float exactly (shortest round trip).
        r.map(|d| format!("{d:?}")).map_err(|e| e.to_string())
    }

    /// The fast path reads every golden and good fixture decision file, exactly as the generic
    /// path does, and never accepts a file the generic path rejects.
    #[test]
    fn fast_and_generic_paths_agree_on_every_file() {
        for (path, good) in files() {
            let bytes = std::fs::read(&path).expect("readable");
            let generic = outcome(batch_decisions_generic(&path, &bytes));
            match fast_batch_decisions(&bytes) {
                Some(fast) => assert_eq!(Ok(format!("{fast:?}")), generic, "{}", path.display()),
                None => assert!(!good, "fast path declined {}", path.display()),
            }
            assert_eq!(outcome(batch_decisions_from_bytes(&path, &bytes)), generic);
        }
    }

    fn golden_and_fixture_bytes() -> &'static [(PathBuf, Vec<u8>)] {
        static BYTES: std::sync::OnceLock<Vec<(PathBuf, Vec<u8>)>> = std::sync::OnceLock::new();
        BYTES.get_or_init(|| {
            files()
                .into_iter()
                .filter(|(_, good)| *good)
                .map(|(p, _)| {
                    let b = std::fs::read(&p).expect("readable");
                    (p, b)
                })
                .collect()
        })
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => prop_oneof![Just(1i64), Just(2), Just(3), Just(64), Just(-1)].prop_map(Value::I64),
            3 => (0.0f64..100.0).prop_map(Value::F64),
            1 => Just(Value::None),
            1 => Just(Value::Bool(true)),
            1 => Just(Value::String("x".into())),
        ]
    }

    fn arb_stat() -> impl Strategy<Value = Value> {
        prop_oneof![
            2 => Just(Value::None),
            6 => (arb_value(), arb_value()).prop_map(|(a, b)| Value::Tuple(vec![a, b])),
            1 => (arb_value(), arb_value()).prop_map(|(a, b)| Value::List(vec![a, b])),
            1 => prop::collection::vec(arb_value(), 0..4).prop_map(Value::Tuple),
            1 => arb_value(),
        ]
    }

    proptest! {
        /// Corrupted decision files: the fast path never panics, and where it gives a result
        /// the generic path gives the same one.
        #[test]
        fn corrupted_files_never_make_the_paths_disagree(
            which in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in prop::option::weighted(0.2, any::<usize>()),
        ) {
            let (path, bytes) = which.get(golden_and_fixture_bytes());
            let mut bytes = bytes.clone();
            for (at, b) in flips {
                let len = bytes.len();
                bytes[at % len] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            if let Some(fast) = fast_batch_decisions(&bytes) {
                prop_assert_eq!(Ok(format!("{fast:?}")), outcome(batch_decisions_generic(path, &bytes)));
            }
        }

        /// Random decision dicts (mostly valid): wherever the fast path gives a result, the
        /// generic path gives the same one.
        #[test]
        fn random_dicts_never_make_the_paths_disagree(
            decisions in prop::collection::vec(arb_value(), 0..6),
            stats in prop::option::of(prop::collection::vec(arb_stat(), 0..6)),
            decisions_as_tuple in prop::bool::weighted(0.1),
            extra in arb_value(),
        ) {
            let decisions = if decisions_as_tuple { Value::Tuple(decisions) } else { Value::List(decisions) };
            let mut dict = vec![
                (HashableValue::String("batching_decision".into()), decisions),
                (HashableValue::String("arch".into()), extra),
            ];
            if let Some(stats) = stats {
                dict.push((HashableValue::String("per_request_stats".into()), Value::List(stats)));
            }
            let v = Value::Dict(dict.into_iter().collect());
            let bytes = serde_pickle::value_to_vec(&v, SerOptions::new()).expect("serialize");
            let name = Path::new("d.pickle");
            if let Some(fast) = fast_batch_decisions(&bytes) {
                prop_assert_eq!(Ok(format!("{fast:?}")), outcome(batch_decisions_generic(name, &bytes)));
            }
        }
    }
}
