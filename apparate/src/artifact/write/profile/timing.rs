//! Latencies of the vanilla leaves: the vanilla time between two ramp sites split over the
//! leaves in between by their type's weight, each leaf's `vanilla_latency_up_until_me` the
//! running sum, ending exactly on the latency table's values.

use super::arch::Architecture;
use super::tree::{Body, Module};
use crate::sim::LatencyTable;

/// Latency of each vanilla leaf, in pre-order (ramp subtrees excluded).
pub(super) struct Timing {
    /// `(fwd_latency, vanilla_latency_up_until_me)`; `fwd` is `None` for a leaf that takes no
    /// measurable time (the int `0`).
    pub(super) leaves: Vec<(Option<f64>, f64)>,
}

impl Timing {
    pub(super) fn assign(arch: &Architecture, table: &LatencyTable) -> Timing {
        let mut leaves = Vec::new();
        collect_leaves(&arch.root, &mut leaves);
        let n = arch.num_ramps;
        let v = |r: usize| table.ramps[r].vanilla_up_to_ms;
        // Segment ends: the stem, then each site, then the whole model.
        let stem_end = if arch.has_stem {
            let first = v(0);
            let gap = if n > 1 {
                (v(n - 1) - first) / (n - 1) as f64
            } else {
                first / 2.0
            };
            (first - gap).max(0.05 * first).min(0.95 * first)
        } else {
            0.0
        };
        let mut ends = Vec::with_capacity(n + 2);
        ends.push(stem_end);
        ends.extend((0..n).map(v));
        ends.push(table.vanilla_ms);

        let mut out = vec![(None, 0.0); leaves.len()];
        let mut start = 0.0;
        for (seg, &end) in ends.iter().enumerate() {
            let members: Vec<usize> = (0..leaves.len()).filter(|&i| leaves[i].0 == seg).collect();
            let total: f64 = members.iter().map(|&i| leaves[i].1).sum();
            let last_timed = members.iter().rev().find(|&&i| leaves[i].1 > 0.0).copied();
            let mut clock = start;
            for &i in &members {
                let w = leaves[i].1;
                if w > 0.0 {
                    let before = clock;
                    clock = if Some(i) == last_timed {
                        end
                    } else {
                        clock + (end - start) * w / total
                    };
                    out[i] = (Some(clock - before), clock);
                } else {
                    out[i] = (None, clock);
                }
            }
            if last_timed.is_some() {
                start = end;
            }
        }
        Timing { leaves: out }
    }
}

/// `(segment, weight)` of every vanilla leaf in pre-order.
fn collect_leaves(m: &Module, out: &mut Vec<(usize, f64)>) {
    match &m.body {
        Body::Leaf { seg, weight } => out.push((*seg, *weight)),
        Body::Container(children) => children.iter().for_each(|c| collect_leaves(c, out)),
        Body::Site { module, .. } => collect_leaves(module, out),
    }
}
