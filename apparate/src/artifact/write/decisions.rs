//! Batch-decision pickles (spec §2.3): the dict `batch_systems.get_batch_decision`'s caller
//! stores, with every key the artifact's files hold, in their order.

use std::io::Write;
use std::path::Path;

use super::{write_file, WriteError};
use pickle::write::Pickler;

/// `avg_qps` as the artifact stores it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AvgQps {
    /// A Python `float` (the CV `fixed_30` files).
    Float(f64),
    /// A `numpy.float64` (the NLP `_azure` files, computed with `np.average`).
    NumpyFloat64(f64),
}

/// The content of a batch-decision pickle.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionRecord {
    /// `batching_decision`: batch sizes in serving order.
    pub batching_decision: Vec<usize>,
    /// `per_request_stats`, by request id: `(queueing_ms, vanilla_ms)` or `None` (never served).
    pub per_request_stats: Vec<Option<(f64, f64)>>,
    /// `total_num_requests`.
    pub total_num_requests: usize,
    /// `batching_scheme`, e.g. `clockwork`.
    pub batching_scheme: String,
    /// `arch`.
    pub arch: String,
    /// `slo` (ms).
    pub slo: f64,
    /// `dataset`.
    pub dataset: String,
    /// `avg_qps`.
    pub avg_qps: AvgQps,
    /// `end_time`: the emulated clock (ms) when batching ended.
    pub end_time: f64,
    /// `max_batch_size` (tf_serve parameter, present for every scheme).
    pub max_batch_size: usize,
    /// `batch_timeout_ms`; written as a Python int when it is a whole number (the artifact's
    /// default is the int `60`), else as a float.
    pub batch_timeout_ms: f64,
    /// `max_enqueued_batches`.
    pub max_enqueued_batches: usize,
}

/// Writes `record` to the pickle file `path` (atomically).
pub fn write_batch_decisions(path: &Path, record: &DecisionRecord) -> Result<(), WriteError> {
    write_file(path, |w| write_record(w, record).map(drop))
}

/// Writes `record` as a pickle to `out` and returns it (not flushed).
pub fn write_batch_decisions_to<W: Write>(
    out: W,
    record: &DecisionRecord,
) -> Result<W, WriteError> {
    write_record(out, record).map_err(|cause| WriteError::Stream { cause })
}

/// The pickle of `record` in memory.
pub fn batch_decisions_bytes(record: &DecisionRecord) -> Vec<u8> {
    // Writing to a Vec cannot fail.
    write_record(Vec::new(), record).unwrap_or_default()
}

fn save_count<W: Write>(p: &mut Pickler<W>, n: usize) -> std::io::Result<()> {
    p.save_int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn write_record<W: Write>(out: W, d: &DecisionRecord) -> std::io::Result<W> {
    let mut p = Pickler::start(out)?;
    p.save_dict_with(12, |p, k| match k {
        0 => {
            p.save_str("batching_decision")?;
            p.save_list_with(d.batching_decision.len(), |p, i| {
                save_count(p, d.batching_decision[i])
            })
        }
        1 => {
            p.save_str("per_request_stats")?;
            p.save_list_with(d.per_request_stats.len(), |p, i| {
                match d.per_request_stats[i] {
                    None => p.save_none(),
                    Some((q, m)) => {
                        p.save_tuple_with(2, |p, j| p.save_float(if j == 0 { q } else { m }))
                    }
                }
            })
        }
        2 => {
            p.save_str("total_num_requests")?;
            save_count(p, d.total_num_requests)
        }
        3 => {
            p.save_str("batching_scheme")?;
            p.save_str(&d.batching_scheme)
        }
        4 => {
            p.save_str("arch")?;
            p.save_str(&d.arch)
        }
        5 => {
            p.save_str("slo")?;
            p.save_float(d.slo)
        }
        6 => {
            p.save_str("dataset")?;
            p.save_str(&d.dataset)
        }
        7 => {
            p.save_str("avg_qps")?;
            match d.avg_qps {
                AvgQps::Float(x) => p.save_float(x),
                AvgQps::NumpyFloat64(x) => p.save_numpy_f64(x),
            }
        }
        8 => {
            p.save_str("end_time")?;
            p.save_float(d.end_time)
        }
        9 => {
            p.save_str("max_batch_size")?;
            save_count(p, d.max_batch_size)
        }
        10 => {
            p.save_str("batch_timeout_ms")?;
            let t = d.batch_timeout_ms;
            if t.fract() == 0.0 && t.abs() < 9.0e15 {
                p.save_int(t as i64)
            } else {
                p.save_float(t)
            }
        }
        _ => {
            p.save_str("max_enqueued_batches")?;
            save_count(p, d.max_enqueued_batches)
        }
    })?;
    p.finish()
}
