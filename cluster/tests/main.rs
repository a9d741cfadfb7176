//! The cluster crate's integration tests (one binary; modules by subject).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test, bench and example code may panic

// Hosts from Cloudlab manifests (fixtures in fixtures/) and TOML inventories.
mod manifest;
// The whole loop, `coordinator sweep --cluster`: sshd hosts, real coordinator and workers.
mod full_loop;
// Real OpenSSH servers on loopback acting as hosts: preflight, deploy, start/stop/status/logs.
mod ssh_hosts;
// Shared helpers: the sshd harness, a throwaway key, polling with deadlines, /proc scans.
mod util;
