//! Shared helpers: real OpenSSH servers on loopback acting as hosts, a throwaway key, polling.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cluster::{load_hosts, Host, LoadOptions};
use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some`, failing with `what` (and `context()`) at the deadline.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn find_sshd() -> PathBuf {
    for p in ["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "sshd not found: these tests need Debian's openssh-server (and rsync); \
         `.ci/run` installs them: apt-get install -y openssh-server rsync"
    );
}

fn run_ok(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway client key and the ssh arguments that use it (and nothing of the user's
/// configuration).
pub struct ClientKey {
    /// The private key.
    pub key: PathBuf,
    /// The public key's line.
    pub public: String,
}

impl ClientKey {
    pub fn generate(dir: &Path) -> Self {
        let key = dir.join("id_ed25519");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "apparate-test", "-f"])
                .arg(&key),
        );
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        Self { key, public }
    }

    /// ssh arguments: this key only, no config file, no agent, no known-hosts bookkeeping.
    pub fn ssh_args(&self) -> Vec<String> {
        [
            "-F",
            "/dev/null",
            "-i",
            &self.key.to_string_lossy(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// One `sshd -D` on 127.0.0.1, its own config, host key and log.
pub struct SshServer {
    pub port: u16,
    child: Child,
    pub log: PathBuf,
}

impl SshServer {
    /// Starts an sshd accepting `key` for the current user. The port is picked by binding
    /// port 0; if sshd cannot bind it (taken meanwhile), another is tried.
    pub fn start(dir: &Path, key: &ClientKey) -> Self {
        let sshd = find_sshd();
        std::fs::create_dir_all(dir).expect("sshd dir");
        // Privilege separation directory (Debian's sshd refuses to start without it).
        if !Path::new("/run/sshd").is_dir() {
            std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (run the tests as root)");
        }
        let host_key = dir.join("host_ed25519");
        run_ok(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key),
        );
        let authorized = dir.join("authorized_keys");
        std::fs::write(&authorized, &key.public).expect("authorized_keys");
        let log = dir.join("sshd.log");
        for _attempt in 0..5 {
            let port = {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port()
            };
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                     PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                     PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
                    hk = host_key.display(),
                    ak = authorized.display(),
                ),
            )
            .expect("sshd_config");
            let log_file = std::fs::File::create(&log).expect("sshd log");
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("log"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", sshd.display()));
            let deadline = Instant::now() + Duration::from_secs(20);
            let ready = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                if banner(port) {
                    break true;
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd on port {port} not ready within 20s; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            if ready {
                return Self { port, child, log };
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                text.contains("Address already in use"),
                "sshd exited at start; log:\n{text}"
            );
        }
        panic!("sshd could not bind a free port in 5 tries");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Whether an SSH server answers on `port` (its identification string).
fn banner(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-")
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port on which nothing listens (connections are refused).
pub fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// The login name of the current user (the tests log in as themselves).
pub fn me() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Live (non-zombie) processes whose first argument is `argv0` and whose working directory
/// is inside `under`: `(pid, cwd)`.
pub fn processes(argv0: &str, under: &Path) -> Vec<(u32, PathBuf)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let dir = e.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if first != argv0.as_bytes() {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
        if state == Some(Some('Z')) {
            continue;
        }
        if let Ok(cwd) = std::fs::read_link(dir.join("cwd")) {
            if cwd.starts_with(under) {
                found.push((pid, cwd));
            }
        }
    }
    found
}

/// The session id of `pid` (field 6 of /proc/PID/stat).
pub fn session_id(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(3)?.parse().ok()
}

/// Two sshd "hosts" and a key, in one temporary directory.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub key: ClientKey,
    pub servers: Vec<SshServer>,
}

impl Lab {
    pub fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let key = ClientKey::generate(dir.path());
        let servers = (0..n)
            .map(|i| SshServer::start(&dir.path().join(format!("sshd{i}")), &key))
            .collect();
        Self { dir, key, servers }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A Cloudlab-shaped manifest for the servers (plus `extra` nodes as `(name, port)`),
    /// and an inventory that points at it with the test key and per-node work directories.
    pub fn write_cluster_file(&self, extra: &[(&str, u16)]) -> PathBuf {
        let mut nodes = String::new();
        let user = me();
        let ports = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("node{i}"), s.port))
            .chain(extra.iter().map(|(n, p)| (n.to_string(), *p)));
        for (i, (name, port)) in ports.enumerate() {
            nodes.push_str(&format!(
                r#"  <node xmlns:emulab="http://www.protogeni.net/resources/rspec/ext/emulab/1" client_id="{name}" exclusive="true">
    <hardware_type name="loopback"/>
    <interface client_id="{name}:eth1"><ip address="10.10.1.{n}" type="ipv4" netmask="255.255.255.0"/></interface>
    <services>
      <login authentication="ssh-keys" hostname="127.0.0.1" port="{port}" username="someone-else"/>
      <login authentication="ssh-keys" hostname="127.0.0.1" port="{port}" username="{user}"/>
    </services>
  </node>
"#,
                n = i + 1
            ));
        }
        let manifest = format!(
            "<rspec xmlns=\"http://www.geni.net/resources/rspec/3\" type=\"manifest\">\n{nodes}</rspec>\n"
        );
        std::fs::write(self.path().join("manifest.xml"), manifest).expect("manifest");
        let args: Vec<String> = self
            .key
            .ssh_args()
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
        let inventory = format!(
            "manifest = \"manifest.xml\"\nlogin_user = \"{user}\"\n[defaults]\nwork_dir = \"{root}/hosts/{{node}}\"\nssh_options = [{args}]\n",
            root = self.path().display(),
            args = args.join(", ")
        );
        let path = self.path().join("cluster.toml");
        std::fs::write(&path, inventory).expect("inventory");
        path
    }

    pub fn hosts(&self, extra: &[(&str, u16)]) -> Vec<Host> {
        load_hosts(&self.write_cluster_file(extra), &LoadOptions::default()).expect("hosts")
    }

    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("--- sshd :{}\n{}", s.port, s.log_text()))
            .collect()
    }
}

/// A copy of a system program under a name of our own (so the process scan finds only ours).
pub fn program_copy(dir: &Path, program: &str) -> PathBuf {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .expect("command -v");
    let src = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!src.is_empty(), "{program} not found");
    let dest = dir.join(format!("{program}-copy"));
    std::fs::copy(&src, &dest).expect("copy program");
    dest
}

impl Drop for Lab {
    /// A failed test may leave detached processes in the hosts' work directories: kill them
    /// (SIGKILL), so that nothing outlives the test.
    fn drop(&mut self) {
        for pid in processes_under(self.dir.path()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Live processes whose working directory is inside `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cwd = std::fs::read_link(e.path().join("cwd")).ok()?;
            cwd.starts_with(dir).then_some(pid)
        })
        .filter(|pid| *pid != std::process::id())
        .collect()
}
