//! Hosts: where workers run and how to reach them, from a Cloudlab manifest or a TOML inventory.

mod inventory;
mod manifest;

pub use inventory::{load_inventory_str, Inventory};
pub use manifest::{
    choose_login, parse_manifest, Login, LoginChoice, ManifestNode, MACHINE_SLIVER_TYPES,
};

use std::net::IpAddr;
use std::path::Path;

use crate::error::{Error, Result};

/// The default remote work directory, relative to the login's home; `{node}` is the host's name.
///
/// Per node, so that nodes sharing a home directory (NFS) or tests running several "hosts" on
/// one machine never share pid files or logs.
pub const DEFAULT_WORK_DIR: &str = "apparate-rs/{node}";

/// One machine that can run a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// A short name (the manifest's `client_id`, or the inventory's `name`); used in tables,
    /// messages and log file names.
    pub name: String,
    /// What ssh connects to (a host name, an address, or an alias from the user's ssh config).
    pub address: String,
    /// The ssh port, when not the default (or the ssh config's).
    pub port: Option<u16>,
    /// The login user, when not the ssh config's.
    pub user: Option<String>,
    /// The node's address on the experiment LAN, if it has one.
    pub lan: Option<IpAddr>,
    /// The hardware type (e.g. `c220g5`), if known.
    pub hardware: Option<String>,
    /// The remote work directory (absolute, or relative to the login's home), with `{node}`
    /// already replaced.
    pub work_dir: String,
    /// Extra arguments given to `ssh` before the destination (e.g. `-i KEY`, `-o Opt=val`).
    pub ssh_args: Vec<String>,
}

impl Host {
    /// `user@address`, or `address` when no user is set.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.address),
            None => self.address.clone(),
        }
    }
}

/// Expands `{node}` in a work-directory template. A leading `~/` is dropped: remote commands
/// run in the login's home, and the path is quoted (so a `~` would not be expanded).
pub fn expand_work_dir(template: &str, node: &str) -> String {
    let dir = template.replace("{node}", node);
    match dir.strip_prefix("~/") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => dir,
    }
}

/// Checks what every host must satisfy, whatever file it came from.
pub(crate) fn validate(hosts: &[Host], path: &Path) -> Result<()> {
    let bad = |message: String| Error::Inventory {
        path: path.to_path_buf(),
        message,
    };
    if hosts.is_empty() {
        return Err(bad("no hosts".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for h in hosts {
        if !names.insert(h.name.as_str()) {
            return Err(bad(format!("host name {:?} appears twice", h.name)));
        }
        if h.name.is_empty()
            || !h
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(format!(
                "host name {:?}: use letters, digits, '-', '_' and '.' only",
                h.name
            )));
        }
        if h.address.is_empty()
            || h.address.starts_with('-')
            || h.address.contains(char::is_whitespace)
        {
            return Err(bad(format!("host {}: bad address {:?}", h.name, h.address)));
        }
        if let Some(u) = &h.user {
            if u.is_empty() || u.starts_with('-') || u.contains(['@', ' ']) {
                return Err(bad(format!("host {}: bad user {u:?}", h.name)));
            }
        }
        if h.work_dir.is_empty() || h.work_dir.starts_with('~') || h.work_dir.contains(['\n', '\0'])
        {
            return Err(bad(format!(
                "host {}: bad work_dir {:?}",
                h.name, h.work_dir
            )));
        }
    }
    Ok(())
}

/// How to read a hosts file: options that apply to a manifest (which carries no ssh options
/// nor work directories).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Which login of a node to use when it lists several.
    pub login: LoginChoice,
    /// Work-directory template (`{node}` is replaced); [`DEFAULT_WORK_DIR`] when `None`.
    pub work_dir: Option<String>,
    /// Extra ssh arguments for every host (after any the file gives).
    pub ssh_args: Vec<String>,
}

/// A manifest node that gets no worker, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedNode {
    /// The node's `client_id`.
    pub name: String,
    /// Why: its sliver type is not a machine (a remote blockstore, ...), or the inventory
    /// excludes it.
    pub reason: String,
}

/// The hosts of a hosts file, and the manifest nodes skipped on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostList {
    /// Machines that can run a worker, in file order.
    pub hosts: Vec<Host>,
    /// Manifest nodes that are not such machines or are excluded, in file order.
    pub skipped: Vec<SkippedNode>,
}

/// Reads hosts from `path`: a Cloudlab manifest (XML, recognised by its first non-blank
/// character `<`) or a TOML inventory (which may itself point at a manifest). Manifest nodes
/// that cannot run a worker (see [`ManifestNode::not_a_machine`]) or that the inventory
/// excludes are left out and listed in [`HostList::skipped`]; a file that leaves no host at all
/// is an error naming every skipped node and why.
pub fn load_host_list(path: &Path, options: &LoadOptions) -> Result<HostList> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (mut hosts, skipped) = if text.trim_start().starts_with('<') {
        let nodes = parse_manifest(&text, path)?;
        manifest::nodes_to_hosts(nodes, path, options, &[])?
    } else {
        inventory::load_inventory_list(&text, path, options)?
    };
    if hosts.is_empty() && !skipped.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.name, s.reason))
            .collect();
        return Err(Error::Manifest {
            path: path.to_path_buf(),
            message: format!("no node can run a worker ({})", why.join("; ")),
        });
    }
    for h in &mut hosts {
        h.ssh_args.extend(options.ssh_args.iter().cloned());
    }
    validate(&hosts, path)?;
    Ok(HostList { hosts, skipped })
}

/// [`load_host_list`]'s hosts; each skipped node is logged (`info`) with its reason.
pub fn load_hosts(path: &Path, options: &LoadOptions) -> Result<Vec<Host>> {
    let list = load_host_list(path, options)?;
    for s in &list.skipped {
        tracing::info!(node = %s.name, "manifest node skipped: {}", s.reason);
    }
    Ok(list.hosts)
}
