//! Decoding `requests.parquet` into a polars `DataFrame`.
//!
//! The files are written by the `parquet` crate (arrow-rs) in the worker, and polars 0.46's own
//! Parquet reader rejects their footer ("Invalid thrift: bad data": it predates fields the
//! newer writer emits). Newer polars releases read it but pull an HTTP/TLS stack into the
//! build. So the columns the report needs are decoded here with the same `parquet` crate that
//! wrote them (typed column readers, no row objects), and everything after that runs through
//! polars' lazy API.

use parquet::column::reader::ColumnReader;
use parquet::file::reader::{FileReader, SerializedFileReader};
use polars::prelude::*;
use std::path::Path;

/// The columns read, with their physical types.
const COLUMNS: [(&str, Kind); 8] = [
    ("exit_point", Kind::I32),
    ("correct", Kind::Bool),
    ("inference_ms", Kind::F64),
    ("vanilla_ms", Kind::F64),
    ("queueing_ms", Kind::F64),
    ("optimal_ms", Kind::F64),
    ("static_ms", Kind::F64),
    ("static_correct", Kind::Bool),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    I32,
    F64,
    Bool,
}

fn e2s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Values and (for optional columns) definition levels of one column chunk.
fn read_chunk<T: Default + Clone>(
    n: usize,
    optional: bool,
    mut read: impl FnMut(
        usize,
        Option<&mut Vec<i16>>,
        &mut Vec<T>,
    ) -> parquet::errors::Result<(usize, usize, usize)>,
) -> Result<Vec<Option<T>>, String> {
    let mut values = Vec::with_capacity(n);
    let mut defs = Vec::with_capacity(if optional { n } else { 0 });
    let mut records = 0;
    while records < n {
        let (r, _, _) = read(
            n - records,
            if optional { Some(&mut defs) } else { None },
            &mut values,
        )
        .map_err(e2s)?;
        if r == 0 {
            return Err(format!("column ends after {records} of {n} rows"));
        }
        records += r;
    }
    if !optional {
        return Ok(values.into_iter().map(Some).collect());
    }
    let mut it = values.into_iter();
    defs.iter()
        .map(|&d| {
            if d > 0 {
                it.next()
                    .map(Some)
                    .ok_or_else(|| "fewer values than definition levels".to_string())
            } else {
                Ok(None)
            }
        })
        .collect()
}

/// Reads the report's columns of a `requests.parquet` into a `DataFrame`. The error is a
/// message about the file (the caller names it).
pub fn read_frame(path: &Path) -> Result<DataFrame, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let reader =
        SerializedFileReader::new(file).map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let mut index = Vec::new();
    for (name, kind) in COLUMNS {
        let i = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == name)
            .ok_or_else(|| format!("missing column {name}"))?;
        index.push((name, kind, i, schema.column(i).max_def_level() > 0));
    }
    let mut i32s: Vec<Vec<Option<i32>>> = vec![Vec::new(); COLUMNS.len()];
    let mut f64s: Vec<Vec<Option<f64>>> = vec![Vec::new(); COLUMNS.len()];
    let mut bools: Vec<Vec<Option<bool>>> = vec![Vec::new(); COLUMNS.len()];
    for g in 0..reader.num_row_groups() {
        let rg = reader.get_row_group(g).map_err(e2s)?;
        let n = usize::try_from(rg.metadata().num_rows()).map_err(e2s)?;
        for (c, &(name, kind, i, optional)) in index.iter().enumerate() {
            let col = rg.get_column_reader(i).map_err(e2s)?;
            let wrong = || format!("column {name}: unexpected physical type");
            match (kind, col) {
                (Kind::I32, ColumnReader::Int32ColumnReader(mut r)) => i32s[c].extend(
                    read_chunk(n, optional, |m, d, v| r.read_records(m, d, None, v))
                        .map_err(|e| format!("column {name}: {e}"))?,
                ),
                (Kind::F64, ColumnReader::DoubleColumnReader(mut r)) => f64s[c].extend(
                    read_chunk(n, optional, |m, d, v| r.read_records(m, d, None, v))
                        .map_err(|e| format!("column {name}: {e}"))?,
                ),
                (Kind::Bool, ColumnReader::BoolColumnReader(mut r)) => bools[c].extend(
                    read_chunk(n, optional, |m, d, v| r.read_records(m, d, None, v))
                        .map_err(|e| format!("column {name}: {e}"))?,
                ),
                _ => return Err(wrong()),
            }
        }
    }
    let columns: Vec<Column> = COLUMNS
        .iter()
        .enumerate()
        .map(|(c, (name, kind))| {
            let name = PlSmallStr::from_str(name);
            match kind {
                Kind::I32 => Column::new(name, std::mem::take(&mut i32s[c])),
                Kind::F64 => Column::new(name, std::mem::take(&mut f64s[c])),
                Kind::Bool => Column::new(name, std::mem::take(&mut bools[c])),
            }
        })
        .collect();
    DataFrame::new(columns).map_err(e2s)
}
