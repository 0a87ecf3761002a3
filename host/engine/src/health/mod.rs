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
//!
//! One submodule per concern: `config` (the `[health]` section, checked and compiled),
//! `template` (URL templates and Alertmanager matchers), and one per source (`http`,
//! `prometheus`, `alertmanager`) that asks it over HTTP. What an answer means, the pure
//! judgement of a verdict, is [`patchwave_rollout::judge`]; this module keeps the asking,
//! the baselines and the combined report.

mod alertmanager;
mod config;
mod http;
mod prometheus;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use patchwave_core::HostId;
use patchwave_rollout::combine;
use patchwave_rollout::judge::{compare, new_alerts, Expectation};
use patchwave_rollout::Verdict;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tokio_rustls::rustls::ClientConfig;

use self::alertmanager::active_alerts;
use self::config::{compile_source, CheckSpec, SourceSpec};
use self::http::{check_http_hosts, check_http_service};
use self::prometheus::prometheus_value;
use crate::http::{mozilla_roots, roots_with_ca_file, tls_config, HttpClient};

pub use self::config::{
    AlertmanagerSourceConfig, HealthConfig, HttpSourceConfig, PrometheusSourceConfig, SourceConfig,
    DEFAULT_API_TIMEOUT, DEFAULT_HTTP_TIMEOUT,
};
pub use patchwave_rollout::judge::SourceResult;

/// The most read of a Prometheus or Alertmanager answer.
const API_BODY_LIMIT: usize = 16 << 20;
const USER_AGENT_VALUE: &str = concat!("patchwave-health/", env!("CARGO_PKG_VERSION"));

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
