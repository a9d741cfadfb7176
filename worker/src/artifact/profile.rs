//! Profile pickles (spec §2.2) → per-batch-size latency tables `lcl[bs]` (spec §3.1, §3.2).
//!
//! Each profile is a tree of pickled `profiler.Profile` instances; with `keep_restore_state`
//! every node decodes as its attribute dict, `children` holding the child nodes. Latencies are
//! Python floats, or the int `0` for modules that took no measurable time.

use std::collections::BTreeMap;
use std::path::Path;

use serde_pickle::{HashableValue, Value};

use super::error::ArtifactError;
use super::value::{decode_pickle, describe, dict_get, float_of};
use crate::sim::{LatencyTable, LatencyTables, RampCost, BATCH_SIZES};

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
pub fn read_latency_tables(profile_dir: &Path, arch: &str) -> Result<LatencyTables, ArtifactError> {
    let mut tables = Vec::with_capacity(BATCH_SIZES.len());
    for bs in BATCH_SIZES {
        let table = if is_cv_arch(arch) {
            let model = arch.split('_').next().unwrap_or(arch);
            let vanilla = profile_dir.join(format!("{model}_{bs}_profile.pickle"));
            let early_exit = profile_dir.join(format!("{model}_{bs}_earlyexit_profile.pickle"));
            let q = read_profile(&vanilla, bs)?;
            let p = read_profile(&early_exit, bs)?;
            cv_table(&vanilla, &q, &early_exit, &p)?
        } else {
            let early_exit = profile_dir.join(format!("{arch}_{bs}_earlyexit_profile.pickle"));
            let p = read_profile(&early_exit, bs)?;
            nlp_table(&early_exit, &p)?
        };
        tables.push(table);
    }
    Ok(LatencyTables::new(tables).expect("one table per entry of BATCH_SIZES"))
}

fn read_profile(path: &Path, bs: usize) -> Result<Value, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|source| {
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

/// Spec §3.1: pre-order walk for `branch_net` nodes.
fn nlp_table(path: &Path, root: &Value) -> Result<LatencyTable, ArtifactError> {
    let root = Node::root(path, root)?;
    let mut ramps = Vec::new();
    // Explicit stack, children pushed in reverse: pre-order, root excluded.
    let mut pending: Vec<Node<'_>> = root.children()?.into_iter().rev().collect();
    while let Some(node) = pending.pop() {
        if node.name()? == "branch_net" {
            ramps.push(RampCost {
                vanilla_up_to_ms: node.latency("vanilla_latency_up_until_me")?,
                ramp_ms: node.latency("fwd_latency")?,
            });
        }
        pending.extend(node.children()?.into_iter().rev());
    }
    if ramps.is_empty() {
        return Err(ArtifactError::NoRamps {
            path: path.to_path_buf(),
            what: "no module is named \"branch_net\"",
        });
    }
    Ok(LatencyTable {
        ramps,
        vanilla_ms: root.latency("vanilla_latency_up_until_me")?,
    })
}

/// Spec §3.2: vanilla modules (tree Q) at the paths of `BranchPoint`s of the early-exit tree P.
fn cv_table(
    q_path: &Path,
    q: &Value,
    p_path: &Path,
    p: &Value,
) -> Result<LatencyTable, ArtifactError> {
    let q_root = Node::root(q_path, q)?;
    let p_root = Node::root(p_path, p)?;
    let mut ramps = Vec::new();
    let mut pending = vec![q_root.clone()];
    while let Some(q_node) = pending.pop() {
        let full_name = q_node.str_attr("full_name")?;
        if let Some(found) = lookup(&p_root, full_name)? {
            if found.str_attr("type")? == "BranchPoint" {
                let p_full_name = found.str_attr("full_name")?;
                if p_full_name != full_name {
                    return Err(found.field(
                        "full_name",
                        format!("\"{full_name}\", the path it was found at"),
                        format!("str {p_full_name:?}"),
                    ));
                }
                let branch = found.child_named("branch_net")?;
                ramps.push(RampCost {
                    vanilla_up_to_ms: q_node.latency("vanilla_latency_up_until_me")?,
                    ramp_ms: branch.latency("fwd_latency")?,
                });
            }
        }
        pending.extend(q_node.children()?.into_iter().rev());
    }
    if ramps.is_empty() {
        return Err(ArtifactError::NoRamps {
            path: p_path.to_path_buf(),
            what: "no module of the vanilla profile is a \"BranchPoint\" here",
        });
    }
    Ok(LatencyTable {
        ramps,
        vanilla_ms: q_root.latency("fwd_latency_orig")?,
    })
}

/// Resolves a dotted full name from the root of `root`'s tree, taking the first child with
/// each name in turn. `None` when some component has no matching child; an error when a leaf
/// is reached with components left (the original's assertion).
fn lookup<'v>(root: &Node<'v>, full_name: &str) -> Result<Option<Node<'v>>, ArtifactError> {
    let mut node = root.clone();
    for component in full_name.split('.') {
        let children = node.children()?;
        if children.is_empty() {
            return Err(ArtifactError::UnresolvablePath {
                path: node.file.to_path_buf(),
                at: node.place_of_node(),
                full_name: full_name.to_owned(),
            });
        }
        let mut next = None;
        for child in children {
            if child.name()? == component {
                next = Some(child);
                break;
            }
        }
        match next {
            Some(child) => node = child,
            None => return Ok(None),
        }
    }
    Ok(Some(node))
}

/// One `Profile` node: its attribute dict and where it sits (for error messages).
#[derive(Clone)]
struct Node<'v> {
    attrs: &'v BTreeMap<HashableValue, Value>,
    /// `children[2].children[0]`; empty for the root.
    at: String,
    file: &'v Path,
}

impl<'v> Node<'v> {
    fn root(file: &'v Path, value: &'v Value) -> Result<Node<'v>, ArtifactError> {
        match value {
            Value::Dict(attrs) => Ok(Node {
                attrs,
                at: String::new(),
                file,
            }),
            other => Err(ArtifactError::Field {
                path: file.to_path_buf(),
                at: "top level".into(),
                expected: "a pickled profiler.Profile object".into(),
                found: describe(other),
            }),
        }
    }

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

    fn field(&self, attr: &str, expected: impl Into<String>, found: String) -> ArtifactError {
        ArtifactError::Field {
            path: self.file.to_path_buf(),
            at: self.place(attr),
            expected: expected.into(),
            found,
        }
    }

    fn attr(&self, attr: &str, expected: &str) -> Result<&'v Value, ArtifactError> {
        dict_get(self.attrs, attr)
            .ok_or_else(|| self.field(attr, expected, "no such attribute".into()))
    }

    fn str_attr(&self, attr: &str) -> Result<&'v str, ArtifactError> {
        const EXPECTED: &str = "a str";
        match self.attr(attr, EXPECTED)? {
            Value::String(s) => Ok(s),
            other => Err(self.field(attr, EXPECTED, describe(other))),
        }
    }

    fn name(&self) -> Result<&'v str, ArtifactError> {
        self.str_attr("name")
    }

    /// A latency in ms: a finite float, or an int (the profiles hold `0` for some modules).
    fn latency(&self, attr: &str) -> Result<f64, ArtifactError> {
        const EXPECTED: &str = "a finite latency in ms (float or int)";
        let v = self.attr(attr, EXPECTED)?;
        match float_of(v) {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(self.field(attr, EXPECTED, describe(v))),
        }
    }

    fn children(&self) -> Result<Vec<Node<'v>>, ArtifactError> {
        const EXPECTED: &str = "a list of child Profile objects";
        let items = match self.attr("children", EXPECTED)? {
            Value::List(items) => items,
            other => return Err(self.field("children", EXPECTED, describe(other))),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let at = self.place(&format!("children[{i}]"));
                match v {
                    Value::Dict(attrs) => Ok(Node {
                        attrs,
                        at,
                        file: self.file,
                    }),
                    other => Err(ArtifactError::Field {
                        path: self.file.to_path_buf(),
                        at,
                        expected: "a pickled profiler.Profile object".into(),
                        found: describe(other),
                    }),
                }
            })
            .collect()
    }

    fn child_named(&self, name: &str) -> Result<Node<'v>, ArtifactError> {
        let children = self.children()?;
        let count = children.len();
        for child in children {
            if child.name()? == name {
                return Ok(child);
            }
        }
        Err(self.field(
            "children",
            format!("a child named \"{name}\" (the ramp of this BranchPoint)"),
            format!("none among {count} children"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cv_arch_names() {
        assert!(is_cv_arch("resnet18_auburn"));
        assert!(is_cv_arch("vgg16_oxford"));
        assert!(!is_cv_arch("bert-base"));
        assert!(!is_cv_arch("distilbert-base"));
    }
}
