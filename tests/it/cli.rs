//! The `patchwave` binary: scan this machine, read it back, exit codes, audit tampering.

use patchwave_core::{Environment, HostId, Installed, OsFacts};
use std::os::unix::fs::PermissionsExt;

use crate::support::Cli;

#[test]
fn scan_localhost_then_show_it_from_the_store() {
    if !std::path::Path::new("/var/lib/dpkg/status").exists() {
        eprintln!("SKIP: this machine has no dpkg database");
        return;
    }
    let cli = Cli::new();
    let (code, out, err) = cli.run(&["scan", "localhost"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("1 ok, 0 failed"), "{out}");
    let installed = crate::support::dpkg_oracle(&|args| {
        crate::support::stdout_of(std::process::Command::new(args[0]).args(&args[1..]))
    })
    .len();
    assert!(
        out.contains(&format!("{installed} packages installed")),
        "{out}"
    );

    let (code, out, _) = cli.run(&["hosts", "show", "localhost"]);
    assert_eq!(code, 0);
    for needle in [
        "os:",
        "packages:      ",
        "patch level:",
        "last scan:",
        "data:          fresh",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(
        out.contains(&format!("packages:      {installed}")),
        "{out}"
    );

    let (code, out, _) = cli.run(&["hosts", "show", "localhost", "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["summary"]["package_count"], installed as u64);
    assert_eq!(doc["freshness"], "fresh");

    let (code, out, _) = cli.run(&["hosts", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("localhost") && l.contains("fresh")),
        "{out}"
    );

    // The chain of what the plugin ran verifies.
    let (code, out, _) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chain intact"), "{out}");
}

#[test]
fn unknown_host_is_exit_5_and_bad_config_is_exit_2_with_every_problem() {
    let cli = Cli::new();
    let (code, _, err) = cli.run(&["hosts", "show", "nosuchhost"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("nosuchhost"), "{err}");

    let (code, _, err) = cli.run(&["scan", "nosuchhost"]);
    assert_eq!(code, 5, "{err}");

    let bad = cli.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[hosts]]\nid = \"a\"\nenv = \"staging\"\naddress = \"x\"\nkey = \"file:/k\"\n\n[[hosts]]\nid = \"a\"\ntransport = \"telnet\"\n",
    )
    .unwrap();
    let (code, _, err) = cli.run(&["--config", bad.to_str().unwrap(), "hosts", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("3 problems"), "{err}");
    assert!(err.contains("`a` is used by more than one host"), "{err}");
    assert!(
        err.contains("`staging`") && err.contains("`telnet`"),
        "{err}"
    );
}

#[test]
fn plugin_compare_prints_exactly_one_symbol() {
    let cli = Cli::new();
    for (a, b, want) in [
        ("1.0~rc1", "1.0", "<\n"),
        ("1:0.1", "2.0", ">\n"),
        ("1.0", "1.0-0", "=\n"),
    ] {
        let (code, out, err) = cli.run(&["plugin", "compare", "debian", a, b]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, want, "{a} vs {b}");
    }
    let (code, _, err) = cli.run(&["plugin", "compare", "debian", "1.0", "not a version"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a version"), "{err}");
    let (code, _, _) = cli.run(&["plugin", "compare", "nosuch", "1", "2"]);
    assert_eq!(code, 5);
}

#[test]
fn plugin_inspect_shows_what_is_granted() {
    let cli = Cli::new();
    let (code, out, err) = cli.run(&["plugin", "inspect", "debian"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name:        debian"), "{out}");
    // Embedded defaults grant reads, not changes.
    assert!(
        out.lines()
            .any(|l| l.contains("[granted]") && l.contains("dpkg-query -W")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("[DENIED ]") && l.contains("apt-get install")),
        "{out}"
    );
}

#[test]
fn a_tampered_audit_line_is_named() {
    let cli = Cli::new();
    // Any plugin activity writes audit lines; a scan of this machine writes several.
    let (code, out, err) = cli.run(&["scan", "localhost"]);
    assert!(code == 0 || code == 3, "{out}{err}");
    let log = cli.state().join("audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines.len() >= 4, "{text}");
    let (code, _, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");

    // Edit line 3: claim a different exit status.
    lines[2] = lines[2].replacen(
        "\"decision\":\"allowed\"",
        "\"decision\":\"denied-not-granted\"",
        1,
    );
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let (code, _, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("edited"), "{err}");
}

/// A scan of this machine (any plugin activity writes audit lines); the log's path and
/// lines.
fn scanned() -> (Cli, std::path::PathBuf, Vec<Vec<u8>>) {
    let cli = Cli::new();
    let (code, out, err) = cli.run(&["scan", "localhost"]);
    assert!(code == 0 || code == 3, "{out}{err}");
    let log = cli.state().join("audit.jsonl");
    let lines = log_lines(&log);
    assert!(lines.len() >= 4, "{lines:?}");
    (cli, log, lines)
}

fn log_lines(log: &std::path::Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(log).unwrap();
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(log: &std::path::Path, lines: &[Vec<u8>]) {
    std::fs::write(log, lines.concat()).unwrap();
}

#[test]
fn audit_lines_that_parse_the_same_but_differ_in_bytes_are_named() {
    let (cli, log, lines) = scanned();
    let text = |i: usize| String::from_utf8(lines[i].clone()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "whitespace",
            text(2).replacen("\",\"", "\", \"", 1).into_bytes(),
            "canonical form",
        ),
        (
            // A reader that takes the first `program` sees FORGED; one that takes the last
            // sees the genuine line, whose hash checks out.
            "a prepended duplicate key",
            format!("{{\"program\":\"FORGED\",{}", &text(2)[1..]).into_bytes(),
            "duplicate key `program`",
        ),
        (
            "a non-UTF-8 byte",
            {
                let mut l = lines[2].clone();
                l[20] = 0xff;
                l
            },
            "not UTF-8",
        ),
    ];
    for (what, line, reason) in cases {
        let mut edited = lines.clone();
        edited[2] = line;
        write_lines(&log, &edited);
        let (code, out, err) = cli.run(&["audit", "verify"]);
        assert_eq!(code, 4, "{what}: {out}{err}");
        assert!(
            err.contains("line 3") && err.contains(reason),
            "{what}: {err}"
        );
    }
    write_lines(&log, &lines);
    let (code, out, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_cut_tail_and_a_log_rewritten_from_scratch_are_found_by_the_stores_anchor() {
    let (cli, log, lines) = scanned();
    let n = lines.len();
    let (code, out, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("chain intact, {n} lines"))
            && out.contains(&format!("anchored: the store recorded line {n} ")),
        "{out}"
    );

    // Cut the last two lines: what is left is a chain that verifies on its own.
    write_lines(&log, &lines[..n - 2]);
    let (code, _, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&format!(
            "the log ends at line {} but the store recorded line {n}",
            n - 2
        )),
        "{err}"
    );
    // Every command that opens the log refuses it too, saying what to do.
    let (code, _, err) = cli.run(&["scan", "localhost"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("audit reanchor"), "{err}");

    // Rewritten from scratch by the real writer: another state directory's scan.
    let (_other, other_log, _) = scanned();
    std::fs::copy(&other_log, &log).unwrap();
    let (code, _, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&format!("line {n} has hash")) && err.contains("rewritten"),
        "{err}"
    );

    // An operator accepts the log as it is; that is recorded in it, and work goes on.
    let (code, out, err) = cli.run(&["audit", "reanchor", "--by", "alice", "--reason", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("re-anchored at line {}", n + 1)),
        "{out}"
    );
    let (code, out, err) = cli.run(&["scan", "localhost"]);
    assert!(code == 0 || code == 3, "{out}{err}");
    let (code, out, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "notice: line {}: re-anchored by alice (test)",
            n + 1
        )),
        "{out}"
    );
}

#[test]
fn a_torn_last_line_is_quarantined_and_commands_go_on() {
    let (cli, log, lines) = scanned();
    let n = lines.len();
    // What a crash in the middle of writing one more line leaves.
    let mut torn = lines.clone();
    torn.push(lines[n - 1][..lines[n - 1].len() / 2].to_vec());
    write_lines(&log, &torn);
    let (code, out, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("the last line ({}) is torn", n + 1)),
        "{out}"
    );

    // The next command moves it aside, records that, and does its work.
    let (code, out, err) = cli.run(&["scan", "localhost"]);
    assert!(code == 0 || code == 3, "{out}{err}");
    let quarantined: Vec<std::path::PathBuf> = std::fs::read_dir(cli.state())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("audit.jsonl.torn-"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(std::fs::read(&quarantined[0]).unwrap(), torn[n]);
    let name = quarantined[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("audit.jsonl.torn-{}-", n + 1)),
        "{name}"
    );
    let (code, out, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("notice: line {}: a torn last line", n + 1)) && out.contains(&name),
        "{out}"
    );
    assert!(!out.contains("is torn"), "{out}");
}

#[test]
fn cvss_prints_score_and_severity_and_refuses_malformed_vectors() {
    let cli = Cli::new();
    for (vector, want) in [
        (
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "9.8 Critical\n",
        ),
        ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "7.8 High\n"),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            "9.3 Critical\n",
        ),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "0.0 None\n"),
    ] {
        let (code, out, err) = cli.run(&["cvss", vector]);
        assert_eq!((code, out.as_str()), (0, want), "{vector}: {err}");
    }
    for (vector, why) in [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H", "missing"),
        ("CVSS:2.0/AV:N", "unsupported"),
        ("AV:N/AC:L", "prefix"),
        ("CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "twice"),
    ] {
        let (code, out, err) = cli.run(&["cvss", vector]);
        assert_eq!(code, 2, "{vector}: {out}");
        assert!(out.is_empty(), "{vector}: {out}");
        assert!(err.to_lowercase().contains(why), "{vector}: {err}");
    }
}

#[test]
fn advisories_import_fetches_an_osv_url_from_a_loopback_server() {
    use std::io::{Read, Write};

    /// Answers `/usn.json` with `body` and anything else with 404, one request per
    /// connection, for as long as the test runs.
    fn serve(listener: std::net::TcpListener, body: Vec<u8>) {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let (status, body) = match head.split(' ').nth(1) {
                Some("/usn.json") => ("200 OK", body.as_slice()),
                _ => ("404 Not Found", &b"not here"[..]),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    }

    let usn = std::fs::read(
        crate::support::repo().join("host/advisory/tests/data/ubuntu-usn/USN-6793-1.json"),
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || serve(listener, usn));

    let cli = Cli::new();
    let url = format!("http://127.0.0.1:{port}/usn.json");
    let (code, out, err) = cli.run(&["advisories", "import", "--osv", &url]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        out,
        "osv: 1 documents; 1 advisories new, 0 updated, 0 unchanged\n"
    );

    let missing = format!("http://127.0.0.1:{port}/kev.json");
    let (code, out, err) = cli.run(&["advisories", "import", "--kev", &missing]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        out,
        format!(
            "kev: not imported, nothing changed: {missing}: answered status 404 (expected 200)\n"
        )
    );
    assert_eq!(err, "error: not imported: kev\n");

    // One feed failing does not stop the others, and the output says which were stored.
    let (code, out, err) = cli.run(&["advisories", "import", "--osv", &url, "--kev", &missing]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        out,
        format!(
            "osv: 1 documents; 0 advisories new, 0 updated, 1 unchanged\n\
             kev: not imported, nothing changed: {missing}: answered status 404 (expected 200)\n"
        )
    );
    assert_eq!(
        err,
        "error: not imported: kev; imported: osv (each feed is stored on its own)\n"
    );
}

/// What a hostile host can put in its os-release, package names and command output: OSC 0
/// (retitle the window, ended by BEL), a CSI clear-screen, CR (overwrite the line), the
/// one-byte C1 CSI, a bidirectional override and a line feed.
const HOSTILE: &str = "Debian\x1b]0;owned\x07 12\x1b[2J\rfake\u{9b}31m\u{202e}x\ny";
/// The same text as it must appear on the terminal.
const HOSTILE_SHOWN: &str = r"Debian\x1b]0;owned\x07 12\x1b[2J\rfake\u{9b}31m\u{202e}x\ny";

/// Characters that must never reach the terminal raw: every C0 control but line feed and
/// tab, DEL, every C1 control, and the bidirectional overrides and isolates.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c < ' ' && c != '\n' && c != '\t')
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect()
}

/// Writes into the CLI's store what a scan of `host` would have: facts from `pretty_name`,
/// these packages, and then, when `error` is given, a failed attempt with that error.
fn store_scan(
    cli: &Cli,
    host: &str,
    pretty_name: &str,
    packages: Vec<Installed>,
    error: Option<&str>,
) {
    use patchwave_store::{HostRecord, ScanOutcome, ScanResult, SqliteStore, Store};
    std::fs::create_dir_all(cli.state()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(cli.state().join("patchwave.db")).unwrap();
        let id = HostId::from(host);
        store
            .register_host(&HostRecord {
                id: id.clone(),
                address: "10.0.0.9".into(),
                port: None,
                env: Environment::Prod,
                scope: "web".into(),
                tags: vec![],
                transport: "ssh".into(),
            })
            .await
            .unwrap();
        let now = chrono::Utc::now();
        let facts = OsFacts {
            id: "debian".into(),
            version_id: "12".into(),
            codename: None,
            pretty_name: Some(pretty_name.into()),
            kernel: "6.1.0\x1b[8m".into(),
            arch: "amd64".into(),
            reboot_required: false,
        };
        let ok = ScanOutcome {
            started_at: now - chrono::Duration::seconds(2),
            finished_at: now - chrono::Duration::seconds(1),
            result: ScanResult::Ok {
                plugin: "debian".into(),
                plugin_digest: "d1g3st".into(),
                facts,
                packages,
                upgradable: vec![],
            },
        };
        store.record_scan(&id, ok).await.unwrap();
        if let Some(error) = error {
            let failed = ScanOutcome {
                started_at: now - chrono::Duration::milliseconds(500),
                finished_at: now,
                result: ScanResult::Failed {
                    error: error.into(),
                },
            };
            store.record_scan(&id, failed).await.unwrap();
        }
    });
}

fn package(name: &str, version: &str) -> Installed {
    Installed {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: None,
    }
}

/// Before, `scan`, `hosts list` and `hosts show` printed what the host wrote as it was:
/// its escape sequences reached the operator's terminal.
#[test]
fn host_supplied_text_reaches_the_terminal_escaped() {
    let cli = Cli::new();
    store_scan(
        &cli,
        "evil",
        HOSTILE,
        vec![package("libfoo\x1b[31m", "1.0\r2.0")],
        Some(&format!("dpkg-query: {HOSTILE}")),
    );
    for args in [
        &["hosts", "list"][..],
        &["hosts", "show", "evil"],
        &["hosts", "show", "evil", "--packages"],
        &["hosts", "show", "evil", "--json", "--packages"],
        &["hosts", "list", "--json"],
    ] {
        let (code, out, err) = cli.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(raw_controls(&out), Vec::<char>::new(), "{args:?}:\n{out}");
    }
    let (_, out, _) = cli.run(&["hosts", "show", "evil", "--packages"]);
    for line in [
        format!("os:            {HOSTILE_SHOWN}"),
        r"kernel:        6.1.0\x1b[8m (amd64)".to_string(),
        format!("  result:      FAILED: dpkg-query: {HOSTILE_SHOWN}"),
        r"libfoo\x1b[31m	1.0\r2.0	amd64".to_string(),
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }
    let (_, out, _) = cli.run(&["hosts", "list"]);
    assert!(out.contains(HOSTILE_SHOWN), "{out}");
    // JSON stays JSON and carries the value exactly as the host wrote it.
    let (_, out, _) = cli.run(&["hosts", "show", "evil", "--json", "--packages"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["summary"]["facts"]["pretty_name"], HOSTILE);
    assert_eq!(doc["packages"][0]["name"], "libfoo\x1b[31m");
}

/// The same through a real scan of this machine, whose os-release is replaced by a hostile
/// one in a private mount namespace of the scanning process only.
#[test]
fn a_scan_of_a_hostile_os_release_prints_it_escaped() {
    if !std::path::Path::new("/var/lib/dpkg/status").exists() {
        eprintln!("SKIP: this machine has no dpkg database");
        return;
    }
    let private = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status();
    if !private.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: cannot make a private mount namespace here (needs root and unshare)");
        return;
    }
    let cli = Cli::new();
    let fake = cli.dir.path().join("os-release");
    // Double quotes keep every byte but `"`, `\`, `$` and `` ` `` as it is.
    let pretty = "Debian\x1b]0;owned\x07 12\x1b[2J\u{9b}31m\u{202e}x";
    std::fs::write(
        &fake,
        format!("PRETTY_NAME=\"{pretty}\"\nNAME=Debian\nID=debian\nVERSION_ID=12\n"),
    )
    .unwrap();
    let mut scan = std::process::Command::new("unshare");
    scan.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg("mount --bind \"$1\" /etc/os-release && shift && exec \"$@\"")
        .arg("sh")
        .arg(&fake)
        .arg(crate::support::patchwave_bin())
        .arg("--state-dir")
        .arg(cli.state())
        .arg("--plugin-dir")
        .arg(cli.dir.path().join("plugins"))
        .args(["scan", "localhost"])
        .env_remove("PATCHWAVE_CONFIG");
    let (code, out, err) = crate::support::run(&mut scan);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let shown = r"Debian\x1b]0;owned\x07 12\x1b[2J\u{9b}31m\u{202e}x";
    assert_eq!(raw_controls(&out), Vec::<char>::new(), "{out}");
    assert!(out.contains(&format!("localhost: {shown}: ")), "{out}");
    for args in [&["hosts", "list"][..], &["hosts", "show", "localhost"]] {
        let (code, out, err) = cli.run(args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(raw_controls(&out), Vec::<char>::new(), "{args:?}:\n{out}");
        assert!(out.contains(shown), "{args:?}:\n{out}");
    }
    // The store holds what the host said, byte for byte.
    let (_, out, _) = cli.run(&["hosts", "show", "localhost", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["summary"]["facts"]["pretty_name"], pretty);
}

/// Before, `hosts show … --packages | head` panicked inside `println!` once the reader had
/// gone ("failed printing to stdout: Broken pipe", exit 101).
#[test]
fn a_reader_that_closes_early_ends_the_command_quietly() {
    use std::io::Read;
    let cli = Cli::new();
    // Far more than a pipe holds, so writes go on after the reader has gone.
    let packages = (0..50_000)
        .map(|i| package(&format!("package-{i:05}"), "1.0-1"))
        .collect();
    store_scan(
        &cli,
        "localhost",
        "Debian GNU/Linux 12 (bookworm)",
        packages,
        None,
    );
    let mut child = cli
        .cmd(&["hosts", "show", "localhost", "--packages"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    assert!(
        first.starts_with(b"host:"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    drop(stdout);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err, "", "nothing to say about a closed pipe");
    assert_eq!(status.code(), Some(141), "128 + SIGPIPE: {status:?}");
}

/// Each of these was accepted (or panicked) before; each is now a usage error (exit 2)
/// that names what was wrong.
#[test]
fn bad_arguments_and_values_are_usage_errors_that_name_them() {
    let cli = Cli::new();
    let config = cli.dir.path().join("overflow.toml");
    std::fs::write(&config, "[scan]\nstale_after = \"307445734561825861m\"\n").unwrap();
    let (code, _, err) = cli.run(&["-c", config.to_str().unwrap(), "hosts", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(
            "scan.stale_after: duration `307445734561825861m` is longer than the maximum of 3650d"
        ),
        "{err}"
    );

    let (code, out, err) = cli.run(&["scan", "--concurrency", "0", "localhost"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("--concurrency") && err.contains("at least 1"),
        "{err}"
    );
    assert_eq!(out, "", "nothing was scanned");

    // A plannable rollout: this machine, scanned, in the config.
    store_scan(
        &cli,
        "localhost",
        "Debian GNU/Linux 12 (bookworm)",
        vec![package("acme", "1.0-1")],
        None,
    );
    let config = cli.dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        "[[hosts]]\nid = \"localhost\"\ntransport = \"local\"\nenv = \"non-prod\"\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let (code, out, err) = cli.run(&[
        "-c",
        c,
        "rollout",
        "plan",
        "--pin",
        "acme=1.0-2",
        "--ecosystem",
        "Debian:12",
    ]);
    // The control: with a known ecosystem the plan gets past the ecosystem check to the
    // canary's resolution, which this config does not grant the plugin (a plan resolves
    // the whole transaction on the canary before anything is staged).
    assert_eq!(code, 2, "the valid plan: {out}{err}");
    assert!(!err.contains("--ecosystem"), "{err}");
    assert!(
        err.contains("no host of the first stage could resolve the transaction: localhost"),
        "{err}"
    );

    let (code, out, err) = cli.run(&[
        "-c",
        c,
        "rollout",
        "plan",
        "--pin",
        "acme=1.0-2",
        "--ecosystem",
        "Bogus:1",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("--ecosystem `Bogus:1`"), "{err}");
    assert!(
        err.contains("Debian:<release>") && err.contains("Ubuntu:<yy.mm>[:LTS]"),
        "{err}"
    );
    let (code, out, err) = cli.run(&[
        "-c",
        c,
        "rollout",
        "plan",
        "--pin",
        "acme=1.0-2",
        "--ecosystem",
        "Rocky Linux:9",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("--ecosystem `Rocky Linux:9`: no loaded plugin orders its versions (the loaded plugins handle: Debian, Ubuntu)"),
        "{err}"
    );

    for (id, why) in [
        (
            "../x",
            "`../x` may only use letters, digits, `-`, `_` and `.`",
        ),
        ("-rf", "`-rf` must not start with `-` or `.`"),
    ] {
        // `--id=…`: a separate `-rf` would be read as flags before patchwave saw it.
        let flag = format!("--id={id}");
        let (code, out, err) = cli.run(&[
            "-c",
            c,
            "rollout",
            "start",
            &flag,
            "--no-tick",
            "--pin",
            "acme=1.0-2",
            "--ecosystem",
            "Debian:12",
        ]);
        assert_eq!(code, 2, "{out}{err}");
        assert_eq!(err, format!("error: --id {why}\n"));
        assert!(!out.contains("created"), "{out}");
    }
    let (code, out, _) = cli.run(&["-c", c, "rollout", "list"]);
    assert_eq!((code, out.as_str()), (0, ""), "no rollout was stored");
}

/// Before, `hosts trust --replace` replaced a changed key without anyone confirming the new
/// fingerprint.
#[test]
fn replacing_a_changed_host_key_needs_its_fingerprint_confirmed() {
    let Some(sshd) = crate::support::HostKeyServer::start() else {
        return;
    };
    let cli = Cli::new();
    let presented = sshd.fingerprint();
    // An older key of the host is enrolled.
    let old_key = cli.dir.path().join("old_key");
    crate::support::stdout_of(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-f")
            .arg(&old_key),
    );
    let old_pub = std::fs::read_to_string(old_key.with_extension("pub")).unwrap();
    let old_fp = crate::support::stdout_of(
        std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(old_key.with_extension("pub")),
    )
    .split_whitespace()
    .nth(1)
    .unwrap()
    .to_string();
    let known = cli.dir.path().join("known_hosts");
    let mut words = old_pub.split_whitespace();
    let enrolled = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port,
        words.next().unwrap(),
        words.next().unwrap()
    );
    std::fs::write(&known, &enrolled).unwrap();
    let config = cli.dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[defaults]\nkey = \"file:{}\"\nknown_hosts = \"{}\"\n\n[[hosts]]\nid = \"h1\"\naddress = \"127.0.0.1\"\nport = {}\n",
            old_key.display(),
            known.display(),
            sshd.port
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();

    // No terminal to ask and no fingerprint given: refused, with the command to run.
    let mut cmd = cli.cmd(&["-c", c, "hosts", "trust", "h1", "--replace"]);
    cmd.stdin(std::process::Stdio::null());
    let (code, out, err) = crate::support::run(&mut cmd);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(&old_fp) && err.contains(&presented), "{err}");
    let command = err.lines().last().unwrap().trim();
    assert!(
        command.ends_with(&format!(
            " -c {c} hosts trust h1 --replace --expect-fingerprint {presented}"
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        enrolled,
        "known_hosts changed"
    );

    // At a terminal: both fingerprints shown; anything but `yes` refuses.
    let bin = crate::support::patchwave_bin();
    let at_terminal = |answer: &str| {
        let line = format!(
            "{} --state-dir {} -c {c} hosts trust h1 --replace",
            bin.display(),
            cli.state().display()
        );
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = script.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, shown) = at_terminal("no");
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains(&format!("enrolled:  {old_fp}")), "{shown}");
    assert!(
        shown.contains(&format!("presented: {presented}")),
        "{shown}"
    );
    assert!(shown.contains("not confirmed; nothing recorded"), "{shown}");
    assert_eq!(
        std::fs::read_to_string(&known).unwrap(),
        enrolled,
        "known_hosts changed"
    );
    let (code, shown) = at_terminal("yes");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains(&format!("replacing {old_fp}")), "{shown}");

    // With the fingerprint given, no question is asked.
    std::fs::write(&known, &enrolled).unwrap();
    let mut cmd = cli.cmd(&[
        "-c",
        c,
        "hosts",
        "trust",
        "h1",
        "--replace",
        "--expect-fingerprint",
        &presented,
    ]);
    cmd.stdin(std::process::Stdio::null());
    let (code, out, err) = crate::support::run(&mut cmd);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("replacing {old_fp}")), "{out}");
}

#[test]
fn without_a_config_root_never_reads_the_working_directory() {
    use std::os::unix::fs::chown;
    if patchwave_fs::runner_uid() != 0 {
        eprintln!("SKIP: this test runs the binary as root");
        return;
    }
    // A folder another user controls, holding what defaults relative to the working
    // directory used to pick up: a plugin in build/plugins and state in .patchwave.
    let cwd = tempfile::tempdir().unwrap();
    let plugins = cwd.path().join("build/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        crate::support::wasm("patchwave_fixture_hostile"),
        plugins.join("hostile.wasm"),
    )
    .unwrap();
    let planted = cwd.path().join(".patchwave");
    std::fs::create_dir(&planted).unwrap();
    std::fs::write(planted.join("patchwave.db"), "planted").unwrap();
    std::fs::write(planted.join("audit.jsonl"), "planted\n").unwrap();
    for p in [
        cwd.path(),
        &cwd.path().join("build"),
        &plugins,
        &plugins.join("hostile.wasm"),
        &planted,
        &planted.join("patchwave.db"),
        &planted.join("audit.jsonl"),
    ] {
        chown(p, Some(65534), Some(65534)).unwrap();
    }

    // Root's defaults are system paths: give this run an empty /var/lib of its own, in a
    // private mount namespace, so the real one is not touched.
    let var_lib = tempfile::tempdir().unwrap();
    let in_namespace = |args: &[&str]| {
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" /var/lib && cd "$2" && shift 2 && exec "$@""#)
            .arg("sh")
            .arg(var_lib.path())
            .arg(cwd.path())
            .arg(crate::support::patchwave_bin())
            .args(args)
            .env_remove("PATCHWAVE_CONFIG")
            .env_remove("PATCHWAVE_PLUGIN_DIR");
        crate::support::run(&mut cmd)
    };

    let (code, out, err) = in_namespace(&["hosts", "list"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let state = var_lib.path().join("patchwave");
    assert!(state.join("patchwave.db").is_file(), "{err}");
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let (code, out, err) = in_namespace(&["plugin", "list"]);
    assert!(
        !out.contains("hostile") && !err.contains("hostile"),
        "{out}{err}"
    );
    if !std::path::Path::new("/usr/lib/patchwave/plugins").exists() {
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains("no plugins found in /usr/lib/patchwave/plugins"),
            "{err}"
        );
    }
    // The planted state was neither read nor written.
    assert_eq!(
        std::fs::read_to_string(planted.join("patchwave.db")).unwrap(),
        "planted"
    );
    assert_eq!(
        std::fs::read_to_string(planted.join("audit.jsonl")).unwrap(),
        "planted\n"
    );
    assert!(state.join("audit.jsonl").is_file());
}

/// The KEV fixture of 2025-03-20 with its release date set to `released`.
fn kev_dated(released: &str) -> String {
    let text = std::fs::read_to_string(
        crate::support::repo().join("host/advisory/tests/data/kev/catalog-2025.03.20.json"),
    )
    .unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["dateReleased"] = released.into();
    doc.to_string()
}

#[test]
fn advisories_import_refuses_a_hostile_feed_goes_on_and_audits_a_forced_one() {
    let cli = Cli::new();
    let write = |name: &str, text: &str| {
        let path = cli.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let usn = std::fs::read_to_string(
        crate::support::repo().join("host/advisory/tests/data/ubuntu-usn/USN-6859-1.json"),
    )
    .unwrap();
    let mut pypi: serde_json::Value = serde_json::from_str(&usn).unwrap();
    pypi["id"] = "PYSEC-2024-9".into();
    for affected in pypi["affected"].as_array_mut().unwrap() {
        affected["package"]["ecosystem"] = "PyPI".into();
    }
    let osv = write("osv.json", &format!("[{usn},{pypi}]"));
    let kev_2099 = write("kev-2099.json", &kev_dated("2099-01-01T00:00:00.000Z"));
    let epss = write(
        "epss.csv",
        "#model_version:v2025.03.14,score_date:2025-03-15T12:55:00Z\ncve,epss,percentile\n\
         CVE-2024-6387,0.9,0.999\n",
    );

    // The future-dated catalogue is refused; OSV and EPSS are stored all the same.
    let (code, out, err) = cli.run(&[
        "advisories",
        "import",
        "--osv",
        &osv,
        "--kev",
        &kev_2099,
        "--epss",
        &epss,
    ]);
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("osv: 1 documents; 2 advisories new, 0 updated, 0 unchanged")
    );
    let kev_line = lines.next().unwrap();
    assert!(
        kev_line.starts_with(
            "kev: refused, nothing changed: dateReleased 2099-01-01T00:00:00Z is later than now ("
        ) && kev_line.ends_with(") plus 24 hours (--force --reason R overrides)"),
        "{kev_line}"
    );
    assert_eq!(lines.next(), Some("epss: 1 scores"));
    assert_eq!(lines.next(), None);
    assert_eq!(
        err,
        "warning: osv: 1 advisories name the ecosystem `PyPI`, which patchwave does not know: \
         stored, never matched: PYSEC-2024-9\n\
         error: not imported: kev; imported: osv, epss (each feed is stored on its own)\n"
    );

    // --force needs a reason.
    let (code, _, err) = cli.run(&["advisories", "import", "--kev", &kev_2099, "--force"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--reason"), "{err}");
    assert!(!cli.state().join("audit.jsonl").exists());

    // Forced, the override is audited before the catalogue is stored.
    let (code, out, err) = cli.run(&[
        "advisories",
        "import",
        "--kev",
        &kev_2099,
        "--force",
        "--reason",
        "test catalogue from the future",
        "--by",
        "alice",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("kev: 4 added, 0 kept, 0 removed (kept as tombstones)")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("  forced (audited): dateReleased 2099-01-01T00:00:00Z is later than"),
        "{out}"
    );
    let audit = crate::support::audit_lines(&cli.state());
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["event"], "feed-import-forced");
    assert_eq!(audit[0]["by"], "alice");
    assert_eq!(audit[0]["detail"]["feed"], "kev");
    assert_eq!(audit[0]["detail"]["location"], kev_2099.as_str());
    assert_eq!(
        audit[0]["detail"]["reason"],
        "test catalogue from the future"
    );
    assert_eq!(audit[0]["detail"]["refusals"][0]["refusal"], "future");
    let (code, out, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert!(
        lines.next().unwrap().ends_with("chain intact, 1 lines"),
        "{out}"
    );
    // The forced import wrote its line through the anchored log: the store recorded it.
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("anchored: the store recorded line 1 (hash "),
        "{out}"
    );
}
