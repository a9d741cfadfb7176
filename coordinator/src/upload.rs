//! The reception of an uploaded result and its checks: the file list the header announces
//! (exactly [`apparate::task::RESULT_FILES`] under the names the sweep stores them as,
//! [`apparate::storage::Storage::result_files`], plus [`apparate::task::LIVE_FILES`] for a live
//! task; plain names, no repeats), the chunks assembled into
//! `tasks/.tmp/<key>-<attempt>/`, each file's size and SHA-256 against the header's. The
//! handler that drives it ([`crate::service`]) fences the attempt, writes the manifest, runs
//! [`apparate::results::check_staged`] and hands the result to the group committer.

use apparate::results::ResultFile;
use apparate::sweep::digest::hex;
use proto::v1 as pb;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use tonic::Streaming;

/// Checks the file list of a result's header: at least one file, plain names, none repeated,
/// exactly the files a task produces ([`apparate::task::RESULT_FILES`]) as `storage` names them,
/// and for a `live` task also [`apparate::task::LIVE_FILES`]
/// ([`apparate::storage::Storage::task_files`]; the stored bytes travel and are committed
/// unchanged). `Err` is the reason the upload is not
/// a result of its task.
pub(crate) fn check_file_list(
    header: &pb::ResultHeader,
    storage: apparate::storage::Storage,
    live: bool,
) -> Result<(), String> {
    if header.files.is_empty() {
        return Err("a result without files".to_string());
    }
    let mut names = std::collections::HashSet::new();
    for f in &header.files {
        if !plain_file_name(&f.name) || !names.insert(f.name.as_str()) {
            return Err(format!("bad or repeated result file name {:?}", f.name));
        }
    }
    let expected_names = storage.task_files(live);
    let expected: std::collections::HashSet<&str> = expected_names.iter().copied().collect();
    if names != expected {
        let mut sent: Vec<&str> = names.into_iter().collect();
        sent.sort_unstable();
        return Err(format!(
            "files [{}], expected exactly [{}] (results stored {storage}{})",
            sent.join(", "),
            expected_names.join(", "),
            if live { ", a live task" } else { "" }
        ));
    }
    Ok(())
}

/// Whether `name` is a plain file name a result may carry (no separators, not hidden, not the
/// manifest, which the coordinator writes itself).
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name != apparate::results::MANIFEST_FILE
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

struct Incoming {
    path: PathBuf,
    file: std::fs::File,
    written: u64,
    hasher: Sha256,
}

/// Why a result was not received.
pub(crate) enum Refusal {
    /// The stream or the disk failed: the attempt may upload again.
    Transport(String),
    /// The bytes are not what the header announced: the attempt fails.
    Invalid(String),
}

/// Receives the files of a result into `staging`, checking sizes and digests, and returns the
/// manifest's file list (sorted by name, as `describe_files` lists them). The files are synced
/// later, by the group committer ([`crate::commit`]). `Err` is the reason the result is
/// rejected.
pub(crate) async fn receive_files(
    stream: &mut Streaming<pb::ResultChunk>,
    header: &pb::ResultHeader,
    staging: &Path,
) -> Result<Vec<ResultFile>, Refusal> {
    let disk =
        |p: &Path, e: &dyn std::fmt::Display| Refusal::Transport(format!("{}: {e}", p.display()));
    apparate::results::remove_any(staging).map_err(|e| Refusal::Transport(e.to_string()))?;
    std::fs::create_dir(staging).map_err(|e| disk(staging, &e))?;
    let mut files = Vec::with_capacity(header.files.len());
    for f in &header.files {
        // Names are checked by the caller: plain file names for a result, plain relative paths
        // for a backend-inputs folder (whose folders are created here).
        let path = staging.join(&f.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| disk(parent, &e))?;
        }
        let file = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| disk(&path, &e))?;
        files.push(Incoming {
            path,
            file,
            written: 0,
            hasher: Sha256::new(),
        });
    }
    loop {
        let msg = stream
            .message()
            .await
            .map_err(|e| Refusal::Transport(format!("stream broke: {e}")))?;
        let Some(msg) = msg else { break };
        let Some(pb::result_chunk::Chunk::Data(d)) = msg.chunk else {
            return Err(Refusal::Invalid("a second header".to_string()));
        };
        let (Some(meta), Some(inc)) = (
            header.files.get(d.file as usize),
            files.get_mut(d.file as usize),
        ) else {
            return Err(Refusal::Invalid(format!(
                "chunk for file #{} of {}",
                d.file,
                header.files.len()
            )));
        };
        inc.written += d.data.len() as u64;
        if inc.written > meta.size {
            return Err(Refusal::Invalid(format!(
                "{} is longer than announced ({} bytes)",
                meta.name, meta.size
            )));
        }
        inc.hasher.update(&d.data);
        inc.file
            .write_all(&d.data)
            .map_err(|e| disk(&inc.path, &e))?;
    }
    let mut listed = Vec::with_capacity(files.len());
    for (meta, inc) in header.files.iter().zip(files) {
        let digest = hex(inc.hasher.finalize().as_slice());
        if inc.written != meta.size || digest != meta.sha256 {
            return Err(Refusal::Invalid(format!(
                "{}: received {} bytes with SHA-256 {digest}, announced {} bytes with {}",
                meta.name, inc.written, meta.size, meta.sha256
            )));
        }
        listed.push(ResultFile {
            name: meta.name.clone(),
            bytes: inc.written,
            sha256: digest,
        });
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listed)
}
