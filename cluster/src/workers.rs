//! `cluster start` / `stop` / `status` / `logs`: detached processes on hosts.
//!
//! A process is started with `setsid` (its own session: it outlives the ssh connection and
//! gets no hangup), its standard streams redirected, in the work directory. Files in `run/`:
//!
//! | file | content |
//! |---|---|
//! | `worker.pid` | the process id (written by the process itself, just before it `exec`s) |
//! | `worker.cmd` | the program it runs (checked before signalling, against reused pids) |
//! | `worker.log` | its standard output and error, appended, a header per start |
//! | `token` | the coordinator token (mode 600) |

use std::time::Duration;

use crate::error::{Error, Result};
use crate::hosts::Host;
use crate::ssh::{key_values, quote, Input, SshConfig};

/// The remote token file, relative to the work directory.
pub const REMOTE_TOKEN: &str = "run/token";

/// How a worker on a node is started: `worker --coordinator http://ADDR --token-file
/// run/token [--slots N] [--data DIR] [EXTRA...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerArgs {
    /// The coordinator's address as the node dials it (its LAN address), `host:port`.
    pub coordinator: String,
    /// Tasks run at once on each node (`None`: the worker's default).
    pub slots: Option<u32>,
    /// The data directory on the node, relative to the work directory (from `deploy`).
    pub data_dir: Option<String>,
    /// More arguments, appended as given (e.g. `--gpu`).
    pub extra: Vec<String>,
}

impl WorkerArgs {
    /// The worker's arguments (after the program).
    pub fn to_args(&self) -> Vec<String> {
        let url = if self.coordinator.contains("://") {
            self.coordinator.clone()
        } else {
            format!("http://{}", self.coordinator)
        };
        let mut a = vec![
            "--coordinator".to_string(),
            url,
            "--token-file".to_string(),
            REMOTE_TOKEN.to_string(),
        ];
        if let Some(n) = self.slots {
            a.push("--slots".into());
            a.push(n.to_string());
        }
        if let Some(d) = &self.data_dir {
            a.push("--data".into());
            a.push(d.clone());
        }
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// A process's state on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Running with this pid.
    Running {
        /// The pid.
        pid: u32,
    },
    /// Started once, no longer running (it exited, or was stopped by someone else).
    Exited,
    /// Never started in this work directory (or stopped by us: the pid file is removed).
    NotStarted,
}

/// What `start` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A new process with this pid.
    New {
        /// The pid.
        pid: u32,
    },
    /// One was running already (left alone).
    AlreadyRunning {
        /// Its pid.
        pid: u32,
    },
}

/// What `stop` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM.
    Terminated,
    /// It was still there after the grace period: SIGKILL.
    Killed,
    /// Nothing was running.
    NotRunning,
}

/// Shell functions shared by the scripts: `gone PID` is true when no live (non-zombie) process
/// has that pid; `alive PID` is true for a live process running the program recorded in
/// `run/worker.cmd`.
const FUNCTIONS: &str = r#"
gone() {
  kill -0 "$1" 2>/dev/null || return 0
  if [ -r "/proc/$1/stat" ]; then
    st=$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)
    [ "$st" = Z ] && return 0
  fi
  return 1
}
alive() {
  gone "$1" && return 1
  if [ -r "/proc/$1/cmdline" ] && [ -f run/worker.cmd ]; then
    tr '\000' '\n' < "/proc/$1/cmdline" | head -n 1 | grep -qxF -- "$(cat run/worker.cmd)" || return 1
  fi
  return 0
}
"#;

/// Copies the token to `run/token` (mode 600) on `host`.
pub fn install_token(ssh: &SshConfig, host: &Host, token: &[u8]) -> Result<()> {
    let wd = quote(&host.work_dir);
    let command = format!(
        "umask 077 && mkdir -p {wd}/run && cat > {wd}/run/token.tmp && chmod 600 {wd}/run/token.tmp && mv -f {wd}/run/token.tmp {wd}/{REMOTE_TOKEN}"
    );
    ssh.run_remote(
        host,
        "token copy",
        &command,
        Some(Input::Bytes(token.to_vec())),
        ssh.command_timeout,
    )?;
    Ok(())
}

/// Starts `program args...` detached on `host` (program relative to the work directory, or
/// absolute), unless one is running there already.
pub fn start(ssh: &SshConfig, host: &Host, program: &str, args: &[String]) -> Result<Started> {
    let argv: Vec<String> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect();
    let script = format!(
        r#"set -e
cd {wd}
mkdir -p run
{FUNCTIONS}
if [ -f run/worker.pid ]; then
  pid=$(cat run/worker.pid)
  if alive "$pid"; then echo "running=$pid"; exit 0; fi
fi
[ -x {program} ] || {{ echo "no executable {program} in $(pwd) (run deploy first)" >&2; exit 3; }}
rm -f run/worker.pid
printf '%s\n' {program} > run/worker.cmd
echo "--- start $(date -u +%Y-%m-%dT%H:%M:%SZ): {cmdline}" >> run/worker.log
setsid sh -c 'echo $$ > run/worker.pid.tmp && mv run/worker.pid.tmp run/worker.pid && exec "$@"' worker {argv} >> run/worker.log 2>&1 < /dev/null &
i=0
while [ ! -s run/worker.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -s run/worker.pid ] || {{ echo "the process did not record its pid within 10s" >&2; exit 4; }}
pid=$(cat run/worker.pid)
# Until the launcher has exec'd the program, its pid runs `sh`: wait for the program (so that
# status and stop, which check the program, see it), or for its death.
i=0
while [ $i -lt 100 ]; do
  if alive "$pid"; then echo "started=$pid"; exit 0; fi
  gone "$pid" && break
  sleep 0.1; i=$((i+1))
done
if ! gone "$pid"; then echo "pid $pid did not exec {program} within 10s" >&2; exit 4; fi
echo "it exited at once; the end of run/worker.log:" >&2
tail -n 5 run/worker.log >&2
exit 6
"#,
        wd = quote(&host.work_dir),
        program = quote(program),
        argv = argv.join(" "),
        cmdline = argv.join(" ").replace(['\'', '"', '$', '`', '\\'], ""),
    );
    let out = ssh.run_script(host, "start", &script)?;
    for (k, v) in key_values(&out.stdout) {
        let pid = || {
            v.parse::<u32>().map_err(|_| Error::Protocol {
                host: host.name.clone(),
                what: "start".into(),
                message: format!("bad pid {v:?}"),
            })
        };
        match k {
            "started" => return Ok(Started::New { pid: pid()? }),
            "running" => return Ok(Started::AlreadyRunning { pid: pid()? }),
            _ => {}
        }
    }
    Err(Error::Protocol {
        host: host.name.clone(),
        what: "start".into(),
        message: format!("unexpected output {:?}", out.stdout.trim()),
    })
}

/// Stops the process on `host`: SIGTERM to its process group, up to `grace` to exit, then
/// SIGKILL. Removes the pid file.
pub fn stop(ssh: &SshConfig, host: &Host, grace: Duration) -> Result<Stopped> {
    let tenths = (grace.as_millis() / 100).max(1);
    let script = format!(
        r#"cd {wd} 2>/dev/null || {{ echo "stopped=none"; exit 0; }}
{FUNCTIONS}
[ -f run/worker.pid ] || {{ echo "stopped=none"; exit 0; }}
pid=$(cat run/worker.pid)
if ! alive "$pid"; then rm -f run/worker.pid; echo "stopped=none"; exit 0; fi
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
i=0
while alive "$pid" && [ $i -lt {tenths} ]; do sleep 0.1; i=$((i+1)); done
if alive "$pid"; then
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  i=0
  while alive "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  if alive "$pid"; then echo "pid $pid survived SIGKILL" >&2; exit 5; fi
  result=killed
else
  result=terminated
fi
rm -f run/worker.pid
echo "--- stopped $(date -u +%Y-%m-%dT%H:%M:%SZ): $result" >> run/worker.log
echo "stopped=$result"
"#,
        wd = quote(&host.work_dir),
    );
    let timeout = ssh.command_timeout + grace + Duration::from_secs(5);
    let cfg = SshConfig {
        command_timeout: timeout,
        ..ssh.clone()
    };
    let out = cfg.run_script(host, "stop", &script)?;
    match key_values(&out.stdout)
        .into_iter()
        .find(|(k, _)| *k == "stopped")
        .map(|(_, v)| v)
    {
        Some("terminated") => Ok(Stopped::Terminated),
        Some("killed") => Ok(Stopped::Killed),
        Some("none") => Ok(Stopped::NotRunning),
        other => Err(Error::Protocol {
            host: host.name.clone(),
            what: "stop".into(),
            message: format!("unexpected output {other:?}"),
        }),
    }
}

/// The process's state on `host`.
pub fn status(ssh: &SshConfig, host: &Host) -> Result<State> {
    let script = format!(
        r#"cd {wd} 2>/dev/null || {{ echo "state=not-started"; exit 0; }}
{FUNCTIONS}
if [ ! -f run/worker.pid ]; then echo "state=not-started"; exit 0; fi
pid=$(cat run/worker.pid)
if alive "$pid"; then echo "state=running"; echo "pid=$pid"; else echo "state=exited"; fi
"#,
        wd = quote(&host.work_dir),
    );
    let out = ssh.run_script(host, "status", &script)?;
    let kv = key_values(&out.stdout);
    let get = |key: &str| kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    match get("state") {
        Some("running") => {
            let pid = get("pid")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| Error::Protocol {
                    host: host.name.clone(),
                    what: "status".into(),
                    message: "running, but no pid".into(),
                })?;
            Ok(State::Running { pid })
        }
        Some("exited") => Ok(State::Exited),
        Some("not-started") => Ok(State::NotStarted),
        other => Err(Error::Protocol {
            host: host.name.clone(),
            what: "status".into(),
            message: format!("unexpected state {other:?}"),
        }),
    }
}

/// The last `lines` lines of the log on `host` (all of it when `None`).
pub fn logs(ssh: &SshConfig, host: &Host, lines: Option<usize>) -> Result<String> {
    let read = match lines {
        Some(n) => format!("tail -n {n} run/worker.log"),
        None => "cat run/worker.log".to_string(),
    };
    let script = format!(
        "cd {wd} 2>/dev/null || exit 0\n[ -f run/worker.log ] || exit 0\n{read}\n",
        wd = quote(&host.work_dir),
    );
    let cfg = SshConfig {
        command_timeout: ssh.transfer_timeout,
        ..ssh.clone()
    };
    Ok(cfg.run_script(host, "log fetch", &script)?.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_command_line_points_at_the_coordinator_with_the_remote_token() {
        let a = WorkerArgs {
            coordinator: "10.10.1.1:50051".into(),
            slots: Some(8),
            data_dir: Some("data/abc".into()),
            extra: vec!["--gpu".into()],
        };
        assert_eq!(
            a.to_args().join(" "),
            "--coordinator http://10.10.1.1:50051 --token-file run/token --slots 8 --data data/abc --gpu"
        );
        let tls = WorkerArgs {
            coordinator: "https://head:443".into(),
            slots: None,
            data_dir: None,
            extra: vec![],
        };
        assert_eq!(
            tls.to_args().join(" "),
            "--coordinator https://head:443 --token-file run/token"
        );
    }
}
