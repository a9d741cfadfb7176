//! A Hugging Face `tokenizer.json` of the WordPiece kind (BERT, DistilBERT, MiniLM), read by
//! hand: the `BertNormalizer` (control characters dropped, CJK characters isolated, accents
//! stripped, lowercasing), the `BertPreTokenizer` (whitespace and punctuation splits), greedy
//! longest-match WordPiece, then `[CLS] ... [SEP]`, truncation and padding to a fixed length.
//!
//! It gives the same ids as the `tokenizers` library for ordinary text (checked against it on the
//! MiniLM tokenizer in the tests). Not handled: special tokens written literally in the text
//! (`"[SEP]"` inside a review is split as plain text), sentence pairs, and other tokenizer
//! models: GPT-2's byte-level BPE is refused with an error naming the model type.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use serde_json::Value;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

use crate::models::ModelInput;

/// Why a `tokenizer.json` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{}: not JSON: {message}", file.display())]
    Json {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A field is missing or has the wrong type or value.
    #[error("{}: `{field}`: expected {expected}, found {found}", file.display())]
    Field {
        /// The file.
        file: PathBuf,
        /// The JSON path of the field.
        field: String,
        /// What was expected there.
        expected: String,
        /// What is there.
        found: String,
    },
    /// A tokenizer model other than WordPiece.
    #[error("{}: `model.type` is `{kind}`: only WordPiece tokenizers (BERT, DistilBERT, MiniLM) are supported; GPT-2's byte-level BPE is not implemented yet", file.display())]
    Unsupported {
        /// The file.
        file: PathBuf,
        /// The model type found.
        kind: String,
    },
    /// `seq_len` cannot hold `[CLS]` and `[SEP]`.
    #[error("sequence length {seq_len}: expected at least 2 (for [CLS] and [SEP])")]
    SeqLen {
        /// The length asked for.
        seq_len: usize,
    },
}

/// One encoded text: `seq_len` ids and the attention mask (1 = token, 0 = padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// Token ids, `[CLS] tokens [SEP]` then padding.
    pub ids: Vec<i64>,
    /// 1 for the real tokens, 0 for the padding.
    pub mask: Vec<i64>,
}

/// A WordPiece tokenizer.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    vocab: HashMap<String, i64>,
    unk: i64,
    prefix: String,
    max_chars: usize,
    cls: i64,
    sep: i64,
    pad: i64,
    clean_text: bool,
    chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::String(s) => format!("\"{s}\""),
        Value::Object(_) => "an object".to_string(),
        Value::Array(_) => "an array".to_string(),
        other => other.to_string(),
    }
}

impl Tokenizer {
    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_file(file: &Path) -> Result<Tokenizer, TokenizerError> {
        let text = std::fs::read_to_string(file).map_err(|source| TokenizerError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| TokenizerError::Json {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        Tokenizer::from_json(&json, file)
    }

    /// Reads the parsed JSON of a `tokenizer.json` (`file` only names it in errors).
    pub fn from_json(json: &Value, file: &Path) -> Result<Tokenizer, TokenizerError> {
        let field = |path: &str, expected: &str, found: Option<&Value>| TokenizerError::Field {
            file: file.to_path_buf(),
            field: path.to_string(),
            expected: expected.to_string(),
            found: found.map_or("nothing".to_string(), describe),
        };
        let model = json.get("model");
        let kind = model
            .and_then(|m| m.get("type"))
            .and_then(Value::as_str)
            .ok_or_else(|| field("model.type", "a string", model.and_then(|m| m.get("type"))))?;
        if kind != "WordPiece" {
            return Err(TokenizerError::Unsupported {
                file: file.to_path_buf(),
                kind: kind.to_string(),
            });
        }
        let raw_vocab = model.and_then(|m| m.get("vocab"));
        let vocab_obj = raw_vocab
            .and_then(Value::as_object)
            .ok_or_else(|| field("model.vocab", "an object of token: id", raw_vocab))?;
        let mut vocab = HashMap::with_capacity(vocab_obj.len());
        for (token, id) in vocab_obj {
            let id = id
                .as_i64()
                .ok_or_else(|| field(&format!("model.vocab.{token}"), "an integer id", Some(id)))?;
            vocab.insert(token.clone(), id);
        }
        let str_field =
            |path: &str, v: Option<&Value>, default: &str| -> Result<String, TokenizerError> {
                match v {
                    None | Some(Value::Null) => Ok(default.to_string()),
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => Err(field(path, "a string", Some(other))),
                }
            };
        let unk_token = str_field(
            "model.unk_token",
            model.and_then(|m| m.get("unk_token")),
            "[UNK]",
        )?;
        let prefix = str_field(
            "model.continuing_subword_prefix",
            model.and_then(|m| m.get("continuing_subword_prefix")),
            "##",
        )?;
        let max_chars = match model.and_then(|m| m.get("max_input_chars_per_word")) {
            None | Some(Value::Null) => 100,
            Some(v) => v.as_u64().ok_or_else(|| {
                field(
                    "model.max_input_chars_per_word",
                    "a non-negative integer",
                    Some(v),
                )
            })? as usize,
        };
        let lookup = |token: &str, path: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| field(path, &format!("`{token}` in model.vocab"), None))
        };
        let unk = lookup(&unk_token, "model.unk_token")?;
        let cls = lookup("[CLS]", "post_processor ([CLS])")?;
        let sep = lookup("[SEP]", "post_processor ([SEP])")?;
        let pad = match json
            .get("padding")
            .and_then(|p| p.get("pad_id"))
            .and_then(Value::as_i64)
        {
            Some(id) => id,
            None => lookup("[PAD]", "padding.pad_id ([PAD])")?,
        };

        // The normaliser: BertNormalizer, or none.
        let normalizer = json.get("normalizer");
        let (mut clean_text, mut chinese_chars, mut strip_accents, mut lowercase) =
            (false, false, false, false);
        match normalizer {
            None | Some(Value::Null) => {}
            Some(n) => {
                let ntype = n.get("type").and_then(Value::as_str);
                if ntype != Some("BertNormalizer") {
                    return Err(field(
                        "normalizer.type",
                        "\"BertNormalizer\" (or no normalizer)",
                        n.get("type"),
                    ));
                }
                let flag = |name: &str, default: bool| -> Result<Option<bool>, TokenizerError> {
                    match n.get(name) {
                        None => Ok(Some(default)),
                        Some(Value::Null) => Ok(None),
                        Some(Value::Bool(b)) => Ok(Some(*b)),
                        Some(other) => Err(field(
                            &format!("normalizer.{name}"),
                            "true, false or null",
                            Some(other),
                        )),
                    }
                };
                clean_text = flag("clean_text", true)?.unwrap_or(true);
                chinese_chars = flag("handle_chinese_chars", true)?.unwrap_or(true);
                lowercase = flag("lowercase", true)?.unwrap_or(true);
                // `null` follows `lowercase`, as in Hugging Face.
                strip_accents = flag("strip_accents", lowercase)?.unwrap_or(lowercase);
            }
        }
        match json.get("pre_tokenizer") {
            None | Some(Value::Null) => {}
            Some(p) => {
                let ptype = p.get("type").and_then(Value::as_str);
                if ptype != Some("BertPreTokenizer") {
                    return Err(field(
                        "pre_tokenizer.type",
                        "\"BertPreTokenizer\"",
                        p.get("type"),
                    ));
                }
            }
        }
        Ok(Tokenizer {
            vocab,
            unk,
            prefix,
            max_chars,
            cls,
            sep,
            pad,
            clean_text,
            chinese_chars,
            strip_accents,
            lowercase,
        })
    }

    /// The vocabulary size (the largest id + 1).
    pub fn vocab_size(&self) -> usize {
        self.vocab.values().max().map_or(0, |m| *m as usize + 1)
    }

    /// The normalised text (the `BertNormalizer`).
    pub fn normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    out.push(' ');
                    continue;
                }
            }
            if self.chinese_chars && is_chinese_char(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        if self.strip_accents {
            out = out.nfd().filter(|c| !c.is_mark_nonspacing()).collect();
        }
        if self.lowercase {
            out = out.to_lowercase();
        }
        out
    }

    /// The words of a normalised text (the `BertPreTokenizer`): split at whitespace (dropped)
    /// and around every punctuation character (kept as its own word).
    pub fn pre_tokenize(text: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        for c in text.chars() {
            if c.is_whitespace() {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            } else if c.is_ascii_punctuation() || c.is_punctuation() {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                words.push(c.to_string());
            } else {
                word.push(c);
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    }

    /// The WordPiece ids of one word: greedy longest match first, continuations with the
    /// prefix (`##`); `[UNK]` for the whole word when a piece has no match or the word is longer
    /// than `max_input_chars_per_word`.
    fn word_ids(&self, word: &str, out: &mut Vec<i64>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > self.max_chars {
            out.push(self.unk);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                let from = chars[start].0;
                let to = chars.get(end).map_or(word.len(), |(i, _)| *i);
                let piece = &word[from..to];
                let id = if start > 0 {
                    self.vocab.get(&format!("{}{piece}", self.prefix))
                } else {
                    self.vocab.get(piece)
                };
                if let Some(id) = id {
                    found = Some(*id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => pieces.push(id),
                None => {
                    out.push(self.unk);
                    return;
                }
            }
            start = end;
        }
        out.extend(pieces);
    }

    /// The ids of `text` without special tokens.
    pub fn tokenize(&self, text: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        for word in Tokenizer::pre_tokenize(&self.normalize(text)) {
            self.word_ids(&word, &mut ids);
        }
        ids
    }

    /// `[CLS] text [SEP]`, truncated and padded to `seq_len`.
    pub fn encode(&self, text: &str, seq_len: usize) -> Result<Encoding, TokenizerError> {
        if seq_len < 2 {
            return Err(TokenizerError::SeqLen { seq_len });
        }
        let mut tokens = self.tokenize(text);
        tokens.truncate(seq_len - 2);
        let mut ids = Vec::with_capacity(seq_len);
        ids.push(self.cls);
        ids.extend(tokens);
        ids.push(self.sep);
        let real = ids.len();
        ids.resize(seq_len, self.pad);
        let mut mask = vec![1; real];
        mask.resize(seq_len, 0);
        Ok(Encoding { ids, mask })
    }

    /// A batch of texts as a model input (`[batch, seq_len]` ids and mask).
    pub fn encode_batch<B: Backend>(
        &self,
        texts: &[&str],
        seq_len: usize,
        device: &B::Device,
    ) -> Result<ModelInput<B>, TokenizerError> {
        let mut ids = Vec::with_capacity(texts.len() * seq_len);
        let mut mask = Vec::with_capacity(texts.len() * seq_len);
        for text in texts {
            let e = self.encode(text, seq_len)?;
            ids.extend(e.ids);
            mask.extend(e.mask);
        }
        let shape = [texts.len(), seq_len];
        Ok(ModelInput::Tokens {
            ids: Tensor::<B, 2, Int>::from_data(TensorData::new(ids, shape), device),
            mask: Tensor::<B, 2, Int>::from_data(TensorData::new(mask, shape), device),
        })
    }
}

/// Hugging Face's `is_whitespace`.
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Hugging Face's `is_control`: the Unicode "other" categories, except tab and newlines.
fn is_control(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        _ => c.is_other(),
    }
}

/// The CJK ideograph blocks BERT isolates.
fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}
