//! The digits end to end: scikit-learn's 8x8 digits (fetched by `scripts/test.sh` into a cache
//! folder outside the repository) written as PNG frames and a labels file; the real
//! `ee-backend` trains the digits CNN backbone and runs `gen-data`; the real `worker` simulates
//! the folder and runs a `--local` sweep over it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use apparate::artifact::write::write_profiles;
use apparate::artifact::{read_latency_tables, read_ramp_data};
use apparate::sim::{LatencyTable, LatencyTables, RampCost, BATCH_SIZES};

/// gen-data measures the profiles (few repetitions: the test checks the plumbing, not the
/// timing); `--profile-from` copies synthetic ones instead.
const USE_REAL_PROFILE: bool = true;

const SAMPLES: usize = 1797;

fn digits_csv() -> PathBuf {
    let path = std::env::var_os("APPARATE_DIGITS_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("APPARATE_TEST_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                        .join(".cache/apparate-tests")
                });
            cache.join("digits/digits.csv.gz")
        });
    assert!(
        path.is_file(),
        "{} is missing: scikit-learn's digits data; run scripts/test.sh, which fetches it (pip download scikit-learn, then unzips sklearn/datasets/data/digits.csv.gz)",
        path.display()
    );
    path
}

/// The `worker` binary beside this test executable (`target/<profile>/worker`).
fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join("worker");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--workspace", "--bin", "worker"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build runs");
        assert!(status.success(), "cargo build of worker failed");
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}

pub(crate) struct Digits {
    _tmp: tempfile::TempDir,
    pub(crate) frames: PathBuf,
    pub(crate) labels: PathBuf,
    pub(crate) weights: PathBuf,
    pub(crate) root: PathBuf,
}

pub(crate) fn run(bin: &Path, args: &[&str]) -> Output {
    let o = Command::new(bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("binary runs");
    assert!(
        o.status.success(),
        "{} {} failed\nstdout:\n{}\nstderr:\n{}",
        bin.display(),
        args.join(" "),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

pub(crate) fn ee() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ee-backend"))
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Frames, labels and a trained backbone, made once for every test of this module.
pub(crate) fn digits() -> &'static Digits {
    static D: OnceLock<Digits> = OnceLock::new();
    D.get_or_init(|| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(digits_csv()).expect("open"))
            .read_to_string(&mut text)
            .expect("gunzip digits.csv.gz");
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let frames = root.join("frames");
        std::fs::create_dir_all(&frames).expect("frames dir");
        let mut labels = String::new();
        let mut n = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Vec<f64> = line
                .split(',')
                .map(|x| x.trim().parse().expect("number"))
                .collect();
            assert_eq!(v.len(), 65, "64 pixels and a label");
            let px: Vec<u8> = v[..64]
                .iter()
                .map(|&x| (x * 255.0 / 16.0).round() as u8)
                .collect();
            image::GrayImage::from_raw(8, 8, px)
                .expect("8x8")
                .save(frames.join(format!("frame_{n:05}.png")))
                .expect("write png");
            labels.push_str(&format!("{}\n", v[64] as usize));
            n += 1;
        }
        assert_eq!(n, SAMPLES);
        let labels_path = root.join("labels.txt");
        std::fs::write(&labels_path, labels).expect("labels");
        let weights = root.join("digits.safetensors");
        let o = run(
            &ee(),
            &[
                "train-backbone",
                "--model",
                "digits-cnn",
                "--data",
                s(&frames),
                "--labels",
                s(&labels_path),
                "--out",
                s(&weights),
                "--epochs",
                "4",
                "--seed",
                "1",
            ],
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let acc: f64 = out
            .split("training accuracy ")
            .nth(1)
            .and_then(|t| t.split(';').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no training accuracy in {out}"));
        assert!(acc > 0.9, "the backbone learns the digits: {out}");
        Digits {
            _tmp: tmp,
            frames,
            labels: labels_path,
            weights,
            root,
        }
    })
}

/// Latency tables with 3 ramps (for `--profile-from`).
fn synthetic_tables() -> LatencyTables {
    let tables = BATCH_SIZES
        .iter()
        .map(|&bs| {
            let v = 2.0 + 0.5 * bs as f64;
            LatencyTable {
                ramps: [0.3, 0.6, 0.85]
                    .iter()
                    .map(|f| RampCost {
                        vanilla_up_to_ms: v * f,
                        ramp_ms: v * 0.01,
                    })
                    .collect(),
                vanilla_ms: v,
            }
        })
        .collect();
    LatencyTables::new(tables).expect("7 tables")
}

#[test]
fn gen_data_on_digits_feeds_worker_simulate_and_a_local_sweep() {
    let d = digits();
    let data = d.root.join("data");
    let mut args: Vec<String> = [
        "gen-data",
        "--model",
        "digits-cnn",
        "--weights",
        s(&d.weights),
        "--data",
        s(&d.frames),
        "--labels",
        s(&d.labels),
        "--name",
        "resnet18",
        "--dataset",
        "auburn",
        "--device",
        "cpu",
        "--seed",
        "3",
        "--out",
        s(&data),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    if USE_REAL_PROFILE {
        args.extend(["--warmup", "1", "--reps", "3"].map(String::from));
    } else {
        let profiles = d.root.join("profiles");
        write_profiles(&profiles, "resnet18", &synthetic_tables()).expect("profiles");
        args.extend(["--profile-from".to_string(), s(&profiles).to_string()]);
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&ee(), &argv);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();

    // The pickles round-trip through the readers: 10 % bootstrap, the rest simulation.
    let boot = read_ramp_data(&data.join("bootstrap_pickles/bootstrap_auburn_resnet18.pickle"))
        .expect("bootstrap pickle reads");
    let sim = read_ramp_data(&data.join("simulation_pickles/auburn_resnet18.pickle"))
        .expect("simulation pickle reads");
    assert_eq!((boot.num_ramps(), boot.num_samples()), (3, 180));
    assert_eq!((sim.num_ramps(), sim.num_samples()), (3, SAMPLES - 180));
    let tables = read_latency_tables(&data.join("profile_pickles_bs"), "resnet18_auburn")
        .expect("profiles read");
    assert!(tables.iter().all(|(_, t)| t.ramps.len() == 3));
    for c in sim.conf.iter().flatten() {
        assert!(
            (0.1..=1.0).contains(c),
            "a max softmax over 10 classes: {c}"
        );
    }
    // Ramps beat chance (10 classes) by far: agreement with the final model on the served
    // stream, with the paper's split (18 training samples).
    let rate = |acc: &[bool]| acc.iter().filter(|&&a| a).count() as f64 / acc.len() as f64;
    for (r, acc) in sim.acc.iter().enumerate() {
        assert!(
            rate(acc) > 0.25,
            "ramp {r} agreement {} ({stdout})",
            rate(acc)
        );
    }
    assert!(
        rate(&sim.acc[2]) > 0.8,
        "the last ramp agrees mostly ({stdout})"
    );
    assert!(
        stdout.contains("final model accuracy on the labels"),
        "{stdout}"
    );

    // README: command, version, device, digests.
    let readme = std::fs::read_to_string(data.join("README.md")).expect("README.md");
    assert!(readme.contains("ee-backend gen-data"), "{readme}");
    assert!(readme.contains(backend::BACKEND_VERSION), "{readme}");
    assert!(readme.contains("* device: cpu"), "{readme}");
    let sha = apparate::sweep::digest::file_sha256(&d.weights).expect("sha");
    assert!(readme.contains(&sha), "weights digest in {readme}");
    let sha = apparate::sweep::digest::file_sha256(
        &data.join("simulation_pickles/auburn_resnet18.pickle"),
    )
    .expect("sha");
    assert!(readme.contains(&sha), "file digest in {readme}");

    // worker simulate on the folder: early exits happen.
    let out = d.root.join("sim-out");
    let p = |rel: &str| data.join(rel).display().to_string();
    run(
        &worker_bin(),
        &[
            "simulate",
            "--dataset",
            "video",
            "--arch",
            "resnet18_auburn",
            "--batch-size",
            "4",
            "--profile-dir",
            &p("profile_pickles_bs"),
            "--bootstrap-pickle-path",
            &p("bootstrap_pickles/bootstrap_auburn_resnet18.pickle"),
            "--simulation-pickle-path",
            &p("simulation_pickles/auburn_resnet18.pickle"),
            "--batch-decision-path",
            &p("batch_decisions/resnet18_1_fixed_30.pickle"),
            "--out",
            s(&out),
        ],
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary.json"))
            .expect("JSON");
    // exit_rate: exit point -> share of requests; point 3 (= the number of ramps) is the end.
    let early: f64 = summary["exit_rate"]
        .as_object()
        .expect("exit_rate")
        .iter()
        .filter(|(k, _)| k.as_str() != "3")
        .map(|(_, v)| v.as_f64().expect("rate"))
        .sum();
    assert!(early > 0.0, "early exits happen: {summary}");

    // worker --local: a sweep over the folder as artifact inputs.
    let spec = d.root.join("digits.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"digits\"\n[inputs]\nkind = \"artifact\"\ndir = {:?}\n[traces.fixed_30]\nsource = \"artifact_decisions\"\nfile = \"resnet18_1_fixed_30.pickle\"\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"fixed_30\"]\nslo_multiplier = [2]\nbatch_size = [4]\n",
            s(&data)
        ),
    )
    .expect("spec");
    let sweep = d.root.join("sweep-out");
    let o = run(
        &worker_bin(),
        &[
            "--local",
            "--no-report",
            "--spec",
            s(&spec),
            "--out",
            s(&sweep),
        ],
    );
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        line.starts_with("[resnet18_auburn, video]: Serving with complete"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(sweep.join("output_cv.txt")).expect("output_cv.txt"),
        line
    );

    // The folder is never clobbered silently.
    let o = Command::new(ee()).args(&argv).output().expect("runs");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not empty") && err.contains("--overwrite"),
        "{err}"
    );
}

#[test]
fn train_ramps_is_seeded() {
    let d = digits();
    let heads = |name: &str, seed: &str| {
        let out = d.root.join(name);
        run(
            &ee(),
            &[
                "train-ramps",
                "--model",
                "digits-cnn",
                "--weights",
                s(&d.weights),
                "--data",
                s(&d.frames),
                "--out",
                s(&out),
                "--seed",
                seed,
                "--epochs",
                "20",
            ],
        );
        apparate::sweep::digest::file_sha256(&out).expect("ramps file")
    };
    // A CV model written under a name the simulator would read as NLP: refused in one line,
    // before any work.
    let o = Command::new(ee())
        .args([
            "gen-data",
            "--model",
            "digits-cnn",
            "--data",
            s(&d.frames),
            "--out",
            s(&d.root.join("never")),
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--name resnet18"), "{err}");
    assert!(!d.root.join("never").exists());

    let a = heads("ramps-a.safetensors", "5");
    let b = heads("ramps-b.safetensors", "5");
    let c = heads("ramps-c.safetensors", "6");
    assert_eq!(a, b, "the same seed gives identical heads");
    assert_ne!(a, c, "another seed gives other heads");

    // infer with those heads writes the two pickles the readers take back.
    let out = d.root.join("infer-out");
    run(
        &ee(),
        &[
            "infer",
            "--model",
            "digits-cnn",
            "--weights",
            s(&d.weights),
            "--ramps",
            s(&d.root.join("ramps-a.safetensors")),
            "--data",
            s(&d.frames),
            "--name",
            "resnet18",
            "--out",
            s(&out),
        ],
    );
    let boot = read_ramp_data(&out.join("bootstrap_pickles/bootstrap_video_resnet18.pickle"))
        .expect("bootstrap pickle");
    let sim = read_ramp_data(&out.join("simulation_pickles/video_resnet18.pickle"))
        .expect("simulation pickle");
    assert_eq!((boot.num_ramps(), boot.num_samples()), (3, 180));
    assert_eq!(sim.num_samples(), SAMPLES - 180);
}

#[test]
fn bad_image_folders_are_refused_with_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = backend::data::ImageSpec {
        channels: 1,
        height: 8,
        width: 8,
    };
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = backend::data::list_images(&empty).unwrap_err().to_string();
    assert!(e.contains("empty") && e.contains("no images"), "{e}");

    let mixed = tmp.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::write(mixed.join("notes.txt"), "hi").unwrap();
    let e = backend::data::list_images(&mixed).unwrap_err().to_string();
    assert!(
        e.contains("notes.txt") && e.contains("not an image file"),
        "{e}"
    );

    let broken = tmp.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("a.png"), b"not a png").unwrap();
    let files = backend::data::list_images(&broken).unwrap();
    let e = backend::data::load_image(&files[0], &spec)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.png") && e.contains("unreadable image"), "{e}");
    assert_eq!(e.lines().count(), 1);

    // Frames come in file-name order, resized and center-cropped to the model's input.
    let ok = tmp.path().join("ok");
    std::fs::create_dir(&ok).unwrap();
    image::GrayImage::from_pixel(16, 8, image::Luma([255]))
        .save(ok.join("b.png"))
        .unwrap();
    image::GrayImage::from_pixel(8, 8, image::Luma([0]))
        .save(ok.join("a.png"))
        .unwrap();
    let files = backend::data::list_images(&ok).unwrap();
    assert_eq!(files[0].file_name().unwrap(), "a.png");
    let px = backend::data::load_images(&files, &spec).unwrap();
    assert_eq!(px.len(), 128);
    assert!(px[..64].iter().all(|&v| v == 0.0));
    assert!(px[64..].iter().all(|&v| v == 1.0));

    // Labels: count and range checked, naming file and line.
    let labels = tmp.path().join("labels.txt");
    std::fs::write(&labels, "1\n12\n").unwrap();
    let e = backend::data::read_labels(&labels, 2, 10)
        .unwrap_err()
        .to_string();
    assert!(e.contains("labels.txt:2") && e.contains("0..10"), "{e}");
    std::fs::write(&labels, "1\n2\n").unwrap();
    let e = backend::data::read_labels(&labels, 3, 10)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 labels, expected 3"), "{e}");
}
