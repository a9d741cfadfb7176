//! The model architectures: the module tree of each model family ([`cv`]: torchvision ResNets
//! and VGGs, [`nlp`]: DistilBERT, BERT and GPT-2 with highway ramps), with the ramp sites where
//! the artifact attaches its ramps.

mod cv;
mod nlp;

use super::tree::Module;
use crate::artifact::is_cv_arch;
use cv::{resnet, vgg};
use nlp::{bert, distilbert, gpt2};

/// A model's module tree and what the renderer needs to know about it.
pub(super) struct Architecture {
    pub(super) root: Module,
    /// CV (vanilla and early-exit trees) or NLP (early-exit tree only).
    pub(super) cv: bool,
    /// Root type names of the vanilla and early-exit trees.
    pub(super) vanilla_type: &'static str,
    pub(super) ee_type: &'static str,
    /// Whether segment 0 (before the first site) holds modules.
    pub(super) has_stem: bool,
    pub(super) num_ramps: usize,
}

impl Architecture {
    pub(super) fn build(model: &str, num_ramps: usize, bs: usize) -> Architecture {
        let bs = bs as i64;
        if is_cv_arch(model) {
            if model.contains("vgg") {
                vgg(model, num_ramps, bs)
            } else {
                resnet(model, num_ramps, bs)
            }
        } else if model.contains("distilbert") {
            distilbert(num_ramps, bs)
        } else if model.contains("gpt") {
            gpt2(model, num_ramps, bs)
        } else {
            bert(model, num_ramps, bs)
        }
    }
}

/// Splits `total` items over `parts` groups following `pattern`'s proportions when the total
/// matches no known configuration: `pattern` itself when it sums to `total`, else groups as
/// even as possible, the remainder going to the largest groups of `pattern` first.
fn spread(total: usize, pattern: &[usize]) -> Vec<usize> {
    if pattern.iter().sum::<usize>() == total {
        return pattern.to_vec();
    }
    let parts = pattern.len();
    let mut counts = vec![total / parts; parts];
    let mut order: Vec<usize> = (0..parts).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pattern[i]));
    for &i in order.iter().take(total % parts) {
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_known_configurations_and_fills_others_evenly() {
        assert_eq!(spread(16, &[3, 4, 6, 3]), vec![3, 4, 6, 3]);
        assert_eq!(spread(5, &[3, 4, 6, 3]), vec![1, 1, 2, 1]);
        assert_eq!(spread(2, &[2, 2, 2, 2]), vec![1, 1, 0, 0]);
    }
}
