//! Bootstrap and simulation pickles (spec §2.1) → [`RampData`].
//!
//! The file holds `{"conf": [...], "acc": [...]}`, each a list of `R + 1` per-ramp lists
//! (ramp first, sample second). Ramps `0 .. R-1` are kept; entry `R`, the final exit, is never
//! read by the simulator and is skipped without being checked (it may hold `None`, `True`, a
//! list of `None`s or the raw logits).
//!
//! Two decoders produce the same result: a streaming decoder for the shape Python writes
//! ([`super::ramp_stream`], fast, no value tree), and the generic path (the full
//! [`Value`] tree from [`pickle::decoder`]), which handles anything else and words every
//! error.

use std::path::Path;

use serde_pickle::Value;

use super::error::ArtifactError;
use super::ramp_stream;
use super::value::{bool_of, decode_pickle, describe, dict_get, float_of, read_file};
use crate::sim::RampData;

/// Reads a bootstrap or simulation pickle.
///
/// Errors name the file and the place: a missing `conf` / `acc` key, something other than a
/// list, `conf` and `acc` of different outer lengths, `R < 1`, ramps of unequal length, a
/// confidence that is not a finite number (`conf[r][i]`), a correctness flag that is not a
/// bool, `numpy.bool_` or 0/1 (`acc[r][i]`).
pub fn read_ramp_data(path: &Path) -> Result<RampData, ArtifactError> {
    let bytes = read_file(path)?;
    ramp_data_from_bytes(path, &bytes)
}

/// [`read_ramp_data`] on a pickle held in memory; `name` only names it in errors.
pub fn ramp_data_from_bytes(name: &Path, bytes: &[u8]) -> Result<RampData, ArtifactError> {
    match ramp_stream::decode(bytes) {
        Some(data) => Ok(data),
        None => ramp_data_generic(name, bytes),
    }
}

/// The generic path: decode the whole [`Value`] tree, then check and convert it.
pub(crate) fn ramp_data_generic(name: &Path, bytes: &[u8]) -> Result<RampData, ArtifactError> {
    let value = decode_pickle(name, bytes)?;
    ramp_data_from_value(name, &value)
}

/// Checks and converts a decoded `{"conf": ..., "acc": ...}` dict.
pub(crate) fn ramp_data_from_value(path: &Path, value: &Value) -> Result<RampData, ArtifactError> {
    let field = |at: String, expected: String, found: String| ArtifactError::Field {
        path: path.to_path_buf(),
        at,
        expected,
        found,
    };
    let Value::Dict(dict) = value else {
        return Err(field(
            "top level".into(),
            "a dict with keys \"conf\" and \"acc\"".into(),
            describe(value),
        ));
    };
    let outer = |key: &str| -> Result<&[Value], ArtifactError> {
        let v = dict_get(dict, key).ok_or_else(|| {
            field(
                key.into(),
                "a list of per-ramp lists".into(),
                "no such key".into(),
            )
        })?;
        sequence(v).ok_or_else(|| field(key.into(), "a list of per-ramp lists".into(), describe(v)))
    };
    let conf = outer("conf")?;
    let acc = outer("acc")?;
    if conf.len() < 2 {
        return Err(field(
            "conf".into(),
            "R + 1 per-ramp lists with R >= 1 (the last one is the final exit)".into(),
            format!("{} lists", conf.len()),
        ));
    }
    if acc.len() != conf.len() {
        return Err(field(
            "acc".into(),
            format!("{} per-ramp lists, as many as conf", conf.len()),
            format!("{} lists", acc.len()),
        ));
    }
    let num_ramps = conf.len() - 1;

    let ramp_list =
        |key: &str, r: usize, items: &[Value], what: &str| -> Result<usize, ArtifactError> {
            let v = &items[r];
            sequence(v).map(<[Value]>::len).ok_or_else(|| {
                field(
                    format!("{key}[{r}]"),
                    format!("a list of {what}"),
                    describe(v),
                )
            })
        };
    let n = ramp_list("conf", 0, conf, "per-sample confidences")?;
    let check_len = |key: &str, r: usize, len: usize| -> Result<(), ArtifactError> {
        if len == n {
            Ok(())
        } else {
            Err(ArtifactError::RampLength {
                path: path.to_path_buf(),
                at: format!("{key}[{r}]"),
                len,
                reference_at: "conf[0]".into(),
                reference_len: n,
            })
        }
    };

    let mut data = RampData {
        conf: Vec::with_capacity(num_ramps),
        acc: Vec::with_capacity(num_ramps),
    };
    for r in 0..num_ramps {
        check_len(
            "conf",
            r,
            ramp_list("conf", r, conf, "per-sample confidences")?,
        )?;
        let items = sequence(&conf[r]).unwrap_or(&[]);
        let mut column = Vec::with_capacity(n);
        for (i, v) in items.iter().enumerate() {
            match float_of(v) {
                Some(x) if x.is_finite() => column.push(x),
                _ => {
                    return Err(field(
                        format!("conf[{r}][{i}]"),
                        "a finite float confidence".into(),
                        describe(v),
                    ))
                }
            }
        }
        data.conf.push(column);
    }
    for r in 0..num_ramps {
        check_len(
            "acc",
            r,
            ramp_list("acc", r, acc, "per-sample correctness flags")?,
        )?;
        let items = sequence(&acc[r]).unwrap_or(&[]);
        let mut column = Vec::with_capacity(n);
        for (i, v) in items.iter().enumerate() {
            match bool_of(v) {
                Some(b) => column.push(b),
                None => {
                    return Err(field(
                        format!("acc[{r}][{i}]"),
                        "a correctness flag (bool, numpy.bool_ or 0/1)".into(),
                        describe(v),
                    ))
                }
            }
        }
        data.acc.push(column);
    }
    Ok(data)
}

/// The items of a Python list (the artifact's writers only produce lists, spec §2.1).
fn sequence(v: &Value) -> Option<&[Value]> {
    match v {
        Value::List(items) => Some(items),
        _ => None,
    }
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

    /// Every fixture pickle and every golden sample pickle.
    fn sample_files() -> Vec<PathBuf> {
        let mut files = Vec::new();
        let fixtures = manifest_dir().join("tests/fixtures/pickles");
        for entry in std::fs::read_dir(&fixtures).expect("fixtures dir") {
            let path = entry.expect("fixture entry").path();
            if path.extension().is_some_and(|e| e == "pickle") {
                files.push(path);
            }
        }
        let golden = manifest_dir().join("../../shared/golden");
        assert!(golden.is_dir(), "golden data missing: {}", golden.display());
        for scenario in std::fs::read_dir(&golden).expect("golden dir") {
            let data = scenario.expect("golden entry").path().join("data");
            for sub in ["bootstrap_pickles", "simulation_pickles"] {
                let Ok(dir) = std::fs::read_dir(data.join(sub)) else {
                    continue;
                };
                files.extend(dir.map(|e| e.expect("golden file").path()));
            }
        }
        files.sort();
        files
    }

    /// The fast decoder returns exactly what the generic path returns, and declines (rather
    /// than disagrees) on everything it does not handle.
    #[test]
    fn fast_decoder_agrees_with_the_generic_path_on_every_file() {
        let mut fast_count = 0;
        for path in sample_files() {
            let bytes = std::fs::read(&path).expect("readable");
            let generic = ramp_data_generic(&path, &bytes);
            match ramp_stream::decode(&bytes) {
                Some(fast) => {
                    fast_count += 1;
                    assert_eq!(Some(&fast), generic.as_ref().ok(), "{}", path.display());
                }
                None => {
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    assert!(
                        generic.is_err() || name.ends_with("_p0.pickle") || name.contains("_p2"),
                        "fast path declined a valid modern pickle: {}",
                        path.display()
                    );
                }
            }
        }
        assert!(
            fast_count >= 16,
            "the fast path handled only {fast_count} files"
        );
    }

    #[test]
    fn fast_decoder_refuses_memo_ids_beyond_the_input_without_allocating() {
        // {} then LONG_BINPUT with ids 2^16, 2^17, ...: each would grow the memo table.
        let mut p = b"\x80\x04}".to_vec();
        for k in 0..4000u32 {
            p.push(b'r');
            p.extend_from_slice(&((k + 1) << 16).to_le_bytes());
        }
        p.push(b'.');
        assert!(ramp_stream::decode(&p).is_none());
    }

    fn ramp_value(conf: &[Vec<Value>], acc: &[Vec<Value>], last: (Value, Value)) -> Value {
        let outer = |rows: &[Vec<Value>], last: Value| {
            let mut v: Vec<Value> = rows.iter().cloned().map(Value::List).collect();
            v.push(last);
            Value::List(v)
        };
        Value::Dict(
            [
                (HashableValue::String("conf".into()), outer(conf, last.0)),
                (HashableValue::String("acc".into()), outer(acc, last.1)),
            ]
            .into_iter()
            .collect(),
        )
    }

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            8 => any::<f64>().prop_map(Value::F64),
            4 => any::<bool>().prop_map(Value::Bool),
            2 => (-2i64..3).prop_map(Value::I64),
            1 => Just(Value::None),
            1 => "[a-z]{0,3}".prop_map(Value::String),
        ]
    }

    proptest! {
        /// Corrupted fixture bytes: the fast path either declines or agrees with the generic
        /// path (it never accepts a stream the generic decoder rejects).
        #[test]
        fn fast_decoder_never_accepts_what_the_generic_path_rejects(
            file in 0usize..4,
            flips in prop::collection::vec((0usize..1000, any::<u8>()), 1..4),
        ) {
            let name = ["ramp_python_p4.pickle", "ramp_numpy_p4.pickle", "ramp_logits_p4.pickle", "ramp_int_acc_p3.pickle"][file];
            let path = manifest_dir().join("tests/fixtures/pickles").join(name);
            let mut bytes = std::fs::read(&path).expect("fixture");
            for (at, b) in flips {
                let len = bytes.len();
                bytes[at % len] = b;
            }
            if let Some(fast) = ramp_stream::decode(&bytes) {
                prop_assert_eq!(Some(fast), ramp_data_generic(&path, &bytes).ok());
            }
        }

        /// Arbitrary (mostly invalid) sample dicts: the fast path either declines or agrees.
        #[test]
        fn fast_decoder_never_disagrees(
            r in 1usize..4,
            n in 0usize..6,
            cells in prop::collection::vec(arb_scalar(), 48),
            short in prop::option::of(0usize..8),
        ) {
            let mut it = cells.into_iter().cycle();
            let mut conf: Vec<Vec<Value>> = (0..r).map(|_| (0..n).map(|_| it.next().unwrap_or(Value::None)).collect()).collect();
            let acc: Vec<Vec<Value>> = (0..r).map(|_| (0..n).map(|_| it.next().unwrap_or(Value::None)).collect()).collect();
            if let Some(k) = short {
                if let Some(row) = conf.get_mut(k % r) { row.pop(); }
            }
            let v = ramp_value(&conf, &acc, (Value::None, Value::Bool(true)));
            let bytes = serde_pickle::value_to_vec(&v, SerOptions::new()).expect("serialize");
            let name = Path::new("prop.pickle");
            if let Some(fast) = ramp_stream::decode(&bytes) {
                prop_assert_eq!(Some(fast), ramp_data_generic(name, &bytes).ok());
            }
        }
    }
}
