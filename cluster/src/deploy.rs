//! `cluster deploy`: the worker binary (and optionally the data directory) on every host,
//! at content-addressed paths, idempotently.
//!
//! Remote layout, inside a host's work directory:
//!
//! ```text
//! bin/worker-<sha256>          the worker binary (mode 755)
//! data/<sha256 of the tree>/   the artifact data directory, with .apparate-complete once checked
//! run/                         pid, log, token, command line (see `workers`)
//! ```

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::binary::{hex, sha256_file, BinaryInfo};
use crate::error::{Error, Result};
use crate::hosts::Host;
use crate::ssh::{key_values, quote, Input, SshConfig};

/// The marker written into a data directory once its digests were checked.
pub const DATA_COMPLETE_MARKER: &str = ".apparate-complete";

/// A local data directory: every regular file with its digest, and the tree's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataTree {
    /// The local directory.
    pub root: PathBuf,
    /// `(path relative to root, with '/' separators, sha256)`, sorted by path bytes.
    pub files: Vec<(String, String)>,
    /// SHA-256 over the `sha256sum`-style listing of `files`.
    pub digest: String,
}

impl DataTree {
    /// Walks `root` (symbolic links are not followed and not shipped as files).
    pub fn scan(root: &Path) -> Result<Self> {
        let mut files = Vec::new();
        walk(root, root, &mut files)?;
        files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut h = Sha256::new();
        h.update(listing(&files).as_bytes());
        Ok(Self {
            root: root.to_path_buf(),
            files,
            digest: hex(&h.finalize()),
        })
    }

    /// The remote directory, relative to the work directory.
    pub fn remote_dir(&self) -> String {
        format!("data/{}", self.digest)
    }
}

fn listing(files: &[(String, String)]) -> String {
    files.iter().map(|(p, d)| format!("{d}  ./{p}\n")).collect()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let ty = entry.file_type().map_err(io)?;
        if ty.is_dir() {
            walk(root, &path, out)?;
        } else if ty.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(|_| Error::Binary {
                    path: path.clone(),
                    message: "outside the data directory".into(),
                })?
                .to_string_lossy()
                .replace('\\', "/");
            if rel.contains('\n') {
                return Err(Error::Binary {
                    path,
                    message: "a file name with a newline cannot be checked".into(),
                });
            }
            if rel == DATA_COMPLETE_MARKER {
                continue;
            }
            out.push((rel, sha256_file(&path)?));
        } else {
            tracing::warn!(path = %path.display(), "not a regular file: not shipped");
        }
    }
    Ok(())
}

/// The worker binary's remote path, relative to the work directory.
pub fn remote_binary(bin: &BinaryInfo) -> String {
    format!("bin/worker-{}", bin.sha256)
}

/// What deploy did on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// It was already there with the right digest.
    AlreadyPresent,
    /// It was copied and checked.
    Copied,
}

/// What deploy did on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The binary.
    pub binary: Action,
    /// The data directory, if one was shipped.
    pub data: Option<Action>,
}

fn remote_digest(ssh: &SshConfig, host: &Host, path: &str) -> Result<Option<String>> {
    let script = format!(
        "cd {wd} 2>/dev/null || exit 0\nif [ -f {p} ]; then echo \"digest=$(sha256sum {p} | cut -d' ' -f1)\"; fi\n",
        wd = quote(&host.work_dir),
        p = quote(path)
    );
    let out = ssh.run_script(host, "digest check", &script)?;
    Ok(key_values(&out.stdout)
        .into_iter()
        .find(|(k, _)| *k == "digest")
        .map(|(_, v)| v.to_string()))
}

/// Puts the binary at its content-addressed path on `host` unless it is there already.
pub fn deploy_binary(ssh: &SshConfig, host: &Host, bin: &BinaryInfo) -> Result<Action> {
    let dest = remote_binary(bin);
    if remote_digest(ssh, host, &dest)?.as_deref() == Some(bin.sha256.as_str()) {
        tracing::info!(host = %host.name, %dest, "binary already present");
        return Ok(Action::AlreadyPresent);
    }
    let partial = format!("{dest}.partial");
    // One line, understood by sh, bash and csh alike (the login shell runs it).
    let command = format!(
        "mkdir -p {wd}/bin && cat > {wd}/{partial}",
        wd = quote(&host.work_dir),
        partial = quote(&partial)
    );
    ssh.run_remote(
        host,
        "upload of the worker binary",
        &command,
        Some(Input::File(bin.path.clone())),
        ssh.transfer_timeout,
    )?;
    let script = format!(
        "set -e\ncd {wd}\nd=$(sha256sum {partial} | cut -d' ' -f1)\necho \"digest=$d\"\n\
         if [ \"$d\" = {want} ]; then chmod 755 {partial}; mv -f {partial} {dest}; else rm -f {partial}; fi\n",
        wd = quote(&host.work_dir),
        partial = quote(&partial),
        dest = quote(&dest),
        want = bin.sha256,
    );
    let out = ssh.run_script(host, "check of the uploaded binary", &script)?;
    let found = key_values(&out.stdout)
        .into_iter()
        .find(|(k, _)| *k == "digest")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    if found != bin.sha256 {
        return Err(Error::Digest {
            host: host.name.clone(),
            path: dest,
            expected: bin.sha256.clone(),
            found,
        });
    }
    tracing::info!(host = %host.name, %dest, "binary copied");
    Ok(Action::Copied)
}

/// Puts the data directory at `data/<tree digest>` on `host` unless it is there (and was
/// checked) already: rsync into `<dir>.partial`, compare every file's digest, then rename.
pub fn deploy_data(ssh: &SshConfig, host: &Host, tree: &DataTree) -> Result<Action> {
    let dest = tree.remote_dir();
    let probe = format!(
        "cd {wd} 2>/dev/null || exit 0\n[ -f {dest}/{marker} ] && echo present=yes\nexit 0\n",
        wd = quote(&host.work_dir),
        dest = quote(&dest),
        marker = DATA_COMPLETE_MARKER
    );
    let out = ssh.run_script(host, "data directory check", &probe)?;
    if out.stdout.contains("present=yes") {
        tracing::info!(host = %host.name, %dest, "data directory already present");
        return Ok(Action::AlreadyPresent);
    }
    let partial = format!("{dest}.partial");
    ssh.run_script(
        host,
        "data directory preparation",
        &format!(
            "mkdir -p {wd}/{partial}\n",
            wd = quote(&host.work_dir),
            partial = quote(&partial)
        ),
    )?;
    ssh.rsync_dir(host, &tree.root, &format!("{}/{partial}", host.work_dir))?;
    let list = format!(
        "set -e\ncd {wd}/{partial}\nfind . -type f ! -name {marker} -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum\n",
        wd = quote(&host.work_dir),
        partial = quote(&partial),
        marker = DATA_COMPLETE_MARKER,
    );
    let out = ssh.run_script(host, "digest check of the data directory", &list)?;
    let expected = listing(&tree.files);
    if out.stdout != expected {
        let remote: Vec<&str> = out.stdout.lines().collect();
        let mismatch = expected
            .lines()
            .zip(remote.iter().chain(std::iter::repeat(&"(missing)")))
            .find(|(a, b)| a != *b)
            .map(|(a, b)| format!("expected `{a}`, found `{b}`"))
            .unwrap_or_else(|| {
                format!(
                    "{} extra files on the host",
                    remote.len().saturating_sub(tree.files.len())
                )
            });
        return Err(Error::Protocol {
            host: host.name.clone(),
            what: "digest check of the data directory".into(),
            message: mismatch,
        });
    }
    ssh.run_script(
        host,
        "data directory completion",
        &format!(
            "set -e\ncd {wd}\ntouch {partial}/{marker}\nrm -rf {dest}\nmv {partial} {dest}\n",
            wd = quote(&host.work_dir),
            partial = quote(&partial),
            dest = quote(&dest),
            marker = DATA_COMPLETE_MARKER,
        ),
    )?;
    tracing::info!(host = %host.name, %dest, files = tree.files.len(), "data directory copied and checked");
    Ok(Action::Copied)
}

/// Deploys to one host: binary, then data.
pub fn deploy_host(
    ssh: &SshConfig,
    host: &Host,
    bin: &BinaryInfo,
    data: Option<&DataTree>,
) -> Result<Deployed> {
    let binary = deploy_binary(ssh, host, bin)?;
    let data = data.map(|t| deploy_data(ssh, host, t)).transpose()?;
    Ok(Deployed { binary, data })
}
