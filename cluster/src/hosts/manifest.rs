//! Cloudlab (GENI rspec v3) manifests, as the portal shows them.
//!
//! Elements are matched by local name only: manifests mix the rspec namespace with Emulab's and
//! others' extensions, and some tools write prefixed names (`rspec:node`).

use std::net::IpAddr;
use std::path::Path;

use super::{expand_work_dir, Host, LoadOptions, SkippedNode, DEFAULT_WORK_DIR};
use crate::error::{Error, Result};

/// One `<login>` of a node's `<services>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The control host name to ssh to.
    pub hostname: String,
    /// The ssh port (`port` attribute), if given.
    pub port: Option<u16>,
    /// The user name.
    pub username: String,
}

/// A node as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestNode {
    /// The node's `client_id` (its name in the profile, e.g. `node0`).
    pub client_id: String,
    /// Its logins, in document order.
    pub logins: Vec<Login>,
    /// The first IPv4 address of its interfaces (the experiment LAN); `None` if it has none.
    pub lan: Option<IpAddr>,
    /// Its hardware type (`hardware_type/@name`, else `vnode/@hardware_type`).
    pub hardware: Option<String>,
    /// The `<host name=...>` of the node (a DNS name), used when it lists no login.
    pub host_name: Option<String>,
    /// Its `<sliver_type name=...>` (`raw-pc`, `emulab-xen`, `emulab-blockstore`, ...), if given.
    pub sliver_type: Option<String>,
}

/// Sliver types (compared without regard to ASCII case) that are a machine a worker can run on:
/// bare-metal PCs, VMs and containers.
/// Any other type (a remote blockstore, `emulab-blockstore`, or another non-compute sliver) is
/// skipped; a node that names no sliver type is taken as a machine.
pub const MACHINE_SLIVER_TYPES: [&str; 9] = [
    "raw-pc",
    "raw",
    "default-vm",
    "emulab-xen",
    "xen-vm",
    "emulab-kvm",
    "emulab-openvz",
    "emulab-docker",
    "docker-container",
];

impl ManifestNode {
    /// Why this node cannot run a worker, if it cannot: its sliver type is not a machine.
    pub fn not_a_machine(&self) -> Option<String> {
        let t = self.sliver_type.as_deref()?;
        if MACHINE_SLIVER_TYPES
            .iter()
            .any(|m| m.eq_ignore_ascii_case(t.trim()))
        {
            return None;
        }
        Some(format!(
            "sliver type {t:?} is not a machine (a worker needs one of: {})",
            MACHINE_SLIVER_TYPES.join(", ")
        ))
    }
}

/// Which login to use when a node lists several.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LoginChoice {
    /// The login whose user is the local user (`$USER`, else `$LOGNAME`), else the first.
    #[default]
    Auto,
    /// Exactly this user: a node without a login for it is an error.
    User(String),
}

fn local_name_is(node: roxmltree::Node<'_, '_>, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name
}

fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == name)
        .map(|a| a.value())
}

fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(move |c| local_name_is(*c, name))
}

/// Parses a manifest's nodes. `path` is only used in messages.
pub fn parse_manifest(text: &str, path: &Path) -> Result<Vec<ManifestNode>> {
    let doc = roxmltree::Document::parse(text).map_err(|source| Error::ManifestXml {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| Error::Manifest {
        path: path.to_path_buf(),
        message,
    };
    let root = doc.root_element();
    if root.tag_name().name() != "rspec" {
        return Err(bad(format!(
            "the root element is <{}>, not <rspec>",
            root.tag_name().name()
        )));
    }
    let mut nodes = Vec::new();
    for (i, node) in children(root, "node").enumerate() {
        let client_id = attr(node, "client_id")
            .ok_or_else(|| bad(format!("node #{} has no client_id", i + 1)))?
            .to_string();
        let hardware = children(node, "hardware_type")
            .find_map(|h| attr(h, "name"))
            .or_else(|| {
                node.descendants()
                    .filter(|d| local_name_is(*d, "vnode"))
                    .find_map(|v| attr(v, "hardware_type"))
            })
            .map(str::to_string);
        let mut lan = None;
        'ifaces: for iface in children(node, "interface") {
            for ip in children(iface, "ip") {
                if attr(ip, "type").is_some_and(|t| !t.eq_ignore_ascii_case("ipv4")) {
                    continue;
                }
                let Some(address) = attr(ip, "address") else {
                    continue;
                };
                let parsed: IpAddr = address.parse().map_err(|_| {
                    bad(format!(
                        "node {client_id}: interface address {address:?} is not an IP address"
                    ))
                })?;
                lan = Some(parsed);
                break 'ifaces;
            }
        }
        let mut logins = Vec::new();
        for services in children(node, "services") {
            for login in children(services, "login") {
                let (Some(hostname), Some(username)) =
                    (attr(login, "hostname"), attr(login, "username"))
                else {
                    continue;
                };
                let port = match attr(login, "port") {
                    None => None,
                    Some(p) => Some(p.parse::<u16>().map_err(|_| {
                        bad(format!("node {client_id}: login port {p:?} is not a port"))
                    })?),
                };
                logins.push(Login {
                    hostname: hostname.to_string(),
                    port,
                    username: username.to_string(),
                });
            }
        }
        let host_name = children(node, "host")
            .find_map(|h| attr(h, "name"))
            .map(str::to_string);
        let sliver_type = children(node, "sliver_type")
            .find_map(|t| attr(t, "name"))
            .map(str::to_string);
        nodes.push(ManifestNode {
            client_id,
            logins,
            lan,
            hardware,
            host_name,
            sliver_type,
        });
    }
    if nodes.is_empty() {
        return Err(bad("the manifest lists no <node>".into()));
    }
    Ok(nodes)
}

/// Picks a node's login. `local_user` is the local user name (for [`LoginChoice::Auto`]).
pub fn choose_login<'a>(
    node: &'a ManifestNode,
    choice: &LoginChoice,
    local_user: Option<&str>,
) -> std::result::Result<Option<&'a Login>, String> {
    match choice {
        LoginChoice::User(user) => match node.logins.iter().find(|l| &l.username == user) {
            Some(l) => Ok(Some(l)),
            None => {
                let users: Vec<&str> = node.logins.iter().map(|l| l.username.as_str()).collect();
                Err(format!(
                    "node {} has no login for user {user:?} (logins: {})",
                    node.client_id,
                    if users.is_empty() {
                        "none".to_string()
                    } else {
                        users.join(", ")
                    }
                ))
            }
        },
        LoginChoice::Auto => Ok(local_user
            .and_then(|u| node.logins.iter().find(|l| l.username == u))
            .or_else(|| node.logins.first())),
    }
}

fn local_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|u| !u.is_empty())
}

/// Turns manifest nodes into hosts, choosing each node's login. Nodes named in `exclude` and
/// nodes that are not a machine ([`ManifestNode::not_a_machine`]) are skipped (second list),
/// before any login is chosen.
pub(crate) fn nodes_to_hosts(
    nodes: Vec<ManifestNode>,
    path: &Path,
    options: &LoadOptions,
    exclude: &[String],
) -> Result<(Vec<Host>, Vec<SkippedNode>)> {
    let me = local_user();
    let template = options.work_dir.as_deref().unwrap_or(DEFAULT_WORK_DIR);
    let mut skipped = Vec::new();
    let mut usable = Vec::new();
    for node in nodes {
        let reason = if exclude.contains(&node.client_id) {
            Some("excluded by the inventory (`exclude`)".to_string())
        } else {
            node.not_a_machine()
        };
        match reason {
            Some(reason) => skipped.push(SkippedNode {
                name: node.client_id,
                reason,
            }),
            None => usable.push(node),
        }
    }
    let hosts = usable
        .into_iter()
        .map(|node| {
            let login = choose_login(&node, &options.login, me.as_deref()).map_err(|message| {
                Error::Manifest {
                    path: path.to_path_buf(),
                    message,
                }
            })?;
            let (address, port, user) = match login {
                Some(l) => (l.hostname.clone(), l.port, Some(l.username.clone())),
                None => match &node.host_name {
                    Some(h) => (h.clone(), None, None),
                    None => {
                        return Err(Error::Manifest {
                            path: path.to_path_buf(),
                            message: format!(
                            "node {} has neither a <login> nor a <host name>: nothing to ssh to",
                            node.client_id
                        ),
                        })
                    }
                },
            };
            Ok(Host {
                work_dir: expand_work_dir(template, &node.client_id),
                name: node.client_id,
                address,
                port,
                user,
                lan: node.lan,
                hardware: node.hardware,
                ssh_args: Vec::new(),
            })
        })
        .collect::<Result<Vec<Host>>>()?;
    Ok((hosts, skipped))
}
