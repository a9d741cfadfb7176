//! Small units.

use analysis::figures::{cdf_points, Timeline};
use analysis::tables::{np_percentile, Spread};

#[test]
fn percentiles_follow_numpy_linear_interpolation() {
    // numpy.percentile([1, 2, 3, 4], [25, 50, 95, 99]) = [1.75, 2.5, 3.85, 3.97]
    let v = [4.0, 1.0, 3.0, 2.0];
    for (p, want) in [(25.0, 1.75), (50.0, 2.5), (95.0, 3.85), (99.0, 3.97)] {
        assert!((np_percentile(&v, p) - want).abs() < 1e-12, "p{p}");
    }
    assert_eq!(np_percentile(&[5.0, 1.0, 3.0], 50.0), 3.0);
    assert!(np_percentile(&[], 50.0).is_nan());
    let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]);
    assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
}

#[test]
fn base64_matches_rfc_4648_vectors() {
    for (i, o) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(analysis::doc::base64(i.as_bytes()), o);
    }
}

#[test]
fn timeline_tracks_active_intervals_and_thresholds() {
    let text = r#"{"batch":1,"n":1,"bs":1,"ramp_ids":[2,5],"thresholds":[0.0,0.1],"acc":1.0}
{"batch":2,"n":1,"bs":1,"ramp_ids":[2,5],"thresholds":[0.2,0.1],"acc":1.0}
{"batch":3,"n":1,"bs":1,"ramp_ids":[5],"thresholds":[0.3],"acc":1.0}
{"batch":4,"n":1,"bs":1,"ramp_ids":[2,5],"thresholds":[0.4,0.3],"acc":1.0}
"#;
    let t = Timeline::from_jsonl("t".into(), 8, text, 1000).expect("parses");
    assert_eq!(t.batches, 4);
    assert_eq!(t.active, vec![(2, vec![(1, 2), (4, 4)]), (5, vec![(1, 4)])]);
    assert_eq!(
        t.thresholds[0].1,
        vec![vec![(1.0, 0.0), (2.0, 0.2)], vec![(4.0, 0.4)]]
    );
    let err = Timeline::from_jsonl("t".into(), 8, "{\"batch\": 1}\n", 10).expect_err("bad");
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn cdf_points_end_at_one() {
    let v: Vec<f64> = (0..1000).map(f64::from).collect();
    let p = cdf_points(&v, 100);
    assert!(p.len() <= 102);
    assert_eq!(p.last().copied(), Some((999.0, 1.0)));
    assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
}

#[test]
fn csv_fields_with_commas_are_quoted() {
    let t = analysis::tables::Table {
        header: vec!["a".into(), "b".into()],
        rows: vec![vec!["1: 2%, 3: 4%".into(), "say \"x\"".into()]],
    };
    assert_eq!(t.to_csv(), "a,b\n\"1: 2%, 3: 4%\",\"say \"\"x\"\"\"\n");
}

#[test]
fn the_fast_batch_line_parser_agrees_with_serde() {
    use analysis::figures::BatchLine;
    for l in [
        r#"{"batch":12,"n":1,"bs":1,"ramp_ids":[8,16,24],"thresholds":[1.27,0.0,5e-05],"acc":1.0}"#,
        r#"{"batch":3,"n":2,"bs":2,"ramp_ids":[],"thresholds":[],"acc":1.0}"#,
    ] {
        let fast = BatchLine::fast(l).expect("fast path");
        let slow: BatchLine = serde_json::from_str(l).expect("serde");
        assert_eq!(
            (fast.batch, fast.ramp_ids, fast.thresholds),
            (slow.batch, slow.ramp_ids, slow.thresholds)
        );
    }
    assert!(BatchLine::fast(r#"{"n":1,"batch":1}"#).is_none());
}
