//! The SSH transport against a real OpenSSH server: each test starts its own `sshd` on
//! 127.0.0.1 with throwaway host and client keys, and logs in as root.
//!
//! Needs root (sshd logs in as the current user, root) and `/usr/sbin/sshd`
//! (`apt-get install -y openssh-server`). Not root: the tests print why and pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchwave_core::HostId;
use patchwave_transport::{
    fetch_host_key, AddMode, AddOutcome, ClientKey, Command, KeySource, KnownHosts, SshContext,
    SshSettings, SshTarget, SshTransport, Transport, TransportError,
};

const SSHD: &str = "/usr/sbin/sshd";

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn keygen(path: &Path) {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test",
            "-f",
            path.to_str().unwrap(),
        ],
    );
}

/// `SHA256:…` as ssh-keygen prints it.
fn ssh_keygen_fingerprint(pub_key: &Path) -> String {
    run(
        "ssh-keygen",
        &["-l", "-E", "sha256", "-f", pub_key.to_str().unwrap()],
    )
    .split_whitespace()
    .nth(1)
    .unwrap()
    .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every process below `root` (children, grandchildren, …).
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the `(comm)`, which may itself contain spaces or parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// Throwaway client keys: `client` is authorised, `stranger` is not.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("client"));
        keygen(&dir.path().join("stranger"));
        Keys { dir }
    }
    fn client(&self) -> PathBuf {
        self.dir.path().join("client")
    }
    fn stranger(&self) -> PathBuf {
        self.dir.path().join("stranger")
    }
}

/// One sshd on 127.0.0.1, started for one test and killed when dropped.
struct Sshd {
    dir: tempfile::TempDir,
    keys: Keys,
    port: u16,
    child: Option<Child>,
    starts: usize,
}

impl Sshd {
    /// `None` (after saying why) when the tests cannot run here.
    fn start() -> Option<Sshd> {
        if !is_root() {
            eprintln!("SKIPPED: the SSH transport tests need root (sshd logs in as the current user); not root");
            return None;
        }
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install it with `apt-get install -y openssh-server`"
        );
        fs::create_dir_all("/run/sshd").unwrap(); // sshd's privilege-separation directory
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new();
        keygen(&dir.path().join("host_key"));
        fs::copy(
            keys.client().with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let mut sshd = Sshd {
            dir,
            keys,
            port: 0,
            child: None,
            starts: 0,
        };
        // Another test may grab the same free port between our probe and sshd's bind.
        for _ in 0..5 {
            sshd.port = free_port();
            if sshd.spawn() {
                return Some(sshd);
            }
        }
        panic!("sshd did not start; log:\n{}", sshd.log());
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    /// Successful logins so far, as sshd logged them.
    fn logins(&self) -> usize {
        self.log().matches("Accepted publickey for root").count()
    }

    fn spawn(&mut self) -> bool {
        let d = self.dir.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\nPidFile none\nUsePAM no\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel INFO\n"
        );
        fs::write(self.path("sshd_config"), config).unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("sshd.log"))
            .unwrap();
        let child = std::process::Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.path("sshd_config"))
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        let ready = format!("Server listening on 127.0.0.1 port {}", self.port);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.log().matches(&ready).count() >= self.starts {
                return true;
            }
            if let Some(c) = self.child.as_mut() {
                if c.try_wait().unwrap().is_some() {
                    self.child = None;
                    self.starts -= 1;
                    return false;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL sshd and every process it started (per-connection children, sessions).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let mut pids = descendants(child.id());
            pids.push(child.id());
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .status();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "sshd did not restart; log:\n{}", self.log());
    }

    fn restart_with_new_host_key(&mut self) {
        self.kill();
        keygen(&self.path("host_key"));
        assert!(self.spawn(), "sshd did not restart; log:\n{}", self.log());
    }

    fn host_fingerprint(&self) -> String {
        ssh_keygen_fingerprint(&self.path("host_key.pub"))
    }

    /// A known_hosts file enrolling the current host key.
    fn known_hosts(&self) -> Arc<KnownHosts> {
        let key = fs::read_to_string(self.path("host_key.pub")).unwrap();
        let path = self.path("known_hosts");
        fs::write(&path, format!("[127.0.0.1]:{} {key}", self.port)).unwrap();
        Arc::new(KnownHosts::load(path).unwrap())
    }

    fn context(&self) -> Arc<SshContext> {
        self.context_with(
            self.known_hosts(),
            &self.keys.client(),
            SshSettings::default(),
        )
    }

    fn context_with(
        &self,
        known_hosts: Arc<KnownHosts>,
        key: &Path,
        settings: SshSettings,
    ) -> Arc<SshContext> {
        let key = ClientKey::load(&KeySource::File(key.to_path_buf())).unwrap();
        SshContext::new(key, known_hosts, settings)
    }

    fn transport(&self, ctx: &Arc<SshContext>, host: &str) -> SshTransport {
        ctx.transport(target(host, self.port))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn target(host: &str, port: u16) -> SshTarget {
    SshTarget {
        host: HostId::from(host),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
    }
}

fn cmd(program: &str, args: &[&str]) -> Command {
    Command::new(program, args, Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argv_is_preserved_exactly() {
    let Some(sshd) = Sshd::start() else { return };
    let t = sshd.transport(&sshd.context(), "h1");
    let args = [
        "%s|\n",
        "a b",
        "it's",
        "\"dq\"",
        "$HOME",
        "a;b",
        "`id`",
        "$(id)",
        "*",
        "",
        "  lead",
        "back\\slash",
        "new\nline",
        "-n",
        "'",
        "''",
    ];
    let out = t.exec(&cmd("printf", &args)).await.unwrap();
    assert_eq!(out.status, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let expected: String = args[1..].iter().map(|a| format!("{a}|\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_is_only_what_was_asked() {
    let Some(sshd) = Sshd::start() else { return };
    let t = sshd.transport(&sshd.context(), "h1");
    let mut c = cmd("env", &[]);
    c.env
        .push(("DEBIAN_FRONTEND".into(), "noninteractive".into()));
    c.env.push(("TRICKY".into(), "a 'b' $c; d".into()));
    let out = t.exec(&c).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "DEBIAN_FRONTEND=noninteractive",
            "LANG=C",
            "LC_ALL=C",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TRICKY=a 'b' $c; d",
        ]
    );

    let mut bad = cmd("touch", &[sshd.path("ran").to_str().unwrap()]);
    bad.env.push(("NOT-A-NAME".into(), "x".into()));
    let err = t.exec(&bad).await.unwrap_err();
    assert!(matches!(err, TransportError::Spawn { .. }), "{err}");
    assert!(!sshd.path("ran").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_stderr_and_exit_status() {
    let Some(sshd) = Sshd::start() else { return };
    let t = sshd.transport(&sshd.context(), "h1");
    let mut c = cmd("sh", &["-c", "cat; echo oops >&2; exit 3"]);
    c.stdin = Some(b"fed".to_vec());
    let out = t.exec(&c).await.unwrap();
    assert_eq!(
        (out.status, &out.stdout[..], &out.stderr[..]),
        (3, &b"fed"[..], &b"oops\n"[..])
    );

    // Without stdin the program reads EOF at once (like /dev/null locally).
    let out = t.exec(&cmd("cat", &[])).await.unwrap();
    assert_eq!((out.status, out.stdout.len()), (0, 0));

    // Megabytes both ways at once: flow control must not deadlock.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = cmd("cat", &[]);
    c.stdin = Some(big.clone());
    let out = t.exec(&c).await.unwrap();
    assert!(
        out.stdout == big,
        "round trip changed {} bytes into {}",
        big.len(),
        out.stdout.len()
    );

    let out = t.exec(&cmd("sh", &["-c", "kill -TERM $$"])).await.unwrap();
    assert_eq!(out.status, 128 + 15);
    let out = t.exec(&cmd("sh", &["-c", "kill -USR2 $$"])).await.unwrap();
    assert_eq!(out.status, 128 + 12);

    let err = t.exec(&cmd("no-such-program-xyz", &[])).await.unwrap_err();
    assert!(matches!(err, TransportError::Spawn { .. }), "{err}");
    // A program exiting 127 by itself is its own status, not a spawn failure.
    let out = t.exec(&cmd("sh", &["-c", "exit 127"])).await.unwrap();
    assert_eq!(out.status, 127);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_command_and_keeps_the_connection() {
    let Some(sshd) = Sshd::start() else { return };
    let t = sshd.transport(&sshd.context(), "h1");
    let late = sshd.path("late");
    let script = format!("sleep 2; touch {}", late.display());
    let mut c = cmd("sh", &["-c", &script]);
    c.timeout = Duration::from_millis(500);
    let err = t.exec(&c).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Timeout { after, during, .. } if *after == Duration::from_millis(500) && during.contains("running")),
        "{err}"
    );
    assert_eq!(t.exec(&cmd("true", &[])).await.unwrap().status, 0);
    assert_eq!(t.connections_opened(), 1);
    // The remote program was killed, not left running.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !late.exists(),
        "the timed-out command kept running; sshd log:\n{}",
        sshd.log()
    );
}

/// `[ssh] command_timeout` bounds every command, even one that asks for longer, and the
/// host kills it at the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_timeout_caps_a_longer_command_timeout() {
    let Some(sshd) = Sshd::start() else { return };
    let settings = SshSettings {
        command_timeout: Some(Duration::from_millis(500)),
        ..SshSettings::default()
    };
    let ctx = sshd.context_with(sshd.known_hosts(), &sshd.keys.client(), settings);
    let t = sshd.transport(&ctx, "h1");
    let late = sshd.path("late-capped");
    let script = format!("sleep 2; touch {}", late.display());
    // The command's own limit (20 s) is far above the cap.
    let started = Instant::now();
    let err = t.exec(&cmd("sh", &["-c", &script])).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Timeout { after, during, .. } if *after == Duration::from_millis(500) && during.contains("running")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A command shorter than the cap runs to its end.
    let out = t
        .exec(&cmd("sh", &["-c", "sleep 0.1; echo done"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"done\n");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !late.exists(),
        "the capped command kept running on the host; sshd log:\n{}",
        sshd.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_exec_is_still_bounded_by_its_time_limit() {
    let Some(sshd) = Sshd::start() else { return };
    let t = Arc::new(sshd.transport(&sshd.context(), "h1"));
    let (started, late) = (sshd.path("started"), sshd.path("late"));
    // Root sessions cannot be signalled over SSH, so what bounds a cancelled command is
    // its time limit, enforced on the host.
    let script = format!(
        "touch {}; sleep 3; touch {}",
        started.display(),
        late.display()
    );
    let running = {
        let t = Arc::clone(&t);
        let mut c = cmd("sh", &["-c", &script]);
        c.timeout = Duration::from_secs(1);
        tokio::spawn(async move { t.exec(&c).await })
    };
    let until = Instant::now() + Duration::from_secs(10);
    while !started.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.exists(), "the command never started");
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !late.exists(),
        "the cancelled command outlived its time limit"
    );
    assert_eq!(t.exec(&cmd("true", &[])).await.unwrap().status, 0);
    assert_eq!(t.connections_opened(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_cap() {
    let Some(sshd) = Sshd::start() else { return };
    let settings = SshSettings {
        max_output: 1 << 20,
        ..SshSettings::default()
    };
    let ctx = sshd.context_with(sshd.known_hosts(), &sshd.keys.client(), settings);
    let t = sshd.transport(&ctx, "h1");
    let err = t
        .exec(&cmd("head", &["-c", "10000000", "/dev/zero"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::OutputTooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );
    let out = t
        .exec(&cmd("head", &["-c", "1000000", "/dev/zero"]))
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 1_000_000);
    assert_eq!(t.connections_opened(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_many_commands() {
    let Some(sshd) = Sshd::start() else { return };
    let ctx = sshd.context();
    let t = Arc::new(sshd.transport(&ctx, "h1"));
    for i in 0..20 {
        let out = t.exec(&cmd("echo", &[&i.to_string()])).await.unwrap();
        assert_eq!(out.stdout, format!("{i}\n").into_bytes());
    }
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { t.exec(&cmd("echo", &[&i.to_string()])).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.unwrap().unwrap().stdout,
            format!("{i}\n").into_bytes()
        );
    }
    assert_eq!(t.connections_opened(), 1);
    assert_eq!(ctx.stats().connections_opened, 1);
    assert_eq!(ctx.stats().commands_started, 32);
    assert_eq!(sshd.logins(), 1, "sshd saw more than one login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_is_refused_and_nothing_runs() {
    let Some(sshd) = Sshd::start() else { return };
    let empty = Arc::new(KnownHosts::load(sshd.path("empty_known_hosts")).unwrap());
    // An entry for another port of the same address does not count.
    let key = fs::read_to_string(sshd.path("host_key.pub")).unwrap();
    fs::write(sshd.path("other_known_hosts"), format!("127.0.0.1 {key}")).unwrap();
    let other_port = Arc::new(KnownHosts::load(sshd.path("other_known_hosts")).unwrap());
    for kh in [empty, other_port] {
        let ctx = sshd.context_with(kh, &sshd.keys.client(), SshSettings::default());
        let t = sshd.transport(&ctx, "h1");
        let ran = sshd.path("ran");
        let err = t
            .exec(&cmd("touch", &[ran.to_str().unwrap()]))
            .await
            .unwrap_err();
        match &err {
            TransportError::UnknownHostKey { fingerprint, .. } => {
                assert_eq!(*fingerprint, sshd.host_fingerprint())
            }
            other => panic!("{other}"),
        }
        assert!(
            !ran.exists(),
            "the command ran despite the unknown host key"
        );
    }
    assert_eq!(sshd.logins(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_host_key_is_refused_and_nothing_runs() {
    let Some(mut sshd) = Sshd::start() else {
        return;
    };
    let ctx = sshd.context();
    let t = sshd.transport(&ctx, "h1");
    assert_eq!(t.exec(&cmd("true", &[])).await.unwrap().status, 0);
    let old = sshd.host_fingerprint();
    sshd.restart_with_new_host_key();
    let new = sshd.host_fingerprint();
    assert_ne!(old, new);
    let ran = sshd.path("ran");
    let err = t
        .exec(&cmd("touch", &[ran.to_str().unwrap()]))
        .await
        .unwrap_err();
    match &err {
        TransportError::HostKeyMismatch {
            expected,
            presented,
            ..
        } => {
            assert_eq!((expected, presented), (&old, &new));
        }
        other => panic!("{other}"),
    }
    assert!(
        !ran.exists(),
        "the command ran despite the changed host key"
    );
    assert_eq!(sshd.logins(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_key_is_auth_failed() {
    let Some(sshd) = Sshd::start() else { return };
    let ctx = sshd.context_with(
        sshd.known_hosts(),
        &sshd.keys.stranger(),
        SshSettings::default(),
    );
    let t = sshd.transport(&ctx, "h1");
    let ran = sshd.path("ran");
    let err = t
        .exec(&cmd("touch", &[ran.to_str().unwrap()]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::AuthFailed { user, .. } if user == "root"),
        "{err}"
    );
    assert!(!ran.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_refused() {
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let kh = Arc::new(KnownHosts::load(dir.path().join("known_hosts")).unwrap());
    let key = ClientKey::load(&KeySource::File(keys.client())).unwrap();
    let ctx = SshContext::new(key, kh, SshSettings::default());
    let t = ctx.transport(target("h1", free_port()));
    let err = t.exec(&cmd("true", &[])).await.unwrap_err();
    assert!(matches!(err, TransportError::Refused { .. }), "{err}");
    assert!(err.is_unreachable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_a_connect_timeout() {
    // Accepts TCP but never speaks SSH.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let kh = Arc::new(KnownHosts::load(dir.path().join("known_hosts")).unwrap());
    let key = ClientKey::load(&KeySource::File(keys.client())).unwrap();
    let settings = SshSettings {
        connect_timeout: Duration::from_millis(300),
        ..SshSettings::default()
    };
    let ctx = SshContext::new(key, kh, settings);
    let t = ctx.transport(target("h1", port));
    let err = t.exec(&cmd("true", &[])).await.unwrap_err();
    assert!(
        matches!(&err, TransportError::Timeout { during, .. } if during == "connecting"),
        "{err}"
    );
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_lost_mid_command_is_disconnected() {
    let Some(mut sshd) = Sshd::start() else {
        return;
    };
    let t = Arc::new(sshd.transport(&sshd.context(), "h1"));
    let started = sshd.path("started");
    let script = format!("echo run >> {}; sleep 5", started.display());
    let running = {
        let t = Arc::clone(&t);
        tokio::spawn(async move { t.exec(&cmd("sh", &["-c", &script])).await })
    };
    let until = Instant::now() + Duration::from_secs(10);
    while !started.exists() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.exists(), "the command never started");
    sshd.kill();
    let err = running.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, TransportError::Disconnected { program, .. } if program == "sh"),
        "{err}"
    );

    // Not re-run behind our back, and the next command gets a new connection.
    sshd.restart();
    assert_eq!(t.exec(&cmd("true", &[])).await.unwrap().status, 0);
    assert_eq!(t.connections_opened(), 2);
    assert_eq!(
        fs::read_to_string(&started).unwrap(),
        "run\n",
        "the lost command was re-run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_when_the_connection_died_between_commands() {
    let Some(mut sshd) = Sshd::start() else {
        return;
    };
    let t = sshd.transport(&sshd.context(), "h1");
    assert_eq!(t.exec(&cmd("true", &[])).await.unwrap().status, 0);
    sshd.restart();
    let out = t.exec(&cmd("echo", &["again"])).await.unwrap();
    assert_eq!(out.stdout, b"again\n");
    assert_eq!(t.connections_opened(), 2);
    assert_eq!(sshd.logins(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_with_fetch_host_key_then_connect() {
    let Some(sshd) = Sshd::start() else { return };
    let presented = fetch_host_key("127.0.0.1", sshd.port, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(presented.fingerprint, sshd.host_fingerprint());
    assert_eq!(sshd.logins(), 0, "fetching the host key must not log in");

    let kh = Arc::new(KnownHosts::load(sshd.path("enrolled")).unwrap());
    assert_eq!(
        kh.add(
            "127.0.0.1",
            sshd.port,
            &presented.key,
            AddMode::RefuseIfDifferent
        )
        .unwrap(),
        AddOutcome::Added
    );
    let ctx = sshd.context_with(Arc::clone(&kh), &sshd.keys.client(), SshSettings::default());
    assert_eq!(
        sshd.transport(&ctx, "h1")
            .exec(&cmd("true", &[]))
            .await
            .unwrap()
            .status,
        0
    );
    assert_eq!(
        kh.add(
            "127.0.0.1",
            sshd.port,
            &presented.key,
            AddMode::RefuseIfDifferent
        )
        .unwrap(),
        AddOutcome::AlreadyTrusted
    );

    // A different key is refused unless replacing is asked for.
    let other_key = fetch_other_key(&sshd);
    assert!(kh
        .add(
            "127.0.0.1",
            sshd.port,
            &other_key,
            AddMode::RefuseIfDifferent
        )
        .is_err());
    let text = fs::read_to_string(kh.path()).unwrap();
    assert_eq!(text.lines().count(), 1);

    // ssh-keygen -H hashes the host names; such a file still matches.
    run(
        "ssh-keygen",
        &["-q", "-H", "-f", kh.path().to_str().unwrap()],
    );
    let hashed = fs::read_to_string(kh.path()).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");
    let kh = Arc::new(KnownHosts::load(kh.path()).unwrap());
    let ctx = sshd.context_with(kh, &sshd.keys.client(), SshSettings::default());
    assert_eq!(
        sshd.transport(&ctx, "h2")
            .exec(&cmd("true", &[]))
            .await
            .unwrap()
            .status,
        0
    );
}

fn fetch_other_key(sshd: &Sshd) -> patchwave_transport::PublicKey {
    let text = fs::read_to_string(sshd.keys.stranger().with_extension("pub")).unwrap();
    patchwave_transport::PublicKey::from_openssh(text.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_concurrency_bound_holds_across_hosts() {
    let Some(sshd) = Sshd::start() else { return };
    let settings = SshSettings {
        max_concurrent: 2,
        ..SshSettings::default()
    };
    let ctx = sshd.context_with(sshd.known_hosts(), &sshd.keys.client(), settings);
    let hosts = [
        Arc::new(sshd.transport(&ctx, "h1")),
        Arc::new(sshd.transport(&ctx, "h2")),
    ];
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let t = Arc::clone(&hosts[i % 2]);
            tokio::spawn(async move { t.exec(&cmd("sleep", &["0.5"])).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status, 0);
    }
    // 6 commands of 0.5 s, at most 2 at a time: at least 3 rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let stats = ctx.stats();
    assert!(stats.peak_in_flight <= 2, "{stats:?}");
    assert_eq!(stats.commands_started, 6);
    assert_eq!(
        (hosts[0].connections_opened(), hosts[1].connections_opened()),
        (1, 1)
    );
}

/// Not a check: prints per-command latency over a reused vs a fresh connection.
/// `cargo test -p patchwave-transport --test ssh -- --ignored --nocapture latency`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn latency_report() {
    let Some(sshd) = Sshd::start() else { return };
    let ctx = sshd.context();
    let reused = sshd.transport(&ctx, "h1");
    reused.exec(&cmd("true", &[])).await.unwrap();
    let n = 50;
    let t0 = Instant::now();
    for _ in 0..n {
        reused.exec(&cmd("true", &[])).await.unwrap();
    }
    let per_reused = t0.elapsed() / n;
    let m = 10;
    let t0 = Instant::now();
    for _ in 0..m {
        sshd.transport(&ctx, "fresh")
            .exec(&cmd("true", &[]))
            .await
            .unwrap();
    }
    let per_fresh = t0.elapsed() / m;
    eprintln!("per command: reused connection {per_reused:?}, fresh connection {per_fresh:?}");
}
