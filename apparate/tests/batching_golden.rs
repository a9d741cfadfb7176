//! Batching generators (spec §9.2) against `golden/batching-*`, the spec's example E10, the
//! original's quirks and the invariants of spec §12.13 on random traces (the `worker batching`
//! binary is tested in the worker crate).

use std::path::PathBuf;

use apparate::batching::{
    clockwork, tf_serve, BatchingError, BatchingOutcome, DecisionFile, RequestTrace, Scheme,
    ServingTimes, TfServeParams, TraceFile,
};
use proptest::prelude::*;

use crate::batching_expect::{mismatches, read_json};
use crate::util::golden_dir;

// ---------------------------------------------------------------------------------------------
// Golden scenarios
// ---------------------------------------------------------------------------------------------

/// Every `golden/batching-*` folder, sorted. Held-out scenarios of the same shape are picked up
/// without naming them here.
fn batching_scenarios() -> Vec<PathBuf> {
    let dir = golden_dir();
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("readable golden entry").path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("batching-"))
        })
        .collect();
    scenarios.sort();
    assert!(
        !scenarios.is_empty(),
        "no batching-* scenario in {}",
        dir.display()
    );
    scenarios
}

#[test]
fn every_golden_batching_scenario_matches_its_expected_output_exactly() {
    let mut failures = Vec::new();
    for dir in batching_scenarios() {
        let name = dir.display().to_string();
        let trace_path = dir.join("trace.json");
        let text = std::fs::read_to_string(&trace_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", trace_path.display()));
        let input = TraceFile::from_json_str(&text)
            .unwrap_or_else(|e| panic!("{name}: trace.json rejected: {e:#?}"));
        let outcome = input
            .run()
            .unwrap_or_else(|e| panic!("{name}: {} failed: {e}", input.scheme));
        let actual = DecisionFile::new(input.scheme, &outcome);
        let problems = mismatches(&actual, &read_json(&dir.join("expected.json")));
        if !problems.is_empty() {
            failures.push(format!("{name}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Worked example and quirks
// ---------------------------------------------------------------------------------------------

fn artifact_serving(m_ms: [f64; 7]) -> ServingTimes {
    ServingTimes::new(vec![1, 2, 4, 8, 16, 32, 64], m_ms.to_vec()).expect("valid serving times")
}

#[test]
fn clockwork_reproduces_spec_example_e10() {
    let trace = RequestTrace::new((0..12).map(|id| 2.0 * f64::from(id)).collect(), 20.0)
        .expect("valid trace");
    let serving = artifact_serving([5.0, 6.0, 8.0, 12.0, 20.0, 36.0, 68.0]);
    let outcome = clockwork(&trace, &serving).expect("clockwork runs");

    assert_eq!(outcome.batching_decision, [1, 2, 2, 4, 2]);
    let expected_stats = [
        Some((0.0, 5.0)), // t=0: bs1 serves [0]
        Some((3.0, 6.0)), // t=5: bs2 serves [1, 2]
        Some((1.0, 6.0)),
        Some((5.0, 6.0)), // t=11: bs2 serves [3, 4]
        Some((3.0, 6.0)),
        Some((7.0, 8.0)), // t=17: bs4 serves [5, 6, 7, 8]
        Some((5.0, 8.0)),
        Some((3.0, 8.0)),
        Some((1.0, 8.0)),
        Some((7.0, 6.0)), // t=25: bs2 serves [9, 10]
        Some((5.0, 6.0)),
        None, // still queued when the trace ends: abandoned
    ];
    assert_eq!(outcome.per_request_stats, expected_stats);
    assert_eq!(outcome.end_time, 31.0);
    assert_eq!(outcome.total_num_requests(), 12);
    assert_eq!(outcome.num_batches(), 5);
    assert_eq!(outcome.num_served(), 11);
}

#[test]
fn clockwork_serves_a_request_twice_when_the_clock_hits_the_last_arrival_exactly() {
    // t=0 serves [0]; t=5 equals the last arrival, so the scan reaches the end without moving
    // `next`: bs2 serves [1, 2] and request 3 waits. At t=11 the rescan queues 1, 2, 3 again;
    // after dropping served ids every queue is [3, 3], and bs2 serves request 3 twice.
    let trace = RequestTrace::new(vec![0.0, 5.0, 5.0, 5.0], 100.0).expect("valid trace");
    let serving = ServingTimes::new(vec![1, 2, 4], vec![5.0, 6.0, 8.0]).expect("valid");
    let outcome = clockwork(&trace, &serving).expect("clockwork runs");

    assert_eq!(outcome.batching_decision, [1, 2, 2]);
    assert_eq!(
        outcome.per_request_stats,
        [
            Some((0.0, 5.0)),
            Some((0.0, 6.0)),
            Some((0.0, 6.0)),
            Some((6.0, 6.0))
        ]
    );
    assert_eq!(outcome.end_time, 17.0);
    let decided: usize = outcome.batching_decision.iter().sum();
    assert_eq!(
        decided,
        outcome.num_served() + 1,
        "one slot held a duplicate"
    );
}

#[test]
fn clockwork_reports_the_original_infinite_loop_when_the_slo_is_below_every_serving_time() {
    let trace = RequestTrace::new(vec![0.0, 1.0], 2.0).expect("valid trace");
    let serving = artifact_serving([5.0, 6.0, 8.0, 12.0, 20.0, 36.0, 68.0]);
    assert_eq!(
        clockwork(&trace, &serving),
        Err(BatchingError::Stalled {
            time_ms: 1.0,
            next_request: 1
        })
    );
}

#[test]
fn clockwork_reports_the_original_assertion_when_batch_size_one_is_missing() {
    let trace = RequestTrace::new(vec![0.0], 50.0).expect("valid trace");
    let serving = ServingTimes::new(vec![2, 4], vec![6.0, 8.0]).expect("valid");
    assert_eq!(
        clockwork(&trace, &serving),
        Err(BatchingError::NoValidStrategy {
            time_ms: 0.0,
            queued: 1
        })
    );
}

#[test]
fn clockwork_hits_the_original_assertion_when_rounding_puts_a_zero_slack_strategy_in_the_past() {
    // SLO = M[0]. At t = 0.1 request 0 passes the queue filter (0.1 + 7 <= 0.1 + 7), but its
    // strategy deadline (0.1 + 7) - 7 rounds to 0.09999999999999964 < t, so no strategy is valid
    // and the original's `assert False` fires: spec §9.2's "one always exists" needs exact
    // arithmetic.
    let trace = RequestTrace::new(vec![0.1], 7.0).expect("valid trace");
    let serving = ServingTimes::new(vec![1, 2], vec![7.0, 9.0]).expect("valid");
    assert!(trace.deadline_ms()[0] - serving.m_ms()[0] < trace.arrival_ms()[0]);
    assert_eq!(
        clockwork(&trace, &serving),
        Err(BatchingError::NoValidStrategy {
            time_ms: 0.1,
            queued: 1
        })
    );
}

#[test]
fn tf_serve_pads_the_final_batch_with_rescans_of_the_last_arrival() {
    // Nothing times out and the queue never reaches 8 until the clock sits on the last arrival:
    // from then on every round rescans request 2 and queues it again, until 8 entries force a
    // batch of size 8 holding requests 0, 1 and six copies of 2.
    let trace = RequestTrace::new(vec![0.0, 1.0, 2.0], 100.0).expect("valid trace");
    let serving = artifact_serving([4.1, 5.3, 7.2, 11.6, 19.8, 36.5, 70.2]);
    let outcome = tf_serve(&trace, &serving, &TfServeParams::default()).expect("tf_serve runs");

    assert_eq!(outcome.batching_decision, [8]);
    assert_eq!(
        outcome.per_request_stats,
        [Some((2.0, 11.6)), Some((1.0, 11.6)), Some((0.0, 11.6))]
    );
    assert_eq!(outcome.end_time, 2.0 + 11.6);
}

#[test]
fn tf_serve_records_the_rounded_up_size_for_a_timed_out_batch() {
    // The clock jumps from arrival to arrival until t = 70, when the queue is [0, 1, 2, 3]. The
    // timeout compares arrivals with `last_served_time = -1`: request 3 (70 - (-1) = 71 > 60)
    // is the first late one, so x = 3 and four requests go out as size 4. Request 4 then times
    // out alone against last_served_time = 70 and is served as size 1.
    let trace = RequestTrace::new(vec![0.0, 1.0, 2.0, 70.0, 200.0], 500.0).expect("valid");
    let serving = artifact_serving([4.1, 5.3, 7.2, 11.6, 19.8, 36.5, 70.2]);
    let outcome = tf_serve(&trace, &serving, &TfServeParams::default()).expect("tf_serve runs");
    assert_eq!(outcome.batching_decision, [4, 1]);
    assert_eq!(outcome.per_request_stats[0], Some((70.0, 7.2)));
    assert_eq!(outcome.per_request_stats[3], Some((0.0, 7.2)));

    // Three requests closed by a timeout: recorded as size 4, three served.
    let trace = RequestTrace::new(vec![0.0, 1.0, 70.0, 200.0], 500.0).expect("valid");
    let outcome = tf_serve(&trace, &serving, &TfServeParams::default()).expect("tf_serve runs");
    assert_eq!(outcome.batching_decision[0], 4);
    assert_eq!(outcome.per_request_stats[2], Some((0.0, 7.2)));
}

#[test]
fn tf_serve_can_serve_requests_before_they_arrive_after_rewinding_the_clock() {
    // The first batch (requests 0..=5, closed by request 5's timeout) ends at t = 42, exactly
    // the last arrival: the scan queues 6..=10 without moving `next` off 6, nothing forces a
    // batch, and "sleep until the next arrival" sets t back to arrival[6] = 36.25. Rescans then
    // add 6 and 7 again until 8 entries are queued at t = 40.25, and requests 9 (40.5) and
    // 10 (42.0) are served before they arrive.
    let arrivals = vec![
        0.0, 7.75, 9.5, 18.5, 26.25, 36.0, 36.25, 39.25, 40.25, 40.5, 42.0,
    ];
    let trace = RequestTrace::new(arrivals, 48.25).expect("valid trace");
    let serving = artifact_serving([0.25, 0.5, 2.25, 6.0, 9.0, 10.0, 11.25]);
    let params = TfServeParams {
        batch_timeout_ms: 32.0,
        ..TfServeParams::default()
    };
    let outcome = tf_serve(&trace, &serving, &params).expect("tf_serve runs");

    assert_eq!(outcome.batching_decision, [8, 8]);
    assert_eq!(outcome.per_request_stats[9], Some((-0.25, 6.0)));
    assert_eq!(outcome.per_request_stats[10], Some((-1.75, 6.0)));
    assert_eq!(outcome.end_time, 46.25);
    assert_eq!(outcome.num_served(), 11);
}

#[test]
fn tf_serve_needs_max_batch_size_among_the_supported_sizes_to_serve_a_full_batch() {
    let trace = RequestTrace::new(vec![0.0; 10], 100.0).expect("valid trace");
    let serving = ServingTimes::new(vec![1, 2, 4], vec![1.0, 2.0, 3.0]).expect("valid");
    assert_eq!(
        tf_serve(&trace, &serving, &TfServeParams::default()),
        Err(BatchingError::MaxBatchSizeUnsupported { max_batch_size: 8 })
    );
}

#[test]
fn an_empty_trace_serves_nothing() {
    let trace = RequestTrace::new(Vec::new(), 10.0).expect("valid trace");
    let serving = artifact_serving([4.1, 5.3, 7.2, 11.6, 19.8, 36.5, 70.2]);
    for scheme in [Scheme::Clockwork, Scheme::TfServe] {
        let outcome = scheme
            .run(&trace, &serving, &TfServeParams::default())
            .expect("runs");
        assert_eq!(outcome.num_batches(), 0);
        assert_eq!(outcome.total_num_requests(), 0);
        assert_eq!(outcome.end_time, 0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Invariants on random traces
// ---------------------------------------------------------------------------------------------

/// A random serving table: batch size 1 plus a random subset of the artifact's larger sizes,
/// with strictly increasing serving times `first + Σ steps`.
fn serving_times(unit: f64) -> impl Strategy<Value = ServingTimes> {
    (
        proptest::sample::subsequence(vec![2usize, 4, 8, 16, 32, 64], 0..=6),
        1u32..40,
        proptest::collection::vec(1u32..40, 6),
    )
        .prop_map(move |(larger, first, steps)| {
            let mut sizes = vec![1];
            sizes.extend(larger);
            let mut m = f64::from(first) * unit;
            let m_ms = (0..sizes.len())
                .map(|i| {
                    if i > 0 {
                        m += f64::from(steps[i - 1]) * unit;
                    }
                    m
                })
                .collect();
            ServingTimes::new(sizes, m_ms).expect("generated serving times are valid")
        })
}

/// Arrivals on a grid of `unit` ms (ties and exact clock hits are common, and all arithmetic is
/// exact), or with continuous gaps.
fn arrivals(grid: bool) -> impl Strategy<Value = Vec<f64>> {
    let gap = if grid {
        (0u32..40).prop_map(|k| f64::from(k) * 0.25).boxed()
    } else {
        (0.001f64..12.0).boxed()
    };
    proptest::collection::vec(gap, 0..250).prop_map(|gaps| {
        let mut t = 0.0;
        gaps.into_iter()
            .map(|g| {
                let a = t;
                t += g;
                a
            })
            .collect()
    })
}

/// Spec §12.13, the parts that hold for every trace: decisions are supported sizes, and every
/// served request started after it arrived and finished within its SLO (up to `tolerance` ms of
/// rounding on continuous traces).
fn check_clockwork_outcome(
    trace: &RequestTrace,
    serving: &ServingTimes,
    outcome: &BatchingOutcome,
    tolerance: f64,
) -> Result<(), TestCaseError> {
    for &b in &outcome.batching_decision {
        prop_assert!(serving.sizes().contains(&b), "decision {b} not supported");
    }
    prop_assert_eq!(outcome.total_num_requests(), trace.len());
    for (id, stat) in outcome.per_request_stats.iter().enumerate() {
        if let Some((queueing, m)) = *stat {
            prop_assert!(queueing >= 0.0, "request {id} queued {queueing} ms");
            prop_assert!(serving.m_ms().contains(&m));
            prop_assert!(
                queueing + m <= trace.slo_ms() + tolerance,
                "request {id}: {queueing} + {m} > SLO {}",
                trace.slo_ms()
            );
        }
    }
    Ok(())
}

/// Clockwork either runs, or fails exactly where the original would: it loops forever only
/// with `slo < M[0]`, and (with inexact arithmetic) asserts only when the SLO equals a serving
/// time, where `(arrival + slo) - M` can round below `arrival`.
fn run_clockwork(
    trace: &RequestTrace,
    serving: &ServingTimes,
    exact_arithmetic: bool,
) -> Result<Option<BatchingOutcome>, TestCaseError> {
    match clockwork(trace, serving) {
        Ok(outcome) => {
            prop_assert_eq!(&clockwork(trace, serving), &Ok(outcome.clone()));
            Ok(Some(outcome))
        }
        Err(BatchingError::Stalled { .. }) => {
            prop_assert!(
                trace.slo_ms() < serving.m_ms()[0],
                "stalled with a feasible SLO"
            );
            Ok(None)
        }
        Err(BatchingError::NoValidStrategy { .. })
            if !exact_arithmetic && serving.m_ms().contains(&trace.slo_ms()) =>
        {
            Ok(None)
        }
        Err(e) => Err(TestCaseError::fail(format!("unexpected error: {e}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Spec §12.13 in full on continuous arrivals: Σ decisions = number of served requests.
    #[test]
    fn clockwork_keeps_spec_invariants_on_continuous_traces(
        arrival_ms in arrivals(false),
        serving in serving_times(0.5),
        slo_tenths in 1u32..1000,
    ) {
        let trace = RequestTrace::new(arrival_ms, f64::from(slo_tenths) / 10.0).expect("valid");
        if let Some(outcome) = run_clockwork(&trace, &serving, false)? {
            check_clockwork_outcome(&trace, &serving, &outcome, 1e-9)?;
            let decided: usize = outcome.batching_decision.iter().sum();
            prop_assert_eq!(decided, outcome.num_served());
        }
    }

    /// On a grid, the clock hits the last arrival exactly and a request can fill two slots of
    /// one batch (the duplicate-append quirk), so only `Σ decisions >= served` holds; the timing
    /// invariants hold exactly.
    #[test]
    fn clockwork_keeps_timing_invariants_exactly_on_grid_traces(
        arrival_ms in arrivals(true),
        serving in serving_times(0.25),
        slo_quarters in 1u32..200,
    ) {
        let trace = RequestTrace::new(arrival_ms, f64::from(slo_quarters) / 4.0).expect("valid");
        if let Some(outcome) = run_clockwork(&trace, &serving, true)? {
            check_clockwork_outcome(&trace, &serving, &outcome, 0.0)?;
            let decided: usize = outcome.batching_decision.iter().sum();
            prop_assert!(decided >= outcome.num_served());
        }
    }

    /// tf_serve records a supported size no larger than `max_batch_size` per batch, serves at
    /// most that many requests, and never fails when `max_batch_size` is supported.
    #[test]
    fn tf_serve_records_at_least_as_many_slots_as_it_serves(
        arrival_ms in prop_oneof![arrivals(true), arrivals(false)],
        serving in serving_times(0.5),
        slo_tenths in 1u32..2000,
        max_batch_index in 0usize..7,
        batch_timeout_ms in 0u32..100,
        max_enqueued_batches in 1usize..4,
    ) {
        let sizes = serving.sizes();
        let params = TfServeParams {
            max_batch_size: sizes[max_batch_index % sizes.len()],
            batch_timeout_ms: f64::from(batch_timeout_ms),
            max_enqueued_batches,
        };
        let trace = RequestTrace::new(arrival_ms, f64::from(slo_tenths) / 10.0).expect("valid");
        let outcome = tf_serve(&trace, &serving, &params)
            .map_err(|e| TestCaseError::fail(format!("tf_serve failed: {e}")))?;
        prop_assert_eq!(&tf_serve(&trace, &serving, &params), &Ok(outcome.clone()));

        for &b in &outcome.batching_decision {
            prop_assert!(sizes.contains(&b) && b <= params.max_batch_size, "decision {b}");
        }
        let decided: usize = outcome.batching_decision.iter().sum();
        prop_assert!(outcome.num_served() <= decided);
        let file = DecisionFile::new(Scheme::TfServe, &outcome);
        let with_stats = outcome.per_request_stats.iter().filter(|s| s.is_some()).count();
        prop_assert_eq!(file.num_served, with_stats);
        prop_assert_eq!(file.num_batches, outcome.batching_decision.len());
        for stat in outcome.per_request_stats.iter().flatten() {
            prop_assert!(serving.m_ms().contains(&stat.1));
        }
    }
}
