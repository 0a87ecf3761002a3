//! The `patchwave` binary: scan this machine, read it back, exit codes, audit tampering.

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
    assert!(out.ends_with("chain intact, 1 lines\n"), "{out}");
}
