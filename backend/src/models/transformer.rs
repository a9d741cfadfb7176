//! Pieces the NLP models share: multi-head scaled dot-product attention with an additive mask,
//! and the masks themselves (padding from the attention mask; causal for GPT-2).

use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// What a masked position adds to an attention score: large enough that its softmax weight is
/// exactly zero, small enough that sums of two of them stay finite.
const MASKED: f32 = -1.0e30;

/// The additive padding bias `[B, 1, 1, S]`: 0 where the mask is 1, [`MASKED`] where it is 0.
pub fn padding_bias<B: Backend>(mask: &Tensor<B, 2, Int>) -> Tensor<B, 4> {
    let [b, s] = mask.dims();
    let keep = mask.clone().float();
    ((keep.neg() + 1.0) * MASKED).reshape([b, 1, 1, s])
}

/// The additive causal bias `[1, 1, S, S]`: query `i` sees keys `0..=i`.
pub fn causal_bias<B: Backend>(seq: usize, device: &B::Device) -> Tensor<B, 4> {
    let future = Tensor::<B, 2>::ones([seq, seq], device).triu(1);
    (future * MASKED).reshape([1, 1, seq, seq])
}

/// Multi-head attention on already projected `q`, `k`, `v` (`[B, S, H]`, `heads` heads of
/// `H / heads`), scores scaled by `1 / sqrt(H / heads)`, plus `bias` (broadcast to
/// `[B, heads, S, S]`). Returns the merged heads `[B, S, H]`.
pub fn attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    bias: Tensor<B, 4>,
) -> Tensor<B, 3> {
    let [b, s, h] = q.dims();
    let d = h / heads;
    let split = |x: Tensor<B, 3>| x.reshape([b, s, heads, d]).swap_dims(1, 2);
    let (q, k, v) = (split(q), split(k), split(v));
    let scores = q.matmul(k.swap_dims(2, 3)) / (d as f64).sqrt();
    let probs = softmax(scores + bias, 3);
    probs.matmul(v).swap_dims(1, 2).reshape([b, s, h])
}
