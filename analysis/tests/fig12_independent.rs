//! The Fig. 12 numbers of `tables/fig12_wins.csv` against a computation that shares no code with
//! the report: the Parquet files read row by row with the `parquet` crate (through
//! `apparate::output::read_requests_parquet`), manifests read as plain JSON, and numpy's median
//! written out here (sort; average the two middle values of an even count).

use crate::util::{read_csv, small_grid, small_report};
use std::collections::BTreeMap;

fn numpy_median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn fig12_csv_equals_an_independent_computation_from_the_parquet_files() {
    let grid = small_grid();
    let report = small_report();
    // model -> (apparate wins, optimal wins) over datasets
    let mut per_model: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for e in std::fs::read_dir(grid.join("tasks")).expect("tasks") {
        let dir = e.expect("entry").path();
        if !dir.join("manifest.json").is_file() {
            continue;
        }
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
                .expect("json");
        let model = m["spec"]["model"].as_str().expect("model").to_string();
        let rows = apparate::output::read_requests_parquet(&dir.join("requests.parquet"))
            .expect("parquet rows");
        let q = |r: &apparate::output::RequestRow| r.queueing_ms.unwrap_or(0.0);
        let mut van: Vec<f64> = rows.iter().map(|r| q(r) + r.vanilla_ms).collect();
        let mut app: Vec<f64> = rows.iter().map(|r| q(r) + r.inference_ms).collect();
        let mut opt: Vec<f64> = rows
            .iter()
            .map(|r| q(r) + r.optimal_ms.expect("oracle computed"))
            .collect();
        let v = numpy_median(&mut van);
        let e = per_model.entry(model).or_default();
        e.0.push(100.0 * (1.0 - numpy_median(&mut app) / v));
        e.1.push(100.0 * (1.0 - numpy_median(&mut opt) / v));
    }
    assert_eq!(per_model.len(), 10);
    let csv = read_csv(&report.join("tables/fig12_wins.csv"));
    assert_eq!(csv.len(), 10, "one row per model");
    for row in &csv {
        let model = &row["model"];
        let (wins, opts) = per_model.get_mut(model).expect("model computed");
        let num = |k: &str| -> f64 { row[k].parse().unwrap_or_else(|_| panic!("{k} of {model}")) };
        assert_eq!(num("datasets") as usize, wins.len(), "{model}");
        let checks = [
            ("win_median_pct", numpy_median(wins)),
            (
                "win_min_pct",
                wins.iter().copied().fold(f64::INFINITY, f64::min),
            ),
            (
                "win_max_pct",
                wins.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ),
            ("optimal_median_pct", numpy_median(opts)),
            (
                "optimal_min_pct",
                opts.iter().copied().fold(f64::INFINITY, f64::min),
            ),
            (
                "optimal_max_pct",
                opts.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            ),
        ];
        for (k, want) in checks {
            assert!(close(num(k), want), "{model} {k}: csv {} vs {want}", num(k));
        }
    }
}
