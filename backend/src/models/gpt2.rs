//! GPT-2 (medium: 24 blocks, H 1024) for sequence classification, as a staged network: token and
//! position embeddings are the stem, every block `transformer.h.{i}` is one segment (a ramp site
//! after every block), and `finish` is the final layer norm `ln_f` and the classifier `score`.
//!
//! **The head is our choice** (the artifact has no GPT-2 code; its pickles came from another code
//! base): a causal model's only summary of the whole sequence is its last real token, so `finish`
//! classifies the hidden state of the last token whose attention mask is 1, exactly as Hugging
//! Face's `GPT2ForSequenceClassification` does (`score` is a bias-free `Linear(H, classes)`). The
//! ramps read the same position ([`crate::ramps::TokenPool::LastReal`], through
//! [`StagedModel::ramp_token`]), through the usual DeeBERT highway (dense + tanh, then linear).
//!
//! Hugging Face names load directly (`transformer.wte`, `transformer.h.{i}.attn.c_attn`, ...;
//! checkpoints of the bare `GPT2Model` without the `transformer.` prefix too). GPT-2's `Conv1D`
//! stores its weight as `[in, out]`, already burn's layout, so it is its own module here
//! ([`GptConv1D`]) and never transposed. Attention is causal and honours the padding mask.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu_approximate;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use serde::Deserialize;

use super::bert::{hidden_of, random_tokens, tokens_of};
use super::transformer::{attention, causal_bias, padding_bias};
use super::{Activation, Family, ModelInput, StagedModel};
use crate::ramps::{last_real_token, TokenPool};

fn default_gpt_eps() -> f64 {
    1e-5
}
fn default_gelu_new() -> String {
    "gelu_new".to_string()
}

/// GPT-2's shape, with Hugging Face's `config.json` field names.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size H.
    pub n_embd: usize,
    /// Blocks (= ramp sites).
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// The longest sequence the position embeddings cover.
    pub n_positions: usize,
    /// Feed-forward width (`null` in the file: 4 H).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// Layer norm epsilon.
    #[serde(default = "default_gpt_eps")]
    pub layer_norm_epsilon: f64,
    /// The MLP activation; only `gelu_new` (the tanh approximation) is supported.
    #[serde(default = "default_gelu_new")]
    pub activation_function: String,
}

impl Gpt2Config {
    /// `gpt2-medium`: 24 blocks, H 1024, 16 heads, 1024 positions.
    pub fn medium() -> Gpt2Config {
        Gpt2Config {
            vocab_size: 50257,
            n_embd: 1024,
            n_layer: 24,
            n_head: 16,
            n_positions: 1024,
            n_inner: None,
            layer_norm_epsilon: 1e-5,
            activation_function: default_gelu_new(),
        }
    }

    /// A tiny GPT-2 for tests: 2 blocks, H 32, 4 heads, vocabulary 100, 64 positions.
    pub fn tiny() -> Gpt2Config {
        Gpt2Config {
            vocab_size: 100,
            n_embd: 32,
            n_layer: 2,
            n_head: 4,
            n_positions: 64,
            n_inner: None,
            layer_norm_epsilon: 1e-5,
            activation_function: default_gelu_new(),
        }
    }

    /// The feed-forward width.
    pub fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// The parameters of `GPT2ForSequenceClassification` with `classes` outputs (`GPT2Model`
    /// plus the bias-free `score`).
    pub fn num_params(&self, classes: usize) -> usize {
        let (h, i) = (self.n_embd, self.inner());
        let block = 2 * 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + (h * i + i) + (i * h + h);
        (self.vocab_size + self.n_positions) * h + self.n_layer * block + 2 * h + h * classes
    }
}

/// GPT-2's `Conv1D`: `y = x W + b` with `W` stored `[in, out]` (the transpose of a PyTorch
/// `Linear`'s weight).
#[derive(Module, Debug)]
pub struct GptConv1D<B: Backend> {
    /// `weight`, `[in, out]`.
    pub weight: Param<Tensor<B, 2>>,
    /// `bias`, `[out]`.
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> GptConv1D<B> {
    /// Initialised as Hugging Face does: weight ~ N(0, 0.02), bias 0.
    pub fn new(d_in: usize, d_out: usize, device: &B::Device) -> GptConv1D<B> {
        GptConv1D {
            weight: Param::from_tensor(Tensor::random(
                [d_in, d_out],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            bias: Param::from_tensor(Tensor::zeros([d_out], device)),
        }
    }

    /// `[B, S, in]` to `[B, S, out]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        burn::tensor::module::linear(x, self.weight.val(), Some(self.bias.val()))
    }
}

/// `attn`: the fused query/key/value projection and the output projection.
#[derive(Module, Debug)]
pub struct Gpt2Attention<B: Backend> {
    /// `c_attn`: `H -> 3 H` (query, key, value).
    pub c_attn: GptConv1D<B>,
    /// `c_proj`: `H -> H`.
    pub c_proj: GptConv1D<B>,
}

/// `mlp`: `c_fc`, GELU (tanh approximation, `gelu_new`), `c_proj`.
#[derive(Module, Debug)]
pub struct Gpt2Mlp<B: Backend> {
    /// `c_fc`: `H -> inner`.
    pub c_fc: GptConv1D<B>,
    /// `c_proj`: `inner -> H`.
    pub c_proj: GptConv1D<B>,
}

/// One block, `transformer.h.{i}` (pre-norm).
#[derive(Module, Debug)]
pub struct Gpt2Block<B: Backend> {
    /// `ln_1`.
    pub ln_1: LayerNorm<B>,
    /// `attn`.
    pub attn: Gpt2Attention<B>,
    /// `ln_2`.
    pub ln_2: LayerNorm<B>,
    /// `mlp`.
    pub mlp: Gpt2Mlp<B>,
    /// Attention heads.
    #[module(skip)]
    pub heads: usize,
}

impl<B: Backend> Gpt2Block<B> {
    /// One block on `[B, S, H]`; `bias` is the padding bias plus the causal bias.
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let h = x.dims()[2];
        let qkv = self.attn.c_attn.forward(self.ln_1.forward(x.clone()));
        let mut parts = qkv.split(h, 2).into_iter();
        let (Some(q), Some(k), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
            return x;
        };
        let ctx = attention(q, k, v, self.heads, bias);
        let x = x + self.attn.c_proj.forward(ctx);
        let inner = gelu_approximate(self.mlp.c_fc.forward(self.ln_2.forward(x.clone())));
        x + self.mlp.c_proj.forward(inner)
    }
}

/// `transformer`: `GPT2Model`.
#[derive(Module, Debug)]
pub struct Gpt2Model<B: Backend> {
    /// `wte`: token embeddings.
    pub wte: Embedding<B>,
    /// `wpe`: position embeddings.
    pub wpe: Embedding<B>,
    /// `h.{i}`: the blocks.
    pub h: Vec<Gpt2Block<B>>,
    /// `ln_f`: the final layer norm.
    pub ln_f: LayerNorm<B>,
}

/// `GPT2ForSequenceClassification`: `transformer` and `score`.
#[derive(Module, Debug)]
pub struct Gpt2<B: Backend> {
    /// `transformer`.
    pub transformer: Gpt2Model<B>,
    /// `score`: `H -> classes`, no bias.
    pub score: Linear<B>,
    /// The artifact's model name.
    #[module(skip)]
    pub name: String,
    /// The longest sequence the position embeddings cover.
    #[module(skip)]
    pub max_positions: usize,
}

impl<B: Backend> Gpt2<B> {
    /// A randomly initialised model named `name`.
    pub fn new(name: &str, c: &Gpt2Config, classes: usize, device: &B::Device) -> Gpt2<B> {
        let h = c.n_embd;
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(c.layer_norm_epsilon)
                .init(device)
        };
        let block = || Gpt2Block {
            ln_1: norm(),
            attn: Gpt2Attention {
                c_attn: GptConv1D::new(h, 3 * h, device),
                c_proj: GptConv1D::new(h, h, device),
            },
            ln_2: norm(),
            mlp: Gpt2Mlp {
                c_fc: GptConv1D::new(h, c.inner(), device),
                c_proj: GptConv1D::new(c.inner(), h, device),
            },
            heads: c.n_head,
        };
        Gpt2 {
            transformer: Gpt2Model {
                wte: EmbeddingConfig::new(c.vocab_size, h).init(device),
                wpe: EmbeddingConfig::new(c.n_positions, h).init(device),
                h: (0..c.n_layer).map(|_| block()).collect(),
                ln_f: norm(),
            },
            score: LinearConfig::new(h, classes).with_bias(false).init(device),
            name: name.to_string(),
            max_positions: c.n_positions,
        }
    }
}

impl<B: Backend> StagedModel<B> for Gpt2<B> {
    fn name(&self) -> &str {
        &self.name
    }
    fn family(&self) -> Family {
        Family::Nlp
    }
    fn num_sites(&self) -> usize {
        self.transformer.h.len()
    }
    fn num_classes(&self) -> usize {
        self.score.weight.dims()[1]
    }
    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        let (ids, mask) = tokens_of(input, &self.name);
        let [_, s] = ids.dims();
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &ids.device()).reshape([1, s]);
        let hidden = self.transformer.wte.forward(ids) + self.transformer.wpe.forward(positions);
        Activation::Tokens { hidden, mask }
    }
    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        let (hidden, mask) = hidden_of(x, &self.name);
        let hidden = match self.transformer.h.get(i) {
            Some(block) => {
                let s = hidden.dims()[1];
                let bias = padding_bias(&mask) + causal_bias(s, &hidden.device());
                block.forward(hidden, bias)
            }
            None => hidden,
        };
        Activation::Tokens { hidden, mask }
    }
    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        let (hidden, mask) = hidden_of(x, &self.name);
        let hidden = self.transformer.ln_f.forward(hidden);
        self.score.forward(last_real_token(&hidden, &mask))
    }
    fn site_width(&self, _i: usize) -> usize {
        self.score.weight.dims()[0]
    }
    fn example_input(&self, batch: usize, seq_len: usize, device: &B::Device) -> ModelInput<B> {
        let vocab = self.transformer.wte.weight.dims()[0];
        random_tokens(batch, seq_len, vocab, device)
    }
    fn ramp_token(&self) -> TokenPool {
        TokenPool::LastReal
    }
}
