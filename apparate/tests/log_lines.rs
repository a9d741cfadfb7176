//! Log lines the golden scenarios do not reach (issue #11, items 9 and 10): the NLP ramp check
//! with the latest ramp as the only, negative ramp; numpy's wrapping of wide exit-rate arrays,
//! against real numpy output.

use apparate::sim::pyfmt::numpy_array;
use apparate::sim::{
    simulate, Batching, LatencyTable, LatencyTables, Mode, Overrides, RampCost, RampData, RunSpec,
};

/// One candidate ramp (so `latest = 0`) that is cheap enough to be possible.
fn one_ramp_tables() -> LatencyTables {
    let t = LatencyTable {
        ramps: vec![RampCost {
            vanilla_up_to_ms: 2.0,
            ramp_ms: 0.3,
        }],
        vanilla_ms: 10.0,
    };
    LatencyTables::new(vec![t; 7]).expect("seven tables")
}

/// The ramp is never confident and always wrong: it never exits a sample, so every utility
/// is negative and at the check (batch 100) it is the only active ramp, negative, and `latest`.
#[test]
fn issue11_nlp_single_latest_negative_ramp_keeps_its_idx_in_the_log() {
    let n = 4 * 100 + 1; // the last sample is never served
    let boot = RampData {
        conf: vec![vec![0.5; 64]],
        acc: vec![vec![false; 64]],
    };
    let sim = RampData {
        conf: vec![vec![0.5; n]],
        acc: vec![vec![false; n]],
    };
    let spec = RunSpec {
        arch: "bert-base",
        dataset: "imdb",
        batch_size: 4,
        batching: Batching::Uniform,
        mode: Mode::Apparate,
        overrides: Overrides::default(),
        record_log: true,
    };
    let out = simulate(&spec, &one_ramp_tables(), &boot, &sim).expect("runs");
    assert_eq!(out.bootstrap.latest_possible_ramp, 0);
    assert_eq!(out.bootstrap.initial_ramp_ids, vec![0]);
    let lines: Vec<&String> = out
        .log
        .iter()
        .filter(|l| l.starts_with("negative ramp:"))
        .collect();
    assert_eq!(lines.len(), 1, "one ramp check in 100 batches: {lines:?}");
    // The original empties negative_ramps but not negative_ramp_idxs.
    assert!(
        lines[0].starts_with(
            "negative ramp: [] negative ramp idxs: [0], num_positive_ramps 1 positive threshold "
        ),
        "{}",
        lines[0]
    );
    // Numbers are unaffected: the ramp stays where it is.
    assert_eq!(out.final_state.ramp_ids, vec![0]);
}

#[derive(serde::Deserialize)]
struct NumpyCase {
    n: u32,
    counts: Vec<u32>,
    str: String,
}

#[derive(serde::Deserialize)]
struct NumpyReference {
    numpy: String,
    cases: Vec<NumpyCase>,
}

/// `str()` of 800 exit-rate arrays printed by numpy 1.26 (`fixtures/numpy_arrays/`), 353 of
/// them wrapped: at a wrap numpy strips every trailing space of the line (the separator and
/// the padding of the element before it), not just one.
#[test]
fn issue11_numpy_array_matches_real_numpy_output() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/numpy_arrays/numpy_arrays.json");
    let text = std::fs::read_to_string(&path).expect("read numpy_arrays.json");
    let reference: NumpyReference = serde_json::from_str(&text).expect("parse numpy_arrays.json");
    assert!(reference.numpy.starts_with("1."), "numpy 1.x reference");
    assert_eq!(reference.cases.len(), 800);
    let mut wrapped_with_padding = 0;
    for (k, case) in reference.cases.iter().enumerate() {
        let xs: Vec<f64> = case
            .counts
            .iter()
            .map(|&c| f64::from(c) / f64::from(case.n))
            .collect();
        assert_eq!(
            numpy_array(&xs),
            case.str,
            "case {k}: n {} counts {:?}",
            case.n,
            case.counts
        );
        let lines: Vec<&str> = case.str.lines().collect();
        if lines.len() > 1 && xs.contains(&0.0) && xs.iter().any(|&x| x != 0.0) {
            wrapped_with_padding += 1;
        }
    }
    assert!(wrapped_with_padding > 100, "{wrapped_with_padding}");
}
