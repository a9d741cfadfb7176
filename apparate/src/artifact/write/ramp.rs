//! Bootstrap and simulation pickles (spec §2.1) from [`RampData`].
//!
//! `{"conf": [...], "acc": [...]}`, each a list of `R + 1` Python lists (ramp first, sample
//! second) of Python floats / bools. Index `R`, the final exit, which the simulator never
//! reads, holds `N` times `None` in `conf` and `N` times `True` in `acc`, as in the golden
//! inputs (the artifact's NLP converter writes `None` / `True` for the final exit).
//!
//! Written as a stream (a 250,000-sample, 25-ramp file is over 100 MB), byte for byte what
//! CPython's `pickle.dump(d, f, protocol=4)` writes for the same dict.

use std::io::Write;
use std::path::Path;

use super::{write_file, WriteError};
use crate::sim::RampData;
use pickle::write::Pickler;

/// Writes `data` to the pickle file `path` (atomically).
///
/// Errors: no ramps, `acc` not shaped like `conf`, ramps of unequal lengths, a confidence that
/// is not finite (the readers reject all of these), or an I/O error.
pub fn write_ramp_data(path: &Path, data: &RampData) -> Result<(), WriteError> {
    check(data)?;
    write_file(path, |w| write_unchecked(w, data).map(drop))
}

/// Writes `data` as a pickle to `out` and returns it (not flushed).
pub fn write_ramp_data_to<W: Write>(out: W, data: &RampData) -> Result<W, WriteError> {
    check(data)?;
    write_unchecked(out, data).map_err(|cause| WriteError::Stream { cause })
}

/// The pickle of `data` in memory.
pub fn ramp_data_bytes(data: &RampData) -> Result<Vec<u8>, WriteError> {
    write_ramp_data_to(Vec::new(), data)
}

fn check(data: &RampData) -> Result<(), WriteError> {
    let r = data.conf.len();
    if r == 0 {
        return Err(WriteError::NoRamps {
            what: "ramp data".into(),
        });
    }
    if data.acc.len() != r {
        return Err(WriteError::RampShape {
            field: "acc".into(),
            len: data.acc.len(),
            expected: r,
        });
    }
    let n = data.conf[0].len();
    for (key, lens) in [
        ("conf", data.conf.iter().map(Vec::len).collect::<Vec<_>>()),
        ("acc", data.acc.iter().map(Vec::len).collect()),
    ] {
        if let Some((k, &len)) = lens.iter().enumerate().find(|&(_, &len)| len != n) {
            return Err(WriteError::RampShape {
                field: format!("{key}[{k}]"),
                len,
                expected: n,
            });
        }
    }
    for (k, ramp) in data.conf.iter().enumerate() {
        if let Some(i) = ramp.iter().position(|x| !x.is_finite()) {
            return Err(WriteError::NonFinite {
                what: "ramp data".into(),
                field: format!("conf[{k}][{i}]"),
            });
        }
    }
    Ok(())
}

fn write_unchecked<W: Write>(out: W, data: &RampData) -> std::io::Result<W> {
    let r = data.num_ramps();
    let n = data.num_samples();
    let mut p = Pickler::start(out)?;
    p.save_dict_with(2, |p, key| {
        if key == 0 {
            p.save_str("conf")?;
            p.save_list_with(r + 1, |p, k| match data.conf.get(k) {
                Some(ramp) => p.save_list_with(n, |p, i| p.save_float(ramp[i])),
                None => p.save_list_with(n, |p, _| p.save_none()),
            })
        } else {
            p.save_str("acc")?;
            p.save_list_with(r + 1, |p, k| match data.acc.get(k) {
                Some(ramp) => p.save_list_with(n, |p, i| p.save_bool(ramp[i])),
                None => p.save_list_with(n, |p, _| p.save_bool(true)),
            })
        }
    })?;
    p.finish()
}
