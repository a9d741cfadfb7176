//! SHA-256 digests of a task's inputs and canonical JSON, the two ingredients of task keys.
//!
//! * An artifact input file's digest is the SHA-256 of its bytes (streamed, never loaded whole).
//! * An embedded task's input digest is the SHA-256 of the canonical JSON of
//!   `{dataset, model, scale, seed, workload_version}`: the generator is deterministic, so these
//!   fields determine every generated bit.
//! * Canonical JSON: objects with keys sorted by their UTF-8 bytes, no whitespace, numbers and
//!   strings as `serde_json` writes them. Independent of `serde_json`'s `preserve_order` feature.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(Sha256::digest(bytes).as_slice())
}

/// SHA-256 of a file's bytes, in hex, read in 256 KiB blocks. Only regular files are read
/// (see [`crate::input_file::open_regular`]), up to the size they had when opened.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let (file, len) = crate::input_file::open_regular(path)?;
    let mut file = file.take(len);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(hasher.finalize().as_slice()))
}

/// `value` as canonical JSON (sorted keys, no whitespace).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The input digest of an embedded task (see the module docs).
pub fn embedded_digest(model: &str, dataset: &str, scale: f64, seed: u64) -> String {
    let material = serde_json::json!({
        "dataset": dataset,
        "model": model,
        "scale": scale,
        "seed": seed,
        "workload_version": crate::workload::WORKLOAD_VERSION,
    });
    sha256_hex(canonical_json(&material).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": [{"z": 1, "a": 2.5}], "a": "x\"y"});
        assert_eq!(canonical_json(&v), r#"{"a":"x\"y","b":[{"a":2.5,"z":1}]}"#);
    }
}
