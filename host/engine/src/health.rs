//! Health sources for rollout gates: the engine asks them before a stage (baseline) and at
//! its gate (check), and hands the combined [`Verdict`] back to `decide`.
//!
//! Three kinds of source, configured under `[health]`:
//!
//! - `http`: an endpoint that must answer with a status (and optionally a body substring).
//!   A URL with `{host}` / `{address}` placeholders is checked for every patched host of the
//!   stage; one without is checked once, for the service.
//! - `prometheus`: an instant query whose value must not rise past `max_increase` and/or
//!   `max_ratio` compared with its value before the stage.
//! - `alertmanager`: no alert may fire that was not already firing before the stage.
//!
//! An unhealthy answer is a no-go; a source that cannot tell (unreachable, no data, no
//! baseline) is inconclusive, so a human decides. Requests go only to the configured URLs,
//! never through a proxy from the environment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use patchwave_core::{HostId, HumanDuration};
use patchwave_rollout::combine;
use patchwave_rollout::judge::{
    alertmanager_answer_alerts, compare, judge_hosts, judge_service, new_alerts,
    prometheus_answer_value, Alert, Expectation, HostOutcome, Limits,
};
use patchwave_rollout::Verdict;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::rustls::ClientConfig;
use url::Url;

use crate::http::{mozilla_roots, roots_with_ca_file, tls_config, HttpClient};

pub use patchwave_rollout::judge::SourceResult;

/// How long an `http` source waits for an answer unless `timeout` says otherwise.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `prometheus` or `alertmanager` source waits unless `timeout` says otherwise.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(10);
/// How many hosts of a per-host `http` source are asked at the same time.
const PER_HOST_CONCURRENCY: usize = 16;
/// The most an `http` source reads of a body it must search.
const HTTP_BODY_LIMIT: usize = 1 << 20;
/// The most read of a Prometheus or Alertmanager answer.
const API_BODY_LIMIT: usize = 16 << 20;
const USER_AGENT_VALUE: &str = concat!("patchwave-health/", env!("CARGO_PKG_VERSION"));

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// The `[health]` section: the sources every gate asks.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// The sources, in the order their results are reported (`[[health.sources]]`).
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

/// One `[[health.sources]]` entry; `kind` says which.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    /// `kind = "http"`: an endpoint per host or per service.
    Http(HttpSourceConfig),
    /// `kind = "prometheus"`: an instant query compared with its value before the stage.
    Prometheus(PrometheusSourceConfig),
    /// `kind = "alertmanager"`: no new firing alerts.
    Alertmanager(AlertmanagerSourceConfig),
}

/// An HTTP endpoint that must answer with `expect_status` (and contain `expect_body`).
/// Redirects are not followed: a `301` is just a status that is not the expected one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// The name in reports; defaults to `http <url>`.
    pub name: Option<String>,
    /// `http://` or `https://` URL; `{host}` (host id) and `{address}` (host address) make
    /// it a per-host check.
    pub url: String,
    /// The status that means healthy (default 200).
    pub expect_status: Option<u16>,
    /// A substring the body must contain (the first MiB is searched).
    pub expect_body: Option<String>,
    /// How long to wait for the whole answer, like `5s` (default 5s).
    pub timeout: Option<String>,
    /// A PEM file of extra CA certificates trusted for `https` (besides the Mozilla roots).
    pub ca_file: Option<PathBuf>,
}

/// A Prometheus instant query that must not rise too far above its value before the stage.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSourceConfig {
    /// The name in reports; defaults to `prometheus <query>`.
    pub name: Option<String>,
    /// The Prometheus base URL, like `http://prometheus:9090` (or with a path prefix).
    pub url: String,
    /// A PromQL instant query returning a scalar or exactly one sample.
    pub query: String,
    /// The largest allowed rise over the baseline, in the query's unit.
    pub max_increase: Option<f64>,
    /// The largest allowed value divided by the baseline, like `1.2` (at least 1).
    pub max_ratio: Option<f64>,
    /// How long to wait for the answer, like `10s` (default 10s).
    pub timeout: Option<String>,
    /// A PEM file of extra CA certificates trusted for `https` (besides the Mozilla roots).
    pub ca_file: Option<PathBuf>,
}

/// An Alertmanager (API v2) whose active alerts must all have been active before the stage.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSourceConfig {
    /// The name in reports; defaults to `alertmanager <url>`.
    pub name: Option<String>,
    /// The Alertmanager base URL, like `http://alertmanager:9093`.
    pub url: String,
    /// Only alerts matching all of these count: `label=value`, `label!=value`,
    /// `label=~regex` or `label!~regex`.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// How long to wait for the answer, like `10s` (default 10s).
    pub timeout: Option<String>,
    /// A PEM file of extra CA certificates trusted for `https` (besides the Mozilla roots).
    pub ca_file: Option<PathBuf>,
}

impl HealthConfig {
    /// Every problem of the section, each naming where it is (`health.sources[2].query`).
    /// Empty when the section is valid. Reads no file: a `ca_file` is read by
    /// [`HealthSources::new`].
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut labels: BTreeMap<String, usize> = BTreeMap::new();
        for (i, source) in self.sources.iter().enumerate() {
            let at = format!("health.sources[{i}]");
            if let Some(spec) = compile_source(&at, source, &mut problems) {
                if let Some(first) = labels.insert(spec.label.clone(), i) {
                    problems.push(format!(
                        "{at}: reported as `{}` like health.sources[{first}]; give one a \
                         distinct `name`",
                        spec.label
                    ));
                }
            }
        }
        problems
    }
}

/// A source checked and compiled, before its TLS settings are loaded.
#[derive(Clone, Debug)]
struct SourceSpec {
    label: String,
    identity: String,
    timeout: Duration,
    ca_file: Option<PathBuf>,
    check: CheckSpec,
}

#[derive(Clone, Debug)]
enum CheckSpec {
    Http {
        template: UrlTemplate,
        expect_status: u16,
        expect_body: Option<String>,
    },
    Prometheus {
        base: Url,
        query: String,
        limits: Limits,
    },
    Alertmanager {
        base: Url,
        matchers: Vec<Matcher>,
    },
}

fn compile_source(
    at: &str,
    source: &SourceConfig,
    problems: &mut Vec<String>,
) -> Option<SourceSpec> {
    let before = problems.len();
    let (name, timeout, default_timeout, ca_file) = match source {
        SourceConfig::Http(c) => (&c.name, &c.timeout, DEFAULT_HTTP_TIMEOUT, &c.ca_file),
        SourceConfig::Prometheus(c) => (&c.name, &c.timeout, DEFAULT_API_TIMEOUT, &c.ca_file),
        SourceConfig::Alertmanager(c) => (&c.name, &c.timeout, DEFAULT_API_TIMEOUT, &c.ca_file),
    };
    if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        problems.push(format!("{at}.name: must not be empty"));
    }
    if ca_file.as_deref().is_some_and(|p| p.as_os_str().is_empty()) {
        problems.push(format!("{at}.ca_file: must not be empty"));
    }
    let timeout = compile_timeout(at, timeout.as_deref(), default_timeout, problems);
    let (default_label, identity, check) = match source {
        SourceConfig::Http(c) => compile_http(at, c, problems)?,
        SourceConfig::Prometheus(c) => compile_prometheus(at, c, problems)?,
        SourceConfig::Alertmanager(c) => compile_alertmanager(at, c, problems)?,
    };
    if problems.len() > before {
        return None;
    }
    Some(SourceSpec {
        label: name.clone().unwrap_or(default_label),
        identity,
        timeout,
        ca_file: ca_file.clone(),
        check,
    })
}

fn compile_timeout(
    at: &str,
    value: Option<&str>,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    match value.map(|v| HumanDuration::parse(v).map(HumanDuration::to_std)) {
        None => default,
        Some(Ok(d)) if d.is_zero() => {
            problems.push(format!("{at}.timeout: must be more than zero"));
            default
        }
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            problems.push(format!("{at}.timeout: {e}"));
            default
        }
    }
}

type Compiled = (String, String, CheckSpec);

fn compile_http(at: &str, c: &HttpSourceConfig, problems: &mut Vec<String>) -> Option<Compiled> {
    let template = match UrlTemplate::parse(&c.url) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(format!("{at}.url: {e}"));
            None
        }
    };
    let expect_status = c.expect_status.unwrap_or(200);
    if !(100..=599).contains(&expect_status) {
        problems.push(format!(
            "{at}.expect_status: {expect_status} is not an HTTP status (100 to 599)"
        ));
    }
    if c.expect_body.as_deref().is_some_and(str::is_empty) {
        problems.push(format!("{at}.expect_body: must not be empty"));
    }
    let check = CheckSpec::Http {
        template: template?,
        expect_status,
        expect_body: c.expect_body.clone(),
    };
    Some((format!("http {}", c.url), format!("http {}", c.url), check))
}

fn compile_prometheus(
    at: &str,
    c: &PrometheusSourceConfig,
    problems: &mut Vec<String>,
) -> Option<Compiled> {
    let base = compile_base_url(&format!("{at}.url"), &c.url, problems);
    if c.query.trim().is_empty() {
        problems.push(format!("{at}.query: must not be empty"));
    }
    if c.max_increase.is_none() && c.max_ratio.is_none() {
        problems.push(format!(
            "{at}: set max_increase and/or max_ratio, or the query cannot fail the gate"
        ));
    }
    if let Some(v) = c.max_increase {
        if !(v.is_finite() && v >= 0.0) {
            problems.push(format!(
                "{at}.max_increase: {v} must be a finite number of at least 0"
            ));
        }
    }
    if let Some(v) = c.max_ratio {
        if !(v.is_finite() && v >= 1.0) {
            problems.push(format!(
                "{at}.max_ratio: {v} must be a finite number of at least 1 (below 1, an \
                 unchanged value would fail)"
            ));
        }
    }
    let base = base?;
    let identity = format!("prometheus {base} {}", c.query);
    let check = CheckSpec::Prometheus {
        base,
        query: c.query.clone(),
        limits: Limits {
            max_increase: c.max_increase,
            max_ratio: c.max_ratio,
        },
    };
    Some((format!("prometheus {}", c.query), identity, check))
}

fn compile_alertmanager(
    at: &str,
    c: &AlertmanagerSourceConfig,
    problems: &mut Vec<String>,
) -> Option<Compiled> {
    let base = compile_base_url(&format!("{at}.url"), &c.url, problems);
    let mut matchers = Vec::new();
    for (i, m) in c.matchers.iter().enumerate() {
        match Matcher::parse(m) {
            Ok(m) => matchers.push(m),
            Err(e) => problems.push(format!("{at}.matchers[{i}]: {e}")),
        }
    }
    let base = base?;
    let filter: Vec<String> = matchers.iter().map(Matcher::to_filter).collect();
    let identity = format!("alertmanager {base} {{{}}}", filter.join(","));
    let check = CheckSpec::Alertmanager { base, matchers };
    Some((format!("alertmanager {}", c.url), identity, check))
}

fn compile_base_url(at: &str, text: &str, problems: &mut Vec<String>) -> Option<Url> {
    let checked = check_http_url(text).and_then(|url| {
        if url.query().is_some() || url.fragment().is_some() {
            Err(format!(
                "`{text}` must be a base URL without `?query` or `#fragment`"
            ))
        } else {
            Ok(url)
        }
    });
    match checked {
        Ok(url) => Some(url),
        Err(e) => {
            problems.push(format!("{at}: {e}"));
            None
        }
    }
}

/// Parses an absolute `http(s)` URL with a host and no credentials.
fn check_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}`: scheme `{}` is not supported (use http or https)",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err(format!("`{text}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{text}`: credentials in the URL are not supported"
        ));
    }
    Ok(url)
}

/// A URL with `{host}` and `{address}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UrlTemplate {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Host,
    Address,
}

impl UrlTemplate {
    /// Splits the placeholders out and checks the URL is valid once filled in.
    fn parse(text: &str) -> Result<UrlTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{text}`: `{{` without a closing `}}`"))?;
            pieces.push(match &after[..close] {
                "host" => Piece::Host,
                "address" => Piece::Address,
                other => {
                    return Err(format!(
                        "`{text}`: unknown placeholder `{{{other}}}` (use {{host}} or {{address}})"
                    ))
                }
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let template = UrlTemplate { pieces };
        check_http_url(&template.render("host-id", "192.0.2.1"))
            .map_err(|e| format!("{e} (with placeholders filled in)"))?;
        Ok(template)
    }

    /// Whether the URL names a host, so it is checked once per patched host.
    fn is_per_host(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
    }

    /// The URL for one host. An IPv6 address is bracketed so it can stand as a URL host.
    fn render(&self, host: &str, address: &str) -> String {
        let address = match address.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{address}]"),
            Err(_) => address.to_string(),
        };
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Host => host,
                Piece::Address => address.as_str(),
            })
            .collect()
    }
}

/// One Alertmanager label matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Matcher {
    label: String,
    op: &'static str,
    value: String,
}

impl Matcher {
    fn parse(text: &str) -> Result<Matcher, String> {
        let text = text.trim();
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let (label, rest) = text.split_at(end);
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "`{text}` does not start with a label name (letters, digits, `_`)"
            ));
        }
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("`{text}`: expected `=`, `!=`, `=~` or `!~` after `{label}`"))?;
        Ok(Matcher {
            label: label.to_string(),
            op,
            value: rest[op.len()..].trim().to_string(),
        })
    }

    /// The matcher as Alertmanager's `filter` parameter wants it, the value quoted.
    fn to_filter(&self) -> String {
        let mut quoted = String::with_capacity(self.value.len() + 2);
        for c in self.value.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        format!("{}{}\"{quoted}\"", self.label, self.op)
    }
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

/// What the baseline-taking sources showed before a stage, to compare with at its gate.
/// Serialisable so the engine persists it with the rollout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// By source identity (kind, URL and query or matchers): a changed query never meets an
    /// old baseline.
    pub sources: BTreeMap<String, Captured>,
}

/// What one source showed before the stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Captured {
    /// The value of a Prometheus query.
    Value {
        /// The value (always finite).
        value: f64,
    },
    /// The fingerprints of the Alertmanager alerts active then.
    Alerts {
        /// Alertmanager's alert fingerprints.
        fingerprints: BTreeSet<String>,
    },
    /// The source could not be asked; its gate will be inconclusive.
    Failed {
        /// Why.
        error: String,
    },
}

impl fmt::Display for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Captured::Value { value } => write!(f, "value {value}"),
            Captured::Alerts { fingerprints } => {
                write!(f, "{} active alert(s)", fingerprints.len())
            }
            Captured::Failed { error } => write!(f, "capture failed: {error}"),
        }
    }
}

impl Baseline {
    /// One line per source, `identity: what was captured`, for the audit log.
    pub fn lines(&self) -> Vec<String> {
        self.sources
            .iter()
            .map(|(identity, captured)| format!("{identity}: {captured}"))
            .collect()
    }
}

/// The answer of every source at a gate, and their combined verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Combined with [`combine`]; each reason starts with its source's name.
    pub verdict: Verdict,
    /// One result per configured source, in configuration order.
    pub sources: Vec<SourceResult>,
}

impl HealthReport {
    /// One line per source, for `rollout status` and the audit log.
    pub fn lines(&self) -> Vec<String> {
        self.sources.iter().map(ToString::to_string).collect()
    }
}

/// Why health sources could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The `[health]` section has problems (see [`HealthConfig::validate`]).
    #[error("invalid [health] section: {}", problems.join("; "))]
    Invalid {
        /// One line per problem.
        problems: Vec<String>,
    },
    /// A `ca_file` could not be read or holds no usable certificate.
    #[error("{at}.ca_file {}: {reason}", path.display())]
    CaFile {
        /// Which source (`health.sources[1]`).
        at: String,
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The TLS library refused its settings.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

// ---------------------------------------------------------------------------------------
// The sources
// ---------------------------------------------------------------------------------------

/// The configured health sources, ready to ask. Cloning is cheap: the sources are shared.
#[derive(Clone)]
pub struct HealthSources {
    sources: Vec<Arc<Source>>,
}

impl fmt::Debug for HealthSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.sources.iter().map(|s| &s.spec.label))
            .finish()
    }
}

struct Source {
    spec: SourceSpec,
    client: HttpClient,
}

impl HealthSources {
    /// Validates `config` and loads the TLS settings; a relative `ca_file` is taken from
    /// `base` (the configuration file's directory). Sends nothing.
    pub fn new(config: &HealthConfig, base: &Path) -> Result<HealthSources, HealthError> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(HealthError::Invalid { problems });
        }
        let default_tls = Arc::new(tls_config(mozilla_roots()).map_err(HealthError::Tls)?);
        let mut sources = Vec::with_capacity(config.sources.len());
        for (i, source) in config.sources.iter().enumerate() {
            let at = format!("health.sources[{i}]");
            let mut problems = Vec::new();
            let Some(spec) = compile_source(&at, source, &mut problems) else {
                return Err(HealthError::Invalid { problems });
            };
            let tls = match &spec.ca_file {
                None => Arc::clone(&default_tls),
                Some(path) => Arc::new(tls_with_ca_file(&at, &base.join(path))?),
            };
            let client = HttpClient::new(tls, spec.timeout, USER_AGENT_VALUE);
            sources.push(Arc::new(Source { spec, client }));
        }
        Ok(HealthSources { sources })
    }

    /// Whether no source is configured (every gate is then a go).
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The sources' names, in configuration order.
    pub fn names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.spec.label.clone()).collect()
    }

    /// Asks every Prometheus and Alertmanager source what it shows now, before a stage.
    /// A source that cannot be asked is recorded as [`Captured::Failed`]; never fails.
    pub async fn capture_baseline(&self) -> Baseline {
        let mut tasks = JoinSet::new();
        for source in &self.sources {
            if matches!(source.spec.check, CheckSpec::Http { .. }) {
                continue;
            }
            let source = Arc::clone(source);
            tasks.spawn(async move {
                let captured = source.capture().await;
                (source.spec.identity.clone(), captured)
            });
        }
        let mut baseline = Baseline::default();
        while let Some(joined) = tasks.join_next().await {
            // A task only fails by panicking; its source then has no baseline and its gate
            // reports the baseline as missing.
            if let Ok((identity, captured)) = joined {
                baseline.sources.insert(identity, captured);
            }
        }
        baseline
    }

    /// Asks every source about the stage: `hosts` are its patched hosts with their
    /// addresses; `baseline` is what [`capture_baseline`](Self::capture_baseline) recorded
    /// before it. No sources is a go; so is a per-host `http` source when `hosts` is empty.
    pub async fn check(
        &self,
        baseline: Option<&Baseline>,
        hosts: &[(HostId, String)],
    ) -> HealthReport {
        let baseline = Arc::new(baseline.cloned());
        let hosts: Arc<[(HostId, String)]> = hosts.into();
        let mut tasks = JoinSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let (source, baseline, hosts) = (
                Arc::clone(source),
                Arc::clone(&baseline),
                Arc::clone(&hosts),
            );
            tasks.spawn(async move { (i, source.check(baseline.as_ref().as_ref(), &hosts).await) });
        }
        let mut results: Vec<Option<SourceResult>> = vec![None; self.sources.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, result)) = joined {
                results[i] = Some(result);
            }
        }
        let sources: Vec<SourceResult> = results
            .into_iter()
            .zip(&self.sources)
            .map(|(result, source)| {
                result.unwrap_or_else(|| {
                    SourceResult::judged(
                        &source.spec.label,
                        Verdict::Inconclusive("the check stopped unexpectedly".into()),
                    )
                })
            })
            .collect();
        let verdicts: Vec<Verdict> = sources.iter().map(SourceResult::named_verdict).collect();
        HealthReport {
            verdict: combine(&verdicts),
            sources,
        }
    }
}

impl Source {
    async fn capture(&self) -> Captured {
        let answer = match &self.spec.check {
            CheckSpec::Http { .. } => {
                return Captured::Failed {
                    error: "http sources take no baseline".into(),
                }
            }
            CheckSpec::Prometheus { base, query, .. } => {
                prometheus_value(&self.client, base, query)
                    .await
                    .map(|value| Captured::Value { value })
            }
            CheckSpec::Alertmanager { base, matchers } => {
                active_alerts(&self.client, base, matchers)
                    .await
                    .map(|alerts| Captured::Alerts {
                        fingerprints: alerts.into_iter().map(|a| a.fingerprint).collect(),
                    })
            }
        };
        answer.unwrap_or_else(|error| Captured::Failed { error })
    }

    async fn check(&self, baseline: Option<&Baseline>, hosts: &[(HostId, String)]) -> SourceResult {
        let label = &self.spec.label;
        match &self.spec.check {
            CheckSpec::Http {
                template,
                expect_status,
                expect_body,
            } => {
                let expect = Expectation {
                    status: *expect_status,
                    body: expect_body.clone(),
                };
                if template.is_per_host() {
                    check_http_hosts(label, &self.client, template, &expect, hosts).await
                } else {
                    check_http_service(label, &self.client, template, &expect).await
                }
            }
            CheckSpec::Prometheus {
                base,
                query,
                limits,
            } => {
                let before = match baseline_of(baseline, &self.spec.identity) {
                    Ok(Captured::Value { value }) => *value,
                    Ok(_) => return SourceResult::judged(label, not_a_value()),
                    Err(verdict) => return SourceResult::judged(label, verdict),
                };
                match prometheus_value(&self.client, base, query).await {
                    Ok(now) => compare(label, before, now, *limits),
                    Err(e) => SourceResult::judged(label, Verdict::Inconclusive(e)),
                }
            }
            CheckSpec::Alertmanager { base, matchers } => {
                let known = match baseline_of(baseline, &self.spec.identity) {
                    Ok(Captured::Alerts { fingerprints }) => fingerprints,
                    Ok(_) => return SourceResult::judged(label, not_alerts()),
                    Err(verdict) => return SourceResult::judged(label, verdict),
                };
                match active_alerts(&self.client, base, matchers).await {
                    Ok(alerts) => new_alerts(label, known, &alerts),
                    Err(e) => SourceResult::judged(label, Verdict::Inconclusive(e)),
                }
            }
        }
    }
}

fn not_a_value() -> Verdict {
    Verdict::Inconclusive("the baseline holds alerts, not a value".into())
}

fn not_alerts() -> Verdict {
    Verdict::Inconclusive("the baseline holds a value, not alerts".into())
}

/// The source's baseline, or the inconclusive verdict saying why there is none.
fn baseline_of<'a>(
    baseline: Option<&'a Baseline>,
    identity: &str,
) -> Result<&'a Captured, Verdict> {
    match baseline.and_then(|b| b.sources.get(identity)) {
        None => Err(Verdict::Inconclusive(
            "no baseline was captured before the stage".into(),
        )),
        Some(Captured::Failed { error }) => Err(Verdict::Inconclusive(format!(
            "no baseline: capturing it before the stage failed: {error}"
        ))),
        Some(captured) => Ok(captured),
    }
}

// ---------------------------------------------------------------------------------------
// http
// ---------------------------------------------------------------------------------------

/// How much of a body to read: only one that must hold `expect.body` is read at all.
fn body_limit(expect: &Expectation) -> Option<usize> {
    expect.body.as_ref().map(|_| HTTP_BODY_LIMIT)
}

async fn check_http_service(
    label: &str,
    client: &HttpClient,
    template: &UrlTemplate,
    expect: &Expectation,
) -> SourceResult {
    let url = template.render("", "");
    let problem = match Url::parse(&url) {
        Err(e) => Some(format!("`{url}` is not a valid URL: {e}")),
        Ok(url) => match client.get(&url, body_limit(expect)).await {
            Ok(answer) => expect.problem(answer.status, &answer.body),
            Err(e) => Some(e.to_string()),
        },
    };
    judge_service(label, expect.status, problem)
}
async fn check_http_hosts(
    label: &str,
    client: &HttpClient,
    template: &UrlTemplate,
    expect: &Expectation,
    hosts: &[(HostId, String)],
) -> SourceResult {
    let permits = Arc::new(Semaphore::new(PER_HOST_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for (i, (host, address)) in hosts.iter().enumerate() {
        let url = template.render(host.as_str(), address);
        let (client, expect, permits) = (client.clone(), expect.clone(), Arc::clone(&permits));
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, check_one_host(&client, &url, &expect).await)
        });
    }
    let mut outcomes: Vec<Option<HostOutcome>> = (0..hosts.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, outcome)) = joined {
            outcomes[i] = Some(outcome);
        }
    }
    let outcomes: Vec<(&HostId, Option<HostOutcome>)> =
        hosts.iter().map(|(host, _)| host).zip(outcomes).collect();
    judge_hosts(label, expect.status, &outcomes)
}

async fn check_one_host(client: &HttpClient, url: &str, expect: &Expectation) -> HostOutcome {
    let url = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => return HostOutcome::Unchecked(format!("`{url}` is not a valid URL: {e}")),
    };
    match client.get(&url, body_limit(expect)).await {
        Ok(answer) => match expect.problem(answer.status, &answer.body) {
            None => HostOutcome::Healthy,
            Some(p) => HostOutcome::Unhealthy(p),
        },
        Err(e) => HostOutcome::Unhealthy(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// prometheus
// ---------------------------------------------------------------------------------------

async fn prometheus_value(client: &HttpClient, base: &Url, query: &str) -> Result<f64, String> {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["api", "v1", "query"]);
    }
    url.query_pairs_mut().clear().append_pair("query", query);
    let answer = client
        .get(&url, Some(API_BODY_LIMIT))
        .await
        .map_err(|e| format!("Prometheus API: {e}"))?;
    prometheus_answer_value(answer.status, &answer.body)
}

// ---------------------------------------------------------------------------------------
// alertmanager
// ---------------------------------------------------------------------------------------

async fn active_alerts(
    client: &HttpClient,
    base: &Url,
    matchers: &[Matcher],
) -> Result<Vec<Alert>, String> {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["api", "v2", "alerts"]);
    }
    {
        let mut query = url.query_pairs_mut();
        query
            .clear()
            .append_pair("active", "true")
            .append_pair("unprocessed", "true")
            .append_pair("silenced", "false")
            .append_pair("inhibited", "false");
        for m in matchers {
            query.append_pair("filter", &m.to_filter());
        }
    }
    let answer = client
        .get(&url, Some(API_BODY_LIMIT))
        .await
        .map_err(|e| format!("Alertmanager API: {e}"))?;
    alertmanager_answer_alerts(answer.status, &answer.body)
}

/// TLS settings trusting the Mozilla roots and the certificates of `path`.
fn tls_with_ca_file(at: &str, path: &Path) -> Result<ClientConfig, HealthError> {
    let roots = roots_with_ca_file(path).map_err(|reason| HealthError::CaFile {
        at: at.to_string(),
        path: path.to_path_buf(),
        reason,
    })?;
    tls_config(roots).map_err(HealthError::Tls)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(text: &str) -> HealthConfig {
        toml::from_str(text).unwrap()
    }

    fn spec(text: &str) -> SourceSpec {
        let config = parse(text);
        let mut problems = Vec::new();
        let spec = compile_source("s", &config.sources[0], &mut problems);
        assert_eq!(problems, Vec::<String>::new());
        spec.unwrap()
    }

    #[test]
    fn a_full_section_parses_with_defaults() {
        let config = parse(
            r#"
            [[sources]]
            kind = "http"
            url = "http://{address}:8080/health"
            expect_body = "ok"

            [[sources]]
            kind = "prometheus"
            name = "5xx rate"
            url = "https://prometheus.example:9090/prom"
            query = 'sum(rate(http_requests_total{code=~"5.."}[5m]))'
            max_increase = 1
            max_ratio = 1.2
            timeout = "3s"

            [[sources]]
            kind = "alertmanager"
            url = "http://alertmanager:9093"
            matchers = ["severity=critical", "env=~prod|staging"]
            "#,
        );
        assert_eq!(config.validate(), Vec::<String>::new());
        assert_eq!(
            config.sources[0],
            SourceConfig::Http(HttpSourceConfig {
                name: None,
                url: "http://{address}:8080/health".into(),
                expect_status: None,
                expect_body: Some("ok".into()),
                timeout: None,
                ca_file: None,
            })
        );
        let prom = spec(
            r#"[[sources]]
            kind = "prometheus"
            url = "https://prometheus.example:9090/prom"
            query = "up"
            max_increase = 1
            timeout = "3s""#,
        );
        assert_eq!(prom.label, "prometheus up");
        assert_eq!(
            prom.identity,
            "prometheus https://prometheus.example:9090/prom up"
        );
        assert_eq!(prom.timeout, Duration::from_secs(3));
        let http = spec("[[sources]]\nkind = \"http\"\nurl = \"http://a/{host}\"\n");
        assert_eq!(http.timeout, DEFAULT_HTTP_TIMEOUT);
        assert_eq!(http.label, "http http://a/{host}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let err = toml::from_str::<HealthConfig>(
            "[[sources]]\nkind = \"http\"\nurl = \"http://a/\"\nexpect = 200\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `expect`"), "{err}");
        let err = toml::from_str::<HealthConfig>("[[sources]]\nkind = \"ping\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown variant `ping`"), "{err}");
        let err = toml::from_str::<HealthConfig>("source = []\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `source`"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = parse(
            r#"
            [[sources]]
            kind = "http"
            name = ""
            url = "ftp://{host}/x"
            expect_status = 42
            expect_body = ""
            timeout = "5 parsecs"

            [[sources]]
            kind = "http"
            url = "http://{hostname}/"

            [[sources]]
            kind = "prometheus"
            url = "http://user:pw@prom/?x=1"
            query = " "

            [[sources]]
            kind = "prometheus"
            url = "prom:9090"
            query = "up"
            max_increase = -1
            max_ratio = 0.5
            timeout = "0s"

            [[sources]]
            kind = "alertmanager"
            url = "http://am/"
            matchers = ["severity", "=x", "a=b", "9x=1"]
            ca_file = ""

            [[sources]]
            kind = "http"
            url = "http://same/"

            [[sources]]
            kind = "http"
            url = "http://same/"
            expect_status = 204
            "#,
        );
        assert_eq!(
            config.validate(),
            vec![
                "health.sources[0].name: must not be empty",
                "health.sources[0].timeout: duration `5 parsecs`: unknown unit ` parsecs` (use ms, s, m, h, d or w)",
                "health.sources[0].url: `ftp://host-id/x`: scheme `ftp` is not supported (use http or https) (with placeholders filled in)",
                "health.sources[0].expect_status: 42 is not an HTTP status (100 to 599)",
                "health.sources[0].expect_body: must not be empty",
                "health.sources[1].url: `http://{hostname}/`: unknown placeholder `{hostname}` (use {host} or {address})",
                "health.sources[2].url: `http://user:pw@prom/?x=1`: credentials in the URL are not supported",
                "health.sources[2].query: must not be empty",
                "health.sources[2]: set max_increase and/or max_ratio, or the query cannot fail the gate",
                "health.sources[3].timeout: must be more than zero",
                "health.sources[3].url: `prom:9090`: scheme `prom` is not supported (use http or https)",
                "health.sources[3].max_increase: -1 must be a finite number of at least 0",
                "health.sources[3].max_ratio: 0.5 must be a finite number of at least 1 (below 1, an unchanged value would fail)",
                "health.sources[4].ca_file: must not be empty",
                "health.sources[4].matchers[0]: `severity`: expected `=`, `!=`, `=~` or `!~` after `severity`",
                "health.sources[4].matchers[1]: `=x` does not start with a label name (letters, digits, `_`)",
                "health.sources[4].matchers[3]: `9x=1` does not start with a label name (letters, digits, `_`)",
                "health.sources[6]: reported as `http http://same/` like health.sources[5]; give one a distinct `name`",
            ]
        );
        let err = HealthSources::new(&config, Path::new("/")).unwrap_err();
        assert!(matches!(err, HealthError::Invalid { problems } if problems.len() == 18));
    }

    #[test]
    fn base_urls_must_not_carry_a_query() {
        let config = parse("[[sources]]\nkind = \"alertmanager\"\nurl = \"http://am/#top\"\n");
        assert_eq!(
            config.validate(),
            vec!["health.sources[0].url: `http://am/#top` must be a base URL without `?query` or `#fragment`"]
        );
    }

    #[test]
    fn templates_render_per_host_and_bracket_ipv6() {
        let t = UrlTemplate::parse("https://{address}:9100/ready?host={host}").unwrap();
        assert!(t.is_per_host());
        assert_eq!(
            t.render("web-1", "10.0.0.5"),
            "https://10.0.0.5:9100/ready?host=web-1"
        );
        assert_eq!(
            t.render("web-2", "fd00::5"),
            "https://[fd00::5]:9100/ready?host=web-2"
        );
        let service = UrlTemplate::parse("http://lb/health").unwrap();
        assert!(!service.is_per_host());
        assert_eq!(service.render("x", "y"), "http://lb/health");
        assert_eq!(
            UrlTemplate::parse("http://{address/").unwrap_err(),
            "`http://{address/`: `{` without a closing `}`"
        );
    }

    #[test]
    fn matchers_become_quoted_filters() {
        let cases = [
            ("severity=critical", "severity=\"critical\""),
            ("env=~prod|staging", "env=~\"prod|staging\""),
            ("team!=batch", "team!=\"batch\""),
            ("job!~node.*", "job!~\"node.*\""),
            ("msg=say \"hi\"\\", "msg=\"say \\\"hi\\\"\\\\\""),
            ("instance=", "instance=\"\""),
        ];
        for (text, filter) in cases {
            assert_eq!(Matcher::parse(text).unwrap().to_filter(), filter, "{text}");
        }
    }

    #[test]
    fn baselines_round_trip_as_json() {
        let baseline = Baseline {
            sources: BTreeMap::from([
                (
                    "prometheus http://p/ up".to_string(),
                    Captured::Value { value: 0.5 },
                ),
                (
                    "alertmanager http://a/ {}".to_string(),
                    Captured::Alerts {
                        fingerprints: BTreeSet::from(["f1".to_string()]),
                    },
                ),
                (
                    "prometheus http://p/ x".to_string(),
                    Captured::Failed {
                        error: "the query returned no data".into(),
                    },
                ),
            ]),
        };
        let json = serde_json::to_string(&baseline).unwrap();
        assert_eq!(
            json,
            r#"{"sources":{"alertmanager http://a/ {}":{"kind":"alerts","fingerprints":["f1"]},"prometheus http://p/ up":{"kind":"value","value":0.5},"prometheus http://p/ x":{"kind":"failed","error":"the query returned no data"}}}"#
        );
        assert_eq!(serde_json::from_str::<Baseline>(&json).unwrap(), baseline);
        assert_eq!(
            baseline.lines(),
            vec![
                "alertmanager http://a/ {}: 1 active alert(s)",
                "prometheus http://p/ up: value 0.5",
                "prometheus http://p/ x: capture failed: the query returned no data",
            ]
        );
    }
}
