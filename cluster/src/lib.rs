#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod binary;
pub mod cli;
pub mod deploy;
pub mod error;
pub mod hosts;
mod parallel;
pub mod preflight;
pub mod session;
pub mod ssh;
pub mod workers;

pub use error::{Error, Result};
pub use hosts::{
    load_host_list, load_hosts, Host, HostList, LoadOptions, LoginChoice, SkippedNode,
};
pub use session::{run_with_cluster, ClusterRun, ClusterRunError, OnUnusable, Session};
pub use ssh::SshConfig;
