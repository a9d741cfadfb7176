//! Running commands on hosts with the system's `ssh` and `rsync`, with timeouts.
//!
//! Nothing here speaks SSH itself: the user's `~/.ssh/config`, keys and agent apply as usual.
//! Scripts travel on ssh's standard input to `sh -s`, so they run under `sh` whatever the login
//! shell is (Cloudlab accounts may have `tcsh`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use crate::error::{Error, Result};
use crate::hosts::Host;

/// How to run ssh and how long to wait.
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// The `ssh` program.
    pub ssh: String,
    /// The `rsync` program.
    pub rsync: String,
    /// ssh's `ConnectTimeout`.
    pub connect_timeout: Duration,
    /// Limit for one short remote command (checks, start, stop).
    pub command_timeout: Duration,
    /// Limit for one transfer (binary upload, rsync of the data directory).
    pub transfer_timeout: Duration,
}

impl Default for SshConfig {
    fn default() -> Self {
        Self {
            ssh: "ssh".into(),
            rsync: "rsync".into(),
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            transfer_timeout: Duration::from_secs(3600),
        }
    }
}

/// What a finished remote command printed.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// What to feed a command's standard input.
#[derive(Debug, Clone)]
pub enum Input {
    /// These bytes.
    Bytes(Vec<u8>),
    /// This local file's content.
    File(PathBuf),
}

/// Quotes `s` for a POSIX shell (and for rsync's `-e` splitting).
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl SshConfig {
    /// The ssh arguments for `host`, up to and including the destination.
    ///
    /// The host's own arguments come first: for `-o` options ssh keeps the first value it sees,
    /// so a user's setting wins over our defaults.
    pub fn ssh_args(&self, host: &Host) -> Vec<String> {
        let mut args = host.ssh_args.clone();
        for opt in [
            "BatchMode=yes".to_string(),
            format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)),
            "ServerAliveInterval=5".to_string(),
            "ServerAliveCountMax=3".to_string(),
        ] {
            args.push("-o".into());
            args.push(opt);
        }
        if let Some(port) = host.port {
            args.push("-p".into());
            args.push(port.to_string());
        }
        args.push(host.destination());
        args
    }

    /// Runs `script` under `sh -s` on `host`.
    pub fn run_script(&self, host: &Host, what: &str, script: &str) -> Result<Output> {
        self.run_remote(
            host,
            what,
            "sh -s",
            Some(Input::Bytes(script.as_bytes().to_vec())),
            self.command_timeout,
        )
    }

    /// Runs the one-line `command` on `host` (through the login shell), feeding it `input`.
    pub fn run_remote(
        &self,
        host: &Host,
        what: &str,
        command: &str,
        input: Option<Input>,
        timeout: Duration,
    ) -> Result<Output> {
        let mut cmd = Command::new(&self.ssh);
        cmd.args(self.ssh_args(host)).arg(command);
        run(cmd, &self.ssh, host, what, input, timeout)
    }

    /// Copies the local directory `src` to `dest` (relative to the login's home, or absolute)
    /// on `host` with `rsync -a --delete` over ssh.
    pub fn rsync_dir(&self, host: &Host, src: &std::path::Path, dest: &str) -> Result<Output> {
        let mut ssh_cmd = vec![quote(&self.ssh)];
        let args = self.ssh_args(host);
        // Everything but the destination: rsync adds it.
        for a in &args[..args.len() - 1] {
            ssh_cmd.push(quote(a));
        }
        let mut src_arg = src.as_os_str().to_os_string();
        src_arg.push("/");
        let mut cmd = Command::new(&self.rsync);
        cmd.arg("-a")
            .arg("--delete")
            .arg("-e")
            .arg(ssh_cmd.join(" "))
            .arg(src_arg)
            .arg(format!("{}:{}/", host.destination(), dest));
        run(
            cmd,
            &self.rsync,
            host,
            "rsync of the data directory",
            None,
            self.transfer_timeout,
        )
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn run(
    mut cmd: Command,
    program: &str,
    host: &Host,
    what: &str,
    input: Option<Input>,
    timeout: Duration,
) -> Result<Output> {
    tracing::debug!(host = %host.name, what, ?cmd, "running");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        host: host.name.clone(),
        program: program.to_string(),
        source,
    })?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let host_name = host.name.clone();
        // A failed write (the remote side closed early) shows in the exit status.
        std::thread::spawn(move || {
            let result = match input {
                Input::Bytes(b) => stdin.write_all(&b),
                Input::File(p) => std::fs::File::open(&p)
                    .and_then(|mut f| std::io::copy(&mut f, &mut stdin).map(|_| ())),
            };
            if let Err(e) = result {
                tracing::debug!(host = %host_name, "writing to ssh's stdin: {e}");
            }
        });
    }
    let out = child.stdout.take().map(read_all);
    let err = child.stderr.take().map(read_all);
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout {
                host: host.name.clone(),
                what: what.to_string(),
                timeout,
            });
        }
        Err(source) => {
            return Err(Error::Spawn {
                host: host.name.clone(),
                program: program.to_string(),
                source,
            })
        }
    };
    let text = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.and_then(|h| h.join().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let output = Output {
        stdout: text(out),
        stderr: text(err),
    };
    if status.success() {
        return Ok(output);
    }
    let stderr = output.stderr.trim().to_string();
    if program.ends_with("ssh") && status.code() == Some(255) {
        return Err(Error::Ssh {
            host: host.name.clone(),
            what: what.to_string(),
            stderr,
        });
    }
    Err(Error::Remote {
        host: host.name.clone(),
        what: what.to_string(),
        status: status.to_string(),
        stderr: if stderr.is_empty() {
            output.stdout.trim().to_string()
        } else {
            stderr
        },
    })
}

/// Parses `key=value` lines (the output of our remote scripts); other lines are ignored.
pub(crate) fn key_values(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_plain_words_and_wraps_the_rest() {
        assert_eq!(quote("apparate-rs/node0"), "apparate-rs/node0");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }
}
