//! The reader for the Azure Functions 2019 per-minute invocation files
//! (`invocations_per_function_md.anon.dNN.csv`; header
//! `HashOwner,HashApp,HashFunction,Trigger,1,2,...,1440`, one row per function).
//!
//! The artifact loads the file with `pd.read_csv` and picks a row with `df.loc[[7188]]`: pandas'
//! default index counts **data rows from 0**, the header excluded, blank lines skipped — so row
//! 7188 is the 7,189th function, on line 7,190 of a file without blank lines. It then selects the
//! minute columns by name (`"1"` ... `"1440"`) and converts each count with `int(v)`.
//!
//! This reader does the same without pandas: it finds the columns by name (first occurrence),
//! skips blank lines, reads up to the chosen row and parses only that row's counts. Every line it
//! reads must have as many fields as the header. Fields are split at commas; the files have no
//! quoting. Errors name the file, the line and (for counts) the column.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Minutes per file (columns `"1"` ... `"1440"`).
pub const MINUTES_PER_DAY: usize = 1440;

/// The identifying columns, in the files' order.
const ID_COLUMNS: [&str; 4] = ["HashOwner", "HashApp", "HashFunction", "Trigger"];

/// The artifact's row of day 1 (`SELECTED_FUNCTION_ID = 7188`, pandas' 0-based index).
pub const ARTIFACT_ROW: usize = 7188;

/// Which function (row) of the file to use.
///
/// In a TOML sweep spec: `function = { row = 7188 }` or `function = { hash_function = "..." }`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionPick {
    /// The data row with this 0-based index, header excluded and blank lines skipped (pandas'
    /// `df.loc[[row]]` on the default index). The artifact used row 7188 of day 1.
    Row(usize),
    /// The row whose `HashFunction` column equals this string. It must match exactly one row.
    HashFunction(String),
}

impl Default for FunctionPick {
    /// The artifact's `SELECTED_FUNCTION_ID = 7188`.
    fn default() -> Self {
        FunctionPick::Row(ARTIFACT_ROW)
    }
}

/// One function's row: its identifiers and its invocation count in each minute of the day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionCounts {
    /// The 0-based data row (pandas' index label).
    pub row: usize,
    /// The 1-based line of the file it was read from.
    pub line: usize,
    /// `HashOwner`.
    pub hash_owner: String,
    /// `HashApp`.
    pub hash_app: String,
    /// `HashFunction`.
    pub hash_function: String,
    /// `Trigger` (`http`, `timer`, `queue`, ...).
    pub trigger: String,
    /// Invocations in minutes 1 ... 1440 (index 0 is column `"1"`).
    pub per_minute: Vec<u64>,
}

/// A trace file that cannot be used. Every variant names the file; those about the contents name
/// the 1-based line, and those about a field the 1-based column and its header name.
#[derive(Debug, Error)]
pub enum AzureCsvError {
    /// The file cannot be opened or read.
    #[error("{}: cannot read the Azure trace file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not valid UTF-8.
    #[error("{}:{line}: not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
    },
    /// The file has no header line (it is empty or blank).
    #[error("{}: empty file, expected the header HashOwner,HashApp,HashFunction,Trigger,1,...,1440", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The header lacks a required column.
    #[error("{}:{line}: the header has no column \"{column}\" (expected HashOwner,HashApp,HashFunction,Trigger,1,...,1440)", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The header's line.
        line: usize,
        /// The missing column's name.
        column: String,
    },
    /// A data line has more or fewer fields than the header.
    #[error("{}:{line}: {found} fields, but the header has {expected}", path.display())]
    FieldCount {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// Fields in the header.
        expected: usize,
        /// Fields on this line.
        found: usize,
    },
    /// A minute's count is not a non-negative integer.
    #[error("{}:{line}: column {column} (\"{name}\"): expected a non-negative integer count, found \"{value}\"", path.display())]
    NotACount {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// The 1-based column.
        column: usize,
        /// The column's header name (the minute, `"1"` ... `"1440"`).
        name: String,
        /// The field as written.
        value: String,
    },
    /// The requested row is past the end of the file.
    #[error("{}: row {row} requested, but the file has {rows} data rows (rows count from 0, header excluded)", path.display())]
    RowOutOfRange {
        /// The file.
        path: PathBuf,
        /// The requested 0-based row.
        row: usize,
        /// Data rows in the file.
        rows: usize,
    },
    /// No row has the requested `HashFunction`.
    #[error("{}: no row has HashFunction \"{hash_function}\" ({rows} data rows)", path.display())]
    UnknownFunction {
        /// The file.
        path: PathBuf,
        /// The requested hash.
        hash_function: String,
        /// Data rows in the file.
        rows: usize,
    },
    /// More than one row has the requested `HashFunction`.
    #[error("{}: HashFunction \"{hash_function}\" is on line {first_line} and again on line {second_line}; pick the row by index", path.display())]
    AmbiguousFunction {
        /// The file.
        path: PathBuf,
        /// The requested hash.
        hash_function: String,
        /// The first line holding it.
        first_line: usize,
        /// The second line holding it.
        second_line: usize,
    },
}

/// Reads the function `pick` from the CSV file at `path`.
pub fn read_function(path: &Path, pick: &FunctionPick) -> Result<FunctionCounts, AzureCsvError> {
    let (file, len) =
        crate::input_file::open_regular(path).map_err(|source| AzureCsvError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    parse_function(BufReader::new(file.take(len)), path, pick)
}

/// Reads the function `pick` from CSV text in `reader`; `path` only names the source in errors.
pub fn parse_function<R: BufRead>(
    reader: R,
    path: &Path,
    pick: &FunctionPick,
) -> Result<FunctionCounts, AzureCsvError> {
    let mut lines = Lines::new(reader, path);
    let Some((header_line, header)) = lines.next_nonblank()? else {
        return Err(AzureCsvError::Empty {
            path: path.to_path_buf(),
        });
    };
    let columns = Columns::find(&header, header_line, path)?;

    let mut rows = 0;
    let mut found: Option<FunctionCounts> = None;
    while let Some((line, text)) = lines.next_nonblank()? {
        let fields: Vec<&str> = text.split(',').collect();
        if fields.len() != columns.width {
            return Err(AzureCsvError::FieldCount {
                path: path.to_path_buf(),
                line,
                expected: columns.width,
                found: fields.len(),
            });
        }
        let row = rows;
        rows += 1;
        match pick {
            FunctionPick::Row(wanted) if *wanted == row => {
                return columns.parse_row(&fields, row, line, path);
            }
            FunctionPick::Row(_) => {}
            FunctionPick::HashFunction(hash) => {
                if fields[columns.ids[2]].trim() != hash.as_str() {
                    continue;
                }
                if let Some(first) = &found {
                    return Err(AzureCsvError::AmbiguousFunction {
                        path: path.to_path_buf(),
                        hash_function: hash.clone(),
                        first_line: first.line,
                        second_line: line,
                    });
                }
                found = Some(columns.parse_row(&fields, row, line, path)?);
            }
        }
    }
    match pick {
        FunctionPick::Row(row) => Err(AzureCsvError::RowOutOfRange {
            path: path.to_path_buf(),
            row: *row,
            rows,
        }),
        FunctionPick::HashFunction(hash) => found.ok_or_else(|| AzureCsvError::UnknownFunction {
            path: path.to_path_buf(),
            hash_function: hash.clone(),
            rows,
        }),
    }
}

/// Where the needed columns are (0-based field indices).
struct Columns {
    /// Fields per line.
    width: usize,
    /// `HashOwner`, `HashApp`, `HashFunction`, `Trigger`.
    ids: [usize; 4],
    /// Minutes `"1"` ... `"1440"`.
    minutes: Vec<usize>,
}

impl Columns {
    fn find(header: &str, line: usize, path: &Path) -> Result<Columns, AzureCsvError> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let index_of = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| AzureCsvError::MissingColumn {
                    path: path.to_path_buf(),
                    line,
                    column: name.to_owned(),
                })
        };
        let mut ids = [0; 4];
        for (slot, name) in ids.iter_mut().zip(ID_COLUMNS) {
            *slot = index_of(name)?;
        }
        let minutes = (1..=MINUTES_PER_DAY)
            .map(|minute| index_of(&minute.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Columns {
            width: names.len(),
            ids,
            minutes,
        })
    }

    fn parse_row(
        &self,
        fields: &[&str],
        row: usize,
        line: usize,
        path: &Path,
    ) -> Result<FunctionCounts, AzureCsvError> {
        let per_minute = self
            .minutes
            .iter()
            .enumerate()
            .map(|(minute, &index)| {
                let raw = fields[index];
                let value = raw.trim();
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                digits
                    .then(|| value.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| AzureCsvError::NotACount {
                        path: path.to_path_buf(),
                        line,
                        column: index + 1,
                        name: (minute + 1).to_string(),
                        value: raw.to_owned(),
                    })
            })
            .collect::<Result<Vec<u64>, _>>()?;
        let id = |k: usize| fields[self.ids[k]].trim().to_owned();
        Ok(FunctionCounts {
            row,
            line,
            hash_owner: id(0),
            hash_app: id(1),
            hash_function: id(2),
            trigger: id(3),
            per_minute,
        })
    }
}

/// Numbered lines of a reader, without line endings (`\n` or `\r\n`) or a leading UTF-8 BOM.
struct Lines<'p, R> {
    reader: R,
    path: &'p Path,
    line: usize,
    buf: Vec<u8>,
}

impl<'p, R: BufRead> Lines<'p, R> {
    fn new(reader: R, path: &'p Path) -> Self {
        Lines {
            reader,
            path,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next line that is not blank, with its 1-based number; `None` at the end.
    fn next_nonblank(&mut self) -> Result<Option<(usize, String)>, AzureCsvError> {
        loop {
            self.buf.clear();
            let read = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| AzureCsvError::Io {
                    path: self.path.to_path_buf(),
                    source,
                })?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = std::str::from_utf8(&self.buf).map_err(|_| AzureCsvError::NotUtf8 {
                path: self.path.to_path_buf(),
                line: self.line,
            })?;
            let text = text.strip_suffix('\n').unwrap_or(text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            let text = if self.line == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            if !text.trim().is_empty() {
                return Ok(Some((self.line, text.to_owned())));
            }
        }
    }
}
