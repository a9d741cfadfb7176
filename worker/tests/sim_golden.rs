//! Golden parity of the simulator core on every `golden/cv-*` and `golden/nlp-*` scenario.

use crate::util::golden_dir;
use serde_json::Value as Json;
use std::path::Path;
use worker::sim::{simulate, BatchSize, Batching, LatencyTable, LatencyTables, RampCost, RampData, RunSpec};

fn tables_from_expected(e: &Json) -> LatencyTables {
    let lcl = &e["latency_calc_list"];
    let tables = worker::sim::BATCH_SIZES
        .iter()
        .map(|bs| {
            let rows = lcl[bs.to_string()].as_array().expect("lcl rows");
            let (last, ramps) = rows.split_last().expect("non-empty");
            LatencyTable {
                ramps: ramps
                    .iter()
                    .map(|p| RampCost {
                        vanilla_up_to_ms: p[0].as_f64().unwrap(),
                        ramp_ms: p[1].as_f64().unwrap(),
                    })
                    .collect(),
                vanilla_ms: last[0].as_f64().unwrap(),
            }
        })
        .collect();
    LatencyTables::new(tables).unwrap()
}

fn ramp_data(path: &Path) -> RampData {
    use serde_pickle::{DeOptions, HashableValue, Value};
    let bytes = std::fs::read(path).unwrap();
    let v = serde_pickle::value_from_slice(&bytes, DeOptions::new().keep_restore_state()).unwrap();
    let Value::Dict(d) = v else { panic!() };
    let get = |k: &str| d.get(&HashableValue::String(k.into())).unwrap().clone();
    let Value::List(conf) = get("conf") else { panic!() };
    let Value::List(acc) = get("acc") else { panic!() };
    let r = conf.len() - 1;
    RampData {
        conf: conf[..r]
            .iter()
            .map(|l| match l {
                Value::List(xs) => xs.iter().map(|x| if let Value::F64(f) = x { *f } else { panic!() }).collect(),
                _ => panic!(),
            })
            .collect(),
        acc: acc[..r]
            .iter()
            .map(|l| match l {
                Value::List(xs) => xs.iter().map(|x| if let Value::Bool(b) = x { *b } else { panic!() }).collect(),
                _ => panic!(),
            })
            .collect(),
    }
}

fn decisions(path: &Path) -> Vec<BatchSize> {
    use serde_pickle::{DeOptions, HashableValue, Value};
    let bytes = std::fs::read(path).unwrap();
    let v = serde_pickle::value_from_slice(&bytes, DeOptions::new().keep_restore_state()).unwrap();
    let Value::Dict(d) = v else { panic!() };
    let Value::List(xs) = d.get(&HashableValue::String("batching_decision".into())).unwrap() else { panic!() };
    xs.iter()
        .map(|x| match x {
            Value::I64(i) => BatchSize::exact(*i as usize).unwrap(),
            _ => panic!(),
        })
        .collect()
}

fn run_scenario(name: &str) {
    let dir = golden_dir().join(name);
    let run: Json = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let e: Json = serde_json::from_slice(&std::fs::read(dir.join("expected/expected.json")).unwrap()).unwrap();
    let data = dir.join("data");
    let rel = &run["paths_relative_to_data"];
    let flags = &run["flags"];
    let tables = tables_from_expected(&e);
    let boot = ramp_data(&data.join(rel["bootstrap_pickle_path"].as_str().unwrap()));
    let sim = ramp_data(&data.join(rel["simulation_pickle_path"].as_str().unwrap()));
    let dec;
    let batching = if flags["batching_scheme"] == "uniform" {
        Batching::Uniform
    } else {
        dec = decisions(&data.join(rel["batch_decision_path"].as_str().unwrap()));
        Batching::Decisions(&dec)
    };
    let spec = RunSpec {
        arch: flags["arch"].as_str().unwrap(),
        dataset: flags["dataset"].as_str().unwrap(),
        batch_size: flags["batch_size"].as_u64().unwrap() as usize,
        batching,
        optimal_exiting: false,
    };
    let out = simulate(&spec, &tables, &boot, &sim).unwrap();
    let log = std::fs::read_to_string(dir.join("expected/log.txt")).unwrap();
    let want: Vec<&str> = log.lines().skip(1).collect();
    for (k, (got, want)) in out.log.iter().zip(&want).enumerate() {
        assert_eq!(got, want, "{name}: log line {} differs", k + 2);
    }
    assert_eq!(out.log.len(), want.len(), "{name}: log length");
    assert!(want.len() > 300, "{name}: suspiciously short expected log");
    eprintln!("{name}: {} log lines compared", want.len());
}

#[test]
fn golden_cv_resnet18_auburn() {
    run_scenario("cv-resnet18-auburn");
}
#[test]
fn golden_cv_resnet18_uniform() {
    run_scenario("cv-resnet18-uniform");
}
#[test]
fn golden_cv_resnet50_hampton() {
    run_scenario("cv-resnet50-hampton");
}
#[test]
fn golden_cv_vgg16_oxford() {
    run_scenario("cv-vgg16-oxford");
}
#[test]
fn golden_nlp_bert_base_amazon() {
    run_scenario("nlp-bert-base-amazon_reviews");
}
#[test]
fn golden_nlp_distilbert_imdb() {
    run_scenario("nlp-distilbert-base-imdb");
}
