//! How a task's result files are stored (issue #15): as written (`plain`) or with the two big
//! text files, `batches.jsonl` and `log.txt`, compressed with zstd while they are written
//! (`batches.jsonl.zst`, `log.txt.zst`; one zstd frame each, with its checksum, readable with
//! the standard `zstd -d`). The other four files are small or already compressed (Parquet) and
//! stay as they are.
//!
//! A sweep's results folder (`worker --local`, `coordinator sweep`) uses [`Storage::Zstd`] unless
//! told otherwise; `worker simulate --out` writes plain files unless told otherwise. A
//! manifest lists the stored names, with the stored bytes' sizes and SHA-256
//! (`crate::results`); [`open_result`] and [`read_result`] give any result file's contents,
//! whichever way it is stored.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The files of a result that [`Storage::Zstd`] compresses (their plain names, sorted).
pub const COMPRESSED: [&str; 2] = ["batches.jsonl", "log.txt"];

/// The suffix of a compressed file's name.
pub const ZSTD_SUFFIX: &str = ".zst";

/// zstd level: 3 (zstd's default) compresses this text 10-20x at several hundred MB/s on one
/// core, faster than the grid produces it. Single-threaded: the tasks already use every core.
pub const ZSTD_LEVEL: i32 = 3;

/// The plain result files ([`PLAIN_RESULT_FILES`]), as [`Storage::Zstd`] stores them
/// (still sorted by name).
const ZSTD_RESULT_FILES: [&str; 6] = [
    "baselines.json",
    "batches.jsonl.zst",
    "latencies.pickle",
    "log.txt.zst",
    "requests.parquet",
    "summary.json",
];

/// The files `crate::task::run_task` writes into a task's folder, sorted by name: a complete
/// result holds exactly these (plus the `manifest.json` written when it is committed), nothing
/// else; under their stored names ([`Storage::result_files`]) when stored compressed. Re-exported
/// as `crate::task::RESULT_FILES`; defined here so that this module imports nothing of `task`.
pub const PLAIN_RESULT_FILES: [&str; 6] = [
    "baselines.json",
    "batches.jsonl",
    "latencies.pickle",
    "log.txt",
    "requests.parquet",
    "summary.json",
];

/// The extra files a live task (`crate::task::TaskSpec::live`) writes beside
/// [`PLAIN_RESULT_FILES`], sorted by name, always plain: `serve.json` (how the run went: clock,
/// device, requests arrived, served and dropped, controller overhead, latencies far from the
/// profile) and `timing.jsonl` (one object per batch: what the profile predicted next to what
/// was measured). Re-exported as `crate::task::LIVE_FILES`.
pub const LIVE_FILES: [&str; 2] = ["serve.json", "timing.jsonl"];

/// How a task's result files are stored.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// Every file as written (the layout before issue #15, and `worker simulate`'s).
    #[default]
    Plain,
    /// [`COMPRESSED`] as zstd frames under `<name>.zst`.
    Zstd,
}

impl Storage {
    /// `plain` or `zstd` (the command-line and manifest spelling).
    pub fn name(self) -> &'static str {
        match self {
            Storage::Plain => "plain",
            Storage::Zstd => "zstd",
        }
    }

    /// The storage named `name` (`plain` or `zstd`).
    pub fn parse(name: &str) -> Option<Storage> {
        match name {
            "plain" => Some(Storage::Plain),
            "zstd" => Some(Storage::Zstd),
            _ => None,
        }
    }

    /// Whether this is [`Storage::Plain`] (for `skip_serializing_if`).
    pub fn is_plain(&self) -> bool {
        *self == Storage::Plain
    }

    /// The names of a complete result's files stored this way, sorted.
    pub fn result_files(self) -> [&'static str; 6] {
        match self {
            Storage::Plain => PLAIN_RESULT_FILES,
            Storage::Zstd => ZSTD_RESULT_FILES,
        }
    }

    /// The names of the files a complete result of a task holds stored this way, sorted:
    /// [`Storage::result_files`], and for a live task (`live`) also
    /// [`LIVE_FILES`] (always plain).
    pub fn task_files(self, live: bool) -> Vec<&'static str> {
        let mut names = self.result_files().to_vec();
        if live {
            names.extend(LIVE_FILES);
            names.sort_unstable();
        }
        names
    }

    /// The name under which the file `plain` (a plain result file name) is stored.
    pub fn stored_name(self, plain: &str) -> String {
        if self == Storage::Zstd && COMPRESSED.contains(&plain) {
            format!("{plain}{ZSTD_SUFFIX}")
        } else {
            plain.to_string()
        }
    }

    /// The storage whose names these are: [`Storage::Zstd`] when any ends in `.zst`.
    pub fn of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Storage {
        if names.into_iter().any(|n| n.ends_with(ZSTD_SUFFIX)) {
            Storage::Zstd
        } else {
            Storage::Plain
        }
    }

    /// Runs `body` on a writer that stores what it is given as the file `plain` must be stored
    /// (through a zstd encoder, finished at the end, when `plain` is compressed), over `w`.
    pub fn write_through(
        self,
        plain: &str,
        w: &mut dyn Write,
        body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if self == Storage::Plain || !COMPRESSED.contains(&plain) {
            return body(w);
        }
        let mut enc = zstd::stream::write::Encoder::new(w, ZSTD_LEVEL)?;
        enc.include_checksum(true)?;
        // Writers make many small writes (a JSON value at a time): buffer them before zstd.
        let mut buffered = std::io::BufWriter::with_capacity(256 * 1024, enc);
        body(&mut buffered)?;
        let enc = buffered.into_inner().map_err(|e| e.into_error())?;
        enc.finish()?;
        Ok(())
    }
}

/// The command-line spelling (`--store plain|zstd`), through [`Storage::parse`].
impl std::str::FromStr for Storage {
    type Err = String;

    fn from_str(name: &str) -> Result<Storage, String> {
        Storage::parse(name).ok_or_else(|| format!("{name:?}: expected plain or zstd"))
    }
}

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The plain name of a stored file name (`log.txt.zst` → `log.txt`; others unchanged).
pub fn plain_name(stored: &str) -> &str {
    match stored.strip_suffix(ZSTD_SUFFIX) {
        Some(p) if COMPRESSED.contains(&p) => p,
        _ => stored,
    }
}

/// Where the file `name` of the result folder `dir` is stored, and whether it is compressed:
/// `name` may be the plain name (`log.txt`: `log.txt` if present, else `log.txt.zst`) or the
/// stored one (`log.txt.zst`). `None` when neither exists.
pub fn locate(dir: &Path, name: &str) -> Option<(PathBuf, bool)> {
    let plain = plain_name(name);
    let compressed = plain != name;
    if compressed {
        let p = dir.join(name);
        return std::fs::symlink_metadata(&p).is_ok().then_some((p, true));
    }
    let p = dir.join(plain);
    if std::fs::symlink_metadata(&p).is_ok() {
        return Some((p, false));
    }
    if COMPRESSED.contains(&plain) {
        let z = dir.join(format!("{plain}{ZSTD_SUFFIX}"));
        if std::fs::symlink_metadata(&z).is_ok() {
            return Some((z, true));
        }
    }
    None
}

/// A reader of the contents of a stored file at `path` (decompressing when `compressed`). A
/// link is refused, never followed.
pub fn open_stored(path: &Path, compressed: bool) -> std::io::Result<Box<dyn Read>> {
    let m = std::fs::symlink_metadata(path)?;
    if !m.file_type().is_file() {
        return Err(std::io::Error::other(
            "expected a regular file, found a symbolic link or something else",
        ));
    }
    let file = std::fs::File::open(path)?;
    if compressed {
        Ok(Box::new(zstd::stream::read::Decoder::new(file)?))
    } else {
        Ok(Box::new(std::io::BufReader::new(file)))
    }
}

/// The contents of the result file `name` (plain or stored name) of the folder `dir`, as a
/// reader, whichever way it is stored. Returns the stored file's path with it.
pub fn open_result(dir: &Path, name: &str) -> std::io::Result<(PathBuf, Box<dyn Read>)> {
    let (path, compressed) = locate(dir, name).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{}: no such result file (nor a compressed {name}{ZSTD_SUFFIX})",
                dir.join(name).display()
            ),
        )
    })?;
    let r = open_stored(&path, compressed)?;
    Ok((path, r))
}

/// The whole contents of the result file `name` of `dir` (see [`open_result`]), at most `max`
/// bytes (more is an error: a compressed file is never expanded without bound).
pub fn read_result(dir: &Path, name: &str, max: u64) -> std::io::Result<(PathBuf, Vec<u8>)> {
    let (path, r) = open_result(dir, name)?;
    let mut out = Vec::new();
    r.take(max.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "{}: more than {max} bytes once decompressed",
            path.display()
        )));
    }
    Ok((path, out))
}

/// The last `max` bytes of what `r` yields, reading at most `limit` bytes in all (more is an
/// error). Memory stays within about `2 * max`.
pub fn read_tail_of(mut r: impl Read, max: usize, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n as u64;
        if total > limit {
            return Err(std::io::Error::other(format!(
                "more than {limit} bytes once decompressed"
            )));
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * max {
            tail.drain(..tail.len() - max);
        }
    }
    if tail.len() > max {
        tail.drain(..tail.len() - max);
    }
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_list_is_the_tasks_and_the_stored_list_renames_only_the_compressed_files() {
        assert_eq!(PLAIN_RESULT_FILES, crate::task::RESULT_FILES);
        for (plain, stored) in PLAIN_RESULT_FILES.iter().zip(ZSTD_RESULT_FILES) {
            assert_eq!(Storage::Zstd.stored_name(plain), stored);
            assert_eq!(plain_name(stored), *plain);
            assert_eq!(Storage::Plain.stored_name(plain), *plain);
        }
        assert_eq!(Storage::of_names(ZSTD_RESULT_FILES), Storage::Zstd);
        assert_eq!(Storage::of_names(PLAIN_RESULT_FILES), Storage::Plain);
        assert_eq!(plain_name("summary.json.zst"), "summary.json.zst");
        assert_eq!(Storage::parse("zstd"), Some(Storage::Zstd));
        assert_eq!(Storage::parse("gzip"), None);
    }

    #[test]
    fn what_is_written_through_zstd_reads_back_byte_for_byte_and_the_tail_is_the_end() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i} of the log\n").into_bytes())
            .collect();
        let mut stored = Vec::new();
        Storage::Zstd
            .write_through("log.txt", &mut stored, |w| w.write_all(&text))
            .unwrap();
        assert!(stored.len() * 10 < text.len(), "{} bytes", stored.len());
        let back = zstd::stream::decode_all(&stored[..]).unwrap();
        assert_eq!(back, text);
        let dec = zstd::stream::read::Decoder::new(&stored[..]).unwrap();
        let tail = read_tail_of(dec, 100, u64::MAX).unwrap();
        assert_eq!(tail, text[text.len() - 100..]);
        let dec = zstd::stream::read::Decoder::new(&stored[..]).unwrap();
        assert!(read_tail_of(dec, 100, 1000).is_err(), "the limit holds");
        // A file that is not compressed passes through unchanged.
        let mut plain = Vec::new();
        Storage::Zstd
            .write_through("summary.json", &mut plain, |w| w.write_all(b"{}"))
            .unwrap();
        assert_eq!(plain, b"{}");
    }
}
