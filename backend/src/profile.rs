//! Profiling: per-site prefix latency, per-ramp cost and whole-model latency per batch size, as
//! the artifact's latency tables and a JSON record (`profile.json`).
//!
//! Method (see `shared/backend-notes.md` §4). Per batch size, on one fixed random input:
//!
//! 1. one timed vanilla forward, recorded as `first_forward_ms` (it carries the JIT compile and
//!    autotuning on CUDA), then `warmup` untimed rounds;
//! 2. `reps` timed rounds, each: the staged forward with a [`Backend::sync`] at every site
//!    boundary (segment `i` = stem + segment 0 for `i = 0`, the `finish` is the last segment), the
//!    ramp head alone on each site's activation between two syncs, then the vanilla forward (stem,
//!    segments, finish without syncs in between) between two syncs, which is `V`;
//! 3. median, p5 and p95 of every series (linear interpolation between order statistics, as
//!    numpy's default percentile).
//!
//! The table ([`latency_table`]) rescales the segment medians so they sum to the median `V`, as
//! the artifact's `normalize_latency` scales every module of a tree by one factor (the per-site
//! syncs add time the vanilla forward does not spend); the ramp medians are scaled by the same
//! factor. `vanilla_up_to_ms[i]` is the running sum of the rescaled segments up to site `i`.
//!
//! The pure parts ([`percentile`], [`Stats::of`], [`rescale`], [`latency_table`],
//! [`tables_from_record`]) take plain numbers, so they are tested without the framework.

use std::path::{Path, PathBuf};
use std::time::Instant;

use apparate::artifact::write::write_profiles;
use apparate::safe_write::{write_bytes, Durability};
use apparate::sim::latency::{LatencyTable, LatencyTables, RampCost, BATCH_SIZES};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::models::{Activation, StagedModel};
use crate::ramps::RampSet;

/// The `format` of a profile record this version writes and reads.
pub const RECORD_FORMAT: &str = "ee-backend-profile/1";

/// The folder of profile pickles inside a data folder (the artifact's name).
pub const PROFILE_DIR: &str = "profile_pickles_bs";

/// The record's file name inside a data folder.
pub const RECORD_FILE: &str = "profile.json";

/// How to time.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileOptions {
    /// Batch sizes to time (the simulator's tables need 1, 2, 4, ..., 64).
    pub batch_sizes: Vec<usize>,
    /// Untimed runs per batch size (absorb JIT compilation and autotuning).
    pub warmup: usize,
    /// Timed runs per batch size (the median is kept, p5/p95 recorded).
    pub reps: usize,
    /// Tokens per sample for NLP models.
    pub seq_len: usize,
}

impl Default for ProfileOptions {
    fn default() -> ProfileOptions {
        ProfileOptions {
            batch_sizes: BATCH_SIZES.to_vec(),
            warmup: 10,
            reps: 30,
            seq_len: 128,
        }
    }
}

/// A measured profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The tables the profile pickles encode.
    pub tables: LatencyTables,
    /// The full record (`profile.json`): medians, p5/p95, device, versions.
    pub record: serde_json::Value,
}

/// Why profiling failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Options that cannot be timed.
    #[error("bad profile options: {what}")]
    Options {
        /// What is wrong.
        what: String,
    },
    /// The backend failed to finish its work.
    #[error("the backend failed while timing {model} at batch size {batch_size}: {reason}")]
    Sync {
        /// The model.
        model: String,
        /// The batch size.
        batch_size: usize,
        /// What the backend said.
        reason: String,
    },
    /// Latency tables need every batch size of [`BATCH_SIZES`].
    #[error("{source_name}: no measurement at batch size {batch_size} (the simulator's tables need all of {BATCH_SIZES:?}; time a subset only to write profile.json)")]
    MissingBatchSize {
        /// The record or model concerned.
        source_name: String,
        /// The batch size that is missing.
        batch_size: usize,
    },
    /// A record whose numbers cannot make a table.
    #[error("{source_name}: {place}: {expected}")]
    BadRecord {
        /// The file or model concerned.
        source_name: String,
        /// Where, e.g. `batches[2].segments_ms`.
        place: String,
        /// What was expected.
        expected: String,
    },
    /// A record file that cannot be read or parsed.
    #[error("{}: {reason}", path.display())]
    ReadRecord {
        /// The file.
        path: PathBuf,
        /// Why (serde_json names the line and column).
        reason: String,
    },
    /// Writing the pickles or the record failed.
    #[error("cannot write {}: {reason}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Median, 5th and 95th percentile of a series, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// The median.
    pub median: f64,
    /// The 5th percentile.
    pub p5: f64,
    /// The 95th percentile.
    pub p95: f64,
}

impl Stats {
    /// The stats of `samples` (NaN for an empty series).
    pub fn of(samples: &[f64]) -> Stats {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Stats {
            median: percentile(&sorted, 50.0),
            p5: percentile(&sorted, 5.0),
            p95: percentile(&sorted, 95.0),
        }
    }
}

/// The `p`-th percentile (0..=100) of ascending `sorted`, interpolating linearly between the
/// order statistics at rank `p/100 * (n-1)` (numpy's default). NaN for an empty slice.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = rank - lo as f64;
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

/// `segments` scaled by one factor so they sum to `total` (the artifact's `normalize_latency`);
/// returns the scaled segments and the factor. `None` when the segments do not sum to a positive
/// finite number.
pub fn rescale(segments: &[f64], total: f64) -> Option<(Vec<f64>, f64)> {
    let sum: f64 = segments.iter().sum();
    if !(sum.is_finite() && sum > 0.0 && total.is_finite() && total > 0.0) {
        return None;
    }
    let factor = total / sum;
    Some((segments.iter().map(|s| s * factor).collect(), factor))
}

/// The latency table of one batch size from medians: `segments[i]` for `i < sites` ends at site
/// `i` (the stem is in segment 0), `segments[sites]` is the finish; `ramps[i]` is ramp `i`'s
/// cost; `vanilla` is `V`. Segments and ramps are rescaled by `V / sum(segments)`.
pub fn latency_table(
    segments: &[f64],
    ramps: &[f64],
    vanilla: f64,
) -> Result<LatencyTable, String> {
    if ramps.is_empty() {
        return Err("at least one ramp site".to_string());
    }
    if segments.len() != ramps.len() + 1 {
        return Err(format!(
            "{} segments (one per site, then the finish) for {} ramps, found {}",
            ramps.len() + 1,
            ramps.len(),
            segments.len()
        ));
    }
    for (what, values) in [("segment", segments), ("ramp", ramps)] {
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(format!("a finite latency >= 0 for {what} {i}, found {v}"));
        }
    }
    let (scaled, factor) = rescale(segments, vanilla).ok_or_else(|| {
        format!(
            "a positive whole-model latency and segments with a positive sum, found V = {vanilla}"
        )
    })?;
    let mut up_to = 0.0;
    let ramps = scaled
        .iter()
        .take(ramps.len())
        .zip(ramps)
        .map(|(seg, ramp)| {
            up_to += seg;
            RampCost {
                vanilla_up_to_ms: up_to.min(vanilla),
                ramp_ms: ramp * factor,
            }
        })
        .collect();
    Ok(LatencyTable {
        ramps,
        vanilla_ms: vanilla,
    })
}

/// One batch size's measurements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// The batch size.
    pub batch_size: usize,
    /// `V`: the vanilla forward between two syncs.
    pub vanilla_ms: Stats,
    /// One per site (the stem in the first), then the finish.
    pub segments_ms: Vec<Stats>,
    /// Each ramp head alone on its site's activation.
    pub ramps_ms: Vec<Stats>,
    /// The very first forward at this batch size (JIT compile and autotune included).
    #[serde(default)]
    pub first_forward_ms: Option<f64>,
    /// The table derived from the medians ([`latency_table`]); informative: readers recompute it.
    #[serde(default)]
    pub table: Option<TableRecord>,
}

/// A latency table as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRecord {
    /// `V`.
    pub vanilla_ms: f64,
    /// `v_r` per ramp.
    pub vanilla_up_to_ms: Vec<f64>,
    /// `o_r` per ramp.
    pub ramp_ms: Vec<f64>,
}

impl From<&LatencyTable> for TableRecord {
    fn from(t: &LatencyTable) -> TableRecord {
        TableRecord {
            vanilla_ms: t.vanilla_ms,
            vanilla_up_to_ms: t.ramps.iter().map(|r| r.vanilla_up_to_ms).collect(),
            ramp_ms: t.ramps.iter().map(|r| r.ramp_ms).collect(),
        }
    }
}

/// `profile.json`: what was timed, where, how, and every batch size's statistics. The PyTorch
/// reference script (`scripts/gpu/torch_ref.py`) writes the same schema with `source = "pytorch"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// [`RECORD_FORMAT`].
    pub format: String,
    /// Who measured: `ee-backend` or `pytorch`.
    pub source: String,
    /// The model's name as the artifact spells it (the profile pickles' prefix).
    pub model: String,
    /// The number of ramp sites.
    pub num_sites: usize,
    /// Device, driver, backend (free-form strings).
    #[serde(default)]
    pub device: serde_json::Map<String, serde_json::Value>,
    /// Versions of the measuring software.
    #[serde(default)]
    pub versions: serde_json::Map<String, serde_json::Value>,
    /// The TF32 mode, if the backend has one.
    #[serde(default)]
    pub tf32: Option<String>,
    /// Warm-up runs per batch size.
    pub warmup: usize,
    /// Timed runs per batch size.
    pub reps: usize,
    /// Tokens per sample (NLP).
    #[serde(default)]
    pub seq_len: Option<usize>,
    /// One entry per batch size timed.
    pub batches: Vec<BatchRecord>,
}

/// The latency tables of a record (every batch size of [`BATCH_SIZES`] must be there), from its
/// medians through [`latency_table`]. `source_name` names the file or model in errors.
pub fn tables_from_record(
    record: &ProfileRecord,
    source_name: &str,
) -> Result<LatencyTables, ProfileError> {
    let bad = |place: String, expected: String| ProfileError::BadRecord {
        source_name: source_name.to_string(),
        place,
        expected,
    };
    if record.format != RECORD_FORMAT {
        return Err(bad(
            "format".to_string(),
            format!("\"{RECORD_FORMAT}\", found \"{}\"", record.format),
        ));
    }
    let mut tables = Vec::with_capacity(BATCH_SIZES.len());
    for &bs in &BATCH_SIZES {
        let (i, batch) = record
            .batches
            .iter()
            .enumerate()
            .find(|(_, b)| b.batch_size == bs)
            .ok_or_else(|| ProfileError::MissingBatchSize {
                source_name: source_name.to_string(),
                batch_size: bs,
            })?;
        if batch.ramps_ms.len() != record.num_sites {
            return Err(bad(
                format!("batches[{i}].ramps_ms"),
                format!(
                    "{} entries (num_sites), found {}",
                    record.num_sites,
                    batch.ramps_ms.len()
                ),
            ));
        }
        let medians = |s: &[Stats]| s.iter().map(|s| s.median).collect::<Vec<f64>>();
        let table = latency_table(
            &medians(&batch.segments_ms),
            &medians(&batch.ramps_ms),
            batch.vanilla_ms.median,
        )
        .map_err(|e| bad(format!("batches[{i}] (batch size {bs})"), e))?;
        tables.push(table);
    }
    LatencyTables::new(tables).ok_or_else(|| {
        bad(
            "batches".to_string(),
            format!("one table per batch size of {BATCH_SIZES:?}"),
        )
    })
}

/// Reads a profile record (ours or the PyTorch script's).
pub fn read_record(path: &Path) -> Result<ProfileRecord, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError::ReadRecord {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| ProfileError::ReadRecord {
        path: path.to_path_buf(),
        reason: format!("not a profile record ({RECORD_FORMAT}): {e}"),
    })
}

/// Writes `out/profile_pickles_bs/` (only when the record covers every batch size of
/// [`BATCH_SIZES`]) and `out/profile.json`; returns the files written.
///
/// `model` is the profile name the pickles are written under (the record's model by default).
pub fn write_profile_dir(
    out: &Path,
    record: &ProfileRecord,
    model: &str,
    source_name: &str,
) -> Result<Vec<PathBuf>, ProfileError> {
    let write_err = |path: &Path, reason: String| ProfileError::Write {
        path: path.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(out).map_err(|e| write_err(out, e.to_string()))?;
    let complete = BATCH_SIZES
        .iter()
        .all(|bs| record.batches.iter().any(|b| b.batch_size == *bs));
    let mut written = Vec::new();
    if complete {
        let tables = tables_from_record(record, source_name)?;
        let dir = out.join(PROFILE_DIR);
        written.extend(
            write_profiles(&dir, model, &tables).map_err(|e| write_err(&dir, e.to_string()))?,
        );
    }
    let json_path = out.join(RECORD_FILE);
    write_record(&json_path, record)?;
    written.push(json_path);
    Ok(written)
}

/// Writes `record` as pretty JSON into `path`, atomically.
fn write_record(path: &Path, record: &ProfileRecord) -> Result<(), ProfileError> {
    let write_err = |reason: String| ProfileError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let mut text = serde_json::to_string_pretty(record).map_err(|e| write_err(e.to_string()))?;
    text.push('\n');
    write_bytes(path, Durability::Flush, text.as_bytes()).map_err(|e| write_err(e.to_string()))
}

/// Times `model` with `ramps` on `device`, every batch size of [`BATCH_SIZES`] required
/// ([`measure`] times any subset).
pub fn profile<B: Backend, M: StagedModel<B>>(
    model: &M,
    ramps: &RampSet<B>,
    opts: &ProfileOptions,
    device: &B::Device,
) -> Result<Profile, ProfileError> {
    let record = measure(model, ramps, opts, device)?;
    let tables = tables_from_record(&record, model.name())?;
    let record = serde_json::to_value(&record).map_err(|e| ProfileError::BadRecord {
        source_name: model.name().to_string(),
        place: "record".to_string(),
        expected: e.to_string(),
    })?;
    Ok(Profile { tables, record })
}

/// Times `model` with `ramps` on `device` at each of `opts.batch_sizes` (the method is in the
/// module doc). The record's `device` holds the backend's name and the device; callers add the
/// driver and the device's name ([`ProfileRecord::device`]).
pub fn measure<B: Backend, M: StagedModel<B>>(
    model: &M,
    ramps: &RampSet<B>,
    opts: &ProfileOptions,
    device: &B::Device,
) -> Result<ProfileRecord, ProfileError> {
    measure_with(model, ramps, opts, device, &mut |_| Ok(()))
}

/// [`measure`], calling `done` with the record so far after each batch size (so a run cut short
/// still leaves the batch sizes it finished).
pub fn measure_with<B: Backend, M: StagedModel<B>>(
    model: &M,
    ramps: &RampSet<B>,
    opts: &ProfileOptions,
    device: &B::Device,
    done: &mut dyn FnMut(&ProfileRecord) -> Result<(), ProfileError>,
) -> Result<ProfileRecord, ProfileError> {
    let name = model.name().to_string();
    let options = |what: String| Err(ProfileError::Options { what });
    if opts.reps == 0 {
        return options("--reps must be at least 1".to_string());
    }
    if opts.batch_sizes.is_empty() || opts.batch_sizes.contains(&0) {
        return options(format!(
            "batch sizes must be at least 1, found {:?}",
            opts.batch_sizes
        ));
    }
    let sites = model.num_sites();
    if sites == 0 || ramps.ramps.len() != sites {
        return options(format!(
            "{name} has {sites} ramp sites but {} ramp heads were given",
            ramps.ramps.len()
        ));
    }
    let mut dev = serde_json::Map::new();
    dev.insert("backend".into(), B::name(device).into());
    dev.insert("device".into(), format!("{device:?}").into());
    let mut versions = serde_json::Map::new();
    versions.insert("ee-backend".into(), crate::BACKEND_VERSION.into());
    let mut record = ProfileRecord {
        format: RECORD_FORMAT.to_string(),
        source: "ee-backend".to_string(),
        model: name.clone(),
        num_sites: sites,
        device: dev,
        versions,
        tf32: None,
        warmup: opts.warmup,
        reps: opts.reps,
        seq_len: Some(opts.seq_len),
        batches: Vec::with_capacity(opts.batch_sizes.len()),
    };
    let bar =
        indicatif::ProgressBar::new((opts.batch_sizes.len() * (opts.warmup + opts.reps)) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("profile {name}"));
    for &bs in &opts.batch_sizes {
        bar.set_message(format!("batch size {bs}"));
        let sync = |what: &str| {
            B::sync(device).map_err(|e| ProfileError::Sync {
                model: name.clone(),
                batch_size: bs,
                reason: format!("{what}: {e}"),
            })
        };
        let input = model.example_input(bs, opts.seq_len, device);
        sync("making the input")?;
        let vanilla = || -> Result<f64, ProfileError> {
            sync("before the vanilla forward")?;
            let t0 = Instant::now();
            let mut x = model.stem(input.clone());
            for i in 0..sites {
                x = model.segment(i, x);
            }
            let out = model.finish(x);
            sync("after the vanilla forward")?;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            drop(out);
            Ok(ms)
        };
        let staged = |segs: &mut [Vec<f64>], heads: &mut [Vec<f64>]| -> Result<(), ProfileError> {
            sync("before the staged forward")?;
            let mut t = Instant::now();
            let mut x: Activation<B> = model.stem(input.clone());
            for i in 0..sites {
                x = model.segment(i, x);
                sync("at a site")?;
                let now = Instant::now();
                segs[i].push((now - t).as_secs_f64() * 1e3);
                let logits = ramps.ramps[i].forward(&x);
                sync("after a ramp")?;
                let after = Instant::now();
                heads[i].push((after - now).as_secs_f64() * 1e3);
                drop(logits);
                t = Instant::now();
            }
            let out = model.finish(x);
            sync("after the finish")?;
            segs[sites].push(t.elapsed().as_secs_f64() * 1e3);
            drop(out);
            Ok(())
        };
        let first = vanilla()?;
        let mut segs = vec![Vec::with_capacity(opts.reps); sites + 1];
        let mut heads = vec![Vec::with_capacity(opts.reps); sites];
        for _ in 0..opts.warmup {
            staged(&mut segs, &mut heads)?;
            vanilla()?;
            bar.inc(1);
        }
        segs.iter_mut().for_each(Vec::clear);
        heads.iter_mut().for_each(Vec::clear);
        let mut whole = Vec::with_capacity(opts.reps);
        for _ in 0..opts.reps {
            staged(&mut segs, &mut heads)?;
            whole.push(vanilla()?);
            bar.inc(1);
        }
        let segments_ms: Vec<Stats> = segs.iter().map(|s| Stats::of(s)).collect();
        let ramps_ms: Vec<Stats> = heads.iter().map(|s| Stats::of(s)).collect();
        let vanilla_ms = Stats::of(&whole);
        let med = |s: &[Stats]| s.iter().map(|s| s.median).collect::<Vec<f64>>();
        let table = latency_table(&med(&segments_ms), &med(&ramps_ms), vanilla_ms.median)
            .ok()
            .map(|t| TableRecord::from(&t));
        tracing::debug!(bs, v_ms = vanilla_ms.median, "timed");
        record.batches.push(BatchRecord {
            batch_size: bs,
            vanilla_ms,
            segments_ms,
            ramps_ms,
            first_forward_ms: Some(first),
            table,
        });
        done(&record)?;
    }
    bar.finish_and_clear();
    Ok(record)
}

/// [`measure`], then the device fields of `device_info` added to the record, then
/// [`write_profile_dir`] into `out` under the model's name. Returns the record and the files
/// written (the pickles only when every batch size of [`BATCH_SIZES`] was timed).
pub fn profile_to_dir<B: Backend, M: StagedModel<B>>(
    model: &M,
    ramps: &RampSet<B>,
    opts: &ProfileOptions,
    device: &B::Device,
    device_info: serde_json::Map<String, serde_json::Value>,
    out: &Path,
) -> Result<(ProfileRecord, Vec<PathBuf>), ProfileError> {
    let json_path = out.join(RECORD_FILE);
    std::fs::create_dir_all(out).map_err(|e| ProfileError::Write {
        path: out.to_path_buf(),
        reason: e.to_string(),
    })?;
    // profile.json after every batch size: a run cut short keeps what it measured.
    let mut partial = |r: &ProfileRecord| {
        let mut r = r.clone();
        r.device.extend(device_info.clone());
        write_record(&json_path, &r)
    };
    let mut record = measure_with(model, ramps, opts, device, &mut partial)?;
    record.device.extend(device_info);
    let written = write_profile_dir(out, &record, model.name(), model.name())?;
    Ok((record, written))
}
