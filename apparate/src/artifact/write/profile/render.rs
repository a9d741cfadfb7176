//! Rendering: the `profiler.Profile` objects (pickle trees) of a model's module tree in the
//! vanilla or early-exit form, with the latencies of [`Timing`] and the latency table's ramps.

use super::arch::Architecture;
use super::timing::Timing;
use super::tree::{weight, Body, Module};
use pickle::write::PyValue;

/// `fwd_latency / fwd_latency_orig` for every module but the root (the artifact's profiles
/// normalise measured times by about this much).
const CALIBRATION: f64 = 1.025;
/// Shared-object ids within one profile pickle.
const SHARED_EMPTY_CHILDREN: u32 = 0;
const SHARED_EMPTY_RAMPS: u32 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// The CV vanilla tree: sites are their plain modules.
    Vanilla,
    /// The early-exit tree: sites are `BranchPoint`s.
    EarlyExit,
}

/// A rendered node: the `Profile` object, its `fwd_latency` and its
/// `vanilla_latency_up_until_me`.
struct Rendered {
    value: PyValue,
    fwd: f64,
    vanilla: f64,
}

pub(super) struct Renderer<'a> {
    timing: &'a Timing,
    next_leaf: usize,
    ramp_ms: &'a [f64],
    vanilla_up_to: &'a [f64],
    /// `o_0, ..., o_r` of the ramps rendered so far.
    ramps_so_far: Vec<f64>,
    mode: Mode,
    /// The root's `fwd_latency` (for `fwd_latency_pctg`).
    root_fwd: f64,
}

/// The attributes of one `Profile` node other than its children.
struct Attrs<'m> {
    module: &'m Module,
    name: &'m str,
    ty: &'m str,
    full_name: &'m str,
    depth: usize,
    fwd: PyValue,
    fwd_orig: PyValue,
    fwd_value: f64,
    vanilla: f64,
    ramps: PyValue,
    children: PyValue,
}

fn shape_value(s: &Option<Vec<i64>>) -> PyValue {
    match s {
        Some(dims) => PyValue::List(dims.iter().map(|&d| PyValue::Int(d)).collect()),
        None => PyValue::None,
    }
}

fn empty_shared(id: u32) -> PyValue {
    PyValue::Shared {
        id,
        value: Box::new(PyValue::List(Vec::new())),
    }
}

fn child_full_name(parent: &str, name: &str, depth: usize) -> String {
    if depth == 0 {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

impl<'a> Renderer<'a> {
    /// A renderer of the `mode` tree with the leaf latencies of `timing` and the latency
    /// table's ramps (`o_r`: `ramp_ms`, `v_r`: `vanilla_up_to`).
    pub(super) fn new(
        timing: &'a Timing,
        ramp_ms: &'a [f64],
        vanilla_up_to: &'a [f64],
        mode: Mode,
    ) -> Renderer<'a> {
        Renderer {
            timing,
            next_leaf: 0,
            ramp_ms,
            vanilla_up_to,
            ramps_so_far: Vec::new(),
            mode,
            root_fwd: 0.0,
        }
    }

    /// The root `Profile` of `arch`, whose vanilla path takes `vanilla_ms` (`V`).
    pub(super) fn root(&mut self, arch: &Architecture, vanilla_ms: f64) -> PyValue {
        let ramps_total = self.ramp_ms.iter().fold(0.0, |acc, &o| acc + o);
        let (root_fwd, ty) = match self.mode {
            Mode::Vanilla => (vanilla_ms, arch.vanilla_type),
            Mode::EarlyExit => (vanilla_ms + ramps_total, arch.ee_type),
        };
        self.root_fwd = root_fwd;
        let m = &arch.root;
        let Body::Container(children) = &m.body else {
            unreachable!("every architecture's root is a container")
        };
        let rendered: Vec<Rendered> = children
            .iter()
            .map(|c| self.node(c, &c.name, "model", 1))
            .collect();
        // The root's vanilla time is the whole vanilla path, which ends exactly on V.
        let vanilla = rendered.last().map_or(vanilla_ms, |r| r.vanilla);
        let params: i64 = match self.mode {
            Mode::Vanilla => vanilla_params(m),
            Mode::EarlyExit => m_params_with_ramps(m),
        };
        let macs: i64 = match self.mode {
            Mode::Vanilla => vanilla_macs(m),
            Mode::EarlyExit => m_macs_with_ramps(m),
        };
        let attrs = Attrs {
            module: m,
            name: "model",
            ty,
            full_name: "model",
            depth: 0,
            fwd: PyValue::Float(root_fwd),
            fwd_orig: PyValue::Float(root_fwd),
            fwd_value: root_fwd,
            vanilla,
            ramps: empty_shared(SHARED_EMPTY_RAMPS),
            children: PyValue::List(rendered.into_iter().map(|r| r.value).collect()),
        };
        profile(&attrs, params, macs, self.root_fwd)
    }

    /// Renders `m` (named `name`, for the branched-module rename) under `parent_full`.
    fn node(&mut self, m: &Module, name: &str, parent_full: &str, depth: usize) -> Rendered {
        let full_name = child_full_name(parent_full, name, depth - 1);
        match &m.body {
            Body::Leaf { .. } => {
                let (fwd, vanilla) = self.timing.leaves[self.next_leaf];
                self.next_leaf += 1;
                let (fwd_v, fwd_orig_v, fwd_value) = match fwd {
                    Some(d) => (PyValue::Float(d), PyValue::Float(d / CALIBRATION), d),
                    None => (PyValue::Int(0), PyValue::Int(0), 0.0),
                };
                let attrs = Attrs {
                    module: m,
                    name,
                    ty: &m.ty,
                    full_name: &full_name,
                    depth,
                    fwd: fwd_v,
                    fwd_orig: fwd_orig_v,
                    fwd_value,
                    vanilla,
                    ramps: empty_shared(SHARED_EMPTY_RAMPS),
                    children: empty_shared(SHARED_EMPTY_CHILDREN),
                };
                Rendered {
                    value: profile(&attrs, m.params, m.macs, self.root_fwd),
                    fwd: fwd_value,
                    vanilla,
                }
            }
            Body::Container(children) => {
                let rendered: Vec<Rendered> = children
                    .iter()
                    .map(|c| self.node(c, &c.name, &full_name, depth + 1))
                    .collect();
                self.container(m, name, &m.ty, &full_name, depth, rendered)
            }
            Body::Site { r, module, ramp } => match self.mode {
                Mode::Vanilla => self.node(module, name, parent_full, depth),
                Mode::EarlyExit => {
                    let branched = self.node(module, "branched_module", &full_name, depth + 1);
                    let branch = self.ramp(ramp, *r, &full_name, depth + 1);
                    self.container(
                        m,
                        name,
                        "BranchPoint",
                        &full_name,
                        depth,
                        vec![branched, branch],
                    )
                }
            },
        }
    }

    fn container(
        &self,
        m: &Module,
        name: &str,
        ty: &str,
        full_name: &str,
        depth: usize,
        rendered: Vec<Rendered>,
    ) -> Rendered {
        let fwd = rendered.iter().fold(0.0, |acc, r| acc + r.fwd);
        let vanilla = rendered.last().map_or(0.0, |r| r.vanilla);
        let fwd_orig = if m.ty == "ModuleList" {
            PyValue::Int(0)
        } else {
            PyValue::Float(fwd / CALIBRATION)
        };
        let (params, macs) = match self.mode {
            Mode::Vanilla => (vanilla_params(m), vanilla_macs(m)),
            Mode::EarlyExit => (m_params_with_ramps(m), m_macs_with_ramps(m)),
        };
        let children = if rendered.is_empty() {
            empty_shared(SHARED_EMPTY_CHILDREN)
        } else {
            PyValue::List(rendered.into_iter().map(|r| r.value).collect())
        };
        let attrs = Attrs {
            module: m,
            name,
            ty,
            full_name,
            depth,
            fwd: PyValue::Float(fwd),
            fwd_orig,
            fwd_value: fwd,
            vanilla,
            ramps: empty_shared(SHARED_EMPTY_RAMPS),
            children,
        };
        Rendered {
            value: profile(&attrs, params, macs, self.root_fwd),
            fwd,
            vanilla,
        }
    }

    /// The ramp `branch_net` of site `r`: `fwd_latency = o_r`, vanilla time `v_r` throughout,
    /// the ramp latencies seen so far.
    fn ramp(&mut self, m: &Module, r: usize, parent_full: &str, depth: usize) -> Rendered {
        let o = self.ramp_ms[r];
        let v = self.vanilla_up_to[r];
        self.ramps_so_far.push(o);
        let full_name = format!("{parent_full}.branch_net");
        let Body::Container(children) = &m.body else {
            unreachable!("every ramp is a container")
        };
        let total: f64 = children.iter().map(ramp_weight).sum();
        let child_values: Vec<PyValue> = children
            .iter()
            .map(|c| self.ramp_part(c, &full_name, depth + 1, o, total, v))
            .collect();
        let attrs = Attrs {
            module: m,
            name: "branch_net",
            ty: &m.ty,
            full_name: &full_name,
            depth,
            fwd: PyValue::Float(o),
            fwd_orig: PyValue::Float(o / CALIBRATION),
            fwd_value: o,
            vanilla: v,
            ramps: PyValue::List(
                self.ramps_so_far
                    .iter()
                    .map(|&x| PyValue::Float(x))
                    .collect(),
            ),
            children: PyValue::List(child_values),
        };
        Rendered {
            value: profile(&attrs, m.params, m.macs, self.root_fwd),
            fwd: o,
            vanilla: v,
        }
    }

    /// A module inside a ramp: its share of the ramp's latency `o` by weight.
    fn ramp_part(
        &self,
        m: &Module,
        parent_full: &str,
        depth: usize,
        o: f64,
        total: f64,
        v: f64,
    ) -> PyValue {
        let full_name = format!("{parent_full}.{}", m.name);
        let (w, children) = match &m.body {
            Body::Leaf { weight, .. } => (*weight, empty_shared(SHARED_EMPTY_CHILDREN)),
            Body::Container(kids) => {
                let sub: f64 = kids.iter().map(ramp_weight).sum();
                let share = o * weight::LINEAR / total;
                let values = kids
                    .iter()
                    .map(|c| self.ramp_part(c, &full_name, depth + 1, share, sub, v))
                    .collect();
                (weight::LINEAR, PyValue::List(values))
            }
            Body::Site { .. } => unreachable!("ramps hold no sites"),
        };
        let (fwd, fwd_orig, fwd_value) = if w > 0.0 && total > 0.0 {
            let d = o * w / total;
            (PyValue::Float(d), PyValue::Float(d / CALIBRATION), d)
        } else {
            (PyValue::Int(0), PyValue::Int(0), 0.0)
        };
        let attrs = Attrs {
            module: m,
            name: &m.name,
            ty: &m.ty,
            full_name: &full_name,
            depth,
            fwd,
            fwd_orig,
            fwd_value,
            vanilla: v,
            ramps: empty_shared(SHARED_EMPTY_RAMPS),
            children,
        };
        profile(&attrs, m.params, m.macs, self.root_fwd)
    }
}

/// A ramp part's share weight: a leaf's type weight, a container's that of a linear layer.
fn ramp_weight(m: &Module) -> f64 {
    match m.body {
        Body::Leaf { weight, .. } => weight,
        _ => weight::LINEAR,
    }
}

fn vanilla_params(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, .. } => vanilla_params(module),
        Body::Container(children) => children.iter().map(vanilla_params).sum(),
        Body::Leaf { .. } => m.params,
    }
}

fn vanilla_macs(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, .. } => vanilla_macs(module),
        Body::Container(children) => children.iter().map(vanilla_macs).sum(),
        Body::Leaf { .. } => m.macs,
    }
}

fn m_params_with_ramps(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, ramp, .. } => m_params_with_ramps(module) + ramp.params,
        Body::Container(children) => children.iter().map(m_params_with_ramps).sum(),
        Body::Leaf { .. } => m.params,
    }
}

fn m_macs_with_ramps(m: &Module) -> i64 {
    match &m.body {
        Body::Site { module, ramp, .. } => m_macs_with_ramps(module) + ramp.macs,
        Body::Container(children) => children.iter().map(m_macs_with_ramps).sum(),
        Body::Leaf { .. } => m.macs,
    }
}

/// One `profiler.Profile` instance, attributes in the artifact's order.
fn profile(a: &Attrs<'_>, params: i64, macs: i64, root_fwd: f64) -> PyValue {
    let leaf_bytes = |s: &Option<Vec<i64>>| match s {
        Some(_) => PyValue::Int(4),
        None => PyValue::None,
    };
    let pctg = if root_fwd != 0.0 {
        100.0 * a.fwd_value / root_fwd
    } else {
        0.0
    };
    let state = PyValue::str_dict(vec![
        ("name", PyValue::str(a.name)),
        ("full_name", PyValue::str(a.full_name)),
        ("type", PyValue::str(a.ty)),
        ("depth", PyValue::Int(a.depth as i64)),
        ("num_params", PyValue::Int(params)),
        ("num_params_pctg", PyValue::None),
        ("input_shape", shape_value(&a.module.input_shape)),
        ("output_shape", shape_value(&a.module.output_shape)),
        ("input_elem_bytes", leaf_bytes(&a.module.input_shape)),
        ("output_elem_bytes", leaf_bytes(&a.module.output_shape)),
        ("fwd_latency", a.fwd.clone()),
        ("fwd_latency_orig", a.fwd_orig.clone()),
        ("fwd_latency_pctg", PyValue::Float(pctg)),
        ("vanilla_latency_up_until_me", PyValue::Float(a.vanilla)),
        ("ramp_latencies_up_until_me", a.ramps.clone()),
        ("macs", PyValue::Int(macs)),
        ("macs_pctg", PyValue::None),
        ("fwd_flops", PyValue::Int(2 * macs)),
        ("fwd_flops_pctg", PyValue::None),
        ("children", a.children.clone()),
    ]);
    PyValue::Object {
        module: "profiler".into(),
        class: "Profile".into(),
        state: Box::new(state),
    }
}
