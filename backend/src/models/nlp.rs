//! The NLP models by name: the paper's four (`distilbert-base`, `bert-base`, `bert-large`,
//! `gpt2-medium`, the artifact's spellings) and a tiny one of each architecture for tests
//! (`bert-tiny`, `distilbert-tiny`, `gpt2-tiny`), as one [`NlpModel`] that is a
//! [`StagedModel`] and loads Hugging Face checkpoints.

use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::bert::{Bert, BertConfig, DistilBert, DistilBertConfig};
use super::gpt2::{Gpt2, Gpt2Config};
use super::hf::{self, HfError, LoadOptions, LoadReport};
use super::{Activation, Family, ModelInput, StagedModel};
use crate::ramps::{RampSet, TokenPool};

/// The paper's NLP models, then the tiny test models.
pub const NLP_MODEL_NAMES: [&str; 7] = [
    "distilbert-base",
    "bert-base",
    "bert-large",
    "gpt2-medium",
    "bert-tiny",
    "distilbert-tiny",
    "gpt2-tiny",
];

/// An unknown model name.
#[derive(Debug, thiserror::Error)]
#[error("unknown NLP model `{name}`: expected one of {}", NLP_MODEL_NAMES.join(", "))]
pub struct UnknownNlpModel {
    /// The name asked for.
    pub name: String,
}

/// A token input the model cannot take (its embeddings would be indexed out of range).
#[derive(Debug, thiserror::Error)]
pub enum TokenInputError {
    /// Longer than the position embeddings.
    #[error("sequence length {seq_len}: expected at most {max} ({model}'s position embeddings)")]
    TooLong {
        /// The model.
        model: String,
        /// The length asked for.
        seq_len: usize,
        /// The longest the model takes.
        max: usize,
    },
    /// A tokenizer whose ids go beyond the model's vocabulary.
    #[error("tokenizer vocabulary of {tokenizer} ids: expected at most {model_vocab} ({model}'s word embeddings)")]
    Vocabulary {
        /// The model.
        model: String,
        /// The tokenizer's vocabulary size.
        tokenizer: usize,
        /// The model's vocabulary size.
        model_vocab: usize,
    },
}

/// One of the NLP models.
#[derive(Module, Debug)]
pub enum NlpModel<B: Backend> {
    /// BERT (base, large, tiny, or any `BertModel` shape).
    Bert(Bert<B>),
    /// DistilBERT.
    DistilBert(DistilBert<B>),
    /// GPT-2.
    Gpt2(Gpt2<B>),
}

/// A randomly initialised NLP model by name, with `classes` outputs (weights load afterwards with
/// [`NlpModel::load_hf`]).
pub fn build_nlp<B: Backend>(
    name: &str,
    classes: usize,
    device: &B::Device,
) -> Result<NlpModel<B>, UnknownNlpModel> {
    let bert = |c: BertConfig| NlpModel::Bert(Bert::new(name, &c, classes, device));
    let distil =
        |c: DistilBertConfig| NlpModel::DistilBert(DistilBert::new(name, &c, classes, device));
    let gpt2 = |c: Gpt2Config| NlpModel::Gpt2(Gpt2::new(name, &c, classes, device));
    Ok(match name {
        "bert-base" => bert(BertConfig::base()),
        "bert-large" => bert(BertConfig::large()),
        "bert-tiny" => bert(BertConfig::tiny()),
        "distilbert-base" => distil(DistilBertConfig::base()),
        "distilbert-tiny" => distil(DistilBertConfig::tiny()),
        "gpt2-medium" => gpt2(Gpt2Config::medium()),
        "gpt2-tiny" => gpt2(Gpt2Config::tiny()),
        _ => {
            return Err(UnknownNlpModel {
                name: name.to_string(),
            })
        }
    })
}

impl<B: Backend> NlpModel<B> {
    /// Loads a Hugging Face safetensors checkpoint (see [`hf::load_hf`]).
    pub fn load_hf(&mut self, file: &Path, opts: LoadOptions) -> Result<LoadReport, HfError> {
        match self {
            NlpModel::Bert(m) => hf::load_hf(m, file, opts),
            NlpModel::DistilBert(m) => hf::load_hf(m, file, opts),
            NlpModel::Gpt2(m) => hf::load_hf(m, file, opts),
        }
    }

    /// Saves the model as a Hugging Face safetensors checkpoint (see [`hf::save_hf`]).
    pub fn save_hf(&self, file: &Path) -> Result<(), HfError> {
        match self {
            NlpModel::Bert(m) => hf::save_hf(m, file),
            NlpModel::DistilBert(m) => hf::save_hf(m, file),
            NlpModel::Gpt2(m) => hf::save_hf(m, file),
        }
    }

    /// The longest sequence the position embeddings cover (longer inputs must be truncated).
    pub fn max_positions(&self) -> usize {
        match self {
            NlpModel::Bert(m) => m.max_positions,
            NlpModel::DistilBert(m) => m.max_positions,
            NlpModel::Gpt2(m) => m.max_positions,
        }
    }

    /// The number of token ids the word embeddings cover.
    pub fn vocab_size(&self) -> usize {
        match self {
            NlpModel::Bert(m) => m.bert.embeddings.word_embeddings.weight.dims()[0],
            NlpModel::DistilBert(m) => m.distilbert.embeddings.word_embeddings.weight.dims()[0],
            NlpModel::Gpt2(m) => m.transformer.wte.weight.dims()[0],
        }
    }

    /// Refuses inputs of `seq_len` tokens from a tokenizer of `tokenizer_vocab` ids that the
    /// model cannot embed (call before running it: out-of-range ids are not checked later).
    pub fn check_tokens(
        &self,
        seq_len: usize,
        tokenizer_vocab: usize,
    ) -> Result<(), TokenInputError> {
        if seq_len > self.max_positions() {
            return Err(TokenInputError::TooLong {
                model: self.name().to_string(),
                seq_len,
                max: self.max_positions(),
            });
        }
        if tokenizer_vocab > self.vocab_size() {
            return Err(TokenInputError::Vocabulary {
                model: self.name().to_string(),
                tokenizer: tokenizer_vocab,
                model_vocab: self.vocab_size(),
            });
        }
        Ok(())
    }

    /// Ramps for every site, initialised as the artifact does: BERT's highways copy the model's
    /// pooler (DeeBERT's `init_highway_pooler`); DistilBERT and GPT-2 have no pooler of that
    /// shape (DistilBERT's `pre_classifier` is followed by ReLU, not tanh), so theirs start
    /// random. GPT-2's read the last real token.
    pub fn ramps(&self, device: &B::Device) -> RampSet<B> {
        let ramps = RampSet::for_model(self, device);
        match self {
            NlpModel::Bert(m) => m.init_highway_poolers(ramps),
            _ => ramps,
        }
    }
}

impl<B: Backend> StagedModel<B> for NlpModel<B> {
    fn name(&self) -> &str {
        match self {
            NlpModel::Bert(m) => m.name(),
            NlpModel::DistilBert(m) => m.name(),
            NlpModel::Gpt2(m) => m.name(),
        }
    }
    fn family(&self) -> Family {
        Family::Nlp
    }
    fn num_sites(&self) -> usize {
        match self {
            NlpModel::Bert(m) => m.num_sites(),
            NlpModel::DistilBert(m) => m.num_sites(),
            NlpModel::Gpt2(m) => m.num_sites(),
        }
    }
    fn num_classes(&self) -> usize {
        match self {
            NlpModel::Bert(m) => m.num_classes(),
            NlpModel::DistilBert(m) => m.num_classes(),
            NlpModel::Gpt2(m) => m.num_classes(),
        }
    }
    fn stem(&self, input: ModelInput<B>) -> Activation<B> {
        match self {
            NlpModel::Bert(m) => m.stem(input),
            NlpModel::DistilBert(m) => m.stem(input),
            NlpModel::Gpt2(m) => m.stem(input),
        }
    }
    fn segment(&self, i: usize, x: Activation<B>) -> Activation<B> {
        match self {
            NlpModel::Bert(m) => m.segment(i, x),
            NlpModel::DistilBert(m) => m.segment(i, x),
            NlpModel::Gpt2(m) => m.segment(i, x),
        }
    }
    fn finish(&self, x: Activation<B>) -> Tensor<B, 2> {
        match self {
            NlpModel::Bert(m) => m.finish(x),
            NlpModel::DistilBert(m) => m.finish(x),
            NlpModel::Gpt2(m) => m.finish(x),
        }
    }
    fn site_width(&self, i: usize) -> usize {
        match self {
            NlpModel::Bert(m) => m.site_width(i),
            NlpModel::DistilBert(m) => m.site_width(i),
            NlpModel::Gpt2(m) => m.site_width(i),
        }
    }
    fn example_input(&self, batch: usize, seq_len: usize, device: &B::Device) -> ModelInput<B> {
        match self {
            NlpModel::Bert(m) => m.example_input(batch, seq_len, device),
            NlpModel::DistilBert(m) => m.example_input(batch, seq_len, device),
            NlpModel::Gpt2(m) => m.example_input(batch, seq_len, device),
        }
    }
    fn ramp_token(&self) -> TokenPool {
        match self {
            NlpModel::Bert(m) => m.ramp_token(),
            NlpModel::DistilBert(m) => m.ramp_token(),
            NlpModel::Gpt2(m) => m.ramp_token(),
        }
    }
}
