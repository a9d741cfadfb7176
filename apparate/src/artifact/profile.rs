//! Profile pickles (spec §2.2) → per-batch-size latency tables `lcl[bs]` (spec §3.1, §3.2).
//!
//! Each profile is a tree of pickled `profiler.Profile` instances; with `keep_restore_state`
//! every node decodes as its attribute dict, `children` holding the child nodes. Latencies are
//! Python floats, or the int `0` for modules that took no measurable time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use serde_pickle::{HashableValue, Value};

use super::error::ArtifactError;
use super::value::{decode_pickle, describe, dict_get, float_of};
use crate::input_file::read_regular;
use crate::sim::{LatencyTable, LatencyTables, RampCost, BATCH_SIZES};
use pickle::lite::{self, Lite, V};

/// The largest latency (ms) a profile may hold for the modules the tables read: 10^6 ms, a
/// thousand seconds for one forward pass of one batch (the artifact's profiles hold tens to
/// hundreds of ms). Larger values, like negative ones, NaN and infinities, are refused.
pub const MAX_PROFILE_LATENCY_MS: f64 = 1e6;

/// Whether the artifact treats `arch` as a CV model (its name contains `vgg` or `resnet`);
/// everything else is NLP. This picks the profile layout here and the signal policy in the
/// simulator.
pub fn is_cv_arch(arch: &str) -> bool {
    arch.contains("vgg") || arch.contains("resnet")
}

/// Builds the latency tables for every batch size in [`BATCH_SIZES`] from the profile pickles
/// in `profile_dir`.
///
/// * NLP (`!is_cv_arch(arch)`): `{arch}_{bs}_earlyexit_profile.pickle`; the ramps are the
///   nodes named `branch_net` in pre-order, each giving
///   `(vanilla_latency_up_until_me, fwd_latency)`; `V` is the root's
///   `vanilla_latency_up_until_me`.
/// * CV: with `m = arch.split('_')[0]`, the vanilla tree `{m}_{bs}_profile.pickle` and the
///   early-exit tree `{m}_{bs}_earlyexit_profile.pickle`; every vanilla module whose path
///   leads to a `BranchPoint` in the early-exit tree is a ramp, giving (the vanilla module's
///   `vanilla_latency_up_until_me`, the `branch_net` child's `fwd_latency`); `V` is the vanilla
///   root's `fwd_latency_orig`.
///
/// A missing file is [`ArtifactError::MissingProfile`] naming the file and the batch size.
/// Every latency read must lie in `0 ..= MAX_PROFILE_LATENCY_MS`, the whole model's `V` must
/// be above 0, and no ramp may attach after the model ends or cost more than the whole model
/// (`v_r <= V`, `o_r <= V`); a refusal names the file holding the value and the node.
///
/// The batch sizes are read concurrently, each first by the fast path ([`pickle::lite`]); a batch
/// size it declines is read by the generic path, in batch-size order, so the result and the
/// first error are those of reading the batch sizes one after the other on the generic path.
pub fn read_latency_tables(profile_dir: &Path, arch: &str) -> Result<LatencyTables, ArtifactError> {
    let inputs: Arc<[TableInput]> = BATCH_SIZES
        .iter()
        .map(|&bs| TableInput::new(profile_dir, arch, bs))
        .collect();
    let fast = fast_tables(&inputs);
    let mut tables = Vec::with_capacity(BATCH_SIZES.len());
    for (input, fast) in inputs.iter().zip(fast) {
        tables.push(match fast {
            Some(table) => table,
            None => input.generic()?,
        });
    }
    // Invariant: `inputs` has one entry per batch size, in BATCH_SIZES order.
    #[allow(clippy::expect_used)]
    let tables = LatencyTables::new(tables).expect("one table per entry of BATCH_SIZES");
    Ok(tables)
}

/// The profile files [`read_latency_tables`] reads for batch size `bs`: the vanilla tree (CV
/// only), then the early-exit tree.
pub fn profile_paths(profile_dir: &Path, arch: &str, bs: usize) -> Vec<PathBuf> {
    let input = TableInput::new(profile_dir, arch, bs);
    input
        .vanilla
        .into_iter()
        .chain([input.early_exit])
        .collect()
}

/// The profile files of one batch size.
struct TableInput {
    bs: usize,
    /// CV: the vanilla tree `Q`.
    vanilla: Option<PathBuf>,
    /// The early-exit tree `P`.
    early_exit: PathBuf,
}

impl TableInput {
    fn new(profile_dir: &Path, arch: &str, bs: usize) -> TableInput {
        if is_cv_arch(arch) {
            let model = arch.split('_').next().unwrap_or(arch);
            TableInput {
                bs,
                vanilla: Some(profile_dir.join(format!("{model}_{bs}_profile.pickle"))),
                early_exit: profile_dir.join(format!("{model}_{bs}_earlyexit_profile.pickle")),
            }
        } else {
            TableInput {
                bs,
                vanilla: None,
                early_exit: profile_dir.join(format!("{arch}_{bs}_earlyexit_profile.pickle")),
            }
        }
    }

    /// The generic path: full value trees, every error worded.
    fn generic(&self) -> Result<LatencyTable, ArtifactError> {
        let p_path = &self.early_exit;
        match &self.vanilla {
            Some(q_path) => {
                let q = read_profile(q_path, self.bs)?;
                let p = read_profile(p_path, self.bs)?;
                cv_table(&ValueTree::new(q_path, &q), &ValueTree::new(p_path, &p))
            }
            None => nlp_table(&ValueTree::new(p_path, &read_profile(p_path, self.bs)?)),
        }
    }

    /// The fast path; `None` where it declines (unreadable files included), and then the
    /// generic path gives the result or the error.
    fn fast(&self) -> Option<LatencyTable> {
        let p_bytes = read_regular(&self.early_exit).ok()?;
        match &self.vanilla {
            Some(q_path) => {
                let q_bytes = read_regular(q_path).ok()?;
                fast_cv_table(&q_bytes, &p_bytes)
            }
            None => fast_nlp_table(&p_bytes),
        }
    }
}

/// The fast path for every batch size, on this thread and one helper thread, each taking the
/// next batch size not yet taken (a few hundred microseconds of work each; more threads cost
/// more to start than they save).
///
/// This thread never waits for the helper: on a busy machine the helper may start late or be
/// preempted, so batch sizes it took but has not finished are done here as well (the fast path
/// is deterministic, so either result is the same), and the helper finishes on its own.
fn fast_tables(inputs: &Arc<[TableInput]>) -> Vec<Option<LatencyTable>> {
    let shared = Arc::new(FastTables {
        inputs: Arc::clone(inputs),
        next: AtomicUsize::new(0),
        done: (0..inputs.len()).map(|_| OnceLock::new()).collect(),
    });
    let helper = Arc::clone(&shared);
    // Without a helper (none could be started), this thread does it all.
    let _ = std::thread::Builder::new()
        .name("profile-reader".into())
        .spawn(move || helper.work());
    shared.work();
    (0..inputs.len())
        .map(|i| match shared.done[i].get() {
            Some(table) => table.clone(),
            None => inputs[i].fast(),
        })
        .collect()
}

/// Batch sizes shared between [`fast_tables`] and its helper thread.
struct FastTables {
    inputs: Arc<[TableInput]>,
    /// The next batch size (index into `inputs`) not yet taken.
    next: AtomicUsize,
    /// The fast path's result for each batch size, once done.
    done: Vec<OnceLock<Option<LatencyTable>>>,
}

impl FastTables {
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let (Some(input), Some(done)) = (self.inputs.get(i), self.done.get(i)) else {
                return;
            };
            let _ = done.set(input.fast());
        }
    }
}

/// Spec §3.1 on one early-exit profile pickle, on the fast path.
pub(crate) fn fast_nlp_table(p_bytes: &[u8]) -> Option<LatencyTable> {
    let p = lite::decode(p_bytes, &PROFILE_KEYS, false)?;
    nlp_table(&LiteTree(&p)).ok()
}

/// Spec §3.2 on a vanilla and an early-exit profile pickle, on the fast path.
pub(crate) fn fast_cv_table(q_bytes: &[u8], p_bytes: &[u8]) -> Option<LatencyTable> {
    let q = lite::decode(q_bytes, &PROFILE_KEYS, false)?;
    let p = lite::decode(p_bytes, &PROFILE_KEYS, false)?;
    cv_table(&LiteTree(&q), &LiteTree(&p)).ok()
}

/// Spec §3.1 on one early-exit profile pickle held in memory, on the generic path.
#[cfg(test)]
pub(crate) fn generic_nlp_table(
    name: &Path,
    p_bytes: &[u8],
) -> Result<LatencyTable, ArtifactError> {
    let p = decode_pickle(name, p_bytes)?;
    nlp_table(&ValueTree::new(name, &p))
}

/// Spec §3.2 on two profile pickles held in memory, on the generic path.
#[cfg(test)]
pub(crate) fn generic_cv_table(
    q_name: &Path,
    q_bytes: &[u8],
    p_name: &Path,
    p_bytes: &[u8],
) -> Result<LatencyTable, ArtifactError> {
    let q = decode_pickle(q_name, q_bytes)?;
    let p = decode_pickle(p_name, p_bytes)?;
    cv_table(&ValueTree::new(q_name, &q), &ValueTree::new(p_name, &p))
}

/// [`read_latency_tables`] on the generic path only.
#[cfg(test)]
pub(crate) fn read_latency_tables_generic(
    profile_dir: &Path,
    arch: &str,
) -> Result<LatencyTables, ArtifactError> {
    let tables = BATCH_SIZES
        .map(|bs| TableInput::new(profile_dir, arch, bs).generic())
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    // Invariant: `inputs` has one entry per batch size, in BATCH_SIZES order.
    #[allow(clippy::expect_used)]
    let tables = LatencyTables::new(tables).expect("one table per entry of BATCH_SIZES");
    Ok(tables)
}

fn read_profile(path: &Path, bs: usize) -> Result<Value, ArtifactError> {
    let bytes = read_regular(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ArtifactError::MissingProfile {
                path: path.to_path_buf(),
                bs,
            }
        } else {
            ArtifactError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    decode_pickle(path, &bytes)
}

/// What the table algorithms read from a decoded profile tree. Both paths run the same
/// algorithms ([`nlp_table`], [`cv_table`]) on their own tree, so wherever every accessor
/// succeeds on both, they compute the same table.
trait ProfileTree<'t> {
    /// A `Profile` node (an attribute dict).
    type Node: Clone;
    /// The nodes of a `children` list, in order.
    type Kids: ExactSizeIterator<Item = Self::Node>;
    /// What the generic tree reports; the fast tree only says "not here".
    type Error;

    /// The root node.
    fn root(&self) -> Result<Self::Node, Self::Error>;
    /// A `str` attribute.
    fn str_attr(&self, node: &Self::Node, attr: Attr) -> Result<&'t str, Self::Error>;
    /// A latency in ms: a finite float, or an int (the profiles hold `0` for some modules).
    fn latency(&self, node: &Self::Node, attr: Attr) -> Result<f64, Self::Error>;
    /// The `children` list, every element a node.
    fn children(&self, node: &Self::Node) -> Result<Self::Kids, Self::Error>;
    /// No ramp in the tree.
    fn no_ramps(&self, what: &'static str) -> Self::Error;
    /// A leaf reached with components of `full_name` left.
    fn unresolvable(&self, node: &Self::Node, full_name: &str) -> Self::Error;
    /// A `BranchPoint` found at `full_name` names itself `found`.
    fn full_name_mismatch(&self, node: &Self::Node, full_name: &str, found: &str) -> Self::Error;
    /// A `BranchPoint` with no child named `name` among its `count` children.
    fn missing_child(&self, node: &Self::Node, name: &str, count: usize) -> Self::Error;
    /// A latency that is a valid number but impossible where it is: `expected` says why.
    fn bad_latency(
        &self,
        node: &Self::Node,
        attr: Attr,
        expected: String,
        found: f64,
    ) -> Self::Error;

    fn name(&self, node: &Self::Node) -> Result<&'t str, Self::Error> {
        self.str_attr(node, Attr::Name)
    }

    fn child_named(&self, node: &Self::Node, name: &str) -> Result<Self::Node, Self::Error> {
        let children = self.children(node)?;
        let count = children.len();
        for child in children {
            if self.name(&child)? == name {
                return Ok(child);
            }
        }
        Err(self.missing_child(node, name, count))
    }
}

/// The whole model's latency `V`, read at `attr` of `root`: above 0.
fn whole_model_ms<'t, T: ProfileTree<'t>>(
    tree: &T,
    root: &T::Node,
    attr: Attr,
) -> Result<f64, T::Error> {
    let v = tree.latency(root, attr)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(tree.bad_latency(
            root,
            attr,
            "the whole model's latency, above 0 ms".into(),
            v,
        ))
    }
}

/// A ramp's latency `x` (read at `attr` of `node`) against the whole model's `V`: neither the
/// vanilla work up to a ramp nor a ramp itself can take longer than the whole model.
fn within_model<'t, T: ProfileTree<'t>>(
    tree: &T,
    node: &T::Node,
    attr: Attr,
    x: f64,
    v: f64,
    v_from: &str,
) -> Result<f64, T::Error> {
    if x <= v {
        return Ok(x);
    }
    let what = match attr {
        Attr::FwdLatency => "a ramp cannot cost more than the final exit",
        _ => "a ramp cannot attach after the model ends",
    };
    Err(tree.bad_latency(
        node,
        attr,
        format!("at most the whole model's latency V = {v:?} ms ({v_from}): {what}"),
        x,
    ))
}

/// Spec §3.1: pre-order walk for `branch_net` nodes.
fn nlp_table<'t, T: ProfileTree<'t>>(tree: &T) -> Result<LatencyTable, T::Error> {
    let root = tree.root()?;
    let v_total = whole_model_ms(tree, &root, Attr::VanillaUpToMe)?;
    const V_FROM: &str = "the root's vanilla_latency_up_until_me";
    let mut ramps = Vec::new();
    // Explicit stack, children pushed in reverse: pre-order, root excluded.
    let mut pending: Vec<T::Node> = tree.children(&root)?.collect();
    pending.reverse();
    while let Some(node) = pending.pop() {
        if tree.name(&node)? == "branch_net" {
            let up_to = tree.latency(&node, Attr::VanillaUpToMe)?;
            let ramp = tree.latency(&node, Attr::FwdLatency)?;
            ramps.push(RampCost {
                vanilla_up_to_ms: within_model(
                    tree,
                    &node,
                    Attr::VanillaUpToMe,
                    up_to,
                    v_total,
                    V_FROM,
                )?,
                ramp_ms: within_model(tree, &node, Attr::FwdLatency, ramp, v_total, V_FROM)?,
            });
        }
        let at = pending.len();
        pending.extend(tree.children(&node)?);
        pending[at..].reverse();
    }
    if ramps.is_empty() {
        return Err(tree.no_ramps("no module is named \"branch_net\""));
    }
    Ok(LatencyTable {
        ramps,
        vanilla_ms: v_total,
    })
}

/// Spec §3.2: vanilla modules (tree Q) at the paths of `BranchPoint`s of the early-exit tree P.
fn cv_table<'t, T: ProfileTree<'t>>(q: &T, p: &T) -> Result<LatencyTable, T::Error> {
    let q_root = q.root()?;
    let v_total = whole_model_ms(q, &q_root, Attr::FwdLatencyOrig)?;
    let p_root = p.root()?;
    const V_FROM: &str = "the vanilla profile's fwd_latency_orig";
    let mut ramps = Vec::new();
    let mut resolved = HashMap::new();
    let mut pending = vec![q_root.clone()];
    while let Some(q_node) = pending.pop() {
        let full_name = q.str_attr(&q_node, Attr::FullName)?;
        if let Some(found) = lookup(p, &p_root, full_name, &mut resolved)? {
            if p.str_attr(&found, Attr::Type)? == "BranchPoint" {
                let p_full_name = p.str_attr(&found, Attr::FullName)?;
                if p_full_name != full_name {
                    return Err(p.full_name_mismatch(&found, full_name, p_full_name));
                }
                let branch = p.child_named(&found, "branch_net")?;
                let up_to = q.latency(&q_node, Attr::VanillaUpToMe)?;
                let ramp = p.latency(&branch, Attr::FwdLatency)?;
                ramps.push(RampCost {
                    vanilla_up_to_ms: within_model(
                        q,
                        &q_node,
                        Attr::VanillaUpToMe,
                        up_to,
                        v_total,
                        "its fwd_latency_orig",
                    )?,
                    ramp_ms: within_model(p, &branch, Attr::FwdLatency, ramp, v_total, V_FROM)?,
                });
            }
        }
        let at = pending.len();
        pending.extend(q.children(&q_node)?);
        pending[at..].reverse();
    }
    if ramps.is_empty() {
        return Err(p.no_ramps("no module of the vanilla profile is a \"BranchPoint\" here"));
    }
    Ok(LatencyTable {
        ramps,
        vanilla_ms: v_total,
    })
}

/// Resolves a dotted full name from the root of `root`'s tree, taking the first child with
/// each name in turn. `None` when some component has no matching child; an error when a leaf
/// is reached with components left (the original's assertion).
///
/// `resolved` remembers the node found for each name: resolving `a.b.c` after `a.b` takes
/// only the last step (the steps for `a.b` are the same, and succeeded).
fn lookup<'t, 'n, T: ProfileTree<'t>>(
    tree: &T,
    root: &T::Node,
    full_name: &'n str,
    resolved: &mut HashMap<&'n str, T::Node>,
) -> Result<Option<T::Node>, T::Error> {
    let (mut node, rest) = match full_name.rsplit_once('.') {
        Some((prefix, last)) => match resolved.get(prefix) {
            Some(node) => (node.clone(), last),
            None => (root.clone(), full_name),
        },
        None => (root.clone(), full_name),
    };
    for component in rest.split('.') {
        let children = tree.children(&node)?;
        if children.len() == 0 {
            return Err(tree.unresolvable(&node, full_name));
        }
        let mut next = None;
        for child in children {
            if tree.name(&child)? == component {
                next = Some(child);
                break;
            }
        }
        match next {
            Some(child) => node = child,
            None => return Ok(None),
        }
    }
    resolved.insert(full_name, node.clone());
    Ok(Some(node))
}

/// Whether `x` is a latency a profile may hold (see [`MAX_PROFILE_LATENCY_MS`]).
fn plausible_latency(x: f64) -> bool {
    (0.0..=MAX_PROFILE_LATENCY_MS).contains(&x)
}

/// The attributes the table algorithms read.
#[derive(Clone, Copy, Debug)]
enum Attr {
    Name,
    FullName,
    Type,
    FwdLatency,
    FwdLatencyOrig,
    VanillaUpToMe,
    Children,
}

/// The attribute names, in the order of [`Attr`] (the `lite` field slots).
const PROFILE_KEYS: [&str; 7] = [
    "name",
    "full_name",
    "type",
    "fwd_latency",
    "fwd_latency_orig",
    "vanilla_latency_up_until_me",
    "children",
];

impl Attr {
    fn key(self) -> &'static str {
        PROFILE_KEYS[self as usize]
    }
}

/// The fast path's tree: nodes are dict indices into a [`Lite`] arena.
struct LiteTree<'t>(&'t Lite);

/// The nodes of a `children` list of a [`LiteTree`].
struct LiteKids<'t>(lite::Elements<'t>);

impl Iterator for LiteKids<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        // Only lists of dicts are handed out; anything else reads as a node with no fields.
        self.0.next().map(|v| match v {
            V::Dict(d) => d,
            _ => u32::MAX,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for LiteKids<'_> {}

impl LiteTree<'_> {
    fn field(&self, node: u32, attr: Attr) -> Option<V> {
        self.0.field(node, attr as usize)
    }
}

impl<'t> ProfileTree<'t> for LiteTree<'t> {
    type Node = u32;
    type Kids = LiteKids<'t>;
    type Error = ();

    fn root(&self) -> Result<u32, ()> {
        match self.0.root() {
            V::Dict(d) => Ok(d),
            _ => Err(()),
        }
    }

    fn str_attr(&self, node: &u32, attr: Attr) -> Result<&'t str, ()> {
        match self.field(*node, attr) {
            Some(V::Str(s)) => self.0.str(s).ok_or(()),
            _ => Err(()),
        }
    }

    fn latency(&self, node: &u32, attr: Attr) -> Result<f64, ()> {
        // As `float_of`: a Python float or int (numpy scalars are left to the generic path).
        match self.field(*node, attr) {
            Some(V::Float(x)) if plausible_latency(x) => Ok(x),
            Some(V::Int(i)) if plausible_latency(i as f64) => Ok(i as f64),
            _ => Err(()),
        }
    }

    fn children(&self, node: &u32) -> Result<LiteKids<'t>, ()> {
        match self.field(*node, Attr::Children) {
            Some(V::List(l)) if self.0.all_dicts(l) => Ok(LiteKids(self.0.elements(l))),
            _ => Err(()),
        }
    }

    fn no_ramps(&self, _: &'static str) {}

    fn unresolvable(&self, _: &u32, _: &str) {}

    fn full_name_mismatch(&self, _: &u32, _: &str, _: &str) {}

    fn missing_child(&self, _: &u32, _: &str, _: usize) {}

    fn bad_latency(&self, _: &u32, _: Attr, _: String, _: f64) {}
}

/// The generic path's tree: `serde-pickle` values, errors naming the file and the node.
struct ValueTree<'v> {
    file: &'v Path,
    root: &'v Value,
}

impl<'v> ValueTree<'v> {
    fn new(file: &'v Path, root: &'v Value) -> ValueTree<'v> {
        ValueTree { file, root }
    }

    fn field(
        &self,
        node: &Node<'v>,
        attr: &str,
        expected: impl Into<String>,
        found: String,
    ) -> ArtifactError {
        ArtifactError::Field {
            path: self.file.to_path_buf(),
            at: node.place(attr),
            expected: expected.into(),
            found,
        }
    }

    fn attr(
        &self,
        node: &Node<'v>,
        attr: &str,
        expected: &str,
    ) -> Result<&'v Value, ArtifactError> {
        dict_get(node.attrs, attr)
            .ok_or_else(|| self.field(node, attr, expected, "no such attribute".into()))
    }
}

impl<'v> ProfileTree<'v> for ValueTree<'v> {
    type Node = Node<'v>;
    type Kids = std::vec::IntoIter<Node<'v>>;
    type Error = ArtifactError;

    fn root(&self) -> Result<Node<'v>, ArtifactError> {
        match self.root {
            Value::Dict(attrs) => Ok(Node {
                attrs,
                at: String::new(),
            }),
            other => Err(ArtifactError::Field {
                path: self.file.to_path_buf(),
                at: "top level".into(),
                expected: "a pickled profiler.Profile object".into(),
                found: describe(other),
            }),
        }
    }

    fn str_attr(&self, node: &Node<'v>, attr: Attr) -> Result<&'v str, ArtifactError> {
        let attr = attr.key();
        const EXPECTED: &str = "a str";
        match self.attr(node, attr, EXPECTED)? {
            Value::String(s) => Ok(s),
            other => Err(self.field(node, attr, EXPECTED, describe(other))),
        }
    }

    fn latency(&self, node: &Node<'v>, attr: Attr) -> Result<f64, ArtifactError> {
        let attr = attr.key();
        const EXPECTED: &str = "a latency in ms from 0 to 1e6 (float or int)";
        let v = self.attr(node, attr, EXPECTED)?;
        match float_of(v) {
            Some(x) if plausible_latency(x) => Ok(x),
            _ => Err(self.field(node, attr, EXPECTED, describe(v))),
        }
    }

    fn children(&self, node: &Node<'v>) -> Result<Self::Kids, ArtifactError> {
        const EXPECTED: &str = "a list of child Profile objects";
        let items = match self.attr(node, "children", EXPECTED)? {
            Value::List(items) => items,
            other => return Err(self.field(node, "children", EXPECTED, describe(other))),
        };
        let kids = items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let at = node.place(&format!("children[{i}]"));
                match v {
                    Value::Dict(attrs) => Ok(Node { attrs, at }),
                    other => Err(ArtifactError::Field {
                        path: self.file.to_path_buf(),
                        at,
                        expected: "a pickled profiler.Profile object".into(),
                        found: describe(other),
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(kids.into_iter())
    }

    fn no_ramps(&self, what: &'static str) -> ArtifactError {
        ArtifactError::NoRamps {
            path: self.file.to_path_buf(),
            what,
        }
    }

    fn unresolvable(&self, node: &Node<'v>, full_name: &str) -> ArtifactError {
        ArtifactError::UnresolvablePath {
            path: self.file.to_path_buf(),
            at: node.place_of_node(),
            full_name: full_name.to_owned(),
        }
    }

    fn full_name_mismatch(&self, node: &Node<'v>, full_name: &str, found: &str) -> ArtifactError {
        self.field(
            node,
            "full_name",
            format!("\"{full_name}\", the path it was found at"),
            format!("str {found:?}"),
        )
    }

    fn bad_latency(
        &self,
        node: &Node<'v>,
        attr: Attr,
        expected: String,
        found: f64,
    ) -> ArtifactError {
        self.field(node, attr.key(), expected, format!("{found:?}"))
    }

    fn missing_child(&self, node: &Node<'v>, name: &str, count: usize) -> ArtifactError {
        self.field(
            node,
            "children",
            format!("a child named \"{name}\" (the ramp of this BranchPoint)"),
            format!("none among {count} children"),
        )
    }
}

/// One `Profile` node of a [`ValueTree`]: its attribute dict and where it sits (for error
/// messages).
#[derive(Clone)]
struct Node<'v> {
    attrs: &'v BTreeMap<HashableValue, Value>,
    /// `children[2].children[0]`; empty for the root.
    at: String,
}

impl Node<'_> {
    /// Where the node itself is, for messages.
    fn place_of_node(&self) -> String {
        if self.at.is_empty() {
            "top level".into()
        } else {
            self.at.clone()
        }
    }

    fn place(&self, attr: &str) -> String {
        if self.at.is_empty() {
            attr.to_owned()
        } else {
            format!("{}.{attr}", self.at)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_pickle::SerOptions;

    use super::*;

    #[test]
    fn cv_arch_names() {
        assert!(is_cv_arch("resnet18_auburn"));
        assert!(is_cv_arch("vgg16_oxford"));
        assert!(!is_cv_arch("bert-base"));
        assert!(!is_cv_arch("distilbert-base"));
    }

    fn manifest_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn fixtures() -> PathBuf {
        manifest_dir().join("tests/fixtures/pickles")
    }

    /// A table as bits: `((v_r, o_r) per ramp, V)`.
    type Bits = (Vec<(u64, u64)>, u64);

    /// A table as bits, so that equality is bit-for-bit.
    fn bits(t: &LatencyTable) -> Bits {
        (
            t.ramps
                .iter()
                .map(|r| (r.vanilla_up_to_ms.to_bits(), r.ramp_ms.to_bits()))
                .collect(),
            t.vanilla_ms.to_bits(),
        )
    }

    fn all_bits(t: &LatencyTables) -> Vec<Bits> {
        t.iter().map(|(_, t)| bits(t)).collect()
    }

    /// Results of reading a profile directory, comparable bit for bit (errors by message).
    fn outcome(r: Result<LatencyTables, ArtifactError>) -> Result<Vec<Bits>, String> {
        r.map(|t| all_bits(&t)).map_err(|e| e.to_string())
    }

    /// Every profile directory: (directory, arch, whether every file there is one the fast
    /// path must handle).
    fn profile_dirs() -> Vec<(PathBuf, String, bool)> {
        let mut dirs = Vec::new();
        let golden = manifest_dir().join("../../shared/golden");
        assert!(golden.is_dir(), "golden data missing: {}", golden.display());
        let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&golden)
            .expect("golden dir")
            .map(|e| e.expect("golden entry").path())
            .filter(|p| p.join("run.json").is_file() && p.join("data").is_dir())
            .collect();
        scenarios.sort();
        for dir in scenarios {
            let run: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
                    .expect("run.json is JSON");
            let arch = run["flags"]["arch"].as_str().expect("arch").to_owned();
            let rel = run["profile_dir_relative_to_data"].as_str().expect("dir");
            dirs.push((dir.join("data").join(rel), arch, true));
        }
        assert_eq!(dirs.len(), 6, "the six simulator scenarios");
        let f = fixtures();
        for (sub, arch) in [
            ("profile_nlp", "tiny-bert"),
            ("profile_cv", "resnet8_somewhere"),
            ("profile_p2", "tiny-bert"),
            ("profile_p2", "resnet8"),
            ("profile_p5", "tiny-bert"),
            ("profile_p5", "resnet8"),
        ] {
            dirs.push((f.join(sub), arch.to_owned(), true));
        }
        for arch in ["strlat", "noramp"] {
            dirs.push((f.join("profile_bad"), arch.to_owned(), false));
        }
        dirs
    }

    /// The fast path handles every golden and good fixture profile, gives the generic path's
    /// tables bit for bit, and the combined reader (threads, fallback) gives what the generic
    /// path gives, errors included.
    #[test]
    fn fast_and_generic_paths_agree_on_every_golden_and_fixture_profile() {
        for (dir, arch, must_be_fast) in profile_dirs() {
            let label = format!("{} ({arch})", dir.display());
            for bs in BATCH_SIZES {
                let input = TableInput::new(&dir, &arch, bs);
                let generic = input.generic();
                match input.fast() {
                    Some(fast) => {
                        let generic = generic
                            .unwrap_or_else(|e| panic!("{label} bs {bs}: fast path read {e}"));
                        assert_eq!(bits(&fast), bits(&generic), "{label} bs {bs}");
                    }
                    None => assert!(!must_be_fast, "{label} bs {bs}: fast path declined"),
                }
            }
            assert_eq!(
                outcome(read_latency_tables(&dir, &arch)),
                outcome(read_latency_tables_generic(&dir, &arch)),
                "{label}"
            );
        }
    }

    #[test]
    fn protocols_2_and_5_give_the_protocol_4_tables() {
        let f = fixtures();
        for (sub4, arch) in [("profile_nlp", "tiny-bert"), ("profile_cv", "resnet8")] {
            let want = outcome(read_latency_tables(&f.join(sub4), arch));
            assert!(want.is_ok(), "{sub4}: {want:?}");
            for sub in ["profile_p2", "profile_p5"] {
                assert_eq!(
                    outcome(read_latency_tables(&f.join(sub), arch)),
                    want,
                    "{sub} {arch}"
                );
            }
        }
    }

    /// A scratch directory holding the NLP fixture profiles, removed on drop.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn with_nlp_fixtures(name: &str) -> ScratchDir {
            let dir =
                std::env::temp_dir().join(format!("worker-profile-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("scratch dir");
            for bs in BATCH_SIZES {
                let file = format!("tiny-bert_{bs}_earlyexit_profile.pickle");
                std::fs::copy(fixtures().join("profile_nlp").join(&file), dir.join(&file))
                    .expect("copy fixture");
            }
            ScratchDir(dir)
        }

        fn file(&self, bs: usize) -> PathBuf {
            self.0
                .join(format!("tiny-bert_{bs}_earlyexit_profile.pickle"))
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Batch sizes are read concurrently, but the error is the one of the smallest failing
    /// batch size, as when reading them in order.
    #[test]
    fn the_first_failing_batch_size_gives_the_error() {
        let scratch = ScratchDir::with_nlp_fixtures("first-error");
        // bs 4 cut short, bs 32 missing: the bs 4 error.
        let bytes = std::fs::read(scratch.file(4)).expect("fixture");
        std::fs::write(scratch.file(4), &bytes[..bytes.len() / 2]).expect("write");
        std::fs::remove_file(scratch.file(32)).expect("remove");
        let got = outcome(read_latency_tables(&scratch.0, "tiny-bert"));
        assert_eq!(
            got,
            outcome(read_latency_tables_generic(&scratch.0, "tiny-bert"))
        );
        let text = got.expect_err("an error");
        assert!(
            text.contains("tiny-bert_4_earlyexit_profile.pickle: corrupt pickle"),
            "{text}"
        );
        // bs 2 missing as well: now that one.
        std::fs::remove_file(scratch.file(2)).expect("remove");
        let got = outcome(read_latency_tables(&scratch.0, "tiny-bert"));
        assert_eq!(
            got,
            outcome(read_latency_tables_generic(&scratch.0, "tiny-bert"))
        );
        let text = got.expect_err("an error");
        assert!(
            text.contains("the profile for batch size 2 is missing"),
            "{text}"
        );
    }

    /// A file's name and bytes.
    type File = (PathBuf, Vec<u8>);

    /// Fixture and golden profile files for the corruption test: NLP files, and CV pairs as
    /// (vanilla, early-exit).
    fn corruption_inputs() -> &'static [(File, Option<File>)] {
        static INPUTS: std::sync::OnceLock<Vec<(File, Option<File>)>> = std::sync::OnceLock::new();
        INPUTS.get_or_init(read_corruption_inputs)
    }

    fn read_corruption_inputs() -> Vec<(File, Option<File>)> {
        let read = |p: PathBuf| {
            let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, b)
        };
        let f = fixtures();
        let golden = manifest_dir().join("../../shared/golden");
        let mut v = Vec::new();
        for p in [
            f.join("profile_nlp/tiny-bert_1_earlyexit_profile.pickle"),
            f.join("profile_p2/tiny-bert_2_earlyexit_profile.pickle"),
            golden.join(
                "nlp-distilbert-base-imdb/data/profile_pickles_bs/distilbert-base_1_earlyexit_profile.pickle",
            ),
        ] {
            v.push((read(p), None));
        }
        for (q, p) in [
            (
                f.join("profile_cv/resnet8_1_profile.pickle"),
                f.join("profile_cv/resnet8_1_earlyexit_profile.pickle"),
            ),
            (
                f.join("profile_p5/resnet8_4_profile.pickle"),
                f.join("profile_p5/resnet8_4_earlyexit_profile.pickle"),
            ),
        ] {
            v.push((read(q), Some(read(p))));
        }
        v
    }

    /// What the generic path gives for one NLP file or one CV pair.
    fn generic_of(first: (&Path, &[u8]), second: Option<(&Path, &[u8])>) -> Result<Bits, String> {
        match second {
            None => generic_nlp_table(first.0, first.1),
            Some(p) => generic_cv_table(first.0, first.1, p.0, p.1),
        }
        .map(|t| bits(&t))
        .map_err(|e| e.to_string())
    }

    fn fast_of(first: &[u8], second: Option<&[u8]>) -> Option<Bits> {
        match second {
            None => fast_nlp_table(first),
            Some(p) => fast_cv_table(first, p),
        }
        .map(|t| bits(&t))
    }

    fn corrupt(bytes: &mut Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>) {
        for &(at, b) in flips {
            let len = bytes.len();
            bytes[at % len] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
    }

    /// A profile-like tree for serde-pickle to write: mostly well-typed attributes, sometimes
    /// wrong ones, names from a small alphabet so that paths resolve and ramps exist. Full
    /// names are filled in by [`with_full_names`].
    fn arb_node() -> impl Strategy<Value = Value> {
        let name = prop_oneof![
            Just("a"),
            Just("b"),
            Just("branch_net"),
            Just("branched_module")
        ];
        let typ = prop_oneof![1 => Just("BranchPoint"), 5 => Just("Linear")];
        let latency = prop_oneof![
            30 => (0.0f64..10.0).prop_map(Value::F64),
            5 => (0i64..3).prop_map(Value::I64),
            1 => Just(Value::F64(f64::INFINITY)),
            1 => Just(Value::None),
            1 => Just(Value::String("fast".into())),
        ];
        let leaf = (
            name,
            typ,
            latency.clone(),
            latency.clone(),
            latency,
            0u8..40,
        )
            .prop_map(|(name, typ, fwd, orig, vanilla, flaw)| {
                let mut attrs: Vec<(&str, Value)> = vec![
                    ("name", Value::String(name.into())),
                    ("type", Value::String(typ.into())),
                    ("fwd_latency", fwd),
                    ("fwd_latency_orig", orig),
                    ("vanilla_latency_up_until_me", vanilla),
                    ("depth", Value::I64(1)),
                    ("children", Value::List(Vec::new())),
                ];
                match flaw {
                    0 => {
                        attrs.remove(0);
                    }
                    1 => attrs[0].1 = Value::I64(3),
                    2 => attrs[6].1 = Value::Tuple(Vec::new()),
                    3 => attrs[1].1 = Value::Bytes(b"BranchPoint".to_vec()),
                    _ => {}
                }
                node(attrs)
            });
        let tree = leaf.clone().prop_recursive(4, 32, 4, |inner| {
            (inner.clone(), prop::collection::vec(inner, 0..4), 0u8..40).prop_map(with_children)
        });
        // The root has children (mostly).
        (leaf, prop::collection::vec(tree, 1..5), 0u8..40).prop_map(with_children)
    }

    /// `parent` with `kids` as its children (a flawed list for `flaw == 0`).
    fn with_children((parent, kids, flaw): (Value, Vec<Value>, u8)) -> Value {
        let Value::Dict(mut attrs) = parent else {
            return parent;
        };
        let kids = match flaw {
            0 => Value::List(vec![Value::None]),
            _ => Value::List(kids),
        };
        attrs.insert(HashableValue::String("children".into()), kids);
        Value::Dict(attrs)
    }

    /// Sets every node's `full_name` to its path from the root (`model` for the root), except
    /// where `flaws` picks a node to get a wrong one or none.
    fn with_full_names(v: &mut Value, path: &str, flaws: &mut impl Iterator<Item = u8>) {
        let Value::Dict(attrs) = v else { return };
        let key = |k: &str| HashableValue::String(k.into());
        let full_name = match flaws.next().unwrap_or(9) {
            0 => None,
            1 => Some(Value::String("b.a".into())),
            2 => Some(Value::I64(1)),
            _ => Some(Value::String(
                if path.is_empty() { "model" } else { path }.into(),
            )),
        };
        if let Some(full_name) = full_name {
            attrs.insert(key("full_name"), full_name);
        }
        // A node with a `branch_net` child is a BranchPoint (mostly).
        let has_ramp = matches!(attrs.get(&key("children")), Some(Value::List(kids))
            if kids.iter().any(|k| matches!(k, Value::Dict(k)
                if k.get(&key("name")) == Some(&Value::String("branch_net".into())))));
        if has_ramp && flaws.next().unwrap_or(9) != 0 {
            attrs.insert(key("type"), Value::String("BranchPoint".into()));
        }
        if let Some(Value::List(kids)) = attrs.get_mut(&key("children")) {
            for kid in kids {
                let name = match kid {
                    Value::Dict(k) => match k.get(&key("name")) {
                        Some(Value::String(n)) => n.clone(),
                        _ => "?".into(),
                    },
                    _ => continue,
                };
                let kid_path = if path.is_empty() {
                    name
                } else {
                    format!("{path}.{name}")
                };
                with_full_names(kid, &kid_path, flaws);
            }
        }
    }

    /// A vanilla tree Q and an early-exit tree P: often the same tree (so every path
    /// resolves), else two independent ones.
    fn arb_trees() -> impl Strategy<Value = (Value, Value)> {
        (
            arb_node(),
            arb_node(),
            any::<bool>(),
            prop::collection::vec(0u8..60, 64),
        )
            .prop_map(|(mut q, p, same, flaws)| {
                let mut flaws = flaws.into_iter().cycle();
                with_full_names(&mut q, "", &mut flaws);
                let mut p = if same { q.clone() } else { p };
                with_full_names(&mut p, "", &mut flaws);
                (q, p)
            })
    }

    fn node(attrs: Vec<(&str, Value)>) -> Value {
        Value::Dict(
            attrs
                .into_iter()
                .map(|(k, v)| (HashableValue::String(k.into()), v))
                .collect(),
        )
    }

    fn pickled(v: &Value) -> Vec<u8> {
        serde_pickle::value_to_vec(v, SerOptions::new()).expect("serialize")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Corrupted profile bytes: the fast path never panics, and where it gives a table the
        /// generic path gives the same table (so the reader's result, fast or generic, is the
        /// generic path's, success or failure).
        #[test]
        fn corrupted_profiles_never_make_the_paths_disagree(
            which in 0usize..5,
            flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in prop::option::weighted(0.2, any::<usize>()),
            corrupt_second in any::<bool>(),
        ) {
            let ((name, bytes), second) = &corruption_inputs()[which];
            let mut first = bytes.clone();
            let mut second = second.clone();
            match (&mut second, corrupt_second) {
                (Some((_, b)), true) => corrupt(b, &flips, cut),
                _ => corrupt(&mut first, &flips, cut),
            }
            let second_ref = second.as_ref().map(|(p, b)| (p.as_path(), b.as_slice()));
            if let Some(fast) = fast_of(&first, second_ref.map(|s| s.1)) {
                prop_assert_eq!(Ok(fast), generic_of((name, &first), second_ref));
            }
        }

        /// Random profile-like trees (plain dicts, as serde-pickle writes them): wherever the
        /// fast path gives a table, the generic path gives the same.
        #[test]
        fn random_trees_never_make_the_paths_disagree((q, p) in arb_trees()) {
            let (qb, pb) = (pickled(&q), pickled(&p));
            let (qn, pn) = (Path::new("q.pickle"), Path::new("p.pickle"));
            if let Some(fast) = fast_of(&pb, None) {
                prop_assert_eq!(Ok(fast), generic_of((pn, &pb), None));
            }
            if let Some(fast) = fast_of(&qb, Some(&pb)) {
                prop_assert_eq!(Ok(fast), generic_of((qn, &qb), Some((pn, &pb))));
            }
        }
    }
}
