//! The artifact writers (`artifact::write`): byte-for-byte against the golden inputs, bit-exact
//! round trips through the readers, and CPython loading (and re-dumping) every kind of file.

use crate::util::golden_dir;
use apparate::artifact::value::{decode_pickle, dict_get, float_of, int_of};
use apparate::artifact::write::{
    batch_decisions_bytes, profile_file_names, ramp_data_bytes, write_batch_decisions,
    write_profiles, write_ramp_data, AvgQps, DecisionRecord, WriteError,
};
use apparate::artifact::{
    read_batch_decisions, read_latency_tables, read_ramp_data, ArtifactError,
    MAX_PROFILE_LATENCY_MS,
};
use apparate::sim::{LatencyTable, LatencyTables, RampCost, RampData, BATCH_SIZES};
use apparate::workload::{self, models::MODELS};
use proptest::prelude::*;
use serde_pickle::Value;
use std::path::{Path, PathBuf};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("artifact-writers-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Every `data/<sub>/*.pickle` of the golden scenarios.
fn golden_files(sub: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for scenario in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let dir = scenario.expect("entry").path().join("data").join(sub);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.map(|e| e.expect("entry").path()));
        }
    }
    files.sort();
    files
}

/// Bit-for-bit equality of two tables (`==` on f64 would accept -0.0 for 0.0).
fn assert_tables_identical(got: &LatencyTables, want: &LatencyTables, what: &str) {
    for ((bs, g), (_, w)) in got.iter().zip(want.iter()) {
        let bits = |t: &LatencyTable| {
            let mut v: Vec<u64> = t
                .ramps
                .iter()
                .flat_map(|r| [r.vanilla_up_to_ms.to_bits(), r.ramp_ms.to_bits()])
                .collect();
            v.push(t.vanilla_ms.to_bits());
            v
        };
        assert_eq!(bits(g), bits(w), "{what}: table of batch size {}", bs.get());
    }
}

#[test]
fn sample_pickles_are_written_byte_for_byte_as_cpython_wrote_the_golden_ones() {
    let files: Vec<PathBuf> = golden_files("bootstrap_pickles")
        .into_iter()
        .chain(golden_files("simulation_pickles"))
        .collect();
    assert!(files.len() >= 12, "golden sample pickles missing");
    for path in files {
        let data = read_ramp_data(&path).expect("golden reads");
        let ours = ramp_data_bytes(&data).expect("writes");
        let theirs = std::fs::read(&path).expect("golden bytes");
        assert!(ours == theirs, "{}: bytes differ", path.display());
    }
}

/// The golden decision dict as a [`DecisionRecord`].
fn record_of(value: &Value) -> DecisionRecord {
    let Value::Dict(d) = value else {
        panic!("not a dict")
    };
    let get = |k: &str| dict_get(d, k).unwrap_or_else(|| panic!("key {k}"));
    let list = |k: &str| match get(k) {
        Value::List(items) => items.clone(),
        other => panic!("{k}: {other:?}"),
    };
    let text = |k: &str| match get(k) {
        Value::String(s) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    let float = |k: &str| float_of(get(k)).unwrap_or_else(|| panic!("{k}"));
    let count = |k: &str| int_of(get(k)).unwrap_or_else(|| panic!("{k}")) as usize;
    let avg_qps = match get("avg_qps") {
        Value::F64(x) => AvgQps::Float(*x),
        other => AvgQps::NumpyFloat64(float_of(other).expect("numpy float")),
    };
    DecisionRecord {
        batching_decision: list("batching_decision")
            .iter()
            .map(|v| int_of(v).expect("int") as usize)
            .collect(),
        per_request_stats: list("per_request_stats")
            .iter()
            .map(|v| match v {
                Value::None => None,
                Value::Tuple(p) => Some((float_of(&p[0]).expect("q"), float_of(&p[1]).expect("m"))),
                other => panic!("stat {other:?}"),
            })
            .collect(),
        total_num_requests: count("total_num_requests"),
        batching_scheme: text("batching_scheme"),
        arch: text("arch"),
        slo: float("slo"),
        dataset: text("dataset"),
        avg_qps,
        end_time: float("end_time"),
        max_batch_size: count("max_batch_size"),
        batch_timeout_ms: float("batch_timeout_ms"),
        max_enqueued_batches: count("max_enqueued_batches"),
    }
}

#[test]
fn decision_pickles_are_written_byte_for_byte_as_the_golden_ones_numpy_avg_qps_included() {
    let files = golden_files("batch_decisions");
    assert!(files.len() >= 5, "golden decision pickles missing");
    let mut numpy = 0;
    for path in files {
        let theirs = std::fs::read(&path).expect("golden bytes");
        let record = record_of(&decode_pickle(&path, &theirs).expect("decodes"));
        numpy += usize::from(matches!(record.avg_qps, AvgQps::NumpyFloat64(_)));
        let ours = batch_decisions_bytes(&record);
        assert!(ours == theirs, "{}: bytes differ", path.display());
    }
    assert_eq!(numpy, 2, "both NLP files hold a numpy.float64 avg_qps");
}

#[test]
fn latency_tables_round_trip_bit_exact_for_every_model_preset() {
    let dir = temp_dir("presets");
    for m in &MODELS {
        let tables = m.latency_tables();
        let written = write_profiles(&dir, m.name, &tables).expect("writes");
        let per_bs = if workload::model_family(m.name) == Some(apparate::sim::Family::Cv) {
            2
        } else {
            1
        };
        assert_eq!(written.len(), per_bs * BATCH_SIZES.len(), "{}", m.name);
        for bs in BATCH_SIZES {
            let (vanilla, ee) = profile_file_names(m.name, bs);
            assert!(dir.join(ee).is_file());
            assert_eq!(vanilla.is_some(), per_bs == 2);
        }
        // The controller's --arch: {model}_{dataset} for CV, the model for NLP.
        let arch = if per_bs == 2 {
            format!("{}_auburn", m.name)
        } else {
            m.name.to_string()
        };
        let back = read_latency_tables(&dir, &arch).expect("reads back");
        assert_tables_identical(&back, &tables, m.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn golden_latency_tables_round_trip_bit_exact() {
    let mut seen = 0;
    for scenario in std::fs::read_dir(golden_dir()).expect("golden dir") {
        let scenario = scenario.expect("entry").path();
        let Ok(run) = std::fs::read(scenario.join("run.json")) else {
            continue;
        };
        let run: serde_json::Value = serde_json::from_slice(&run).expect("run.json");
        let arch = run["flags"]["arch"].as_str().expect("arch");
        let tables =
            read_latency_tables(&scenario.join("data/profile_pickles_bs"), arch).expect("golden");
        let model = if apparate::artifact::is_cv_arch(arch) {
            arch.split('_').next().expect("model")
        } else {
            arch
        };
        let dir = temp_dir(&format!("golden-{model}"));
        write_profiles(&dir, model, &tables).expect("writes");
        let back = read_latency_tables(&dir, arch).expect("reads back");
        assert_tables_identical(&back, &tables, arch);
        let _ = std::fs::remove_dir_all(&dir);
        seen += 1;
    }
    assert!(seen >= 6, "golden scenarios missing");
}

/// A table the readers accept: `V` above 0 and at most the latency limit, every `v_r` and
/// `o_r` from 0 (or -0.0) to `V`, edges included.
fn arb_table(num_ramps: usize) -> impl Strategy<Value = LatencyTable> {
    let whole = prop_oneof![
        4 => 0.001f64..50.0,
        1 => Just(MAX_PROFILE_LATENCY_MS),
        1 => Just(f64::MIN_POSITIVE),
        1 => 50.0f64..MAX_PROFILE_LATENCY_MS,
    ];
    whole
        .prop_flat_map(move |vanilla_ms| {
            let part = prop_oneof![
                4 => 0.0f64..=vanilla_ms,
                1 => Just(0.0f64),
                1 => Just(-0.0f64),
                1 => Just(vanilla_ms),
            ];
            (
                prop::collection::vec((part.clone(), part), num_ramps),
                Just(vanilla_ms),
            )
        })
        .prop_map(table_of)
}

fn table_of((ramps, vanilla_ms): (Vec<(f64, f64)>, f64)) -> LatencyTable {
    LatencyTable {
        ramps: ramps
            .into_iter()
            .map(|(vanilla_up_to_ms, ramp_ms)| RampCost {
                vanilla_up_to_ms,
                ramp_ms,
            })
            .collect(),
        vanilla_ms,
    }
}

/// Whether the readers accept `t` (see `read_latency_tables`).
fn plausible(t: &LatencyTable) -> bool {
    let v = t.vanilla_ms;
    v > 0.0
        && v <= MAX_PROFILE_LATENCY_MS
        && t.ramps
            .iter()
            .all(|r| (0.0..=v).contains(&r.vanilla_up_to_ms) && (0.0..=v).contains(&r.ramp_ms))
}

/// Any finite table, most of which the readers refuse.
fn arb_any_table(num_ramps: usize) -> impl Strategy<Value = LatencyTable> {
    let value = prop_oneof![
        4 => 0.0f64..50.0,
        1 => -5.0f64..5.0,
        1 => Just(0.0f64),
        1 => Just(-0.0f64),
        1 => prop::num::f64::NORMAL,
    ];
    (
        prop::collection::vec((value.clone(), value.clone()), num_ramps),
        value,
    )
        .prop_map(table_of)
}

fn arb_tables() -> impl Strategy<Value = LatencyTables> {
    (1usize..40).prop_flat_map(|r| {
        prop::collection::vec(arb_table(r), BATCH_SIZES.len())
            .prop_map(|t| LatencyTables::new(t).expect("seven tables"))
    })
}

fn arb_any_tables() -> impl Strategy<Value = LatencyTables> {
    (1usize..12).prop_flat_map(|r| {
        prop::collection::vec(
            prop_oneof![1 => arb_table(r).boxed(), 1 => arb_any_table(r).boxed()],
            BATCH_SIZES.len(),
        )
        .prop_map(|t| LatencyTables::new(t).expect("seven tables"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any table the readers accept (issue #11: latencies from 0 to the limit, ramps within the
    /// whole model), any ramp count, any architecture family (known names and fallbacks).
    #[test]
    fn any_plausible_table_round_trips_bit_exact_through_the_profile_files(
        tables in arb_tables(),
        name in prop::sample::select(vec![
            "resnet18", "resnet50", "resnet", "vgg11", "vgg16", "vggnet",
            "distilbert-base", "bert-large", "gpt2-medium", "t5-small",
        ]),
    ) {
        let dir = temp_dir("prop");
        write_profiles(&dir, name, &tables).expect("writes");
        let arch = if apparate::artifact::is_cv_arch(name) { format!("{name}_x") } else { name.to_string() };
        let back = read_latency_tables(&dir, &arch).expect("reads back");
        assert_tables_identical(&back, &tables, name);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Any finite table: read back bit for bit where every batch size is plausible, else
    /// refused naming a profile file of the first implausible batch size.
    #[test]
    fn any_finite_table_round_trips_or_is_refused_naming_its_file(
        tables in arb_any_tables(),
        name in prop::sample::select(vec!["resnet18", "vgg16", "distilbert-base", "gpt2-medium"]),
    ) {
        let dir = temp_dir("prop-any");
        write_profiles(&dir, name, &tables).expect("writes");
        let arch = if apparate::artifact::is_cv_arch(name) { format!("{name}_x") } else { name.to_string() };
        let first_bad = tables.iter().find(|(_, t)| !plausible(t)).map(|(bs, _)| bs.get());
        match (read_latency_tables(&dir, &arch), first_bad) {
            (Ok(back), None) => assert_tables_identical(&back, &tables, name),
            (Err(e), Some(bs)) => {
                let file = e.path().file_name().and_then(|f| f.to_str()).unwrap_or("").to_string();
                prop_assert!(file.starts_with(&format!("{name}_{bs}_")), "{e}");
                prop_assert!(matches!(e, ArtifactError::Field { .. }), "{e}");
            }
            (r, bad) => prop_assert!(false, "read {r:?}, first implausible batch size {bad:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Ramp data of any shape round trips bit for bit, through the fast and the generic path.
    #[test]
    fn ramp_data_round_trips_bit_exact(
        (conf, acc) in (1usize..6, 0usize..2100).prop_flat_map(|(r, n)| (
            prop::collection::vec(prop::collection::vec(
                prop_oneof![0.0f64..1.0, prop::num::f64::NORMAL, Just(-0.0f64)], n), r),
            prop::collection::vec(prop::collection::vec(any::<bool>(), n), r),
        )),
    ) {
        let data = RampData { conf, acc };
        let bytes = ramp_data_bytes(&data).expect("writes");
        let back = apparate::artifact::ramp_data_from_bytes(Path::new("mem"), &bytes).expect("reads");
        prop_assert_eq!(back.acc, data.acc);
        let bits = |c: &Vec<Vec<f64>>| c.iter().map(|r| r.iter().map(|x| x.to_bits()).collect::<Vec<_>>()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&back.conf), bits(&data.conf));
    }
}

#[test]
fn embedded_workload_ramp_data_round_trips_through_files() {
    let dir = temp_dir("ramp");
    for (m, d) in [("resnet101", "oxford"), ("gpt2-medium", "amazon_reviews")] {
        let w = workload::generate(m, d, 0.01, 3).expect("workload");
        for (tag, data) in [("boot", &w.bootstrap), ("sim", &w.simulation)] {
            let path = dir.join(format!("{tag}_{d}_{m}.pickle"));
            write_ramp_data(&path, data).expect("writes");
            assert_eq!(
                &read_ramp_data(&path).expect("reads"),
                data,
                "{m} {d} {tag}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The keys of the artifact's decision files, in their order.
const DECISION_KEYS: [&str; 12] = [
    "batching_decision",
    "per_request_stats",
    "total_num_requests",
    "batching_scheme",
    "arch",
    "slo",
    "dataset",
    "avg_qps",
    "end_time",
    "max_batch_size",
    "batch_timeout_ms",
    "max_enqueued_batches",
];

fn sample_record(avg_qps: AvgQps) -> DecisionRecord {
    DecisionRecord {
        batching_decision: vec![1, 2, 4, 64, 8, 1],
        per_request_stats: (0..1500)
            .map(|i| (i % 7 != 3).then_some((i as f64 * 0.25, 2.5 + (i % 3) as f64)))
            .collect(),
        total_num_requests: 1500,
        batching_scheme: "clockwork".into(),
        arch: "bert-base".into(),
        slo: 34.8,
        dataset: "imdb".into(),
        avg_qps,
        end_time: 12345.678,
        max_batch_size: 8,
        batch_timeout_ms: 60.0,
        max_enqueued_batches: 2,
    }
}

#[test]
fn decision_files_round_trip_with_float_and_numpy_avg_qps() {
    let dir = temp_dir("decisions");
    for (tag, qps) in [
        ("float", AvgQps::Float(30.02)),
        ("numpy", AvgQps::NumpyFloat64(130.49388309922972)),
    ] {
        let record = sample_record(qps);
        let path = dir.join(format!("{tag}.pickle"));
        write_batch_decisions(&path, &record).expect("writes");
        let back = read_batch_decisions(&path).expect("reads");
        let sizes: Vec<usize> = back.batching_decision.iter().map(|b| b.get()).collect();
        assert_eq!(sizes, record.batching_decision);
        assert_eq!(
            back.per_request_stats.as_ref(),
            Some(&record.per_request_stats)
        );
        let value = decode_pickle(&path, &std::fs::read(&path).expect("bytes")).expect("decodes");
        let Value::Dict(d) = &value else {
            panic!("dict")
        };
        let avg = dict_get(d, "avg_qps").expect("avg_qps");
        match qps {
            AvgQps::Float(x) => assert_eq!(avg, &Value::F64(x)),
            AvgQps::NumpyFloat64(x) => {
                assert!(matches!(avg, Value::Tuple(_)), "a numpy scalar: {avg:?}");
                assert_eq!(float_of(avg).map(f64::to_bits), Some(x.to_bits()));
            }
        }
        assert_eq!(dict_get(d, "batch_timeout_ms"), Some(&Value::I64(60)));
        // The artifact's key order (the decoded dict is sorted, so look at the bytes).
        let bytes = std::fs::read(&path).expect("bytes");
        let at = |key: &str| {
            bytes
                .windows(key.len())
                .position(|w| w == key.as_bytes())
                .unwrap_or_else(|| panic!("key {key} missing"))
        };
        let order: Vec<usize> = DECISION_KEYS.iter().map(|k| at(k)).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key order {order:?}");
        assert_eq!(d.len(), 12);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_writers_refuse_what_the_readers_would_reject() {
    let empty = RampData::default();
    assert!(matches!(
        ramp_data_bytes(&empty),
        Err(WriteError::NoRamps { .. })
    ));
    let ragged = RampData {
        conf: vec![vec![0.5, 0.6], vec![0.7]],
        acc: vec![vec![true, false], vec![true]],
    };
    let err = ramp_data_bytes(&ragged).expect_err("ragged");
    assert!(
        err.to_string()
            .contains("conf[1] has 1 entries, expected 2"),
        "{err}"
    );
    let nan = RampData {
        conf: vec![vec![0.5, f64::NAN]],
        acc: vec![vec![true, false]],
    };
    let err = ramp_data_bytes(&nan).expect_err("nan");
    assert!(err.to_string().contains("conf[0][1]"), "{err}");

    let mut tables: Vec<LatencyTable> = MODELS[0]
        .latency_tables()
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    tables[2].ramps[1].ramp_ms = f64::INFINITY;
    let tables = LatencyTables::new(tables).expect("seven");
    let dir = temp_dir("refuse");
    let err = write_profiles(&dir, "resnet18", &tables).expect_err("infinite");
    assert!(
        err.to_string().contains("batch size 4") && err.to_string().contains("ramps[1].ramp_ms"),
        "{err}"
    );
    let none = LatencyTables::new(vec![
        LatencyTable {
            ramps: vec![],
            vanilla_ms: 1.0
        };
        7
    ])
    .expect("seven");
    assert!(matches!(
        write_profiles(&dir, "bert-base", &none),
        Err(WriteError::NoRamps { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Loads every file listed in the jobs file (argv[1]) with CPython, checks its types, re-dumps
/// it with `pickle.dumps(obj, protocol=4)` and requires the same bytes (not for the numpy
/// file: its stand-in numpy pickles differently); derives the latency tables as the controller
/// does (spec §3); prints the results as JSON.
const CHECK_PY: &str = r#"
import json, os, pickle, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import profiler

ATTRS = ['name', 'full_name', 'type', 'depth', 'num_params', 'num_params_pctg',
         'input_shape', 'output_shape', 'input_elem_bytes', 'output_elem_bytes',
         'fwd_latency', 'fwd_latency_orig', 'fwd_latency_pctg',
         'vanilla_latency_up_until_me', 'ramp_latencies_up_until_me', 'macs', 'macs_pctg',
         'fwd_flops', 'fwd_flops_pctg', 'children']

def redump_same(path):
    raw = open(path, 'rb').read()
    obj = pickle.loads(raw)
    again = pickle.dumps(obj, protocol=4)
    assert again == raw, '%s: re-dump differs (%d vs %d bytes)' % (path, len(again), len(raw))
    return obj

def check_node(n):
    assert type(n) is profiler.Profile, type(n)
    assert list(vars(n)) == ATTRS, list(vars(n))
    assert type(n.children) is list and type(n.ramp_latencies_up_until_me) is list
    for k in ('fwd_latency', 'fwd_latency_orig', 'vanilla_latency_up_until_me'):
        assert type(getattr(n, k)) in (int, float), (n.full_name, k)
    for c in n.children:
        check_node(c)

def nlp_table(p):
    out = []
    def walk(n):
        for c in n.children:
            if c.name == 'branch_net':
                out.append([c.vanilla_latency_up_until_me, c.fwd_latency])
            walk(c)
    walk(p)
    return out + [[p.vanilla_latency_up_until_me, None]]

def cv_table(q, p):
    names = []
    def listing(n):
        names.append(n)
        for c in n.children:
            listing(c)
    listing(q)
    out = []
    for qn in names:
        node = p
        for comp in qn.full_name.split('.'):
            assert node.children, qn.full_name
            nxt = [c for c in node.children if c.name == comp]
            node = nxt[0] if nxt else None
            if node is None:
                break
        if node is not None and node.type == 'BranchPoint':
            assert node.full_name == qn.full_name
            bn = [c for c in node.children if c.name == 'branch_net'][0]
            out.append([qn.vanilla_latency_up_until_me, bn.fwd_latency])
    return out + [[q.fwd_latency_orig, None]]

res = {}
for job in json.load(open(sys.argv[1])):
    kind = job['kind']
    if kind == 'ramp':
        d = redump_same(job['path'])
        assert list(d) == ['conf', 'acc']
        assert all(type(x) is float for r in d['conf'][:-1] for x in r)
        assert all(x is None for x in d['conf'][-1])
        assert all(type(x) is bool for r in d['acc'] for x in r)
        assert all(d['acc'][-1])
        res[job['path']] = {'conf': d['conf'][:-1], 'acc': d['acc'][:-1]}
    elif kind == 'cv_profile':
        q = redump_same(job['vanilla'])
        p = redump_same(job['early_exit'])
        check_node(q)
        check_node(p)
        res[job['early_exit']] = cv_table(q, p)
    elif kind == 'nlp_profile':
        p = redump_same(job['early_exit'])
        check_node(p)
        res[job['early_exit']] = nlp_table(p)
    elif kind == 'decisions':
        if job['numpy']:
            d = pickle.load(open(job['path'], 'rb'))
            assert type(d['avg_qps']).__name__ == 'float64', type(d['avg_qps'])
        else:
            d = redump_same(job['path'])
            assert type(d['avg_qps']) is float
        assert all(s is None or (type(s) is tuple and len(s) == 2)
                   for s in d['per_request_stats'])
        assert type(d['batch_timeout_ms']) is int
        d['avg_qps'] = float(d['avg_qps'])
        res[job['path']] = d
json.dump(res, sys.stdout)
"#;

/// A stand-in for the artifact's `profiling/profiler.py`: a plain class, as the original.
const PROFILER_PY: &str = "class Profile:\n    pass\n";

/// A stand-in numpy 1.x: just what unpickling a `numpy.float64` calls.
const NUMPY_INIT_PY: &str = r#"
class dtype:
    def __init__(self, name, align=False, copy=True):
        assert (name, align, copy) == ('f8', False, True), (name, align, copy)
        self.name = name
    def __setstate__(self, state):
        assert state == (3, '<', None, None, None, -1, -1, 0), state
"#;
const NUMPY_MULTIARRAY_PY: &str = r#"
import struct
class float64(float):
    pass
def scalar(dtype, raw):
    assert dtype.name == 'f8' and len(raw) == 8
    return float64(struct.unpack('<d', raw)[0])
"#;

fn python3() -> Option<&'static str> {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3")
}

#[test]
fn cpython_loads_every_kind_of_file_and_redumps_the_same_bytes() {
    let Some(python) = python3() else {
        eprintln!("note: python3 is not on PATH; skipping the CPython check of the writers");
        return;
    };
    let dir = temp_dir("python");
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, text).expect("write");
    };
    write("check.py", CHECK_PY);
    write("profiler.py", PROFILER_PY);
    write("numpy/__init__.py", NUMPY_INIT_PY);
    write("numpy/core/__init__.py", "");
    write("numpy/core/multiarray.py", NUMPY_MULTIARRAY_PY);

    let mut jobs = Vec::new();
    let mut ramp_files = Vec::new();
    for (m, d) in [("vgg13", "coral"), ("distilbert-base", "imdb")] {
        let w = workload::generate(m, d, 0.005, 1).expect("workload");
        let path = dir.join(format!("{d}_{m}.pickle"));
        write_ramp_data(&path, &w.simulation).expect("writes");
        jobs.push(serde_json::json!({"kind": "ramp", "path": path}));
        ramp_files.push((path, w.simulation));
    }
    let profiles = dir.join("profile_pickles_bs");
    let mut table_files = Vec::new();
    for m in &MODELS {
        let tables = m.latency_tables();
        write_profiles(&profiles, m.name, &tables).expect("writes");
        for bs in [1, 64] {
            let (vanilla, ee) = profile_file_names(m.name, bs);
            let ee = profiles.join(ee);
            jobs.push(match vanilla {
                Some(v) => serde_json::json!({"kind": "cv_profile", "vanilla": profiles.join(v), "early_exit": ee}),
                None => serde_json::json!({"kind": "nlp_profile", "early_exit": ee}),
            });
            let table = tables
                .iter()
                .find(|(b, _)| b.get() == bs)
                .map(|(_, t)| t.clone())
                .expect("table");
            table_files.push((ee, table));
        }
    }
    let mut decision_files = Vec::new();
    for (tag, qps, numpy) in [
        ("cv", AvgQps::Float(29.99), false),
        ("nlp", AvgQps::NumpyFloat64(130.49388309922972), true),
    ] {
        let path = dir.join(format!("decisions_{tag}.pickle"));
        let record = sample_record(qps);
        write_batch_decisions(&path, &record).expect("writes");
        jobs.push(serde_json::json!({"kind": "decisions", "numpy": numpy, "path": path}));
        decision_files.push((path, record));
    }
    let jobs_path = dir.join("jobs.json");
    std::fs::write(&jobs_path, serde_json::to_vec(&jobs).expect("json")).expect("jobs");

    let out = std::process::Command::new(python)
        .arg(dir.join("check.py"))
        .arg(&jobs_path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "CPython rejected a file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json from python");
    let key = |p: &Path| p.display().to_string();

    for (path, data) in &ramp_files {
        let got = &res[key(path)];
        let conf: Vec<Vec<f64>> = serde_json::from_value(got["conf"].clone()).expect("conf");
        let acc: Vec<Vec<bool>> = serde_json::from_value(got["acc"].clone()).expect("acc");
        assert_eq!(&RampData { conf, acc }, data, "{}", path.display());
    }
    for (path, table) in &table_files {
        let rows = res[key(path)].as_array().expect("table rows");
        assert_eq!(rows.len(), table.ramps.len() + 1, "{}", path.display());
        for (row, ramp) in rows.iter().zip(&table.ramps) {
            assert_eq!(
                row[0].as_f64().map(f64::to_bits),
                Some(ramp.vanilla_up_to_ms.to_bits())
            );
            assert_eq!(
                row[1].as_f64().map(f64::to_bits),
                Some(ramp.ramp_ms.to_bits())
            );
        }
        let last = rows.last().expect("vanilla row");
        assert_eq!(
            last[0].as_f64().map(f64::to_bits),
            Some(table.vanilla_ms.to_bits())
        );
        assert!(last[1].is_null());
    }
    for (path, record) in &decision_files {
        let d = &res[key(path)];
        let keys: Vec<&str> = d
            .as_object()
            .expect("dict")
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = DECISION_KEYS.to_vec();
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        let qps = match record.avg_qps {
            AvgQps::Float(x) | AvgQps::NumpyFloat64(x) => x,
        };
        assert_eq!(d["avg_qps"].as_f64(), Some(qps));
        assert_eq!(
            d["batching_decision"],
            serde_json::json!(record.batching_decision)
        );
        assert_eq!(d["end_time"].as_f64(), Some(record.end_time));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
