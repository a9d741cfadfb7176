//! Issue #15: `analysis` reads results stored compressed. The small grid converted to the
//! zstd form (`batches.jsonl.zst`, `log.txt.zst`, manifests saying so) gives the same tables as
//! the plain grid, with no problem reported (the timelines read `batches.jsonl.zst`).

use crate::util::{copy_tree, fresh_temp_dir, small_grid, small_report};
use apparate::results::{describe_files, parse_manifest, STORED_MANIFEST_VERSION};
use apparate::storage::{Storage, COMPRESSED};
use std::path::{Path, PathBuf};

/// Rewrites every task of `results` in the zstd form, as a sweep with `--store zstd` writes it.
fn compress_all(results: &Path) {
    for entry in std::fs::read_dir(results.join("tasks")).expect("tasks") {
        let dir = entry.expect("entry").path();
        if dir.file_name().is_some_and(|n| n == ".tmp") {
            continue;
        }
        for name in COMPRESSED {
            let plain = std::fs::read(dir.join(name)).expect("plain file");
            let mut stored = Vec::new();
            Storage::Zstd
                .write_through(name, &mut stored, |w| w.write_all(&plain))
                .expect("compress");
            std::fs::write(dir.join(Storage::Zstd.stored_name(name)), stored).expect("write");
            std::fs::remove_file(dir.join(name)).expect("remove plain");
        }
        let mpath = dir.join("manifest.json");
        let mut m =
            parse_manifest(&mpath, &std::fs::read(&mpath).expect("manifest")).expect("manifest");
        m.storage = Storage::Zstd;
        m.version = STORED_MANIFEST_VERSION;
        m.files = describe_files(&dir).expect("files");
        let mut bytes = serde_json::to_vec_pretty(&m).expect("json");
        bytes.push(b'\n');
        std::fs::write(&mpath, bytes).expect("manifest");
    }
}

fn csv_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            csv_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "csv") {
            out.push(p);
        }
    }
}

#[test]
fn issue15_a_compressed_results_folder_gives_the_plain_folders_tables() {
    let tmp = fresh_temp_dir("issue15");
    let results = tmp.join("results");
    copy_tree(small_grid(), &results);
    compress_all(&results);
    let out = tmp.join("report");
    let outcome = analysis::build_report(&analysis::ReportOptions {
        results: results.clone(),
        out: Some(out.clone()),
        jobs: None,
    })
    .expect("report builds");
    assert_eq!(outcome.tasks, 56, "every compressed task is read");
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    let mut plain = Vec::new();
    csv_files(small_report(), &mut plain);
    assert!(!plain.is_empty());
    for p in plain {
        let rel = p.strip_prefix(small_report()).expect("under the report");
        assert_eq!(
            std::fs::read(out.join(rel)).expect("same table"),
            std::fs::read(&p).expect("table"),
            "{}",
            rel.display()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
