//! Checking a [`SweepSpec`] and expanding it into [`PlannedTask`]s.
//!
//! A [`Plan`] holds the checked lists, not the tasks: task `i` is computed on demand from its
//! index (mixed radix over the grid's lists), so memory does not grow with the number of
//! tasks. What a plan does hold is one digest per distinct input file.
//!
//! The `[traces]` tables are read in `super::trace_spec`, every value is checked in
//! [`super::validate`]; this module plans the tasks.

use super::digest::{embedded_digest, file_sha256};
use super::key::task_key;
use super::spec::{InputsKind, SpecError, SweepSpec};
use super::trace_spec::{parse_trace, render_file, task_trace, TraceTemplate};
use super::validate::{check_grid, check_list, check_name, invalid, num};
pub use super::validate::{
    MAX_CHECK_INTERVAL, MAX_LIST_LEN, MAX_RAMP_BUDGET, MAX_TASKS, SCALE_RANGE, SLO_MULTIPLIER_RANGE,
};
use crate::backend_inputs::{self, BackendExe, BackendInputs, DIGEST_KEY};
use crate::ids::TaskKey;
use crate::sim::family::ACC_LOSS_BUDGET_ACTUAL;
use crate::sim::{Family, Overrides, StaticRamps};
use crate::task::{
    BackendDevice, BatchingScheme, Inputs, LiveRun, TaskParams, TaskSpec, TaskTrace,
};
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

/// A grid with its lists checked and canonicalised.
#[derive(Clone, Debug)]
pub(super) struct GridPlan {
    pub(super) name: String,
    pub(super) family: Family,
    pub(super) datasets: Vec<String>,
    pub(super) models: Vec<String>,
    pub(super) traces: Vec<String>,
    pub(super) batching: Vec<BatchingScheme>,
    pub(super) slo: Vec<f64>,
    pub(super) batch_size: Vec<usize>,
    pub(super) accuracy_budget: Vec<Option<f64>>,
    pub(super) ramp_budget: Vec<Option<usize>>,
    pub(super) check_interval: Vec<Option<usize>>,
    pub(super) static_ramps: Vec<StaticRamps>,
    pub(super) seeds: Vec<u64>,
    /// A live grid's run (`kind = "live"`); `None` for a simulated one.
    pub(super) live: Option<LiveRun>,
    /// Index of the grid's first task in the plan.
    pub(super) offset: usize,
    pub(super) len: usize,
}

impl GridPlan {
    /// Radixes from outer to inner (see [`GridSpec`]).
    pub(super) fn radixes(&self) -> [usize; 11] {
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
    /// Backend inputs: the binary and the inputs digest.
    backend: Option<BackendPlan>,
}

/// The backend of a plan over backend inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendPlan {
    /// The `ee-backend` binary that builds the inputs, and its version.
    pub exe: BackendExe,
    /// The inputs digest (the folder `<results>/inputs/<digest>/`, the task digest `backend`).
    pub digest: String,
}

/// A grid of a plan, for callers that walk grid by grid (summaries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GridInfo {
    /// The grid's name.
    pub name: String,
    /// Its tasks' indexes in the plan.
    pub tasks: Range<usize>,
}

pub(super) fn resolve(base: &Path, p: &Path) -> PathBuf {
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

/// The first backend-only key set in `[inputs]`, if any.
fn backend_only_key(i: &super::spec::InputsSpec) -> Option<&'static str> {
    [
        ("model", i.model.is_some()),
        ("weights", i.weights.is_some()),
        ("data", i.data.is_some()),
        ("labels", i.labels.is_some()),
        ("device", i.device.is_some()),
        ("seed", i.seed.is_some()),
        ("dataset", i.dataset.is_some()),
        ("name", i.name.is_some()),
    ]
    .into_iter()
    .find_map(|(k, set)| set.then_some(k))
}

/// What the grids of a sweep over backend inputs must name.
#[derive(Clone, Debug)]
pub(super) struct BackendGrid {
    pub(super) model: String,
    pub(super) dataset: String,
    pub(super) family: Family,
}

/// The family of a backend model: the paper's NLP models are NLP, every other model CV.
pub fn backend_family(model: &str) -> Family {
    match workload::model_family(model) {
        Some(Family::Nlp) => Family::Nlp,
        _ => Family::Cv,
    }
}

/// A path of `[inputs]` that must exist: a regular file, or (with `folder_ok`) a folder.
fn check_input_path(
    spec: &SweepSpec,
    key: &str,
    path: &Path,
    folder_ok: bool,
) -> Result<PathBuf, SpecError> {
    let p = resolve(&spec.base_dir, path);
    let what = if folder_ok {
        "a regular file or a folder"
    } else {
        "a regular file"
    };
    match std::fs::metadata(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(invalid(
            format!("inputs.{key}"),
            format!("{} does not exist; expected {what}", p.display()),
        )),
        Err(e) => Err(invalid(
            format!("inputs.{key}"),
            format!("{}: {e}", p.display()),
        )),
        Ok(m) if m.is_dir() && folder_ok => Ok(p),
        Ok(_) => match crate::input_file::check_regular(&p) {
            Ok(_) => Ok(p),
            Err(e) => Err(invalid(
                format!("inputs.{key}"),
                format!("{}: {e}; expected {what}", p.display()),
            )),
        },
    }
}

/// Checks `[inputs]` of kind `backend` (names, device, and that every path exists).
fn check_backend_inputs(spec: &SweepSpec) -> Result<(Inputs, BackendGrid), SpecError> {
    let i = &spec.inputs;
    let model = match &i.model {
        None => {
            return Err(invalid(
                "inputs.model",
                "required with kind = \"backend\": the model ee-backend runs, e.g. \"digits-cnn\" or \"resnet50\"",
            ))
        }
        Some(m) => m.clone(),
    };
    check_name("inputs.model", "model name", &model)?;
    let name = i.name.clone().unwrap_or_else(|| model.clone());
    check_name("inputs.name", "model name", &name)?;
    // The simulator's rule: a CV model is one whose name contains resnet or vgg.
    let family = if crate::artifact::is_cv_arch(&name) {
        Family::Cv
    } else {
        Family::Nlp
    };
    if backend_family(&model) != family {
        let key = if i.name.is_some() {
            "inputs.name"
        } else {
            "inputs.model"
        };
        return Err(invalid(
            key,
            match family {
                Family::Nlp => format!(
                    "model {model:?} is a CV model, but the simulator reads a model as CV only under a name containing \"resnet\" or \"vgg\" (not {name:?}); give inputs.name, e.g. \"resnet-{model}\""
                ),
                Family::Cv => format!(
                    "model {model:?} is an NLP model; its name {name:?} must not contain \"resnet\" or \"vgg\""
                ),
            },
        ));
    }
    let dataset = match &i.dataset {
        Some(d) => d.clone(),
        None => match family {
            Family::Cv => "video".to_string(),
            Family::Nlp => "text".to_string(),
        },
    };
    check_name("inputs.dataset", "dataset name", &dataset)?;
    let device = match &i.device {
        None => BackendDevice::Auto,
        Some(d) => BackendDevice::parse(d).ok_or_else(|| {
            invalid(
                "inputs.device",
                format!("{d:?} is not a device; expected \"auto\", \"cpu\" or \"cuda\""),
            )
        })?,
    };
    let weights = match &i.weights {
        None => {
            return Err(invalid(
                "inputs.weights",
                "required with kind = \"backend\": the model's weights file",
            ))
        }
        Some(w) => check_input_path(spec, "weights", w, false)?,
    };
    let data = match &i.data {
        None => {
            return Err(invalid(
                "inputs.data",
                "required with kind = \"backend\": the dataset (a folder of frames, or a CSV/JSONL file)",
            ))
        }
        Some(d) => check_input_path(spec, "data", d, true)?,
    };
    let labels = match &i.labels {
        None => None,
        Some(l) => Some(check_input_path(spec, "labels", l, false)?),
    };
    let inputs = Inputs::Backend {
        model,
        name: name.clone(),
        dataset: dataset.clone(),
        weights,
        data,
        labels,
        device,
        seed: i.seed,
    };
    Ok((
        inputs,
        BackendGrid {
            model: name,
            dataset,
            family,
        },
    ))
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
        if let Some(key) = backend_only_key(&spec.inputs) {
            if spec.inputs.kind != InputsKind::Backend {
                return Err(invalid(
                    format!("inputs.{key}"),
                    "only allowed with kind = \"backend\"",
                ));
            }
        }
        let mut backend = None;
        let (inputs, scale) = match (spec.inputs.kind, spec.inputs.scale, &spec.inputs.dir) {
            (InputsKind::Backend, Some(_), _) => {
                return Err(invalid(
                    "inputs.scale",
                    "only allowed with kind = \"embedded\"",
                ))
            }
            (InputsKind::Backend, None, Some(_)) => {
                return Err(invalid(
                    "inputs.dir",
                    "only allowed with kind = \"artifact\" (backend inputs are built into <results>/inputs/<digest>/)",
                ))
            }
            (InputsKind::Backend, None, None) => {
                let (inputs, grid) = check_backend_inputs(&spec)?;
                backend = Some(grid);
                (inputs, None)
            }
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
        if backend.is_some() {
            if let Some((name, _)) = traces
                .iter()
                .find(|(_, t)| matches!(t, TraceTemplate::Decisions { .. }))
            {
                return Err(invalid(
                    format!("traces.{name}"),
                    "a recorded decision file needs artifact inputs; backend inputs hold no batch_decisions/ (use a generated trace: kind = \"fixed\", \"poisson\", ...)",
                ));
            }
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
            let mut gp = check_grid(gi, g, &spec, &traces, scale, backend.as_ref())?;
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
        let backend_digest = match BackendInputs::of(&inputs) {
            Some(b) => {
                let exe = backend_inputs::locate().map_err(|e| SpecError::Backend {
                    problem: e.to_string(),
                })?;
                let digest = backend_inputs::inputs_digest(&b, &exe.version).map_err(|e| {
                    SpecError::Backend {
                        problem: e.to_string(),
                    }
                })?;
                Some(BackendPlan { exe, digest })
            }
            None => None,
        };
        let mut plan = Plan {
            spec,
            inputs,
            traces,
            grids,
            file_digests: BTreeMap::new(),
            code_version: crate::code_version(),
            len: offset,
            backend: backend_digest,
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

    /// The inputs every task of the plan reads.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// The spec the plan was made from.
    pub fn spec(&self) -> &SweepSpec {
        &self.spec
    }

    /// For backend inputs: the binary that builds them and their digest.
    pub fn backend(&self) -> Option<&BackendPlan> {
        self.backend.as_ref()
    }

    /// For backend inputs: every file a task reads in the built folder (relative paths,
    /// sorted, each once). Empty for other inputs.
    pub fn backend_needed_files(&self) -> Vec<PathBuf> {
        if self.backend.is_none() {
            return Vec::new();
        }
        let mut files = std::collections::BTreeSet::new();
        // One task per (grid, model, dataset) suffices: the files depend on nothing else.
        for g in &self.grids {
            if let Some(t) = self.task(g.offset) {
                files.extend(t.spec.input_files());
            }
        }
        files.into_iter().collect()
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

    /// Whether task `index` is a live run (of a grid with `kind = "live"`).
    pub fn is_live(&self, index: usize) -> bool {
        self.grids
            .iter()
            .any(|g| g.live.is_some() && index >= g.offset && index < g.offset + g.len)
    }

    /// Whether any task of the plan is a live run.
    pub fn has_live(&self) -> bool {
        self.grids.iter().any(|g| g.live.is_some())
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

    /// Every task, in grid order, computed on `threads` threads (each task's key is a SHA-256
    /// of its canonical spec: about a microsecond's work each that a million-task sweep does
    /// a million times). The same tasks as [`Plan::tasks`].
    pub fn collect_tasks(&self, threads: usize) -> Vec<PlannedTask> {
        let threads = threads.clamp(1, 64);
        let chunk = self.len.div_ceil(threads).max(1);
        if threads == 1 || self.len < 4096 {
            return self.tasks().collect();
        }
        let parts: Vec<Vec<PlannedTask>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..self.len)
                .step_by(chunk)
                .map(|start| {
                    let end = (start + chunk).min(self.len);
                    s.spawn(move || (start..end).filter_map(|i| self.task(i)).collect())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut all = Vec::with_capacity(self.len);
        for p in parts {
            all.extend(p);
        }
        all
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
            Inputs::Backend { .. } => {
                if let Some(b) = &self.backend {
                    d.insert(DIGEST_KEY.to_string(), b.digest.clone());
                }
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
                    Inputs::Artifact { .. } | Inputs::Backend { .. } => None,
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
            live: g.live.clone(),
        }
    }
}
