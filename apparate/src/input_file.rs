//! Opening and reading input files safely: only regular files, never more than they hold.
//!
//! Every reader of a user-named input (artifact pickles, profile folders, decision files,
//! sweep specs, trace files, Azure CSVs, input digests) opens it here. A path that is not a
//! regular file after following links (`/dev/zero`, `/dev/urandom`, a FIFO, a socket, a
//! directory) is refused from its metadata, before it is opened, so nothing blocks on a FIFO
//! and nothing grows without bound on a device. A regular file is read up to the size it had
//! when opened (memory is reserved from that size, and fallibly), and files larger than
//! [`MAX_INPUT_BYTES`] are refused.
//!
//! Errors are [`std::io::Error`]s (kind `InvalidInput`) whose text is one line; the callers'
//! error types name the path.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The largest input file read (4 GiB). The artifact's largest files, paper-scale simulation
/// pickles, are well under 100 MB; decoding holds several times the file size in memory.
pub const MAX_INPUT_BYTES: u64 = 4 << 30;

/// What a path that is not a regular file is, for messages.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Checks that `path` is a regular file (after following links) of at most
/// [`MAX_INPUT_BYTES`], from its metadata alone, and returns its size. A missing path gives
/// the operating system's `NotFound` error.
pub fn check_regular(path: &Path) -> io::Result<u64> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(invalid(format!(
            "it is {}, not a regular file",
            kind_of(&meta)
        )));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(invalid(format!(
            "it holds {} bytes; input files are limited to {MAX_INPUT_BYTES} bytes (4 GiB)",
            meta.len()
        )));
    }
    Ok(meta.len())
}

/// Opens `path` for reading if it is a regular file ([`check_regular`]); returns the file and
/// its size. The check runs on the path's metadata before the file is opened, and again on the
/// opened file (it may have been replaced in between).
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    check_regular(path)?;
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_INPUT_BYTES {
        return Err(invalid(format!(
            "it changed while being opened and is no longer a regular file of at most {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok((file, meta.len()))
}

/// Reads a whole regular file ([`open_regular`]): at most the size it had when opened, into
/// memory reserved for that size (an error, not an abort, when it cannot be had).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    let mut bytes = Vec::new();
    let too_large = || {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot reserve {len} bytes of memory to read it"),
        )
    };
    let want = usize::try_from(len).map_err(|_| too_large())?;
    bytes.try_reserve_exact(want).map_err(|_| too_large())?;
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read_regular(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not valid UTF-8 text"))
}
