//! Checking a [`SweepSpec`] and expanding it into [`PlannedTask`]s.
//!
//! A [`Plan`] holds the checked lists, not the tasks: task `i` is computed on demand from its
//! index (mixed radix over the grid's lists), so memory does not grow with the number of
//! tasks. What a plan does hold is one digest per distinct input file.

use super::digest::{embedded_digest, file_sha256};
use super::key::task_key;
use super::spec::{GridSpec, InputsKind, SpecError, SweepSpec};
use crate::ids::TaskKey;
use crate::sim::family::ACC_LOSS_BUDGET_ACTUAL;
use crate::sim::{Family, Overrides, StaticRamps, BATCH_SIZES};
use crate::task::{BatchingScheme, Inputs, TaskParams, TaskSpec, TaskTrace};
use crate::traces::{minutes_for_load, span_for_load, TraceGenError, TraceSpec, MAX_SPAN_MINUTES};
use crate::workload;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One task of a plan: its position, key, canonical spec and input digests.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedTask {
    /// Position in grid order (0-based).
    pub index: usize,
    /// Content-addressed key (see [`super::key`]).
    pub key: TaskKey,
    /// The canonical task spec.
    pub spec: TaskSpec,
    /// Input digests: `embedded` for the embedded workload; for artifact inputs each input file
    /// by its path relative to the artifact folder; `trace/{name}` for an Azure CSV trace file.
    pub digests: BTreeMap<String, String>,
}

impl PlannedTask {
    /// `grid/model/dataset/trace`, for messages.
    pub fn label(&self) -> String {
        label(&self.spec)
    }
}

fn label(s: &TaskSpec) -> String {
    format!("{}/{}/{}/{}", s.grid, s.model, s.dataset, s.trace.name())
}

/// A part of a recorded decision file name.
#[derive(Clone, Debug)]
enum Segment {
    Lit(String),
    Model,
    Dataset,
    Slo,
    BatchSize,
}

/// A `[traces.NAME]` entry, checked.
#[derive(Clone, Debug)]
enum TraceTemplate {
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

/// A grid with its lists checked and canonicalised.
#[derive(Clone, Debug)]
struct GridPlan {
    name: String,
    family: Family,
    datasets: Vec<String>,
    models: Vec<String>,
    traces: Vec<String>,
    batching: Vec<BatchingScheme>,
    slo: Vec<f64>,
    batch_size: Vec<usize>,
    accuracy_budget: Vec<Option<f64>>,
    ramp_budget: Vec<Option<usize>>,
    check_interval: Vec<Option<usize>>,
    static_ramps: Vec<StaticRamps>,
    seeds: Vec<u64>,
    /// Index of the grid's first task in the plan.
    offset: usize,
    len: usize,
}

impl GridPlan {
    /// Radixes from outer to inner (see [`GridSpec`]).
    fn radixes(&self) -> [usize; 11] {
        [
            self.datasets.len(),
            self.models.len(),
            self.traces.len(),
            self.batching.len(),
            self.slo.len(),
            self.batch_size.len(),
            self.accuracy_budget.len(),
            self.ramp_budget.len(),
            self.check_interval.len(),
            self.static_ramps.len(),
            self.seeds.len(),
        ]
    }
}

/// A checked sweep: its grids, inputs and the digest of every input file. Tasks are computed on
/// demand ([`Plan::task`], [`Plan::tasks`]), in grid order.
#[derive(Clone, Debug)]
pub struct Plan {
    spec: SweepSpec,
    inputs: Inputs,
    traces: BTreeMap<String, TraceTemplate>,
    grids: Vec<GridPlan>,
    /// Artifact input files (relative, `/`-separated) → SHA-256.
    file_digests: BTreeMap<String, String>,
    code_version: String,
    len: usize,
}

/// A grid of a plan, for callers that walk grid by grid (summaries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridInfo {
    /// The grid's name.
    pub name: String,
    /// Its tasks' indexes in the plan.
    pub tasks: Range<usize>,
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// The most tasks one sweep may expand to (its `sweep.json` lists every key).
pub const MAX_TASKS: usize = 1_000_000;

/// Range of `grid[i].slo_multiplier[j]`: below 1 no request can meet its SLO (the fastest a
/// request is served is the batch-1 latency the SLO is a multiple of).
pub const SLO_MULTIPLIER_RANGE: (f64, f64) = (1.0, 1000.0);

/// Range of `inputs.scale`: at 0.001 a video is 70 frames, the smallest stream that is still a
/// workload.
pub const SCALE_RANGE: (f64, f64) = (0.001, 10.0);

/// Most ramps a `ramp_budget` may allow (no model has more ramp sites).
pub const MAX_RAMP_BUDGET: usize = 100;

/// Most batches a `check_interval` may span.
pub const MAX_CHECK_INTERVAL: usize = 1_000_000;

/// A number as messages show it: plain for ordinary magnitudes, `1e-300` / `1e308` for extreme
/// ones (Rust's `Display` would write out hundreds of digits).
pub(crate) fn num(x: f64) -> String {
    let a = x.abs();
    if !x.is_finite() || a == 0.0 || (1e-4..1e15).contains(&a) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A trace parameter out of range, as a spec error at `traces.{name}.{parameter}` (shape
/// parameters of a synthetic Azure trace under `.shape`).
fn trace_error(key: &str, spec: &TraceSpec, e: TraceGenError) -> SpecError {
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

/// Names usable in file names: `[a-z0-9_-]`, starting with a letter or digit, at most 40.
fn check_name(key: &str, what: &str, name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!(
                "{what} {name:?} is not allowed; use 1 to 40 characters from a-z, 0-9, '_' and '-', starting with a letter or digit"
            ),
        ))
    }
}

/// The most values one list of a spec may hold (`seeds`, and each list of a grid).
pub const MAX_LIST_LEN: usize = 10_000;

/// A list must be non-empty, at most [`MAX_LIST_LEN`] long and without repeats.
fn check_list<T: PartialEq + std::fmt::Debug>(key: &str, list: &[T]) -> Result<(), SpecError> {
    if list.is_empty() {
        return Err(invalid(key, "must list at least one value"));
    }
    if list.len() > MAX_LIST_LEN {
        return Err(invalid(
            key,
            format!(
                "lists {} values; expected at most {MAX_LIST_LEN}",
                list.len()
            ),
        ));
    }
    for (i, v) in list.iter().enumerate() {
        if list[..i].contains(v) {
            return Err(invalid(
                format!("{key}[{i}]"),
                format!("{v:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Cv => "CV",
        Family::Nlp => "NLP",
    }
}

fn known(list: &[&str]) -> String {
    list.join(", ")
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `/`-separated text of a relative path (digest map keys).
fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_file_template(key: &str, file: &str) -> Result<Vec<Segment>, SpecError> {
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

fn render_file(segments: &[Segment], model: &str, dataset: &str, slo: f64, bs: usize) -> String {
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
fn check_sub_types(key: &str, table: &toml::Table) -> Result<(), SpecError> {
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

fn parse_trace(
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

fn check_grid(
    gi: usize,
    g: &GridSpec,
    spec: &SweepSpec,
    traces: &BTreeMap<String, TraceTemplate>,
    scale: Option<f64>,
) -> Result<GridPlan, SpecError> {
    let at = |field: &str| format!("grid[{gi}].{field}");
    check_name(&at("name"), "grid name", &g.name)?;
    let all_models: Vec<&str> = workload::CV_MODELS
        .iter()
        .chain(workload::NLP_MODELS.iter())
        .copied()
        .collect();
    let all_datasets: Vec<&str> = workload::CV_DATASETS
        .iter()
        .chain(workload::NLP_DATASETS.iter())
        .copied()
        .collect();
    check_list(&at("models"), &g.models)?;
    let mut family = None;
    for (i, m) in g.models.iter().enumerate() {
        let Some(f) = workload::model_family(m) else {
            return Err(invalid(
                format!("grid[{gi}].models[{i}]"),
                format!(
                    "unknown model {m:?}; expected one of {}",
                    known(&all_models)
                ),
            ));
        };
        match family {
            None => family = Some(f),
            Some(f0) if f0 != f => {
                return Err(invalid(
                    format!("grid[{gi}].models[{i}]"),
                    format!(
                        "model {m:?} is {} but grid[{gi}].models[0] ({:?}) is {}; a grid holds one family",
                        family_name(f),
                        g.models[0],
                        family_name(f0)
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let family = family.unwrap_or(Family::Cv);
    check_list(&at("datasets"), &g.datasets)?;
    for (i, d) in g.datasets.iter().enumerate() {
        let key = format!("grid[{gi}].datasets[{i}]");
        match workload::dataset_family(d) {
            None => {
                return Err(invalid(
                    key,
                    format!(
                        "unknown dataset {d:?}; expected one of {}",
                        known(&all_datasets)
                    ),
                ))
            }
            Some(f) if f != family => {
                return Err(invalid(
                    key,
                    format!(
                        "dataset {d:?} is {} but the grid's models are {}",
                        family_name(f),
                        family_name(family)
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    check_list(&at("traces"), &g.traces)?;
    for (i, t) in g.traces.iter().enumerate() {
        let key = format!("grid[{gi}].traces[{i}]");
        match traces.get(t) {
            None => {
                let defined: Vec<&str> = traces.keys().map(String::as_str).collect();
                return Err(invalid(
                    key,
                    format!(
                        "unknown trace {t:?}; defined under [traces]: {}",
                        if defined.is_empty() {
                            "none".to_string()
                        } else {
                            defined.join(", ")
                        }
                    ),
                ));
            }
            Some(TraceTemplate::Decisions { .. }) if scale.is_some() => {
                return Err(invalid(
                    key,
                    format!(
                        "trace {t:?} is a recorded decision file, which needs artifact inputs ([inputs] kind = \"artifact\")"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    check_list(&at("batching"), &g.batching)?;
    check_list(&at("slo_multiplier"), &g.slo_multiplier)?;
    let (slo_lo, slo_hi) = SLO_MULTIPLIER_RANGE;
    for (i, &s) in g.slo_multiplier.iter().enumerate() {
        if !(slo_lo..=slo_hi).contains(&s) {
            return Err(invalid(
                format!("grid[{gi}].slo_multiplier[{i}]"),
                format!(
                    "{} is out of range; expected a number in [{slo_lo}, {slo_hi}] (a multiple of the model's batch-1 latency)",
                    num(s)
                ),
            ));
        }
    }
    check_list(&at("batch_size"), &g.batch_size)?;
    for (i, b) in g.batch_size.iter().enumerate() {
        if !BATCH_SIZES.contains(b) {
            return Err(invalid(
                format!("grid[{gi}].batch_size[{i}]"),
                format!("{b} is not a profiled batch size; expected one of 1, 2, 4, 8, 16, 32, 64"),
            ));
        }
    }
    let accuracy_budget: Vec<Option<f64>> = match &g.accuracy_budget {
        None => vec![None],
        Some(list) => {
            check_list(&at("accuracy_budget"), list)?;
            for (i, &a) in list.iter().enumerate() {
                if !(a > 0.0 && a < 1.0) {
                    return Err(invalid(
                        format!("grid[{gi}].accuracy_budget[{i}]"),
                        format!(
                            "{} is out of range; expected a number in (0, 1), e.g. 0.01",
                            num(a)
                        ),
                    ));
                }
            }
            list.iter().map(|&a| Some(a)).collect()
        }
    };
    let positive = |field: &str,
                    max: usize,
                    list: &Option<Vec<usize>>|
     -> Result<Vec<Option<usize>>, SpecError> {
        match list {
            None => Ok(vec![None]),
            Some(list) => {
                check_list(&at(field), list)?;
                for (i, &v) in list.iter().enumerate() {
                    if !(1..=max).contains(&v) {
                        return Err(invalid(
                            format!("grid[{gi}].{field}[{i}]"),
                            format!("{v} is out of range; expected an integer in [1, {max}]"),
                        ));
                    }
                }
                Ok(list.iter().map(|&v| Some(v)).collect())
            }
        }
    };
    let ramp_budget = positive("ramp_budget", MAX_RAMP_BUDGET, &g.ramp_budget)?;
    let check_interval = positive("check_interval", MAX_CHECK_INTERVAL, &g.check_interval)?;
    let static_ramps = match &g.static_ramps {
        None => vec![StaticRamps::AllSites],
        Some(list) => {
            check_list(&at("static_ramps"), list)?;
            list.clone()
        }
    };
    if let Some(scale) = scale {
        for d in &g.datasets {
            for m in &g.models {
                workload::check(m, d, scale)
                    .map_err(|e| invalid(format!("grid[{gi}]"), e.to_string()))?;
            }
        }
    }
    check_task_traces(
        gi,
        g,
        traces,
        scale,
        spec.seeds.first().copied().unwrap_or(0),
    )?;
    let mut plan = GridPlan {
        name: g.name.clone(),
        family,
        datasets: g.datasets.clone(),
        models: g.models.clone(),
        traces: g.traces.clone(),
        batching: g.batching.clone(),
        slo: g.slo_multiplier.clone(),
        batch_size: g.batch_size.clone(),
        accuracy_budget,
        ramp_budget,
        check_interval,
        static_ramps,
        seeds: spec.seeds.clone(),
        offset: 0,
        len: 0,
    };
    plan.len = plan
        .radixes()
        .iter()
        .try_fold(1usize, |acc, &r| acc.checked_mul(r))
        .ok_or_else(|| invalid(format!("grid[{gi}]"), "expands to too many tasks"))?;
    Ok(plan)
}

/// Checks the generated trace of every (dataset, model, trace) of a grid as its tasks will run
/// it: with the stream length as `n` and the span a `load` gives the model.
fn check_task_traces(
    gi: usize,
    g: &GridSpec,
    traces: &BTreeMap<String, TraceTemplate>,
    scale: Option<f64>,
    seed: u64,
) -> Result<(), SpecError> {
    for dataset in &g.datasets {
        for model in &g.models {
            for name in &g.traces {
                let Some(TraceTemplate::Generated {
                    spec,
                    n_from_stream,
                    seed_from_task,
                    load,
                    ..
                }) = traces.get(name)
                else {
                    continue;
                };
                let key = format!("traces.{name}");
                let task = format!("for {model} on {dataset} (grid[{gi}])");
                let t = task_trace(
                    spec,
                    *n_from_stream,
                    *seed_from_task,
                    None,
                    scale,
                    model,
                    dataset,
                    seed,
                );
                if let (Some(load), TraceSpec::SyntheticAzure { n, .. }) = (load, &t) {
                    if let Some(preset) = workload::models::preset(model) {
                        let span = span_for_load(*n, preset.v1_ms, *load);
                        if !(span.is_finite() && span <= MAX_SPAN_MINUTES as f64) {
                            return Err(invalid(
                                format!("{key}.load"),
                                format!(
                                    "{} spreads {n} requests over {} minutes {task}; expected a load that keeps the span at most {MAX_SPAN_MINUTES} minutes",
                                    num(*load),
                                    num(span)
                                ),
                            ));
                        }
                    }
                }
                let t = task_trace(
                    spec,
                    *n_from_stream,
                    *seed_from_task,
                    *load,
                    scale,
                    model,
                    dataset,
                    seed,
                );
                t.check().map_err(|e| match trace_error(&key, &t, e) {
                    SpecError::Invalid { key, problem } => {
                        invalid(key, format!("{problem} {task}"))
                    }
                    other => other,
                })?;
            }
        }
    }
    Ok(())
}

/// The trace a task of `model` on `dataset` with `seed` runs: `spec` with `n` (the dataset's
/// stream length, embedded inputs at `scale`), the seed and the span a `load` gives the model
/// filled in.
#[allow(clippy::too_many_arguments)]
fn task_trace(
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

impl SweepSpec {
    /// Checks the spec and expands it (see [`Plan::new`]).
    pub fn plan(self) -> Result<Plan, SpecError> {
        Plan::new(self)
    }
}

impl Plan {
    /// Checks `spec` (names, ranges, references, and for artifact inputs that every input file
    /// of every task exists) and hashes every input file. Nothing is run or written.
    pub fn new(spec: SweepSpec) -> Result<Plan, SpecError> {
        check_name("name", "sweep name", &spec.name)?;
        check_list("seeds", &spec.seeds)?;
        let (inputs, scale) = match (spec.inputs.kind, spec.inputs.scale, &spec.inputs.dir) {
            (InputsKind::Embedded, _, Some(_)) => {
                return Err(invalid(
                    "inputs.dir",
                    "only allowed with kind = \"artifact\"",
                ))
            }
            (InputsKind::Embedded, scale, None) => {
                let scale = scale.unwrap_or(1.0);
                let (lo, hi) = SCALE_RANGE;
                if !(lo..=hi).contains(&scale) {
                    return Err(invalid(
                        "inputs.scale",
                        format!(
                            "{} is out of range; expected a number in [{lo}, {hi}] (1.0 = paper scale)",
                            num(scale)
                        ),
                    ));
                }
                (Inputs::Embedded { scale }, Some(scale))
            }
            (InputsKind::Artifact, Some(_), _) => {
                return Err(invalid(
                    "inputs.scale",
                    "only allowed with kind = \"embedded\"",
                ))
            }
            (InputsKind::Artifact, None, None) => {
                return Err(invalid(
                    "inputs.dir",
                    "required with kind = \"artifact\": the folder holding bootstrap_pickles/, simulation_pickles/, profile_pickles_bs/ and batch_decisions/",
                ))
            }
            (InputsKind::Artifact, None, Some(dir)) => {
                let dir = resolve(&spec.base_dir, dir);
                if !dir.is_dir() {
                    return Err(invalid(
                        "inputs.dir",
                        format!("{} is not a directory", dir.display()),
                    ));
                }
                (Inputs::Artifact { dir }, None)
            }
        };
        let mut traces = BTreeMap::new();
        for (name, table) in &spec.traces {
            traces.insert(
                name.clone(),
                parse_trace(name, table, scale.is_some(), &spec.base_dir)?,
            );
        }
        if spec.grid.is_empty() {
            return Err(invalid("grid", "at least one [[grid]] is required"));
        }
        let mut grids: Vec<GridPlan> = Vec::new();
        let mut offset = 0usize;
        for (gi, g) in spec.grid.iter().enumerate() {
            if let Some(j) = grids.iter().position(|p| p.name == g.name) {
                return Err(invalid(
                    format!("grid[{gi}].name"),
                    format!("{:?} is already the name of grid[{j}]", g.name),
                ));
            }
            let mut gp = check_grid(gi, g, &spec, &traces, scale)?;
            gp.offset = offset;
            offset = offset
                .checked_add(gp.len)
                .filter(|&n| n <= MAX_TASKS)
                .ok_or_else(|| {
                    invalid(
                        format!("grid[{gi}]"),
                        format!(
                            "the sweep expands to more than {MAX_TASKS} tasks (the product of every list's length and the seeds, summed over the grids); split it into several sweeps"
                        ),
                    )
                })?;
            grids.push(gp);
        }
        let mut plan = Plan {
            spec,
            inputs,
            traces,
            grids,
            file_digests: BTreeMap::new(),
            code_version: crate::code_version(),
            len: offset,
        };
        plan.hash_input_files()?;
        Ok(plan)
    }

    /// For artifact inputs: checks that every task's input files exist and hashes each distinct
    /// file once.
    fn hash_input_files(&mut self) -> Result<(), SpecError> {
        let Inputs::Artifact { dir } = &self.inputs else {
            return Ok(());
        };
        let dir = dir.clone();
        let mut digests: BTreeMap<String, String> = BTreeMap::new();
        let mut missing: BTreeMap<String, String> = BTreeMap::new();
        let mut first_missing: Option<(String, PathBuf)> = None;
        for i in 0..self.len {
            let spec = self.task_spec(i);
            for rel in spec.input_files() {
                let name = slash_path(&rel);
                if digests.contains_key(&name) || missing.contains_key(&name) {
                    continue;
                }
                let path = dir.join(&rel);
                // A path that exists but is not a regular file (a FIFO, a device, a folder)
                // is refused as unreadable, naming what it is; only an absent one is missing.
                match crate::input_file::check_regular(&path) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if first_missing.is_none() {
                            first_missing = Some((label(&spec), path.clone()));
                        }
                        missing.insert(name, label(&spec));
                        continue;
                    }
                    Err(source) => return Err(SpecError::InputRead { path, source }),
                }
                let d = file_sha256(&path).map_err(|source| SpecError::InputRead {
                    path: path.clone(),
                    source,
                })?;
                digests.insert(name, d);
            }
        }
        if let Some((task, file)) = first_missing {
            return Err(SpecError::MissingInput {
                task,
                file,
                also_missing: missing.len() - 1,
            });
        }
        self.file_digests = digests;
        Ok(())
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the plan has no task (never true for a checked plan).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The spec the plan was made from.
    pub fn spec(&self) -> &SweepSpec {
        &self.spec
    }

    /// The code version that is part of every key ([`crate::code_version`]).
    pub fn code_version(&self) -> &str {
        &self.code_version
    }

    /// The grids in file order, with their task ranges.
    pub fn grids(&self) -> Vec<GridInfo> {
        self.grids
            .iter()
            .map(|g| GridInfo {
                name: g.name.clone(),
                tasks: g.offset..g.offset + g.len,
            })
            .collect()
    }

    /// Task `index` (in grid order), or `None` past the end.
    pub fn task(&self, index: usize) -> Option<PlannedTask> {
        if index >= self.len {
            return None;
        }
        let spec = self.task_spec(index);
        let digests = self.digests(&spec);
        let key = task_key(&spec, &digests, &self.code_version);
        Some(PlannedTask {
            index,
            key,
            spec,
            digests,
        })
    }

    /// Every task, in grid order.
    pub fn tasks(&self) -> impl Iterator<Item = PlannedTask> + '_ {
        (0..self.len).filter_map(move |i| self.task(i))
    }

    /// Input digests of a task of this plan.
    fn digests(&self, spec: &TaskSpec) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        match &spec.inputs {
            Inputs::Embedded { scale } => {
                d.insert(
                    "embedded".to_string(),
                    embedded_digest(&spec.model, &spec.dataset, *scale, spec.seed),
                );
            }
            Inputs::Artifact { .. } => {
                for rel in spec.input_files() {
                    let name = slash_path(&rel);
                    let digest = self.file_digests.get(&name).cloned().unwrap_or_default();
                    d.insert(name, digest);
                }
            }
        }
        if let Some(TraceTemplate::Generated {
            digest: Some(digest),
            ..
        }) = self.traces.get(spec.trace.name())
        {
            d.insert(format!("trace/{}", spec.trace.name()), digest.clone());
        }
        d
    }

    /// The canonical spec of task `index` (< `len`).
    fn task_spec(&self, index: usize) -> TaskSpec {
        let g = self
            .grids
            .iter()
            .find(|g| index >= g.offset && index < g.offset + g.len)
            .unwrap_or_else(|| unreachable!("index checked against len"));
        let radixes = g.radixes();
        let mut digits = [0usize; 11];
        let mut rest = index - g.offset;
        for (d, r) in digits.iter_mut().zip(radixes).rev() {
            *d = rest % r;
            rest /= r;
        }
        let [di, mi, ti, bi, si, bsi, ai, ri, ci, sti, seedi] = digits;
        let (model, dataset) = (&g.models[mi], &g.datasets[di]);
        let seed = g.seeds[seedi];
        let slo = g.slo[si];
        let batch_size = g.batch_size[bsi];
        let arch = match g.family {
            Family::Cv => format!("{model}_{dataset}"),
            Family::Nlp => model.clone(),
        };
        // Canonical form: a value equal to the artifact's default is no override at all.
        let overrides = Overrides {
            accuracy_budget: g.accuracy_budget[ai].filter(|&a| a != ACC_LOSS_BUDGET_ACTUAL),
            ramp_budget: g.ramp_budget[ri].filter(|&r| r != g.family.ramp_budget(&arch)),
            ramp_check_interval: g.check_interval[ci]
                .filter(|&c| c != g.family.ramp_check_interval()),
        };
        let trace_name = &g.traces[ti];
        let trace = match self.traces.get(trace_name) {
            Some(TraceTemplate::Decisions { file }) => TaskTrace::ArtifactDecisions {
                name: trace_name.clone(),
                file: render_file(file, model, dataset, slo, batch_size),
            },
            Some(TraceTemplate::Generated {
                spec,
                n_from_stream,
                seed_from_task,
                load,
                ..
            }) => {
                let scale = match self.inputs {
                    Inputs::Embedded { scale } => Some(scale),
                    Inputs::Artifact { .. } => None,
                };
                TaskTrace::Generated {
                    name: trace_name.clone(),
                    spec: task_trace(
                        spec,
                        *n_from_stream,
                        *seed_from_task,
                        *load,
                        scale,
                        model,
                        dataset,
                        seed,
                    ),
                }
            }
            None => unreachable!("grid traces are checked against [traces]"),
        };
        TaskSpec {
            grid: g.name.clone(),
            family: g.family,
            model: model.clone(),
            dataset: dataset.clone(),
            trace,
            params: TaskParams {
                batching: g.batching[bi],
                slo_multiplier: slo,
                batch_size,
                static_ramps: g.static_ramps[sti],
                overrides,
            },
            seed,
            inputs: self.inputs.clone(),
        }
    }
}
