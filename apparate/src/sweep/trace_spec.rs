//! `[traces.NAME]` tables of a sweep spec, checked into trace templates: a recorded decision
//! file (`source = "artifact_decisions"`, its name a template over the task's model, dataset, SLO
//! and batch size) or a generated trace (`kind = "fixed" | "poisson" | "azure_csv" |
//! "synthetic_azure"`), and the trace a task runs from a template.
//!
//! The tables are read by hand from `toml::Table` rather than through a serde enum: the spec's
//! refusal messages name the key path of a value of the wrong type or out of range
//! (`traces.v.shape.minutes: 0 is out of range; ...`), which serde's messages do not.

use super::digest::file_sha256;
use super::grid::resolve;
use super::spec::SpecError;
use super::validate::{check_name, invalid, num};
use crate::traces::{minutes_for_load, TraceGenError, TraceSpec};
use crate::workload;
use std::path::Path;

/// A part of a recorded decision file name.
#[derive(Clone, Debug)]
pub(super) enum Segment {
    Lit(String),
    Model,
    Dataset,
    Slo,
    BatchSize,
}

/// A `[traces.NAME]` entry, checked.
#[derive(Clone, Debug)]
pub(super) enum TraceTemplate {
    Decisions {
        file: Vec<Segment>,
    },
    Generated {
        spec: TraceSpec,
        /// `n` was omitted: the dataset's stream length (embedded inputs).
        n_from_stream: bool,
        /// `seed` was omitted (synthetic Azure): the task's seed.
        seed_from_task: bool,
        /// `load` (synthetic Azure, embedded inputs): the span is set per model so that the
        /// mean offered load is this fraction of the model's batch-1 throughput.
        load: Option<f64>,
        /// Digest of the Azure CSV file.
        digest: Option<String>,
    },
}

/// A trace parameter out of range, as a spec error at `traces.{name}.{parameter}` (shape
/// parameters of a synthetic Azure trace under `.shape`).
pub(super) fn trace_error(key: &str, spec: &TraceSpec, e: TraceGenError) -> SpecError {
    match e {
        TraceGenError::InvalidParameter {
            parameter,
            value,
            expected,
            ..
        } => {
            let shape = matches!(spec, TraceSpec::SyntheticAzure { .. })
                && !matches!(parameter, "n" | "seed");
            let at = if shape {
                format!("{key}.shape.{parameter}")
            } else {
                format!("{key}.{parameter}")
            };
            invalid(
                at,
                format!("{} is out of range; expected {expected}", num(value)),
            )
        }
        other => invalid(key, other.to_string()),
    }
}

pub(super) fn parse_file_template(key: &str, file: &str) -> Result<Vec<Segment>, SpecError> {
    let mut out = Vec::new();
    let mut rest = file;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(invalid(key, format!("unmatched '}}' in {file:?}")));
        }
        if open > 0 {
            out.push(Segment::Lit(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(invalid(key, format!("unmatched '{{' in {file:?}")));
        };
        out.push(match &after[..close] {
            "model" => Segment::Model,
            "dataset" => Segment::Dataset,
            "slo" => Segment::Slo,
            "batch_size" => Segment::BatchSize,
            other => {
                return Err(invalid(
                    key,
                    format!(
                        "unknown placeholder {{{other}}}; expected {{model}}, {{dataset}}, {{slo}} or {{batch_size}}"
                    ),
                ))
            }
        });
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Segment::Lit(rest.to_string()));
    }
    let bad_lit = out.iter().any(|s| match s {
        Segment::Lit(l) => l.contains(['/', '\\', '\0']),
        _ => false,
    });
    if file.is_empty() || file == "." || file == ".." || bad_lit {
        return Err(invalid(
            key,
            format!("{file:?} must be a plain file name under batch_decisions/ (no '/')"),
        ));
    }
    Ok(out)
}

pub(super) fn render_file(
    segments: &[Segment],
    model: &str,
    dataset: &str,
    slo: f64,
    bs: usize,
) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Lit(l) => l.clone(),
            Segment::Model => model.to_string(),
            Segment::Dataset => dataset.to_string(),
            Segment::Slo => format!("{slo}"),
            Segment::BatchSize => bs.to_string(),
        })
        .collect()
}

/// Names the key of a value of the wrong type in a trace's `shape` or `function` table (serde's
/// message would name only the trace). Unknown keys are left to serde.
pub(super) fn check_sub_types(key: &str, table: &toml::Table) -> Result<(), SpecError> {
    for (field, v) in table {
        let (what, ok) = match field.as_str() {
            "minutes" | "start_minute" | "row" => (
                "a non-negative integer",
                matches!(v, toml::Value::Integer(i) if *i >= 0),
            ),
            "diurnal_amplitude" | "peak_minute" | "off_fraction" | "mean_off_minutes"
            | "minute_sigma" | "burst_size" | "burst_spread_ms" => (
                "a number",
                matches!(v, toml::Value::Integer(_) | toml::Value::Float(_)),
            ),
            "hash_function" => ("a string", v.is_str()),
            _ => continue,
        };
        if !ok {
            return Err(invalid(
                format!("{key}.{field}"),
                format!("expected {what}, found {} {v}", v.type_str()),
            ));
        }
    }
    Ok(())
}

pub(super) fn parse_trace(
    name: &str,
    table: &toml::Table,
    embedded: bool,
    base: &Path,
) -> Result<TraceTemplate, SpecError> {
    let key = format!("traces.{name}");
    check_name(&key, "trace name", name)?;
    let mut t = table.clone();
    match t.remove("source") {
        Some(toml::Value::String(s)) if s == "artifact_decisions" => {
            if let Some(extra) = t.keys().find(|k| k.as_str() != "file") {
                return Err(invalid(
                    format!("{key}.{extra}"),
                    "unknown key; a recorded decision trace has only `source` and `file`",
                ));
            }
            let Some(file) = t.get("file") else {
                return Err(invalid(
                    format!("{key}.file"),
                    "missing; name the decision file under batch_decisions/, e.g. \"{model}_1_fixed_30.pickle\"",
                ));
            };
            let Some(file) = file.as_str() else {
                return Err(invalid(format!("{key}.file"), "expected a string"));
            };
            return Ok(TraceTemplate::Decisions {
                file: parse_file_template(&format!("{key}.file"), file)?,
            });
        }
        Some(toml::Value::String(s)) if s == "generated" => {}
        Some(other) => {
            return Err(invalid(
                format!("{key}.source"),
                format!("unknown source {other}; expected \"artifact_decisions\" or \"generated\""),
            ))
        }
        None => {}
    }
    let Some(kind) = t.get("kind").and_then(|k| k.as_str()).map(str::to_string) else {
        return Err(invalid(
            &key,
            "expected `kind = \"fixed\" | \"poisson\" | \"azure_csv\" | \"synthetic_azure\"` (a generated trace) or `source = \"artifact_decisions\"` (a recorded decision file)",
        ));
    };
    // Name the key of a value of the wrong type (serde's message would not).
    for (field, v) in &t {
        if field == "seed" && kind == "poisson" {
            if let toml::Value::Integer(i) = v {
                if u32::try_from(*i).is_err() {
                    return Err(invalid(
                        format!("{key}.seed"),
                        format!("{i} is out of range; expected a numpy seed, 0 to 4294967295"),
                    ));
                }
            }
        }
        let (what, ok) = match field.as_str() {
            "n" | "seed" | "cap" => (
                "a non-negative integer",
                matches!(v, toml::Value::Integer(i) if *i >= 0),
            ),
            "qps" => (
                "a number",
                matches!(v, toml::Value::Integer(_) | toml::Value::Float(_)),
            ),
            "path" | "within_minute" => ("a string", v.is_str()),
            "shape" | "function" => {
                if let Some(sub) = v.as_table() {
                    check_sub_types(&format!("{key}.{field}"), sub)?;
                }
                continue;
            }
            _ => continue,
        };
        if !ok {
            return Err(invalid(
                format!("{key}.{field}"),
                format!("expected {what}, found {} {v}", v.type_str()),
            ));
        }
    }
    let load = match t.remove("load") {
        None => None,
        Some(v) => {
            let load_key = format!("{key}.load");
            let x = match v {
                toml::Value::Integer(i) => i as f64,
                toml::Value::Float(f) => f,
                other => {
                    return Err(invalid(
                        load_key,
                        format!("expected a number, found {} {other}", other.type_str()),
                    ))
                }
            };
            if kind != "synthetic_azure" {
                return Err(invalid(
                    load_key,
                    "only a `synthetic_azure` trace takes a load",
                ));
            }
            if !embedded {
                return Err(invalid(
                    load_key,
                    "needs the embedded workload (the model's batch-1 latency comes from its preset); give `shape.minutes` instead",
                ));
            }
            if !(x.is_finite() && x > 0.0 && x <= 100.0) {
                return Err(invalid(
                    load_key,
                    format!("{} is out of range; expected a number in (0, 100]", num(x)),
                ));
            }
            if t.get("shape")
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key("minutes"))
            {
                return Err(invalid(
                    load_key,
                    "give either `load` or `shape.minutes`, not both (the load sets the span)",
                ));
            }
            Some(x)
        }
    };
    let mut n_from_stream = false;
    let mut seed_from_task = false;
    if matches!(kind.as_str(), "fixed" | "poisson" | "synthetic_azure") && !t.contains_key("n") {
        if embedded {
            n_from_stream = true;
            t.insert("n".into(), toml::Value::Integer(1));
        } else if kind == "synthetic_azure" {
            return Err(invalid(
                format!("{key}.n"),
                "required with artifact inputs (the stream length is known only for the embedded workload)",
            ));
        }
    }
    if kind == "synthetic_azure" && !t.contains_key("seed") {
        seed_from_task = true;
        t.insert("seed".into(), toml::Value::Integer(0));
    }
    let mut spec: TraceSpec = toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| invalid(&key, e.message().to_string()))?;
    // `n` may still be a placeholder here (the stream length, set per task); every task's
    // trace is checked again with its own `n` and span (`check_grid`).
    spec.check().map_err(|e| trace_error(&key, &spec, e))?;
    let mut digest = None;
    match &mut spec {
        TraceSpec::Fixed { .. } | TraceSpec::Poisson { .. } | TraceSpec::SyntheticAzure { .. } => {}
        TraceSpec::AzureCsv { path, .. } => {
            let p = resolve(base, path);
            if !p.is_file() {
                return Err(invalid(
                    format!("{key}.path"),
                    format!("{} does not exist or is not a file", p.display()),
                ));
            }
            digest = Some(file_sha256(&p).map_err(|source| SpecError::InputRead {
                path: p.clone(),
                source,
            })?);
            *path = p;
        }
    }
    if let TraceSpec::AzureCsv { .. } = &spec {
        // The file decides whether the function exists, how many requests the cap keeps and
        // whether any is left: read it once now rather than fail every task later.
        match crate::traces::generate(&spec) {
            Ok(arrivals) if arrivals.is_empty() => {
                return Err(invalid(
                    format!("{key}.function"),
                    "the function has no invocations in the file: its trace would be empty",
                ))
            }
            Ok(_) => {}
            Err(e) => return Err(trace_error(&key, &spec, e)),
        }
    }
    Ok(TraceTemplate::Generated {
        spec,
        n_from_stream,
        seed_from_task,
        load,
        digest,
    })
}

/// The trace a task of `model` on `dataset` with `seed` runs: `spec` with `n` (the dataset's
/// stream length, embedded inputs at `scale`), the seed and the span a `load` gives the model
/// filled in.
#[allow(clippy::too_many_arguments)]
pub(super) fn task_trace(
    spec: &TraceSpec,
    n_from_stream: bool,
    seed_from_task: bool,
    load: Option<f64>,
    scale: Option<f64>,
    model: &str,
    dataset: &str,
    seed: u64,
) -> TraceSpec {
    let mut spec = spec.clone();
    if let Some(scale) = scale {
        if n_from_stream {
            let len = workload::dataset_family(dataset)
                .map_or(2, |f| workload::family_trace_len(f, scale));
            match &mut spec {
                TraceSpec::Fixed { n, .. }
                | TraceSpec::Poisson { n, .. }
                | TraceSpec::SyntheticAzure { n, .. } => *n = len,
                TraceSpec::AzureCsv { .. } => {}
            }
        }
    }
    if seed_from_task {
        if let TraceSpec::SyntheticAzure { seed: s, .. } = &mut spec {
            *s = seed;
        }
    }
    if let (Some(load), TraceSpec::SyntheticAzure { n, shape, .. }) = (load, &mut spec) {
        // Models are checked against the presets for embedded inputs.
        if let Some(preset) = workload::models::preset(model) {
            shape.minutes = minutes_for_load(*n, preset.v1_ms, load);
        }
    }
    spec
}
