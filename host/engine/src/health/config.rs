//! The `[health]` section: the `[[health.sources]]` entries as written, and their checking
//! and compiling into [`SourceSpec`]s (every problem at once, each naming where it is).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use patchwave_core::HumanDuration;
use patchwave_rollout::judge::Limits;
use serde::Deserialize;
use url::Url;

use super::template::{check_http_url, Matcher, UrlTemplate};

/// How long an `http` source waits for an answer unless `timeout` says otherwise.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `prometheus` or `alertmanager` source waits unless `timeout` says otherwise.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// [`HealthSources::new`](super::HealthSources::new).
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
pub(super) struct SourceSpec {
    pub(super) label: String,
    pub(super) identity: String,
    pub(super) timeout: Duration,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) check: CheckSpec,
}

/// What a source checks, with its settings checked.
#[derive(Clone, Debug)]
pub(super) enum CheckSpec {
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

pub(super) fn compile_source(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::path::Path;

    use crate::health::{HealthError, HealthSources};

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
}
