//! Request traces (`worker::traces`): the numpy-compatible generator against real numpy output
//! and the synthetic workloads' samplers.

use std::path::{Path, PathBuf};

use serde_json::Value;
use worker::traces::rng::{det_math, Mt19937, NumpyRandomState, SplitMix64, Xoshiro256StarStar};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traces")
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
/// version; see `worker::traces::rng`).
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
