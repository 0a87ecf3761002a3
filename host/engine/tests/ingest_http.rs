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
use patchwave_engine::ingest::{
    self, FeedFetcher, Feeds, FetchFailure, FetchSettings, ImportReport, IngestError,
};
use patchwave_engine::Config;
use patchwave_store::{AdvisoryImport, KevImport, SqliteStore, Store};
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
    Utc.with_ymd_and_hms(2025, 3, 21, 8, 0, 0).unwrap()
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

async fn import(store: &TestStore, feeds: Feeds) -> Result<ImportReport, IngestError> {
    ingest::import(
        &store.store,
        &feeds,
        &fetcher(FetchSettings::default()),
        now(),
    )
    .await
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

    assert_eq!(report.osv_documents, 2);
    assert_eq!(
        report.osv,
        AdvisoryImport {
            inserted: 3,
            updated: 0,
            unchanged: 0
        }
    );
    assert_eq!(
        report.kev,
        Some(KevImport {
            added: 4,
            kept: 0,
            removed: Vec::new()
        })
    );
    assert_eq!(report.epss, Some(4));
    let rejected: Vec<String> = report.rejected.iter().map(ToString::to_string).collect();
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
    assert_eq!(report.kev.unwrap().added, 4);
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
        async move { ingest::import(store, &feeds, &fetcher, now()).await }
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
    let result = ingest::import(&s.store, &kev_feed(slow.clone()), &fetcher, now()).await;
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
    let result = ingest::import(&s.store, &kev_feed(gone.clone()), &fetcher, now()).await;
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
    let report = ingest::import(&s.store, &osv(std::slice::from_ref(&url)), &trusting, now())
        .await
        .unwrap();
    assert_eq!(report.osv.inserted, 1);
    let nginx = s.store.advisory("USN-7014-1").await.unwrap().unwrap();
    assert_eq!(nginx.source.location, url);

    let untrusting = fetcher(FetchSettings::default());
    let result = ingest::import(
        &s.store,
        &osv(std::slice::from_ref(&url)),
        &untrusting,
        now(),
    )
    .await;
    assert_eq!(
        fetch_failure(result, &url),
        FetchFailure::Transport(
            "TLS with localhost failed: invalid peer certificate: UnknownIssuer".into()
        )
    );

    // From https down to plain http is never followed.
    let down_url = format!("https://localhost:{}/down.json", server.port);
    let result = ingest::import(&s.store, &kev_feed(down_url.clone()), &trusting, now()).await;
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
