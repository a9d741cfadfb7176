//! Read-only timing of every golden scenario's inputs, per input kind (best of N runs).
//!
//! `cargo run --release -p apparate --example readtime [N]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

use std::path::Path;
use std::time::{Duration, Instant};

use apparate::artifact::{read_batch_decisions, read_latency_tables, read_ramp_data};

fn best<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
    let mut dirs: Vec<_> = std::fs::read_dir(&golden)
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("run.json").is_file())
        .collect();
    dirs.sort();
    println!(
        "{:32} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "scenario (best of N, ms)", "profiles", "bootstrap", "sim", "decisions", "all"
    );
    for dir in dirs {
        let run: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("run.json")).expect("run.json"))
                .expect("json");
        let arch = run["flags"]["arch"].as_str().expect("arch").to_owned();
        let rel = &run["paths_relative_to_data"];
        let data = dir.join("data");
        let path = |k: &str| rel.get(k).and_then(|v| v.as_str()).map(|p| data.join(p));
        let profiles = data.join(run["profile_dir_relative_to_data"].as_str().expect("dir"));
        let boot = path("bootstrap_pickle_path").expect("bootstrap");
        let sim = path("simulation_pickle_path").expect("simulation");
        let dec = path("batch_decision_path");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p = best(n, || {
            read_latency_tables(&profiles, &arch).expect("profiles")
        });
        let b = best(n, || read_ramp_data(&boot).expect("bootstrap"));
        let s = best(n, || read_ramp_data(&sim).expect("simulation"));
        let d = best(n, || {
            dec.as_ref()
                .map(|d| read_batch_decisions(d).expect("decisions"))
        });
        let all = best(n, || {
            (
                read_latency_tables(&profiles, &arch).expect("profiles"),
                read_ramp_data(&boot).expect("bootstrap"),
                read_ramp_data(&sim).expect("simulation"),
                dec.as_ref()
                    .map(|d| read_batch_decisions(d).expect("decisions")),
            )
        });
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        println!(
            "{name:32} {:9.3} {:9.3} {:9.3} {:9.3} {:9.3}",
            ms(p),
            ms(b),
            ms(s),
            ms(d),
            ms(all)
        );
    }
}
