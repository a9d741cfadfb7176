//! Fig. 12-style numbers from a results directory (until the `analysis` crate exists):
//! per task the median win `100·(1 − median(queueing + apparate) / median(queueing + vanilla))`,
//! the oracle's win, accuracy, and the static baseline's accuracy; per model the median, min
//! and max win over datasets. Percentiles follow numpy (linear interpolation).
//!
//! `cargo run --release -p apparate --example grid_table -- results/`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

use apparate::output::{percentile, read_requests_parquet};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(v, p)
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "results".into()));
    let mut tasks: Vec<PathBuf> = std::fs::read_dir(dir.join("tasks"))
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("manifest.json").is_file())
                .collect()
        })
        .unwrap_or_default();
    tasks.sort();
    let mut per_model: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    println!(
        "{:16} {:15} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8} {:>7}",
        "model", "dataset", "acc%", "win%", "p25win%", "opt%", "p95 app", "p95 van", "static%"
    );
    for t in tasks {
        let m: serde_json::Value = match std::fs::read(t.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(m) => m,
            None => continue,
        };
        let spec = &m["spec"];
        let (model, dataset) = (
            spec["model"].as_str().unwrap_or("?").to_string(),
            spec["dataset"].as_str().unwrap_or("?").to_string(),
        );
        let Ok(rows) = read_requests_parquet(&t.join("requests.parquet")) else {
            continue;
        };
        let q = |r: &apparate::output::RequestRow| r.queueing_ms.unwrap_or(0.0);
        let mut van: Vec<f64> = rows.iter().map(|r| q(r) + r.vanilla_ms).collect();
        let mut app: Vec<f64> = rows.iter().map(|r| q(r) + r.inference_ms).collect();
        let mut opt: Vec<f64> = rows
            .iter()
            .map(|r| q(r) + r.optimal_ms.unwrap_or(f64::NAN))
            .collect();
        let acc = 100.0 * rows.iter().filter(|r| r.correct).count() as f64 / rows.len() as f64;
        let sacc = 100.0
            * rows
                .iter()
                .filter(|r| r.static_correct == Some(true))
                .count() as f64
            / rows.len() as f64;
        let win = 100.0 * (1.0 - pct(&mut app, 50.0) / pct(&mut van, 50.0));
        let p25 = 100.0 * (1.0 - pct(&mut app, 25.0) / pct(&mut van, 25.0));
        let owin = 100.0 * (1.0 - pct(&mut opt, 50.0) / pct(&mut van, 50.0));
        println!("{model:16} {dataset:15} {acc:7.2} {win:7.1} {p25:7.1} {owin:7.1} {:8.2} {:8.2} {sacc:7.2}", pct(&mut app, 95.0), pct(&mut van, 95.0));
        per_model.entry(model).or_default().push((win, acc));
    }
    println!(
        "\n{:16} {:>8} {:>8} {:>8} {:>10}",
        "model", "median", "min", "max", "min acc%"
    );
    for (model, v) in per_model {
        let mut w: Vec<f64> = v.iter().map(|x| x.0).collect();
        let min_acc = v.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        println!(
            "{model:16} {:8.1} {:8.1} {:8.1} {min_acc:10.2}",
            pct(&mut w, 50.0),
            w[0],
            w[w.len() - 1]
        );
    }
}
