//! Content-addressed task keys.
//!
//! `key = slug + "-" + first 16 hex digits of SHA-256(canonical JSON of
//! {"code_version": ..., "digests": {...}, "spec": <task spec>})`.
//!
//! * The slug is for people: `{grid}-{model}-{dataset}-{trace}` and a short tag of the
//!   parameters (`slo2-bs4`, plus `acc0.02`, `rb2`, `ci50`, `tfserve`, `uniform`,
//!   `bootramps`, `seed3` where they apply; `live` or `live-realtime` after the trace for a
//!   live run), restricted to `[A-Za-z0-9._-]`.
//! * The hash is what makes the key unique. The task spec in it is *location-free*: the artifact
//!   folder, a backend spec's weights, data and labels paths and an Azure CSV's path are
//!   blanked, since the input digests already stand for their contents. Moving the data (or running on another machine) keeps every key.
//! * The code version ([`crate::code_version`]) changes every key when the crate version or
//!   [`crate::RESULTS_VERSION`] changes.

use super::digest::{canonical_json, sha256_hex};
use crate::ids::{TaskKey, MAX_ID_LEN};
use crate::sim::StaticRamps;
use crate::task::{BatchingScheme, Inputs, LiveClock, LiveRun, TaskSpec, TaskTrace};
use crate::traces::TraceSpec;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Hex digits of the hash kept in a key.
pub const KEY_HASH_HEX: usize = 16;

/// `spec` with its input locations blanked (see the module docs).
pub fn location_free(spec: &TaskSpec) -> TaskSpec {
    let mut s = spec.clone();
    match &mut s.inputs {
        Inputs::Artifact { dir } => *dir = PathBuf::new(),
        Inputs::Backend {
            weights,
            data,
            labels,
            ..
        } => {
            *weights = PathBuf::new();
            *data = PathBuf::new();
            if let Some(l) = labels {
                *l = PathBuf::new();
            }
        }
        Inputs::Embedded { .. } => {}
    }
    if let TaskTrace::Generated {
        spec: TraceSpec::AzureCsv { path, .. },
        ..
    } = &mut s.trace
    {
        *path = PathBuf::new();
    }
    s
}

/// The JSON the key's hash is taken over.
pub fn key_material(
    spec: &TaskSpec,
    digests: &BTreeMap<String, String>,
    code_version: &str,
) -> serde_json::Value {
    serde_json::json!({
        "code_version": code_version,
        "digests": digests,
        "spec": location_free(spec),
    })
}

/// The key of `spec` with these input digests under this code version.
pub fn task_key(
    spec: &TaskSpec,
    digests: &BTreeMap<String, String>,
    code_version: &str,
) -> TaskKey {
    let hash = sha256_hex(canonical_json(&key_material(spec, digests, code_version)).as_bytes());
    let mut slug = slug(spec);
    slug.truncate(MAX_ID_LEN - KEY_HASH_HEX - 1);
    let key = format!("{slug}-{}", &hash[..KEY_HASH_HEX]);
    match TaskKey::parse(&key) {
        Ok(k) => k,
        // `slug` only produces path-safe text starting with a letter or digit; keep a valid
        // key even if that ever changed.
        Err(_) => TaskKey::parse(&format!("t-{}", &hash[..KEY_HASH_HEX]))
            .unwrap_or_else(|_| unreachable!("hex is path-safe")),
    }
}

/// The readable part of a key (see the module docs).
pub fn slug(spec: &TaskSpec) -> String {
    let p = &spec.params;
    let mut parts: Vec<String> = vec![
        spec.grid.clone(),
        spec.model.clone(),
        spec.dataset.clone(),
        spec.trace.name().to_string(),
    ];
    match &spec.live {
        None => {}
        Some(LiveRun {
            clock: LiveClock::Fast,
        }) => parts.push("live".into()),
        Some(LiveRun {
            clock: LiveClock::Realtime,
        }) => parts.push("live-realtime".into()),
    }
    match p.batching {
        BatchingScheme::Clockwork => {}
        BatchingScheme::TfServe => parts.push("tfserve".into()),
        BatchingScheme::Uniform => parts.push("uniform".into()),
    }
    parts.push(format!("slo{}", p.slo_multiplier));
    parts.push(format!("bs{}", p.batch_size));
    if let Some(a) = p.overrides.accuracy_budget {
        parts.push(format!("acc{a}"));
    }
    if let Some(r) = p.overrides.ramp_budget {
        parts.push(format!("rb{r}"));
    }
    if let Some(c) = p.overrides.ramp_check_interval {
        parts.push(format!("ci{c}"));
    }
    if p.static_ramps == StaticRamps::BootstrapChoice {
        parts.push("bootramps".into());
    }
    if spec.seed != 0 {
        parts.push(format!("seed{}", spec.seed));
    }
    let mut slug: String = parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !slug.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        slug.insert(0, 't');
    }
    slug
}
