//! The readers agree: anything the protocol-4 writer writes, every reader of this crate reads
//! back as written, and on every golden and fixture pickle of the workspace all readers agree
//! with each other (and with `serde-pickle` 1.2.0 wherever that decodes the file).
//!
//! The readers: [`preflight::check`] (accepts or refuses with the decoder's offset and
//! problem), [`decoder::decode`] (the full tree, with and without
//! `replace_unresolved_globals`), [`lite::decode`] (where it accepts, the same values), and
//! `serde_pickle::value_from_slice` with `keep_restore_state()` (where it succeeds, the same
//! tree; where it fails on a stream we decode, only with its memo bug). The Apparate-specific
//! sample reader (`apparate::artifact`'s `ramp_stream`) is checked against the generic path by
//! apparate's own tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pickle::decoder::{self, DecodeOptions};
use pickle::lite;
use pickle::value::float_of;
use pickle::write::PyValue;
use pickle::{preflight, OpError, PickleProblem};
use proptest::prelude::*;
use serde_pickle::{DeOptions, HashableValue, Value};

/// The dict keys the light decoder keeps in these tests.
const KEYS: &[&str] = &[
    "a",
    "b",
    "name",
    "children",
    "fwd_latency",
    "batching_decision",
    "per_request_stats",
    "avg_qps",
    "conf",
    "acc",
];

// ---------------------------------------------------------------------------------------------
// Comparing the readers' results

/// Every reader on one stream: returns the generic decoder's result after checking that the
/// others agree with it.
fn all_readers(p: &[u8]) -> Result<Value, OpError> {
    let generic = decoder::decode(p, DecodeOptions::default());
    let replaced = decoder::decode(
        p,
        DecodeOptions {
            replace_unresolved_globals: true,
        },
    );

    // Pre-flight refuses exactly where the decoder fails before building anything.
    if let Err(e) = preflight::check(p) {
        assert_eq!(generic, Err(e), "pre-flight and decoder differ on {p:?}");
        assert_eq!(replaced, Err(e), "pre-flight and decoder differ on {p:?}");
    }
    // The option only turns an unresolved global into None.
    match (&generic, &replaced) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Err((_, PickleProblem::UnresolvedGlobal)), _) => {}
        (a, b) => assert_eq!(a, b),
    }

    // The light decoder: where it accepts, the generic path accepts and gives the same values.
    for (replace, result) in [(false, &generic), (true, &replaced)] {
        if let Some(l) = lite::decode(p, KEYS, replace) {
            let value = result
                .as_ref()
                .unwrap_or_else(|e| panic!("lite accepts, generic path rejects: {e:?}"));
            assert!(l.agrees(l.root(), value), "lite disagrees: {value:?}");
        }
    }

    // serde-pickle: the same tree wherever it decodes the stream; where it fails on a stream
    // we decode, it is its memo bug (README).
    let theirs = serde_pickle::value_from_slice(p, DeOptions::new().keep_restore_state());
    match (&generic, &theirs) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Ok(_), Err(e)) => assert!(
            matches!(
                e,
                serde_pickle::Error::Syntax(serde_pickle::ErrorCode::Recursive)
            ),
            "serde-pickle fails otherwise: {e:?}"
        ),
        (Err((_, problem)), Ok(_)) => assert!(
            matches!(
                problem,
                PickleProblem::SharedMutation
                    | PickleProblem::TooLarge { .. }
                    | PickleProblem::UnresolvedGlobal
            ),
            "we reject what serde-pickle reads: {problem:?}"
        ),
        (Err(_), Err(_)) => {}
    }
    generic
}

// ---------------------------------------------------------------------------------------------
// Golden and fixture pickles

fn pickles_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            pickles_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "pickle") {
            out.push(path);
        }
    }
}

#[test]
fn every_reader_agrees_on_every_golden_and_fixture_pickle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    pickles_under(&root.join("../../shared/golden"), &mut files);
    let golden = files.len();
    pickles_under(&root.join("../apparate/tests/fixtures"), &mut files);
    assert!(golden >= 50, "golden pickles not found ({golden})");
    assert!(files.len() > golden, "fixture pickles not found");
    files.sort();
    let (mut decoded, mut light) = (0, 0);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        let result = std::panic::catch_unwind(|| all_readers(&bytes))
            .unwrap_or_else(|_| panic!("{name}: the readers disagree"));
        decoded += usize::from(result.is_ok());
        light += usize::from(
            lite::decode(&bytes, KEYS, false).is_some()
                || lite::decode(&bytes, KEYS, true).is_some(),
        );
    }
    // Most files decode, and the light decoder takes most of those (the bad_* fixtures and
    // the sample pickles with numpy arrays are the exceptions).
    assert!(
        decoded * 2 > files.len(),
        "{decoded} of {} decode",
        files.len()
    );
    assert!(light > 0, "the light decoder accepts no file");
}

// ---------------------------------------------------------------------------------------------
// Writer round trips

/// Gives every `Shared` object an id: equal values share one (the writer then writes the value
/// once and fetches it from the memo after), children first.
fn number_shared(v: &mut PyValue, table: &mut Vec<PyValue>) {
    match v {
        PyValue::List(items) | PyValue::Tuple(items) => {
            items.iter_mut().for_each(|i| number_shared(i, table))
        }
        PyValue::Dict(items) => items.iter_mut().for_each(|(k, v)| {
            number_shared(k, table);
            number_shared(v, table);
        }),
        PyValue::Object { state, .. } => number_shared(state, table),
        PyValue::Shared { id, value } => {
            number_shared(value, table);
            let at = match table.iter().position(|t| t == &**value) {
                Some(at) => at,
                None => {
                    table.push((**value).clone());
                    table.len() - 1
                }
            };
            *id = u32::try_from(at).unwrap();
        }
        _ => {}
    }
}

/// The object Python would load: dicts keep the last value of a key, objects are their state,
/// shared objects their value. Numpy scalars are checked separately (`matches`).
fn matches(py: &PyValue, v: &Value) -> bool {
    match (py, v) {
        (PyValue::None, Value::None) => true,
        (PyValue::Bool(a), Value::Bool(b)) => a == b,
        (PyValue::Int(a), Value::I64(b)) => a == b,
        (PyValue::Float(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
        (PyValue::Str(a), Value::String(b)) => a == b,
        (PyValue::Bytes(a), Value::Bytes(b)) => a == b,
        (PyValue::List(a), Value::List(b)) | (PyValue::Tuple(a), Value::Tuple(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| matches(a, b))
        }
        (PyValue::Dict(items), Value::Dict(map)) => {
            let mut last: BTreeMap<HashableValue, &PyValue> = BTreeMap::new();
            for (k, v) in items {
                let Some(key) = hashable(k) else {
                    return false;
                };
                last.insert(key, v);
            }
            last.len() == map.len()
                && last
                    .iter()
                    .all(|(k, py)| map.get(k).is_some_and(|v| matches(py, v)))
        }
        (PyValue::Object { state, .. }, v) => matches(state, v),
        (PyValue::Shared { value, .. }, v) => matches(value, v),
        (PyValue::NumpyFloat64(x), v) => {
            matches!(v, Value::Tuple(_)) && float_of(v).is_some_and(|y| y.to_bits() == x.to_bits())
        }
        _ => false,
    }
}

/// A dict key as the decoder holds it.
fn hashable(k: &PyValue) -> Option<HashableValue> {
    Some(match k {
        PyValue::None => HashableValue::None,
        PyValue::Bool(b) => HashableValue::Bool(*b),
        PyValue::Int(i) => HashableValue::I64(*i),
        PyValue::Str(s) => HashableValue::String(s.clone()),
        PyValue::Bytes(b) => HashableValue::Bytes(b.clone()),
        PyValue::Tuple(items) => {
            HashableValue::Tuple(items.iter().map(hashable).collect::<Option<Vec<_>>>()?)
        }
        _ => return None,
    })
}

fn any_str() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("name".to_owned()),
        "[a-z\u{e9}\u{1f600}]{0,5}",
        // Long enough for BINUNICODE (4-byte length).
        "[x]{250,300}",
    ]
}

fn any_key() -> impl Strategy<Value = PyValue> {
    prop_oneof![
        4 => any_str().prop_map(PyValue::Str),
        1 => any::<i64>().prop_map(PyValue::Int),
        1 => prop::collection::vec(any::<u8>(), 0..4).prop_map(PyValue::Bytes),
        1 => (any_str(), any::<i8>()).prop_map(|(s, i)| PyValue::Tuple(vec![PyValue::Str(s), PyValue::Int(i.into())])),
    ]
}

fn any_scalar() -> impl Strategy<Value = PyValue> {
    prop_oneof![
        Just(PyValue::None),
        any::<bool>().prop_map(PyValue::Bool),
        any::<i64>().prop_map(PyValue::Int),
        (0i64..70_000).prop_map(PyValue::Int),
        any::<f64>().prop_map(PyValue::Float),
        any_str().prop_map(PyValue::Str),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(PyValue::Bytes),
        any::<f64>().prop_map(PyValue::NumpyFloat64),
    ]
}

fn any_value() -> impl Strategy<Value = PyValue> {
    any_scalar().prop_recursive(5, 200, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(PyValue::List),
            // Long enough for several APPENDS batches.
            prop::collection::vec(any::<bool>(), 990..1010)
                .prop_map(|b| PyValue::List(b.into_iter().map(PyValue::Bool).collect())),
            prop::collection::vec(inner.clone(), 0..6).prop_map(PyValue::Tuple),
            prop::collection::vec((any_key(), inner.clone()), 0..6).prop_map(PyValue::Dict),
            prop::collection::vec((any_str(), inner.clone()), 0..4).prop_map(|items| {
                PyValue::Object {
                    module: "profiler".into(),
                    class: "Profile".into(),
                    state: Box::new(PyValue::Dict(
                        items
                            .into_iter()
                            .map(|(k, v)| (PyValue::Str(k), v))
                            .collect(),
                    )),
                }
            }),
            // The same list or dict twice: written once, then fetched from the memo.
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                let shared = PyValue::Shared {
                    id: 0,
                    value: Box::new(PyValue::List(items)),
                };
                PyValue::List(vec![shared.clone(), PyValue::None, shared])
            }),
            prop::collection::vec((any_str(), inner), 0..4).prop_map(|items| {
                let shared = PyValue::Shared {
                    id: 0,
                    value: Box::new(PyValue::Dict(
                        items
                            .into_iter()
                            .map(|(k, v)| (PyValue::Str(k), v))
                            .collect(),
                    )),
                };
                PyValue::Tuple(vec![shared.clone(), shared])
            }),
        ]
    })
}

/// Whether every dict key in `v` is a `str` (the light decoder refuses other keys).
fn str_keys_only(v: &PyValue) -> bool {
    match v {
        PyValue::List(items) | PyValue::Tuple(items) => items.iter().all(str_keys_only),
        PyValue::Dict(items) => items
            .iter()
            .all(|(k, v)| matches!(k, PyValue::Str(_)) && str_keys_only(v)),
        PyValue::Object { state, .. } => str_keys_only(state),
        PyValue::Shared { value, .. } => str_keys_only(value),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Anything the writer writes, every reader reads back as written.
    #[test]
    fn every_reader_reads_back_what_the_writer_writes(mut py in any_value()) {
        number_shared(&mut py, &mut Vec::new());
        let bytes = py.dump();
        let value = all_readers(&bytes);
        prop_assert!(value.is_ok(), "{py:?}: {value:?}");
        let value = value.unwrap_or(Value::None);
        prop_assert!(matches(&py, &value), "{py:?}\nread back as {value:?}");
        if str_keys_only(&py) {
            // What CPython writes for plain objects, the light decoder takes.
            prop_assert!(lite::decode(&bytes, KEYS, false).is_some(), "lite declines {py:?}");
        }
    }
}
