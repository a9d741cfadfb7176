//! The NLP model families: DistilBERT, BERT and GPT-2 with DeeBERT-style highway ramps.

use super::Architecture;
use crate::artifact::write::profile::tree::{container, site, weight, Builder, Module};

/// Sequence length of the NLP profiles.
const SEQ: i64 = 128;

/// DistilBERT with DeeBERT-style highways; a site is each transformer block.
pub(super) fn distilbert(num_ramps: usize, bs: i64) -> Architecture {
    let (h, ffn) = (768, 3072);
    let tok = [bs, SEQ];
    let mut b = Builder { bs, seg: 0 };
    let embeddings = container(
        "embeddings",
        "Embeddings",
        vec![
            b.embedding("word_embeddings", &tok, 30522, h),
            b.embedding("position_embeddings", &tok, 512, h),
            b.layer_norm("LayerNorm", &tok, h),
            b.dropout("dropout", &[bs, SEQ, h]),
        ],
    );
    let mut layers = Vec::with_capacity(num_ramps);
    for r in 0..num_ramps {
        b.seg = r + 1;
        let block = container(
            &r.to_string(),
            "TransformerBlock",
            vec![
                container(
                    "attention",
                    "MultiHeadSelfAttention",
                    vec![
                        b.dropout("dropout", &[bs, 12, SEQ, SEQ]),
                        b.linear("q_lin", "Linear", &tok, h, h, true),
                        b.linear("k_lin", "Linear", &tok, h, h, true),
                        b.linear("v_lin", "Linear", &tok, h, h, true),
                        b.linear("out_lin", "Linear", &tok, h, h, true),
                    ],
                ),
                b.layer_norm("sa_layer_norm", &tok, h),
                container(
                    "ffn",
                    "FFN",
                    vec![
                        b.dropout("dropout", &[bs, SEQ, h]),
                        b.linear("lin1", "Linear", &tok, h, ffn, true),
                        b.linear("lin2", "Linear", &tok, ffn, h, true),
                        b.elementwise(
                            "activation",
                            "GELUActivation",
                            weight::ACTIVATION,
                            &[bs, SEQ, ffn],
                        ),
                    ],
                ),
                b.layer_norm("output_layer_norm", &tok, h),
            ],
        );
        let ramp = container(
            "branch_net",
            "DistilBertHighway",
            vec![
                b.linear("pre_classifier", "Linear", &[bs], h, h, true),
                b.dropout("dropout", &[bs, h]),
                b.linear("classifier", "Linear", &[bs], h, 2, true),
            ],
        );
        layers.push(site(r, block, ramp));
    }
    b.seg = num_ramps + 1;
    let model = container(
        "distilbert",
        "DistilBertModel",
        vec![
            embeddings,
            container(
                "transformer",
                "Transformer",
                vec![container("layer", "ModuleList", layers)],
            ),
        ],
    );
    let top = vec![
        model,
        b.linear("pre_classifier", "Linear", &[bs], h, h, true),
        b.linear("classifier", "Linear", &[bs], h, 2, true),
        b.dropout("dropout", &[bs, h]),
    ];
    Architecture {
        root: container("model", "DeeDistilBertForSequenceClassification", top),
        cv: false,
        vanilla_type: "DistilBertForSequenceClassification",
        ee_type: "DeeDistilBertForSequenceClassification",
        has_stem: true,
        num_ramps,
    }
}

/// The BERT pooler (dense + tanh on the first token).
fn bert_pooler(b: &Builder, h: i64) -> Module {
    container(
        "pooler",
        "BertPooler",
        vec![
            b.linear("dense", "Linear", &[b.bs], h, h, true),
            b.elementwise("activation", "Tanh", weight::ACTIVATION, &[b.bs, h]),
        ],
    )
}

/// BERT (base or large) with DeeBERT highways; a site is each encoder layer.
pub(super) fn bert(model: &str, num_ramps: usize, bs: i64) -> Architecture {
    let (h, ffn, heads) = if model.contains("large") {
        (1024, 4096, 16)
    } else {
        (768, 3072, 12)
    };
    let tok = [bs, SEQ];
    let hidden = [bs, SEQ, h];
    let mut b = Builder { bs, seg: 0 };
    let embeddings = container(
        "embeddings",
        "BertEmbeddings",
        vec![
            b.embedding("word_embeddings", &tok, 30522, h),
            b.embedding("position_embeddings", &tok, 512, h),
            b.embedding("token_type_embeddings", &tok, 2, h),
            b.layer_norm("LayerNorm", &tok, h),
            b.dropout("dropout", &hidden),
        ],
    );
    let mut layers = Vec::with_capacity(num_ramps);
    for r in 0..num_ramps {
        b.seg = r + 1;
        let layer = container(
            &r.to_string(),
            "BertLayer",
            vec![
                container(
                    "attention",
                    "BertAttention",
                    vec![
                        container(
                            "self",
                            "BertSelfAttention",
                            vec![
                                b.linear("query", "Linear", &tok, h, h, true),
                                b.linear("key", "Linear", &tok, h, h, true),
                                b.linear("value", "Linear", &tok, h, h, true),
                                b.dropout("dropout", &[bs, heads, SEQ, SEQ]),
                            ],
                        ),
                        container(
                            "output",
                            "BertSelfOutput",
                            vec![
                                b.linear("dense", "Linear", &tok, h, h, true),
                                b.layer_norm("LayerNorm", &tok, h),
                                b.dropout("dropout", &hidden),
                            ],
                        ),
                    ],
                ),
                container(
                    "intermediate",
                    "BertIntermediate",
                    vec![
                        b.linear("dense", "Linear", &tok, h, ffn, true),
                        b.elementwise(
                            "intermediate_act_fn",
                            "GELUActivation",
                            weight::ACTIVATION,
                            &[bs, SEQ, ffn],
                        ),
                    ],
                ),
                container(
                    "output",
                    "BertOutput",
                    vec![
                        b.linear("dense", "Linear", &tok, ffn, h, true),
                        b.layer_norm("LayerNorm", &tok, h),
                        b.dropout("dropout", &hidden),
                    ],
                ),
            ],
        );
        let ramp = container(
            "branch_net",
            "BertHighway",
            vec![
                bert_pooler(&b, h),
                b.dropout("dropout", &[bs, h]),
                b.linear("classifier", "Linear", &[bs], h, 2, true),
            ],
        );
        layers.push(site(r, layer, ramp));
    }
    b.seg = num_ramps + 1;
    let model = container(
        "bert",
        "DeeBertModel",
        vec![
            embeddings,
            container(
                "encoder",
                "DeeBertEncoder",
                vec![container("layer", "ModuleList", layers)],
            ),
            bert_pooler(&b, h),
        ],
    );
    let top = vec![
        model,
        b.dropout("dropout", &[bs, h]),
        b.linear("classifier", "Linear", &[bs], h, 2, true),
    ];
    Architecture {
        root: container("model", "DeeBertForSequenceClassification", top),
        cv: false,
        vanilla_type: "BertForSequenceClassification",
        ee_type: "DeeBertForSequenceClassification",
        has_stem: true,
        num_ramps,
    }
}

/// GPT-2 with a highway after each block; a site is each transformer block.
pub(super) fn gpt2(model: &str, num_ramps: usize, bs: i64) -> Architecture {
    let h = if model.contains("xl") {
        1600
    } else if model.contains("large") {
        1280
    } else if model.contains("medium") {
        1024
    } else {
        768
    };
    let tok = [bs, SEQ];
    let hidden = [bs, SEQ, h];
    let mut b = Builder { bs, seg: 0 };
    let mut transformer = vec![
        b.embedding("wte", &tok, 50257, h),
        b.embedding("wpe", &tok, 1024, h),
        b.dropout("drop", &hidden),
    ];
    let mut blocks = Vec::with_capacity(num_ramps);
    for r in 0..num_ramps {
        b.seg = r + 1;
        let block = container(
            &r.to_string(),
            "GPT2Block",
            vec![
                b.layer_norm("ln_1", &tok, h),
                container(
                    "attn",
                    "GPT2Attention",
                    vec![
                        b.linear("c_attn", "Conv1D", &tok, h, 3 * h, true),
                        b.linear("c_proj", "Conv1D", &tok, h, h, true),
                        b.dropout("attn_dropout", &[bs, h / 64, SEQ, SEQ]),
                        b.dropout("resid_dropout", &hidden),
                    ],
                ),
                b.layer_norm("ln_2", &tok, h),
                container(
                    "mlp",
                    "GPT2MLP",
                    vec![
                        b.linear("c_fc", "Conv1D", &tok, h, 4 * h, true),
                        b.linear("c_proj", "Conv1D", &tok, 4 * h, h, true),
                        b.elementwise(
                            "act",
                            "NewGELUActivation",
                            weight::ACTIVATION,
                            &[bs, SEQ, 4 * h],
                        ),
                        b.dropout("dropout", &hidden),
                    ],
                ),
            ],
        );
        let ramp = container(
            "branch_net",
            "GPT2Highway",
            vec![
                b.layer_norm("ln", &[bs], h),
                b.linear("classifier", "Linear", &[bs], h, 2, true),
            ],
        );
        blocks.push(site(r, block, ramp));
    }
    b.seg = num_ramps + 1;
    transformer.push(container("h", "ModuleList", blocks));
    transformer.push(b.layer_norm("ln_f", &tok, h));
    let top = vec![
        container("transformer", "GPT2Model", transformer),
        b.linear("score", "Linear", &[bs], h, 2, false),
    ];
    Architecture {
        root: container("model", "GPT2EarlyExitForSequenceClassification", top),
        cv: false,
        vanilla_type: "GPT2ForSequenceClassification",
        ee_type: "GPT2EarlyExitForSequenceClassification",
        has_stem: true,
        num_ramps,
    }
}
