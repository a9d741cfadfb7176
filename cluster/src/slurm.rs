//! Workers as one Slurm job array, through the real Slurm commands.
//!
//! `sbatch` submits the array (the batch script from [`batch_script`]), `squeue` (and `sacct`
//! for elements `squeue` no longer lists) follows its elements, `scancel` ends them. Each
//! element runs `worker --coordinator URL --token-file F --slots <cpus of the allocation>`;
//! the token travels in a file of mode 600 in the state folder, never on a command line.
//! Elements that end while tasks remain (killed, pre-empted, failed, timed out) are replaced
//! by new submissions up to N live elements; their leases expire at the coordinator, which
//! hands the tasks to other workers, so nothing is lost.
//!
//! The output of `squeue`/`sacct`/`sinfo`/`sbatch --parsable` is parsed strictly: a line that
//! is not what the format asked for is an error that quotes it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

use crate::error::{Error, Result};
use crate::launcher::{Launcher, WorkerState};
use crate::ssh::quote;

/// The Slurm programs and how long one call may take.
#[derive(Debug, Clone)]
pub struct SlurmTools {
    /// Folder of `sbatch`, `squeue`, `sacct`, `scancel`, `sinfo` (`None`: the `PATH`).
    pub bin_dir: Option<PathBuf>,
    /// Limit for one command.
    pub timeout: Duration,
}

impl Default for SlurmTools {
    fn default() -> Self {
        Self {
            bin_dir: None,
            timeout: Duration::from_secs(60),
        }
    }
}

impl SlurmTools {
    fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }

    /// Runs `name args...`; its standard output, or an error with its standard error.
    pub fn run(&self, name: &str, args: &[String]) -> Result<String> {
        let shown = std::iter::once(name.to_string())
            .chain(args.iter().map(|a| quote(a)))
            .collect::<Vec<_>>()
            .join(" ");
        let fail = |message: String| Error::Slurm {
            command: shown.clone(),
            message,
        };
        let mut child = Command::new(self.program(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run it ({e}); is Slurm installed here?")))?;
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let status = match child.wait_timeout(self.timeout) {
            Ok(Some(s)) => s,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not finish within {}s",
                    self.timeout.as_secs_f64()
                )));
            }
            Err(e) => return Err(fail(format!("waiting for it failed: {e}"))),
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if status.success() {
            Ok(stdout)
        } else {
            Err(fail(format!("{status}: {}", one_line(&stderr))))
        }
    }
}

fn one_line(text: &str) -> String {
    let t: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if t.is_empty() {
        "(no message)".into()
    } else {
        t.join(" | ")
    }
}

/// One element of a job array: `ARRAYJOB_INDEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    /// The array's job id (what `sbatch --parsable` printed).
    pub array: u64,
    /// The index in the array.
    pub index: u32,
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.array, self.index)
    }
}

impl std::str::FromStr for Element {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (a, i) = s
            .split_once('_')
            .ok_or_else(|| format!("{s:?} is not an array element (ARRAYJOB_INDEX)"))?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(a) || !digits(i) {
            return Err(format!("{s:?} is not an array element (ARRAYJOB_INDEX)"));
        }
        Ok(Element {
            array: a
                .parse()
                .map_err(|_| format!("{s:?}: job id out of range"))?,
            index: i
                .parse()
                .map_err(|_| format!("{s:?}: index out of range"))?,
        })
    }
}

/// Job states after which the element runs no more (Slurm's names; `sacct` may add words
/// after the first, e.g. `CANCELLED by 0`).
const ENDED: &[&str] = &[
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    // Ours: listed by neither squeue nor sacct (purged, accounting off).
    "GONE",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "SPECIAL_EXIT",
    "TIMEOUT",
];

/// Whether an element in this state still runs or will (pending, running, suspended, being
/// requeued, ...): anything not in the ended list counts as live, so an unknown state never
/// causes an extra submission.
pub fn is_live(state: &str) -> bool {
    let first = state.split_whitespace().next().unwrap_or("");
    !ENDED.contains(&first)
}

fn valid_state(s: &str) -> bool {
    let first = s.split_whitespace().next().unwrap_or("");
    !first.is_empty() && first.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// Parses `squeue --noheader --array --format=%i|%T` (or `sacct --noheader --parsable2 -X
/// --format=JobID,State`) output: one `ELEMENT|STATE` line each. Lines of jobs that are not
/// array elements of `ours` are skipped (the user may have other jobs); a line of one of ours
/// that does not parse is an error quoting it.
pub fn parse_states(command: &str, text: &str, ours: &[u64]) -> Result<BTreeMap<Element, String>> {
    let mut states = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| Error::Slurm {
            command: command.to_string(),
            message: format!("output line {}: {what}: {line:?}", n + 1),
        };
        let fields: Vec<&str> = line.split('|').collect();
        if fields.len() != 2 {
            return Err(bad("expected JOBID|STATE"));
        }
        let job = fields[0].trim();
        let head: &str = job.split(['_', '.', '+']).next().unwrap_or("");
        let Ok(array) = head.parse::<u64>() else {
            return Err(bad("expected a numeric job id"));
        };
        if !ours.contains(&array) {
            continue;
        }
        // Steps of an element (`12_3.batch`) in sacct without -X: not ours to count.
        if job.contains('.') {
            continue;
        }
        let element: Element = job.parse().map_err(|e: String| bad(&e))?;
        let state = fields[1].trim();
        if !valid_state(state) {
            return Err(bad("expected a Slurm job state (e.g. RUNNING)"));
        }
        states.insert(element, state.to_string());
    }
    Ok(states)
}

/// Parses `sbatch --parsable` output: `JOBID` or `JOBID;CLUSTER`.
pub fn parse_submitted(text: &str) -> Result<u64> {
    let line = text.trim();
    let id = line.split(';').next().unwrap_or("");
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !line.contains('\n') {
        if let Ok(n) = id.parse() {
            return Ok(n);
        }
    }
    Err(Error::Slurm {
        command: "sbatch --parsable".into(),
        message: format!("expected a job id, got {line:?}"),
    })
}

/// A partition as `sinfo --noheader --format=%P|%a` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its name.
    pub name: String,
    /// Whether it is the default partition (`*` after the name).
    pub default: bool,
    /// Its availability (`up`, `down`, `drain`, `inact`).
    pub avail: String,
}

/// Parses `sinfo --noheader --format=%P|%a`.
pub fn parse_partitions(text: &str) -> Result<Vec<Partition>> {
    let mut parts: Vec<Partition> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let name = fields.first().map_or("", |s| s.trim());
        let ok_name = !name.is_empty()
            && name
                .trim_end_matches('*')
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if fields.len() != 2 || !ok_name || name == "*" {
            return Err(Error::Slurm {
                command: "sinfo --noheader --format=%P|%a".into(),
                message: format!("output line {}: expected PARTITION|AVAIL: {line:?}", n + 1),
            });
        }
        let p = Partition {
            name: name.trim_end_matches('*').to_string(),
            default: name.ends_with('*'),
            avail: fields[1].trim().to_string(),
        };
        // sinfo lists a partition once per node state; keep one row.
        if !parts.iter().any(|q| q.name == p.name) {
            parts.push(p);
        }
    }
    Ok(parts)
}

/// Checks with `sinfo` that `partition` (or the default one, when `None`) exists and is up;
/// returns its name. The refusal names the flag and lists the partitions there are.
pub fn check_partition(tools: &SlurmTools, partition: Option<&str>) -> Result<String> {
    let args = vec!["--noheader".to_string(), "--format=%P|%a".to_string()];
    let parts = parse_partitions(&tools.run("sinfo", &args)?)?;
    let names = || {
        parts
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let found = match partition {
        Some(name) => parts.iter().find(|p| p.name == name).ok_or_else(|| {
            Error::Settings {
                message: format!(
                    "--slurm-partition {name}: no such partition (sinfo lists: {}); nothing was submitted",
                    names()
                ),
            }
        })?,
        None => parts.iter().find(|p| p.default).ok_or_else(|| Error::Settings {
            message: format!(
                "this Slurm cluster has no default partition: give --slurm-partition (sinfo lists: {})",
                names()
            ),
        })?,
    };
    if found.avail != "up" {
        return Err(Error::Settings {
            message: format!(
                "partition {} is {}, not up (sinfo); nothing was submitted",
                found.name, found.avail
            ),
        });
    }
    Ok(found.name.clone())
}

/// What the batch script of the workers' array holds.
#[derive(Debug, Clone)]
pub struct SlurmJob {
    /// The worker binary, as the compute nodes see it (an absolute path on a shared file
    /// system).
    pub worker_bin: PathBuf,
    /// The coordinator's URL as the compute nodes dial it (`http://ADDR:PORT`).
    pub coordinator: String,
    /// The token file (mode 600) as the compute nodes see it.
    pub token_file: PathBuf,
    /// Folder for the elements' output files (`worker-%A_%a.log`) and their working
    /// directory.
    pub log_dir: PathBuf,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (Slurm's forms: `MINUTES`, `HH:MM:SS`, `D-HH`...).
    pub time: Option<String>,
    /// More `#SBATCH` options, as given (e.g. `--cpus-per-task=8`, `--exclusive`).
    pub sbatch_args: Vec<String>,
    /// More worker arguments, appended as given.
    pub worker_args: Vec<String>,
    /// The job name.
    pub name: String,
}

fn plain(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Settings {
            message: format!(
                "{what} {value:?}: must be non-empty, without spaces or control characters \
                 (it becomes an #SBATCH line)"
            ),
        });
    }
    Ok(())
}

impl SlurmJob {
    /// Refuses values that cannot go on an `#SBATCH` line.
    pub fn validate(&self) -> Result<()> {
        plain(
            "--slurm-partition",
            self.partition.as_deref().unwrap_or("x"),
        )?;
        plain("--slurm-time", self.time.as_deref().unwrap_or("x"))?;
        for a in &self.sbatch_args {
            plain("--slurm-arg", a)?;
            if !a.starts_with('-') {
                return Err(Error::Settings {
                    message: format!(
                        "--slurm-arg {a:?}: expected an sbatch option (-x or --xx=...)"
                    ),
                });
            }
            if a.starts_with("--array") || a == "-a" || a.starts_with("--wrap") {
                return Err(Error::Settings {
                    message: format!(
                        "--slurm-arg {a:?}: the array is set by --slurm-workers, the script by us"
                    ),
                });
            }
        }
        for p in [&self.log_dir, &self.token_file, &self.worker_bin] {
            plain("path", &p.display().to_string())?;
            if !p.is_absolute() {
                return Err(Error::Settings {
                    message: format!("{}: the compute nodes need an absolute path", p.display()),
                });
            }
        }
        plain("--slurm-name", &self.name)
    }
}

/// The `#SBATCH` lines of `job` (name, output `log` under its log folder, working folder,
/// partition, time, extra arguments).
fn push_sbatch_options(s: &mut String, job: &SlurmJob, log: &str) {
    s.push_str(&format!("#SBATCH --job-name={}\n", job.name));
    s.push_str(&format!(
        "#SBATCH --output={}/{log}\n",
        job.log_dir.display()
    ));
    s.push_str(&format!("#SBATCH --chdir={}\n", job.log_dir.display()));
    if let Some(p) = &job.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &job.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    for a in &job.sbatch_args {
        s.push_str(&format!("#SBATCH {a}\n"));
    }
}

/// The batch script for the workers' array: `#SBATCH` options, then one worker per element
/// with as many slots as the allocation has CPUs on its node (`SLURM_CPUS_ON_NODE`).
pub fn batch_script(job: &SlurmJob) -> String {
    let mut s = String::from("#!/bin/sh\n");
    s.push_str("# apparate-rs workers: one per array element (submit with sbatch --array=0-N).\n");
    push_sbatch_options(&mut s, job, "worker-%A_%a.log");
    let mut argv = vec![
        quote(&job.worker_bin.display().to_string()),
        "--coordinator".into(),
        quote(&job.coordinator),
        "--token-file".into(),
        quote(&job.token_file.display().to_string()),
        "--slots".into(),
        "\"$slots\"".into(),
    ];
    argv.extend(job.worker_args.iter().map(|a| quote(a)));
    s.push_str(
        "# The CPUs Slurm gave this element on its node (a number, else the allocation's).\n\
         slots=\"${SLURM_CPUS_ON_NODE:-1}\"\n\
         case \"$slots\" in ''|*[!0-9]*) slots=1 ;; esac\n",
    );
    s.push_str(&format!(
        "echo \"element ${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}} on $(hostname): $slots slots\"\n\
         exec {}\n",
        argv.join(" ")
    ));
    s
}

/// The script of `cluster preflight --slurm`'s test job: one TCP connection to `addr` from a
/// compute node (bash's `/dev/tcp`), exit 0 when it opens. `job.log_dir` gets its output
/// (`preflight-%j.log`).
pub fn reach_script(job: &SlurmJob, addr: std::net::SocketAddr) -> String {
    let mut s = String::from("#!/bin/bash\n");
    push_sbatch_options(&mut s, job, "preflight-%j.log");
    let (host, port) = (addr.ip(), addr.port());
    s.push_str(&format!(
        "if (exec 3<>/dev/tcp/{host}/{port}) 2>/dev/null; then\n  \
         echo \"$(hostname) reached {addr}\"\n  exit 0\nfi\n\
         echo \"$(hostname) cannot reach {addr}\"\nexit 1\n"
    ));
    s
}

/// Writes `bytes` to `path` through a new file beside it (created exclusively, mode 600 on
/// Unix) renamed into place: a link at `path` is replaced, never followed.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::File::options();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Settings of a [`SlurmLauncher`].
#[derive(Debug, Clone)]
pub struct SlurmRun {
    /// The job (its script); its `token_file` is written by `start`.
    pub job: SlurmJob,
    /// The token (content of the coordinator's token file).
    pub token: Vec<u8>,
    /// Live elements wanted (N).
    pub workers: u32,
    /// Folder for the token, the script and the elements' logs (created, mode 700).
    pub state_dir: PathBuf,
    /// How often `squeue` is asked.
    pub poll: Duration,
    /// Elements submitted at most in all (first array and replacements), so that workers
    /// that die at once do not loop forever.
    pub max_elements: u32,
    /// The commands.
    pub tools: SlurmTools,
}

/// The workers as a Slurm job array: a [`Launcher`].
#[derive(Debug)]
pub struct SlurmLauncher {
    run: SlurmRun,
    script: PathBuf,
    arrays: Vec<u64>,
    submitted: u32,
    states: BTreeMap<Element, String>,
    failed_looks: u32,
}

/// Looks in a row whose Slurm command fails (slurmctld busy or restarting) before the
/// launcher gives up: about a minute at the default poll.
const MAX_FAILED_LOOKS: u32 = 12;

impl SlurmLauncher {
    /// A launcher with these settings (nothing submitted yet).
    pub fn new(run: SlurmRun) -> Self {
        let script = run.state_dir.join("workers.sbatch");
        Self {
            run,
            script,
            arrays: Vec::new(),
            submitted: 0,
            states: BTreeMap::new(),
            failed_looks: 0,
        }
    }

    /// The arrays submitted so far (job ids).
    pub fn arrays(&self) -> &[u64] {
        &self.arrays
    }

    fn prepare(&self) -> Result<()> {
        let dir = &self.run.state_dir;
        if let Ok(m) = std::fs::symlink_metadata(dir) {
            if !m.is_dir() {
                return Err(Error::Settings {
                    message: format!("{}: not a folder (a link or a file)", dir.display()),
                });
            }
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| Error::Io {
                    path: dir.clone(),
                    source,
                },
            )?;
        }
        write_private(&self.run.job.token_file, &self.run.token)?;
        write_private(&self.script, batch_script(&self.run.job).as_bytes())
    }

    /// Submits an array of `count` elements; returns its job id.
    fn submit(&mut self, count: u32) -> Result<u64> {
        let out = self.run.tools.run(
            "sbatch",
            &[
                "--parsable".to_string(),
                format!("--array=0-{}", count.saturating_sub(1)),
                self.script.display().to_string(),
            ],
        )?;
        let id = parse_submitted(&out)?;
        self.arrays.push(id);
        self.submitted += count;
        tracing::info!(
            job = id,
            elements = count,
            "submitted the workers' job array"
        );
        Ok(id)
    }

    /// Every element's state: `squeue` for those it lists, `sacct` (when accounting is on)
    /// for the others; elements neither lists are `GONE` (ended).
    fn query(&self) -> Result<BTreeMap<Element, String>> {
        let jobs = self
            .arrays
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let args = vec![
            "--noheader".to_string(),
            "--array".to_string(),
            "--states=all".to_string(),
            format!("--jobs={jobs}"),
            "--format=%i|%T".to_string(),
        ];
        let mut states = match self.run.tools.run("squeue", &args) {
            Ok(text) => parse_states("squeue", &text, &self.arrays)?,
            // Every array purged from slurmctld's memory: squeue refuses the ids.
            Err(Error::Slurm { message, .. }) if message.contains("Invalid job id") => {
                BTreeMap::new()
            }
            Err(e) => return Err(e),
        };
        let missing: Vec<Element> = self
            .states
            .keys()
            .filter(|e| !states.contains_key(e))
            .copied()
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(Element::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let sacct = self.run.tools.run(
                "sacct",
                &[
                    "--noheader".to_string(),
                    "--parsable2".to_string(),
                    "-X".to_string(),
                    format!("--jobs={list}"),
                    "--format=JobID,State".to_string(),
                ],
            );
            let known = match sacct {
                Ok(text) => parse_states("sacct", &text, &self.arrays)?,
                Err(e) => {
                    tracing::debug!("sacct: {e}");
                    BTreeMap::new()
                }
            };
            for e in missing {
                let s = known.get(&e).cloned().unwrap_or_else(|| "GONE".to_string());
                states.insert(e, s);
            }
        }
        Ok(states)
    }

    /// One look: the elements' states, and replacements for lost ones while tasks remain.
    fn look(&mut self, tasks_remain: bool) -> Result<()> {
        if self.arrays.is_empty() {
            return Ok(());
        }
        let now = self.query()?;
        for (e, s) in now {
            if self.states.get(&e) != Some(&s) {
                tracing::info!(element = %e, state = %s, "slurm worker");
            }
            self.states.insert(e, s);
        }
        let live = self.states.values().filter(|s| is_live(s)).count() as u32;
        if tasks_remain && live < self.run.workers {
            let want = self.run.workers - live;
            let room = self.run.max_elements.saturating_sub(self.submitted);
            if room == 0 {
                return Err(Error::GaveUp {
                    message: format!(
                        "{} elements submitted and only {live} of {} live: the workers keep \
                         ending (their logs: {}/worker-*.log); not submitting more",
                        self.submitted,
                        self.run.workers,
                        self.run.job.log_dir.display()
                    ),
                });
            }
            let count = want.min(room);
            tracing::warn!(
                live,
                wanted = self.run.workers,
                "slurm workers ended while tasks remain: submitting {count} more"
            );
            let id = self.submit(count)?;
            for index in 0..count {
                self.states
                    .insert(Element { array: id, index }, "SUBMITTED".into());
            }
        }
        Ok(())
    }

    fn report(&self) -> Vec<WorkerState> {
        self.states
            .iter()
            .map(|(e, s)| WorkerState {
                id: e.to_string(),
                state: s.clone(),
            })
            .collect()
    }
}

impl Launcher for SlurmLauncher {
    fn start(&mut self) -> Result<()> {
        self.run.job.validate()?;
        if self.run.workers == 0 {
            return Err(Error::Settings {
                message: "--slurm-workers must be at least 1".into(),
            });
        }
        check_partition(&self.run.tools, self.run.job.partition.as_deref())?;
        self.prepare()?;
        let id = self.submit(self.run.workers)?;
        for index in 0..self.run.workers {
            self.states
                .insert(Element { array: id, index }, "SUBMITTED".into());
        }
        Ok(())
    }

    fn watch_period(&self) -> Option<Duration> {
        Some(self.run.poll)
    }

    fn watch(&mut self, tasks_remain: bool) -> Result<Vec<WorkerState>> {
        match self.look(tasks_remain) {
            Ok(()) => {
                self.failed_looks = 0;
                Ok(self.report())
            }
            // Our own limit: no retry makes it better.
            Err(e @ Error::GaveUp { .. }) => Err(e),
            Err(e) => {
                self.failed_looks += 1;
                if self.failed_looks >= MAX_FAILED_LOOKS {
                    return Err(e);
                }
                tracing::warn!(
                    "{e} (look {} of {MAX_FAILED_LOOKS} in a row that failed; trying again)",
                    self.failed_looks
                );
                Ok(self.report())
            }
        }
    }

    fn stop(&mut self) -> Result<()> {
        let live: Vec<u64> = self
            .arrays
            .iter()
            .copied()
            .filter(|a| self.states.iter().any(|(e, s)| e.array == *a && is_live(s)))
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let args: Vec<String> = live.iter().map(u64::to_string).collect();
        self.run.tools.run("scancel", &args)?;
        tracing::info!(jobs = ?live, "cancelled the workers' job arrays");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse_strictly_and_other_jobs_are_skipped() {
        let text = "12_0|RUNNING\n12_1|PENDING\n99|RUNNING\n13_4|CANCELLED\n";
        let s = parse_states("squeue", text, &[12, 13]).expect("parses");
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[&Element {
                array: 13,
                index: 4
            }],
            "CANCELLED"
        );
        let e = parse_states("squeue", "12_0 RUNNING\n", &[12]).expect_err("no bar");
        assert!(
            e.to_string().contains("line 1: expected JOBID|STATE"),
            "{e}"
        );
        let e = parse_states("squeue", "12_[0-3]|PENDING\n", &[12]).expect_err("range");
        assert!(e.to_string().contains("not an array element"), "{e}");
        let e = parse_states("squeue", "12_0|running\n", &[12]).expect_err("state");
        assert!(e.to_string().contains("job state"), "{e}");
        let e = parse_states("squeue", "x|RUNNING\n", &[12]).expect_err("id");
        assert!(e.to_string().contains("numeric job id"), "{e}");
    }

    #[test]
    fn sacct_states_with_words_after_them_are_ended_or_live() {
        let s = parse_states(
            "sacct",
            "12_0|CANCELLED by 0\n12_0.batch|CANCELLED\n",
            &[12],
        )
        .expect("parses");
        assert_eq!(s.len(), 1);
        assert!(!is_live(
            &s[&Element {
                array: 12,
                index: 0
            }]
        ));
        assert!(is_live("PENDING") && is_live("RUNNING") && is_live("REQUEUED"));
        assert!(!is_live("PREEMPTED") && !is_live("NODE_FAIL") && !is_live("GONE"));
    }

    #[test]
    fn sbatch_and_sinfo_output_parse_strictly() {
        assert_eq!(parse_submitted("4242\n").expect("id"), 4242);
        assert_eq!(parse_submitted("4242;cluster\n").expect("id"), 4242);
        assert!(parse_submitted("Submitted batch job 4242").is_err());
        let p = parse_partitions("debug*|up\nbig|down\ndebug*|up\n").expect("parses");
        assert_eq!(p.len(), 2);
        assert!(p[0].default && p[0].name == "debug" && p[1].avail == "down");
        assert!(parse_partitions("debug up\n").is_err());
    }

    fn job() -> SlurmJob {
        SlurmJob {
            worker_bin: "/shared/bin/worker".into(),
            coordinator: "http://10.0.0.1:50051".into(),
            token_file: "/shared/out/slurm/token".into(),
            log_dir: "/shared/out/slurm".into(),
            partition: Some("cpu".into()),
            time: Some("2:00:00".into()),
            sbatch_args: vec!["--cpus-per-task=8".into()],
            worker_args: vec!["--give-up-after".into(), "5m".into()],
            name: "apparate-worker".into(),
        }
    }

    #[test]
    fn the_batch_script_runs_one_worker_with_the_allocations_cpus_and_the_token_file() {
        let j = job();
        j.validate().expect("valid");
        let s = batch_script(&j);
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        for line in [
            "#SBATCH --partition=cpu\n",
            "#SBATCH --time=2:00:00\n",
            "#SBATCH --cpus-per-task=8\n",
            "#SBATCH --output=/shared/out/slurm/worker-%A_%a.log\n",
            "exec /shared/bin/worker --coordinator http://10.0.0.1:50051 --token-file /shared/out/slurm/token --slots \"$slots\" --give-up-after 5m\n",
        ] {
            assert!(s.contains(line), "{line:?} missing from\n{s}");
        }
        assert!(s.contains("SLURM_CPUS_ON_NODE"));
    }

    #[test]
    fn settings_that_cannot_go_on_an_sbatch_line_are_refused() {
        let mut j = job();
        j.partition = Some("a b".into());
        assert!(j.validate().is_err());
        let mut j = job();
        j.sbatch_args = vec!["--array=0-3".into()];
        assert!(j.validate().is_err());
        let mut j = job();
        j.token_file = "relative/token".into();
        assert!(j
            .validate()
            .expect_err("relative")
            .to_string()
            .contains("absolute"));
    }
}
