//! `requests.parquet`: one row per served request (DESIGN "Per-request rows").

use crate::sim::record::Requests;
use parquet::basic::Compression;
use parquet::column::writer::ColumnWriter;
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;
use std::path::Path;
use std::sync::Arc;

/// Per-request columns that come from outside the simulator core.
#[derive(Clone, Debug, Default)]
pub struct ExtraColumns {
    /// Queueing delay (ms) of each served request, `None` where unknown.
    pub queueing_ms: Option<Vec<Option<f64>>>,
    /// Oracle inference latency (ms) of each served request, `None` where not computed.
    pub optimal_ms: Option<Vec<f64>>,
    /// Static early-exit baseline's inference latency (ms) of each served request.
    pub static_ms: Option<Vec<f64>>,
    /// Whether the static baseline's answer agrees with the original model.
    pub static_correct: Option<Vec<bool>>,
}

/// The schema. Column order is part of the contract.
const SCHEMA: &str = "message request {
  required int64 request;
  required int32 batch;
  required int32 batch_size;
  required int32 exit_point;
  required boolean correct;
  required double inference_ms;
  required double vanilla_ms;
  optional double queueing_ms;
  optional double optimal_ms;
  optional double static_ms;
  optional boolean static_correct;
}";

/// One row of `requests.parquet`.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRow {
    /// Served order, from 0.
    pub request: i64,
    /// Batch number, from 1.
    pub batch: i32,
    /// Rounded batch size.
    pub batch_size: i32,
    /// Ramp id, or R for the final exit.
    pub exit_point: i32,
    /// Agrees with the original model.
    pub correct: bool,
    /// Inference latency (ms), no queueing.
    pub inference_ms: f64,
    /// Vanilla latency (ms) at the batch's size.
    pub vanilla_ms: f64,
    /// Queueing delay (ms), if known.
    pub queueing_ms: Option<f64>,
    /// Oracle inference latency (ms), if computed.
    pub optimal_ms: Option<f64>,
    /// Static early-exit baseline's inference latency (ms), if computed.
    pub static_ms: Option<f64>,
    /// Static baseline's correctness, if computed.
    pub static_correct: Option<bool>,
}

fn optional(values: Option<Vec<Option<f64>>>, n: usize) -> (Vec<f64>, Vec<i16>) {
    let values = values.unwrap_or_else(|| vec![None; n]);
    let def: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
    (values.into_iter().flatten().collect(), def)
}

/// Writes the rows (snappy-compressed, one row group) to `path`, through a temporary file in
/// the same folder renamed into place (a link at `path` is replaced, never followed).
pub fn write_requests_parquet(path: &Path, r: &Requests, extra: &ExtraColumns) -> Result<()> {
    crate::safe_write::write_atomic_file(path, crate::safe_write::Durability::Flush, |file| {
        write_requests_to(file, r, extra).map_err(std::io::Error::other)
    })
    .map_err(|e| match e.downcast::<ParquetError>() {
        Ok(pe) => pe,
        Err(e) => ParquetError::External(Box::new(e)),
    })
}

fn write_requests_to(file: std::fs::File, r: &Requests, extra: &ExtraColumns) -> Result<()> {
    let n = r.len();
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("apparate-worker {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let mut writer = SerializedFileWriter::new(std::io::BufWriter::new(file), schema, props)?;
    let mut rg = writer.next_row_group()?;
    let request: Vec<i64> = (0..n as i64).collect();
    let ints = |v: &[u32]| v.iter().map(|&x| x as i32).collect::<Vec<i32>>();
    let exit: Vec<i32> = r.exit_point.iter().map(|&x| x as i32).collect();
    let (queueing, queueing_def) = optional(extra.queueing_ms.clone(), n);
    let (optimal, optimal_def) = optional(
        extra
            .optimal_ms
            .as_ref()
            .map(|o| o.iter().map(|&x| Some(x)).collect()),
        n,
    );
    let (fixed, fixed_def) = optional(
        extra
            .static_ms
            .as_ref()
            .map(|o| o.iter().map(|&x| Some(x)).collect()),
        n,
    );
    let fixed_correct: Vec<bool> = extra.static_correct.clone().unwrap_or_default();
    let fixed_correct_def: Vec<i16> = vec![i16::from(extra.static_correct.is_some()); n];
    let mut col = 0;
    while let Some(mut cw) = rg.next_column()? {
        match (col, cw.untyped()) {
            (0, ColumnWriter::Int64ColumnWriter(w)) => {
                w.write_batch(&request, None, None)?;
            }
            (1, ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(&ints(&r.batch), None, None)?;
            }
            (2, ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(&ints(&r.batch_size), None, None)?;
            }
            (3, ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(&exit, None, None)?;
            }
            (4, ColumnWriter::BoolColumnWriter(w)) => {
                w.write_batch(&r.correct, None, None)?;
            }
            (5, ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(&r.inference_ms, None, None)?;
            }
            (6, ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(&r.vanilla_ms, None, None)?;
            }
            (7, ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(&queueing, Some(&queueing_def), None)?;
            }
            (8, ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(&optimal, Some(&optimal_def), None)?;
            }
            (9, ColumnWriter::DoubleColumnWriter(w)) => {
                w.write_batch(&fixed, Some(&fixed_def), None)?;
            }
            (10, ColumnWriter::BoolColumnWriter(w)) => {
                w.write_batch(&fixed_correct, Some(&fixed_correct_def), None)?;
            }
            _ => {
                return Err(ParquetError::General(format!(
                    "unexpected column {col} in schema"
                )))
            }
        }
        cw.close()?;
        col += 1;
    }
    rg.close()?;
    writer.close()?;
    Ok(())
}

/// Reads a `requests.parquet` back into rows.
pub fn read_requests_parquet(path: &Path) -> Result<Vec<RequestRow>> {
    let file = std::fs::File::open(path).map_err(|e| ParquetError::External(Box::new(e)))?;
    let reader = SerializedFileReader::new(file)?;
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let mut out = RequestRow {
            request: 0,
            batch: 0,
            batch_size: 0,
            exit_point: 0,
            correct: false,
            inference_ms: 0.0,
            vanilla_ms: 0.0,
            queueing_ms: None,
            optimal_ms: None,
            static_ms: None,
            static_correct: None,
        };
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("request", Field::Long(v)) => out.request = *v,
                ("batch", Field::Int(v)) => out.batch = *v,
                ("batch_size", Field::Int(v)) => out.batch_size = *v,
                ("exit_point", Field::Int(v)) => out.exit_point = *v,
                ("correct", Field::Bool(v)) => out.correct = *v,
                ("inference_ms", Field::Double(v)) => out.inference_ms = *v,
                ("vanilla_ms", Field::Double(v)) => out.vanilla_ms = *v,
                ("queueing_ms", Field::Double(v)) => out.queueing_ms = Some(*v),
                ("optimal_ms", Field::Double(v)) => out.optimal_ms = Some(*v),
                ("static_ms", Field::Double(v)) => out.static_ms = Some(*v),
                ("static_correct", Field::Bool(v)) => out.static_correct = Some(*v),
                (_, Field::Null) => {}
                (name, other) => {
                    return Err(ParquetError::General(format!(
                        "column {name}: unexpected value {other:?}"
                    )));
                }
            }
        }
        rows.push(out);
    }
    Ok(rows)
}
