//! Issue #11, item 2: no writer of the `worker` binary follows a symbolic link inside a folder
//! the user gives. Files are written to a fresh temporary file and renamed into place (a link
//! at the destination, or at any name a writer used to use as its temporary, is replaced or left
//! alone, never written through); folders created inside the user's folder are refused when
//! they are links, with a message naming them.

use crate::cli_simulate::golden_args;
use crate::util::{fresh_temp_dir, golden_dir, write_one_task_spec};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn worker(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("worker runs")
}

const PRECIOUS: &str = "precious: must never be written through a link\n";

/// A file outside the output folder that links may point to.
fn victim(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, PRECIOUS).expect("victim");
    p
}

fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).expect("symlink");
}

fn assert_untouched(victims: &[PathBuf]) {
    for v in victims {
        assert_eq!(
            std::fs::read_to_string(v).expect("victim"),
            PRECIOUS,
            "{} was written through a link",
            v.display()
        );
    }
}

fn assert_regular(path: &Path) {
    let m = std::fs::symlink_metadata(path).expect("written");
    assert!(
        m.file_type().is_file(),
        "{} is a regular file, not a link",
        path.display()
    );
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn issue11_simulate_replaces_links_in_its_out_and_never_writes_through_them() {
    let base = fresh_temp_dir("issue11-simulate");
    let out = base.join("out");
    std::fs::create_dir(&out).expect("out");
    let mut victims = Vec::new();
    // Links at the result names and at the temporary names the writers used before the fix.
    for name in [
        "summary.json",
        "summary.json.tmp",
        "log.txt",
        "requests.parquet.tmp",
        "latencies.pickle.tmp",
        "batches.jsonl.tmp",
    ] {
        let v = victim(&base, &format!("victim-{name}"));
        link(&v, &out.join(name));
        victims.push(v);
    }
    let mut args: Vec<std::ffi::OsString> = golden_args(&golden_dir().join("cv-resnet18-auburn"))
        .into_iter()
        .map(Into::into)
        .collect();
    args.push("--out".into());
    args.push(out.clone().into());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let o = worker(&refs);
    assert!(o.status.success(), "{}", text(&o));
    assert_untouched(&victims);
    for name in [
        "summary.json",
        "batches.jsonl",
        "latencies.pickle",
        "requests.parquet",
        "log.txt",
    ] {
        assert_regular(&out.join(name));
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn issue11_batching_replaces_a_link_at_its_out() {
    let base = fresh_temp_dir("issue11-batching");
    let out = base.join("decisions.json");
    let victims = [victim(&base, "victim-a"), victim(&base, "victim-b")];
    link(&victims[0], &out);
    link(&victims[1], &base.join("decisions.json.tmp"));
    let trace = golden_dir().join("batching-clockwork/trace.json");
    let o = worker(&[
        "batching".as_ref(),
        "--trace".as_ref(),
        trace.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_untouched(&victims);
    assert_regular(&out);
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn issue11_gen_data_refuses_a_linked_subfolder_naming_it() {
    let base = fresh_temp_dir("issue11-gen-data");
    let out = base.join("data");
    let elsewhere = base.join("elsewhere");
    std::fs::create_dir_all(&out).expect("out");
    std::fs::create_dir_all(&elsewhere).expect("elsewhere");
    let linked = out.join("bootstrap_pickles");
    link(&elsewhere, &linked);
    let o = worker(&[
        "gen-data".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--scale".as_ref(),
        "0.01".as_ref(),
        "--models".as_ref(),
        "resnet18".as_ref(),
        "--datasets".as_ref(),
        "auburn".as_ref(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&linked.display().to_string()) && stderr.contains("symbolic link"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_dir(&elsewhere).expect("elsewhere").count(),
        0,
        "nothing written behind the link"
    );
    let _ = std::fs::remove_dir_all(&base);
}

fn local(spec: &Path, out: &Path) -> Output {
    worker(&[
        "--local".as_ref(),
        "--no-report".as_ref(),
        "--jobs".as_ref(),
        "1".as_ref(),
        "--spec".as_ref(),
        spec.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ])
}

#[test]
fn issue11_worker_local_replaces_linked_files_and_refuses_linked_folders() {
    let base = fresh_temp_dir("issue11-local");
    let spec = write_one_task_spec(&base);
    let out = base.join("results");
    std::fs::create_dir(&out).expect("out");
    // Files: links at the plan, the summary lines and their old temporary names are replaced.
    let mut victims = Vec::new();
    for name in [
        "sweep.json",
        "sweep.json.tmp",
        "output_cv.txt",
        "output_cv.txt.tmp",
    ] {
        let v = victim(&base, &format!("victim-{name}"));
        link(&v, &out.join(name));
        victims.push(v);
    }
    let o = local(&spec, &out);
    assert!(o.status.success(), "{}", text(&o));
    assert_untouched(&victims);
    assert_regular(&out.join("sweep.json"));
    assert_regular(&out.join("output_cv.txt"));

    // The lock file is written in place: a link there is refused, its target untouched.
    let out = base.join("results-lock");
    std::fs::create_dir(&out).expect("out");
    let v = victim(&base, "victim-lock");
    link(&v, &out.join(".lock"));
    let o = local(&spec, &out);
    assert!(!o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&out.join(".lock").display().to_string())
            && stderr.contains("symbolic link"),
        "{}",
        text(&o)
    );
    assert_untouched(&[v]);

    // Folders inside the results directory: a link is refused and nothing lands behind it.
    for folder in ["tasks", "failures"] {
        let out = base.join(format!("results-{folder}"));
        let elsewhere = base.join(format!("elsewhere-{folder}"));
        std::fs::create_dir(&out).expect("out");
        std::fs::create_dir(&elsewhere).expect("elsewhere");
        link(&elsewhere, &out.join(folder));
        let o = local(&spec, &out);
        assert!(!o.status.success(), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(&out.join(folder).display().to_string())
                && stderr.contains("symbolic link"),
            "{}",
            text(&o)
        );
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("elsewhere").count(),
            0,
            "nothing written behind {folder}"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
