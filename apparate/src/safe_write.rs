//! Writing into folders the user gives, never through a symbolic link (issue #11).
//!
//! Every file our binaries write into a user's folder goes through [`write_atomic`] (or
//! [`write_atomic_file`]): the bytes go to a fresh temporary file, created exclusively
//! (`O_CREAT | O_EXCL`, which never follows a link) in the same folder, and the file is renamed
//! over the destination. A symbolic link at the destination is therefore *replaced*, never
//! followed: its target is left untouched.
//!
//! Folders we create inside a user's folder (`report/`, `tasks/`, ...) go through
//! [`real_dir`]: created when missing, refused when they are a symbolic link (or not a
//! folder), with an error naming them. The folder the user names on the command line is the
//! user's choice and is used as it resolves.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether to make the new file durable before and after the rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Flush our buffers only (the rename is atomic for readers, not crash-safe).
    Flush,
    /// `fsync` the file before the rename and its folder after it.
    Sync,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn file_name(path: &Path) -> std::io::Result<&std::ffi::OsStr> {
    path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "expected a file name at the end of the path",
        )
    })
}

/// The folder `path` lives in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates a new, empty temporary file beside `path` (same folder), exclusively: a name that
/// exists in any form, a link included, is skipped. Returns its path and the open file.
pub fn create_temp_beside(path: &Path) -> std::io::Result<(PathBuf, File)> {
    let name = file_name(path)?;
    let dir = parent_of(path);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}-{n}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match File::options().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Refuses a destination that is a folder (a rename would fail with a less clear message).
fn check_destination(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(std::io::Error::other(
            "is a folder, expected a file (or nothing) there",
        )),
        _ => Ok(()),
    }
}

/// Renames `tmp` over `path` (replacing a link at `path`, never following it) and, with
/// [`Durability::Sync`], flushes the folder. Removes `tmp` when the rename fails.
fn rename_into_place(tmp: &Path, path: &Path, durability: Durability) -> std::io::Result<()> {
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    if durability == Durability::Sync {
        File::open(parent_of(path))?.sync_all()?;
    }
    Ok(())
}

/// Writes `path` through a temporary file in the same folder and renames it into place. A
/// symbolic link at `path` is replaced, never followed; the temporary file is removed when
/// anything fails.
pub fn write_atomic(
    path: &Path,
    durability: Durability,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_atomic_file(path, durability, |file| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        body(&mut w)?;
        w.flush()
    })
}

/// As [`write_atomic`], for writers that need the [`File`] itself (e.g. a Parquet encoder that
/// takes ownership of it: `body` gets a clone of the handle).
pub fn write_atomic_file(
    path: &Path,
    durability: Durability,
    body: impl FnOnce(File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    check_destination(path)?;
    let (tmp, file) = create_temp_beside(path)?;
    let written = (|| {
        body(file.try_clone()?)?;
        if durability == Durability::Sync {
            file.sync_all()?;
        }
        Ok(())
    })();
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    rename_into_place(&tmp, path, durability)
}

/// `bytes` into `path`, as [`write_atomic`].
pub fn write_bytes(path: &Path, durability: Durability, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(path, durability, |w| w.write_all(bytes))
}

/// Makes sure `dir` is a real folder: creates it when missing (its parent must exist), refuses
/// a symbolic link or anything that is not a folder. The error's text says what was found; callers name the path.
pub fn real_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::other(LINK_REFUSED)),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(std::io::Error::other("exists and is not a folder")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(dir) {
            Ok(()) => Ok(()),
            // Created meanwhile by someone else: check what it is.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => real_dir_exists(dir),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn real_dir_exists(dir: &Path) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(dir)?;
    if m.is_dir() && !m.file_type().is_symlink() {
        Ok(())
    } else {
        Err(std::io::Error::other(LINK_REFUSED))
    }
}

/// A fresh, private folder created inside `parent` (for writers that can only write to a path,
/// e.g. a plotting library): nothing else can have placed a link in it. Removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `parent/.tmp-<pid>-<n>/` (mode 0700 on Unix), skipping names that exist.
    pub fn new_in(parent: &Path) -> std::io::Result<TempDir> {
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!(".tmp-{}-{n}", std::process::id()));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            match builder.create(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames `self.path()/name` over `dest` (a link at `dest` is replaced, never followed).
    pub fn publish(&self, name: &str, dest: &Path, durability: Durability) -> std::io::Result<()> {
        check_destination(dest)?;
        let src = self.path.join(name);
        if durability == Durability::Sync {
            File::open(&src)?.sync_all()?;
        }
        rename_into_place(&src, dest, durability)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Opens `path` for reading and writing, creating it when missing, without following a link
/// at `path` (`O_NOFOLLOW`): for lock files, which are written in place.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut opts = File::options();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The flag's bits fit an i32 on every platform (`open(2)` takes an int).
        opts.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let is_link = || std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !cfg!(unix) && is_link() {
        return Err(std::io::Error::other(LINK_REFUSED));
    }
    opts.open(path).map_err(|e| {
        if is_link() {
            std::io::Error::other(LINK_REFUSED)
        } else {
            e
        }
    })
}

/// The text of a refused link (callers put the path in front).
pub const LINK_REFUSED: &str =
    "is a symbolic link; refusing to write through it (remove it or give another folder)";
