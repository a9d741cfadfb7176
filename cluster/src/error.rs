//! The library's error type: every variant names the file or the host it is about.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong, with the file or host it concerns.
///
/// None of these is retried automatically: a host that fails a step is reported (and, under
/// [`crate::session::OnUnusable::Skip`], left out), never tried again behind the user's back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A manifest is not well-formed XML.
    #[error("{path}: not a well-formed rspec manifest: {source}")]
    ManifestXml {
        /// The manifest.
        path: PathBuf,
        /// The XML parser's error (with line and column).
        source: roxmltree::Error,
    },
    /// A manifest is XML but lacks something we need.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is missing or wrong, naming the node.
        message: String,
    },
    /// An inventory is not valid TOML of the expected shape.
    #[error("{path}: invalid inventory: {source}")]
    InventoryToml {
        /// The inventory.
        path: PathBuf,
        /// The TOML parser's error (with the key or line).
        source: toml::de::Error,
    },
    /// An inventory parses but a value is refused.
    #[error("{path}: {message}")]
    Inventory {
        /// The inventory.
        path: PathBuf,
        /// What is wrong, naming the host or key.
        message: String,
    },
    /// A local program (`ssh`, `rsync`) could not be started.
    #[error("host {host}: cannot run `{program}`: {source}")]
    Spawn {
        /// The host the command was for.
        host: String,
        /// The program.
        program: String,
        /// The cause (often: not installed).
        source: std::io::Error,
    },
    /// A command did not finish in time; it was killed.
    #[error("host {host}: {what} did not finish within {}s", timeout.as_secs_f64())]
    Timeout {
        /// The host.
        host: String,
        /// The step (e.g. `preflight`).
        what: String,
        /// The limit.
        timeout: Duration,
    },
    /// ssh itself failed (exit status 255): unreachable host, refused connection, key refused.
    #[error("host {host}: ssh failed during {what}: {stderr}")]
    Ssh {
        /// The host.
        host: String,
        /// The step.
        what: String,
        /// ssh's message.
        stderr: String,
    },
    /// A remote command ran and failed.
    #[error("host {host}: {what} failed ({status}): {stderr}")]
    Remote {
        /// The host.
        host: String,
        /// The step.
        what: String,
        /// The exit status as text.
        status: String,
        /// The command's standard error (trimmed).
        stderr: String,
    },
    /// A remote command's output was not what we expected.
    #[error("host {host}: {what}: {message}")]
    Protocol {
        /// The host.
        host: String,
        /// The step.
        what: String,
        /// What was unexpected.
        message: String,
    },
    /// A copied file does not have the digest it must have.
    #[error("host {host}: {path} has digest {found}, expected {expected}")]
    Digest {
        /// The host.
        host: String,
        /// The remote path.
        path: String,
        /// The local digest.
        expected: String,
        /// The remote digest.
        found: String,
    },
    /// The worker binary is not something we can inspect or ship.
    #[error("{path}: {message}")]
    Binary {
        /// The binary.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Settings that cannot work together (e.g. workers told to dial `0.0.0.0`).
    #[error("{message}")]
    Settings {
        /// What is wrong and what to give instead.
        message: String,
    },
    /// A Slurm command (`sbatch`, `squeue`, `sacct`, `scancel`, `sinfo`) failed, or its output
    /// was not what we expected.
    #[error("slurm: {command}: {message}")]
    Slurm {
        /// The command (program and the arguments that matter).
        command: String,
        /// What went wrong (its standard error, or the line that did not parse).
        message: String,
    },
    /// A launcher stopped replacing workers that keep ending (a limit of ours, not retried).
    #[error("{message}")]
    GaveUp {
        /// How many were started, how many live, where their logs are.
        message: String,
    },
    /// Hosts are unusable and the user chose to stop (or none is left).
    #[error("{}", unusable_message(.hosts))]
    Unusable {
        /// `(host, reason)` for every unusable host.
        hosts: Vec<(String, String)>,
    },
}

fn unusable_message(hosts: &[(String, String)]) -> String {
    let list: Vec<String> = hosts.iter().map(|(h, r)| format!("{h} ({r})")).collect();
    format!("unusable hosts: {}", list.join("; "))
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
