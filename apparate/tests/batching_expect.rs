//! Comparing a batch-decision file with a golden `expected.json`, bit for bit (shared by the
//! library's batching tests and the `worker batching` binary tests).

use apparate::batching::DecisionFile;
use serde_json::Value;
use std::path::Path;

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

fn expected_field<T: serde::de::DeserializeOwned>(expected: &Value, key: &str) -> T {
    let value = expected
        .get(key)
        .unwrap_or_else(|| panic!("expected.json has no `{key}`"));
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("expected.json `{key}` has an unexpected shape: {e}"))
}

/// Every difference between `actual` and an `expected.json`, with floats compared bit for bit.
/// Empty when they match exactly.
pub fn mismatches(actual: &DecisionFile, expected: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(scheme) = expected.get("scheme") {
        if scheme.as_str() != Some(actual.scheme.name()) {
            out.push(format!("scheme: {} vs expected {scheme}", actual.scheme));
        }
    }
    for (key, got) in [
        ("total_num_requests", actual.total_num_requests),
        ("num_batches", actual.num_batches),
        ("num_served", actual.num_served),
    ] {
        let want: usize = expected_field(expected, key);
        if got != want {
            out.push(format!("{key}: {got} vs expected {want}"));
        }
    }
    let end_time: f64 = expected_field(expected, "end_time");
    if actual.end_time.to_bits() != end_time.to_bits() {
        out.push(format!(
            "end_time: {:?} vs expected {end_time:?}",
            actual.end_time
        ));
    }

    let decisions: Vec<usize> = expected_field(expected, "batching_decision");
    if actual.batching_decision != decisions {
        let first = actual
            .batching_decision
            .iter()
            .zip(&decisions)
            .position(|(a, b)| a != b)
            .unwrap_or(actual.batching_decision.len().min(decisions.len()));
        out.push(format!(
            "batching_decision: {} vs {} entries, first difference at batch {first}",
            actual.batching_decision.len(),
            decisions.len()
        ));
    }

    let stats: Vec<Option<(f64, f64)>> = expected_field(expected, "per_request_stats");
    if actual.per_request_stats.len() != stats.len() {
        out.push(format!(
            "per_request_stats: {} vs expected {} entries",
            actual.per_request_stats.len(),
            stats.len()
        ));
    }
    let bits = |s: &Option<(f64, f64)>| s.map(|(q, m)| (q.to_bits(), m.to_bits()));
    let differing: Vec<String> = actual
        .per_request_stats
        .iter()
        .zip(&stats)
        .enumerate()
        .filter(|(_, (a, e))| bits(a) != bits(e))
        .map(|(id, (a, e))| format!("request {id}: {a:?} vs expected {e:?}"))
        .collect();
    if !differing.is_empty() {
        out.push(format!(
            "per_request_stats: {} requests differ, first: {}",
            differing.len(),
            differing[..differing.len().min(5)].join("; ")
        ));
    }
    out
}
