//! The worked examples of spec §13 (E1–E9), computed by hand in the spec.

use apparate::sim::bootstrap::{bootstrap, ramp_addition};
use apparate::sim::evaluate::{query_performance, ramp_utilities, EvalData};
use apparate::sim::numeric::new_ramps;
use apparate::sim::tuning::tune_thresholds;
use apparate::sim::{
    simulate, BatchSize, Batching, LatencyTable, LatencyTables, RampCost, RampData, RunSpec,
};
use std::collections::BTreeMap;

/// `lcl = [(2.0, 0.3), (5.0, 0.3), (8.0, 0.3), (10.0, None)]`, for every batch size.
fn table() -> LatencyTable {
    LatencyTable {
        ramps: [2.0, 5.0, 8.0]
            .iter()
            .map(|&v| RampCost {
                vanilla_up_to_ms: v,
                ramp_ms: 0.3,
            })
            .collect(),
        vanilla_ms: 10.0,
    }
}

fn tables() -> LatencyTables {
    LatencyTables::new(vec![table(); 7]).expect("seven tables")
}

fn e4_gaps() -> Vec<f64> {
    [0.95, 0.80, 0.99, 0.60].iter().map(|c| 1.0 - c).collect()
}

#[test]
fn e1_exit_latencies() {
    let t = table();
    assert_eq!(
        t.exit_latencies(&[0, 2]).per_exit,
        vec![2.0 + 0.3, 8.0 + (0.3 + 0.3), 10.0 + (0.3 + 0.3)]
    );
    assert_eq!(t.exit_latencies(&[1]).per_exit, vec![5.0 + 0.3, 10.0 + 0.3]);
}

#[test]
fn e2_boundary_and_placement() {
    assert_eq!(table().latest_possible_ramp(3), 2);
    assert_eq!(new_ramps(0, 2, 1), vec![1]);
    assert_eq!(new_ramps(0, 2, 3), vec![0, 1, 1]);
    assert_eq!(new_ramps(3, 11, 1), vec![7]);
    assert_eq!(new_ramps(0, 0, 2), vec![0, 0]);
}

#[test]
fn e3_tail_budget() {
    let mut t = table();
    t.ramps.truncate(1);
    t.ramps[0].ramp_ms = 0.5;
    let data = RampData {
        conf: vec![vec![0.99; 4]],
        acc: vec![vec![true; 4]],
    };
    // (10.5 - 10) / 10 = 0.05 is not < 0.05: rejected.
    assert!(ramp_addition(&data, &t, 1).ramp_ids.is_empty());
    t.ramps[0].ramp_ms = 0.3;
    assert_eq!(ramp_addition(&data, &t, 1).ramp_ids, vec![0]);
    // Two ramps of 0.3: 0.05999999999999996, rejected.
    let two = table().exit_latencies(&[0, 1]);
    assert_eq!((two.no_exit() - 10.0) / 10.0, 0.05999999999999996);
}

#[test]
fn e4_evaluation() {
    let g = e4_gaps();
    let gaps: [&[f64]; 1] = [&g];
    let acc: [&[bool]; 1] = [&[true, true, true, false]];
    let data = EvalData {
        gaps: &gaps,
        acc: &acc,
    };
    let lat = table().exit_latencies(&[1]);
    let p = query_performance(&[0.1], data, &lat);
    assert_eq!(
        (p.acc, p.li, p.er),
        (1.0, 21.999999999999993, vec![0.5, 0.5])
    );
    let p = query_performance(&[0.0], data, &lat);
    assert_eq!(p.li, -3.000000000000007);
    assert_eq!(p.er, vec![0.0, 1.0]);
}

#[test]
fn e5_greedy_tuning_and_e6_utility() {
    let g = e4_gaps();
    let gaps: [&[f64]; 1] = [&g];
    let acc: [&[bool]; 1] = [&[true, true, true, false]];
    let t = table();
    let tuned = tune_thresholds(
        &[1],
        EvalData {
            gaps: &gaps,
            acc: &acc,
        },
        &t,
        &BTreeMap::new(),
    );
    assert_eq!(tuned.thresholds, vec![0.4]);
    assert_eq!((tuned.li, tuned.acc), (34.5, 1.0));
    assert_eq!(tuned.er, vec![0.75, 0.25]);
    let lat = t.exit_latencies(&[1]);
    let u = ramp_utilities(&tuned.er, &lat, &[1], &t);
    assert_eq!(u, vec![3.6750000000000007]);
    assert_eq!(u[0] / 0.3, 12.250000000000004);

    // With sample 2 (conf 0.99) wrong, only the neutral move to 0.01 is feasible.
    let acc: [&[bool]; 1] = [&[true, true, false, false]];
    let tuned = tune_thresholds(
        &[1],
        EvalData {
            gaps: &gaps,
            acc: &acc,
        },
        &t,
        &BTreeMap::new(),
    );
    assert_eq!(tuned.thresholds, vec![0.01]);
    assert_eq!(tuned.li, -3.000000000000007);
}

fn e7_bootstrap_data() -> RampData {
    RampData {
        conf: vec![vec![0.6; 4], vec![0.95, 0.80, 0.99, 0.60], vec![0.99; 4]],
        acc: vec![vec![true; 4], vec![true, true, true, false], vec![true; 4]],
    }
}

#[test]
fn e7_bootstrap_keeps_only_the_count() {
    let b = bootstrap(&e7_bootstrap_data(), &table(), 3);
    assert_eq!(b.ramp_addition.ramp_ids, vec![0]);
    assert_eq!(b.ramp_addition.thresholds, vec![1.27]);
    assert_eq!(b.ramp_addition.latency_savings, 77.0);
    assert_eq!(b.num_initial_ramps, 1);
    assert_eq!(b.latest_possible_ramp, 2);
    assert_eq!(
        b.initial_ramp_ids,
        vec![1],
        "not ramp 0, which the bootstrap chose"
    );
}

#[test]
fn e8_first_cv_batches() {
    // Ramp 1 sees E4's data in batch 1 and E8's in batch 2; 8 samples + 1 never served.
    let conf1 = vec![0.95, 0.80, 0.99, 0.60, 0.97, 0.5, 0.7, 0.65, 0.9];
    let acc1 = vec![true, true, true, false, true, false, false, true, true];
    let sim = RampData {
        conf: vec![vec![0.6; 9], conf1, vec![0.99; 9]],
        acc: vec![vec![true; 9], acc1, vec![true; 9]],
    };
    let four = [BatchSize::exact(4).expect("4"); 2];
    let spec = RunSpec {
        arch: "resnet18_test",
        dataset: "video",
        batch_size: 4,
        batching: Batching::Decisions(&four),
        mode: apparate::sim::Mode::Apparate,
        overrides: apparate::sim::Overrides::default(),
        record_log: true,
    };
    let out = simulate(&spec, &tables(), &e7_bootstrap_data(), &sim).expect("runs");
    assert_eq!(
        out.log[0],
        "serve_batch: batch 1, current bs 4, ramp_ids [1], thresholds [0.0], actual acc 1.0, latency_improvement -3.000000000000007, exit_rate [0. 1.], ramp acc {3: 1.0}"
    );
    let b2 = &out.batches[1];
    assert_eq!(
        b2.thresholds,
        vec![0.4],
        "batch 1's tuning applies to batch 2"
    );
    assert_eq!(out.requests.inference_ms[4..8], [5.3, 10.3, 5.3, 5.3]);
    assert_eq!((b2.acc, b2.latency_improvement), (0.75, 34.49999999999999));
    assert_eq!(
        b2.ramp_acc,
        BTreeMap::from([(1, 0.6666666666666666), (3, 1.0)])
    );
    // cum_acc 0.875 < 0.99 and ramp 1's exit accuracy < 0.99: threshold back to 0.
    assert_eq!(out.final_state.thresholds, vec![0.0]);
}

#[test]
fn e9_batch_formation_stops_when_the_stream_cannot_fill_a_batch() {
    let n = 10;
    let sim = RampData {
        conf: vec![vec![0.6; n]; 3],
        acc: vec![vec![true; n]; 3],
    };
    let d: Vec<BatchSize> = [2, 4, 1, 4]
        .iter()
        .map(|&b| BatchSize::exact(b).expect("size"))
        .collect();
    let spec = RunSpec {
        arch: "resnet18_test",
        dataset: "video",
        batch_size: 4,
        batching: Batching::Decisions(&d),
        mode: apparate::sim::Mode::Apparate,
        overrides: apparate::sim::Overrides::default(),
        record_log: true,
    };
    let out = simulate(&spec, &tables(), &e7_bootstrap_data(), &sim).expect("runs");
    let sizes: Vec<usize> = out.batches.iter().map(|b| b.n).collect();
    assert_eq!(sizes, vec![2, 4, 1]);
    assert_eq!(out.requests.len(), 7);
}
