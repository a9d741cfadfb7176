//! The light reader (`lite::decode`) on the golden profile trees and batch-decision files,
//! beside the generic path (pre-flight check and full decoder) on the same bytes.
//!
//! Run with `cargo bench --workspace --bench lite`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::path::{Path, PathBuf};

const PROFILE: &[&str] = &["name", "children", "fwd_latency"];
const DECISIONS: &[&str] = &["batching_decision", "per_request_stats", "avg_qps"];

/// Every golden profile tree and decision file, with the keys its reader asks for.
fn files() -> Vec<(PathBuf, &'static [&'static str])> {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
    let mut out = Vec::new();
    for scenario in std::fs::read_dir(&golden).expect("golden data") {
        let data = scenario.expect("entry").path().join("data");
        for (dir, keys) in [
            ("profile_pickles_bs", PROFILE),
            ("batch_decisions", DECISIONS),
        ] {
            let Ok(entries) = std::fs::read_dir(data.join(dir)) else {
                continue;
            };
            for e in entries {
                let p = e.expect("entry").path();
                if p.extension().is_some_and(|x| x == "pickle") {
                    out.push((p, keys));
                }
            }
        }
    }
    out.sort();
    out
}

fn bench(c: &mut Criterion) {
    let files: Vec<(Vec<u8>, &'static [&'static str], bool)> = files()
        .into_iter()
        .map(|(p, keys)| (std::fs::read(&p).expect("read"), keys, keys == PROFILE))
        .collect();
    for (name, profiles) in [("profiles", true), ("decisions", false)] {
        let set: Vec<_> = files.iter().filter(|f| f.2 == profiles).collect();
        let bytes: usize = set.iter().map(|f| f.0.len()).sum();
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("lite", |b| {
            b.iter(|| {
                for (data, keys, _) in &set {
                    let l = pickle::lite::decode(data, keys, true).expect("handled");
                    std::hint::black_box(l.root());
                }
            })
        });
        g.bench_function("generic", |b| {
            b.iter(|| {
                for (data, _, _) in &set {
                    let options = pickle::decoder::DecodeOptions {
                        replace_unresolved_globals: true,
                    };
                    let v = pickle::decoder::decode(data, options).expect("decodes");
                    std::hint::black_box(v);
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
