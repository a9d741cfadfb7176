//! Checks of a sweep spec's values: names, lists, ranges and references, each refusal naming
//! the key path it is about (`grid[0].slo_multiplier[1]: ...`). `check_grid` checks one
//! `[[grid]]` into the lists its tasks are planned from ([`super::grid`]).

use super::grid::{BackendGrid, GridPlan};
use super::spec::{GridSpec, SpecError, SweepSpec};
use super::trace_spec::{task_trace, trace_error, TraceTemplate};
use crate::sim::{Family, StaticRamps, BATCH_SIZES};
use crate::task::{BatchingScheme, LiveClock, LiveRun};
use crate::traces::{span_for_load, TraceSpec, MAX_SPAN_MINUTES};
use crate::workload;
use std::collections::BTreeMap;

pub(super) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> SpecError {
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

/// Names usable in file names: `[a-z0-9_-]`, starting with a letter or digit, at most 40.
pub(super) fn check_name(key: &str, what: &str, name: &str) -> Result<(), SpecError> {
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
pub(super) fn check_list<T: PartialEq + std::fmt::Debug>(
    key: &str,
    list: &[T],
) -> Result<(), SpecError> {
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

pub(super) fn family_name(f: Family) -> &'static str {
    match f {
        Family::Cv => "CV",
        Family::Nlp => "NLP",
    }
}

pub(super) fn known(list: &[&str]) -> String {
    list.join(", ")
}

pub(super) fn check_grid(
    gi: usize,
    g: &GridSpec,
    spec: &SweepSpec,
    traces: &BTreeMap<String, TraceTemplate>,
    scale: Option<f64>,
    backend: Option<&BackendGrid>,
) -> Result<GridPlan, SpecError> {
    let at = |field: &str| format!("grid[{gi}].{field}");
    check_name(&at("name"), "grid name", &g.name)?;
    if let Some(b) = backend {
        check_backend_grid(gi, g, b)?;
    }
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
    let mut family = backend.map(|b| b.family);
    for (i, m) in g.models.iter().enumerate() {
        if backend.is_some() {
            break;
        }
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
        if backend.is_some() {
            break;
        }
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
    let live = check_live(gi, g, backend.is_some())?;
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
        live,
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

/// A grid's `kind` and `clock`: `None` for a simulated grid, the run of a live one. A live
/// grid needs backend inputs (a live run serves a real model) and a trace to replay (no
/// `uniform` batching); `clock` belongs to live grids only.
fn check_live(gi: usize, g: &GridSpec, backend: bool) -> Result<Option<LiveRun>, SpecError> {
    let at = |field: &str| format!("grid[{gi}].{field}");
    match g.kind.as_deref() {
        None | Some("simulated") => match &g.clock {
            Some(_) => Err(invalid(
                at("clock"),
                "only allowed with kind = \"live\" (a simulated grid has no clock)",
            )),
            None => Ok(None),
        },
        Some("live") => {
            if !backend {
                return Err(invalid(
                    at("kind"),
                    "a live grid needs [inputs] kind = \"backend\": a live run serves a real model",
                ));
            }
            let clock = match g.clock.as_deref() {
                None => LiveClock::Fast,
                Some(c) => LiveClock::parse(c).ok_or_else(|| {
                    invalid(
                        at("clock"),
                        format!(
                            "{c:?} is not a clock; expected \"fast\" (the default) or \"realtime\""
                        ),
                    )
                })?,
            };
            if let Some(i) = g
                .batching
                .iter()
                .position(|b| *b == BatchingScheme::Uniform)
            {
                return Err(invalid(
                    format!("grid[{gi}].batching[{i}]"),
                    "a live grid replays its trace's arrivals; uniform batching has none (use \"clockwork\" or \"tf_serve\")",
                ));
            }
            Ok(Some(LiveRun { clock }))
        }
        Some(other) => Err(invalid(
            at("kind"),
            format!(
                "{other:?} is not a grid kind; expected \"simulated\" (the default) or \"live\""
            ),
        )),
    }
}

/// With backend inputs a grid names the backend's model and dataset, and nothing else.
fn check_backend_grid(gi: usize, g: &GridSpec, b: &BackendGrid) -> Result<(), SpecError> {
    for (i, m) in g.models.iter().enumerate() {
        if *m != b.model {
            return Err(invalid(
                format!("grid[{gi}].models[{i}]"),
                format!(
                    "{m:?} is not the backend's model; with kind = \"backend\" a grid lists the model's name (inputs.name, default inputs.model: {:?}) only",
                    b.model
                ),
            ));
        }
    }
    for (i, d) in g.datasets.iter().enumerate() {
        if *d != b.dataset {
            return Err(invalid(
                format!("grid[{gi}].datasets[{i}]"),
                format!(
                    "{d:?} is not the backend's dataset; with kind = \"backend\" a grid lists inputs.dataset ({:?}, default \"video\" for CV models, \"text\" for NLP) only",
                    b.dataset
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the generated trace of every (dataset, model, trace) of a grid as its tasks will run
/// it: with the stream length as `n` and the span a `load` gives the model.
pub(super) fn check_task_traces(
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
