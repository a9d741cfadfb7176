//! Model presets: candidate ramp sites and per-batch-size latency tables.
//!
//! Latencies are modelled on an RTX A6000-class GPU (the paper's profiling GPU): the batch-1
//! vanilla latency `v1_ms`, a batch-scaling curve per family, candidate ramp sites spread over
//! the network's depth (ResNets after each residual block, VGGs at their cut vertices, one per
//! transformer layer), and ramp heads costing about `ramp_cost` of the vanilla latency each.
//! Site positions and ramp costs carry a fixed per-site jitter (a hash of the model name and
//! site, no randomness) so profiles look measured rather than regular.

use crate::sim::{Family, LatencyTable, LatencyTables, RampCost, BATCH_SIZES};

/// One model's preset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelPreset {
    /// Model name.
    pub name: &'static str,
    /// CV or NLP.
    pub family: Family,
    /// Candidate ramp sites `R`.
    pub sites: usize,
    /// Vanilla latency at batch size 1 (ms).
    pub v1_ms: f64,
    /// Fraction of the model before the first site (stem / embeddings).
    pub stem: f64,
    /// Fraction after the last site (head).
    pub head: f64,
    /// Mean ramp-head cost as a fraction of the vanilla latency.
    pub ramp_cost: f64,
    /// How well the model's ramps classify: scales every ramp's margin (bigger, better
    /// backbones produce more confident early answers).
    pub capability: f64,
    /// How a ramp's reach grows with its depth fraction `f`: reach ∝ `f^depth_exponent`.
    /// CNNs (0.6) have useful features early; a transformer's sentiment signal emerges in its
    /// late layers (2.0), so its early ramps are close to guessing.
    pub depth_exponent: f64,
}

/// Depth exponent of the CNNs.
const CNN_DEPTH: f64 = 0.6;
/// Depth exponent of the transformers.
const TRANSFORMER_DEPTH: f64 = 2.0;

/// The paper's ten models.
pub const MODELS: [ModelPreset; 10] = [
    ModelPreset {
        name: "resnet18",
        family: Family::Cv,
        sites: 8,
        v1_ms: 2.6,
        stem: 0.17,
        head: 0.02,
        ramp_cost: 0.010,
        capability: 1.00,
        depth_exponent: CNN_DEPTH,
    },
    ModelPreset {
        name: "resnet50",
        family: Family::Cv,
        sites: 16,
        v1_ms: 6.1,
        stem: 0.13,
        head: 0.02,
        ramp_cost: 0.008,
        capability: 1.10,
        depth_exponent: CNN_DEPTH,
    },
    ModelPreset {
        name: "resnet101",
        family: Family::Cv,
        sites: 33,
        v1_ms: 11.4,
        stem: 0.1,
        head: 0.015,
        ramp_cost: 0.006,
        capability: 1.15,
        depth_exponent: CNN_DEPTH,
    },
    ModelPreset {
        name: "vgg11",
        family: Family::Cv,
        sites: 8,
        v1_ms: 3.3,
        stem: 0.14,
        head: 0.10,
        ramp_cost: 0.012,
        capability: 0.95,
        depth_exponent: CNN_DEPTH,
    },
    ModelPreset {
        name: "vgg13",
        family: Family::Cv,
        sites: 10,
        v1_ms: 4.0,
        stem: 0.12,
        head: 0.09,
        ramp_cost: 0.011,
        capability: 1.00,
        depth_exponent: CNN_DEPTH,
    },
    ModelPreset {
        name: "vgg16",
        family: Family::Cv,
        sites: 13,
        v1_ms: 4.9,
        stem: 0.11,
        head: 0.08,
        ramp_cost: 0.009,
        capability: 1.05,
        depth_exponent: CNN_DEPTH,
    },
    ModelPreset {
        name: "distilbert-base",
        family: Family::Nlp,
        sites: 6,
        v1_ms: 4.6,
        stem: 0.06,
        head: 0.03,
        ramp_cost: 0.012,
        capability: 1.615,
        depth_exponent: TRANSFORMER_DEPTH,
    },
    ModelPreset {
        name: "bert-base",
        family: Family::Nlp,
        sites: 12,
        v1_ms: 8.7,
        stem: 0.04,
        head: 0.02,
        ramp_cost: 0.008,
        capability: 1.70,
        depth_exponent: TRANSFORMER_DEPTH,
    },
    ModelPreset {
        name: "bert-large",
        family: Family::Nlp,
        sites: 24,
        v1_ms: 17.8,
        stem: 0.03,
        head: 0.015,
        ramp_cost: 0.005,
        capability: 1.785,
        depth_exponent: TRANSFORMER_DEPTH,
    },
    ModelPreset {
        name: "gpt2-medium",
        family: Family::Nlp,
        sites: 24,
        v1_ms: 19.6,
        stem: 0.03,
        head: 0.015,
        ramp_cost: 0.005,
        capability: 1.70,
        depth_exponent: TRANSFORMER_DEPTH,
    },
];

/// Batch latency relative to batch 1, for `BATCH_SIZES`: CNNs batch well; transformers on
/// review-length sequences scale closer to linearly.
fn batch_curve(family: Family) -> [f64; 7] {
    match family {
        Family::Cv => [1.0, 1.32, 1.88, 3.05, 5.5, 10.4, 20.1],
        Family::Nlp => [1.0, 1.55, 2.6, 4.7, 8.9, 17.3, 33.9],
    }
}

/// The preset of `name`.
pub fn preset(name: &str) -> Option<&'static ModelPreset> {
    MODELS.iter().find(|m| m.name == name)
}

/// A fixed pseudo-random number in [0, 1) from a name and an index (FNV-1a + SplitMix64
/// finaliser): deterministic jitter without a generator.
pub(crate) fn hash_unit(name: &str, k: u64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl ModelPreset {
    /// Depth fraction of site `r` (share of the vanilla latency before it), increasing.
    pub fn site_fraction(&self, r: usize) -> f64 {
        let span = 1.0 - self.stem - self.head;
        let base = if self.sites == 1 {
            0.5
        } else {
            r as f64 / (self.sites - 1) as f64
        };
        // Jitter each site by up to a third of the spacing, keeping the order.
        let spacing = 1.0 / self.sites.max(1) as f64;
        let jitter = (hash_unit(self.name, r as u64) - 0.5) * spacing * 0.6;
        self.stem + span * (base + jitter).clamp(0.0, 1.0)
    }

    /// Cost of ramp `r` as a fraction of the vanilla latency.
    pub fn ramp_fraction(&self, r: usize) -> f64 {
        self.ramp_cost * (0.55 + 0.9 * hash_unit(self.name, 1000 + r as u64))
    }

    /// Latency tables for every batch size.
    pub fn latency_tables(&self) -> LatencyTables {
        let curve = batch_curve(self.family);
        let tables = BATCH_SIZES
            .iter()
            .zip(curve)
            .map(|(_, k)| {
                let v = self.v1_ms * k;
                LatencyTable {
                    ramps: (0..self.sites)
                        .map(|r| RampCost {
                            vanilla_up_to_ms: v * self.site_fraction(r),
                            ramp_ms: v * self.ramp_fraction(r),
                        })
                        .collect(),
                    vanilla_ms: v,
                }
            })
            .collect();
        LatencyTables::new(tables).unwrap_or_else(|| unreachable!("one table per batch size"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_increase_and_fit_inside_the_model() {
        for m in &MODELS {
            let t = m.latency_tables();
            for (_, table) in t.iter() {
                assert_eq!(table.ramps.len(), m.sites, "{}", m.name);
                let v: Vec<f64> = table.ramps.iter().map(|r| r.vanilla_up_to_ms).collect();
                assert!(
                    v.windows(2).all(|w| w[0] < w[1]),
                    "{}: sites not increasing",
                    m.name
                );
                let last = &table.ramps[m.sites - 1];
                assert!(
                    last.vanilla_up_to_ms + last.ramp_ms <= table.vanilla_ms,
                    "{}: last site too late",
                    m.name
                );
            }
        }
    }
}
