//! Backend inputs (`[inputs] kind = "backend"`, issue #13 item 5): the spec's checks, each
//! naming its key, and the inputs digest (stable, location-free, and changed by every input).
//! Running the backend is tested with the real `worker` binary in `worker/tests/backend_grid.rs`.

use crate::util::fresh_temp_dir;
use apparate::backend_inputs::{inputs_digest, BackendInputs};
use apparate::sweep::SweepSpec;
use apparate::task::BackendDevice;
use std::path::{Path, PathBuf};

/// A folder with `weights.bin`, `labels.txt` and `frames/` (two files).
fn inputs_folder(tag: &str) -> PathBuf {
    let dir = fresh_temp_dir(tag);
    std::fs::write(dir.join("weights.bin"), b"weights v1").unwrap();
    std::fs::write(dir.join("labels.txt"), b"3\n1\n").unwrap();
    std::fs::create_dir(dir.join("frames")).unwrap();
    std::fs::write(dir.join("frames/0001.png"), b"frame one").unwrap();
    std::fs::write(dir.join("frames/0002.png"), b"frame two").unwrap();
    dir
}

const GRID: &str = r#"
[traces.video30]
kind = "fixed"
qps = 30.0
n = 500

[[grid]]
name = "cv"
models = ["resnet-digits"]
datasets = ["video"]
traces = ["video30"]
slo_multiplier = [2.0]
batch_size = [4]
"#;

/// The error of planning `inputs` (the `[inputs]` table's lines) + `rest`, resolved in `dir`.
fn plan_error(dir: &Path, inputs: &str, rest: &str) -> String {
    let text = format!("name = \"be\"\n[inputs]\n{inputs}\n{rest}");
    let spec = SweepSpec::from_toml(&text, "be.toml", dir).expect("the TOML parses");
    match spec.plan() {
        Ok(_) => panic!("planned without error:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const OK_INPUTS: &str = "kind = \"backend\"\nmodel = \"digits-cnn\"\nname = \"resnet-digits\"\nweights = \"weights.bin\"\ndata = \"frames\"\ndevice = \"cpu\"";

#[test]
fn backend_inputs_are_checked_before_any_work_naming_the_key() {
    let dir = inputs_folder("backend-spec-checks");
    let cases: Vec<(String, String, &str)> = vec![
        (
            "kind = \"backend\"\nmodel = \"digits-cnn\"\nweights = \"weights.bin\"\ndata = \"frames\"".into(),
            GRID.to_string(),
            "inputs.model: model \"digits-cnn\" is a CV model, but the simulator reads a model as CV only under a name containing \"resnet\" or \"vgg\"",
        ),
        (
            OK_INPUTS.replace("resnet-digits", "bert-digits"),
            GRID.to_string(),
            "inputs.name: model \"digits-cnn\" is a CV model",
        ),
        (
            "kind = \"backend\"\nweights = \"weights.bin\"\ndata = \"frames\"".into(),
            GRID.to_string(),
            "inputs.model: required with kind = \"backend\"",
        ),
        (
            "kind = \"backend\"\nmodel = \"\"\nweights = \"weights.bin\"\ndata = \"frames\"".into(),
            GRID.to_string(),
            "inputs.model: model name \"\" is not allowed",
        ),
        (
            OK_INPUTS.replace("\"cpu\"", "\"gpu\""),
            GRID.to_string(),
            "inputs.device: \"gpu\" is not a device; expected \"auto\", \"cpu\" or \"cuda\"",
        ),
        (
            OK_INPUTS.replace("weights.bin", "nope.bin"),
            GRID.to_string(),
            "inputs.weights: ",
        ),
        (
            OK_INPUTS.replace("weights.bin", "frames"),
            GRID.to_string(),
            "inputs.weights: ",
        ),
        (
            "kind = \"backend\"\nmodel = \"digits-cnn\"\nname = \"resnet-digits\"\ndata = \"frames\"".into(),
            GRID.to_string(),
            "inputs.weights: required with kind = \"backend\"",
        ),
        (
            OK_INPUTS.replace("\"frames\"", "\"no-frames\""),
            GRID.to_string(),
            "inputs.data: ",
        ),
        (
            format!("{OK_INPUTS}\nlabels = \"no-labels.txt\""),
            GRID.to_string(),
            "inputs.labels: ",
        ),
        (
            format!("{OK_INPUTS}\ndir = \".\""),
            GRID.to_string(),
            "inputs.dir: only allowed with kind = \"artifact\"",
        ),
        (
            format!("{OK_INPUTS}\nscale = 0.1"),
            GRID.to_string(),
            "inputs.scale: only allowed with kind = \"embedded\"",
        ),
        (
            "kind = \"embedded\"\nmodel = \"resnet18\"".into(),
            GRID.to_string(),
            "inputs.model: only allowed with kind = \"backend\"",
        ),
        (
            "kind = \"artifact\"\ndir = \".\"\ndevice = \"cpu\"".into(),
            GRID.to_string(),
            "inputs.device: only allowed with kind = \"backend\"",
        ),
        (
            OK_INPUTS.into(),
            GRID.replace("[\"resnet-digits\"]", "[\"resnet18\"]"),
            "grid[0].models[0]: \"resnet18\" is not the backend's model",
        ),
        (
            OK_INPUTS.into(),
            GRID.replace("[\"video\"]", "[\"auburn\"]"),
            "grid[0].datasets[0]: \"auburn\" is not the backend's dataset",
        ),
        (
            OK_INPUTS.into(),
            "[traces.fixed_30]\nsource = \"artifact_decisions\"\nfile = \"x.pickle\"\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet-digits\"]\ndatasets = [\"video\"]\ntraces = [\"fixed_30\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n".to_string(),
            "traces.fixed_30: a recorded decision file needs artifact inputs",
        ),
    ];
    for (inputs, rest, expected) in cases {
        let e = plan_error(&dir, &inputs, &rest);
        assert!(
            e.contains(expected),
            "for [inputs]\n{inputs}\nexpected {expected:?} in:\n{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

/// `GRID` followed by a second grid over the same model, dataset and trace with `extra` lines.
fn with_live_grid(extra: &str) -> String {
    format!(
        "{GRID}\n[[grid]]\nname = \"cv-live\"\nmodels = [\"resnet-digits\"]\ndatasets = [\"video\"]\ntraces = [\"video30\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\n{extra}\n"
    )
}

#[test]
fn live_grids_are_checked_before_any_work_naming_the_key() {
    let dir = inputs_folder("live-spec-checks");
    let embedded = "kind = \"embedded\"\nscale = 0.01";
    let embedded_grid = "[traces.video30]\nkind = \"fixed\"\nqps = 30.0\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"video30\"]\nslo_multiplier = [2.0]\nbatch_size = [4]\nkind = \"live\"\n";
    let cases: Vec<(String, String, &str)> = vec![
        (
            embedded.into(),
            embedded_grid.into(),
            "grid[0].kind: a live grid needs [inputs] kind = \"backend\": a live run serves a real model",
        ),
        (
            format!("kind = \"artifact\"\ndir = {:?}", dir.display().to_string()),
            embedded_grid.into(),
            "grid[0].kind: a live grid needs [inputs] kind = \"backend\"",
        ),
        (
            OK_INPUTS.into(),
            with_live_grid("kind = \"live\"\nclock = \"slow\""),
            "grid[1].clock: \"slow\" is not a clock; expected \"fast\" (the default) or \"realtime\"",
        ),
        (
            OK_INPUTS.into(),
            with_live_grid("clock = \"fast\""),
            "grid[1].clock: only allowed with kind = \"live\"",
        ),
        (
            OK_INPUTS.into(),
            with_live_grid("kind = \"replay\""),
            "grid[1].kind: \"replay\" is not a grid kind; expected \"simulated\" (the default) or \"live\"",
        ),
        (
            OK_INPUTS.into(),
            with_live_grid("kind = \"live\"\nbatching = [\"clockwork\", \"uniform\"]"),
            "grid[1].batching[1]: a live grid replays its trace's arrivals; uniform batching has none",
        ),
    ];
    for (inputs, rest, expected) in cases {
        let e = plan_error(&dir, &inputs, &rest);
        assert!(
            e.contains(expected),
            "for [inputs]\n{inputs}\n{rest}\nexpected {expected:?} in:\n{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

#[test]
fn a_live_grid_parses_into_its_kind_and_clock() {
    let text = format!(
        "name = \"be\"\n[inputs]\n{OK_INPUTS}\n{}",
        with_live_grid("kind = \"live\"\nclock = \"realtime\"")
    );
    let spec = SweepSpec::from_toml(&text, "be.toml", Path::new(".")).expect("parses");
    assert_eq!(spec.grid.len(), 2);
    assert_eq!(
        (spec.grid[0].kind.as_deref(), spec.grid[0].clock.as_deref()),
        (None, None)
    );
    assert_eq!(
        (spec.grid[1].kind.as_deref(), spec.grid[1].clock.as_deref()),
        (Some("live"), Some("realtime"))
    );
}

#[test]
fn the_live_digits_example_pairs_a_simulated_and_a_live_grid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let spec = SweepSpec::load(&root.join("specs/example-live-digits.toml")).expect("parses");
    assert_eq!(spec.grid.len(), 2);
    let (sim, live) = (&spec.grid[0], &spec.grid[1]);
    assert_eq!(
        (sim.kind.as_deref(), live.kind.as_deref()),
        (None, Some("live"))
    );
    assert_eq!(live.clock.as_deref(), Some("fast"));
    // Everything but the name, the kind and the clock is the same: the tasks pair up.
    let mut same = live.clone();
    same.name = sim.name.clone();
    same.kind = None;
    same.clock = None;
    assert_eq!(&same, sim);
}

#[test]
fn an_unknown_inputs_key_is_refused_with_its_line() {
    let text = format!("name = \"be\"\n[inputs]\n{OK_INPUTS}\nweight = \"w\"\n{GRID}");
    let e = SweepSpec::from_toml(&text, "be.toml", Path::new("."))
        .expect_err("unknown key")
        .to_string();
    assert!(e.contains("be.toml") && e.contains("weight"), "{e}");
}

fn view<'a>(dir: &'a Path, weights: &'a Path) -> BackendInputs<'a> {
    BackendInputs {
        model: "digits-cnn",
        name: "resnet-digits",
        dataset: "video",
        weights,
        data: dir,
        labels: None,
        device: BackendDevice::Cpu,
        seed: Some(0),
    }
}

#[test]
fn the_inputs_digest_is_stable_location_free_and_changed_by_every_input() {
    let dir = inputs_folder("backend-digest");
    let frames = dir.join("frames");
    let weights = dir.join("weights.bin");
    let labels = dir.join("labels.txt");
    let base = view(&frames, &weights);
    let d0 = inputs_digest(&base, "ee-backend 0.1.0").unwrap();
    assert_eq!(d0.len(), 64);
    assert_eq!(d0, inputs_digest(&base, "ee-backend 0.1.0").unwrap());

    // Moving the files elsewhere keeps the digest.
    let moved = fresh_temp_dir("backend-digest-moved");
    crate::util::copy_tree(&dir, &moved);
    let (mframes, mweights) = (moved.join("frames"), moved.join("weights.bin"));
    assert_eq!(
        d0,
        inputs_digest(&view(&mframes, &mweights), "ee-backend 0.1.0").unwrap()
    );

    let mut changed: Vec<(&str, String)> = Vec::new();
    let digest = |b: &BackendInputs<'_>, v: &str| inputs_digest(b, v).unwrap();
    changed.push(("backend version", digest(&base, "ee-backend 0.2.0")));
    changed.push((
        "device",
        digest(
            &BackendInputs {
                device: BackendDevice::Cuda,
                ..base
            },
            "ee-backend 0.1.0",
        ),
    ));
    changed.push((
        "seed",
        digest(
            &BackendInputs {
                seed: Some(1),
                ..base
            },
            "ee-backend 0.1.0",
        ),
    ));
    changed.push((
        "no seed",
        digest(&BackendInputs { seed: None, ..base }, "ee-backend 0.1.0"),
    ));
    changed.push((
        "model",
        digest(
            &BackendInputs {
                model: "resnet18",
                ..base
            },
            "ee-backend 0.1.0",
        ),
    ));
    changed.push((
        "name",
        digest(
            &BackendInputs {
                name: "vgg-digits",
                ..base
            },
            "ee-backend 0.1.0",
        ),
    ));
    changed.push((
        "dataset",
        digest(
            &BackendInputs {
                dataset: "auburn",
                ..base
            },
            "ee-backend 0.1.0",
        ),
    ));
    changed.push((
        "labels",
        digest(
            &BackendInputs {
                labels: Some(&labels),
                ..base
            },
            "ee-backend 0.1.0",
        ),
    ));
    // Contents: the weights' bytes, a frame's bytes, a renamed frame, an added frame.
    std::fs::write(&mweights, b"weights v2").unwrap();
    changed.push((
        "weights bytes",
        digest(&view(&mframes, &mweights), "ee-backend 0.1.0"),
    ));
    std::fs::write(&mweights, b"weights v1").unwrap();
    std::fs::write(mframes.join("0002.png"), b"frame 2").unwrap();
    changed.push((
        "a frame's bytes",
        digest(&view(&mframes, &mweights), "ee-backend 0.1.0"),
    ));
    std::fs::write(mframes.join("0002.png"), b"frame two").unwrap();
    assert_eq!(
        d0,
        digest(&view(&mframes, &mweights), "ee-backend 0.1.0"),
        "restored"
    );
    std::fs::rename(mframes.join("0002.png"), mframes.join("0003.png")).unwrap();
    changed.push((
        "a renamed frame",
        digest(&view(&mframes, &mweights), "ee-backend 0.1.0"),
    ));
    std::fs::write(mframes.join("0004.png"), b"frame four").unwrap();
    changed.push((
        "an added frame",
        digest(&view(&mframes, &mweights), "ee-backend 0.1.0"),
    ));
    for (i, (what, d)) in changed.iter().enumerate() {
        assert_ne!(*d, d0, "{what} must change the digest");
        for (other, d2) in &changed[..i] {
            assert_ne!(d, d2, "{what} and {other} give the same digest");
        }
    }
}

#[test]
fn an_unreadable_data_file_is_refused_naming_it() {
    let dir = inputs_folder("backend-digest-fifo");
    let frames = dir.join("frames");
    let weights = dir.join("weights.bin");
    let status = std::process::Command::new("mkfifo")
        .arg(frames.join("0003.png"))
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
    let e = inputs_digest(&view(&frames, &weights), "v")
        .expect_err("a FIFO in the data")
        .to_string();
    assert!(e.contains("0003.png") && e.contains("FIFO"), "{e}");
}
