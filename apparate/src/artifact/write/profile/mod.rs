//! Profile pickles (spec §2.2) from latency tables: model-shaped trees of `profiler.Profile`
//! instances from which [`read_latency_tables`](crate::artifact::read_latency_tables) (and the
//! artifact's controller) recover the table bit for bit.
//!
//! The tree follows the model's PyTorch module structure (torchvision ResNets and VGGs,
//! DistilBERT / BERT / GPT-2 with highway ramps): a ramp site is a ResNet block, a VGG ReLU in
//! `features`, or a transformer layer. Every module gets all attributes of the artifact's
//! `Profile` class (`name, full_name, type, depth, num_params, num_params_pctg, input_shape,
//! output_shape, input_elem_bytes, output_elem_bytes, fwd_latency, fwd_latency_orig,
//! fwd_latency_pctg, vanilla_latency_up_until_me, ramp_latencies_up_until_me, macs,
//! macs_pctg, fwd_flops, fwd_flops_pctg, children`), with the artifact's quirks: leaves share
//! one empty `children` list and non-ramp modules one empty `ramp_latencies_up_until_me`
//! list; Dropout / Flatten leaves take the int `0`; a `ModuleList`'s `fwd_latency_orig` is the
//! int `0`.
//!
//! Latencies: the table fixes the values the readers use (spec §3):
//!
//! * CV vanilla tree (`{m}_{bs}_profile.pickle`): the site module's
//!   `vanilla_latency_up_until_me` is `v_r`, the root's `fwd_latency_orig` is `V`.
//! * CV early-exit tree (`{m}_{bs}_earlyexit_profile.pickle`): each site is a `BranchPoint`
//!   at the site's path, with children `branched_module` (the site module) and `branch_net`
//!   (the ramp, `fwd_latency = o_r`).
//! * NLP early-exit tree: `branch_net.vanilla_latency_up_until_me = v_r`,
//!   `branch_net.fwd_latency = o_r`, root `vanilla_latency_up_until_me = V`.
//!
//! The other modules' latencies are made up consistently: the vanilla time between two sites
//! is split over the modules in between by fixed per-type weights, each module's
//! `vanilla_latency_up_until_me` is the running sum (ending exactly on the table's values),
//! containers add up their children, and `fwd_latency_orig` is `fwd_latency` divided by a
//! calibration factor.
//!
//! The module is split along those lines: [`tree`] holds the module-tree vocabulary (modules,
//! ramp sites, the builder of leaves and the latency weights of module types), [`arch`] the
//! trees of each model family, [`timing`] the made-up latencies of the vanilla leaves and
//! [`render`] the `Profile` objects built from a tree and its latencies.

mod arch;
mod render;
mod timing;
mod tree;

use std::path::{Path, PathBuf};

use super::{write_file, WriteError};
use crate::artifact::is_cv_arch;
use crate::sim::{LatencyTable, LatencyTables};
use arch::Architecture;
use pickle::write::PyValue;
use render::{Mode, Renderer};
use timing::Timing;

/// The profile pickles of one model at one batch size.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileTrees {
    /// CV only: the vanilla tree, `{m}_{bs}_profile.pickle`.
    pub vanilla: Option<PyValue>,
    /// The early-exit tree, `{m}_{bs}_earlyexit_profile.pickle`.
    pub early_exit: PyValue,
}

/// The profile file names of `model` at batch size `bs`: the vanilla tree (CV only) and the
/// early-exit tree.
pub fn profile_file_names(model: &str, bs: usize) -> (Option<String>, String) {
    let vanilla = is_cv_arch(model).then(|| format!("{model}_{bs}_profile.pickle"));
    (vanilla, format!("{model}_{bs}_earlyexit_profile.pickle"))
}

/// Writes the profile pickles of `model` for every batch size of `tables` into `dir`
/// (created if missing), each atomically; returns the paths written, in batch-size order.
///
/// `model` is the profile name the controller looks up: `arch.split('_')[0]` for CV (e.g.
/// `resnet18`), the arch itself for NLP (e.g. `bert-base`). Whether it is CV follows the
/// artifact's rule ([`is_cv_arch`]).
pub fn write_profiles(
    dir: &Path,
    model: &str,
    tables: &LatencyTables,
) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|cause| WriteError::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let mut written = Vec::new();
    for (bs, table) in tables.iter() {
        let bs = bs.get();
        let trees = profile_trees(model, bs, table)?;
        let (vanilla_name, ee_name) = profile_file_names(model, bs);
        if let (Some(name), Some(tree)) = (vanilla_name, &trees.vanilla) {
            let path = dir.join(name);
            write_file(&path, |w| tree.dump_to(w).map(drop))?;
            written.push(path);
        }
        let path = dir.join(ee_name);
        write_file(&path, |w| trees.early_exit.dump_to(w).map(drop))?;
        written.push(path);
    }
    Ok(written)
}

/// The profile trees of `model` at batch size `bs` that encode `table`.
///
/// Errors: a table without ramps ([`WriteError::NoRamps`]) or with a non-finite latency
/// ([`WriteError::NonFinite`]).
pub fn profile_trees(
    model: &str,
    bs: usize,
    table: &LatencyTable,
) -> Result<ProfileTrees, WriteError> {
    check_table(model, bs, table)?;
    let arch = Architecture::build(model, table.ramps.len(), bs);
    let timing = Timing::assign(&arch, table);
    let ramp_ms: Vec<f64> = table.ramps.iter().map(|r| r.ramp_ms).collect();
    let vanilla_up_to: Vec<f64> = table.ramps.iter().map(|r| r.vanilla_up_to_ms).collect();
    let render = |mode: Mode| {
        Renderer::new(&timing, &ramp_ms, &vanilla_up_to, mode).root(&arch, table.vanilla_ms)
    };
    let early_exit = render(Mode::EarlyExit);
    let vanilla = arch.cv.then(|| render(Mode::Vanilla));
    Ok(ProfileTrees {
        vanilla,
        early_exit,
    })
}

fn check_table(model: &str, bs: usize, table: &LatencyTable) -> Result<(), WriteError> {
    if table.ramps.is_empty() {
        return Err(WriteError::NoRamps {
            what: format!("latency table of {model} at batch size {bs}"),
        });
    }
    let bad = |field: String| WriteError::NonFinite {
        what: format!("latency table of {model} at batch size {bs}"),
        field,
    };
    for (r, ramp) in table.ramps.iter().enumerate() {
        if !ramp.vanilla_up_to_ms.is_finite() {
            return Err(bad(format!("ramps[{r}].vanilla_up_to_ms")));
        }
        if !ramp.ramp_ms.is_finite() {
            return Err(bad(format!("ramps[{r}].ramp_ms")));
        }
    }
    if !table.vanilla_ms.is_finite() {
        return Err(bad("vanilla_ms".into()));
    }
    Ok(())
}
