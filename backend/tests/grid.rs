//! The real `ee-backend` in a sweep (issue #13 item 5): a `worker --local` sweep over a
//! `kind = "backend"` spec with the tiny `digits-cnn` on a few generated 8x8 PNG digits. The
//! backbone is trained first with `ee-backend train-backbone` (no pretrained weights here);
//! the sweep then runs `ee-backend gen-data` once into `<results>/inputs/<digest>/` and its
//! task on that folder, and a second sweep reuses it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ee_backend() -> &'static str {
    env!("CARGO_BIN_EXE_ee-backend")
}

/// The `worker` binary beside `ee-backend` in the target folder (`cargo test --workspace`
/// builds it).
fn worker() -> PathBuf {
    let dir = Path::new(ee_backend()).parent().expect("target folder");
    let p = dir.join(format!("worker{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.is_file(),
        "{} is missing: build it with `cargo build --workspace`",
        p.display()
    );
    p
}

fn fresh_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backend-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

fn check(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// An 8-bit grayscale PNG (uncompressed deflate blocks).
fn png_gray(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    for row in pixels.chunks(width as usize) {
        raw.push(0); // filter: none
        raw.extend(row);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend(((b << 16) | a).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A 3x5 font of the digits, one row per string.
const FONT: [[&str; 5]; 10] = [
    ["###", "#.#", "#.#", "#.#", "###"],
    [".#.", "##.", ".#.", ".#.", "###"],
    ["###", "..#", "###", "#..", "###"],
    ["###", "..#", "###", "..#", "###"],
    ["#.#", "#.#", "###", "..#", "..#"],
    ["###", "#..", "###", "..#", "###"],
    ["###", "#..", "###", "#.#", "###"],
    ["###", "..#", ".#.", ".#.", ".#."],
    ["###", "#.#", "###", "#.#", "###"],
    ["###", "#.#", "###", "..#", "###"],
];

/// `n` noisy 8x8 digits (label `i % 10`) as PNG frames in `dir/frames/`, and `dir/labels.txt`.
fn write_digits(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let frames = dir.join("frames");
    std::fs::create_dir_all(&frames).expect("frames folder");
    let mut labels = String::new();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..n {
        let digit = i % 10;
        let (dx, dy) = ((next() % 3) as usize, (next() % 2) as usize);
        let mut px = [0u8; 64];
        for (y, row) in FONT[digit].iter().enumerate() {
            for (x, c) in row.bytes().enumerate() {
                if c == b'#' {
                    // Each glyph pixel is two wide.
                    for k in 0..2 {
                        let (xx, yy) = (dx + 2 * x + k, dy + y + 1);
                        if xx < 8 && yy < 8 {
                            px[yy * 8 + xx] = 200;
                        }
                    }
                }
            }
        }
        for p in &mut px {
            *p = p.saturating_add((next() % 40) as u8);
        }
        std::fs::write(frames.join(format!("{i:05}.png")), png_gray(8, 8, &px)).expect("png");
        labels.push_str(&format!("{digit}\n"));
    }
    let labels_path = dir.join("labels.txt");
    std::fs::write(&labels_path, labels).expect("labels");
    (frames, labels_path)
}

#[test]
fn a_local_sweep_over_digits_cnn_builds_its_inputs_with_ee_backend_once() {
    let dir = fresh_dir("grid-digits");
    let (frames, labels) = write_digits(&dir, 400);
    let weights = dir.join("weights.safetensors");
    let o = Command::new(ee_backend())
        .args(["train-backbone", "--model", "digits-cnn", "--data"])
        .arg(&frames)
        .arg("--labels")
        .arg(&labels)
        .arg("--out")
        .arg(&weights)
        .args(["--epochs", "3", "--seed", "0"])
        .output()
        .expect("ee-backend runs");
    check(&o, "ee-backend train-backbone");
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        "name = \"digits\"\n[inputs]\nkind = \"backend\"\nmodel = \"digits-cnn\"\n\
         name = \"resnet-digits\"\nweights = \"weights.safetensors\"\ndata = \"frames\"\nlabels = \"labels.txt\"\n\
         device = \"cpu\"\nseed = 0\n\
         [traces.video30]\nkind = \"fixed\"\nqps = 30.0\nn = 300\n\
         [[grid]]\nname = \"cv\"\nmodels = [\"resnet-digits\"]\ndatasets = [\"video\"]\n\
         traces = [\"video30\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n",
    )
    .expect("write spec");
    let sweep = || {
        Command::new(worker())
            .args(["--local", "--no-report", "--spec"])
            .arg(&spec)
            .arg("--out")
            .arg(dir.join("results"))
            .env("APPARATE_EE_BACKEND", ee_backend())
            .output()
            .expect("worker runs")
    };
    let o = sweep();
    check(&o, "worker --local");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(stderr.contains("backend inputs built into"), "{stderr}");
    let inputs: Vec<PathBuf> = std::fs::read_dir(dir.join("results/inputs"))
        .expect("inputs folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != ".tmp"))
        .collect();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    for f in [
        "bootstrap_pickles/bootstrap_video_resnet-digits.pickle",
        "simulation_pickles/video_resnet-digits.pickle",
        "profile_pickles_bs/resnet-digits_1_profile.pickle",
        "profile_pickles_bs/resnet-digits_1_earlyexit_profile.pickle",
        "inputs-manifest.json",
    ] {
        assert!(
            inputs[0].join(f).is_file(),
            "{f} in {}",
            inputs[0].display()
        );
    }
    let tasks: Vec<PathBuf> = std::fs::read_dir(dir.join("results/tasks"))
        .expect("tasks folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != ".tmp"))
        .collect();
    assert_eq!(tasks.len(), 1);
    let summary = std::fs::read_to_string(tasks[0].join("summary.json")).expect("summary");
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("json");
    assert!(
        summary["num_requests"].as_u64().unwrap_or(0) > 0,
        "{summary}"
    );

    // Again, with the task gone: the inputs folder is reused, gen-data does not run.
    std::fs::remove_dir_all(dir.join("results/tasks")).expect("remove tasks");
    let o = sweep();
    check(&o, "worker --local (again)");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(stderr.contains("backend inputs reused from"), "{stderr}");
}

/// Issue #14 item 5, end to end: a sweep over a simulated and a live grid on the same model,
/// data and trace; the live task is served by the real `ee-backend serve`, and the analysis
/// report pairs it with the simulated one.
#[test]
fn a_local_sweep_runs_a_simulated_and_a_live_task_on_digits_cnn() {
    let dir = fresh_dir("grid-live-digits");
    let (frames, labels) = write_digits(&dir, 400);
    let weights = dir.join("weights.safetensors");
    let o = Command::new(ee_backend())
        .args(["train-backbone", "--model", "digits-cnn", "--data"])
        .arg(&frames)
        .arg("--labels")
        .arg(&labels)
        .arg("--out")
        .arg(&weights)
        .args(["--epochs", "3", "--seed", "0"])
        .output()
        .expect("ee-backend runs");
    check(&o, "ee-backend train-backbone");
    let grid = |name: &str, extra: &str| {
        format!(
            "[[grid]]\nname = \"{name}\"\n{extra}models = [\"resnet-digits\"]\ndatasets = [\"video\"]\n\
             traces = [\"video30\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n"
        )
    };
    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"digits-live\"\n[inputs]\nkind = \"backend\"\nmodel = \"digits-cnn\"\n\
             name = \"resnet-digits\"\nweights = \"weights.safetensors\"\ndata = \"frames\"\nlabels = \"labels.txt\"\n\
             device = \"cpu\"\nseed = 0\n\
             [traces.video30]\nkind = \"fixed\"\nqps = 30.0\nn = 300\n{}{}",
            grid("sim", ""),
            grid("live", "kind = \"live\"\nclock = \"fast\"\n")
        ),
    )
    .expect("write spec");
    let o = Command::new(worker())
        .args(["--local", "--no-report", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(dir.join("results"))
        .env("APPARATE_EE_BACKEND", ee_backend())
        .output()
        .expect("worker runs");
    check(&o, "worker --local");
    let mut tasks: Vec<PathBuf> = std::fs::read_dir(dir.join("results/tasks"))
        .expect("tasks folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != ".tmp"))
        .collect();
    tasks.sort();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let live = tasks
        .iter()
        .find(|p| name(p).starts_with("live-resnet-digits-video-video30-live-"))
        .expect("the live task");
    let sim = tasks
        .iter()
        .find(|p| name(p).starts_with("sim-resnet-digits-video-video30-"))
        .expect("the simulated task");
    for dir in [live, sim] {
        let m = apparate::results::verify_task_dir(dir, None, apparate::results::Digests::Verify)
            .unwrap_or_else(|p| panic!("{} is not complete: {p}", dir.display()));
        assert!(m.num_requests > 0, "{}", dir.display());
    }
    for f in apparate::task::LIVE_FILES {
        assert!(live.join(f).is_file(), "{f} in {}", live.display());
        assert!(!sim.join(f).exists(), "{f} in {}", sim.display());
    }
    let serve: serde_json::Value =
        serde_json::from_slice(&std::fs::read(live.join("serve.json")).expect("serve.json"))
            .expect("json");
    assert_eq!(serve["interrupted"], false, "{serve}");
    assert_eq!(serve["clock"], "fast", "{serve}");
    let timing = std::fs::read_to_string(live.join("timing.jsonl")).expect("timing.jsonl");
    assert_eq!(
        timing.lines().count() as u64,
        serve["batches"].as_u64().expect("batches"),
        "one timing line per batch"
    );

    // The report shows the live task next to its simulated twin.
    let analysis = worker().with_file_name(format!("analysis{}", std::env::consts::EXE_SUFFIX));
    let o = Command::new(&analysis)
        .args(["report", "--results"])
        .arg(dir.join("results"))
        .output()
        .expect("analysis runs");
    check(&o, "analysis report");
    let table = std::fs::read_to_string(dir.join("results/report/tables/live_vs_simulated.csv"))
        .expect("live_vs_simulated.csv");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1, "{table}");
    let col = |name: &str| {
        let k = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name} in {table}"));
        rows[0][k]
    };
    assert_eq!(col("key"), name(live), "{table}");
    assert_eq!(col("simulated_key"), name(sim), "{table}");
    for c in header.iter().filter(|h| h.contains("p50")) {
        assert!(
            col(c).parse::<f64>().is_ok_and(|x| x > 0.0),
            "{c} in {table}"
        );
    }
    assert!(dir
        .join("results/report/figures/live_vs_simulated_cdf.png")
        .is_file());
}
