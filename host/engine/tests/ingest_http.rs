//! Advisory feeds fetched over http and https from a small server on 127.0.0.1 written here
//! (the client under test is the engine's real one), imported into a real SQLite store.
//! The documents are the real USN records and the KEV / EPSS fixtures of
//! `host/advisory/tests/data`; https certificates are made by the `openssl` command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use patchwave_advisory::Prune;
use patchwave_engine::ingest::{
    self, EpssOutcome, FeedFailure, FeedFetcher, FeedReport, Feeds, FetchFailure, FetchSettings,
    ImportOptions, ImportReport, IngestError, OsvImport,
};
use patchwave_engine::Config;
use patchwave_store::{AdvisoryImport, EpssImport, KevImport, SqliteStore, Store};
use tempfile::TempDir;

mod support;

use support::{closed_port, make_certificates, tls_acceptor, Reply, TestServer};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

fn data(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../advisory/tests/data")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn usn(id: &str) -> Vec<u8> {
    data(&format!("ubuntu-usn/{id}.json"))
}

/// Two real USN records as one JSON array.
fn usn_array(a: &str, b: &str) -> Vec<u8> {
    let mut doc = b"[".to_vec();
    doc.extend(usn(a));
    doc.push(b',');
    doc.extend(usn(b));
    doc.push(b']');
    doc
}

fn kev() -> Vec<u8> {
    data("kev/catalog-2025.03.20.json")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn now() -> DateTime<Utc> {
    // After every fixture's dates: the USN records were modified up to 2026-04-27.
    Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap()
}

struct TestStore {
    store: SqliteStore,
    _dir: TempDir,
}

fn store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state/patchwave.db")).unwrap();
    TestStore { store, _dir: dir }
}

fn fetcher(settings: FetchSettings) -> FeedFetcher {
    FeedFetcher::new(settings).unwrap()
}

fn options() -> ImportOptions<'static> {
    ImportOptions {
        now: now(),
        force: None,
    }
}

/// `Ok` when every feed asked for was stored; the error of the one feed that failed (the
/// tests ask for one feed when they expect a failure).
fn single(report: ImportReport) -> Result<ImportReport, IngestError> {
    let failed: Vec<String> = report
        .outcomes()
        .iter()
        .filter_map(|(kind, f)| f.map(|f| format!("{kind}: {f}")))
        .collect();
    if failed.is_empty() {
        return Ok(report);
    }
    assert_eq!(report.outcomes().len(), 1, "{failed:?}");
    fn error<T>(r: Option<FeedReport<T>>) -> Option<FeedFailure> {
        r.and_then(|r| r.result.err())
    }
    let ImportReport { osv, kev, epss } = report;
    match error(osv).or(error(kev)).or(error(epss)) {
        Some(FeedFailure::Error(e)) => Err(e),
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn import(store: &TestStore, feeds: Feeds) -> Result<ImportReport, IngestError> {
    single(
        ingest::import(
            &store.store,
            &feeds,
            &fetcher(FetchSettings::default()),
            options(),
        )
        .await,
    )
}

/// What a feed that had to be stored stored.
fn stored<T>(report: &Option<FeedReport<T>>) -> &T {
    match report.as_ref().map(|r| &r.result) {
        Some(Ok(done)) => done,
        Some(Err(e)) => panic!("not stored: {e}"),
        None => panic!("not asked for"),
    }
}

fn osv(urls: &[String]) -> Feeds {
    Feeds {
        osv: urls.to_vec(),
        ..Feeds::default()
    }
}

fn kev_feed(url: String) -> Feeds {
    Feeds {
        kev: Some(url),
        ..Feeds::default()
    }
}

/// The failure of an import that had to fail on fetching `url`.
fn fetch_failure(result: Result<ImportReport, IngestError>, url: &str) -> FetchFailure {
    match result {
        Err(IngestError::Fetch {
            url: named,
            failure,
        }) => {
            assert_eq!(named, url);
            failure
        }
        other => panic!("expected a fetch failure for {url}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

fn ok(body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body,
        content_length: true,
        delay: Duration::ZERO,
    }
}

fn status(code: u16) -> Reply {
    Reply {
        status: code,
        ..ok(b"not here".to_vec())
    }
}

fn redirect(code: u16, to: &str) -> Reply {
    Reply {
        headers: vec![("Location".into(), to.into())],
        ..status(code)
    }
}

// ---------------------------------------------------------------------------------------
// http
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn osv_kev_and_epss_over_http_are_stored_with_their_urls() {
    let epss_gz = gzip(&data("epss/epss_scores-2025-03-15.csv"));
    let kev_gz = gzip(&kev());
    let server = TestServer::start(move |path| match path {
        "/osv/USN-6793-1.json" => ok(usn("USN-6793-1")),
        "/osv/two.json" => ok(usn_array("USN-6859-1", "USN-7604-1")),
        // Served gzipped under a `.json` name: the magic bytes decide, not the name.
        "/kev.json" => Reply {
            headers: vec![("Content-Encoding".into(), "gzip".into())],
            ..ok(kev_gz.clone())
        },
        "/epss/epss_scores-current.csv.gz" => Reply {
            content_length: false,
            ..ok(epss_gz.clone())
        },
        _ => status(404),
    })
    .await;
    let osv_one = server.url("/osv/USN-6793-1.json");
    let osv_two = server.url("/osv/two.json");
    let kev_url = server.url("/kev.json");
    let epss_url = server.url("/epss/epss_scores-current.csv.gz");
    let s = store();
    let report = import(
        &s,
        Feeds {
            osv: vec![osv_one.clone(), osv_two.clone()],
            kev: Some(kev_url.clone()),
            epss: Some(epss_url.clone()),
        },
    )
    .await
    .unwrap();

    assert_eq!(
        stored(&report.osv),
        &OsvImport {
            documents: 2,
            stored: AdvisoryImport {
                inserted: 3,
                updated: 0,
                unchanged: 0
            },
            unknown_ecosystems: Vec::new(),
            unscorable: Vec::new(),
        }
    );
    assert_eq!(
        stored(&report.kev).stored,
        KevImport {
            added: 4,
            kept: 0,
            removed: Vec::new(),
            kept_unlisted: Vec::new()
        }
    );
    // The file has a rejected row without a valid CVE id (line 7), so it deletes nothing.
    assert_eq!(
        stored(&report.epss),
        &EpssOutcome {
            stored: EpssImport {
                written: 4,
                removed: 0,
                kept_unlisted: 0
            },
            prune: Prune::Nothing
        }
    );
    let rejected: Vec<String> = report.rejected().map(ToString::to_string).collect();
    // Each malformed EPSS line is named by the URL and its line number.
    assert_eq!(
        rejected,
        [
            "6 (CVE-2024-0727): expected 3 comma-separated fields, found 2".to_string(),
            "7 (CVE-24-0001): `CVE-24-0001` is not a CVE id".to_string(),
            "8 (CVE-2024-1111): `epss` is not a number between 0 and 1: `1.5`".to_string(),
            "9 (CVE-2024-2222): `percentile` is not a number between 0 and 1: `high`".to_string(),
            format!("10 (CVE-2024-32002): duplicate of the record kept at {epss_url}:4"),
            "11 (CVE-2024-3333): expected 3 comma-separated fields, found 4".to_string(),
        ]
        .map(|r| format!("{epss_url}:{r}"))
    );

    let stored = s.store.advisories().await.unwrap();
    let by_id: BTreeMap<&str, (&str, &str, DateTime<Utc>)> = stored
        .iter()
        .map(|a| {
            let source = &a.source;
            (
                a.id.as_str(),
                (
                    source.kind.as_str(),
                    source.location.as_str(),
                    source.fetched_at,
                ),
            )
        })
        .collect();
    assert_eq!(
        by_id,
        BTreeMap::from([
            ("USN-6793-1", ("osv", osv_one.as_str(), now())),
            ("USN-6859-1", ("osv", osv_two.as_str(), now())),
            ("USN-7604-1", ("osv", osv_two.as_str(), now())),
        ])
    );
    let git = stored.iter().find(|a| a.id == "USN-6793-1").unwrap();
    assert_eq!(
        git.cves,
        [
            "CVE-2024-32002",
            "CVE-2024-32004",
            "CVE-2024-32020",
            "CVE-2024-32021",
            "CVE-2024-32465"
        ]
    );

    let kev_view = s.store.kev().await.unwrap();
    let catalog = kev_view.catalog.unwrap();
    assert_eq!(catalog.catalog_version, "2025.03.20");
    let cves: Vec<&str> = catalog.entries.iter().map(|e| e.cve_id.as_str()).collect();
    assert_eq!(
        cves,
        [
            "CVE-2021-44228",
            "CVE-2024-32002",
            "CVE-2024-0727",
            "CVE-2025-24813"
        ]
    );
    let kev_source = kev_view.source.unwrap();
    assert_eq!(
        (kev_source.kind.as_str(), kev_source.location.as_str()),
        ("cisa-kev", kev_url.as_str())
    );
    assert_eq!(kev_source.fetched_at, now());

    let epss = s.store.epss().await.unwrap().unwrap();
    assert_eq!(epss.feed.model_version, "v2025.03.14");
    assert_eq!(
        (epss.source.kind.as_str(), epss.source.location.as_str()),
        ("epss", epss_url.as_str())
    );
    let scores: Vec<(&str, f64, f64)> = epss
        .feed
        .rows
        .iter()
        .map(|r| (r.cve.as_str(), r.epss, r.percentile))
        .collect();
    assert_eq!(
        scores,
        [
            ("CVE-1999-0001", 0.01141, 0.77754),
            ("CVE-2024-32002", 0.42, 0.97),
            ("CVE-2023-5678", 0.00612, 0.69),
            ("CVE-2024-6387", 0.9, 0.999),
        ]
    );

    assert_eq!(
        server.paths(),
        [
            "/osv/USN-6793-1.json",
            "/osv/two.json",
            "/kev.json",
            "/epss/epss_scores-current.csv.gz"
        ]
    );
    let agent = format!("patchwave-ingest/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(server.user_agents(), vec![agent; 4]);
}

#[tokio::test]
async fn a_status_other_than_200_names_the_url_and_the_status() {
    let server = TestServer::start(|path| match path {
        "/moved.json" => redirect(302, "/broken.json"),
        "/broken.json" => status(500),
        _ => status(404),
    })
    .await;
    let s = store();
    let missing = server.url("/osv/missing.json");
    let err = import(&s, osv(std::slice::from_ref(&missing)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{missing}: answered status 404 (expected 200)")
    );

    let moved = server.url("/moved.json");
    let failure = fetch_failure(import(&s, kev_feed(moved.clone())).await, &moved);
    assert_eq!(
        failure,
        FetchFailure::Status {
            status: 500,
            redirected_to: Some(server.url("/broken.json")),
        }
    );
    assert_eq!(s.store.advisories().await.unwrap(), Vec::new());
    assert_eq!(s.store.kev().await.unwrap().catalog, None);
}

#[tokio::test]
async fn redirects_are_followed_five_times_and_no_more() {
    let kev_body = kev();
    let port_cell = Arc::new(Mutex::new(0u16));
    let port_seen = Arc::clone(&port_cell);
    let server = TestServer::start(move |path| {
        let port = *port_seen.lock().unwrap();
        let Some(n) = path
            .strip_prefix("/hop/")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return status(404);
        };
        match n {
            0 => ok(kev_body.clone()),
            // Odd hops answer with an absolute Location, even ones with a relative one.
            n if n % 2 == 1 => redirect(301, &format!("http://127.0.0.1:{port}/hop/{}", n - 1)),
            2 => redirect(303, "1"),
            n => redirect(307, &format!("{}", n - 1)),
        }
    })
    .await;
    *port_cell.lock().unwrap() = server.port;

    let s = store();
    let five = server.url("/hop/5");
    let report = import(&s, kev_feed(five.clone())).await.unwrap();
    assert_eq!(stored(&report.kev).stored.added, 4);
    // The record keeps the URL asked for, not where the redirects led.
    assert_eq!(s.store.kev().await.unwrap().source.unwrap().location, five);
    assert_eq!(
        server.paths(),
        ["/hop/5", "/hop/4", "/hop/3", "/hop/2", "/hop/1", "/hop/0"]
    );

    let six = server.url("/hop/6");
    let failure = fetch_failure(import(&s, kev_feed(six.clone())).await, &six);
    assert_eq!(failure, FetchFailure::TooManyRedirects { limit: 5 });
    assert_eq!(
        server.paths()[6..],
        ["/hop/6", "/hop/5", "/hop/4", "/hop/3", "/hop/2", "/hop/1"]
    );
}

#[tokio::test]
async fn bodies_past_the_limits_are_refused() {
    let big = vec![b' '; 10_000];
    let bomb = gzip(&vec![b'0'; 1 << 20]);
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let server = TestServer::start(move |path| match path {
        "/declared.json" => ok(big.clone()),
        "/streamed.json" => Reply {
            content_length: false,
            ..ok(big.clone())
        },
        "/bomb.csv.gz" => ok(bomb.clone()),
        _ => status(404),
    })
    .await;
    let settings = FetchSettings {
        max_body_bytes: 4096,
        max_decompressed_bytes: 64 << 10,
        ..FetchSettings::default()
    };
    let s = store();
    let limited = |feeds: Feeds| {
        let fetcher = fetcher(settings.clone());
        let store = &s.store;
        async move { single(ingest::import(store, &feeds, &fetcher, options()).await) }
    };
    let declared = server.url("/declared.json");
    let failure = fetch_failure(
        limited(osv(std::slice::from_ref(&declared))).await,
        &declared,
    );
    assert_eq!(failure, FetchFailure::TooLarge { limit: 4096 });
    let streamed = server.url("/streamed.json");
    let err = limited(kev_feed(streamed.clone())).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{streamed}: the body is larger than 4096 bytes")
    );
    let bomb_url = server.url("/bomb.csv.gz");
    let err = limited(Feeds {
        epss: Some(bomb_url.clone()),
        ..Feeds::default()
    })
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{bomb_url}: gunzipped, the body is larger than 65536 bytes")
    );
    assert_eq!(s.store.epss().await.unwrap(), None);
}

#[tokio::test]
async fn a_slow_server_or_none_at_all_is_an_error_in_time() {
    let server = TestServer::start(|_| Reply {
        delay: Duration::from_secs(5),
        ..ok(kev())
    })
    .await;
    let fetcher = fetcher(FetchSettings {
        timeout: Duration::from_millis(300),
        ..FetchSettings::default()
    });
    let s = store();
    let slow = server.url("/kev.json");
    let started = std::time::Instant::now();
    let result =
        single(ingest::import(&s.store, &kev_feed(slow.clone()), &fetcher, options()).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        fetch_failure(result, &slow),
        FetchFailure::Timeout(Duration::from_millis(300))
    );

    let closed = closed_port();
    let gone = format!("http://127.0.0.1:{closed}/kev.json");
    let result =
        single(ingest::import(&s.store, &kev_feed(gone.clone()), &fetcher, options()).await);
    assert_eq!(
        fetch_failure(result, &gone),
        FetchFailure::Transport(format!(
            "cannot connect to 127.0.0.1:{closed}: Connection refused (os error 111)"
        ))
    );
}

#[tokio::test]
async fn credentials_in_a_url_are_refused_and_never_shown() {
    let server = TestServer::start(|_| ok(kev())).await;
    let s = store();
    let with_secret = format!("http://alice:s3cret@127.0.0.1:{}/kev.json", server.port);
    let err = import(&s, kev_feed(with_secret)).await.unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "{}: credentials in the URL are not supported (patchwave sends none)",
            server.url("/kev.json")
        )
    );
    assert!(
        !text.contains("s3cret") && !text.contains("alice"),
        "{text}"
    );
    assert_eq!(server.paths(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------
// https
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn https_trusts_the_configured_ca_file_and_refuses_without_it() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let plain = TestServer::start(|_| ok(kev())).await;
    let down = plain.url("/kev.json");
    let server = TestServer::start_with_tls(
        move |path| match path {
            "/osv.json" => ok(usn("USN-7014-1")),
            "/down.json" => redirect(302, &down),
            _ => status(404),
        },
        Some(tls_acceptor(dir.path())),
    )
    .await;
    let url = format!("https://localhost:{}/osv.json", server.port);

    // `[advisories] ca_file` is relative to the configuration's directory.
    let config =
        Config::from_toml("[advisories]\nca_file = \"ca.pem\"\n", "t", dir.path()).unwrap();
    assert_eq!(config.advisories.ca_file, Some(dir.path().join("ca.pem")));
    let trusting = fetcher(FetchSettings {
        ca_file: config.advisories.ca_file.clone(),
        ..FetchSettings::default()
    });
    let s = store();
    let report = ingest::import(
        &s.store,
        &osv(std::slice::from_ref(&url)),
        &trusting,
        options(),
    )
    .await;
    assert_eq!(stored(&report.osv).stored.inserted, 1);
    let nginx = s.store.advisory("USN-7014-1").await.unwrap().unwrap();
    assert_eq!(nginx.source.location, url);

    let untrusting = fetcher(FetchSettings::default());
    let result = single(
        ingest::import(
            &s.store,
            &osv(std::slice::from_ref(&url)),
            &untrusting,
            options(),
        )
        .await,
    );
    assert_eq!(
        fetch_failure(result, &url),
        FetchFailure::Transport(
            "TLS with localhost failed: invalid peer certificate: UnknownIssuer".into()
        )
    );

    // From https down to plain http is never followed.
    let down_url = format!("https://localhost:{}/down.json", server.port);
    let result =
        single(ingest::import(&s.store, &kev_feed(down_url.clone()), &trusting, options()).await);
    assert_eq!(
        fetch_failure(result, &down_url),
        FetchFailure::RedirectRefused {
            to: plain.url("/kev.json"),
            reason: "it goes from https down to http",
        }
    );
    assert_eq!(plain.paths(), Vec::<String>::new());
}

#[test]
fn a_missing_ca_file_is_refused_when_the_fetcher_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("nope.pem");
    let err = FeedFetcher::new(FetchSettings {
        ca_file: Some(path.clone()),
        ..FetchSettings::default()
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "advisories CA file {}: I/O error: No such file or directory (os error 2)",
            path.display()
        )
    );
}

// ---------------------------------------------------------------------------------------
// Trust: a bad or hostile feed never erases what is stored
// ---------------------------------------------------------------------------------------

/// Files written for one test, imported by path.
struct Files(TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.path().join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }
}

/// The KEV fixture of 2025-03-20 with `edit` applied to its JSON.
fn kev_edited(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(&kev()).unwrap();
    edit(&mut doc);
    serde_json::to_vec_pretty(&doc).unwrap()
}

fn entries(doc: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
    doc["vulnerabilities"].as_array_mut().unwrap()
}

/// An EPSS file in FIRST's layout dated `score_date`, scoring `CVE-2025-00000` ..
/// `CVE-2025-<rows-1>`.
fn epss_file(score_date: &str, rows: usize) -> Vec<u8> {
    let mut text =
        format!("#model_version:v2025.03.14,score_date:{score_date}\r\ncve,epss,percentile\r\n");
    for i in 0..rows {
        text.push_str(&format!("CVE-2025-{i:05},0.0{i:04},0.5\r\n"));
    }
    text.into_bytes()
}

fn one_feed(kind: &str, location: String) -> Feeds {
    match kind {
        "kev" => kev_feed(location),
        "epss" => Feeds {
            epss: Some(location),
            ..Feeds::default()
        },
        _ => osv(&[location]),
    }
}

async fn import_with(store: &TestStore, feeds: &Feeds, options: ImportOptions<'_>) -> ImportReport {
    ingest::import(
        &store.store,
        feeds,
        &fetcher(FetchSettings::default()),
        options,
    )
    .await
}

/// The refusals of the one feed asked for.
fn refused<T: std::fmt::Debug>(report: &Option<FeedReport<T>>) -> Vec<String> {
    match report.as_ref().map(|r| &r.result) {
        Some(Err(FeedFailure::Refused(why))) => why.iter().map(ToString::to_string).collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_kev_catalogue_whose_entries_are_all_malformed_is_refused_and_tombstones_nothing() {
    let s = store();
    let files = Files::new();
    import(&s, kev_feed(files.write("kev-0320.json", &kev())))
        .await
        .unwrap();
    let before = s.store.kev().await.unwrap();
    assert_eq!(before.catalog.as_ref().unwrap().entries.len(), 4);

    // A newer release in which no entry has a readable dateAdded.
    let broken = kev_edited(|doc| {
        doc["dateReleased"] = "2025-03-21T07:00:00.000Z".into();
        for entry in entries(doc) {
            entry["dateAdded"] = "2025-02-30".into();
        }
    });
    let location = files.write("kev-broken.json", &broken);
    let report = import_with(&s, &kev_feed(location.clone()), options()).await;
    assert_eq!(
        refused(&report.kev),
        [format!("{location} holds no usable records (4 rejected)")]
    );
    assert_eq!(report.kev.as_ref().unwrap().rejected.len(), 4);
    assert_eq!(s.store.kev().await.unwrap(), before);
}

#[tokio::test]
async fn a_malformed_kev_entry_keeps_its_cve_live_and_one_without_an_id_tombstones_nothing() {
    let s = store();
    let files = Files::new();
    import(&s, kev_feed(files.write("kev-0320.json", &kev())))
        .await
        .unwrap();
    let stored = s.store.kev().await.unwrap().catalog.unwrap();

    // CVE-2024-32002's dueDate is impossible; the others are as before.
    let one_bad = kev_edited(|doc| {
        doc["dateReleased"] = "2025-03-21T07:00:00.000Z".into();
        entries(doc)[1]["dueDate"] = "2024-07-32".into();
    });
    let report = import(&s, kev_feed(files.write("kev-one-bad.json", &one_bad)))
        .await
        .unwrap();
    let kev = stored_kev(&report);
    assert_eq!(
        kev.stored,
        KevImport {
            added: 0,
            kept: 3,
            removed: Vec::new(),
            kept_unlisted: vec!["CVE-2024-32002".into()]
        }
    );
    assert_eq!(
        kev.prune,
        Prune::AbsentExcept(["CVE-2024-32002".to_string()].into())
    );
    let view = s.store.kev().await.unwrap();
    assert_eq!(view.tombstones, []);
    let live = view.catalog.unwrap();
    let git = live
        .entries
        .iter()
        .find(|e| e.cve_id == "CVE-2024-32002")
        .unwrap();
    // Kept as it was stored, not as the malformed entry says.
    assert_eq!(Some(git), stored.entries.get(1));
    assert_eq!(live.entries.len(), 4);

    // An entry without a cveID, and CVE-2021-44228 no longer listed: nothing is
    // tombstoned, since the nameless entry could be it.
    let nameless = kev_edited(|doc| {
        doc["dateReleased"] = "2025-03-21T07:30:00.000Z".into();
        let list = entries(doc);
        list[0].as_object_mut().unwrap().remove("cveID");
    });
    let report = import(&s, kev_feed(files.write("kev-nameless.json", &nameless)))
        .await
        .unwrap();
    let kev = stored_kev(&report);
    assert_eq!(kev.prune, Prune::Nothing);
    assert_eq!(kev.stored.removed, []);
    assert_eq!(kev.stored.kept_unlisted, ["CVE-2021-44228"]);
    let view = s.store.kev().await.unwrap();
    assert_eq!(view.tombstones, []);
    assert_eq!(view.catalog.unwrap().entries.len(), 4);
}

fn stored_kev(report: &ImportReport) -> &ingest::KevOutcome {
    stored(&report.kev)
}

#[tokio::test]
async fn an_epss_file_with_only_its_header_is_refused_and_changes_nothing() {
    let s = store();
    let files = Files::new();
    import(
        &s,
        one_feed(
            "epss",
            files.write("epss-0315.csv", &epss_file("2025-03-15T12:55:00Z", 40)),
        ),
    )
    .await
    .unwrap();
    let before = s.store.epss().await.unwrap();
    assert_eq!(before.as_ref().unwrap().feed.rows.len(), 40);

    let header_only = files.write("epss-empty.csv", &epss_file("2025-03-16T12:55:00Z", 0));
    let report = import_with(&s, &one_feed("epss", header_only.clone()), options()).await;
    assert_eq!(
        refused(&report.epss),
        [format!("{header_only} holds no records")]
    );
    assert_eq!(s.store.epss().await.unwrap(), before);
}

#[tokio::test]
async fn an_epss_file_shrunk_to_ten_rows_is_refused_unless_forced_and_the_force_is_audited() {
    let s = store();
    let files = Files::new();
    import(
        &s,
        one_feed(
            "epss",
            files.write("epss-0315.csv", &epss_file("2025-03-15T12:55:00Z", 40)),
        ),
    )
    .await
    .unwrap();
    let before = s.store.epss().await.unwrap();

    let shrunk = files.write("epss-0316.csv", &epss_file("2025-03-16T12:55:00Z", 10));
    let report = import_with(&s, &one_feed("epss", shrunk.clone()), options()).await;
    assert_eq!(
        refused(&report.epss),
        ["10 entries, fewer than 50% of the 40 stored"]
    );
    assert_eq!(s.store.epss().await.unwrap(), before);

    // Forced: the override is audited first, then the feed is stored.
    let audit_path = files.0.path().join("state/audit.jsonl");
    let audit = patchwave_plugin_host::AuditLog::open(&audit_path).unwrap();
    let forced = ImportOptions {
        now: now(),
        force: Some(ingest::Force {
            reason: "FIRST republished a partial file; confirmed by phone",
            by: "alice",
            audit: &audit,
        }),
    };
    let report = import_with(&s, &one_feed("epss", shrunk.clone()), forced).await;
    let epss = report.epss.as_ref().unwrap();
    assert_eq!(
        epss.forced
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10 entries, fewer than 50% of the 40 stored"]
    );
    assert_eq!(
        stored(&report.epss).stored,
        EpssImport {
            written: 10,
            removed: 30,
            kept_unlisted: 0
        }
    );
    assert_eq!(s.store.epss().await.unwrap().unwrap().feed.rows.len(), 10);

    let text = std::fs::read_to_string(&audit_path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["event"], "feed-import-forced");
    assert_eq!(line["by"], "alice");
    assert_eq!(line["time"], "2026-05-01T08:00:00Z");
    assert_eq!(
        line["detail"],
        serde_json::json!({
            "feed": "epss",
            "location": shrunk,
            "reason": "FIRST republished a partial file; confirmed by phone",
            "overrides": ["10 entries, fewer than 50% of the 40 stored"],
            "refusals": [{"refusal": "shrunk", "offered": 10, "stored": 40}],
        })
    );
    assert_eq!(
        patchwave_plugin_host::AuditLog::verify(&audit_path, None)
            .unwrap()
            .lines(),
        1
    );

    // A force with nothing to override writes nothing to the log.
    let report = import_with(&s, &one_feed("epss", shrunk), forced).await;
    assert_eq!(report.epss.as_ref().unwrap().forced, []);
    assert_eq!(std::fs::read_to_string(&audit_path).unwrap(), text);
}

#[tokio::test]
async fn feeds_dated_2099_are_refused_and_the_genuine_ones_after_them_accepted() {
    let s = store();
    let files = Files::new();
    let kev_2099 = kev_edited(|doc| {
        doc["catalogVersion"] = "2099.01.01".into();
        doc["dateReleased"] = "2099-01-01T00:00:00.000Z".into();
    });
    let kev_location = files.write("kev-2099.json", &kev_2099);
    let epss_location = files.write("epss-2099.csv", &epss_file("2099-01-01T00:00:00Z", 4));
    let report = import_with(
        &s,
        &Feeds {
            kev: Some(kev_location),
            epss: Some(epss_location),
            ..Feeds::default()
        },
        options(),
    )
    .await;
    assert_eq!(
        refused(&report.kev),
        [
            "dateReleased 2099-01-01T00:00:00Z is later than now (2026-05-01T08:00:00Z) plus 24 \
          hours"
        ]
    );
    assert_eq!(
        refused(&report.epss),
        [
            "score_date 2099-01-01T00:00:00Z is later than now (2026-05-01T08:00:00Z) plus 24 \
          hours"
        ]
    );
    assert_eq!(s.store.kev().await.unwrap().catalog, None);
    assert_eq!(s.store.epss().await.unwrap(), None);

    let report = import(
        &s,
        Feeds {
            kev: Some(files.write("kev-0320.json", &kev())),
            epss: Some(files.write("epss-0315.csv", &epss_file("2025-03-15T12:55:00Z", 4))),
            ..Feeds::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(stored(&report.kev).stored.added, 4);
    assert_eq!(stored(&report.epss).stored.written, 4);
    assert_eq!(
        s.store
            .kev()
            .await
            .unwrap()
            .catalog
            .unwrap()
            .catalog_version,
        "2025.03.20"
    );
}

#[tokio::test]
async fn an_older_catalogue_is_refused_and_changes_nothing() {
    let s = store();
    let files = Files::new();
    import(&s, kev_feed(files.write("kev-0320.json", &kev())))
        .await
        .unwrap();
    let before = s.store.kev().await.unwrap();
    let old = files.write("kev-0314.json", &data("kev/catalog-2025.03.14.json"));
    let report = import_with(&s, &kev_feed(old), options()).await;
    assert_eq!(
        refused(&report.kev),
        ["dated 2025-03-14T16:01:59.730500Z, older than the stored one from 2025-03-20T17:30:00Z"]
    );
    assert_eq!(s.store.kev().await.unwrap(), before);
}

#[tokio::test]
async fn an_osv_record_for_an_unknown_ecosystem_is_stored_and_reported() {
    let s = store();
    let files = Files::new();
    let mut pypi: serde_json::Value = serde_json::from_slice(&usn("USN-6793-1")).unwrap();
    pypi["id"] = "PYSEC-2024-1".into();
    for affected in pypi["affected"].as_array_mut().unwrap() {
        affected["package"]["ecosystem"] = "PyPI".into();
    }
    let dir = files.0.path().join("osv");
    files.write("osv/PYSEC-2024-1.json", &serde_json::to_vec(&pypi).unwrap());
    files.write("osv/USN-6859-1.json", &usn("USN-6859-1"));
    let report = import(&s, osv(&[dir.display().to_string()])).await.unwrap();
    let osv = stored(&report.osv);
    assert_eq!(osv.stored.inserted, 2);
    assert_eq!(
        osv.unknown_ecosystems,
        [patchwave_advisory::UnknownEcosystem {
            name: "PyPI".into(),
            advisories: vec!["PYSEC-2024-1".into()]
        }]
    );
}

#[tokio::test]
async fn an_empty_osv_location_is_refused_and_stores_nothing_of_its_unit() {
    let s = store();
    let files = Files::new();
    let usns = files.write("osv/USN-6859-1.json", &usn("USN-6859-1"));
    let empty = files.0.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let empty = empty.display().to_string();
    let report = import_with(&s, &osv(&[usns, empty.clone()]), options()).await;
    assert_eq!(refused(&report.osv), [format!("{empty} holds no records")]);
    assert_eq!(s.store.advisories().await.unwrap(), Vec::new());
}

#[tokio::test]
async fn each_feed_is_its_own_unit_and_a_failing_one_stops_no_other() {
    let server = TestServer::start(|path| match path {
        "/osv.json" => ok(usn("USN-6859-1")),
        _ => status(404),
    })
    .await;
    let s = store();
    let files = Files::new();
    let missing = server.url("/kev.json");
    let report = import_with(
        &s,
        &Feeds {
            osv: vec![server.url("/osv.json")],
            kev: Some(missing.clone()),
            epss: Some(files.write("epss.csv", &epss_file("2025-03-15T12:55:00Z", 4))),
        },
        options(),
    )
    .await;
    let outcomes: Vec<(String, Option<String>)> = report
        .outcomes()
        .iter()
        .map(|(kind, f)| (kind.to_string(), f.map(ToString::to_string)))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("osv".to_string(), None),
            (
                "kev".to_string(),
                Some(format!("{missing}: answered status 404 (expected 200)"))
            ),
            ("epss".to_string(), None),
        ]
    );
    assert_eq!(s.store.advisories().await.unwrap().len(), 1);
    assert_eq!(s.store.kev().await.unwrap().catalog, None);
    assert_eq!(s.store.epss().await.unwrap().unwrap().feed.rows.len(), 4);
}
