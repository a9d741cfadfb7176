//! `ee-backend gen-data`: a model and a dataset into one folder in the artifact's data layout
//! (what `worker simulate`, `worker --local` with `inputs = {kind = "artifact", dir = ...}` and
//! `coordinator sweep` read), the same layout as `worker gen-data` writes
//! ([`apparate::gendata`]):
//!
//! ```text
//! OUT/bootstrap_pickles/bootstrap_{dataset}_{name}.pickle   the bootstrap part (ramps' training data)
//! OUT/simulation_pickles/{dataset}_{name}.pickle            the rest: the served stream
//! OUT/profile_pickles_bs/{name}_{bs}_[earlyexit_]profile.pickle
//! OUT/batch_decisions/{name}_1_fixed_30.pickle              CV: clockwork on a 30 qps trace
//! OUT/batch_decisions/{name}_azure.pickle                   NLP: clockwork on a synthetic Azure trace
//! OUT/ramps.safetensors                                     the trained ramp heads
//! OUT/profile.json                                          the profile record (when measured)
//! OUT/README.md                                             command, versions, device, SHA-256s
//! ```
//!
//! `name` is the model's name in the files (`--name`, the model by default). The simulator
//! decides what is CV by the name (it must contain `resnet` or `vgg`, the artifact's rule) and
//! sweep grids accept only the paper's model and dataset names, so a small model that is to
//! run in a sweep is written under one of them (e.g. `--name resnet18 --dataset auburn`); the
//! README records the real model.

use std::path::{Path, PathBuf};

use apparate::artifact::is_cv_arch;
use apparate::artifact::write::{write_batch_decisions, write_ramp_data, WriteError};
use apparate::gendata::{
    decision_record, nlp_trace_shape, ModelPlan, CV_QPS, CV_SLO_MULTIPLIER, NLP_SLO_MULTIPLIER,
};
use apparate::sim::{BatchSize, Family, LatencyTables, RampData};
use apparate::sweep::digest::{file_sha256, hex};
use apparate::traces::TraceSpec;
use sha2::{Digest, Sha256};

/// Why a data folder cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum GenDataError {
    /// A name the simulator or the readers would misread.
    #[error("{problem}")]
    Name {
        /// What is wrong and what to pass instead.
        problem: String,
    },
    /// The output folder holds files already.
    #[error("{}: the output folder is not empty ({entry} and maybe more); choose a new folder or pass --overwrite", dir.display())]
    NotEmpty {
        /// The folder.
        dir: PathBuf,
        /// One entry found there.
        entry: String,
    },
    /// A file or folder that cannot be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// A profile folder given with `--profile-from` that does not fit.
    #[error("{}: {problem}", dir.display())]
    Profiles {
        /// The folder.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A pickle could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The batch decisions could not be made.
    #[error(transparent)]
    Decisions(#[from] apparate::gendata::GenDataError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GenDataError + '_ {
    move |cause| GenDataError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The names the files are written under.
#[derive(Clone, Debug, PartialEq)]
pub struct Names {
    /// The model's name in the files.
    pub name: String,
    /// The dataset's name in the files.
    pub dataset: String,
    /// CV or NLP (the model's).
    pub family: Family,
}

impl Names {
    /// Checks `name` and `dataset` against the simulator's rules for `family`; `dataset`
    /// defaults to `video` (CV) or `reviews` (NLP).
    pub fn new(name: &str, dataset: Option<&str>, family: Family) -> Result<Names, GenDataError> {
        let dataset = dataset
            .unwrap_or(match family {
                Family::Cv => "video",
                Family::Nlp => "reviews",
            })
            .to_string();
        let bad = |problem: String| Err(GenDataError::Name { problem });
        let ok_chars = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        if !ok_chars(name) {
            return bad(format!(
                "--name {name:?}: expected letters, digits, '-' or '.' (it becomes part of file names; '_' separates model and dataset)"
            ));
        }
        if !ok_chars(&dataset) {
            return bad(format!(
                "--dataset {dataset:?}: expected letters, digits, '-' or '.'"
            ));
        }
        match family {
            Family::Cv if !is_cv_arch(name) => bad(format!(
                "the model is CV, but the simulator reads a model as CV only when its name contains `resnet` or `vgg` (the artifact's rule): pass --name, e.g. --name resnet18 (got {name:?})"
            )),
            Family::Nlp if is_cv_arch(name) => bad(format!(
                "the model is NLP, but its name {name:?} contains `resnet` or `vgg`, which the simulator reads as CV: pass another --name"
            )),
            Family::Nlp if dataset == "video" => {
                bad("--dataset video is the simulator's CV dataset; give the NLP dataset another name".into())
            }
            _ => Ok(Names {
                name: name.to_string(),
                dataset,
                family,
            }),
        }
    }

    /// The controller's `--arch`: `{name}_{dataset}` for CV, the name for NLP.
    pub fn arch(&self) -> String {
        match self.family {
            Family::Cv => format!("{}_{}", self.name, self.dataset),
            Family::Nlp => self.name.clone(),
        }
    }

    /// The controller's `--dataset`: `video` for CV, the dataset for NLP.
    pub fn dataset_flag(&self) -> &str {
        match self.family {
            Family::Cv => "video",
            Family::Nlp => &self.dataset,
        }
    }

    /// The bootstrap pickle under the output folder.
    pub fn bootstrap_path(&self) -> PathBuf {
        PathBuf::from("bootstrap_pickles")
            .join(format!("bootstrap_{}_{}.pickle", self.dataset, self.name))
    }

    /// The simulation pickle under the output folder.
    pub fn simulation_path(&self) -> PathBuf {
        PathBuf::from("simulation_pickles").join(format!("{}_{}.pickle", self.dataset, self.name))
    }

    /// The batch-decision file's name (under `batch_decisions/`).
    pub fn decision_file(&self) -> String {
        match self.family {
            Family::Cv => format!("{}_1_fixed_30.pickle", self.name),
            Family::Nlp => format!("{}_azure.pickle", self.name),
        }
    }
}

/// Creates `out` (and its parents) and its sub-folders; refuses a folder that already holds
/// anything unless `overwrite` (then files of the same names are replaced, others kept).
pub fn prepare_out_dir(out: &Path, overwrite: bool) -> Result<(), GenDataError> {
    if out.exists() && !overwrite {
        let mut entries = std::fs::read_dir(out).map_err(io(out))?;
        if let Some(entry) = entries.next() {
            let entry = entry.map_err(io(out))?;
            return Err(GenDataError::NotEmpty {
                dir: out.to_path_buf(),
                entry: entry.file_name().to_string_lossy().into_owned(),
            });
        }
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    for d in [
        "bootstrap_pickles",
        "simulation_pickles",
        "profile_pickles_bs",
        "batch_decisions",
    ] {
        let path = out.join(d);
        apparate::safe_write::real_dir(&path).map_err(io(&path))?;
    }
    Ok(())
}

/// Writes the bootstrap and simulation pickles; returns their paths.
pub fn write_samples(
    out: &Path,
    names: &Names,
    bootstrap: &RampData,
    simulation: &RampData,
) -> Result<Vec<PathBuf>, GenDataError> {
    let boot = out.join(names.bootstrap_path());
    let sim = out.join(names.simulation_path());
    write_ramp_data(&boot, bootstrap)?;
    write_ramp_data(&sim, simulation)?;
    Ok(vec![boot, sim])
}

/// Copies the profile pickles of `names.name` from `from` (a `profile_pickles_bs/` folder)
/// into `out/profile_pickles_bs/`, after checking that they read back with `num_ramps` ramps;
/// returns the files written and the tables.
pub fn copy_profiles(
    from: &Path,
    out: &Path,
    names: &Names,
    num_ramps: usize,
) -> Result<(Vec<PathBuf>, LatencyTables), GenDataError> {
    let arch = names.arch();
    let tables = apparate::artifact::read_latency_tables(from, &arch).map_err(|e| {
        GenDataError::Profiles {
            dir: from.to_path_buf(),
            problem: format!("no readable profiles for {arch}: {e}"),
        }
    })?;
    let found = tables.min_ramps();
    if tables.iter().any(|(_, t)| t.ramps.len() != num_ramps) {
        return Err(GenDataError::Profiles {
            dir: from.to_path_buf(),
            problem: format!(
                "the profiles of {arch} have {found} ramps, the model has {num_ramps} ramp sites"
            ),
        });
    }
    let mut written = Vec::new();
    for bs in apparate::sim::BATCH_SIZES {
        for src in apparate::artifact::profile_paths(from, &arch, bs) {
            let Some(file) = src.file_name() else {
                continue;
            };
            let dest = out.join("profile_pickles_bs").join(file);
            let bytes = std::fs::read(&src).map_err(io(&src))?;
            apparate::safe_write::write_bytes(
                &dest,
                apparate::safe_write::Durability::Sync,
                &bytes,
            )
            .map_err(io(&dest))?;
            written.push(dest);
        }
    }
    Ok((written, tables))
}

/// Writes the batch decisions a sweep's `artifact_decisions` trace (and `worker simulate
/// --batch-decision-path`) reads: clockwork over a 30 qps trace (CV, SLO 2 x V[1]) or a
/// synthetic Azure trace seeded with `seed` (NLP, SLO 32 x V[1]), `n` requests (the simulation
/// stream's length), as `worker gen-data` makes them.
pub fn write_decisions(
    out: &Path,
    names: &Names,
    tables: &LatencyTables,
    n: usize,
    seed: u64,
) -> Result<PathBuf, GenDataError> {
    let (trace_name, trace, slo_multiplier) = match names.family {
        Family::Cv => (
            "video30",
            TraceSpec::Fixed { n, qps: CV_QPS },
            CV_SLO_MULTIPLIER,
        ),
        Family::Nlp => {
            let v1 = BatchSize::exact(1).map_or(1.0, |b| tables.get(b).vanilla_ms);
            (
                "azure",
                TraceSpec::SyntheticAzure {
                    n,
                    seed,
                    shape: nlp_trace_shape(v1, n),
                },
                NLP_SLO_MULTIPLIER,
            )
        }
    };
    let plan = ModelPlan {
        model: names.name.clone(),
        family: names.family,
        datasets: vec![names.dataset.clone()],
        decision_file: names.decision_file(),
        trace_name,
        trace,
        trace_covers: names.dataset.clone(),
        slo_multiplier,
    };
    let record = decision_record(&plan, tables)?;
    let path = out.join("batch_decisions").join(names.decision_file());
    write_batch_decisions(&path, &record)?;
    Ok(path)
}

/// The SHA-256 of a file, or of a folder: of its `sha256  name` lines (like `sha256sum`'s
/// output), one per file, in name order, sub-folders included by relative path.
pub fn sha256_path(path: &Path) -> Result<String, GenDataError> {
    if path.is_dir() {
        let mut lines = String::new();
        let mut files = Vec::new();
        collect_files(path, path, &mut files)?;
        files.sort();
        for rel in files {
            let h = file_sha256(&path.join(&rel)).map_err(io(&path.join(&rel)))?;
            lines.push_str(&format!("{h}  {}\n", rel.display()));
        }
        Ok(hex(Sha256::digest(lines.as_bytes()).as_slice()))
    } else {
        file_sha256(path).map_err(io(path))
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), GenDataError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let p = entry.path();
        if entry.file_type().map_err(io(&p))?.is_dir() {
            collect_files(root, &p, out)?;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}

/// What the README records.
#[derive(Clone, Debug)]
pub struct Provenance {
    /// The command line.
    pub command: String,
    /// The real model (`--model`).
    pub model: String,
    /// The names in the files.
    pub names: Names,
    /// The device, in words.
    pub device: String,
    /// Where the profiles came from, in words.
    pub profile_source: String,
    /// `(what, path)` inputs to digest: weights, data, labels.
    pub inputs: Vec<(String, PathBuf)>,
    /// Extra lines (split sizes, ramp agreement, ...).
    pub notes: Vec<String>,
}

/// Writes `out/README.md`: the command, versions, device, the SHA-256 of every input and of
/// every file in `files` (paths under `out`), and how to replay the folder.
pub fn write_readme(
    out: &Path,
    p: &Provenance,
    files: &[PathBuf],
) -> Result<PathBuf, GenDataError> {
    use std::fmt::Write as _;
    let mut t = String::new();
    let n = &p.names;
    let _ = writeln!(
        t,
        "# Early-exit inputs from a real model\n\nWritten by `ee-backend gen-data` in the data layout of the Apparate artifact (SOSP'24).\n"
    );
    let _ = writeln!(t, "* command: `{}`", p.command);
    let _ = writeln!(t, "* backend: {}", crate::BACKEND_VERSION);
    let _ = writeln!(t, "* device: {}", p.device);
    let _ = writeln!(
        t,
        "* model: `{}`, written as `{}` ({})",
        p.model,
        n.name,
        n.family.name()
    );
    let _ = writeln!(t, "* dataset name in the files: `{}`", n.dataset);
    let _ = writeln!(t, "* profiles: {}", p.profile_source);
    for note in &p.notes {
        let _ = writeln!(t, "* {note}");
    }
    let _ = writeln!(
        t,
        "\n## Inputs (SHA-256; a folder's is over its `sha256  name` lines)\n"
    );
    for (what, path) in &p.inputs {
        let _ = writeln!(t, "* {what}: `{}` {}", path.display(), sha256_path(path)?);
    }
    let _ = writeln!(t, "\n## Files (SHA-256)\n\n```");
    for f in files {
        let rel = f.strip_prefix(out).unwrap_or(f);
        let _ = writeln!(t, "{}  {}", sha256_path(f)?, rel.display());
    }
    let _ = writeln!(t, "```\n\n## Replay\n\n```");
    let _ = writeln!(
        t,
        "worker simulate --dataset {} --arch {} --batch-size {} \\\n  --profile-dir {d}/profile_pickles_bs \\\n  --bootstrap-pickle-path {d}/{} \\\n  --simulation-pickle-path {d}/{} \\\n  --batch-decision-path {d}/batch_decisions/{} --out OUT",
        n.dataset_flag(),
        n.arch(),
        match n.family {
            Family::Cv => 4,
            Family::Nlp => 1,
        },
        n.bootstrap_path().display(),
        n.simulation_path().display(),
        n.decision_file(),
        d = out.display(),
    );
    let _ = writeln!(t, "```");
    let path = out.join("README.md");
    apparate::safe_write::write_bytes(&path, apparate::safe_write::Durability::Sync, t.as_bytes())
        .map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_folder_is_never_clobbered_silently() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b");
        prepare_out_dir(&out, false).unwrap();
        assert!(out.join("batch_decisions").is_dir());
        // A folder that holds anything is refused without --overwrite, kept with it.
        std::fs::write(out.join("mine.txt"), "x").unwrap();
        let e = prepare_out_dir(&out, false).unwrap_err().to_string();
        assert!(e.contains("not empty") && e.contains("--overwrite"), "{e}");
        prepare_out_dir(&out, true).unwrap();
        assert!(out.join("mine.txt").is_file());
    }

    #[test]
    fn a_folders_digest_covers_names_and_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.png"), "1").unwrap();
        std::fs::write(d.join("sub/b.png"), "2").unwrap();
        let lines = format!(
            "{}  a.png\n{}  sub/b.png\n",
            apparate::sweep::digest::sha256_hex(b"1"),
            apparate::sweep::digest::sha256_hex(b"2")
        );
        let want = apparate::sweep::digest::sha256_hex(lines.as_bytes());
        assert_eq!(sha256_path(&d).unwrap(), want);
        std::fs::rename(d.join("a.png"), d.join("c.png")).unwrap();
        assert_ne!(sha256_path(&d).unwrap(), want);
    }

    #[test]
    fn names_follow_the_simulators_rules() {
        let n = Names::new("resnet18", Some("auburn"), Family::Cv).unwrap();
        assert_eq!(n.arch(), "resnet18_auburn");
        assert_eq!(n.dataset_flag(), "video");
        assert_eq!(
            n.bootstrap_path(),
            PathBuf::from("bootstrap_pickles/bootstrap_auburn_resnet18.pickle")
        );
        assert_eq!(n.decision_file(), "resnet18_1_fixed_30.pickle");
        assert!(Names::new("digits-cnn", None, Family::Cv)
            .unwrap_err()
            .to_string()
            .contains("--name"));
        assert!(Names::new("resnet_x", None, Family::Cv).is_err());
        assert!(Names::new("bert-x", Some("video"), Family::Nlp).is_err());
        let n = Names::new("bert-x", None, Family::Nlp).unwrap();
        assert_eq!((n.arch(), n.dataset_flag()), ("bert-x".into(), "reviews"));
    }
}
