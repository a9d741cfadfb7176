//! The JSON files of `worker batching`: the request-trace input (the `golden/batching-*/
//! trace.json` format) and the decision-file output (the `expected.json` format plus `scheme`).
//! Parsing works on text; reading and writing files is the caller's business.
//!
//! Trace keys: `scheme` (`"clockwork"` | `"tf_serve"`), `slo_ms`, `supported_batch_sizes`,
//! `M_ms` (one per size, same order), `max_batch_size`, `batch_timeout_ms`,
//! `max_enqueued_batches` and `arrival_ms` (request id = index). Other keys (e.g. `generator`)
//! are ignored. Errors name the offending key.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use self::TraceFileError as Error;
use super::TraceError;
use super::{BatchingError, BatchingOutcome, RequestTrace, Scheme, ServingTimes, TfServeParams};

/// A parsed and validated trace file: which scheme to run, on what.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFile {
    /// The scheme named in the file.
    pub scheme: Scheme,
    /// Arrivals and SLO.
    pub trace: RequestTrace,
    /// Supported batch sizes and their serving times.
    pub serving: ServingTimes,
    /// tf_serve's parameters (present in every file; clockwork ignores them).
    pub tf_serve: TfServeParams,
}

impl TraceFile {
    /// Parses and validates a trace file's text.
    pub fn from_json_str(text: &str) -> Result<TraceFile, TraceFileError> {
        let value: Value = serde_json::from_str(text).map_err(|source| Error::Json { source })?;
        let obj = value.as_object().ok_or_else(|| Error::WrongType {
            field: "(top level)".to_owned(),
            expected: "a JSON object",
            found: describe(&value),
        })?;

        let scheme_name = string(get(obj, "scheme")?, "scheme")?;
        let scheme = Scheme::from_name(scheme_name).ok_or_else(|| Error::UnknownScheme {
            found: scheme_name.to_owned(),
        })?;
        let slo_ms = number(get(obj, "slo_ms")?, "slo_ms")?;
        let sizes = list(obj, "supported_batch_sizes", count)?;
        let m_ms = list(obj, "M_ms", number)?;
        let arrival_ms = list(obj, "arrival_ms", number)?;
        let tf_serve = TfServeParams {
            max_batch_size: count(get(obj, "max_batch_size")?, "max_batch_size")?,
            batch_timeout_ms: number(get(obj, "batch_timeout_ms")?, "batch_timeout_ms")?,
            max_enqueued_batches: count(get(obj, "max_enqueued_batches")?, "max_enqueued_batches")?,
        };

        let serving = ServingTimes::new(sizes, m_ms).map_err(invalid)?;
        let trace = RequestTrace::new(arrival_ms, slo_ms).map_err(invalid)?;
        tf_serve.validate().map_err(invalid)?;
        Ok(TraceFile {
            scheme,
            trace,
            serving,
            tf_serve,
        })
    }

    /// Runs the file's scheme on its trace.
    pub fn run(&self) -> Result<BatchingOutcome, BatchingError> {
        self.scheme.run(&self.trace, &self.serving, &self.tf_serve)
    }
}

/// A trace file that cannot be used. Every variant but [`TraceFileError::Json`] names the key.
#[derive(Debug, Error)]
pub enum TraceFileError {
    /// Not JSON at all.
    #[error("not valid JSON")]
    Json {
        /// The parser's error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A required key is absent.
    #[error("missing key `{field}`")]
    MissingKey {
        /// The key.
        field: &'static str,
    },
    /// A value has the wrong JSON type (or is out of range for its type).
    #[error("field `{field}`: expected {expected}, found {found}")]
    WrongType {
        /// The key, with `[index]` for a list element.
        field: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// `scheme` names no known scheme.
    #[error("field `scheme`: unknown batching scheme {found:?} (expected \"clockwork\" or \"tf_serve\")")]
    UnknownScheme {
        /// The name found.
        found: String,
    },
    /// Well-typed values that do not make a valid input.
    #[error("field `{field}`")]
    Invalid {
        /// The key at fault.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: TraceError,
    },
}

/// The output of `worker batching`: the artifact's `get_batch_decision` results, keyed as in
/// `golden/batching-*/expected.json`, plus the scheme.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionFile {
    /// The scheme that produced it.
    pub scheme: Scheme,
    /// `N`.
    pub total_num_requests: usize,
    /// The emulated clock when the loop ended (ms).
    pub end_time: f64,
    /// `len(batching_decision)`.
    pub num_batches: usize,
    /// Requests with a stat.
    pub num_served: usize,
    /// Recorded batch sizes, in serving order.
    pub batching_decision: Vec<usize>,
    /// `[queueing_ms, M]` or `null`, per request id.
    pub per_request_stats: Vec<Option<(f64, f64)>>,
}

impl DecisionFile {
    /// The file for `outcome`, produced by `scheme`.
    pub fn new(scheme: Scheme, outcome: &BatchingOutcome) -> DecisionFile {
        DecisionFile {
            scheme,
            total_num_requests: outcome.total_num_requests(),
            end_time: outcome.end_time,
            num_batches: outcome.num_batches(),
            num_served: outcome.num_served(),
            batching_decision: outcome.batching_decision.clone(),
            per_request_stats: outcome.per_request_stats.clone(),
        }
    }
}

/// The trace key a validation error is about.
fn field_of(e: &TraceError) -> &'static str {
    match e {
        TraceError::NonFiniteSlo { .. } => "slo_ms",
        TraceError::NonFiniteArrival { .. } | TraceError::ArrivalsUnsorted { .. } => "arrival_ms",
        TraceError::NoBatchSizes | TraceError::BatchSizesNotIncreasing { .. } => {
            "supported_batch_sizes"
        }
        TraceError::ServingTimesLength { .. }
        | TraceError::InvalidServingTime { .. }
        | TraceError::ServingTimesNotIncreasing { .. } => "M_ms",
        TraceError::InvalidTfServeParam { name, .. } => name,
    }
}

fn invalid(source: TraceError) -> Error {
    Error::Invalid {
        field: field_of(&source),
        source,
    }
}

fn get<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<&'a Value, Error> {
    obj.get(field).ok_or(Error::MissingKey { field })
}

/// `obj[field]` as a list, each element converted by `item` (errors name `field[i]`).
fn list<T>(
    obj: &Map<String, Value>,
    field: &'static str,
    item: impl Fn(&Value, &str) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let value = get(obj, field)?;
    let items = value.as_array().ok_or_else(|| Error::WrongType {
        field: field.to_owned(),
        expected: "a list",
        found: describe(value),
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| item(v, &format!("{field}[{i}]")))
        .collect()
}

fn string<'a>(value: &'a Value, field: &str) -> Result<&'a str, Error> {
    value
        .as_str()
        .ok_or_else(|| wrong(field, "a string", value))
}

fn number(value: &Value, field: &str) -> Result<f64, Error> {
    value
        .as_f64()
        .ok_or_else(|| wrong(field, "a number", value))
}

fn count(value: &Value, field: &str) -> Result<usize, Error> {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| wrong(field, "a non-negative integer", value))
}

fn wrong(field: &str, expected: &'static str, value: &Value) -> Error {
    Error::WrongType {
        field: field.to_owned(),
        expected,
        found: describe(value),
    }
}

/// A short description of a JSON value for error messages: its type, and the value if short.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".to_owned(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "the number",
        Value::String(_) => "the string",
        Value::Array(_) => return "a list".to_owned(),
        Value::Object(_) => return "an object".to_owned(),
    };
    let text = value.to_string();
    if text.len() <= 40 {
        format!("{kind} {text}")
    } else {
        kind.to_owned()
    }
}
