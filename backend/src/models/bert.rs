//! BERT (base, large, and any `BertModel` checkpoint such as MiniLM) and DistilBERT for sequence
//! classification, as staged networks: the embeddings are the stem, every encoder layer is one
//! segment (a ramp site after every layer, as the artifact's `bert.encoder.layer.{i}` and
//! `distilbert.transformer.layer.{i}`), and `finish` is the pooler and classifier (DistilBERT:
//! `pre_classifier`, ReLU, `classifier`, as Hugging Face does).
//!
//! Module paths follow Hugging Face's names, so its checkpoints load through [`super::hf`]; the
//! only differences are burn's (`layer_norm` for `LayerNorm`, `self_attn` for `self`, a layer
//! norm's `gamma`/`beta` for `weight`/`bias`, `Linear` weights stored transposed), which the
//! loader maps. The attention mask is honoured: padding keys get no attention weight.

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, relu, tanh};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use serde::Deserialize;

use super::transformer::{attention, padding_bias};
use super::{Activation, Family, ModelInput, StagedModel};
use crate::ramps::RampSet;

fn default_type_vocab() -> usize {
    2
}
fn default_bert_eps() -> f64 {
    1e-12
}
fn default_gelu() -> String {
    "gelu".to_string()
}

/// BERT's shape, with Hugging Face's `config.json` field names (so that file deserialises into
/// it; other fields are ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size H.
    pub hidden_size: usize,
    /// Encoder layers (= ramp sites).
    pub num_hidden_layers: usize,
    /// Attention heads (divides H).
    pub num_attention_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// The longest sequence the position embeddings cover.
    pub max_position_embeddings: usize,
    /// Token types (segment embeddings); only type 0 is used.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// Layer norm epsilon.
    #[serde(default = "default_bert_eps")]
    pub layer_norm_eps: f64,
    /// The activation of the feed-forward block; only `gelu` (erf) is supported.
    #[serde(default = "default_gelu")]
    pub hidden_act: String,
}

impl BertConfig {
    fn with(layers: usize, hidden: usize, heads: usize, inter: usize) -> BertConfig {
        BertConfig {
            vocab_size: 30522,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: inter,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: default_gelu(),
        }
    }

    /// `bert-base-uncased`: 12 layers, H 768, 12 heads.
    pub fn base() -> BertConfig {
        BertConfig::with(12, 768, 12, 3072)
    }

    /// `bert-large-uncased`: 24 layers, H 1024, 16 heads.
    pub fn large() -> BertConfig {
        BertConfig::with(24, 1024, 16, 4096)
    }

    /// A tiny BERT for tests: 2 layers, H 32, 4 heads, vocabulary 100, 64 positions.
    pub fn tiny() -> BertConfig {
        BertConfig {
            vocab_size: 100,
            max_position_embeddings: 64,
            ..BertConfig::with(2, 32, 4, 64)
        }
    }

    /// The parameters of `BertForSequenceClassification` with `classes` outputs (the encoder
    /// with its pooler, as Hugging Face counts `BertModel`, plus the classifier).
    pub fn num_params(&self, classes: usize) -> usize {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let embeddings =
            (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * (h * i) + i + h + 2 * 2 * h;
        embeddings + self.num_hidden_layers * layer + (h * h + h) + (h * classes + classes)
    }
}

/// Word, position and token-type embeddings, then a layer norm.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    /// `word_embeddings`.
    pub word_embeddings: Embedding<B>,
    /// `position_embeddings`.
    pub position_embeddings: Embedding<B>,
    /// `token_type_embeddings` (type 0 only is added).
    pub token_type_embeddings: Embedding<B>,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm<B>,
}

impl<B: Backend> BertEmbeddings<B> {
    /// `[B, S]` ids to `[B, S, H]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [_, s] = ids.dims();
        let device = ids.device();
        let words = self.word_embeddings.forward(ids);
        let h = words.dims()[2];
        let token_type = self
            .token_type_embeddings
            .weight
            .val()
            .narrow(0, 0, 1)
            .reshape([1, 1, h]);
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device).reshape([1, s]);
        let positions = self.position_embeddings.forward(positions);
        self.layer_norm.forward(words + token_type + positions)
    }
}

/// `attention.self`: the query, key and value projections.
#[derive(Module, Debug)]
pub struct BertSelfAttention<B: Backend> {
    /// `query`.
    pub query: Linear<B>,
    /// `key`.
    pub key: Linear<B>,
    /// `value`.
    pub value: Linear<B>,
}

/// A dense layer, then a residual layer norm (`attention.output`, `output`).
#[derive(Module, Debug)]
pub struct BertResidual<B: Backend> {
    /// `dense`.
    pub dense: Linear<B>,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm<B>,
}

impl<B: Backend> BertResidual<B> {
    fn forward(&self, x: Tensor<B, 3>, residual: Tensor<B, 3>) -> Tensor<B, 3> {
        self.layer_norm.forward(self.dense.forward(x) + residual)
    }
}

/// `attention`: self-attention and its output block.
#[derive(Module, Debug)]
pub struct BertAttention<B: Backend> {
    /// `self` (a Rust keyword, hence the name).
    pub self_attn: BertSelfAttention<B>,
    /// `output`.
    pub output: BertResidual<B>,
}

/// `intermediate`: the feed-forward expansion (GELU).
#[derive(Module, Debug)]
pub struct BertIntermediate<B: Backend> {
    /// `dense`.
    pub dense: Linear<B>,
}

/// One encoder layer, `encoder.layer.{i}`.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    /// `attention`.
    pub attention: BertAttention<B>,
    /// `intermediate`.
    pub intermediate: BertIntermediate<B>,
    /// `output`.
    pub output: BertResidual<B>,
    /// Attention heads.
    #[module(skip)]
    pub heads: usize,
}

impl<B: Backend> BertLayer<B> {
    fn new(c: &BertConfig, device: &B::Device) -> BertLayer<B> {
        let h = c.hidden_size;
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(c.layer_norm_eps)
                .init(device)
        };
        BertLayer {
            attention: BertAttention {
                self_attn: BertSelfAttention {
                    query: linear(h, h),
                    key: linear(h, h),
                    value: linear(h, h),
                },
                output: BertResidual {
                    dense: linear(h, h),
                    layer_norm: norm(),
                },
            },
            intermediate: BertIntermediate {
                dense: linear(h, c.intermediate_size),
            },
            output: BertResidual {
                dense: linear(c.intermediate_size, h),
                layer_norm: norm(),
            },
            heads: c.num_attention_heads,
        }
    }

    /// One layer on `[B, S, H]` with the padding bias of [`padding_bias`].
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let sa = &self.attention.self_attn;
        let ctx = attention(
            sa.query.forward(x.clone()),
            sa.key.forward(x.clone()),
            sa.value.forward(x.clone()),
            self.heads,
            bias,
        );
        let x = self.attention.output.forward(ctx, x);
        let inner = gelu(self.intermediate.dense.forward(x.clone()));
        self.output.forward(inner, x)
    }
}

/// `encoder`: the layers.
#[derive(Module, Debug)]
pub struct BertEncoder<B: Backend> {
    /// `layer.{i}`.
    pub layer: Vec<BertLayer<B>>,
}

/// `pooler`: dense + tanh on token 0.
#[derive(Module, Debug)]
pub struct BertPooler<B: Backend> {
    /// `dense`.
    pub dense: Linear<B>,
}

/// `bert`: the encoder model (`BertModel`).
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    /// `embeddings`.
    pub embeddings: BertEmbeddings<B>,
    /// `encoder`.
    pub encoder: BertEncoder<B>,
    /// `pooler`.
    pub pooler: BertPooler<B>,
}

/// `BertForSequenceClassification`: `bert` and `classifier`.
#[derive(Module, Debug)]
pub struct Bert<B: Backend> {
    /// `bert`.
    pub bert: BertModel<B>,
    /// `classifier`: `H -> classes`.
    pub classifier: Linear<B>,
    /// The artifact's model name.
    #[module(skip)]
    pub name: String,
    /// The longest sequence the position embeddings cover.
    #[module(skip)]
    pub max_positions: usize,
}

impl<B: Backend> Bert<B> {
    /// A randomly initialised model named `name` (weights load afterwards through
    /// [`super::hf`]).
    pub fn new(name: &str, c: &BertConfig, classes: usize, device: &B::Device) -> Bert<B> {
        let h = c.hidden_size;
        let embedding = |n| EmbeddingConfig::new(n, h).init(device);
        Bert {
            bert: BertModel {
                embeddings: BertEmbeddings {
                    word_embeddings: embedding(c.vocab_size),
                    position_embeddings: embedding(c.max_position_embeddings),
                    token_type_embeddings: embedding(c.type_vocab_size),
                    layer_norm: LayerNormConfig::new(h)
                        .with_epsilon(c.layer_norm_eps)
                        .init(device),
                },
                encoder: BertEncoder {
                    layer: (0..c.num_hidden_layers)
                        .map(|_| BertLayer::new(c, device))
                        .collect(),
                },
                pooler: BertPooler {
                    dense: LinearConfig::new(h, h).init(device),
                },
            },
            classifier: LinearConfig::new(h, classes).init(device),
            name: name.to_string(),
            max_positions: c.max_position_embeddings,
        }
    }

    /// The encoder's last hidden states `[B, S, H]` (no pooler, no classifier).
    pub fn hidden_states(&self, ids: Tensor<B, 2, Int>, mask: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let bias = padding_bias(&mask);
        let mut x = self.bert.embeddings.forward(ids);
        for layer in &self.bert.encoder.layer {
            x = layer.forward(x, bias.clone());
        }
        x
    }

    /// The model's own pooler (`bert.pooler.dense`), which DeeBERT copies into every highway.
    pub fn pooler(&self) -> &Linear<B> {
        &self.bert.pooler.dense
    }

    /// DeeBERT's `init_highway_pooler`: every NLP ramp's pooler becomes a copy of the model's
    /// pooler (new parameters with the same values, so training a ramp leaves the backbone
    /// alone). Ramps without a pooler, or of another width, are left as they are.
    pub fn init_highway_poolers(&self, mut ramps: RampSet<B>) -> RampSet<B> {
        let source = self.pooler();
        for ramp in &mut ramps.ramps {
            let same_shape = ramp
                .pooler
                .as_ref()
                .is_some_and(|p| p.weight.dims() == source.weight.dims());
            if same_shape {
                ramp.pooler = Some(copy_linear(source));
            }
        }
        ramps
    }
}

/// A copy of `linear` with fresh parameter ids.
pub(crate) fn copy_linear<B: Backend>(linear: &Linear<B>) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(linear.weight.val()),
        bias: linear.bias.as_ref().map(|b| Param::from_tensor(b.val())),
    }
}

/// The ids and mask of a token input.
///
/// # Panics
///
/// On image input: an NLP model given images is a programming error (the commands build inputs
/// from the model's family).
pub(crate) fn tokens_of<B: Backend>(
    input: ModelInput<B>,
    model: &str,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    match input {
        ModelInput::Tokens { ids, mask } => (ids, mask),
        ModelInput::Images(_) => panic!("{model} is an NLP model: it takes token ids, not images"),
    }
}

/// The hidden states and mask of a token activation.
///
/// # Panics
///
/// On a feature map (a programming error, as in [`tokens_of`]).
pub(crate) fn hidden_of<B: Backend>(
    x: Activation<B>,
    model: &str,
) -> (Tensor<B, 3>, Tensor<B, 2, Int>) {
    match x {
        Activation::Tokens { hidden, mask } => (hidden, mask),
        Activation::Image(_) => {
            panic!("{model} is an NLP model: its activations are hidden states, not feature maps")
        }
    }
}

/// Random token ids in `1..vocab` (never the padding id 0) with a full mask, for profiling.
pub(crate) fn random_tokens<B: Backend>(
    batch: usize,
    seq_len: usize,
    vocab: usize,
    device: &B::Device,
) -> ModelInput<B> {
    let ids = Tensor::<B, 2>::random(
        [batch, seq_len],
        Distribution::Uniform(1.0, vocab.max(2) as f64 - 0.5),
        device,
    )
    .int();
    ModelInput::Tokens {
        ids,
        mask: Tensor::<B, 2, Int>::ones([batch, seq_len], device),
    }
}

impl<B: Backend> StagedModel<B> for Bert<B> {
    fn name(&self) -> &str {
        &self.name
    }
    fn family(&self) -> Family {
        Family::Nlp
    }
    fn num_sites(&self) -> usize {
        self.bert.encoder.layer.len()
    }
    fn num_classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }
    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        let (ids, mask) = tokens_of(input, &self.name);
        Activation::Tokens {
            hidden: self.bert.embeddings.forward(ids),
            mask,
        }
    }
    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        let (hidden, mask) = hidden_of(x, &self.name);
        let hidden = match self.bert.encoder.layer.get(i) {
            Some(layer) => layer.forward(hidden, padding_bias(&mask)),
            None => hidden,
        };
        Activation::Tokens { hidden, mask }
    }
    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        let (hidden, _) = hidden_of(x, &self.name);
        let [b, _, h] = hidden.dims();
        let first = hidden.slice([0..b, 0..1]).reshape([b, h]);
        let pooled = tanh(self.bert.pooler.dense.forward(first));
        self.classifier.forward(pooled)
    }
    fn site_width(&self, _i: usize) -> usize {
        self.classifier.weight.dims()[0]
    }
    fn example_input(&self, batch: usize, seq_len: usize, device: &B::Device) -> ModelInput<B> {
        let vocab = self.bert.embeddings.word_embeddings.weight.dims()[0];
        random_tokens(batch, seq_len, vocab, device)
    }
}

/// DistilBERT's shape, with Hugging Face's `config.json` field names.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DistilBertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden size H.
    pub dim: usize,
    /// Transformer blocks (= ramp sites).
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Feed-forward width.
    pub hidden_dim: usize,
    /// The longest sequence the position embeddings cover.
    pub max_position_embeddings: usize,
    /// The feed-forward activation; only `gelu` is supported.
    #[serde(default = "default_gelu")]
    pub activation: String,
}

impl DistilBertConfig {
    /// `distilbert-base-uncased`: 6 layers, H 768, 12 heads.
    pub fn base() -> DistilBertConfig {
        DistilBertConfig {
            vocab_size: 30522,
            dim: 768,
            n_layers: 6,
            n_heads: 12,
            hidden_dim: 3072,
            max_position_embeddings: 512,
            activation: default_gelu(),
        }
    }

    /// The parameters of `DistilBertForSequenceClassification` with `classes` outputs.
    pub fn num_params(&self, classes: usize) -> usize {
        let (h, i) = (self.dim, self.hidden_dim);
        let embeddings = (self.vocab_size + self.max_position_embeddings) * h + 2 * h;
        let layer = 4 * (h * h + h) + 2 * (h * i) + i + h + 2 * 2 * h;
        embeddings + self.n_layers * layer + (h * h + h) + (h * classes + classes)
    }

    /// A tiny DistilBERT for tests: 2 layers, H 32, 4 heads, vocabulary 100, 64 positions.
    pub fn tiny() -> DistilBertConfig {
        DistilBertConfig {
            vocab_size: 100,
            dim: 32,
            n_layers: 2,
            n_heads: 4,
            hidden_dim: 64,
            max_position_embeddings: 64,
            activation: default_gelu(),
        }
    }
}

/// DistilBERT's layer norm epsilon (fixed in Hugging Face's code).
const DISTIL_EPS: f64 = 1e-12;

/// `distilbert.embeddings`: word and position embeddings, then a layer norm.
#[derive(Module, Debug)]
pub struct DistilBertEmbeddings<B: Backend> {
    /// `word_embeddings`.
    pub word_embeddings: Embedding<B>,
    /// `position_embeddings`.
    pub position_embeddings: Embedding<B>,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm<B>,
}

/// `attention`: `q_lin`, `k_lin`, `v_lin`, `out_lin`.
#[derive(Module, Debug)]
pub struct DistilAttention<B: Backend> {
    /// `q_lin`.
    pub q_lin: Linear<B>,
    /// `k_lin`.
    pub k_lin: Linear<B>,
    /// `v_lin`.
    pub v_lin: Linear<B>,
    /// `out_lin`.
    pub out_lin: Linear<B>,
}

/// `ffn`: `lin1`, GELU, `lin2`.
#[derive(Module, Debug)]
pub struct DistilFfn<B: Backend> {
    /// `lin1`.
    pub lin1: Linear<B>,
    /// `lin2`.
    pub lin2: Linear<B>,
}

/// One block, `distilbert.transformer.layer.{i}`.
#[derive(Module, Debug)]
pub struct DistilBlock<B: Backend> {
    /// `attention`.
    pub attention: DistilAttention<B>,
    /// `sa_layer_norm`.
    pub sa_layer_norm: LayerNorm<B>,
    /// `ffn`.
    pub ffn: DistilFfn<B>,
    /// `output_layer_norm`.
    pub output_layer_norm: LayerNorm<B>,
    /// Attention heads.
    #[module(skip)]
    pub heads: usize,
}

impl<B: Backend> DistilBlock<B> {
    /// One block on `[B, S, H]` with the padding bias of [`padding_bias`].
    pub fn forward(&self, x: Tensor<B, 3>, bias: Tensor<B, 4>) -> Tensor<B, 3> {
        let a = &self.attention;
        let ctx = attention(
            a.q_lin.forward(x.clone()),
            a.k_lin.forward(x.clone()),
            a.v_lin.forward(x.clone()),
            self.heads,
            bias,
        );
        let x = self.sa_layer_norm.forward(a.out_lin.forward(ctx) + x);
        let ffn = self
            .ffn
            .lin2
            .forward(gelu(self.ffn.lin1.forward(x.clone())));
        self.output_layer_norm.forward(ffn + x)
    }
}

/// `distilbert.transformer`.
#[derive(Module, Debug)]
pub struct DistilTransformer<B: Backend> {
    /// `layer.{i}`.
    pub layer: Vec<DistilBlock<B>>,
}

/// `distilbert`.
#[derive(Module, Debug)]
pub struct DistilBertModel<B: Backend> {
    /// `embeddings`.
    pub embeddings: DistilBertEmbeddings<B>,
    /// `transformer`.
    pub transformer: DistilTransformer<B>,
}

/// `DistilBertForSequenceClassification`: `distilbert`, `pre_classifier`, `classifier`.
#[derive(Module, Debug)]
pub struct DistilBert<B: Backend> {
    /// `distilbert`.
    pub distilbert: DistilBertModel<B>,
    /// `pre_classifier`: `H -> H`, then ReLU.
    pub pre_classifier: Linear<B>,
    /// `classifier`: `H -> classes`.
    pub classifier: Linear<B>,
    /// The artifact's model name.
    #[module(skip)]
    pub name: String,
    /// The longest sequence the position embeddings cover.
    #[module(skip)]
    pub max_positions: usize,
}

impl<B: Backend> DistilBert<B> {
    /// A randomly initialised model named `name`.
    pub fn new(
        name: &str,
        c: &DistilBertConfig,
        classes: usize,
        device: &B::Device,
    ) -> DistilBert<B> {
        let h = c.dim;
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let norm = || {
            LayerNormConfig::new(h)
                .with_epsilon(DISTIL_EPS)
                .init(device)
        };
        let block = || DistilBlock {
            attention: DistilAttention {
                q_lin: linear(h, h),
                k_lin: linear(h, h),
                v_lin: linear(h, h),
                out_lin: linear(h, h),
            },
            sa_layer_norm: norm(),
            ffn: DistilFfn {
                lin1: linear(h, c.hidden_dim),
                lin2: linear(c.hidden_dim, h),
            },
            output_layer_norm: norm(),
            heads: c.n_heads,
        };
        DistilBert {
            distilbert: DistilBertModel {
                embeddings: DistilBertEmbeddings {
                    word_embeddings: EmbeddingConfig::new(c.vocab_size, h).init(device),
                    position_embeddings: EmbeddingConfig::new(c.max_position_embeddings, h)
                        .init(device),
                    layer_norm: norm(),
                },
                transformer: DistilTransformer {
                    layer: (0..c.n_layers).map(|_| block()).collect(),
                },
            },
            pre_classifier: linear(h, h),
            classifier: linear(h, classes),
            name: name.to_string(),
            max_positions: c.max_position_embeddings,
        }
    }
}

impl<B: Backend> StagedModel<B> for DistilBert<B> {
    fn name(&self) -> &str {
        &self.name
    }
    fn family(&self) -> Family {
        Family::Nlp
    }
    fn num_sites(&self) -> usize {
        self.distilbert.transformer.layer.len()
    }
    fn num_classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }
    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        let (ids, mask) = tokens_of(input, &self.name);
        let [_, s] = ids.dims();
        let e = &self.distilbert.embeddings;
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &ids.device()).reshape([1, s]);
        let x = e.word_embeddings.forward(ids) + e.position_embeddings.forward(positions);
        Activation::Tokens {
            hidden: e.layer_norm.forward(x),
            mask,
        }
    }
    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        let (hidden, mask) = hidden_of(x, &self.name);
        let hidden = match self.distilbert.transformer.layer.get(i) {
            Some(block) => block.forward(hidden, padding_bias(&mask)),
            None => hidden,
        };
        Activation::Tokens { hidden, mask }
    }
    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        let (hidden, _) = hidden_of(x, &self.name);
        let [b, _, h] = hidden.dims();
        let first = hidden.slice([0..b, 0..1]).reshape([b, h]);
        self.classifier
            .forward(relu(self.pre_classifier.forward(first)))
    }
    fn site_width(&self, _i: usize) -> usize {
        self.pre_classifier.weight.dims()[0]
    }
    fn example_input(&self, batch: usize, seq_len: usize, device: &B::Device) -> ModelInput<B> {
        let vocab = self.distilbert.embeddings.word_embeddings.weight.dims()[0];
        random_tokens(batch, seq_len, vocab, device)
    }
}
