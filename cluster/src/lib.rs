#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod binary;
pub mod cli;
pub mod deploy;
pub mod error;
pub mod hosts;
pub mod launcher;
mod parallel;
pub mod preflight;
pub mod session;
pub mod slurm;
pub mod ssh;
pub mod workers;

pub use error::{Error, Result};
pub use hosts::{
    load_host_list, load_hosts, Host, HostList, LoadOptions, LoginChoice, SkippedNode,
};
pub use launcher::{run_with_launcher, Launcher, Watch, WorkerState};
pub use session::{
    run_with_cluster, ClusterRun, ClusterRunError, OnUnusable, Session, SshLauncher,
};
pub use slurm::{SlurmJob, SlurmLauncher, SlurmRun, SlurmTools};
pub use ssh::SshConfig;
