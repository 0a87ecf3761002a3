//! Shared test plumbing: where the plugins and the binary are, runtimes, transports.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use patchwave_core::HostId;
use patchwave_plugin_host::{
    AuditLog, Limits, LoadedPlugin, PluginGrants, PluginRuntime, RuntimeOptions,
};
use patchwave_transport::{LocalTransport, Transport};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where `make plugins` leaves the release components.
pub fn plugin_build_dir() -> PathBuf {
    std::env::var_os("PATCHWAVE_PLUGIN_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("plugins/target/wasm32-wasip2/release"))
}

/// Path of a built plugin component, e.g. `patchwave_plugin_debian`.
pub fn wasm(name: &str) -> PathBuf {
    let path = plugin_build_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make plugins` first (the tests use the real components)",
        path.display()
    );
    path
}

/// A runtime writing its audit log into `dir`.
pub fn runtime(dir: &Path) -> PluginRuntime {
    let audit = Arc::new(AuditLog::open(&dir.join("audit.jsonl")).unwrap());
    let options = RuntimeOptions {
        cache_dir: Some(dir.join("cache")),
        ..RuntimeOptions::default()
    };
    PluginRuntime::new(options, audit).unwrap()
}

/// Load a built plugin.
pub async fn load(
    runtime: &PluginRuntime,
    name: &str,
    grants: PluginGrants,
    limits: Limits,
) -> LoadedPlugin {
    runtime.load(&wasm(name), grants, limits).await.unwrap()
}

/// The real Debian plugin with these grants, its audit log and cache in `dir`.
pub async fn debian_plugin(dir: &Path, grants: PluginGrants) -> LoadedPlugin {
    load(
        &runtime(dir),
        "patchwave_plugin_debian",
        grants,
        Limits::default(),
    )
    .await
}

/// This machine as a target.
pub fn local() -> Arc<dyn Transport> {
    Arc::new(LocalTransport::new(HostId::from("localhost")))
}

/// The audit log's lines as JSON.
pub fn audit_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `patchwave` binary built alongside this test.
pub fn patchwave_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("patchwave");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build -p patchwave-cli` (tests/run does)",
        bin.display()
    );
    bin
}

/// A `patchwave` command with its own state directory and a plugin directory holding the
/// real Debian plugin.
pub struct Cli {
    pub dir: tempfile::TempDir,
}

impl Cli {
    pub fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(wasm("patchwave_plugin_debian"), plugins.join("debian.wasm")).unwrap();
        Cli { dir }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(patchwave_bin());
        cmd.arg("--state-dir")
            .arg(self.state())
            .arg("--plugin-dir")
            .arg(self.dir.path().join("plugins"))
            .args(args)
            .env_remove("PATCHWAVE_CONFIG");
        cmd
    }

    /// Run and return (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        run(&mut self.cmd(args))
    }
}

/// Run a command and return (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run a command and return its stdout, asserting success.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The oracle for an inventory: plain `dpkg-query -W` (`name[:arch]\tversion` lines), run by
/// `runner` (directly here, or inside a fleet host), minus packages whose files are gone
/// (`rc`, config-files only), as `(name, version, arch qualifier if dpkg printed one)`.
pub fn dpkg_oracle(runner: &dyn Fn(&[&str]) -> String) -> Vec<(String, String, Option<String>)> {
    let gone: std::collections::HashSet<String> = runner(&[
        "dpkg-query",
        "-W",
        "-f=${db:Status-Abbrev} ${binary:Package}\n",
    ])
    .lines()
    .filter_map(|l| {
        let (status, name) = l.split_once(' ')?;
        matches!(status.as_bytes().get(1), Some(b'n' | b'c')).then(|| name.to_string())
    })
    .collect();
    let mut out: Vec<_> = runner(&["dpkg-query", "-W"])
        .lines()
        .filter_map(|l| {
            let (pkg, version) = l.split_once('\t')?;
            if gone.contains(pkg) {
                return None;
            }
            let (name, arch) = match pkg.split_once(':') {
                Some((n, a)) => (n.to_string(), Some(a.to_string())),
                None => (pkg.to_string(), None),
            };
            Some((name, version.to_string(), arch))
        })
        .collect();
    out.sort();
    out
}

/// Check a plugin inventory against the oracle: same (name, version) set, and the same
/// architecture wherever dpkg qualified the name with one.
pub fn assert_inventory_matches(
    inventory: &[patchwave_core::Installed],
    oracle: &[(String, String, Option<String>)],
) {
    let mut ours: Vec<(String, String)> = inventory
        .iter()
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    ours.sort();
    let mut theirs: Vec<(String, String)> = oracle
        .iter()
        .map(|(n, v, _)| (n.clone(), v.clone()))
        .collect();
    theirs.sort();
    let missing: Vec<_> = theirs
        .iter()
        .filter(|x| ours.binary_search(x).is_err())
        .collect();
    let extra: Vec<_> = ours
        .iter()
        .filter(|x| theirs.binary_search(x).is_err())
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && ours.len() == theirs.len(),
        "inventory differs from dpkg-query -W: missing {missing:?}, extra {extra:?}"
    );
    for (name, version, arch) in oracle {
        if let Some(arch) = arch {
            assert!(
                inventory
                    .iter()
                    .any(|p| &p.name == name && &p.version == version && &p.arch == arch),
                "{name}:{arch} {version} has no matching architecture in the inventory"
            );
        }
    }
}

/// The running test fleet (`tests/fleet`), when `PATCHWAVE_FLEET` names its fleet.json.
pub struct Fleet {
    pub json: serde_json::Value,
}

impl Fleet {
    /// The fleet, or `None` (the caller prints why and skips).
    pub fn get() -> Option<Fleet> {
        let path = std::env::var_os("PATCHWAVE_FLEET")?;
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("PATCHWAVE_FLEET={}: {e}", Path::new(&path).display()));
        Some(Fleet {
            json: serde_json::from_str(&text).unwrap(),
        })
    }

    pub fn host(&self, id: &str) -> &serde_json::Value {
        self.json["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == id)
            .unwrap_or_else(|| panic!("the test fleet has no host {id}: start at least 15 hosts"))
    }

    pub fn client_key(&self) -> PathBuf {
        PathBuf::from(self.json["client_key"].as_str().unwrap())
    }

    pub fn known_hosts(&self) -> PathBuf {
        PathBuf::from(self.json["known_hosts"].as_str().unwrap())
    }

    /// Run a `tests/fleet/fleet` subcommand; panics unless it succeeds.
    pub fn ctl(&self, args: &[&str]) -> String {
        stdout_of(Command::new(repo().join("tests/fleet/fleet")).args(args))
    }

    /// Run a command inside a host's own root, not through patchwave or ssh: the oracle.
    pub fn inside(&self, host: &str, cmd: &[&str]) -> String {
        let mut args = vec!["exec", host, "--"];
        args.extend_from_slice(cmd);
        self.ctl(&args)
    }

    /// Like [`Fleet::inside`] but returns the exit status too.
    pub fn inside_status(&self, host: &str, cmd: &[&str]) -> (i32, String) {
        let out = Command::new(repo().join("tests/fleet/fleet"))
            .args(["exec", host, "--"])
            .args(cmd)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// A patchwave config for `hosts`, with the Debian plugin granted its manifest, state in
    /// `dir/state`, plugins from `dir/plugins`, and the given known_hosts file. h01, h02,
    /// h16, h21 and h28 are non-prod, the others prod.
    pub fn config(&self, dir: &Path, hosts: &[&str], known_hosts: &Path) -> PathBuf {
        self.config_with(dir, hosts, known_hosts, "")
    }

    /// [`Fleet::config`] with `extra` TOML appended (e.g. a `[rollout]` policy).
    pub fn config_with(
        &self,
        dir: &Path,
        hosts: &[&str],
        known_hosts: &Path,
        extra: &str,
    ) -> PathBuf {
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(wasm("patchwave_plugin_debian"), plugins.join("debian.wasm")).unwrap();
        let mut toml = format!(
            "[state]\ndir = \"{}\"\n\n[plugins]\ndir = \"{}\"\n\n[plugins.debian]\ngrants = \"manifest\"\n\n\
             [ssh]\nconnect_timeout = \"5s\"\nkeepalive = \"1s\"\n\n\
             [defaults]\nuser = \"root\"\nkey = \"file:{}\"\nknown_hosts = \"{}\"\n\n",
            dir.join("state").display(),
            plugins.display(),
            self.client_key().display(),
            known_hosts.display()
        );
        for id in hosts {
            let h = self.host(id);
            let env = if matches!(*id, "h01" | "h02" | "h16" | "h21" | "h28" | "h36") {
                "non-prod"
            } else {
                "prod"
            };
            toml.push_str(&format!(
                "[[hosts]]\nid = \"{id}\"\naddress = \"{}\"\nport = {}\nenv = \"{env}\"\nscope = \"fleet\"\n\n",
                h["addr"].as_str().unwrap(),
                h["port"]
            ));
        }
        toml.push_str(extra);
        let path = dir.join("patchwave.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// An SSH context on the fleet's key and known_hosts, with fast keepalives so a cut link
    /// is noticed in seconds.
    pub fn ssh(&self) -> Arc<patchwave_transport::SshContext> {
        use patchwave_transport::{ClientKey, KeySource, KnownHosts, SshContext, SshSettings};
        let key = ClientKey::load(&KeySource::File(self.client_key())).unwrap();
        let known = KnownHosts::load(self.known_hosts()).unwrap();
        SshContext::new(
            key,
            Arc::new(known),
            SshSettings {
                connect_timeout: std::time::Duration::from_secs(5),
                keepalive_interval: std::time::Duration::from_secs(1),
                keepalive_max: 2,
                ..SshSettings::default()
            },
        )
    }

    /// The transport to one host.
    pub fn transport(
        &self,
        ssh: &Arc<patchwave_transport::SshContext>,
        id: &str,
    ) -> Arc<dyn Transport> {
        let h = self.host(id);
        Arc::new(ssh.transport(patchwave_transport::SshTarget {
            host: HostId::from(id),
            address: h["addr"].as_str().unwrap().to_string(),
            port: h["port"].as_u64().unwrap() as u16,
            user: "root".into(),
        }))
    }
}

/// Skip (with the reason on stderr) when there is no fleet.
#[macro_export]
macro_rules! fleet_or_skip {
    () => {
        match $crate::support::Fleet::get() {
            Some(f) => f,
            None => {
                eprintln!(
                    "SKIP: no test fleet (PATCHWAVE_FLEET is unset); `make test` starts one when run as root"
                );
                return;
            }
        }
    };
}

/// Whether this process runs as root (sshd, mount namespaces).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A real OpenSSH `sshd` on 127.0.0.1 that a test only needs for its host key (what
/// `hosts trust` fetches during key exchange). Killed when dropped.
pub struct HostKeyServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: std::process::Child,
}

impl HostKeyServer {
    /// `None` (after saying why) when not root: sshd runs as the current user only as root.
    pub fn start() -> Option<HostKeyServer> {
        if !is_root() {
            eprintln!("SKIP: needs root to run sshd");
            return None;
        }
        std::fs::create_dir_all("/run/sshd").unwrap(); // privilege-separation directory
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("host_key");
        stdout_of(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", ""])
                .arg("-f")
                .arg(&key),
        );
        let config = format!(
            "ListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nUsePAM no\nLogLevel INFO\n",
            key.display()
        );
        std::fs::write(dir.path().join("sshd_config"), config).unwrap();
        // Another test may take the free port between the probe and sshd's bind: retry.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = dir.path().join(format!("sshd-{port}.log"));
            let mut child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(dir.path().join("sshd_config"))
                .args(["-p", &port.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let ready = format!("Server listening on 127.0.0.1 port {port}");
            for _ in 0..500 {
                if std::fs::read_to_string(&log).unwrap().contains(&ready) {
                    return Some(HostKeyServer { dir, port, child });
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not start");
    }

    /// The host key's `SHA256:…` fingerprint, as ssh-keygen prints it.
    pub fn fingerprint(&self) -> String {
        stdout_of(
            Command::new("ssh-keygen")
                .arg("-lf")
                .arg(self.dir.path().join("host_key.pub")),
        )
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
    }
}

impl Drop for HostKeyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
