//! A Hugging Face `tokenizer.json` of the WordPiece kind (BERT, DistilBERT, MiniLM), read by
//! hand: the `BertNormalizer` (control characters dropped, CJK characters isolated, accents
//! stripped, lowercasing), the `BertPreTokenizer` (whitespace and punctuation splits), greedy
//! longest-match WordPiece, then `[CLS] ... [SEP]`, truncation and padding to a fixed length.
//!
//! GPT-2's byte-level BPE is read too (model `BPE` with a `ByteLevel` pre-tokenizer): GPT-2's
//! splitting pattern (contractions, letter runs, digit runs, other runs, whitespace; each may
//! take one leading space), bytes mapped to printable characters, then merges by rank; no special
//! tokens are added, and padding uses `padding.pad_id` or `<|endoftext|>`.
//!
//! It gives the same ids as the `tokenizers` library for ordinary text (checked against it on the
//! MiniLM tokenizer and on a small trained byte-level BPE in the tests). Not handled: special
//! tokens written literally in the text (`"[SEP]"` inside a review is split as plain text),
//! sentence pairs, and other tokenizer models (refused with an error naming the model type).

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
    /// A tokenizer model other than WordPiece and BPE.
    #[error("{}: `model.type` is `{kind}`: expected WordPiece (BERT, DistilBERT, MiniLM) or byte-level BPE (GPT-2)", file.display())]
    Unsupported {
        /// The file.
        file: PathBuf,
        /// The model type found.
        kind: String,
    },
    /// `seq_len` cannot hold the special tokens.
    #[error(
        "sequence length {seq_len}: expected at least 2 (WordPiece: [CLS] and [SEP]) or 1 (BPE)"
    )]
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

/// GPT-2's byte-level BPE.
#[derive(Clone, Debug)]
struct ByteBpe {
    /// Merge ranks: (left, right) to rank (lower merges first).
    ranks: HashMap<(String, String), usize>,
    /// Byte to printable character (GPT-2's `bytes_to_unicode`).
    byte_char: Vec<char>,
    /// Prepend a space when the text does not start with one.
    add_prefix_space: bool,
}

/// The tokenizer model.
#[derive(Clone, Debug)]
enum Kind {
    /// WordPiece, with `[CLS]` and `[SEP]` ids.
    WordPiece { cls: i64, sep: i64 },
    /// Byte-level BPE (no special tokens).
    ByteBpe(ByteBpe),
}

/// A WordPiece or byte-level BPE tokenizer.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    kind: Kind,
    vocab: HashMap<String, i64>,
    unk: i64,
    prefix: String,
    max_chars: usize,
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
        if kind != "WordPiece" && kind != "BPE" {
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
        if kind == "BPE" {
            return Tokenizer::byte_bpe(json, file, vocab);
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
        let kind = Kind::WordPiece {
            cls: lookup("[CLS]", "post_processor ([CLS])")?,
            sep: lookup("[SEP]", "post_processor ([SEP])")?,
        };
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
            kind,
            vocab,
            unk,
            prefix,
            max_chars,
            pad,
            clean_text,
            chinese_chars,
            strip_accents,
            lowercase,
        })
    }

    /// The byte-level BPE part of [`Tokenizer::from_json`].
    fn byte_bpe(
        json: &Value,
        file: &Path,
        vocab: HashMap<String, i64>,
    ) -> Result<Tokenizer, TokenizerError> {
        let field = |path: &str, expected: &str, found: Option<&Value>| TokenizerError::Field {
            file: file.to_path_buf(),
            field: path.to_string(),
            expected: expected.to_string(),
            found: found.map_or("nothing".to_string(), describe),
        };
        let pre = json.get("pre_tokenizer");
        if pre.and_then(|p| p.get("type")).and_then(Value::as_str) != Some("ByteLevel") {
            return Err(field(
                "pre_tokenizer.type",
                "\"ByteLevel\" (GPT-2's byte-level BPE; other BPE tokenizers are not supported)",
                pre.and_then(|p| p.get("type")),
            ));
        }
        if pre.and_then(|p| p.get("use_regex")) == Some(&Value::Bool(false)) {
            return Err(field(
                "pre_tokenizer.use_regex",
                "true (GPT-2's splitting pattern)",
                pre.and_then(|p| p.get("use_regex")),
            ));
        }
        let add_prefix_space = pre
            .and_then(|p| p.get("add_prefix_space"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match json.get("normalizer") {
            None | Some(Value::Null) => {}
            Some(other) => {
                return Err(field(
                    "normalizer",
                    "null for a byte-level BPE",
                    Some(other),
                ))
            }
        }
        let raw = json.get("model").and_then(|m| m.get("merges"));
        let merges = raw
            .and_then(Value::as_array)
            .ok_or_else(|| field("model.merges", "an array of merges", raw))?;
        let mut ranks = HashMap::with_capacity(merges.len());
        for (rank, merge) in merges.iter().enumerate() {
            let pair = match merge {
                Value::String(s) => s
                    .split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string())),
                Value::Array(ab) => match (
                    ab.first().and_then(Value::as_str),
                    ab.get(1).and_then(Value::as_str),
                ) {
                    (Some(a), Some(b)) if ab.len() == 2 => Some((a.to_string(), b.to_string())),
                    _ => None,
                },
                _ => None,
            };
            let pair = pair.ok_or_else(|| {
                field(
                    &format!("model.merges[{rank}]"),
                    "\"left right\" or [\"left\", \"right\"]",
                    Some(merge),
                )
            })?;
            ranks.entry(pair).or_insert(rank);
        }
        let unk = match json
            .get("model")
            .and_then(|m| m.get("unk_token"))
            .and_then(Value::as_str)
        {
            Some(t) => vocab.get(t).copied().unwrap_or(-1),
            None => -1,
        };
        let pad = json
            .get("padding")
            .and_then(|p| p.get("pad_id"))
            .and_then(Value::as_i64)
            .or_else(|| vocab.get("<|endoftext|>").copied())
            .unwrap_or(0);
        Ok(Tokenizer {
            kind: Kind::ByteBpe(ByteBpe {
                ranks,
                byte_char: bytes_to_unicode(),
                add_prefix_space,
            }),
            vocab,
            unk,
            prefix: String::new(),
            max_chars: 0,
            pad,
            clean_text: false,
            chinese_chars: false,
            strip_accents: false,
            lowercase: false,
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
        match &self.kind {
            Kind::WordPiece { .. } => {
                for word in Tokenizer::pre_tokenize(&self.normalize(text)) {
                    self.word_ids(&word, &mut ids);
                }
            }
            Kind::ByteBpe(bpe) => {
                let text = if bpe.add_prefix_space && !text.starts_with(' ') {
                    format!(" {text}")
                } else {
                    text.to_string()
                };
                for piece in gpt2_split(&text) {
                    let mapped: String = piece.bytes().map(|b| bpe.byte_char[b as usize]).collect();
                    for symbol in bpe.merge(&mapped) {
                        ids.push(self.vocab.get(&symbol).copied().unwrap_or(self.unk));
                    }
                }
            }
        }
        ids
    }

    /// `[CLS] text [SEP]` (WordPiece) or the text's tokens (BPE), truncated and padded to
    /// `seq_len`.
    pub fn encode(&self, text: &str, seq_len: usize) -> Result<Encoding, TokenizerError> {
        let mut ids = Vec::with_capacity(seq_len);
        let mut tokens = self.tokenize(text);
        match self.kind {
            Kind::WordPiece { cls, sep } => {
                if seq_len < 2 {
                    return Err(TokenizerError::SeqLen { seq_len });
                }
                tokens.truncate(seq_len - 2);
                ids.push(cls);
                ids.extend(tokens);
                ids.push(sep);
            }
            Kind::ByteBpe(_) => {
                if seq_len < 1 {
                    return Err(TokenizerError::SeqLen { seq_len });
                }
                tokens.truncate(seq_len);
                ids.extend(tokens);
            }
        }
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

impl ByteBpe {
    /// The BPE symbols of one pre-token (already mapped to printable characters): start from its
    /// characters and apply the lowest-ranked merge until none applies.
    fn merge(&self, word: &str) -> Vec<String> {
        let mut symbols: Vec<String> = word.chars().map(String::from).collect();
        loop {
            let best = symbols
                .windows(2)
                .filter_map(|w| self.ranks.get(&(w[0].clone(), w[1].clone())).copied())
                .min();
            let Some(rank) = best else {
                return symbols;
            };
            // Merge every occurrence of that pair, left to right.
            let mut merged = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                let pair = symbols
                    .get(i + 1)
                    .map(|next| (symbols[i].clone(), next.clone()));
                if pair.and_then(|p| self.ranks.get(&p).copied()) == Some(rank) {
                    merged.push(format!("{}{}", symbols[i], symbols[i + 1]));
                    i += 2;
                } else {
                    merged.push(symbols[i].clone());
                    i += 1;
                }
            }
            symbols = merged;
        }
    }
}

/// GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the others to 256, 257, ...
fn bytes_to_unicode() -> Vec<char> {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256;
    (0u32..256)
        .map(|b| {
            let code = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(code).unwrap_or('?')
        })
        .collect()
}

/// GPT-2's pre-tokenizer pattern, by hand:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn gpt2_split(text: &str) -> Vec<&str> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Letter,
        Number,
        Space,
        Other,
    }
    let class = |c: char| {
        if c.is_letter() {
            Class::Letter
        } else if c.is_number() {
            Class::Number
        } else if c.is_whitespace() {
            Class::Space
        } else {
            Class::Other
        }
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map_or(text.len(), |(b, _)| *b);
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        // Contractions (lowercase only, as the pattern).
        if c == '\'' {
            let rest = &text[at(i + 1)..];
            let len = if ["re", "ve", "ll"].iter().any(|s| rest.starts_with(s)) {
                Some(2)
            } else if ["s", "t", "m", "d"].iter().any(|s| rest.starts_with(s)) {
                Some(1)
            } else {
                None
            };
            if let Some(len) = len {
                pieces.push(&text[at(i)..at(i + 1 + len)]);
                i += 1 + len;
                continue;
            }
        }
        // An optional space, then a run of one class.
        let (start, first) = if c == ' ' {
            match chars.get(i + 1) {
                Some((_, n)) if class(*n) != Class::Space => (i + 1, class(*n)),
                _ => (i, Class::Space),
            }
        } else {
            (i, class(c))
        };
        if first != Class::Space {
            let mut j = start + 1;
            while j < chars.len() && class(chars[j].1) == first {
                j += 1;
            }
            pieces.push(&text[at(i)..at(j)]);
            i = j;
            continue;
        }
        // Whitespace: the run, less its last character when a non-space follows (that one is the
        // optional space of the next piece), unless the run is a single character.
        let mut j = i + 1;
        while j < chars.len() && class(chars[j].1) == Class::Space {
            j += 1;
        }
        let end = if j < chars.len() && j - i >= 2 {
            j - 1
        } else {
            j
        };
        pieces.push(&text[at(i)..at(end)]);
        i = end;
    }
    pieces
}
