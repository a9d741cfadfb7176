//! `cluster preflight`: can each host run a worker?

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::binary::{parse_version, BinaryInfo};
use crate::hosts::Host;
use crate::ssh::{key_values, quote, SshConfig};

/// What preflight checks against.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// The worker binary (architecture, glibc); unchecked when `None`.
    pub binary: Option<BinaryInfo>,
    /// The coordinator's address as workers will dial it; unchecked when `None`.
    pub coordinator: Option<SocketAddr>,
    /// Free disk space needed in the work directory, in bytes.
    pub min_free_bytes: u64,
    /// Whether a host without a GPU is unusable (the simulator does not need one).
    pub require_gpu: bool,
    /// Whether `rsync` must be present (when a data directory is shipped).
    pub require_rsync: bool,
}

/// What one host looks like, and whether it is usable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// The host's name.
    pub host: String,
    /// Whether ssh worked.
    pub ssh_ok: bool,
    /// `uname -m`.
    pub arch: Option<String>,
    /// The glibc version.
    pub glibc: Option<(u32, u32)>,
    /// Online cores.
    pub cores: Option<u32>,
    /// Free bytes in the work directory's file system.
    pub free_bytes: Option<u64>,
    /// `nvidia-smi -L` lines (empty: no GPU, or no nvidia-smi).
    pub gpus: Vec<String>,
    /// Whether the coordinator's address answered a TCP connect (`None`: not checked).
    pub coordinator_reachable: Option<bool>,
    /// Why the host is unusable; empty when it is usable.
    pub problems: Vec<String>,
}

impl NodeReport {
    /// Whether a worker can run there.
    pub fn usable(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The script run on every host. It prints `key=value` lines and never fails on a missing
/// tool, so that one ssh round trip tells everything.
fn script(host: &Host, req: &Requirements) -> String {
    let (chost, cport) = match req.coordinator {
        Some(a) => (a.ip().to_string(), a.port().to_string()),
        None => (String::new(), String::new()),
    };
    format!(
        r#"WD={wd}
CHOST={chost}
CPORT={cport}
echo "ssh=ok"
echo "arch=$(uname -m)"
g=$(getconf GNU_LIBC_VERSION 2>/dev/null)
[ -n "$g" ] || g=$(ldd --version 2>&1 | head -n 1)
echo "glibc=$g"
echo "cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
if mkdir -p "$WD" 2>/dev/null; then echo "workdir=ok"; else echo "workdir=cannot create $WD"; fi
echo "free_kb=$(df -Pk "$WD" 2>/dev/null | awk 'NR==2 {{print $4}}')"
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L 2>/dev/null | sed 's/^/gpu=/'; fi
command -v setsid >/dev/null 2>&1 && echo "setsid=yes" || echo "setsid=no"
command -v sha256sum >/dev/null 2>&1 && echo "sha256sum=yes" || echo "sha256sum=no"
command -v rsync >/dev/null 2>&1 && echo "rsync=yes" || echo "rsync=no"
if [ -n "$CHOST" ]; then
  if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then
    if timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$CHOST" "$CPORT" 2>/dev/null; then echo "coordinator=ok"; else echo "coordinator=fail"; fi
  elif command -v nc >/dev/null 2>&1; then
    if nc -z -w 5 "$CHOST" "$CPORT" 2>/dev/null; then echo "coordinator=ok"; else echo "coordinator=fail"; fi
  else
    echo "coordinator=untestable (neither bash+timeout nor nc)"
  fi
fi
"#,
        wd = quote(&host.work_dir),
    )
}

/// Turns the script's output into a report, judged against `req`.
pub fn judge(host: &Host, output: &str, req: &Requirements) -> NodeReport {
    let mut r = NodeReport {
        host: host.name.clone(),
        ..NodeReport::default()
    };
    let mut workdir = None;
    let mut tools = Vec::new();
    let mut coordinator_text = None;
    for (k, v) in key_values(output) {
        match k {
            "ssh" => r.ssh_ok = v == "ok",
            "arch" => r.arch = Some(v.to_string()).filter(|s| !s.is_empty()),
            "glibc" => r.glibc = parse_version(v),
            "cores" => r.cores = v.parse().ok(),
            "workdir" => workdir = Some(v.to_string()),
            "free_kb" => r.free_bytes = v.parse::<u64>().ok().map(|kb| kb * 1024),
            "gpu" => r.gpus.push(v.to_string()),
            "setsid" | "sha256sum" | "rsync" => tools.push((k, v == "yes")),
            "coordinator" => coordinator_text = Some(v.to_string()),
            _ => {}
        }
    }
    let p = &mut r.problems;
    if !r.ssh_ok {
        p.push("the remote script printed nothing".into());
        return r;
    }
    if let Some(bin) = &req.binary {
        match &r.arch {
            Some(a) if *a == bin.arch => {}
            Some(a) => p.push(format!(
                "architecture {a}, the worker is built for {}",
                bin.arch
            )),
            None => p.push("architecture unknown".into()),
        }
        if let Some((maj, min)) = bin.min_glibc {
            match r.glibc {
                Some(v) if v >= (maj, min) => {}
                Some((a, b)) => p.push(format!("glibc {a}.{b}, the worker needs {maj}.{min}")),
                None => p.push(format!("no glibc found, the worker needs {maj}.{min}")),
            }
        }
    }
    if r.cores.is_none() {
        p.push("core count unknown".into());
    }
    match workdir.as_deref() {
        Some("ok") => {}
        Some(msg) => p.push(msg.to_string()),
        None => p.push("work directory not checked".into()),
    }
    match r.free_bytes {
        Some(b) if b >= req.min_free_bytes => {}
        Some(b) => p.push(format!(
            "{} free in the work directory, {} needed",
            human_bytes(b),
            human_bytes(req.min_free_bytes)
        )),
        None => p.push("free disk space unknown".into()),
    }
    if req.require_gpu && r.gpus.is_empty() {
        p.push("no GPU (nvidia-smi -L lists none)".into());
    }
    for (tool, present) in tools {
        let needed = match tool {
            "rsync" => req.require_rsync,
            _ => true,
        };
        if needed && !present {
            p.push(format!("`{tool}` is not installed"));
        }
    }
    if let Some(addr) = req.coordinator {
        match coordinator_text.as_deref() {
            Some("ok") => r.coordinator_reachable = Some(true),
            Some("fail") => {
                r.coordinator_reachable = Some(false);
                p.push(format!("coordinator {addr} is not reachable from the node"));
            }
            Some(other) => p.push(format!("coordinator {addr}: {other}")),
            None => p.push(format!("coordinator {addr} not checked")),
        }
    }
    r
}

/// Checks one host.
pub fn check_host(ssh: &SshConfig, host: &Host, req: &Requirements) -> NodeReport {
    match ssh.run_script(host, "preflight", &script(host, req)) {
        Ok(out) => judge(host, &out.stdout, req),
        Err(e) => NodeReport {
            host: host.name.clone(),
            problems: vec![reason(&e)],
            ..NodeReport::default()
        },
    }
}

/// A one-line reason for a table, from an error (the host's name is in the table already).
pub(crate) fn reason(e: &crate::error::Error) -> String {
    use crate::error::Error;
    match e {
        Error::Ssh { stderr, .. } => {
            let last = stderr.lines().last().unwrap_or("").trim();
            format!("ssh failed: {last}")
        }
        other => other.to_string(),
    }
}

/// Checks every host in parallel; reports in host order.
pub fn preflight(ssh: &SshConfig, hosts: &[Host], req: &Requirements) -> Vec<NodeReport> {
    crate::parallel::each(hosts, |h| check_host(ssh, h, req))
}

/// `1.5 GiB`-style sizes.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The reports as an aligned text table, one row per host.
pub fn table(reports: &[NodeReport]) -> String {
    let mut rows = vec![[
        "NODE", "SSH", "ARCH", "GLIBC", "CORES", "FREE", "GPUS", "COORD", "STATUS",
    ]
    .map(String::from)];
    for r in reports {
        let dash = || "-".to_string();
        rows.push([
            r.host.clone(),
            if r.ssh_ok { "ok" } else { "FAIL" }.into(),
            r.arch.clone().unwrap_or_else(dash),
            r.glibc.map_or_else(dash, |(a, b)| format!("{a}.{b}")),
            r.cores.map_or_else(dash, |c| c.to_string()),
            r.free_bytes.map_or_else(dash, human_bytes),
            if r.ssh_ok {
                r.gpus.len().to_string()
            } else {
                dash()
            },
            match r.coordinator_reachable {
                Some(true) => "ok".into(),
                Some(false) => "FAIL".into(),
                None => dash(),
            },
            if r.usable() {
                "usable".into()
            } else {
                format!("UNUSABLE: {}", r.problems.join("; "))
            },
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            name: "node0".into(),
            address: "pc1".into(),
            port: None,
            user: None,
            lan: None,
            hardware: None,
            work_dir: "w".into(),
            ssh_args: vec![],
        }
    }

    const GOOD: &str =
        "ssh=ok\narch=x86_64\nglibc=glibc 2.35\ncores=40\nworkdir=ok\nfree_kb=1048576\n\
        gpu=GPU 0: Tesla V100 (UUID: x)\nsetsid=yes\nsha256sum=yes\nrsync=no\ncoordinator=ok\n";

    fn req() -> Requirements {
        Requirements {
            binary: Some(BinaryInfo {
                path: "w".into(),
                sha256: String::new(),
                arch: "x86_64".into(),
                min_glibc: Some((2, 34)),
            }),
            coordinator: Some("10.10.1.1:7000".parse().expect("addr")),
            min_free_bytes: 512 << 20,
            require_gpu: true,
            require_rsync: false,
        }
    }

    #[test]
    fn a_good_node_is_usable() {
        let r = judge(&host(), GOOD, &req());
        assert!(r.usable(), "{:?}", r.problems);
        assert_eq!(r.glibc, Some((2, 35)));
        assert_eq!(r.gpus.len(), 1);
        assert_eq!(r.free_bytes, Some(1 << 30));
    }

    #[test]
    fn old_glibc_wrong_arch_no_gpu_and_unreachable_coordinator_are_named() {
        let out = GOOD
            .replace("glibc 2.35", "glibc 2.31")
            .replace("arch=x86_64", "arch=aarch64")
            .replace("gpu=GPU 0: Tesla V100 (UUID: x)\n", "")
            .replace("coordinator=ok", "coordinator=fail");
        let r = judge(&host(), &out, &req());
        let all = r.problems.join("\n");
        assert!(all.contains("glibc 2.31, the worker needs 2.34"), "{all}");
        assert!(all.contains("architecture aarch64"), "{all}");
        assert!(all.contains("no GPU"), "{all}");
        assert!(
            all.contains("coordinator 10.10.1.1:7000 is not reachable"),
            "{all}"
        );
        assert_eq!(r.problems.len(), 4);
        let t = table(&[r]);
        assert!(t.contains("UNUSABLE"), "{t}");
    }

    #[test]
    fn low_disk_and_missing_rsync_when_needed() {
        let mut q = req();
        q.require_rsync = true;
        let out = GOOD.replace("free_kb=1048576", "free_kb=1024");
        let r = judge(&host(), &out, &q);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
    }
}
