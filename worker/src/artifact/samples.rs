//! Bootstrap and simulation pickles (spec §2.1) → [`RampData`].
//!
//! The file holds `{"conf": [...], "acc": [...]}`, each a list of `R + 1` per-ramp lists
//! (ramp first, sample second). Ramps `0 .. R-1` are kept; entry `R`, the final exit, is never
//! read by the simulator and is skipped without being checked (it may hold `None`, `True`, a
//! list of `None`s or the raw logits).

use std::path::Path;

use serde_pickle::Value;

use super::error::ArtifactError;
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
