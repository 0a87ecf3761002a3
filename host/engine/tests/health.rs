//! Health sources against real servers on loopback: a small HTTP server written here (the
//! thing observed), the real `prometheus` and `prometheus-alertmanager` binaries (Debian
//! packages `prometheus` and `prometheus-alertmanager`) and, for https, certificates made by
//! the `openssl` command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchwave_core::HostId;
use patchwave_engine::health::{Baseline, Captured, HealthConfig, HealthReport, HealthSources};
use patchwave_rollout::Verdict;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

use support::{closed_port, make_certificates, require_binary, tls_acceptor, Reply, TestServer};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn sources(toml_text: &str) -> HealthSources {
    let config: HealthConfig = toml::from_str(toml_text).expect("health config parses");
    HealthSources::new(&config, Path::new("/")).expect("health config is valid")
}

fn hosts(list: &[(&str, &str)]) -> Vec<(HostId, String)> {
    list.iter()
        .map(|(id, addr)| (HostId::from(*id), addr.to_string()))
        .collect()
}

fn no_go(reason: &str) -> Verdict {
    Verdict::NoGo(reason.to_string())
}

fn unsure(reason: &str) -> Verdict {
    Verdict::Inconclusive(reason.to_string())
}

fn connection_refused(port: u16) -> String {
    format!("cannot connect to 127.0.0.1:{port}: Connection refused (os error 111)")
}

/// Polls `probe` every 100 ms until it gives a value, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The observed HTTP server
// ---------------------------------------------------------------------------------------

/// An answer of the observed server: `status` and a text `body`, as a metrics endpoint
/// writes it.
fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![("Content-Type".into(), "text/plain; version=0.0.4".into())],
        body: body.as_bytes().to_vec(),
        content_length: true,
        delay: Duration::ZERO,
    }
}

/// Sends one raw HTTP/1.0 request and returns the status and body.
async fn raw_request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    let status = answer.split(' ').nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}

// ---------------------------------------------------------------------------------------
// Real daemons
// ---------------------------------------------------------------------------------------

/// A started prometheus / alertmanager, killed on drop (also when the test panics).
struct Daemon {
    name: &'static str,
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn spawn(
        name: &'static str,
        package: &str,
        args: impl Fn(&Path, u16) -> Vec<String>,
    ) -> Daemon {
        let binary = require_binary(name, package);
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(binary)
            .args(args(dir.path(), port))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            name,
            child,
            port,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Waits (at most 20 s) until `/-/ready` answers 200.
    async fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log()
                );
            }
            if let Some((200, _)) = raw_request(self.port, "GET", "/-/ready", "").await {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{} not ready within 20s:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn start_prometheus(scrape_port: u16) -> Daemon {
    let mut daemon = Daemon::spawn("prometheus", "prometheus", |dir, port| {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: test\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{scrape_port}']\n"
            ),
        )
        .unwrap();
        vec![
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]
    });
    daemon.wait_ready().await;
    daemon
}

async fn start_alertmanager() -> Daemon {
    let mut daemon = Daemon::spawn(
        "prometheus-alertmanager",
        "prometheus-alertmanager",
        |dir, port| {
            let config = dir.join("alertmanager.yml");
            std::fs::write(
                &config,
                "route:\n  receiver: none\nreceivers:\n  - name: none\n",
            )
            .unwrap();
            vec![
                format!("--config.file={}", config.display()),
                format!("--storage.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--cluster.listen-address=".to_string(),
            ]
        },
    );
    daemon.wait_ready().await;
    daemon
}

/// Fires an alert with these labels through `POST /api/v2/alerts`.
async fn fire(alertmanager: &Daemon, labels: &[(&str, &str)]) {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let body = serde_json::json!([{ "labels": labels }]).to_string();
    let answer = raw_request(alertmanager.port, "POST", "/api/v2/alerts", &body).await;
    assert_eq!(
        answer.map(|(s, _)| s),
        Some(200),
        "posting alert {labels:?}"
    );
}

// ---------------------------------------------------------------------------------------
// No sources
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn no_sources_is_a_go() {
    let sources = sources("");
    assert!(sources.is_empty());
    assert_eq!(sources.capture_baseline().await, Baseline::default());
    let report = sources.check(None, &hosts(&[("web-1", "127.0.0.1")])).await;
    assert_eq!(
        report,
        HealthReport {
            verdict: Verdict::Go,
            sources: vec![]
        }
    );
}

// ---------------------------------------------------------------------------------------
// http
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn per_host_http_checks_every_host_and_names_the_failing_one() {
    let server = TestServer::start(|path| match path {
        "/hosts/web-1/health" => reply(200, "ok"),
        "/hosts/web-2/health" => reply(500, "database down"),
        _ => reply(404, "no such path"),
    })
    .await;
    let port = server.port;
    let sources = sources(&format!(
        "[[sources]]\nkind = \"http\"\nurl = \"http://{{address}}:{port}/hosts/{{host}}/health\"\n"
    ));
    let label = format!("http http://{{address}}:{port}/hosts/{{host}}/health");
    let report = sources
        .check(
            None,
            &hosts(&[("web-1", "127.0.0.1"), ("web-2", "127.0.0.1")]),
        )
        .await;
    assert_eq!(
        report.verdict,
        no_go(&format!("{label}: web-2: status 500 (expected 200)"))
    );
    assert_eq!(
        report.lines(),
        vec![format!("{label}: no-go: web-2: status 500 (expected 200)")]
    );
    assert_eq!(
        server.sorted_paths(),
        vec!["/hosts/web-1/health", "/hosts/web-2/health"]
    );

    let healthy = sources.check(None, &hosts(&[("web-1", "127.0.0.1")])).await;
    assert_eq!(healthy.verdict, Verdict::Go);
    assert_eq!(
        healthy.lines(),
        vec![format!("{label}: go (1 host answered 200)")]
    );
}

#[tokio::test]
async fn per_service_http_checks_status_and_body_once() {
    let server = TestServer::start(|path| match path {
        "/status" => reply(200, "state: degraded"),
        "/maintenance" => reply(503, "in maintenance"),
        _ => reply(404, "no such path"),
    })
    .await;
    let port = server.port;
    let sources = sources(&format!(
        "[[sources]]\nkind = \"http\"\nname = \"body ok\"\nurl = \"http://127.0.0.1:{port}/status\"\n\
         expect_body = \"degraded\"\n\
         [[sources]]\nkind = \"http\"\nname = \"body bad\"\nurl = \"http://127.0.0.1:{port}/status\"\n\
         expect_body = \"state: ok\"\n\
         [[sources]]\nkind = \"http\"\nname = \"503 expected\"\n\
         url = \"http://127.0.0.1:{port}/maintenance\"\nexpect_status = 503\n"
    ));
    let report = sources
        .check(
            None,
            &hosts(&[("web-1", "127.0.0.1"), ("web-2", "127.0.0.1")]),
        )
        .await;
    assert_eq!(
        report.verdict,
        no_go("body bad: status 200 but the body lacks `state: ok`")
    );
    assert_eq!(
        report.lines(),
        vec![
            "body ok: go (answered 200)".to_string(),
            "body bad: no-go: status 200 but the body lacks `state: ok`".to_string(),
            "503 expected: go (answered 503)".to_string(),
        ]
    );
    // Once per source, not once per host.
    assert_eq!(
        server.sorted_paths(),
        vec!["/maintenance", "/status", "/status"]
    );
}

#[tokio::test]
async fn http_timeout_and_refused_connection_are_no_go() {
    let server = TestServer::start(|_| Reply {
        delay: Duration::from_secs(5),
        ..reply(200, "late")
    })
    .await;
    let (port, closed) = (server.port, closed_port());
    let sources = sources(&format!(
        "[[sources]]\nkind = \"http\"\nname = \"slow\"\nurl = \"http://127.0.0.1:{port}/\"\n\
         timeout = \"300ms\"\n\
         [[sources]]\nkind = \"http\"\nname = \"gone\"\n\
         url = \"http://{{address}}:{closed}/health\"\n"
    ));
    let start = Instant::now();
    let report = sources.check(None, &hosts(&[("db-1", "127.0.0.1")])).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        report.verdict,
        no_go(&format!(
            "slow: no answer within 300ms; gone: db-1: {}",
            connection_refused(closed)
        ))
    );
}

#[tokio::test]
async fn https_trusts_the_ca_file_and_refuses_an_unknown_issuer() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    let server =
        TestServer::start_with_tls(|_| reply(200, "ok"), Some(tls_acceptor(dir.path()))).await;
    let port = server.port;
    let config: HealthConfig = toml::from_str(&format!(
        "[[sources]]\nkind = \"http\"\nname = \"own ca\"\nurl = \"https://localhost:{port}/health\"\n\
         ca_file = \"ca.pem\"\n\
         [[sources]]\nkind = \"http\"\nname = \"by ip\"\nurl = \"https://{{address}}:{port}/health\"\n\
         ca_file = \"ca.pem\"\n\
         [[sources]]\nkind = \"http\"\nname = \"mozilla roots\"\n\
         url = \"https://localhost:{port}/health\"\n"
    ))
    .unwrap();
    // A relative ca_file is taken from the configuration's directory.
    let sources = HealthSources::new(&config, dir.path()).unwrap();
    let report = sources.check(None, &hosts(&[("web-1", "127.0.0.1")])).await;
    assert_eq!(
        report.lines(),
        vec![
            "own ca: go (answered 200)".to_string(),
            "by ip: go (1 host answered 200)".to_string(),
            "mozilla roots: no-go: TLS with localhost failed: invalid peer certificate: \
             UnknownIssuer"
                .to_string(),
        ]
    );
}

#[tokio::test]
async fn a_missing_ca_file_is_refused_when_the_sources_are_built() {
    let config: HealthConfig = toml::from_str(
        "[[sources]]\nkind = \"http\"\nurl = \"https://localhost/\"\nca_file = \"nope.pem\"\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = HealthSources::new(&config, dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "health.sources[0].ca_file {}: I/O error: No such file or directory (os error 2)",
            dir.path().join("nope.pem").display()
        )
    );
}

// ---------------------------------------------------------------------------------------
// prometheus
// ---------------------------------------------------------------------------------------

/// A `/metrics` endpoint with one gauge the test sets.
async fn metrics_server(value: Arc<AtomicU64>) -> TestServer {
    TestServer::start(move |path| match path {
        "/metrics" => reply(
            200,
            &format!(
                "# TYPE test_errors_total gauge\ntest_errors_total {}\n",
                f64::from_bits(value.load(Ordering::SeqCst))
            ),
        ),
        _ => reply(404, "no such path"),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rise_past_the_limits_is_no_go_and_unchanged_is_go() {
    let value = Arc::new(AtomicU64::new(5f64.to_bits()));
    let metrics = metrics_server(Arc::clone(&value)).await;
    let prometheus = start_prometheus(metrics.port).await;
    let url = prometheus.url();
    let sources = sources(&format!(
        "[[sources]]\nkind = \"prometheus\"\nurl = \"{url}\"\nquery = \"test_errors_total\"\n\
         max_increase = 10\n\
         [[sources]]\nkind = \"prometheus\"\nname = \"error ratio\"\nurl = \"{url}\"\n\
         query = \"test_errors_total\"\nmax_ratio = 1.5\n"
    ));
    let identity = format!("{url}/ test_errors_total");
    let identity = format!("prometheus {identity}");

    // Until the first scrape the query has no data.
    let baseline = eventually("first scrape", Duration::from_secs(15), || async {
        let b = sources.capture_baseline().await;
        matches!(b.sources.get(&identity), Some(Captured::Value { .. })).then_some(b)
    })
    .await;
    assert_eq!(
        baseline,
        Baseline {
            sources: BTreeMap::from([(identity.clone(), Captured::Value { value: 5.0 })])
        }
    );
    // The engine persists it as JSON with the rollout.
    let baseline: Baseline =
        serde_json::from_str(&serde_json::to_string(&baseline).unwrap()).unwrap();

    let unchanged = sources.check(Some(&baseline), &[]).await;
    assert_eq!(unchanged.verdict, Verdict::Go);
    assert_eq!(
        unchanged.lines(),
        vec![
            "prometheus test_errors_total: go (5 before, 5 now (+0))".to_string(),
            "error ratio: go (5 before, 5 now (+0))".to_string(),
        ]
    );

    value.store(50f64.to_bits(), Ordering::SeqCst);
    let expected = no_go(
        "prometheus test_errors_total: rose from 5 to 50: +45 is more than the allowed +10; \
         error ratio: rose from 5 to 50: x10 is more than the allowed x1.5",
    );
    let risen = eventually(
        "scrape of the risen value",
        Duration::from_secs(10),
        || async {
            let report = sources.check(Some(&baseline), &[]).await;
            // Before the next scrape the value is still the baseline's.
            assert!(
                report.verdict == Verdict::Go || report.verdict == expected,
                "{report:?}"
            );
            (report.verdict != Verdict::Go).then_some(report)
        },
    )
    .await;
    assert_eq!(risen.verdict, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_without_an_answer_or_a_baseline_is_inconclusive() {
    let prometheus = start_prometheus(closed_port()).await;
    let url = prometheus.url();
    let gone = closed_port();
    let sources = sources(&format!(
        "[[sources]]\nkind = \"prometheus\"\nname = \"bad query\"\nurl = \"{url}\"\n\
         query = \"sum(\"\nmax_increase = 1\n\
         [[sources]]\nkind = \"prometheus\"\nname = \"no data\"\nurl = \"{url}\"\n\
         query = \"no_such_metric\"\nmax_increase = 1\n\
         [[sources]]\nkind = \"prometheus\"\nname = \"two series\"\nurl = \"{url}\"\n\
         query = 'label_replace(vector(1), \"a\", \"x\", \"\", \"\") or vector(2)'\n\
         max_increase = 1\n\
         [[sources]]\nkind = \"prometheus\"\nname = \"unreachable\"\n\
         url = \"http://127.0.0.1:{gone}\"\nquery = \"up\"\nmax_increase = 1\n\
         [[sources]]\nkind = \"prometheus\"\nname = \"fine\"\nurl = \"{url}\"\n\
         query = \"vector(7)\"\nmax_ratio = 1.2\n"
    ));
    let bad_query = "query failed: bad_data: invalid parameter \"query\": 1:5: parse error: \
                     unclosed left parenthesis";
    let no_data = "the query returned no data";
    let two_series =
        "the query returned 2 series; it must return one (aggregate it, e.g. with sum())";
    let unreachable = format!("Prometheus API: {}", connection_refused(gone));
    let id = |query: &str| format!("prometheus {url}/ {query}");
    let failed = |error: &str| Captured::Failed {
        error: error.to_string(),
    };

    let baseline = sources.capture_baseline().await;
    assert_eq!(
        baseline.sources,
        BTreeMap::from([
            (id("sum("), failed(bad_query)),
            (id("no_such_metric"), failed(no_data)),
            (
                id("label_replace(vector(1), \"a\", \"x\", \"\", \"\") or vector(2)"),
                failed(two_series)
            ),
            (
                format!("prometheus http://127.0.0.1:{gone}/ up"),
                failed(&unreachable)
            ),
            (id("vector(7)"), Captured::Value { value: 7.0 }),
        ])
    );

    let after_failed_capture = sources.check(Some(&baseline), &[]).await;
    let failed_capture = "no baseline: capturing it before the stage failed:";
    assert_eq!(
        after_failed_capture.lines(),
        vec![
            format!("bad query: inconclusive: {failed_capture} {bad_query}"),
            format!("no data: inconclusive: {failed_capture} {no_data}"),
            format!("two series: inconclusive: {failed_capture} {two_series}"),
            format!("unreachable: inconclusive: {failed_capture} {unreachable}"),
            "fine: go (7 before, 7 now (+0))".to_string(),
        ]
    );

    let without_baseline = sources.check(None, &[]).await;
    let none = "no baseline was captured before the stage";
    assert_eq!(
        without_baseline.verdict,
        unsure(&format!(
            "bad query: {none}; no data: {none}; two series: {none}; unreachable: {none}; \
             fine: {none}"
        ))
    );

    // With a baseline, the query's own failure at the gate is what is reported.
    let mut captured = baseline.clone();
    for value in captured.sources.values_mut() {
        if let Captured::Failed { .. } = value {
            *value = Captured::Value { value: 1.0 };
        }
    }
    let at_gate = sources.check(Some(&captured), &[]).await;
    assert_eq!(
        at_gate.verdict,
        unsure(&format!(
            "bad query: {bad_query}; no data: {no_data}; two series: {two_series}; \
             unreachable: {unreachable}"
        ))
    );
    assert_eq!(at_gate.sources[4].verdict, Verdict::Go);
}

// ---------------------------------------------------------------------------------------
// alertmanager
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_new_alert_is_no_go_and_the_same_alerts_are_go() {
    let alertmanager = start_alertmanager().await;
    let url = alertmanager.url();
    let gone = closed_port();
    let sources = sources(&format!(
        "[[sources]]\nkind = \"alertmanager\"\nurl = \"{url}\"\n\
         [[sources]]\nkind = \"alertmanager\"\nname = \"gone\"\nurl = \"http://127.0.0.1:{gone}\"\n"
    ));
    let label = format!("alertmanager {url}");
    let identity = format!("alertmanager {url}/ {{}}");
    fire(
        &alertmanager,
        &[("alertname", "HighLatency"), ("severity", "warning")],
    )
    .await;

    let baseline = sources.capture_baseline().await;
    let unreachable = format!("Alertmanager API: {}", connection_refused(gone));
    let Some(Captured::Alerts { fingerprints }) = baseline.sources.get(&identity) else {
        panic!("no alerts captured: {baseline:?}");
    };
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(
        baseline
            .sources
            .get(&format!("alertmanager http://127.0.0.1:{gone}/ {{}}")),
        Some(&Captured::Failed {
            error: unreachable.clone()
        })
    );

    let same = sources.check(Some(&baseline), &[]).await;
    assert_eq!(
        same.lines(),
        vec![
            format!("{label}: go (1 active alert(s), all firing before the stage)"),
            format!(
                "gone: inconclusive: no baseline: capturing it before the stage failed: \
                 {unreachable}"
            ),
        ]
    );

    // Firing again (same labels) is the same alert.
    fire(
        &alertmanager,
        &[("alertname", "HighLatency"), ("severity", "warning")],
    )
    .await;
    fire(
        &alertmanager,
        &[("alertname", "DiskFull"), ("instance", "db-1")],
    )
    .await;
    fire(
        &alertmanager,
        &[("alertname", "DiskFull"), ("instance", "db-2")],
    )
    .await;
    fire(&alertmanager, &[("alertname", "Crashloop")]).await;
    let new = sources.check(Some(&baseline), &[]).await;
    assert_eq!(
        new.verdict,
        no_go(&format!(
            "{label}: new firing alerts: Crashloop, DiskFull (2)"
        ))
    );

    // Unreachable at the gate, with a baseline: inconclusive with the reason.
    let mut with_gone = baseline.clone();
    with_gone.sources.insert(
        format!("alertmanager http://127.0.0.1:{gone}/ {{}}"),
        Captured::Alerts {
            fingerprints: BTreeSet::new(),
        },
    );
    let report = sources.check(Some(&with_gone), &[]).await;
    assert_eq!(
        report.lines()[1],
        format!("gone: inconclusive: {unreachable}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_matchers_count_only_matching_alerts() {
    let alertmanager = start_alertmanager().await;
    let url = alertmanager.url();
    let sources = sources(&format!(
        "[[sources]]\nkind = \"alertmanager\"\nname = \"critical\"\nurl = \"{url}\"\n\
         matchers = [\"severity=critical\", \"team!=batch\"]\n"
    ));
    let identity = format!("alertmanager {url}/ {{severity=\"critical\",team!=\"batch\"}}");
    fire(
        &alertmanager,
        &[("alertname", "HighLatency"), ("severity", "warning")],
    )
    .await;
    fire(
        &alertmanager,
        &[("alertname", "QueueFull"), ("severity", "critical")],
    )
    .await;

    let baseline = sources.capture_baseline().await;
    let Some(Captured::Alerts { fingerprints }) = baseline.sources.get(&identity) else {
        panic!("no alerts captured: {baseline:?}");
    };
    assert_eq!(fingerprints.len(), 1, "only QueueFull matches");

    fire(
        &alertmanager,
        &[("alertname", "CpuHot"), ("severity", "warning")],
    )
    .await;
    fire(
        &alertmanager,
        &[
            ("alertname", "NightlyFailed"),
            ("severity", "critical"),
            ("team", "batch"),
        ],
    )
    .await;
    let unmatched = sources.check(Some(&baseline), &[]).await;
    assert_eq!(
        unmatched.lines(),
        vec!["critical: go (1 active alert(s), all firing before the stage)".to_string()]
    );

    fire(
        &alertmanager,
        &[("alertname", "DiskFull"), ("severity", "critical")],
    )
    .await;
    let matched = sources.check(Some(&baseline), &[]).await;
    assert_eq!(
        matched.verdict,
        no_go("critical: new firing alerts: DiskFull")
    );
}
