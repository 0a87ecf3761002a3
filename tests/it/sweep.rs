//! A sweep of malformed input through the real binary: configurations, OSV records, KEV
//! catalogues, EPSS files, CVSS vectors, command-line arguments, store files and audit logs.
//!
//! Every case must end without a panic, with the documented exit code and a message naming
//! what was wrong; and after every case the stored data is checked intact: the host record,
//! the advisories, the KEV catalogue and its tombstones, the EPSS feed, and the audit log
//! (it still verifies against the store's anchor).

use std::path::{Path, PathBuf};

use patchwave_store::{SqliteStore, Store};

use crate::support::{repo, Cli};

/// One malformed input and what the binary must make of it.
struct Case {
    /// What is malformed, for the failure message.
    what: String,
    /// Files written into the case's directory first: name and contents.
    files: Vec<(&'static str, Vec<u8>)>,
    /// Arguments; `{dir}` becomes the case's directory.
    args: Vec<String>,
    /// The exit code it must end with.
    code: i32,
    /// Words the output (stdout and stderr) must hold: what was wrong, and where.
    says: Vec<String>,
    /// The input is usable apart from what is named, and is stored (with a warning).
    stores: bool,
}

fn case(what: &str, args: &[&str], code: i32, says: &[&str]) -> Case {
    Case {
        what: what.to_string(),
        files: Vec::new(),
        args: args.iter().map(|a| a.to_string()).collect(),
        code,
        says: says.iter().map(|s| s.to_string()).collect(),
        stores: false,
    }
}

fn with_file(mut c: Case, name: &'static str, body: impl Into<Vec<u8>>) -> Case {
    c.files.push((name, body.into()));
    c
}

/// A configuration with `body` that a command must refuse: exit 2 naming `says`.
fn config(what: &str, body: &str, says: &[&str]) -> Case {
    with_file(
        case(
            &format!("config: {what}"),
            &["-c", "{dir}/bad.toml", "hosts", "list"],
            2,
            says,
        ),
        "bad.toml",
        body,
    )
}

/// An OSV document `advisories import --osv` must reject or refuse, naming `says`.
fn osv(what: &str, body: &str, code: i32, says: &[&str]) -> Case {
    with_file(
        case(
            &format!("osv: {what}"),
            &["advisories", "import", "--osv", "{dir}/osv.json"],
            code,
            says,
        ),
        "osv.json",
        body,
    )
}

fn kev(what: &str, body: &str, code: i32, says: &[&str]) -> Case {
    with_file(
        case(
            &format!("kev: {what}"),
            &["advisories", "import", "--kev", "{dir}/kev.json"],
            code,
            says,
        ),
        "kev.json",
        body,
    )
}

fn epss(what: &str, body: &str, code: i32, says: &[&str]) -> Case {
    with_file(
        case(
            &format!("epss: {what}"),
            &["advisories", "import", "--epss", "{dir}/epss.csv"],
            code,
            says,
        ),
        "epss.csv",
        body,
    )
}

fn cvss(vector: &str, says: &[&str]) -> Case {
    case(&format!("cvss: {vector:?}"), &["cvss", vector], 2, says)
}

/// A genuine KEV entry with one field replaced (`None` removes it).
fn kev_entry(field: &str, value: Option<&str>) -> String {
    let mut entry = serde_json::json!({
        "cveID": "CVE-2024-0001", "vendorProject": "Acme", "product": "Web",
        "vulnerabilityName": "Acme Web RCE", "dateAdded": "2025-03-21", "dueDate": "2025-04-11",
        "knownRansomwareCampaignUse": "Unknown", "notes": "", "cwes": ["CWE-78"]
    });
    let map = entry.as_object_mut().unwrap();
    match value {
        Some(v) => {
            map.insert(field.into(), serde_json::from_str(v).unwrap());
        }
        None => {
            map.remove(field);
        }
    }
    entry.to_string()
}

/// A KEV catalogue dated `released` holding the stored catalogue's entries plus `extra`.
fn kev_doc(released: &str, extra: &str) -> String {
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kev_fixture()).unwrap()).unwrap();
    let mut entries: Vec<String> = stored["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.to_string())
        .collect();
    if !extra.is_empty() {
        entries.push(extra.to_string());
    }
    format!(
        r#"{{"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "x",
            "dateReleased": "{released}", "count": {}, "vulnerabilities": [{}]}}"#,
        entries.len(),
        entries.join(",")
    )
}

/// A catalogue dated `released` holding only the first of the stored entries.
fn kev_first_only(released: &str) -> String {
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kev_fixture()).unwrap()).unwrap();
    format!(
        r#"{{"title": "x", "catalogVersion": "x", "dateReleased": "{released}", "count": 1,
            "vulnerabilities": [{}]}}"#,
        stored["vulnerabilities"][0]
    )
}

fn kev_fixture() -> PathBuf {
    repo().join("host/advisory/tests/data/kev/catalog-2025.03.20.json")
}

/// A genuine EPSS file of twelve scores (the fixture in the advisory crate carries
/// malformed rows on purpose).
fn epss_clean(header: &str) -> String {
    let mut out = format!("{header}\ncve,epss,percentile\n");
    for i in 0..12 {
        out.push_str(&format!("CVE-2024-{:04},0.0{i}1,0.{i}5\n", 100 + i));
    }
    out
}

/// The stored EPSS rows under another header, with `extra` rows after them.
fn epss_doc(header: &str, extra: &str) -> String {
    epss_clean(header) + extra
}

const EPSS_HEADER: &str = "#model_version:v2025.03.14,score_date:2025-03-16T12:55:00Z";

/// What the store and the audit log hold, to compare before and after each case.
async fn fingerprint(cli: &Cli) -> String {
    let store = SqliteStore::open(cli.state().join("patchwave.db")).unwrap();
    let advisories: Vec<String> = store
        .advisories()
        .await
        .unwrap()
        .iter()
        .map(|a| serde_json::to_string(a).unwrap())
        .collect();
    let kev = store.kev().await.unwrap();
    let epss = store.epss().await.unwrap();
    let host = store
        .host_summary(&patchwave_core::HostId::from("localhost"))
        .await
        .unwrap();
    let (code, audit, err) = cli.run(&["audit", "verify"]);
    assert_eq!(code, 0, "the audit log no longer verifies: {audit}{err}");
    // The data, not its bookkeeping: a newer catalogue that only adds is no loss, so KEV is
    // its live entries and tombstones, EPSS its scores.
    let kev_entries: Vec<String> = kev
        .catalog
        .iter()
        .flat_map(|c| c.entries.iter().map(|e| format!("{e:?}")))
        .collect();
    let epss_rows = epss.map(|e| serde_json::to_value(&e.feed).unwrap()["rows"].clone());
    format!(
        "{}\n{}\n{:?}\n{}\n{}\n{}",
        advisories.join("\n"),
        kev_entries.join("\n"),
        kev.tombstones,
        serde_json::to_string(&epss_rows).unwrap(),
        serde_json::to_string(&host).unwrap(),
        audit.lines().next().unwrap_or_default()
    )
}

fn write_files(dir: &Path, files: &[(&'static str, Vec<u8>)]) {
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

fn run_case(cli: &Cli, c: &Case, dir: &Path) -> (i32, String) {
    write_files(dir, &c.files);
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| a.replace("{dir}", &dir.display().to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = cli.run(&args);
    (code, format!("{out}{err}"))
}

fn check(c: &Case, code: i32, text: &str, problems: &mut Vec<String>) {
    let text = &text.chars().take(1500).collect::<String>();
    if text.contains("panicked") || code == 101 {
        problems.push(format!("{}: PANIC (exit {code}):\n{text}", c.what));
        return;
    }
    if code != c.code {
        problems.push(format!(
            "{}: exit {code}, expected {}:\n{text}",
            c.what, c.code
        ));
    }
    for s in &c.says {
        if !text.contains(s.as_str()) {
            problems.push(format!("{}: does not say {s:?}:\n{text}", c.what));
        }
    }
}

fn cases() -> Vec<Case> {
    let mut all = Vec::new();

    // ---- Configuration: every problem named with where it is; nothing touched.
    for (what, body, says) in [
        ("not TOML", "[hosts\nid = 1", &["bad.toml"][..]),
        ("a string for a table", "scan = \"fast\"", &["scan"]),
        ("unknown top-level key", "[scna]\nconcurrency = 1\n", &["scna"]),
        ("unknown key in [scan]", "[scan]\nconcurency = 1\n", &["concurency"]),
        ("negative concurrency", "[scan]\nconcurrency = -1\n", &["concurrency"]),
        ("zero concurrency", "[scan]\nconcurrency = 0\n", &["scan.concurrency"]),
        ("duration without unit", "[scan]\nstale_after = \"26\"\n", &["scan.stale_after"]),
        ("duration with a bad unit", "[scan]\nstale_after = \"26y\"\n", &["scan.stale_after"]),
        ("overflowing duration", "[scan]\nstale_after = \"307445734561825861m\"\n", &["scan.stale_after"]),
        ("negative duration", "[scan]\nstale_after = \"-5m\"\n", &["scan.stale_after"]),
        ("empty duration", "[ssh]\nconnect_timeout = \"\"\n", &["ssh.connect_timeout"]),
        ("zero max_sessions", "[ssh]\nmax_sessions = 0\n", &["ssh.max_sessions"]),
        ("misspelt plugin key", "[plugins.debian]\ngrnats = \"manifest\"\n", &["grnats"]),
        ("unknown grants word", "[plugins.debian]\ngrants = \"all\"\n", &["plugins.debian.grants"]),
        ("grant with a shell line", "[plugins.debian]\ngrants = [{ program = \"sh -c\", args = [] }]\n", &["plugins.debian.grants[0]"]),
        ("`**` not last", "[plugins.debian]\ngrants = [{ program = \"x\", args = [\"**\", \"a\"] }]\n", &["plugins.debian.grants[0]"]),
        ("grant of PATH", "[plugins.debian]\ngrants = [{ program = \"x\", env = { PATH = \"/tmp\" } }]\n", &["PATH"]),
        ("grant of LD_PRELOAD", "[plugins.debian]\ngrants = [{ program = \"x\", env = { LD_PRELOAD = \"/x.so\" } }]\n", &["LD_PRELOAD"]),
        ("env name with =", "[plugins.debian]\ngrants = [{ program = \"x\", env = { \"A=B\" = \"1\" } }]\n", &["A=B"]),
        ("empty env name", "[plugins.debian]\ngrants = [{ program = \"x\", env = { \"\" = \"1\" } }]\n", &["plugins.debian.grants[0]"]),
        ("names-only env", "[plugins.debian]\ngrants = [{ program = \"x\", env = [\"DEBIAN_FRONTEND\"] }]\n", &["env"]),
        ("memory over the maximum", "[plugins.debian]\nmemory_mb = 999999\n", &["plugins.debian"]),
        ("host without id", "[[hosts]]\naddress = \"10.0.0.1\"\nkey = \"file:/k\"\n", &["hosts[0]: missing `id`"]),
        ("host id with a slash", "[[hosts]]\nid = \"../x\"\ntransport = \"local\"\n", &["hosts[0] (../x).id"]),
        ("duplicate host id", "[[hosts]]\nid = \"a\"\ntransport = \"local\"\n[[hosts]]\nid = \"a\"\ntransport = \"local\"\n", &["hosts[1] (a).id"]),
        ("unknown transport", "[[hosts]]\nid = \"a\"\ntransport = \"telnet\"\n", &["hosts[0] (a).transport"]),
        ("bad env word", "[[hosts]]\nid = \"a\"\ntransport = \"local\"\nenv = \"staging\"\n", &["hosts[0] (a).env"]),
        ("ssh host without key", "[[hosts]]\nid = \"a\"\naddress = \"10.0.0.1\"\n", &["hosts[0] (a): missing `key`"]),
        ("key without scheme", "[[hosts]]\nid = \"a\"\naddress = \"10.0.0.1\"\nkey = \"/k\"\n", &["hosts[0] (a).key"]),
        ("port out of range", "[[hosts]]\nid = \"a\"\naddress = \"x\"\nport = 70000\nkey = \"file:/k\"\n", &["port"]),
        ("waves not ending at 100", "[rollout]\nwaves = [5, 25]\n", &["rollout.waves"]),
        ("waves not increasing", "[rollout]\nwaves = [50, 25, 100]\n", &["rollout.waves"]),
        ("bad soak", "[rollout]\nsoak = \"forever\"\n", &["rollout"]),
        ("bad window cron", "[rollout.window]\ncron = \"every night\"\ntz = \"UTC\"\nduration = \"4h\"\n", &["rollout.window"]),
        ("bad window zone", "[rollout.window]\ncron = \"0 0 22 * * * *\"\ntz = \"Mars/Olympus\"\nduration = \"4h\"\n", &["Mars/Olympus"]),
        ("budget over 100 %", "[rollout]\nstage_budget = { max_failed_percent = 150 }\n", &["max_failed_percent"]),
        ("unknown classify rule", "[classify]\nprefer = \"dice\"\n", &["classify"]),
        ("missing ca_file", "[advisories]\nca_file = \"/nonexistent/ca.pem\"\n", &["advisories.ca_file"]),
        ("relative snapshot hook", "[snapshot]\ntake = [\"snap\"]\nrestore = [\"/bin/snap\", \"{snapshot}\"]\n", &["snapshot.take"]),
        ("unknown placeholder", "[snapshot]\ntake = [\"/bin/snap\", \"{hots}\"]\nrestore = [\"/bin/snap\", \"{snapshot}\"]\n", &["{hots}"]),
        ("health source of an unknown kind", "[[health.sources]]\nkind = \"nagios\"\nname = \"n\"\n", &["line 2", "nagios"]),
    ] {
        all.push(config(what, body, says));
    }
    all.push(with_file(
        case(
            "config: not UTF-8",
            &["-c", "{dir}/bad.toml", "hosts", "list"],
            2,
            &["bad.toml"],
        ),
        "bad.toml",
        b"[scan]\nstale_after = \"\xff\xfe\"\n".to_vec(),
    ));
    all.push(case(
        "config: a file that does not exist",
        &["-c", "{dir}/none.toml", "hosts", "list"],
        2,
        &["none.toml"],
    ));

    // ---- OSV: a malformed record is named and skipped (exit 3); a document with nothing
    // usable is refused (nothing changes either way).
    let record = |body: &str| {
        format!(
            r#"{{"id": "DSA-9100-1", "modified": "2025-01-01T00:00:00Z", "published": "2025-01-01T00:00:00Z", {body}}}"#
        )
    };
    for (what, body, code, says) in [
        ("not JSON", "{\"id\": ".to_string(), 3, &["osv.json"][..]),
        ("a JSON string", "\"DSA\"".to_string(), 3, &["osv.json"]),
        ("an empty list", "[]".to_string(), 3, &["osv"]),
        ("no id", r#"{"modified": "2025-01-01T00:00:00Z", "affected": []}"#.to_string(), 3, &["id"]),
        ("modified not a date", r#"{"id": "X-1", "modified": "yesterday", "affected": []}"#.to_string(), 3, &["X-1", "modified"]),
        ("modified in 2099", r#"{"id": "X-2", "modified": "2099-01-01T00:00:00Z", "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "versions": ["1"]}]}"#.to_string(), 3, &["2099"]),
        ("affected not a list", record(r#""affected": {"package": 1}"#), 3, &["DSA-9100-1"]),
        ("package without a name", record(r#""affected": [{"package": {"ecosystem": "Debian:12"}, "versions": ["1"]}]"#), 3, &["DSA-9100-1"]),
        ("range of an unknown type", record(r#""affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "WEIRD", "events": [{"introduced": "0"}]}]}]"#), 3, &["DSA-9100-1"]),
        ("range without events", record(r#""affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": []}]}]"#), 3, &["DSA-9100-1"]),
        ("event of an unknown kind", record(r#""affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"patched": "2"}]}]}]"#), 3, &["DSA-9100-1"]),
    ] {
        all.push(osv(what, &body, code, says));
    }
    // A vector that cannot be scored does not make the advisory unusable: it is stored,
    // classified without the vector, and the import says so.
    let mut bad_vector = osv(
        "a CVSS vector that cannot be scored",
        &record(
            r#""severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}], "affected": [{"package": {"ecosystem": "Debian:12", "name": "a"}, "versions": ["1"]}]"#,
        ),
        0,
        &["warning: osv: DSA-9100-1: CVSS vector `CVSS:3.1/AV:Q` cannot be scored"],
    );
    bad_vector.stores = true;
    all.push(bad_vector);
    all.push(with_file(
        case(
            "osv: not UTF-8",
            &["advisories", "import", "--osv", "{dir}/osv.json"],
            3,
            &["osv.json"],
        ),
        "osv.json",
        b"{\"id\": \"\xff\"}".to_vec(),
    ));
    all.push(case(
        "osv: a missing file",
        &["advisories", "import", "--osv", "{dir}/nothing.json"],
        1,
        &["nothing.json"],
    ));
    all.push(case(
        "osv: a URL with credentials",
        &[
            "advisories",
            "import",
            "--osv",
            "https://user:secret@127.0.0.1:1/x.json",
        ],
        1,
        &["credentials"],
    ));

    // ---- KEV: malformed entries keep what they would replace; bad catalogues are refused.
    // A document that is no KEV catalogue at all is not imported (exit 1), naming why.
    for (what, body, says) in [
        (
            "not JSON",
            "{\"vulnerabilities\": [",
            &["kev.json", "not JSON"][..],
        ),
        (
            "no vulnerabilities",
            r#"{"title": "x", "catalogVersion": "1", "dateReleased": "2025-03-21T00:00:00Z"}"#,
            &["vulnerabilities"],
        ),
        (
            "no release date",
            r#"{"title": "x", "catalogVersion": "1", "vulnerabilities": []}"#,
            &["dateReleased"],
        ),
        (
            "release date not a date",
            r#"{"catalogVersion": "1", "dateReleased": "soon", "vulnerabilities": []}"#,
            &["dateReleased"],
        ),
        (
            "no catalogVersion",
            r#"{"dateReleased": "2025-03-21T00:00:00Z", "vulnerabilities": []}"#,
            &["catalogVersion"],
        ),
    ] {
        all.push(kev(what, body, 1, says));
    }
    for (what, body, says) in [
        (
            "no entries at all",
            kev_doc("2025-03-21T00:00:00Z", "").replace(
                r#""vulnerabilities": ["#,
                r#""vulnerabilities": [], "x": ["#,
            ),
            &["kev"],
        ),
        ("dated 2099", kev_doc("2099-01-01T00:00:00Z", ""), &["2099"]),
        (
            "older than the stored one",
            kev_doc("2024-01-01T00:00:00Z", ""),
            &["older"],
        ),
        (
            "an entry without cveID",
            kev_doc("2025-03-21T00:00:00Z", &kev_entry("cveID", None)),
            &["cveID"],
        ),
        (
            "a cveID that is no CVE",
            kev_doc(
                "2025-03-21T00:00:00Z",
                &kev_entry("cveID", Some("\"CVE-X\"")),
            ),
            &["CVE-X"],
        ),
        (
            "dateAdded not a date",
            kev_doc(
                "2025-03-21T00:00:00Z",
                &kev_entry("dateAdded", Some("\"2025-13-45\"")),
            ),
            &["2025-13-45"],
        ),
        (
            "cwes not a list",
            kev_doc("2025-03-21T00:00:00Z", &kev_entry("cwes", Some("7"))),
            &["CVE-2024-0001"],
        ),
        (
            "entry not an object",
            kev_doc("2025-03-21T00:00:00Z", "42"),
            &["kev"],
        ),
    ] {
        all.push(kev(what, &body, 3, says));
    }
    all.push(kev(
        "shrunk to one entry",
        &kev_first_only("2025-03-21T00:00:00Z"),
        3,
        &["kev"],
    ));

    // ---- EPSS.
    // A file that is no EPSS CSV at all is not imported (exit 1), naming why.
    for (what, body, says) in [
        ("empty file", String::new(), &["#model_version:"][..]),
        (
            "no model line",
            "cve,epss,percentile\nCVE-2024-0001,0.1,0.2\n".to_string(),
            &["#model_version:"],
        ),
        (
            "score date not a date",
            epss_doc("#model_version:v1,score_date:tomorrow", ""),
            &["tomorrow"],
        ),
        (
            "wrong columns",
            format!("{EPSS_HEADER}\ncve,score\nCVE-2024-0001,0.1\n"),
            &["cve,score"],
        ),
    ] {
        all.push(epss(what, &body, 1, says));
    }
    for (what, body, says) in [
        (
            "only its header",
            format!("{EPSS_HEADER}\ncve,epss,percentile\n"),
            &["epss"][..],
        ),
        (
            "dated 2099",
            epss_doc("#model_version:v1,score_date:2099-01-01T00:00:00Z", ""),
            &["2099"],
        ),
        (
            "older than the stored one",
            epss_doc("#model_version:v1,score_date:2024-01-01T00:00:00Z", ""),
            &["older"],
        ),
        (
            "a score above 1",
            epss_doc(EPSS_HEADER, "CVE-2024-0002,1.5,0.9\n"),
            &["CVE-2024-0002"],
        ),
        (
            "a score that is no number",
            epss_doc(EPSS_HEADER, "CVE-2024-0003,high,0.9\n"),
            &["CVE-2024-0003"],
        ),
        (
            "a CVE id that is none",
            epss_doc(EPSS_HEADER, "not-a-cve,0.1,0.9\n"),
            &["not-a-cve"],
        ),
        (
            "a short row",
            epss_doc(EPSS_HEADER, "CVE-2024-0004\n"),
            &["CVE-2024-0004"],
        ),
        (
            "shrunk to one row",
            format!("{EPSS_HEADER}\ncve,epss,percentile\nCVE-2024-0100,0.01,0.7\n"),
            &["epss"],
        ),
    ] {
        all.push(epss(what, &body, 3, says));
    }

    // ---- CVSS vectors: exit 2, naming the part that is wrong.
    for (vector, says) in [
        ("", &["vector"][..]),
        ("CVSS:3.1", &["CVSS:3.1"]),
        ("CVSS:3.1/AV:N", &["AC"]),
        ("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", &["AV"]),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H", &["A"]),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", &["CVSS"]),
        ("CVSS:9.9/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", &["9.9"]),
        ("cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", &["cvss"]),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:Z", &["E"]),
        ("CVSS:4.0/AV:N", &["AC"]),
        (
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:Q",
            &["SA"],
        ),
        (
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\u{1b}[2J",
            &["A"],
        ),
        ("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", &["CVSS"]),
    ] {
        all.push(cvss(vector, says));
    }

    // ---- Command-line arguments.
    for (what, args, code, says) in [
        (
            "unknown command",
            &["frobnicate"][..],
            2,
            &["frobnicate"][..],
        ),
        (
            "scan --concurrency 0",
            &["scan", "--concurrency", "0"],
            2,
            &["concurrency"],
        ),
        (
            "scan --concurrency -3",
            &["scan", "--concurrency", "-3"],
            2,
            &["-3"],
        ),
        (
            "scan of an unknown host",
            &["scan", "nosuch"],
            5,
            &["nosuch"],
        ),
        (
            "hosts show of an unknown host",
            &["hosts", "show", "nosuch"],
            5,
            &["nosuch"],
        ),
        (
            "plugin inspect of an unknown plugin",
            &["plugin", "inspect", "nosuch"],
            5,
            &["nosuch"],
        ),
        (
            "plugin compare with a bad version",
            &["plugin", "compare", "debian", "1.0", "1:"],
            2,
            &["1:"],
        ),
        (
            "rollout plan --ecosystem Bogus:1",
            &["rollout", "plan", "--pin", "a=1", "--ecosystem", "Bogus:1"],
            2,
            &["Bogus:1"],
        ),
        (
            "rollout plan --pin without =",
            &[
                "rollout",
                "plan",
                "--pin",
                "acme",
                "--ecosystem",
                "Debian:12",
            ],
            2,
            &["--pin acme"],
        ),
        (
            "rollout plan --class bogus",
            &[
                "rollout",
                "plan",
                "--pin",
                "a=1",
                "--ecosystem",
                "Debian:12",
                "--class",
                "bogus",
            ],
            2,
            &["bogus"],
        ),
        (
            "rollout plan --from-findings bogus",
            &[
                "rollout",
                "plan",
                "--from-findings",
                "bogus",
                "--ecosystem",
                "Debian:12",
            ],
            2,
            &["bogus"],
        ),
        (
            "rollout start --id ../x",
            &[
                "rollout",
                "start",
                "--id",
                "../x",
                "--pin",
                "a=1",
                "--ecosystem",
                "Debian:12",
            ],
            2,
            &["../x"],
        ),
        (
            "rollout start --id with a space",
            &[
                "rollout",
                "start",
                "--id",
                "a b",
                "--pin",
                "a=1",
                "--ecosystem",
                "Debian:12",
            ],
            2,
            &["a b"],
        ),
        (
            "rollout status of an unknown rollout",
            &["rollout", "status", "ro-none"],
            5,
            &["ro-none"],
        ),
        (
            "rollout tick of an unknown rollout",
            &["rollout", "tick", "ro-none"],
            5,
            &["ro-none"],
        ),
        (
            "rollout approve of an unknown rollout",
            &["rollout", "approve", "ro-none"],
            5,
            &["ro-none"],
        ),
        (
            "findings --format bogus",
            &["findings", "--format", "bogus"],
            2,
            &["bogus"],
        ),
        (
            "findings --class bogus",
            &["findings", "--class", "bogus"],
            2,
            &["bogus"],
        ),
        (
            "advisories import --force without a reason",
            &["advisories", "import", "--kev", "/x", "--force"],
            2,
            &["reason"],
        ),
        (
            "audit reanchor without a reason",
            &["audit", "reanchor", "--by", "me", "--reason", " "],
            2,
            &["reason"],
        ),
    ] {
        all.push(case(&format!("cli: {what}"), args, code, says));
    }
    all
}

/// Store files and audit logs that are not what they should be. Each case damages a copy of
/// the state (never the sweep's own), runs a command on the copy, and checks the damaged
/// file was left as it was.
async fn damaged_state_cases(cli: &Cli, problems: &mut Vec<String>) -> usize {
    let audit_line = std::fs::read_to_string(cli.state().join("audit.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    type Damage = Box<dyn Fn(&Path)>;
    /// What is damaged, which file, how, the command run, its exit code, what it must say.
    type DamageCase<'a> = (&'a str, &'a str, Damage, &'a [&'a str], i32, &'a [&'a str]);
    let cases: Vec<DamageCase> = vec![
        (
            "store: garbage",
            "patchwave.db",
            Box::new(|p: &Path| std::fs::write(p, b"not a database at all, just text\n").unwrap()),
            &["hosts", "list"],
            1,
            &["patchwave.db"],
        ),
        (
            "store: cut in half",
            "patchwave.db",
            Box::new(|p: &Path| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, &b[..b.len() / 2]).unwrap()
            }),
            &["hosts", "list"],
            1,
            &["patchwave.db"],
        ),
        (
            "store: zero-filled",
            "patchwave.db",
            Box::new(|p: &Path| std::fs::write(p, vec![0u8; 8192]).unwrap()),
            &["hosts", "list"],
            1,
            &["patchwave.db"],
        ),
        (
            "store: a directory",
            "patchwave.db",
            Box::new(|p: &Path| {
                std::fs::remove_file(p).unwrap();
                std::fs::create_dir(p).unwrap()
            }),
            &["hosts", "list"],
            1,
            &["patchwave.db"],
        ),
        (
            "store: a symlink",
            "patchwave.db",
            Box::new(|p: &Path| {
                let real = p.with_extension("real");
                std::fs::rename(p, &real).unwrap();
                std::os::unix::fs::symlink(&real, p).unwrap()
            }),
            &["hosts", "list"],
            1,
            &["patchwave.db"],
        ),
        (
            "store: a newer schema",
            "patchwave.db",
            Box::new(|p: &Path| {
                let c = rusqlite_connection(p);
                c.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)", []).unwrap();
            }),
            &["hosts", "list"],
            1,
            &["newer"],
        ),
        (
            "audit: a line edited",
            "audit.jsonl",
            Box::new(move |p: &Path| {
                let t = std::fs::read_to_string(p).unwrap();
                std::fs::write(p, t.replacen("\"host\":\"", "\"host\":\"x", 1)).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["line 1"],
        ),
        (
            "audit: whitespace added",
            "audit.jsonl",
            Box::new(|p: &Path| {
                let t = std::fs::read_to_string(p).unwrap();
                std::fs::write(p, t.replacen("\",\"", "\", \"", 1)).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["line 1"],
        ),
        (
            "audit: a duplicate key prepended",
            "audit.jsonl",
            Box::new(|p: &Path| {
                let t = std::fs::read_to_string(p).unwrap();
                std::fs::write(p, t.replacen("{", "{\"program\":\"FORGED\",", 1)).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["line 1"],
        ),
        (
            "audit: a non-UTF-8 byte",
            "audit.jsonl",
            Box::new(|p: &Path| {
                let mut b = std::fs::read(p).unwrap();
                b[5] = 0xff;
                std::fs::write(p, b).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["line 1"],
        ),
        (
            "audit: its tail cut",
            "audit.jsonl",
            Box::new(|p: &Path| {
                let t = std::fs::read_to_string(p).unwrap();
                let keep: Vec<&str> = t.lines().take(1).collect();
                std::fs::write(p, format!("{}\n", keep.join("\n"))).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["cut"],
        ),
        (
            "audit: emptied",
            "audit.jsonl",
            Box::new(|p: &Path| std::fs::write(p, b"").unwrap()),
            &["audit", "verify"],
            4,
            &["audit"],
        ),
        (
            "audit: a line that is not JSON",
            "audit.jsonl",
            Box::new(|p: &Path| {
                let t = std::fs::read_to_string(p).unwrap();
                std::fs::write(p, format!("{{oops\n{t}")).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["line 1"],
        ),
        (
            "audit: lines swapped",
            "audit.jsonl",
            Box::new(|p: &Path| {
                let t = std::fs::read_to_string(p).unwrap();
                let mut l: Vec<&str> = t.lines().collect();
                l.swap(0, 1);
                std::fs::write(p, format!("{}\n", l.join("\n"))).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["line 1"],
        ),
        (
            "audit: a line repeated",
            "audit.jsonl",
            Box::new(move |p: &Path| {
                let t = std::fs::read_to_string(p).unwrap();
                std::fs::write(p, format!("{t}{audit_line}\n")).unwrap()
            }),
            &["audit", "verify"],
            4,
            &["audit"],
        ),
    ];
    let n = cases.len();
    for (what, file, damage, args, code, says) in cases {
        let copy = tempfile::tempdir().unwrap();
        let state = copy.path().join("state");
        copy_dir(&cli.state(), &state);
        let target = state.join(file);
        damage(&target);
        let before = snapshot_of(&target);
        let mut cmd = std::process::Command::new(crate::support::patchwave_bin());
        cmd.arg("--state-dir")
            .arg(&state)
            .arg("--plugin-dir")
            .arg(cli.dir.path().join("plugins"))
            .args(args)
            .env_remove("PATCHWAVE_CONFIG");
        let (got, out, err) = crate::support::run(&mut cmd);
        let c = Case {
            what: what.to_string(),
            files: Vec::new(),
            args: Vec::new(),
            code,
            says: says.iter().map(|s| s.to_string()).collect(),
            stores: false,
        };
        check(&c, got, &format!("{out}{err}"), problems);
        if snapshot_of(&target) != before {
            problems.push(format!(
                "{what}: the damaged {file} was changed by the command"
            ));
        }
    }
    n
}

fn rusqlite_connection(p: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(p).unwrap()
}

/// The bytes of a file (or a directory's listing, or a link's target).
fn snapshot_of(p: &Path) -> Vec<u8> {
    let meta = std::fs::symlink_metadata(p).unwrap();
    if meta.file_type().is_symlink() {
        return std::fs::read_link(p)
            .unwrap()
            .display()
            .to_string()
            .into_bytes();
    }
    if meta.is_dir() {
        return format!("{:?}", std::fs::read_dir(p).unwrap().count()).into_bytes();
    }
    std::fs::read(p).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_malformed_inputs_are_named_refused_and_lose_nothing() {
    let cli = Cli::new();
    // Real state: this machine scanned, real advisories, a KEV catalogue and EPSS scores.
    let (code, out, err) = cli.run(&["scan", "localhost"]);
    assert!(code == 0 || code == 3, "{out}{err}");
    let usn = repo().join("host/advisory/tests/data/ubuntu-usn");
    let epss = cli.dir.path().join("epss.csv");
    std::fs::write(
        &epss,
        epss_clean("#model_version:v2025.03.14,score_date:2025-03-15T12:55:00Z"),
    )
    .unwrap();
    let (code, out, err) = cli.run(&[
        "advisories",
        "import",
        "--osv",
        usn.to_str().unwrap(),
        "--kev",
        kev_fixture().to_str().unwrap(),
        "--epss",
        epss.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let before = fingerprint(&cli).await;

    let mut problems = Vec::new();
    let cases = cases();
    let mut count = 0;
    let mut last = before;
    for c in &cases {
        let dir = tempfile::tempdir().unwrap();
        let (code, text) = run_case(&cli, c, dir.path());
        check(c, code, &text, &mut problems);
        let now = fingerprint(&cli).await;
        if (now != last) != c.stores {
            problems.push(format!(
                "{}: the stored data {}",
                c.what,
                if c.stores {
                    "is not what it stored"
                } else {
                    "changed"
                }
            ));
        }
        last = now;
        count += 1;
    }
    count += damaged_state_cases(&cli, &mut problems).await;
    if fingerprint(&cli).await != last {
        problems.push("at the end: the stored data changed".into());
    }
    assert!(count >= 100, "only {count} cases");
    assert!(
        problems.is_empty(),
        "{} of {count} cases went wrong:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}
