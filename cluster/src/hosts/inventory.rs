//! The TOML inventory: hosts listed by hand, or a manifest plus the settings it cannot carry.
//!
//! ```toml
//! # Optional: take the hosts from a Cloudlab manifest (relative to this file) ...
//! manifest = "manifest.xml"
//! login_user = "alice"          # which of a node's logins to use (default: yours, else the first)
//! exclude = ["nfs", "node3"]    # manifest nodes (client_id) that get no worker
//!
//! [defaults]                    # for every host, unless the host says otherwise
//! user = "alice"
//! port = 22
//! work_dir = "apparate-rs/{node}"
//! ssh_options = ["-i", "/home/alice/.ssh/cloudlab", "-o", "StrictHostKeyChecking=accept-new"]
//!
//! # ... and/or list them.
//! [[host]]
//! name = "node0"
//! address = "pc401.emulab.net"
//! port = 22
//! user = "alice"
//! lan = "10.10.1.1"
//! work_dir = "/var/tmp/apparate"
//! ssh_options = []
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{expand_work_dir, Host, LoadOptions, LoginChoice, SkippedNode, DEFAULT_WORK_DIR};
use crate::error::{Error, Result};

/// The inventory file's shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// A manifest to take hosts from (relative to the inventory's folder).
    pub manifest: Option<PathBuf>,
    /// Which login of a manifest node to use.
    pub login_user: Option<String>,
    /// Manifest nodes (by `client_id`) that get no worker; each must be a node of the manifest.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Settings for every host.
    #[serde(default)]
    pub defaults: Defaults,
    /// Hosts listed by hand.
    #[serde(default, rename = "host")]
    pub hosts: Vec<InventoryHost>,
}

/// Settings for every host of an inventory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Login user.
    pub user: Option<String>,
    /// ssh port.
    pub port: Option<u16>,
    /// Remote work directory template (`{node}` is the host's name).
    pub work_dir: Option<String>,
    /// Extra ssh arguments.
    #[serde(default)]
    pub ssh_options: Vec<String>,
}

/// One host listed by hand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryHost {
    /// Short name (default: the address).
    pub name: Option<String>,
    /// What ssh connects to.
    #[serde(alias = "host")]
    pub address: String,
    /// ssh port.
    pub port: Option<u16>,
    /// Login user.
    pub user: Option<String>,
    /// Experiment-LAN address.
    pub lan: Option<IpAddr>,
    /// Hardware type, for the record.
    pub hardware: Option<String>,
    /// Remote work directory (template).
    pub work_dir: Option<String>,
    /// Extra ssh arguments (after the defaults').
    #[serde(default)]
    pub ssh_options: Vec<String>,
}

/// Reads an inventory's text. `path` locates a referenced manifest and names the file in errors.
/// Manifest nodes that are excluded or not a machine are left out (see
/// [`super::load_host_list`], which also reports them).
pub fn load_inventory_str(text: &str, path: &Path, options: &LoadOptions) -> Result<Vec<Host>> {
    load_inventory_list(text, path, options).map(|(hosts, _)| hosts)
}

/// [`load_inventory_str`] with the skipped manifest nodes.
pub(crate) fn load_inventory_list(
    text: &str,
    path: &Path,
    options: &LoadOptions,
) -> Result<(Vec<Host>, Vec<SkippedNode>)> {
    let inv: Inventory = toml::from_str(text).map_err(|source| Error::InventoryToml {
        path: path.to_path_buf(),
        source,
    })?;
    let template = options
        .work_dir
        .clone()
        .or_else(|| inv.defaults.work_dir.clone())
        .unwrap_or_else(|| DEFAULT_WORK_DIR.to_string());
    let mut hosts = Vec::new();
    let mut skipped = Vec::new();
    if inv.manifest.is_none() && !inv.exclude.is_empty() {
        return Err(Error::Inventory {
            path: path.to_path_buf(),
            message: "exclude: names manifest nodes, but there is no `manifest = \"FILE\"`".into(),
        });
    }
    if let Some(manifest) = &inv.manifest {
        let manifest_path = path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(manifest);
        let text = std::fs::read_to_string(&manifest_path).map_err(|source| Error::Io {
            path: manifest_path.clone(),
            source,
        })?;
        let nodes = super::parse_manifest(&text, &manifest_path)?;
        for (i, name) in inv.exclude.iter().enumerate() {
            if !nodes.iter().any(|n| &n.client_id == name) {
                let known: Vec<&str> = nodes.iter().map(|n| n.client_id.as_str()).collect();
                return Err(Error::Inventory {
                    path: path.to_path_buf(),
                    message: format!(
                        "exclude[{i}]: {} has no node {name:?} (its nodes: {})",
                        manifest_path.display(),
                        known.join(", ")
                    ),
                });
            }
        }
        let login = match (&options.login, &inv.login_user) {
            (LoginChoice::Auto, Some(u)) => LoginChoice::User(u.clone()),
            (choice, _) => choice.clone(),
        };
        let manifest_options = LoadOptions {
            login,
            work_dir: Some(template.clone()),
            ssh_args: Vec::new(),
        };
        let (manifest_hosts, manifest_skipped) = super::manifest::nodes_to_hosts(
            nodes,
            &manifest_path,
            &manifest_options,
            &inv.exclude,
        )?;
        skipped = manifest_skipped;
        for mut h in manifest_hosts {
            h.user = h.user.or_else(|| inv.defaults.user.clone());
            h.port = h.port.or(inv.defaults.port);
            h.ssh_args = inv.defaults.ssh_options.clone();
            hosts.push(h);
        }
    }
    for h in inv.hosts {
        let name = h.name.unwrap_or_else(|| h.address.clone());
        let work_dir = h.work_dir.unwrap_or_else(|| template.clone());
        let mut ssh_args = inv.defaults.ssh_options.clone();
        ssh_args.extend(h.ssh_options);
        hosts.push(Host {
            work_dir: expand_work_dir(&work_dir, &name),
            name,
            address: h.address,
            port: h.port.or(inv.defaults.port),
            user: h.user.or_else(|| inv.defaults.user.clone()),
            lan: h.lan,
            hardware: h.hardware,
            ssh_args,
        });
    }
    if hosts.is_empty() && skipped.is_empty() {
        return Err(Error::Inventory {
            path: path.to_path_buf(),
            message: "no hosts: give `manifest = \"FILE\"` or at least one [[host]]".into(),
        });
    }
    Ok((hosts, skipped))
}
