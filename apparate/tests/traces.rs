//! Request traces (`apparate::traces`): the numpy-compatible generator against real numpy output,
//! the artifact's fixed-rate / Poisson / Azure traces, the Azure CSV reader and its errors, the
//! synthetic Azure-like generator's shape, and the spec's serde form.

use std::path::{Path, PathBuf};

use apparate::traces::azure::{
    artifact_avg_qps, cap_counts, parse_function, read_function, spread_arrivals, AzureCsvError,
    FunctionPick, Spread, MINUTES_PER_DAY,
};
use apparate::traces::rng::{det_math, Mt19937, NumpyRandomState, SplitMix64, Xoshiro256StarStar};
use apparate::traces::{
    fixed_rate, generate, minutes_for_load, poisson, synthetic_azure, ShapeStats, SyntheticShape,
    TraceGenError, TraceSpec, MAX_REQUESTS,
};
use proptest::prelude::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traces")
}

fn tiny_csv() -> PathBuf {
    fixtures().join("azure_tiny.csv")
}

fn numpy_reference() -> Value {
    let path = fixtures().join("numpy_reference.json");
    let text = std::fs::read_to_string(&path).expect("numpy_reference.json is committed");
    serde_json::from_str(&text).expect("numpy_reference.json is JSON")
}

/// `"0x..."` as the f64 with those bits.
fn from_hex(v: &Value) -> f64 {
    let s = v.as_str().expect("a hex string");
    f64::from_bits(u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex"))
}

fn hex_list(v: &Value) -> Vec<f64> {
    v.as_array().expect("a list").iter().map(from_hex).collect()
}

/// FNV-1a 64 over the little-endian bytes of each value (as the fixture script computes it).
fn fnv1a64(values: &[f64]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for byte in v.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("0x{h:016x}")
}

fn is_non_decreasing(xs: &[f64]) -> bool {
    xs.windows(2).all(|w| w[0] <= w[1])
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

// ---------------------------------------------------------------------------------------------
// The generators against published reference values and real numpy

#[test]
fn mt19937_matches_the_reference_implementation() {
    let mut mt = Mt19937::new(5489);
    assert_eq!(mt.next_u32(), 3_499_211_612);
    // The C++ standard's check: the 10,000th output of the default-seeded mt19937.
    let mut mt = Mt19937::new(5489);
    let ten_thousandth = (0..10_000).map(|_| mt.next_u32()).last();
    assert_eq!(ten_thousandth, Some(4_123_659_995));
}

#[test]
fn numpy_random_state_words_match_numpy() {
    let reference = numpy_reference();
    let case = &reference["mt19937_uint32"];
    let seed = case["seed"].as_u64().expect("seed") as u32;
    let want: Vec<u64> = case["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_u64().expect("u32"))
        .collect();
    let mut rng = NumpyRandomState::new(seed);
    let got: Vec<u64> = want.iter().map(|_| u64::from(rng.next_u32())).collect();
    assert_eq!(got, want);
}

#[test]
fn random_sample_matches_numpy_bit_for_bit() {
    let reference = numpy_reference();
    let case = &reference["random_sample"];
    let want = hex_list(&case["bits"]);
    assert_eq!(want.len(), 1000);
    let mut rng = NumpyRandomState::new(case["seed"].as_u64().expect("seed") as u32);
    for (i, w) in want.iter().enumerate() {
        assert_eq!(rng.random_sample().to_bits(), w.to_bits(), "draw {i}");
    }
}

#[test]
fn exponential_matches_numpy_with_a_correctly_rounded_log() {
    let reference = numpy_reference();
    let case = &reference["exponential"];
    let scale = from_hex(&case["scale_bits"]);
    assert_eq!(scale, 1000.0 / 30.0);
    let correctly_rounded = hex_list(&case["correctly_rounded_bits"]);
    let numpy = hex_list(&case["numpy_bits"]);
    let numpy_differs_at: Vec<usize> = case["numpy_differs_at"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_u64().expect("index") as usize)
        .collect();
    let mut rng = NumpyRandomState::new(case["seed"].as_u64().expect("seed") as u32);
    for i in 0..correctly_rounded.len() {
        let got = rng.exponential(scale);
        assert_eq!(got.to_bits(), correctly_rounded[i].to_bits(), "draw {i}");
        if numpy_differs_at.contains(&i) {
            assert!(got.to_bits().abs_diff(numpy[i].to_bits()) <= 1, "draw {i}");
        } else {
            assert_eq!(got.to_bits(), numpy[i].to_bits(), "draw {i} against numpy");
        }
    }
}

#[test]
fn the_artifacts_poisson_traces_equal_numpys_bit_for_bit() {
    let reference = numpy_reference();
    for case in reference["poisson_traces"].as_array().expect("list") {
        let qps = case["qps"].as_f64().expect("qps");
        let n = case["n"].as_u64().expect("n") as usize;
        let seed = case["seed"].as_u64().expect("seed") as u32;
        let arrivals = poisson(n, qps, seed).expect("valid");
        assert_eq!(arrivals.len(), n);
        let digest = fnv1a64(&arrivals);
        assert_eq!(digest, case["correctly_rounded_fnv1a64"], "qps {qps}");
        // The claim the docs make: numpy's own trace is the same, despite its log.
        assert_eq!(digest, case["numpy_fnv1a64"], "qps {qps}");
        let first = hex_list(&case["first_arrivals_bits"]);
        assert_eq!(&arrivals[..first.len()], &first[..]);
        assert_eq!(arrivals[n - 1], from_hex(&case["last_arrival_bits"]));
    }
}

#[test]
fn the_artifacts_fixed_rate_traces_equal_the_originals_bit_for_bit() {
    let reference = numpy_reference();
    for case in reference["fixed_traces"].as_array().expect("list") {
        let qps = case["qps"].as_f64().expect("qps");
        let n = case["n"].as_u64().expect("n") as usize;
        let arrivals = fixed_rate(n, qps).expect("valid");
        assert_eq!(fnv1a64(&arrivals), case["fnv1a64"], "qps {qps}");
        assert_eq!(arrivals[n - 1], from_hex(&case["last_arrival_bits"]));
    }
}

#[test]
fn fixed_rate_accumulates_rather_than_multiplies() {
    let arrivals = fixed_rate(70_000, 30.0).expect("valid");
    let gap = 1000.0 / 30.0;
    let mut clock = 0.0;
    for (i, &a) in arrivals.iter().enumerate() {
        assert_eq!(a, clock, "request {i}");
        clock += gap;
    }
    // Multiplying would round differently somewhere along the trace.
    assert!(arrivals
        .iter()
        .enumerate()
        .any(|(i, &a)| a != i as f64 * gap));
}

#[test]
fn xoshiro_and_splitmix_match_their_published_vectors() {
    let mut rng = Xoshiro256StarStar::from_state([1, 2, 3, 4]);
    let got: Vec<u64> = (0..10).map(|_| rng.next_u64()).collect();
    assert_eq!(
        got,
        [
            11520,
            0,
            1509978240,
            1215971899390074240,
            1216172134540287360,
            607988272756665600,
            16172922978634559625,
            8476171486693032832,
            10595114339597558777,
            2904607092377533576,
        ]
    );
    let mut sm = SplitMix64::new(0);
    let got: Vec<u64> = (0..4).map(|_| sm.next_u64()).collect();
    assert_eq!(
        got,
        [
            0xe220_a839_7b1d_cdaf,
            0x6e78_9e6a_a1b9_65f4,
            0x06c4_5d18_8009_454f,
            0xf88b_b8a8_724c_81ec
        ]
    );
}

#[test]
fn deterministic_math_handles_special_values_and_known_results() {
    assert_eq!(det_math::ln(1.0), 0.0);
    assert_eq!(det_math::ln(2.0), std::f64::consts::LN_2);
    assert_eq!(det_math::ln(10.0), std::f64::consts::LN_10);
    assert_eq!(det_math::ln(std::f64::consts::E), 1.0);
    assert_eq!(det_math::ln(0.0), f64::NEG_INFINITY);
    assert_eq!(det_math::ln(f64::INFINITY), f64::INFINITY);
    assert!(det_math::ln(-1.0).is_nan());
    assert!(det_math::ln(f64::NAN).is_nan());
    // The smallest subnormal: -1074 ln 2.
    assert_eq!(det_math::ln(5e-324), -744.4400719213812);
    assert_eq!(det_math::exp(0.0), 1.0);
    assert_eq!(det_math::exp(1.0), std::f64::consts::E);
    assert_eq!(det_math::exp(-1000.0), 0.0);
    assert_eq!(det_math::exp(1000.0), f64::INFINITY);
    assert!((det_math::exp(-745.0) - 5e-324).abs() <= 5e-324);
    assert_eq!(det_math::cos_turns(0.0), 1.0);
    assert_eq!(det_math::cos_turns(0.5), -1.0);
    assert_eq!(det_math::cos_turns(-3.0), 1.0);
    assert!(det_math::cos_turns(0.25).abs() < 1e-16);
    assert!((det_math::cos_turns(1.0 / 6.0) - 0.5).abs() < 1e-15);
    assert!(det_math::ln_gamma(1.0).abs() < 1e-14);
    assert!(det_math::ln_gamma(2.0).abs() < 1e-14);
    assert!((det_math::ln_gamma(11.0) - 3_628_800f64.ln()).abs() < 1e-12);
    assert!((det_math::ln_gamma(101.0) - 363.739_375_555_563_5).abs() < 1e-10);
}

/// The results contract: these digests change only when a sampler changes (a new results
/// version; see `apparate::traces::rng`).
#[test]
fn synthetic_samplers_are_pinned() {
    let mut rng = Xoshiro256StarStar::seed_from_u64(42);
    let draws = |f: &mut dyn FnMut(&mut Xoshiro256StarStar) -> f64,
                 rng: &mut Xoshiro256StarStar| {
        (0..1000).map(|_| f(rng)).collect::<Vec<f64>>()
    };
    let digests = [
        fnv1a64(&draws(&mut |r| r.uniform(), &mut rng)),
        fnv1a64(&draws(&mut |r| r.below(7) as f64, &mut rng)),
        fnv1a64(&draws(&mut |r| r.exponential(2.0), &mut rng)),
        fnv1a64(&draws(&mut |r| r.normal(1.0, 3.0), &mut rng)),
        fnv1a64(&draws(&mut |r| r.lognormal(0.0, 1.0), &mut rng)),
        fnv1a64(&draws(&mut |r| r.pareto(1.0, 1.5), &mut rng)),
        fnv1a64(&draws(&mut |r| r.poisson(3.5) as f64, &mut rng)),
        fnv1a64(&draws(&mut |r| r.poisson(250.0) as f64, &mut rng)),
    ];
    assert_eq!(digests, PINNED_SAMPLER_DIGESTS);
}

const PINNED_SAMPLER_DIGESTS: [&str; 8] = [
    "0xe046319f085ff9df",
    "0x54ea06e7d9105f39",
    "0x3527fcaaf86f066d",
    "0x323dafb9bac4ca20",
    "0x653eb057f3c5265f",
    "0x3a9937fd2f2a892f",
    "0x007b4f83ac3f4afd",
    "0x361e643281eaf50e",
];

/// The results contract for whole traces built on those samplers.
#[test]
fn synthetic_traces_are_pinned() {
    let synthetic = synthetic_azure(5000, 11, &SyntheticShape::default()).expect("valid");
    let spread = spread_arrivals(&[3, 0, 5, 1, 0, 40], Spread::Poisson, 5);
    assert_eq!(
        [fnv1a64(&synthetic.arrivals_ms), fnv1a64(&spread)],
        ["0xa2baa76e30bd0bea", "0xf4484318b3bae02a"]
    );
}

#[test]
fn synthetic_samplers_have_the_right_moments() {
    let mut rng = Xoshiro256StarStar::seed_from_u64(7);
    let n = 200_000;
    let sample = |rng: &mut Xoshiro256StarStar, f: &dyn Fn(&mut Xoshiro256StarStar) -> f64| {
        (0..n).map(|_| f(rng)).collect::<Vec<f64>>()
    };
    let (m, s) = mean_sd(&sample(&mut rng, &|r| r.uniform()));
    assert!((m - 0.5).abs() < 0.005 && (s - (1.0f64 / 12.0).sqrt()).abs() < 0.005);
    let (m, s) = mean_sd(&sample(&mut rng, &|r| r.exponential(2.0)));
    assert!((m - 2.0).abs() < 0.03 && (s - 2.0).abs() < 0.05, "{m} {s}");
    let (m, s) = mean_sd(&sample(&mut rng, &|r| r.normal(1.0, 3.0)));
    assert!((m - 1.0).abs() < 0.03 && (s - 3.0).abs() < 0.03, "{m} {s}");
    let (m, _) = mean_sd(&sample(&mut rng, &|r| r.lognormal(0.0, 0.5)));
    assert!((m - 0.125f64.exp()).abs() < 0.01, "{m}");
    let pareto = sample(&mut rng, &|r| r.pareto(2.0, 3.0));
    assert!(pareto.iter().all(|&x| x >= 2.0));
    let tail = pareto.iter().filter(|&&x| x > 4.0).count() as f64 / n as f64;
    assert!((tail - 0.125).abs() < 0.005, "P(X > 4) = {tail}");
    for lambda in [0.5, 3.5, 9.99, 10.0, 42.0, 1000.0] {
        let (m, s) = mean_sd(&sample(&mut rng, &|r| r.poisson(lambda) as f64));
        assert!(
            (m - lambda).abs() < 0.02 * lambda.max(1.0),
            "lambda {lambda}: mean {m}"
        );
        assert!(
            (s * s - lambda).abs() < 0.05 * lambda.max(1.0),
            "lambda {lambda}: var {}",
            s * s
        );
    }
    let below: Vec<u64> = (0..n).map(|_| rng.below(3)).collect();
    assert!(below.iter().all(|&b| b < 3));
    assert_eq!(rng.poisson(0.0), 0);
    assert_eq!(rng.poisson(f64::NAN), 0);
    assert_eq!(rng.below(0), 0);
}

// ---------------------------------------------------------------------------------------------
// Fixed-rate and Poisson traces

#[test]
fn fixed_and_poisson_traces_start_at_zero_and_hold_exactly_n_requests() {
    for n in [0, 1, 2, 1000] {
        for arrivals in [
            fixed_rate(n, 30.0).expect("valid"),
            poisson(n, 30.0, 2023).expect("valid"),
        ] {
            assert_eq!(arrivals.len(), n);
            assert!(is_non_decreasing(&arrivals));
            if n > 0 {
                assert_eq!(arrivals[0], 0.0);
            }
        }
    }
    assert_eq!(fixed_rate(3, 30.0).expect("valid")[1], 1000.0 / 30.0);
}

#[test]
fn invalid_rates_and_sizes_are_rejected_with_the_parameter_named() {
    for qps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        for result in [fixed_rate(10, qps), poisson(10, qps, 1)] {
            let err = result.expect_err("invalid qps");
            assert!(
                matches!(
                    err,
                    TraceGenError::InvalidParameter {
                        parameter: "qps",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }
    let err = fixed_rate(MAX_REQUESTS + 1, 1.0).expect_err("too many");
    assert_eq!(
        err.to_string(),
        "fixed trace: n = 100000001 is invalid, expected at most 100,000,000 requests"
    );
}

#[test]
fn the_same_spec_gives_the_same_trace_bit_for_bit() {
    let specs = [
        TraceSpec::Fixed {
            n: 5000,
            qps: 180.0,
        },
        TraceSpec::Poisson {
            n: 5000,
            qps: 375.0,
            seed: 9,
        },
        TraceSpec::AzureCsv {
            path: tiny_csv(),
            function: FunctionPick::Row(2),
            cap: 5000,
            within_minute: Spread::Poisson,
            seed: 3,
        },
        TraceSpec::SyntheticAzure {
            n: 5000,
            seed: 11,
            shape: SyntheticShape::default(),
        },
    ];
    for spec in &specs {
        let a = generate(spec).expect("valid");
        let b = generate(spec).expect("valid");
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        assert_eq!(bits(&a), bits(&b), "{}", spec.kind());
        assert!(is_non_decreasing(&a), "{}", spec.kind());
    }
}

#[test]
fn different_seeds_give_different_traces() {
    assert_ne!(poisson(100, 30.0, 1).ok(), poisson(100, 30.0, 2).ok());
    let shape = SyntheticShape::default();
    let a = synthetic_azure(1000, 1, &shape).expect("valid");
    let b = synthetic_azure(1000, 2, &shape).expect("valid");
    assert_ne!(a.arrivals_ms, b.arrivals_ms);
}

// ---------------------------------------------------------------------------------------------
// The Azure CSV reader, the cap rule and the spreading

#[test]
fn azure_rows_count_from_zero_without_the_header() {
    let f = read_function(&tiny_csv(), &FunctionPick::Row(0)).expect("row 0");
    assert_eq!((f.row, f.line), (0, 2));
    assert_eq!(f.trigger, "http");
    assert_eq!(f.per_minute.len(), MINUTES_PER_DAY);
    assert_eq!(f.per_minute.iter().sum::<u64>(), 8);
    assert_eq!(
        (f.per_minute[9], f.per_minute[10], f.per_minute[1439]),
        (1, 2, 4)
    );

    let timer = read_function(&tiny_csv(), &FunctionPick::Row(1)).expect("row 1");
    assert_eq!(timer.line, 3);
    assert_eq!(timer.trigger, "timer");
    assert!(timer.per_minute.iter().all(|&c| c == 1));

    let busy = read_function(&tiny_csv(), &FunctionPick::Row(2)).expect("row 2");
    assert_eq!(&busy.per_minute[..5], &[3, 0, 5, 2, 9]);
    assert_eq!(busy.per_minute.iter().sum::<u64>(), 8632);
}

#[test]
fn azure_functions_can_be_picked_by_hash() {
    let busy = read_function(&tiny_csv(), &FunctionPick::Row(2)).expect("row 2");
    let by_hash = read_function(
        &tiny_csv(),
        &FunctionPick::HashFunction(busy.hash_function.clone()),
    )
    .expect("by hash");
    assert_eq!(by_hash, busy);
}

#[test]
fn blank_lines_are_skipped_as_pandas_does_and_crlf_is_accepted() {
    let header = csv_header();
    let row = |name: &str, first: u64| csv_row(name, first);
    let text = format!(
        "\u{feff}{header}\r\n\r\n{}\r\n\n{}\r\n",
        row("a", 1),
        row("b", 2)
    );
    let f = parse_function(text.as_bytes(), Path::new("mem.csv"), &FunctionPick::Row(1))
        .expect("row 1");
    assert_eq!((f.row, f.line, f.per_minute[0]), (1, 5, 2));
    assert_eq!(f.hash_function, "b");
}

fn csv_header() -> String {
    let minutes: Vec<String> = (1..=MINUTES_PER_DAY).map(|m| m.to_string()).collect();
    format!(
        "HashOwner,HashApp,HashFunction,Trigger,{}",
        minutes.join(",")
    )
}

fn csv_row(function: &str, first: u64) -> String {
    let mut counts = vec!["0".to_owned(); MINUTES_PER_DAY];
    counts[0] = first.to_string();
    format!("o,a,{function},http,{}", counts.join(","))
}

fn parse_err(text: &str, pick: FunctionPick) -> AzureCsvError {
    parse_function(text.as_bytes(), Path::new("d01.csv"), &pick).expect_err("malformed")
}

#[test]
fn a_non_integer_count_names_the_file_line_and_column() {
    let mut row = csv_row("f", 1);
    row = row.replacen(",0,", ",2.5,", 1); // minute 2, column 6
    let text = format!("{}\n{}\n", csv_header(), row);
    let err = parse_err(&text, FunctionPick::Row(0));
    assert!(
        matches!(&err, AzureCsvError::NotACount { line: 2, column: 6, name, value, .. }
            if name == "2" && value == "2.5"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "d01.csv:2: column 6 (\"2\"): expected a non-negative integer count, found \"2.5\""
    );
    for bad in ["-1", "", "x", "99999999999999999999999"] {
        let row = csv_row("f", 1).replacen("http,1,", &format!("http,{bad},"), 1);
        let text = format!("{}\n{}\n", csv_header(), row);
        let err = parse_err(&text, FunctionPick::Row(0));
        assert!(
            matches!(&err, AzureCsvError::NotACount { column: 5, value, .. } if value == bad),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn a_missing_column_is_named() {
    let header = csv_header().replace(",1440", "");
    let err = parse_err(&format!("{header}\n"), FunctionPick::Row(0));
    assert!(
        matches!(&err, AzureCsvError::MissingColumn { line: 1, column, .. } if column == "1440"),
        "{err:?}"
    );
    let header = csv_header().replace("HashFunction", "Function");
    let err = parse_err(&format!("{header}\n"), FunctionPick::Row(0));
    assert_eq!(
        err.to_string(),
        "d01.csv:1: the header has no column \"HashFunction\" (expected HashOwner,HashApp,HashFunction,Trigger,1,...,1440)"
    );
}

#[test]
fn a_short_or_long_line_is_reported_with_its_field_count() {
    let short = csv_row("f", 1).replace(",0", "");
    let text = format!("{}\n{}\n{}\n", csv_header(), csv_row("g", 1), short);
    let err = parse_err(&text, FunctionPick::Row(5));
    assert!(
        matches!(
            err,
            AzureCsvError::FieldCount {
                line: 3,
                expected: 1444,
                found: 5,
                ..
            }
        ),
        "{err:?}"
    );
    let long = format!("{},7", csv_row("f", 1));
    let err = parse_err(&format!("{}\n{long}\n", csv_header()), FunctionPick::Row(0));
    assert_eq!(
        err.to_string(),
        "d01.csv:2: 1445 fields, but the header has 1444"
    );
}

#[test]
fn unknown_rows_and_functions_are_errors() {
    let err = read_function(&tiny_csv(), &FunctionPick::Row(5)).expect_err("past the end");
    assert!(
        matches!(
            err,
            AzureCsvError::RowOutOfRange {
                row: 5,
                rows: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().ends_with(
        "azure_tiny.csv: row 5 requested, but the file has 5 data rows (rows count from 0, header excluded)"
    ));
    let err = read_function(&tiny_csv(), &FunctionPick::HashFunction("nope".into()))
        .expect_err("unknown");
    assert!(
        matches!(&err, AzureCsvError::UnknownFunction { hash_function, rows: 5, .. } if hash_function == "nope"),
        "{err:?}"
    );
    let shared = read_function(&tiny_csv(), &FunctionPick::Row(3)).expect("row 3");
    let err = read_function(
        &tiny_csv(),
        &FunctionPick::HashFunction(shared.hash_function),
    )
    .expect_err("ambiguous");
    assert!(
        matches!(
            err,
            AzureCsvError::AmbiguousFunction {
                first_line: 5,
                second_line: 6,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unreadable_empty_and_non_utf8_files_are_errors() {
    let missing = fixtures().join("no-such-file.csv");
    let err = read_function(&missing, &FunctionPick::Row(0)).expect_err("missing");
    assert!(matches!(err, AzureCsvError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-file.csv"));
    assert!(matches!(
        parse_err("\n \n", FunctionPick::Row(0)),
        AzureCsvError::Empty { .. }
    ));
    let mut bytes = format!("{}\n", csv_header()).into_bytes();
    bytes.extend_from_slice(b"o,a,\xff,http\n");
    let err = parse_function(&bytes[..], Path::new("d01.csv"), &FunctionPick::Row(0))
        .expect_err("not utf-8");
    assert_eq!(err.to_string(), "d01.csv:2: not valid UTF-8");
}

#[test]
fn the_cap_reduces_the_minute_that_would_exceed_it() {
    // Exceeding: the third minute is cut to 2 and the loop stops.
    assert_eq!(cap_counts(&[3, 4, 5, 6], 9), [3, 4, 2]);
    // Reaching the cap exactly does not stop the original's loop: zero minutes are still
    // appended and the next non-empty minute is cut to 0.
    assert_eq!(cap_counts(&[3, 4, 0, 0, 5, 6], 7), [3, 4, 0, 0, 0]);
    // Never reaching it keeps the whole day.
    assert_eq!(cap_counts(&[3, 4], 100), [3, 4]);
    assert_eq!(cap_counts(&[3, 4], 0), [0]);
    assert_eq!(cap_counts(&[0, 0, 2], 0), [0, 0, 0]);
    assert_eq!(cap_counts(&[u64::MAX, u64::MAX], u64::MAX), [u64::MAX, 0]);
    assert_eq!(artifact_avg_qps(&[60, 0, 120]), 1.0);
}

#[test]
fn even_spreading_matches_create_request() {
    let busy = read_function(&tiny_csv(), &FunctionPick::Row(2)).expect("row 2");
    let kept = cap_counts(&busy.per_minute, 8);
    assert_eq!(kept, [3, 0, 5, 0]);
    let arrivals = spread_arrivals(&kept, Spread::Even, 0);
    assert_eq!(
        arrivals,
        [0.0, 20000.0, 40000.0, 120000.0, 132000.0, 144000.0, 156000.0, 168000.0]
    );
    // Minute i starts at i * 60000 and its c requests are (60000 / c) * j after it.
    let arrivals = spread_arrivals(&[0, 7], Spread::Even, 0);
    let gap = 60000.0 / 7.0;
    let want: Vec<f64> = (0..7).map(|j| 60000.0 + gap * j as f64).collect();
    assert_eq!(arrivals, want);
    assert_eq!(arrivals[0], 60000.0, "not shifted to 0");
}

#[test]
fn the_azure_trace_through_generate_is_capped_exactly() {
    for cap in [0, 1, 8, 1000, 8632, 10_000] {
        let spec = TraceSpec::AzureCsv {
            path: tiny_csv(),
            function: FunctionPick::Row(2),
            cap,
            within_minute: Spread::Even,
            seed: 0,
        };
        if cap == 0 {
            // An empty trace serves nothing: refused (issue #11), naming the parameter.
            let err = generate(&spec).expect_err("cap 0");
            assert!(
                matches!(
                    err,
                    TraceGenError::InvalidParameter {
                        parameter: "cap",
                        ..
                    }
                ),
                "{err:?}"
            );
            continue;
        }
        let arrivals = generate(&spec).expect("valid");
        assert_eq!(arrivals.len() as u64, cap.min(8632), "cap {cap}");
        assert!(is_non_decreasing(&arrivals));
    }
    let spec = TraceSpec::AzureCsv {
        path: fixtures().join("missing.csv"),
        function: FunctionPick::Row(2),
        cap: 10,
        within_minute: Spread::Even,
        seed: 0,
    };
    assert!(matches!(
        generate(&spec),
        Err(TraceGenError::AzureCsv {
            source: AzureCsvError::Io { .. }
        })
    ));
}

#[test]
fn poisson_spreading_keeps_each_minutes_count_inside_the_minute() {
    let counts = [3, 0, 5, 1, 0, 40];
    let arrivals = spread_arrivals(&counts, Spread::Poisson, 5);
    assert_eq!(arrivals.len(), 49);
    assert!(is_non_decreasing(&arrivals));
    assert_eq!(ShapeStats::of(&arrivals, 6).minutes, 6);
    let per_minute = apparate::traces::shape::minute_counts(&arrivals, counts.len());
    assert_eq!(per_minute, counts);
    assert_ne!(arrivals, spread_arrivals(&counts, Spread::Poisson, 6));
    assert_eq!(arrivals, spread_arrivals(&counts, Spread::Poisson, 5));
}

// ---------------------------------------------------------------------------------------------
// The synthetic Azure-like trace

#[test]
fn synthetic_traces_hold_exactly_n_requests_minute_aligned() {
    let shape = SyntheticShape::default();
    for n in [0, 1, 7, 1439, 1440, 20_000] {
        let trace = synthetic_azure(n, 3, &shape).expect("valid");
        assert_eq!(trace.arrivals_ms.len(), n);
        assert_eq!(trace.per_minute.len(), 1440);
        assert_eq!(trace.per_minute.iter().sum::<u64>(), n as u64);
        assert!(is_non_decreasing(&trace.arrivals_ms));
        let binned = apparate::traces::shape::minute_counts(&trace.arrivals_ms, 1440);
        assert_eq!(binned, trace.per_minute, "n = {n}");
    }
}

/// The paper-scale NLP runs: 250,050 (amazon_reviews) and 179,767 (imdb) requests.
#[test]
fn synthetic_traces_have_the_azure_shape_at_paper_scale() {
    let shape = SyntheticShape::default();
    for (n, seeds) in [(250_050, 1..=2), (179_767, 1..=2)] {
        for seed in seeds {
            let trace = synthetic_azure(n, seed, &shape).expect("valid");
            let stats = ShapeStats::of(&trace.arrivals_ms, 1440);
            let label = format!("n {n} seed {seed}: {stats:?}");
            assert_eq!(trace.arrivals_ms.len(), n);
            assert!(
                (0.02..=0.10).contains(&stats.zero_minute_fraction),
                "{label}"
            );
            let mean = n as f64 / 1440.0 / (1.0 - stats.zero_minute_fraction);
            assert!(
                stats.nonzero_median > 0.4 * mean && stats.nonzero_median < mean,
                "{label}"
            );
            assert!(stats.nonzero_p99 > 6.0 * stats.nonzero_median, "{label}");
            assert!((2.5..=12.0).contains(&stats.peak_trough_ratio), "{label}");
            assert!(stats.interarrival_cv > 3.0, "{label}");
        }
    }
}

#[test]
fn a_sparse_synthetic_function_is_mostly_empty_minutes() {
    let shape = SyntheticShape {
        off_fraction: 0.95,
        mean_off_minutes: 40.0,
        ..SyntheticShape::default()
    };
    let trace = synthetic_azure(300, 4, &shape).expect("valid");
    let stats = ShapeStats::of(&trace.arrivals_ms, 1440);
    assert!(stats.zero_minute_fraction > 0.85, "{stats:?}");
    assert!(stats.nonzero_median <= 10.0, "{stats:?}");
    assert_eq!(trace.arrivals_ms.len(), 300);
}

#[test]
fn a_timer_and_a_poisson_process_measure_as_cv_zero_and_one() {
    let timer = fixed_rate(10_000, 10.0).expect("valid");
    let stats = ShapeStats::of(&timer, 17);
    assert!(stats.interarrival_cv < 1e-9, "{stats:?}");
    assert_eq!(stats.zero_minute_fraction, 0.0);
    assert_eq!(stats.nonzero_median, 600.0);
    let cv = ShapeStats::of(&poisson(100_000, 30.0, 2023).expect("valid"), 1).interarrival_cv;
    assert!((cv - 1.0).abs() < 0.02, "{cv}");
}

#[test]
fn synthetic_parameters_out_of_range_are_rejected() {
    let base = SyntheticShape::default();
    let cases = [
        (
            SyntheticShape {
                minutes: 0,
                ..base.clone()
            },
            "minutes",
        ),
        (
            SyntheticShape {
                diurnal_amplitude: 1.0,
                ..base.clone()
            },
            "diurnal_amplitude",
        ),
        (
            SyntheticShape {
                off_fraction: f64::NAN,
                ..base.clone()
            },
            "off_fraction",
        ),
        (
            SyntheticShape {
                off_fraction: 0.9,
                mean_off_minutes: 2.0,
                ..base.clone()
            },
            "mean_off_minutes",
        ),
        (
            SyntheticShape {
                minute_sigma: -1.0,
                ..base.clone()
            },
            "minute_sigma",
        ),
        (
            SyntheticShape {
                burst_size: 0.5,
                ..base.clone()
            },
            "burst_size",
        ),
        (
            SyntheticShape {
                burst_spread_ms: 0.0,
                ..base.clone()
            },
            "burst_spread_ms",
        ),
    ];
    for (shape, name) in cases {
        let err = synthetic_azure(100, 1, &shape).expect_err(name);
        assert!(
            matches!(err, TraceGenError::InvalidParameter { kind: "synthetic_azure", parameter, .. } if parameter == name),
            "{name}: {err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The spec's serde form

#[test]
fn trace_specs_deserialize_with_the_artifacts_defaults() {
    let spec: TraceSpec = serde_json::from_str(r#"{"kind": "fixed", "qps": 30}"#).expect("fixed");
    assert_eq!(
        spec,
        TraceSpec::Fixed {
            n: 70_000,
            qps: 30.0
        }
    );
    let spec: TraceSpec =
        serde_json::from_str(r#"{"kind": "poisson", "qps": 30}"#).expect("poisson");
    assert_eq!(
        spec,
        TraceSpec::Poisson {
            n: 70_000,
            qps: 30.0,
            seed: 2023
        }
    );
    let spec: TraceSpec =
        serde_json::from_str(r#"{"kind": "azure_csv", "path": "d01.csv"}"#).expect("azure");
    assert_eq!(
        spec,
        TraceSpec::AzureCsv {
            path: "d01.csv".into(),
            function: FunctionPick::Row(7188),
            cap: 700_000,
            within_minute: Spread::Even,
            seed: 0,
        }
    );
    let spec: TraceSpec = serde_json::from_str(
        r#"{"kind": "azure_csv", "path": "d01.csv", "function": {"hash_function": "ab"},
            "within_minute": "poisson", "seed": 4, "cap": 250050}"#,
    )
    .expect("azure with options");
    assert_eq!(
        spec,
        TraceSpec::AzureCsv {
            path: "d01.csv".into(),
            function: FunctionPick::HashFunction("ab".into()),
            cap: 250_050,
            within_minute: Spread::Poisson,
            seed: 4,
        }
    );
    let spec: TraceSpec = serde_json::from_str(
        r#"{"kind": "synthetic_azure", "n": 179767, "seed": 1, "shape": {"minute_sigma": 0.5}}"#,
    )
    .expect("synthetic");
    let TraceSpec::SyntheticAzure { n, seed, shape } = &spec else {
        panic!("{spec:?}");
    };
    assert_eq!((*n, *seed), (179_767, 1));
    assert_eq!(
        *shape,
        SyntheticShape {
            minute_sigma: 0.5,
            ..SyntheticShape::default()
        }
    );
}

#[test]
fn trace_specs_round_trip_and_reject_unknown_fields() {
    let specs = [
        TraceSpec::Fixed { n: 3, qps: 1.5 },
        TraceSpec::Poisson {
            n: 3,
            qps: 1.5,
            seed: 7,
        },
        TraceSpec::AzureCsv {
            path: "x.csv".into(),
            function: FunctionPick::HashFunction("h".into()),
            cap: 5,
            within_minute: Spread::Poisson,
            seed: 2,
        },
        TraceSpec::SyntheticAzure {
            n: 3,
            seed: 9,
            shape: SyntheticShape::default(),
        },
    ];
    for spec in specs {
        let json = serde_json::to_value(&spec).expect("serialize");
        assert_eq!(json["kind"], spec.kind());
        let back: TraceSpec = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, spec);
    }
    for bad in [
        r#"{"kind": "fixed", "qps": 30, "rate": 3}"#,
        r#"{"kind": "uniform", "qps": 30}"#,
        r#"{"kind": "poisson", "qps": 30, "seed": 4294967296}"#,
        r#"{"kind": "synthetic_azure", "n": 1, "seed": 1, "shape": {"sigma": 1}}"#,
    ] {
        assert!(serde_json::from_str::<TraceSpec>(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fixed_rate_gaps_are_1000_over_qps(n in 1usize..3000, qps in 0.01f64..100_000.0) {
        let arrivals = fixed_rate(n, qps).expect("valid");
        prop_assert_eq!(arrivals.len(), n);
        prop_assert_eq!(arrivals[0], 0.0);
        let gap = 1000.0 / qps;
        for (i, w) in arrivals.windows(2).enumerate() {
            let tolerance = 1e-12 * (i + 1) as f64 * gap;
            prop_assert!((w[1] - w[0] - gap).abs() <= tolerance + 1e-9 * gap);
        }
        let last = (n - 1) as f64 * gap;
        prop_assert!((arrivals[n - 1] - last).abs() <= 1e-9 * last.max(gap));
    }

    #[test]
    fn poisson_mean_gap_is_1000_over_qps(seed in any::<u32>(), qps in 1.0f64..1000.0) {
        let n = 20_000;
        let arrivals = poisson(n, qps, seed).expect("valid");
        prop_assert_eq!(arrivals.len(), n);
        prop_assert!(is_non_decreasing(&arrivals));
        let mean_gap = arrivals[n - 1] / (n - 1) as f64;
        let expected = 1000.0 / qps;
        // The sample mean of 19,999 exponential gaps has a relative sd of 0.7 %.
        prop_assert!((mean_gap / expected - 1.0).abs() < 0.035, "{} vs {}", mean_gap, expected);
    }

    #[test]
    fn azure_spreading_keeps_counts_and_order(
        counts in proptest::collection::vec(0u64..50, 1..30),
        cap in 0u64..800,
        seed in any::<u64>(),
    ) {
        let kept = cap_counts(&counts, cap);
        let total: u64 = counts.iter().sum();
        prop_assert_eq!(kept.iter().sum::<u64>(), total.min(cap));
        for spread in [Spread::Even, Spread::Poisson] {
            let arrivals = spread_arrivals(&kept, spread, seed);
            prop_assert_eq!(arrivals.len() as u64, total.min(cap));
            prop_assert!(is_non_decreasing(&arrivals));
            let binned = apparate::traces::shape::minute_counts(&arrivals, kept.len());
            prop_assert_eq!(&binned, &kept);
        }
    }

    #[test]
    fn a_load_sets_the_shortest_span_that_keeps_the_mean_rate_at_or_under_it(
        n in 1usize..2_000_000,
        batch1_ms in 0.1f64..200.0,
        load in 0.01f64..10.0,
    ) {
        let minutes = minutes_for_load(n, batch1_ms, load);
        prop_assert!(minutes >= 1);
        // Offered load over the span: n requests x batch1_ms of service, per span.
        let offered = |m: usize| n as f64 * batch1_ms / (m as f64 * 60_000.0);
        prop_assert!(offered(minutes) <= load * (1.0 + 1e-12));
        if minutes > 1 {
            prop_assert!(offered(minutes - 1) > load * (1.0 - 1e-12));
        }
    }

    #[test]
    fn ln_is_monotonic_and_inverts_exp(x in 1e-300f64..1e300, y in 1e-300f64..1e300) {
        let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
        prop_assert!(det_math::ln(lo) <= det_math::ln(hi));
        let l = det_math::ln(x);
        prop_assert!((det_math::exp(l) / x - 1.0).abs() < 1e-12);
    }
}
