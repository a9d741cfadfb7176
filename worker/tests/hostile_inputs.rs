//! Issue #11, items 3 to 6: hostile artifact inputs. Paths that are not regular files, batch
//! decisions with impossible queueing, profiles with impossible latencies, and refusals that
//! must name the file holding the bad value. Hostile files are made here with the crate's
//! writers (nothing large is committed); bad inputs go through the real `worker simulate`
//! binary where the issue saw them, and through the readers for the rest of the class.

use crate::util::{auburn_data, copy_tree, fresh_temp_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use worker::artifact::{read_batch_decisions, read_ramp_data, ArtifactError};

fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_worker")
}

/// A FIFO at `path`, made by the `mkfifo` command.
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The `worker simulate` flags of the golden scenario `cv-resnet18-auburn` (batch size 4,
/// clockwork decisions), paths under `data`.
fn auburn_args(data: &Path) -> Vec<(String, String)> {
    let p = |rel: &str| data.join(rel).display().to_string();
    vec![
        ("--dataset".into(), "video".into()),
        ("--arch".into(), "resnet18_auburn".into()),
        ("--batch_size".into(), "4".into()),
        ("--profile_dir".into(), p("profile_pickles_bs")),
        (
            "--bootstrap_pickle_path".into(),
            p("bootstrap_pickles/bootstrap_auburn_resnet18.pickle"),
        ),
        (
            "--simulation_pickle_path".into(),
            p("simulation_pickles/auburn_resnet18.pickle"),
        ),
        (
            "--batch_decision_path".into(),
            p("batch_decisions/resnet18_1_fixed_30.pickle"),
        ),
    ]
}

/// Runs `worker simulate` with `args`, one flag replaced by `replace`.
fn simulate_with(args: &[(String, String)], replace: Option<(&str, &Path)>, out: &Path) -> Output {
    let mut cmd = Command::new(worker_bin());
    cmd.arg("simulate");
    for (flag, value) in args {
        cmd.arg(flag);
        match replace {
            Some((f, v)) if f == flag => cmd.arg(v),
            _ => cmd.arg(value),
        };
    }
    cmd.arg("--out").arg(out).output().expect("worker runs")
}

/// The one `error:` line of a failed run (exit code 1, no panic, no result written).
fn one_error_line(o: &Output, out: &Path, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: exit code; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{what}: one error line expected: {stderr}");
    assert!(
        !out.join("summary.json").exists(),
        "{what}: no result on failure"
    );
    lines[0].to_string()
}

fn assert_names(line: &str, parts: &[&str], what: &str) {
    for part in parts {
        assert!(line.contains(part), "{what}: {part:?} missing from: {line}");
    }
}

// ----------------------------------------------------------------------------------------
// Item 3: inputs that are not regular files.

/// `/dev/zero`, `/dev/urandom` and a FIFO as each pickle flag, and as profile files (links),
/// are refused at once with one line naming the path; nothing blocks or grows.
#[test]
fn issue11_devices_and_fifos_are_refused_by_worker_simulate() {
    let tmp = fresh_temp_dir("issue11-devices");
    let fifo = tmp.join("input.fifo");
    mkfifo(&fifo);
    let args = auburn_args(&auburn_data());
    let out = tmp.join("out");
    let mut bad: Vec<PathBuf> = vec![fifo.clone()];
    for dev in ["/dev/zero", "/dev/urandom"] {
        if Path::new(dev).exists() {
            bad.push(PathBuf::from(dev));
        }
    }
    for flag in [
        "--simulation_pickle_path",
        "--bootstrap_pickle_path",
        "--batch_decision_path",
    ] {
        for path in &bad {
            let what = format!("{flag} {}", path.display());
            let o = simulate_with(&args, Some((flag, path)), &out);
            let line = one_error_line(&o, &out, &what);
            assert_names(
                &line,
                &[&path.display().to_string(), "not a regular file"],
                &what,
            );
        }
    }
    // A profile folder where one file is a link to /dev/zero, then a FIFO.
    let profiles = tmp.join("profiles");
    copy_tree(&auburn_data().join("profile_pickles_bs"), &profiles);
    let victim = profiles.join("resnet18_8_profile.pickle");
    let mut dir_args = args.clone();
    for (flag, value) in &mut dir_args {
        if flag == "--profile_dir" {
            *value = profiles.display().to_string();
        }
    }
    std::fs::remove_file(&victim).expect("remove profile");
    std::os::unix::fs::symlink("/dev/zero", &victim).expect("symlink");
    let o = simulate_with(&dir_args, None, &out);
    let line = one_error_line(&o, &out, "profile linked to /dev/zero");
    assert_names(
        &line,
        &[
            "resnet18_8_profile.pickle",
            "a character device, not a regular file",
        ],
        "profile linked to /dev/zero",
    );
    std::fs::remove_file(&victim).expect("remove link");
    mkfifo(&victim);
    let o = simulate_with(&dir_args, None, &out);
    let line = one_error_line(&o, &out, "profile FIFO");
    assert_names(
        &line,
        &[
            "resnet18_8_profile.pickle",
            "a FIFO (named pipe), not a regular file",
        ],
        "profile FIFO",
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Every other reader of a named input refuses a FIFO and a device the same way: the readers'
/// library functions, input digests of sweeps, Azure CSV traces, sweep specs and
/// `worker batching` traces.
#[test]
fn issue11_every_input_reader_refuses_what_is_not_a_regular_file() {
    let tmp = fresh_temp_dir("issue11-readers");
    let fifo = tmp.join("x.fifo");
    mkfifo(&fifo);
    let dir_path = tmp.join("a-directory");
    std::fs::create_dir_all(&dir_path).expect("dir");
    for path in [fifo.as_path(), Path::new("/dev/zero"), dir_path.as_path()] {
        let text = |e: String| {
            assert!(
                e.contains("not a regular file"),
                "{}: not refused as such: {e}",
                path.display()
            );
        };
        let named = |e: &ArtifactError| {
            assert_eq!(e.path(), path);
            text(e.to_string());
        };
        named(&read_ramp_data(path).expect_err("ramp data"));
        named(&read_batch_decisions(path).expect_err("decisions"));
        text(
            worker::sweep::digest::file_sha256(path)
                .expect_err("digest")
                .to_string(),
        );
        text(
            worker::sweep::SweepSpec::load(path)
                .expect_err("spec")
                .to_string(),
        );
        text(
            worker::traces::azure::read_function(path, &Default::default())
                .expect_err("azure csv")
                .to_string(),
        );
        let o = Command::new(worker_bin())
            .args(["batching", "--trace"])
            .arg(path)
            .arg("--out")
            .arg(tmp.join("decisions.json"))
            .output()
            .expect("worker runs");
        assert_eq!(
            o.status.code(),
            Some(1),
            "worker batching {}",
            path.display()
        );
        text(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A sweep over artifact inputs where one input is a FIFO (or a link to a device) is refused
/// when planned, naming the file and what it is (not as a missing file, and without blocking
/// on the digest).
#[test]
fn issue11_sweep_inputs_that_are_not_regular_files_are_refused_when_planned() {
    let tmp = fresh_temp_dir("issue11-sweep");
    let data = tmp.join("data");
    copy_tree(&auburn_data(), &data);
    let spec = format!(
        "name = \"a\"\n[inputs]\nkind = \"artifact\"\ndir = {data:?}\n[traces.fixed_30]\nsource = \"artifact_decisions\"\nfile = \"{{model}}_1_fixed_30.pickle\"\n[[grid]]\nname = \"cv\"\nmodels = [\"resnet18\"]\ndatasets = [\"auburn\"]\ntraces = [\"fixed_30\"]\nslo_multiplier = [1]\nbatch_size = [4]\n"
    );
    let plan =
        |what: &str| match worker::sweep::SweepSpec::from_toml(&spec, "test.toml", Path::new("."))
            .and_then(|s| s.plan())
        {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e.to_string(),
        };
    let victim = data.join("profile_pickles_bs/resnet18_16_earlyexit_profile.pickle");
    std::fs::remove_file(&victim).expect("remove");
    mkfifo(&victim);
    let msg = plan("FIFO");
    assert_names(
        &msg,
        &[
            &victim.display().to_string(),
            "a FIFO (named pipe), not a regular file",
        ],
        "FIFO",
    );
    std::fs::remove_file(&victim).expect("remove");
    std::os::unix::fs::symlink("/dev/urandom", &victim).expect("symlink");
    let msg = plan("device");
    assert_names(
        &msg,
        &[
            &victim.display().to_string(),
            "a character device, not a regular file",
        ],
        "device",
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A file larger than the 4 GiB input limit is refused from its size, before any memory is
/// reserved (a sparse file: it takes no disk space).
#[test]
fn issue11_files_over_the_input_limit_are_refused_from_their_size() {
    let tmp = fresh_temp_dir("issue11-huge");
    let huge = tmp.join("huge.pickle");
    let f = std::fs::File::create(&huge).expect("create");
    f.set_len(worker::input_file::MAX_INPUT_BYTES + 1)
        .expect("sparse file");
    drop(f);
    let e = read_ramp_data(&huge).expect_err("refused");
    assert!(
        e.to_string()
            .contains("input files are limited to 4294967296 bytes"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Length fields inside a pickle never make a reader allocate beyond the file: a
/// `BINUNICODE8` / `BINBYTES8` claiming 2^62 bytes in a 20-byte file is a truncated pickle.
#[test]
fn issue11_length_fields_are_capped_by_the_file_size() {
    for op in [0x8du8, 0x8e, 0x96] {
        let mut bytes = vec![0x80, 4, op];
        bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
        bytes.extend_from_slice(b"abc.");
        let e = worker::artifact::ramp_data_from_bytes(Path::new("len.pickle"), &bytes)
            .expect_err("refused");
        assert!(e.to_string().contains("truncated"), "{op:#x}: {e}");
        let e = worker::artifact::batch_decisions_from_bytes(Path::new("len.pickle"), &bytes)
            .expect_err("refused");
        assert!(e.to_string().contains("truncated"), "{op:#x}: {e}");
    }
}
