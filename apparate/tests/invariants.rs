//! Property tests for the invariants of spec §12, on random latency tables, sample data and
//! batch decisions.

use apparate::sim::evaluate::{query_performance, EvalData, IncrementalEval};
use apparate::sim::tuning::tune_thresholds;
use apparate::sim::{
    simulate, BatchSize, Batching, LatencyTable, LatencyTables, RampCost, RampData, RunResult,
    RunSpec, BATCH_SIZES,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A latency table with `r` ramps: `v` increasing, `o > 0`; `V` sometimes below the last ramps'
/// solo exits, so that `latest < R - 1`.
fn arb_table(r: usize) -> impl Strategy<Value = LatencyTable> {
    (
        prop::collection::vec(0.05f64..1.0, r),
        prop::collection::vec(0.001f64..0.08, r),
        0.0f64..1.5,
    )
        .prop_map(|(inc, o, tail)| {
            let mut v = 0.0;
            let ramps: Vec<RampCost> = inc
                .iter()
                .zip(&o)
                .map(|(i, o)| {
                    v += i;
                    RampCost {
                        vanilla_up_to_ms: v,
                        ramp_ms: *o,
                    }
                })
                .collect();
            let vanilla_ms = v * 0.8 + tail;
            LatencyTable { ramps, vanilla_ms }
        })
}

fn scaled(t: &LatencyTable, k: f64) -> LatencyTable {
    LatencyTable {
        ramps: t
            .ramps
            .iter()
            .map(|c| RampCost {
                vanilla_up_to_ms: c.vanilla_up_to_ms * k,
                ramp_ms: c.ramp_ms * k,
            })
            .collect(),
        vanilla_ms: t.vanilla_ms * k,
    }
}

/// Samples with confidences in [0.5, 1] and mostly-correct ramps (later ramps more often).
fn arb_data(r: usize, n: usize) -> impl Strategy<Value = RampData> {
    prop::collection::vec((0.5f64..=1.0, 0.0f64..1.0), r * n).prop_map(move |cells| {
        let mut conf = vec![Vec::with_capacity(n); r];
        let mut acc = vec![Vec::with_capacity(n); r];
        for (k, (c, u)) in cells.into_iter().enumerate() {
            let ramp = k / n;
            conf[ramp].push(c);
            // Confident answers are right more often; later ramps are better.
            let p_wrong = (1.0 - c) * 0.3 / (1.0 + ramp as f64);
            acc[ramp].push(u >= p_wrong);
        }
        RampData { conf, acc }
    })
}

#[derive(Debug, Clone)]
struct Scenario {
    tables: LatencyTables,
    boot: RampData,
    sim: RampData,
    decisions: Vec<BatchSize>,
    arch: &'static str,
    dataset: &'static str,
    uniform: bool,
}

fn arb_scenario() -> impl Strategy<Value = Scenario> {
    (
        2usize..9,
        10usize..60,
        2usize..260,
        0usize..3,
        any::<bool>(),
    )
        .prop_flat_map(|(r, nb, n, kind, uniform)| {
            let (arch, dataset) = [
                ("resnet18_x", "video"),
                ("resnet50_x", "video"),
                ("bert-base", "imdb"),
            ][kind];
            (
                arb_table(r),
                arb_data(r, nb),
                arb_data(r, n),
                prop::collection::vec(prop::sample::select(vec![1usize, 2, 4, 8, 16]), 1..200),
            )
                .prop_map(move |(t, boot, sim, dec)| Scenario {
                    tables: LatencyTables::new(
                        BATCH_SIZES
                            .iter()
                            .map(|&b| scaled(&t, 1.0 + (b as f64).ln()))
                            .collect(),
                    )
                    .expect("seven tables"),
                    boot,
                    sim,
                    decisions: dec.into_iter().filter_map(BatchSize::exact).collect(),
                    arch,
                    dataset,
                    uniform,
                })
        })
}

fn run(s: &Scenario) -> RunResult {
    let spec = RunSpec {
        arch: s.arch,
        dataset: s.dataset,
        batch_size: 4,
        batching: if s.uniform {
            Batching::Uniform
        } else {
            Batching::Decisions(&s.decisions)
        },
        mode: apparate::sim::Mode::Apparate,
        overrides: apparate::sim::Overrides::default(),
        record_log: true,
    };
    simulate(&spec, &s.tables, &s.boot, &s.sim).expect("simulation runs")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// §12.6–9, 12, 14: latencies come from the batch's table, output length, ramp-config
    /// invariants, ramp changes only at checks, determinism.
    #[test]
    fn simulation_invariants(s in arb_scenario()) {
        prop_assume!(s.sim.num_samples() >= 2);
        prop_assume!(s.uniform || s.decisions.first().is_some_and(|d| d.get() < s.sim.num_samples()));
        let out = run(&s);
        prop_assert_eq!(&out, &run(&s), "two runs differ");
        let latest = out.bootstrap.latest_possible_ramp;
        let interval = if s.dataset == "video" { 30 } else { 100 };
        let mut k = 0;
        for (idx, b) in out.batches.iter().enumerate() {
            let bs = BatchSize::round_up(b.n).expect("size");
            let lat = s.tables.get(bs).exit_latencies(&b.ramp_ids);
            for l in &out.requests.inference_ms[k..k + b.n] {
                prop_assert!(lat.per_exit.contains(l), "latency {} not in {:?}", l, lat.per_exit);
            }
            k += b.n;
            prop_assert!(!b.ramp_ids.is_empty());
            prop_assert!(b.ramp_ids.windows(2).all(|w| w[0] <= w[1]), "ramps not sorted: {:?}", b.ramp_ids);
            prop_assert!(b.ramp_ids.iter().all(|&a| a <= latest));
            let er: f64 = b.exit_rate.iter().sum();
            prop_assert!((er - 1.0).abs() < 1e-9);
            if out.bootstrap.num_initial_ramps == 1 && s.arch != "resnet50_x" {
                prop_assert_eq!(b.ramp_ids.len(), 1);
            }
            if idx > 0 && out.batches[idx - 1].ramp_ids != b.ramp_ids {
                prop_assert_eq!((idx) % interval, 0, "ramps changed after batch {}", idx);
            }
        }
        prop_assert!(out.requests.len() < s.sim.num_samples());
        if !s.uniform {
            let served: usize = s.decisions[..out.batches.len()].iter().map(|d| d.get()).sum();
            prop_assert_eq!(served, out.requests.len());
        }
        prop_assert_eq!(
            out.final_state.ramp_ids.len() + out.final_state.ramp_quota,
            out.bootstrap.num_initial_ramps
        );
    }

    /// §12.1, 2, 4, 11: thresholds 0 never exit; > 1 always exits; raising one threshold
    /// only moves exits to it from later positions; accuracy 1 iff no wrong exit.
    #[test]
    fn exit_rule_invariants(
        t in arb_table(4),
        d in arb_data(3, 40),
        th in prop::collection::vec(0.0f64..0.6, 3),
        j in 0usize..3,
        bump in 0.0f64..0.5,
    ) {
        let ids = [0usize, 1, 3];
        let gaps: Vec<Vec<f64>> = d.conf.iter().map(|c| c.iter().map(|x| 1.0 - x).collect()).collect();
        let g: Vec<&[f64]> = gaps.iter().map(Vec::as_slice).collect();
        let a: Vec<&[bool]> = d.acc.iter().map(Vec::as_slice).collect();
        let data = EvalData { gaps: &g, acc: &a };
        let lat = t.exit_latencies(&ids);
        let zero = query_performance(&[0.0; 3], data, &lat);
        prop_assert_eq!(zero.er, vec![0.0, 0.0, 0.0, 1.0]);
        prop_assert_eq!(zero.acc, 1.0);
        prop_assert!(zero.li < 0.0);
        let all = query_performance(&[1.01, 0.0, 0.0], data, &lat);
        prop_assert_eq!(all.er[0], 1.0);

        let count = |t: &[f64]| -> Vec<usize> {
            let mut c = vec![0; 4];
            (0..40)
                .map(|i| (0..3).find(|&p| g[p][i] < t[p]).unwrap_or(3))
                .for_each(|pos| c[pos] += 1);
            c
        };
        let before = count(&th);
        let mut raised = th.clone();
        raised[j] += bump;
        let after = count(&raised);
        prop_assert_eq!(&before[..j], &after[..j]);
        prop_assert!(after[..=j].iter().sum::<usize>() >= before[..=j].iter().sum::<usize>());

        let p = query_performance(&th, data, &lat);
        let wrong_exit = (0..40).any(|i| (0..3).find(|&q| g[q][i] < th[q]).is_some_and(|q| !a[q][i]));
        prop_assert_eq!(p.acc == 1.0, !wrong_exit);
    }

    /// §12.5, 10: latencies non-decreasing along the exits; tuned thresholds are feasible.
    #[test]
    fn tuning_returns_feasible_thresholds(t in arb_table(5), d in arb_data(5, 60), pick in prop::sample::subsequence(vec![0usize, 1, 2, 3, 4], 1..4)) {
        let lat = t.exit_latencies(&pick);
        // Non-decreasing over the ramp exits (v increasing, o > 0); V may sit below late ramps.
        let ramp_exits = &lat.per_exit[..pick.len()];
        prop_assert!(ramp_exits.windows(2).all(|w| w[0] <= w[1]));
        prop_assert!(lat.no_exit() >= lat.vanilla_ms);
        let gaps: Vec<Vec<f64>> = pick.iter().map(|&r| d.conf[r].iter().map(|x| 1.0 - x).collect()).collect();
        let g: Vec<&[f64]> = gaps.iter().map(Vec::as_slice).collect();
        let a: Vec<&[bool]> = pick.iter().map(|&r| d.acc[r].as_slice()).collect();
        let data = EvalData { gaps: &g, acc: &a };
        let tuned = tune_thresholds(&pick, data, &t, &BTreeMap::new());
        let again = query_performance(&tuned.thresholds, data, &lat);
        prop_assert!((1.0 - again.acc).abs() < 1e-4, "tuned thresholds infeasible: {:?}", tuned.thresholds);
    }

    /// The incremental evaluator used by the greedy search equals a full evaluation after any
    /// sequence of single-threshold changes (raises and, via the fallback, lowerings).
    #[test]
    fn incremental_evaluation_equals_full_evaluation(
        t in arb_table(4),
        d in arb_data(3, 50),
        moves in prop::collection::vec((0usize..3, -0.05f64..0.3), 1..30),
    ) {
        let ids = [0usize, 2, 3];
        let gaps: Vec<Vec<f64>> = d.conf.iter().map(|c| c.iter().map(|x| 1.0 - x).collect()).collect();
        let g: Vec<&[f64]> = gaps.iter().map(Vec::as_slice).collect();
        let a: Vec<&[bool]> = d.acc.iter().map(Vec::as_slice).collect();
        let data = EvalData { gaps: &g, acc: &a };
        let lat = t.exit_latencies(&ids);
        let mut th = vec![0.0; 3];
        let mut ev = IncrementalEval::new(data, &th);
        for (p, delta) in moves {
            let new_t = (th[p] + delta).max(0.0);
            let mut trial = th.clone();
            trial[p] = new_t;
            prop_assert_eq!(ev.trial(p, new_t, &lat), query_performance(&trial, data, &lat));
            ev.set(p, new_t);
            th = trial;
            prop_assert_eq!(ev.performance(&lat), query_performance(&th, data, &lat));
        }
    }
}
