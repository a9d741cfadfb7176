//! Times `read_ramp_data` on bootstrap / simulation pickles (used by
//! `scripts/bench_pickle_load.sh`).
//!
//! Usage: `load_pickle [--repeat K] FILE...`. For each file it prints the size, the best and
//! median wall time over K runs, R, N, and checksums (the sequential sum of all confidences
//! and the number of true flags) that the script compares with what CPython reads.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use apparate::artifact::read_ramp_data;

fn main() -> ExitCode {
    let mut repeat = 3usize;
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--repeat" {
            match args.next().and_then(|k| k.parse().ok()) {
                Some(k) if k > 0 => repeat = k,
                _ => {
                    eprintln!("--repeat needs a positive number");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            files.push(PathBuf::from(arg));
        }
    }
    if files.is_empty() {
        eprintln!("usage: load_pickle [--repeat K] FILE...");
        return ExitCode::FAILURE;
    }
    for path in files {
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut times: Vec<Duration> = Vec::with_capacity(repeat);
        let mut last = None;
        for _ in 0..repeat {
            let start = Instant::now();
            let result = read_ramp_data(&path);
            times.push(start.elapsed());
            match result {
                Ok(data) => last = Some(data),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let Some(data) = last else {
            return ExitCode::FAILURE;
        };
        times.sort();
        let conf_sum = data.conf.iter().flatten().fold(0.0f64, |s, &x| s + x);
        let acc_true = data.acc.iter().flatten().filter(|&&b| b).count();
        println!(
            "rust  {}: {:.1} MB, best {:.3} s, median {:.3} s over {repeat} runs; R={} N={} conf_sum={conf_sum:?} acc_true={acc_true}",
            path.display(),
            size as f64 / 1e6,
            times[0].as_secs_f64(),
            times[times.len() / 2].as_secs_f64(),
            data.num_ramps(),
            data.num_samples(),
        );
    }
    ExitCode::SUCCESS
}
