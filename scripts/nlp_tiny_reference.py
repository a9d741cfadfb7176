#!/usr/bin/env python3
"""Reference logits of the tiny NLP models (backend/tests/fixtures/nlp-tiny-reference.json).

The weights are not random: every tensor is a formula of its Hugging Face name and shape (see
`weight`), so the Rust test builds the same checkpoint itself (in Hugging Face names and PyTorch
layouts, loaded through the backend's HF loader) and no binary fixture is committed. The forward
passes of BertForSequenceClassification, DistilBertForSequenceClassification and
GPT2ForSequenceClassification (last non-padding token) are written here in float64 numpy,
independently of the Rust code, following Hugging Face's modelling code.

Usage: python3 scripts/nlp_tiny_reference.py OUT_DIR (needs numpy; made with numpy 2.4.6).
"""

import json
import math
import os
import sys

import numpy as np

V, P, H, HEADS, LAYERS, CLASSES = 100, 64, 32, 4, 2, 3
IDS = [[5, 17, 33, 2, 9, 0, 0], [7, 8, 9, 10, 11, 12, 13]]
MASK = [[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]


def weight(name, shape):
    """0.1 sin(0.37 i + (sum of the name's bytes mod 97) / 10) over the flat index i; one-dimensional
    `.weight` tensors (the layer norms' scales) get 1 + that."""
    n = int(np.prod(shape))
    phase = (sum(name.encode()) % 97) / 10.0
    v = 0.1 * np.sin(0.37 * np.arange(n, dtype=np.float64) + phase)
    if len(shape) == 1 and name.endswith(".weight"):
        v = 1.0 + v
    return v.reshape(shape)


class W:
    def __init__(self, shapes):
        self.shapes = shapes
        self.t = {k: weight(k, s) for k, s in shapes.items()}

    def __getitem__(self, k):
        return self.t[k]


def ln(x, w, b, eps):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def attention(q, k, v, bias):
    b, s, h = q.shape
    d = h // HEADS

    def split(t):
        return t.reshape(b, s, HEADS, d).transpose(0, 2, 1, 3)

    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
    scores = scores - scores.max(-1, keepdims=True)
    p = np.exp(scores)
    p = p / p.sum(-1, keepdims=True)
    return (p @ v).transpose(0, 2, 1, 3).reshape(b, s, h)


def linear(w, x, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def pad_bias(mask):
    return (1.0 - mask)[:, None, None, :] * -1e30


def bert(ids, mask):
    inter = 64
    shapes = {
        "bert.embeddings.word_embeddings.weight": (V, H),
        "bert.embeddings.position_embeddings.weight": (P, H),
        "bert.embeddings.token_type_embeddings.weight": (2, H),
        "bert.embeddings.LayerNorm.weight": (H,),
        "bert.embeddings.LayerNorm.bias": (H,),
        "bert.pooler.dense.weight": (H, H),
        "bert.pooler.dense.bias": (H,),
        "classifier.weight": (CLASSES, H),
        "classifier.bias": (CLASSES,),
    }
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            shapes[p + n + ".weight"] = (H, H)
            shapes[p + n + ".bias"] = (H,)
        shapes[p + "intermediate.dense.weight"] = (inter, H)
        shapes[p + "intermediate.dense.bias"] = (inter,)
        shapes[p + "output.dense.weight"] = (H, inter)
        shapes[p + "output.dense.bias"] = (H,)
        for n in ["attention.output.LayerNorm", "output.LayerNorm"]:
            shapes[p + n + ".weight"] = (H,)
            shapes[p + n + ".bias"] = (H,)
    w = W(shapes)
    s = ids.shape[1]
    e = "bert.embeddings."
    x = w[e + "word_embeddings.weight"][ids] + w[e + "token_type_embeddings.weight"][0] + w[e + "position_embeddings.weight"][:s]
    x = ln(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], 1e-12)
    bias = pad_bias(mask)
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        ctx = attention(linear(w, x, p + "attention.self.query"), linear(w, x, p + "attention.self.key"), linear(w, x, p + "attention.self.value"), bias)
        a = ln(linear(w, ctx, p + "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], 1e-12)
        f = linear(w, gelu(linear(w, a, p + "intermediate.dense")), p + "output.dense")
        x = ln(f + a, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], 1e-12)
    pooled = np.tanh(linear(w, x[:, 0], "bert.pooler.dense"))
    return linear(w, pooled, "classifier"), shapes


def distilbert(ids, mask):
    inter = 64
    shapes = {
        "distilbert.embeddings.word_embeddings.weight": (V, H),
        "distilbert.embeddings.position_embeddings.weight": (P, H),
        "distilbert.embeddings.LayerNorm.weight": (H,),
        "distilbert.embeddings.LayerNorm.bias": (H,),
        "pre_classifier.weight": (H, H),
        "pre_classifier.bias": (H,),
        "classifier.weight": (CLASSES, H),
        "classifier.bias": (CLASSES,),
    }
    for i in range(LAYERS):
        p = f"distilbert.transformer.layer.{i}."
        for n in ["q_lin", "k_lin", "v_lin", "out_lin"]:
            shapes[p + "attention." + n + ".weight"] = (H, H)
            shapes[p + "attention." + n + ".bias"] = (H,)
        shapes[p + "ffn.lin1.weight"] = (inter, H)
        shapes[p + "ffn.lin1.bias"] = (inter,)
        shapes[p + "ffn.lin2.weight"] = (H, inter)
        shapes[p + "ffn.lin2.bias"] = (H,)
        for n in ["sa_layer_norm", "output_layer_norm"]:
            shapes[p + n + ".weight"] = (H,)
            shapes[p + n + ".bias"] = (H,)
    w = W(shapes)
    s = ids.shape[1]
    e = "distilbert.embeddings."
    x = w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][:s]
    x = ln(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], 1e-12)
    bias = pad_bias(mask)
    for i in range(LAYERS):
        p = f"distilbert.transformer.layer.{i}."
        a = p + "attention."
        ctx = attention(linear(w, x, a + "q_lin"), linear(w, x, a + "k_lin"), linear(w, x, a + "v_lin"), bias)
        sa = ln(linear(w, ctx, a + "out_lin") + x, w[p + "sa_layer_norm.weight"], w[p + "sa_layer_norm.bias"], 1e-12)
        f = linear(w, gelu(linear(w, sa, p + "ffn.lin1")), p + "ffn.lin2")
        x = ln(f + sa, w[p + "output_layer_norm.weight"], w[p + "output_layer_norm.bias"], 1e-12)
    return linear(w, np.maximum(linear(w, x[:, 0], "pre_classifier"), 0.0), "classifier"), shapes


def gpt2(ids, mask):
    inner = 4 * H
    shapes = {
        "transformer.wte.weight": (V, H),
        "transformer.wpe.weight": (P, H),
        "transformer.ln_f.weight": (H,),
        "transformer.ln_f.bias": (H,),
        "score.weight": (CLASSES, H),
    }
    for i in range(LAYERS):
        p = f"transformer.h.{i}."
        for n in ["ln_1", "ln_2"]:
            shapes[p + n + ".weight"] = (H,)
            shapes[p + n + ".bias"] = (H,)
        # Conv1D: weight [in, out].
        shapes[p + "attn.c_attn.weight"] = (H, 3 * H)
        shapes[p + "attn.c_attn.bias"] = (3 * H,)
        shapes[p + "attn.c_proj.weight"] = (H, H)
        shapes[p + "attn.c_proj.bias"] = (H,)
        shapes[p + "mlp.c_fc.weight"] = (H, inner)
        shapes[p + "mlp.c_fc.bias"] = (inner,)
        shapes[p + "mlp.c_proj.weight"] = (inner, H)
        shapes[p + "mlp.c_proj.bias"] = (H,)
    w = W(shapes)

    def conv1d(x, name):
        return x @ w[name + ".weight"] + w[name + ".bias"]

    b, s = ids.shape
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:s]
    causal = np.triu(np.ones((s, s)), 1)[None, None] * -1e30
    bias = pad_bias(mask) + causal
    for i in range(LAYERS):
        p = f"transformer.h.{i}."
        qkv = conv1d(ln(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5), p + "attn.c_attn")
        q, k, v = qkv[..., :H], qkv[..., H : 2 * H], qkv[..., 2 * H :]
        x = x + conv1d(attention(q, k, v, bias), p + "attn.c_proj")
        m = gelu_new(conv1d(ln(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5), p + "mlp.c_fc"))
        x = x + conv1d(m, p + "mlp.c_proj")
    x = ln(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], 1e-5)
    last = (np.arange(s)[None, :] * mask).argmax(-1)
    logits = x @ w["score.weight"].T
    return logits[np.arange(b), last], shapes


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ids = np.array(IDS)
    mask = np.array(MASK, dtype=np.float64)
    models = {"bert-tiny": bert, "distilbert-tiny": distilbert, "gpt2-tiny": gpt2}
    results = {name: f(ids, mask) for name, f in models.items()}
    out = {
        "generator": f"scripts/nlp_tiny_reference.py (float64 numpy {np.__version__})",
        "ids": IDS,
        "mask": MASK,
        "logits": {name: r[0].tolist() for name, r in results.items()},
        "tensors": {name: {k: list(v) for k, v in sorted(r[1].items())} for name, r in results.items()},
    }
    with open(os.path.join(sys.argv[1], "nlp-tiny-reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
