//! Issue #11, items 3 to 6: hostile artifact inputs. Paths that are not regular files, batch
//! decisions with impossible queueing, profiles with impossible latencies, and refusals that
//! must name the file holding the bad value. Hostile files are made here with the crate's
//! writers (nothing large is committed); bad inputs go through the real `worker simulate`
//! binary where the issue saw them, and through the readers for the rest of the class.

use crate::util::{auburn_data, auburn_task_over, copy_tree, fresh_temp_dir, golden_dir};
use apparate::artifact::write::DecisionRecord;
use apparate::artifact::write::{write_batch_decisions, write_profiles, write_ramp_data, AvgQps};
use apparate::artifact::{
    read_batch_decisions, read_latency_tables, read_ramp_data, ArtifactError,
};
use apparate::sim::{LatencyTable, LatencyTables, RampData};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
            apparate::sweep::digest::file_sha256(path)
                .expect_err("digest")
                .to_string(),
        );
        text(
            apparate::sweep::SweepSpec::load(path)
                .expect_err("spec")
                .to_string(),
        );
        text(
            apparate::traces::azure::read_function(path, &Default::default())
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

/// A remote worker refuses a token file that is a FIFO or a device before connecting, naming
/// it (it used to block on the FIFO, or read /dev/zero without end).
#[test]
fn issue11_a_remote_worker_refuses_a_token_file_that_is_not_a_regular_file() {
    let tmp = fresh_temp_dir("issue11-remote-token");
    let fifo = tmp.join("token.fifo");
    mkfifo(&fifo);
    for token in [fifo.as_path(), Path::new("/dev/zero")] {
        let o = Command::new(worker_bin())
            .args(["--coordinator", "http://127.0.0.1:9", "--token-file"])
            .arg(token)
            .output()
            .expect("worker runs");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert_names(
            &stderr,
            &[&token.display().to_string(), "not a regular file"],
            "token",
        );
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
    let plan = |what: &str| match apparate::sweep::SweepSpec::from_toml(
        &spec,
        "test.toml",
        Path::new("."),
    )
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
    f.set_len(apparate::input_file::MAX_INPUT_BYTES + 1)
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
        let e = apparate::artifact::ramp_data_from_bytes(Path::new("len.pickle"), &bytes)
            .expect_err("refused");
        assert!(e.to_string().contains("truncated"), "{op:#x}: {e}");
        let e = apparate::artifact::batch_decisions_from_bytes(Path::new("len.pickle"), &bytes)
            .expect_err("refused");
        assert!(e.to_string().contains("truncated"), "{op:#x}: {e}");
    }
}

// ----------------------------------------------------------------------------------------
// Item 4: batch decisions with impossible queueing.

/// The golden auburn decisions as a record the writer takes.
fn auburn_decisions() -> DecisionRecord {
    let d = read_batch_decisions(&auburn_data().join("batch_decisions/resnet18_1_fixed_30.pickle"))
        .expect("golden decisions");
    let stats = d.per_request_stats.expect("golden stats");
    DecisionRecord {
        batching_decision: d.batching_decision.iter().map(|b| b.get()).collect(),
        total_num_requests: stats.len(),
        per_request_stats: stats,
        batching_scheme: "clockwork".into(),
        arch: "resnet18".into(),
        slo: 5.19,
        dataset: "auburn".into(),
        avg_qps: AvgQps::Float(30.0),
        end_time: 1.0,
        max_batch_size: 64,
        batch_timeout_ms: 60.0,
        max_enqueued_batches: 1,
    }
}

/// The k-th entry of `stats` that is a pair.
fn kth_pair(stats: &[Option<(f64, f64)>], k: usize) -> usize {
    stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_some())
        .nth(k)
        .map(|(i, _)| i)
        .expect("enough pairs")
}

/// NaN, infinite, negative and absurd entries of `per_request_stats`, and a list shorter than
/// the requests served, fail `worker simulate` naming the decision file and the index.
#[test]
fn issue11_impossible_queueing_is_refused_naming_the_decision_file_and_index() {
    let tmp = fresh_temp_dir("issue11-queueing");
    let args = auburn_args(&auburn_data());
    let out = tmp.join("out");
    let good = auburn_decisions();
    let i = kth_pair(&good.per_request_stats, 17);
    for (k, value, shown) in [
        (0, f64::NAN, "NaN"),
        (0, f64::INFINITY, "inf"),
        (1, f64::NEG_INFINITY, "-inf"),
        (0, -0.25, "-0.25"),
        (1, -3.0, "-3"),
        (0, 1e300, "1e300"),
    ] {
        let mut record = good.clone();
        let pair = record.per_request_stats[i].as_mut().expect("a pair");
        if k == 0 {
            pair.0 = value;
        } else {
            pair.1 = value;
        }
        let file = tmp.join(format!("bad_{k}_{shown}.pickle"));
        write_batch_decisions(&file, &record).expect("write");
        let what = format!("per_request_stats[{i}][{k}] = {shown}");
        let o = simulate_with(&args, Some(("--batch_decision_path", &file)), &out);
        let line = one_error_line(&o, &out, &what);
        assert_names(
            &line,
            &[
                &file.display().to_string(),
                &format!("per_request_stats[{i}][{k}]"),
                shown,
            ],
            &what,
        );
    }
    // Fewer pairs than the 4490 requests served: cut after the 1000th pair.
    let mut record = good.clone();
    let end = kth_pair(&record.per_request_stats, 1000);
    record.per_request_stats.truncate(end);
    let file = tmp.join("short.pickle");
    write_batch_decisions(&file, &record).expect("write");
    let o = simulate_with(&args, Some(("--batch_decision_path", &file)), &out);
    let line = one_error_line(&o, &out, "short per_request_stats");
    assert_names(
        &line,
        &[
            &file.display().to_string(),
            &format!("per_request_stats[{end}]"),
            "4490 requests served",
            "1000 of them pairs",
        ],
        "short per_request_stats",
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A grid task on artifact inputs whose decision file is too short fails as an input error
/// naming that file (not with a `null` queueing column).
#[test]
fn issue11_a_task_with_short_stats_fails_naming_the_decision_file() {
    use apparate::task::{run_task, TaskError};
    let tmp = fresh_temp_dir("issue11-task-stats");
    let data = tmp.join("data");
    copy_tree(&auburn_data(), &data);
    let file = data.join("batch_decisions/resnet18_1_fixed_30.pickle");
    let mut record = auburn_decisions();
    record.per_request_stats.truncate(300);
    write_batch_decisions(&file, &record).expect("write");
    let spec = auburn_task_over(data.clone());
    let e = run_task(&spec, &tmp.join("out")).expect_err("refused");
    assert!(matches!(e, TaskError::Input(_)), "{e:?}");
    let text = e.to_string();
    assert_names(
        &text,
        &[&file.display().to_string(), "per_request_stats[300]"],
        "task",
    );
    assert!(!tmp.join("out/requests.parquet").exists());
    let _ = std::fs::remove_dir_all(&tmp);
}

// ----------------------------------------------------------------------------------------
// Item 5: profiles with impossible latencies.

/// The golden tables of a scenario.
fn golden_tables(scenario: &str, arch: &str) -> LatencyTables {
    let dir = golden_dir().join(scenario).join("data/profile_pickles_bs");
    read_latency_tables(&dir, arch).expect("golden profiles")
}

/// `tables` with the bs-8 table changed by `change`, written as profile pickles of `model`
/// into a fresh folder `dir`.
fn write_changed(
    dir: &Path,
    model: &str,
    tables: &LatencyTables,
    change: impl Fn(&mut LatencyTable),
) {
    let _ = std::fs::remove_dir_all(dir);
    let changed: Vec<LatencyTable> = tables
        .iter()
        .map(|(bs, t)| {
            let mut t = t.clone();
            if bs.get() == 8 {
                change(&mut t);
            }
            t
        })
        .collect();
    let changed = LatencyTables::new(changed).expect("seven tables");
    write_profiles(dir, model, &changed).expect("write profiles");
}

/// Negative, absurd and inconsistent latencies in CV and NLP profiles are refused, naming the
/// profile file, the node and the attribute; each fails `worker simulate` with that line.
#[test]
fn issue11_impossible_profile_latencies_are_refused_naming_file_and_node() {
    let tmp = fresh_temp_dir("issue11-profiles");
    let cv = golden_tables("cv-resnet18-auburn", "resnet18_auburn");
    let v8 = cv.iter().nth(3).map(|(_, t)| t.vanilla_ms).expect("bs 8");
    type Change = Box<dyn Fn(&mut LatencyTable)>;
    let cases: Vec<(&str, Change, &str, &str, &str)> = vec![
        (
            "negative ramp",
            Box::new(|t: &mut LatencyTable| t.ramps[2].ramp_ms = -0.5),
            "resnet18_8_earlyexit_profile.pickle",
            "fwd_latency",
            "-0.5",
        ),
        (
            "absurd ramp",
            Box::new(|t: &mut LatencyTable| t.ramps[2].ramp_ms = 1e308),
            "resnet18_8_earlyexit_profile.pickle",
            "fwd_latency",
            "from 0 to 1e6",
        ),
        (
            "ramp dearer than the model",
            Box::new(move |t: &mut LatencyTable| t.ramps[5].ramp_ms = 1.5 * v8),
            "resnet18_8_earlyexit_profile.pickle",
            "fwd_latency",
            "cannot cost more than the final exit",
        ),
        (
            "ramp after the model's end",
            Box::new(move |t: &mut LatencyTable| t.ramps[6].vanilla_up_to_ms = 2.0 * v8),
            "resnet18_8_profile.pickle",
            "vanilla_latency_up_until_me",
            "cannot attach after the model ends",
        ),
        (
            "zero model latency",
            Box::new(|t: &mut LatencyTable| {
                t.vanilla_ms = 0.0;
                for r in &mut t.ramps {
                    r.vanilla_up_to_ms = 0.0;
                    r.ramp_ms = 0.0;
                }
            }),
            "resnet18_8_profile.pickle",
            "fwd_latency_orig",
            "above 0 ms",
        ),
    ];
    let dir = tmp.join("cv");
    let out = tmp.join("out");
    let mut args = auburn_args(&auburn_data());
    for (flag, value) in &mut args {
        if flag == "--profile_dir" {
            *value = dir.display().to_string();
        }
    }
    for (what, change, file, attr, problem) in cases {
        write_changed(&dir, "resnet18", &cv, change);
        let e = read_latency_tables(&dir, "resnet18_auburn").expect_err(what);
        assert_eq!(e.path(), dir.join(file), "{what}: {e}");
        assert_names(&e.to_string(), &[attr, problem], what);
        let o = simulate_with(&args, None, &out);
        let line = one_error_line(&o, &out, what);
        assert_names(
            &line,
            &[&dir.join(file).display().to_string(), attr, problem],
            what,
        );
    }

    // NLP: the whole model's latency (the root's vanilla_latency_up_until_me) at 0, negative
    // and absurd; a ramp's attach point past it.
    let nlp = golden_tables("nlp-distilbert-base-imdb", "distilbert-base");
    let dir = tmp.join("nlp");
    let file = dir.join("distilbert-base_8_earlyexit_profile.pickle");
    for (what, v, problem) in [
        ("zero", 0.0, "above 0 ms"),
        ("negative", -17.0, "from 0 to 1e6"),
        ("absurd", 1e308, "from 0 to 1e6"),
    ] {
        write_changed(&dir, "distilbert-base", &nlp, |t| {
            t.vanilla_ms = v;
            for r in &mut t.ramps {
                r.vanilla_up_to_ms = r.vanilla_up_to_ms.min(v.max(0.0));
                r.ramp_ms = r.ramp_ms.min(v.max(0.0));
            }
        });
        let e = read_latency_tables(&dir, "distilbert-base").expect_err(what);
        assert_eq!(e.path(), file, "{what}: {e}");
        assert_names(
            &e.to_string(),
            &["vanilla_latency_up_until_me", problem],
            what,
        );
    }
    write_changed(&dir, "distilbert-base", &nlp, |t| {
        t.ramps[3].vanilla_up_to_ms = t.vanilla_ms * 1.01;
    });
    let e = read_latency_tables(&dir, "distilbert-base").expect_err("late ramp");
    assert_eq!(e.path(), file, "{e}");
    assert_names(
        &e.to_string(),
        &[
            "vanilla_latency_up_until_me",
            "cannot attach after the model ends",
        ],
        "late ramp",
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Every golden scenario's profiles and the embedded workload's tables, written as profile
/// pickles, stay within the limits (the thresholds refuse no real input).
#[test]
fn issue11_the_limits_refuse_no_golden_or_embedded_profile() {
    for scenario in [
        ("cv-resnet18-auburn", "resnet18_auburn"),
        ("cv-resnet18-uniform", "resnet18_bellevue2"),
        ("cv-resnet50-hampton", "resnet50_hampton"),
        ("cv-vgg16-oxford", "vgg16_oxford"),
        ("nlp-bert-base-amazon_reviews", "bert-base"),
        ("nlp-distilbert-base-imdb", "distilbert-base"),
    ] {
        golden_tables(scenario.0, scenario.1);
    }
    let tmp = fresh_temp_dir("issue11-embedded");
    for (model, dataset) in [
        ("resnet18", "auburn"),
        ("resnet50", "auburn"),
        ("resnet101", "auburn"),
        ("vgg11", "auburn"),
        ("vgg13", "auburn"),
        ("vgg16", "auburn"),
        ("distilbert-base", "imdb"),
        ("bert-base", "imdb"),
        ("bert-large", "imdb"),
        ("gpt2-medium", "imdb"),
    ] {
        let w = apparate::workload::generate(model, dataset, 0.001, 0).expect("embedded workload");
        let dir = tmp.join(model);
        write_profiles(&dir, model, &w.tables).expect("write");
        let arch = if apparate::artifact::is_cv_arch(model) {
            format!("{model}_{dataset}")
        } else {
            model.to_string()
        };
        let read = read_latency_tables(&dir, &arch).expect(model);
        assert_eq!(read, w.tables, "{model}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

// ----------------------------------------------------------------------------------------
// Item 6: refusals name the file that holds the bad value.

/// An empty `batching_decision` list is refused naming the decision file (not the bootstrap
/// or simulation pickle); a stream too short for the first batch names the simulation pickle
/// and the decision file; an NLP profile with a zero root latency names the profile.
#[test]
fn issue11_refusals_name_the_file_holding_the_bad_value() {
    let tmp = fresh_temp_dir("issue11-blame");
    let out = tmp.join("out");
    let args = auburn_args(&auburn_data());
    let boot = auburn_data().join("bootstrap_pickles/bootstrap_auburn_resnet18.pickle");
    let sim = auburn_data().join("simulation_pickles/auburn_resnet18.pickle");

    let mut record = auburn_decisions();
    record.batching_decision.clear();
    let empty = tmp.join("empty.pickle");
    write_batch_decisions(&empty, &record).expect("write");
    let o = simulate_with(&args, Some(("--batch_decision_path", &empty)), &out);
    let line = one_error_line(&o, &out, "empty decisions");
    assert_names(
        &line,
        &[
            &empty.display().to_string(),
            "batching_decision",
            "empty list",
        ],
        "empty decisions",
    );
    for other in [&boot, &sim] {
        assert!(!line.contains(&other.display().to_string()), "{line}");
    }

    // Ten samples cannot fill a first batch of 64.
    let full = read_ramp_data(&sim).expect("golden sim");
    let short = RampData {
        conf: full.conf.iter().map(|c| c[..10].to_vec()).collect(),
        acc: full.acc.iter().map(|a| a[..10].to_vec()).collect(),
    };
    let short_sim = tmp.join("short_sim.pickle");
    write_ramp_data(&short_sim, &short).expect("write");
    let mut record = auburn_decisions();
    record.batching_decision = vec![64, 1];
    let big_first = tmp.join("big_first.pickle");
    write_batch_decisions(&big_first, &record).expect("write");
    let mut a = args.clone();
    for (flag, value) in &mut a {
        if flag == "--batch_decision_path" {
            *value = big_first.display().to_string();
        }
    }
    let o = simulate_with(&a, Some(("--simulation_pickle_path", &short_sim)), &out);
    let line = one_error_line(&o, &out, "nothing served");
    assert_names(
        &line,
        &[
            &short_sim.display().to_string(),
            &big_first.display().to_string(),
            "no sample was served",
        ],
        "nothing served",
    );
    assert!(!line.contains(&boot.display().to_string()), "{line}");

    // NLP: the root's vanilla latency at 0 in the bs-16 profile, through the binary.
    let nlp_data = golden_dir().join("nlp-distilbert-base-imdb/data");
    let nlp = golden_tables("nlp-distilbert-base-imdb", "distilbert-base");
    let dir = tmp.join("nlp-profiles");
    let zeroed: Vec<LatencyTable> = nlp
        .iter()
        .map(|(bs, t)| {
            let mut t = t.clone();
            if bs.get() == 16 {
                t.vanilla_ms = 0.0;
                for r in &mut t.ramps {
                    *r = apparate::sim::RampCost {
                        vanilla_up_to_ms: 0.0,
                        ramp_ms: 0.0,
                    };
                }
            }
            t
        })
        .collect();
    write_profiles(
        &dir,
        "distilbert-base",
        &LatencyTables::new(zeroed).expect("seven"),
    )
    .expect("write");
    let nlp_args: Vec<(String, String)> = vec![
        ("--dataset".into(), "imdb".into()),
        ("--arch".into(), "distilbert-base".into()),
        ("--batch_size".into(), "1".into()),
        ("--profile_dir".into(), dir.display().to_string()),
        (
            "--bootstrap_pickle_path".into(),
            nlp_data
                .join("bootstrap_pickles/bootstrap_imdb_distilbert-base.pickle")
                .display()
                .to_string(),
        ),
        (
            "--simulation_pickle_path".into(),
            nlp_data
                .join("simulation_pickles/imdb_distilbert-base.pickle")
                .display()
                .to_string(),
        ),
        ("--batching_scheme".into(), "uniform".into()),
    ];
    let o = simulate_with(&nlp_args, None, &out);
    let line = one_error_line(&o, &out, "nlp zero V");
    assert_names(
        &line,
        &[
            &dir.join("distilbert-base_16_earlyexit_profile.pickle")
                .display()
                .to_string(),
            "vanilla_latency_up_until_me",
            "above 0 ms",
        ],
        "nlp zero V",
    );
    assert!(!line.contains("bootstrap_imdb"), "{line}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A grid task on artifact inputs whose simulation pickle is too short for the first batch
/// fails naming the simulation pickle and the decision file (not only "simulating Apparate").
#[test]
fn issue11_a_task_refused_by_the_simulator_names_its_input_files() {
    use apparate::task::{run_task, TaskError};
    let tmp = fresh_temp_dir("issue11-task-blame");
    let data = tmp.join("data");
    copy_tree(&auburn_data(), &data);
    let sim = data.join("simulation_pickles/auburn_resnet18.pickle");
    let full = read_ramp_data(&sim).expect("golden sim");
    let short = RampData {
        conf: full.conf.iter().map(|c| c[..3].to_vec()).collect(),
        acc: full.acc.iter().map(|a| a[..3].to_vec()).collect(),
    };
    write_ramp_data(&sim, &short).expect("write");
    let decisions = data.join("batch_decisions/resnet18_1_fixed_30.pickle");
    let mut record = auburn_decisions();
    record.batching_decision = vec![4, 4];
    write_batch_decisions(&decisions, &record).expect("write");
    let spec = auburn_task_over(data.clone());
    let e = run_task(&spec, &tmp.join("out")).expect_err("refused");
    assert!(matches!(e, TaskError::Sim { .. }), "{e:?}");
    assert_names(
        &e.to_string(),
        &[
            &format!("{} and {}", sim.display(), decisions.display()),
            "no sample was served",
        ],
        "task nothing served",
    );
    assert!(!e.to_string().contains("bootstrap_auburn"), "{e}");
    let _ = std::fs::remove_dir_all(&tmp);
}
