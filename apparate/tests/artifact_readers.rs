//! Artifact reader tests: golden parity (latency tables, sample pickles, decision files),
//! committed fixture pickles written by CPython (numpy scalars, protocols 0 to 5, class
//! instances), corrupt and ill-typed files, and round trips.

use std::path::{Path, PathBuf};

use apparate::artifact::value::decode_pickle;
use apparate::artifact::{
    batch_decisions_from_bytes, ramp_data_from_bytes, read_batch_decisions, read_latency_tables,
    read_ramp_data, ArtifactError, BatchDecisions,
};
use apparate::sim::{BatchSize, LatencyTables, RampData};
use proptest::prelude::*;
use serde_json::Value as Json;
use serde_pickle::{HashableValue, SerOptions, Value};

use crate::util::golden_dir;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pickles")
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

/// The golden simulator scenarios: (directory, run.json).
fn golden_scenarios() -> Vec<(PathBuf, Json)> {
    let mut out: Vec<(PathBuf, Json)> = std::fs::read_dir(golden_dir())
        .expect("golden dir is readable")
        .map(|e| e.expect("golden entry").path())
        .filter(|p| p.join("run.json").is_file() && p.join("data").is_dir())
        .map(|p| {
            let run = read_json(&p.join("run.json"));
            (p, run)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        out.len(),
        6,
        "expected the six simulator scenarios in golden/"
    );
    out
}

/// Asserts `tables` equals a `latency_calc_list` object bit for bit.
fn assert_tables_equal_json(tables: &LatencyTables, lcl: &Json, label: &str) {
    let lcl = lcl.as_object().expect("latency_calc_list is an object");
    assert_eq!(lcl.len(), 7, "{label}: one table per batch size");
    for (bs, table) in tables.iter() {
        let want = lcl[&bs.get().to_string()]
            .as_array()
            .unwrap_or_else(|| panic!("{label}: no table for bs {}", bs.get()));
        let (last, ramps) = want.split_last().expect("non-empty table");
        assert_eq!(
            table.ramps.len(),
            ramps.len(),
            "{label} bs {}: number of ramp entries",
            bs.get()
        );
        for (r, (got, pair)) in table.ramps.iter().zip(ramps).enumerate() {
            let v = pair[0].as_f64().expect("v_r is a number");
            let o = pair[1].as_f64().expect("o_r is a number");
            assert_eq!(
                (got.vanilla_up_to_ms.to_bits(), got.ramp_ms.to_bits()),
                (v.to_bits(), o.to_bits()),
                "{label} bs {} ramp {r}: got ({:?}, {:?}), want ({v:?}, {o:?})",
                bs.get(),
                got.vanilla_up_to_ms,
                got.ramp_ms
            );
        }
        assert!(last[1].is_null(), "{label}: last entry is (V, None)");
        let vanilla = last[0].as_f64().expect("V is a number");
        assert_eq!(
            table.vanilla_ms.to_bits(),
            vanilla.to_bits(),
            "{label} bs {}: V {:?} vs {vanilla:?}",
            bs.get(),
            table.vanilla_ms
        );
    }
}

fn error_text(result: Result<impl std::fmt::Debug, ArtifactError>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains('\n'), "error must be one line: {text}");
            text
        }
    }
}

/// The data every good ramp fixture holds (see make_fixtures.py).
fn fixture_ramp_data() -> RampData {
    RampData {
        conf: vec![
            vec![0.5, 0.75, 0.9, 0.6, 1.0],
            vec![0.55, 0.8, 0.95, 0.7, 0.9900000000000001],
        ],
        acc: vec![
            vec![true, false, true, true, false],
            vec![true, true, false, true, true],
        ],
    }
}

// ------------------------------------------------------------------------------------------
// Golden parity

#[test]
fn latency_tables_equal_latency_calc_list_in_every_golden_scenario() {
    for (dir, run) in golden_scenarios() {
        let arch = run["flags"]["arch"].as_str().expect("flags.arch");
        let profile_dir = dir.join("data").join(
            run["profile_dir_relative_to_data"]
                .as_str()
                .expect("profile dir"),
        );
        let tables = read_latency_tables(&profile_dir, arch)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let expected = read_json(&dir.join("expected/expected.json"));
        assert_tables_equal_json(
            &tables,
            &expected["latency_calc_list"],
            &dir.display().to_string(),
        );
        let r = expected["bootstrap"]["total_num_ramps"]
            .as_u64()
            .expect("R+1") as usize
            - 1;
        assert!(
            tables.min_ramps() >= r,
            "{}: at least R ramp entries",
            dir.display()
        );
    }
}

#[test]
fn sample_pickles_of_every_golden_scenario_have_r_ramps_and_n_samples() {
    for (dir, run) in golden_scenarios() {
        let expected = read_json(&dir.join("expected/expected.json"));
        let r = expected["bootstrap"]["total_num_ramps"]
            .as_u64()
            .expect("R+1") as usize
            - 1;
        let paths = &run["paths_relative_to_data"];
        let generator = &run["generator"];
        for (key, n_key) in [
            ("simulation_pickle_path", "num_simulation_samples"),
            ("bootstrap_pickle_path", "num_bootstrap_samples"),
        ] {
            let path = dir
                .join("data")
                .join(paths[key].as_str().expect("pickle path"));
            let data = read_ramp_data(&path).unwrap_or_else(|e| panic!("{e}"));
            let n = generator[n_key].as_u64().expect("N") as usize;
            assert_eq!(data.num_ramps(), r, "{}", path.display());
            assert_eq!(data.num_samples(), n, "{}", path.display());
            assert!(data.acc.iter().all(|a| a.len() == n));
            // README: confidences are Python floats in (0.5, 1).
            assert!(
                data.conf.iter().flatten().all(|&c| c > 0.5 && c < 1.0),
                "{}: confidences in (0.5, 1)",
                path.display()
            );
        }
    }
}

#[test]
fn golden_sample_values_match_what_python_reads() {
    // Values printed by CPython's pickle.load of the same file.
    let path = golden_dir()
        .join("nlp-distilbert-base-imdb/data/simulation_pickles/imdb_distilbert-base.pickle");
    let data = read_ramp_data(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        data.conf[0][..3],
        [0.501941661520482, 0.5155780044794928, 0.5008039240015251]
    );
    assert_eq!(data.acc[0][..3], [true, false, true]);
}

#[test]
fn golden_decision_files_decode_including_numpy_avg_qps() {
    for (dir, run) in golden_scenarios() {
        let Some(rel) = run["paths_relative_to_data"]["batch_decision_path"].as_str() else {
            continue; // uniform scheme: no decision file
        };
        let path = dir.join("data").join(rel);
        let d = read_batch_decisions(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!d.batching_decision.is_empty(), "{}", path.display());
        let stats = d
            .per_request_stats
            .expect("golden files carry per_request_stats");
        assert!(!stats.is_empty());
        // At least as many served requests as the decisions imply (tf_serve may round up).
        let served = stats.iter().filter(|s| s.is_some()).count();
        assert!(served > 0, "{}", path.display());
    }
}

// ------------------------------------------------------------------------------------------
// Fixture pickles written by CPython

#[test]
fn ramp_fixtures_in_every_encoding_give_the_same_data() {
    for name in [
        "ramp_python_p4.pickle",
        "ramp_python_p5.pickle",
        "ramp_numpy_p4.pickle",
        "ramp_numpy_p2.pickle",
        "ramp_logits_p4.pickle",
        "ramp_int_acc_p3.pickle",
        "ramp_python_p0.pickle",
    ] {
        let data = read_ramp_data(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(data, fixture_ramp_data(), "{name}");
    }
}

#[test]
fn profile_fixtures_with_class_instances_shared_lists_and_int_zero_latencies() {
    let nlp =
        read_latency_tables(&fixture("profile_nlp"), "tiny-bert").unwrap_or_else(|e| panic!("{e}"));
    let want = read_json(&fixture("profile_nlp/expected.json"));
    assert_tables_equal_json(&nlp, &want["latency_calc_list"], "profile_nlp");
    assert_eq!(nlp.min_ramps(), 2);

    let cv = read_latency_tables(&fixture("profile_cv"), "resnet8_somewhere")
        .unwrap_or_else(|e| panic!("{e}"));
    let want = read_json(&fixture("profile_cv/expected.json"));
    assert_tables_equal_json(&cv, &want["latency_calc_list"], "profile_cv");
}

#[test]
fn decision_fixture_with_numpy_avg_qps() {
    let d = read_batch_decisions(&fixture("decisions_azure_numpy.pickle"))
        .unwrap_or_else(|e| panic!("{e}"));
    let sizes: Vec<usize> = d.batching_decision.iter().map(|b| b.get()).collect();
    assert_eq!(sizes, [1, 2, 4, 8, 16, 32, 64, 1]);
    assert_eq!(
        d.per_request_stats,
        Some(vec![
            Some((0.0, 8.5)),
            Some((3.25, 8.5)),
            None,
            Some((7.5, 11.0))
        ])
    );

    let d = read_batch_decisions(&fixture("decisions_no_stats.pickle"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        d,
        BatchDecisions {
            batching_decision: [4, 4, 2]
                .into_iter()
                .map(|n| BatchSize::exact(n).expect("supported"))
                .collect(),
            per_request_stats: None,
        }
    );
}

// ------------------------------------------------------------------------------------------
// Bad files: the message names the file and the exact place

fn ramp_error(name: &str) -> (String, String) {
    let path = fixture(name);
    (
        error_text(read_ramp_data(&path)),
        path.display().to_string(),
    )
}

#[test]
fn truncated_and_random_files_are_reported_as_corrupt() {
    let (text, path) = ramp_error("bad_truncated.pickle");
    assert_eq!(
        text,
        format!("{path}: corrupt pickle at byte 85: the data ends before the STOP opcode (truncated file?)")
    );
    let (text, path) = ramp_error("bad_random.pickle");
    assert!(
        text.starts_with(&format!("{path}: corrupt pickle at byte ")),
        "{text}"
    );
    let missing = fixture("no_such_file.pickle");
    let text = error_text(read_ramp_data(&missing));
    assert!(
        text.starts_with(&format!("{}: cannot read the file: ", missing.display())),
        "{text}"
    );
}

#[test]
fn wrong_sample_values_name_ramp_and_sample() {
    let cases = [
        (
            "bad_conf_str.pickle",
            "conf[1][3]: expected a finite float confidence, found str \"0.7\"",
        ),
        (
            "bad_conf_nan.pickle",
            "conf[1][2]: expected a finite float confidence, found NaN",
        ),
        (
            "bad_conf_numpy_inf.pickle",
            "conf[0][1]: expected a finite float confidence, found numpy inf",
        ),
        (
            "bad_acc_int2.pickle",
            "acc[0][2]: expected a correctness flag (bool, numpy.bool_ or 0/1), found int 2",
        ),
        (
            "bad_unequal_conf.pickle",
            "conf[1] holds 4 samples but conf[0] holds 5 (every ramp must hold the same samples)",
        ),
        (
            "bad_unequal_acc.pickle",
            "acc[1] holds 6 samples but conf[0] holds 5 (every ramp must hold the same samples)",
        ),
        (
            "bad_missing_acc.pickle",
            "acc: expected a list of per-ramp lists, found no such key",
        ),
        (
            "bad_outer_lengths.pickle",
            "acc: expected 3 per-ramp lists, as many as conf, found 2 lists",
        ),
        (
            "bad_no_ramps.pickle",
            "conf: expected R + 1 per-ramp lists with R >= 1 (the last one is the final exit), found 1 lists",
        ),
        (
            "bad_not_a_dict.pickle",
            "top level: expected a dict with keys \"conf\" and \"acc\", found a list of 2 items",
        ),
        (
            "bad_ramp_not_list.pickle",
            "conf[1]: expected a list of per-sample confidences, found float 0.5",
        ),
    ];
    for (name, place) in cases {
        let (text, path) = ramp_error(name);
        assert_eq!(text, format!("{path}: {place}"), "{name}");
    }
}

#[test]
fn bad_decisions_name_the_entry() {
    let path = fixture("bad_decision_size3.pickle");
    assert_eq!(
        error_text(read_batch_decisions(&path)),
        format!(
            "{}: batching_decision[2]: expected a batch size in 1, 2, 4, 8, 16, 32, 64, found int 3",
            path.display()
        )
    );
    let path = fixture("bad_decision_stats.pickle");
    assert_eq!(
        error_text(read_batch_decisions(&path)),
        format!(
            "{}: per_request_stats[1][1]: expected a time in ms from 0 to 1e9 (float or int), found str \"x\"",
            path.display()
        )
    );
}

#[test]
fn bad_profiles_name_the_node_and_attribute() {
    let dir = fixture("profile_bad");
    let file = dir.join("strlat_1_earlyexit_profile.pickle");
    assert_eq!(
        error_text(read_latency_tables(&dir, "strlat")),
        format!(
            "{}: children[1].children[0].children[0].children[1].fwd_latency: expected a latency in ms from 0 to 1e6 (float or int), found str \"fast\"",
            file.display()
        )
    );
    let file = dir.join("noramp_1_earlyexit_profile.pickle");
    assert_eq!(
        error_text(read_latency_tables(&dir, "noramp")),
        format!(
            "{}: no ramp found in the profile tree: no module is named \"branch_net\"",
            file.display()
        )
    );
}

#[test]
fn a_missing_batch_size_names_the_file_and_the_size() {
    let dir =
        std::env::temp_dir().join(format!("artifact-readers-{}-missing64", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for bs in [1, 2, 4, 8, 16, 32] {
        let name = format!("tiny-bert_{bs}_earlyexit_profile.pickle");
        std::fs::copy(fixture("profile_nlp").join(&name), dir.join(&name)).expect("copy fixture");
    }
    let result = read_latency_tables(&dir, "tiny-bert");
    let file = dir.join("tiny-bert_64_earlyexit_profile.pickle");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    assert_eq!(
        error_text(result),
        format!(
            "{}: the profile for batch size 64 is missing (one is needed for every batch size 1, 2, 4, ..., 64)",
            file.display()
        )
    );
    // CV looks for the vanilla profile first.
    let text = error_text(read_latency_tables(&fixture("profile_nlp"), "resnet8_x"));
    assert!(
        text.contains("resnet8_1_profile.pickle: the profile for batch size 1 is missing"),
        "{text}"
    );
}

// ------------------------------------------------------------------------------------------
// Round trips and robustness

fn ramp_value(data: &RampData, final_conf: Value, final_acc: Value) -> Value {
    let lists = |rows: Vec<Vec<Value>>, last: Value| {
        let mut outer: Vec<Value> = rows.into_iter().map(Value::List).collect();
        outer.push(last);
        Value::List(outer)
    };
    let conf = data
        .conf
        .iter()
        .map(|r| r.iter().map(|&x| Value::F64(x)).collect())
        .collect();
    let acc = data
        .acc
        .iter()
        .map(|r| r.iter().map(|&b| Value::Bool(b)).collect())
        .collect();
    Value::Dict(
        [
            (
                HashableValue::String("conf".into()),
                lists(conf, final_conf),
            ),
            (HashableValue::String("acc".into()), lists(acc, final_acc)),
        ]
        .into_iter()
        .collect(),
    )
}

fn arb_ramp_data() -> impl Strategy<Value = RampData> {
    (1usize..5, 0usize..40).prop_flat_map(|(r, n)| {
        let finite = prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO;
        (
            prop::collection::vec(prop::collection::vec(finite, n), r),
            prop::collection::vec(prop::collection::vec(any::<bool>(), n), r),
        )
            .prop_map(|(conf, acc)| RampData { conf, acc })
    })
}

fn arb_final_exit() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        Just(Value::Bool(true)),
        prop::collection::vec(
            prop::collection::vec(any::<f64>().prop_map(Value::F64), 0..4).prop_map(Value::List),
            0..4
        )
        .prop_map(Value::List),
    ]
}

proptest! {
    #[test]
    fn ramp_data_round_trips_through_serde_pickle(
        data in arb_ramp_data(),
        final_conf in arb_final_exit(),
        final_acc in arb_final_exit(),
    ) {
        let bytes = serde_pickle::value_to_vec(&ramp_value(&data, final_conf, final_acc), SerOptions::new())
            .expect("serialize");
        let back = ramp_data_from_bytes(Path::new("roundtrip.pickle"), &bytes)
            .expect("read back");
        prop_assert_eq!(back, data);
    }

    #[test]
    fn arbitrary_bytes_give_errors_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let name = Path::new("arbitrary.pickle");
        let _ = ramp_data_from_bytes(name, &bytes);
        let _ = batch_decisions_from_bytes(name, &bytes);
        let _ = decode_pickle(name, &bytes);
    }

    #[test]
    fn corrupted_pickles_give_errors_never_panics(
        cut in 0usize..200,
        flips in prop::collection::vec((0usize..200, any::<u8>()), 0..6),
    ) {
        for name in [
            "ramp_numpy_p4.pickle",
            "decisions_azure_numpy.pickle",
            "ramp_numpy_p2.pickle",
            "ramp_python_p0.pickle",
            "profile_cv/resnet8_1_earlyexit_profile.pickle",
        ] {
            let mut bytes = std::fs::read(fixture(name)).expect("fixture");
            for &(at, b) in &flips {
                let len = bytes.len();
                bytes[at % len] = b;
            }
            bytes.truncate(bytes.len().saturating_sub(cut % 8));
            let _ = ramp_data_from_bytes(Path::new(name), &bytes);
            let _ = batch_decisions_from_bytes(Path::new(name), &bytes);
            let _ = decode_pickle(Path::new(name), &bytes);
        }
    }
}
