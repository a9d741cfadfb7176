//! What a worker binary needs of a host (architecture, glibc) and its content digest.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A local binary to ship, with what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryInfo {
    /// The local file.
    pub path: PathBuf,
    /// SHA-256 of its content, lower-case hex.
    pub sha256: String,
    /// The machine it is built for, as `uname -m` prints it (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// The newest `GLIBC_x.y` symbol version it references; `None` for a static or non-glibc
    /// binary.
    pub min_glibc: Option<(u32, u32)>,
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a local file, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn elf_arch(header: &[u8]) -> Option<&'static str> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return None;
    }
    let machine = match header[5] {
        1 => u16::from_le_bytes([header[18], header[19]]),
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => return None,
    };
    Some(match machine {
        0x3e => "x86_64",
        0xb7 => "aarch64",
        0x03 => "i686",
        0x28 => "armv7l",
        0xf3 => "riscv64",
        0x15 => "ppc64le",
        _ => "unknown",
    })
}

/// The newest `GLIBC_x.y[.z]` version string in `bytes`. The symbol versions a dynamically
/// linked glibc binary needs are NUL-terminated strings of its `.dynstr` section, so only
/// strings that start right after a NUL are looked at.
pub fn max_glibc_version(bytes: &[u8]) -> Option<(u32, u32)> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|s| s.strip_prefix(b"GLIBC_"))
        .filter_map(|v| parse_version(std::str::from_utf8(v).ok()?))
        .max()
}

/// Parses `2.36` (or `2.36.1`, or the last word of `ldd (GNU libc) 2.36`) to `(2, 36)`.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let word = text.split_whitespace().last()?;
    let mut parts = word.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((major, minor))
}

/// Inspects a local binary: digest, architecture, glibc requirement.
pub fn inspect(path: &Path) -> Result<BinaryInfo> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let arch = elf_arch(&bytes).ok_or_else(|| Error::Binary {
        path: path.to_path_buf(),
        message: "not an ELF executable".into(),
    })?;
    Ok(BinaryInfo {
        path: path.to_path_buf(),
        sha256: hex(&Sha256::digest(&bytes)),
        arch: arch.to_string(),
        min_glibc: max_glibc_version(&bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_are_compared_numerically() {
        let blob = b"xx\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.9\0GLIBC_PRIVATE\0";
        assert_eq!(max_glibc_version(blob), Some((2, 34)));
        assert_eq!(max_glibc_version(b"no versions"), None);
    }

    #[test]
    fn versions_parse_from_getconf_and_ldd() {
        assert_eq!(parse_version("glibc 2.36"), Some((2, 36)));
        assert_eq!(
            parse_version("ldd (Ubuntu GLIBC 2.35-0ubuntu3.8) 2.35"),
            Some((2, 35))
        );
        assert_eq!(parse_version("musl libc"), None);
    }

    #[test]
    fn this_test_binary_is_inspected() {
        let exe = std::env::current_exe().expect("test binary path");
        let info = inspect(&exe).expect("inspect");
        assert_eq!(info.arch, std::env::consts::ARCH);
        assert_eq!(info.sha256.len(), 64);
    }
}
