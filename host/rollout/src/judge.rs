//! The health judgements: pure functions that turn what a health source answered into its
//! [`Verdict`], beside [`combine`](crate::combine) and `decide`.
//!
//! The engine asks the sources (HTTP, the Prometheus and Alertmanager APIs) and keeps their
//! baselines; everything here only reads numbers, sets and answer bodies it is handed:
//!
//! - `http`: [`Expectation::problem`] checks one answer; [`judge_service`] and
//!   [`judge_hosts`] give the verdict of a service-wide or per-host source.
//! - `prometheus`: [`prometheus_answer_value`] reads a query answer; [`compare`] judges
//!   the value against its baseline within [`Limits`].
//! - `alertmanager`: [`alertmanager_answer_alerts`] reads the active alerts; [`new_alerts`]
//!   judges them against the fingerprints active before the stage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use patchwave_core::HostId;
use serde::{Deserialize, Serialize};

use crate::health::Verdict;

/// How many failing hosts a verdict names before it only counts the rest.
pub const HOSTS_NAMED: usize = 10;

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

/// One source's answer at a gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceResult {
    /// The source's name.
    pub source: String,
    /// Its verdict; the reason does not repeat the name.
    pub verdict: Verdict,
    /// What was seen when healthy (`5 before, 6 now (+1)`), empty otherwise.
    pub observed: String,
}

impl fmt::Display for SourceResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.verdict)?;
        if !self.observed.is_empty() {
            write!(f, " ({})", self.observed)?;
        }
        Ok(())
    }
}

impl SourceResult {
    /// A healthy result, with what was seen.
    pub fn go(source: &str, observed: String) -> SourceResult {
        SourceResult {
            source: source.to_string(),
            verdict: Verdict::Go,
            observed,
        }
    }

    /// A result with `verdict` and nothing observed.
    pub fn judged(source: &str, verdict: Verdict) -> SourceResult {
        SourceResult {
            source: source.to_string(),
            verdict,
            observed: String::new(),
        }
    }

    /// The verdict with the source's name before the reason, for the combined verdict.
    pub fn named_verdict(&self) -> Verdict {
        match &self.verdict {
            Verdict::Go => Verdict::Go,
            Verdict::NoGo(r) => Verdict::NoGo(format!("{}: {r}", self.source)),
            Verdict::Inconclusive(r) => Verdict::Inconclusive(format!("{}: {r}", self.source)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// http
// ---------------------------------------------------------------------------------------

/// What an `http` source's endpoint must answer to be healthy.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// The status that means healthy.
    pub status: u16,
    /// A substring the body must contain.
    pub body: Option<String>,
}

impl Expectation {
    /// `None` when the answer (its `status` and `body`) is healthy, else what was wrong.
    pub fn problem(&self, status: u16, body: &[u8]) -> Option<String> {
        if status != self.status {
            return Some(format!("status {} (expected {})", status, self.status));
        }
        match &self.body {
            Some(needle) if !String::from_utf8_lossy(body).contains(needle.as_str()) => {
                Some(format!("status {} but the body lacks `{needle}`", status))
            }
            _ => None,
        }
    }
}

/// The verdict of a service-wide `http` source: `problem` is what was wrong with its one
/// answer (or why there was none), from [`Expectation::problem`].
pub fn judge_service(label: &str, expect_status: u16, problem: Option<String>) -> SourceResult {
    match problem {
        None => SourceResult::go(label, format!("answered {expect_status}")),
        Some(p) => SourceResult::judged(label, Verdict::NoGo(p)),
    }
}

/// How one host's endpoint answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostOutcome {
    /// As expected.
    Healthy,
    /// Not as expected, or not at all: says what was wrong.
    Unhealthy(String),
    /// The host could not be asked (its URL is not valid): says why.
    Unchecked(String),
}

/// The verdict of a per-host `http` source from each host's outcome, in the hosts' order
/// (`None`: its check stopped unexpectedly). Any unhealthy host is a no-go, else any
/// unchecked one is inconclusive, else go; no hosts at all is a go.
pub fn judge_hosts(
    label: &str,
    expect_status: u16,
    outcomes: &[(&HostId, Option<HostOutcome>)],
) -> SourceResult {
    if outcomes.is_empty() {
        return SourceResult::go(label, "no patched hosts to check".into());
    }
    let mut unhealthy = Vec::new();
    let mut unchecked = Vec::new();
    for (host, outcome) in outcomes {
        match outcome {
            Some(HostOutcome::Healthy) => {}
            Some(HostOutcome::Unhealthy(why)) => unhealthy.push(format!("{host}: {why}")),
            Some(HostOutcome::Unchecked(why)) => unchecked.push(format!("{host}: {why}")),
            None => unchecked.push(format!("{host}: the check stopped unexpectedly")),
        }
    }
    if !unhealthy.is_empty() {
        return SourceResult::judged(label, Verdict::NoGo(name_hosts(&unhealthy)));
    }
    if !unchecked.is_empty() {
        return SourceResult::judged(label, Verdict::Inconclusive(name_hosts(&unchecked)));
    }
    let n = outcomes.len();
    SourceResult::go(
        label,
        format!(
            "{n} host{} answered {}",
            if n == 1 { "" } else { "s" },
            expect_status
        ),
    )
}

/// `a; b; c`, or the first [`HOSTS_NAMED`] and how many more.
pub fn name_hosts(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(HOSTS_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > HOSTS_NAMED {
        text.push_str(&format!("; and {} more hosts", items.len() - HOSTS_NAMED));
    }
    text
}

// ---------------------------------------------------------------------------------------
// prometheus
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct PromResponse {
    status: String,
    data: Option<PromData>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum PromData {
    Scalar((f64, String)),
    Vector(Vec<PromSample>),
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct PromSample {
    value: (f64, String),
}

/// The value in a Prometheus `/api/v1/query` answer, or why there is none.
pub fn prometheus_answer_value(status: u16, body: &[u8]) -> Result<f64, String> {
    let response: PromResponse = serde_json::from_slice(body).map_err(|e| {
        format!(
            "Prometheus API answered status {status} with no API response ({e}): {}",
            excerpt(body)
        )
    })?;
    if response.status != "success" {
        return Err(format!(
            "query failed: {}: {}",
            response.error_type.as_deref().unwrap_or("error"),
            response.error.as_deref().unwrap_or("no message")
        ));
    }
    let text = match response.data {
        Some(PromData::Scalar((_, v))) => v,
        Some(PromData::Vector(samples)) => match <[PromSample; 1]>::try_from(samples) {
            Ok([sample]) => sample.value.1,
            Err(samples) if samples.is_empty() => return Err("the query returned no data".into()),
            Err(samples) => {
                return Err(format!(
                    "the query returned {} series; it must return one (aggregate it, e.g. \
                     with sum())",
                    samples.len()
                ))
            }
        },
        Some(PromData::Matrix(_)) => {
            return Err("the query returned a range vector; use an instant query".into())
        }
        Some(PromData::String(_)) => return Err("the query returned a string, not a number".into()),
        None => return Err("the answer holds no data".into()),
    };
    let value: f64 = text
        .parse()
        .map_err(|_| format!("the query returned `{text}`, not a number"))?;
    if !value.is_finite() {
        return Err(format!("the query returned {text}"));
    }
    Ok(value)
}

/// The allowed rise of a Prometheus value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The largest allowed rise over the baseline, in the query's unit.
    pub max_increase: Option<f64>,
    /// The largest allowed value divided by the baseline (at least 1).
    pub max_ratio: Option<f64>,
}

/// The gate's judgement of a Prometheus value against its baseline.
pub fn compare(label: &str, before: f64, now: f64, limits: Limits) -> SourceResult {
    let increase = now - before;
    let mut exceeded = Vec::new();
    let mut undecided = None;
    if let Some(max) = limits.max_increase {
        if increase > max {
            exceeded.push(format!(
                "+{} is more than the allowed +{max}",
                short(increase)
            ));
        }
    }
    if let Some(max) = limits.max_ratio {
        if before > 0.0 {
            let ratio = now / before;
            if ratio > max {
                exceeded.push(format!("x{} is more than the allowed x{max}", short(ratio)));
            }
        } else if before == 0.0 {
            if now > 0.0 {
                exceeded.push(format!("any rise from 0 is more than the allowed x{max}"));
            }
        } else {
            undecided = Some(format!(
                "max_ratio needs a baseline of at least 0, it was {before}"
            ));
        }
    }
    if !exceeded.is_empty() {
        let reason = format!("rose from {before} to {now}: {}", exceeded.join(", "));
        return SourceResult::judged(label, Verdict::NoGo(reason));
    }
    if let Some(reason) = undecided {
        return SourceResult::judged(label, Verdict::Inconclusive(reason));
    }
    let sign = if increase >= 0.0 { "+" } else { "" };
    SourceResult::go(
        label,
        format!("{before} before, {now} now ({sign}{})", short(increase)),
    )
}

/// A computed number for people: at most 4 decimals, no trailing zeros.
fn short(x: f64) -> String {
    let text = format!("{x:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_string()
    }
}

// ---------------------------------------------------------------------------------------
// alertmanager
// ---------------------------------------------------------------------------------------

/// One alert of an Alertmanager answer.
#[derive(Debug, Deserialize)]
pub struct Alert {
    /// Alertmanager's fingerprint of the alert.
    pub fingerprint: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    status: Option<AlertStatus>,
}

#[derive(Debug, Deserialize)]
struct AlertStatus {
    state: String,
}

/// The active alerts in an Alertmanager `GET /api/v2/alerts` answer.
pub fn alertmanager_answer_alerts(status: u16, body: &[u8]) -> Result<Vec<Alert>, String> {
    if status != 200 {
        return Err(format!(
            "Alertmanager API answered status {status}: {}",
            excerpt(body)
        ));
    }
    let alerts: Vec<Alert> = serde_json::from_slice(body)
        .map_err(|e| format!("Alertmanager API answer is not a list of alerts: {e}"))?;
    // The query asks for active alerts only; suppressed ones are dropped again in case a
    // compatible server ignores the filter.
    Ok(alerts
        .into_iter()
        .filter(|a| a.status.as_ref().is_none_or(|s| s.state != "suppressed"))
        .collect())
}

/// The gate's judgement of the active `alerts` against the fingerprints `known` to be active
/// before the stage: any other alert is a no-go, named by its `alertname`.
pub fn new_alerts(label: &str, known: &BTreeSet<String>, alerts: &[Alert]) -> SourceResult {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for alert in alerts.iter().filter(|a| !known.contains(&a.fingerprint)) {
        let name = alert
            .labels
            .get("alertname")
            .map_or(alert.fingerprint.as_str(), String::as_str);
        *names.entry(name).or_default() += 1;
    }
    if names.is_empty() {
        let observed = match alerts.len() {
            0 => "no active alerts".to_string(),
            n => format!("{n} active alert(s), all firing before the stage"),
        };
        return SourceResult::go(label, observed);
    }
    let named: Vec<String> = names
        .into_iter()
        .map(|(name, n)| {
            if n == 1 {
                name.to_string()
            } else {
                format!("{name} ({n})")
            }
        })
        .collect();
    SourceResult::judged(
        label,
        Verdict::NoGo(format!("new firing alerts: {}", named.join(", "))),
    )
}

/// The start of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const LIMITS: Limits = Limits {
        max_increase: Some(10.0),
        max_ratio: None,
    };

    #[test]
    fn increases_within_the_limit_are_go() {
        let r = compare("q", 5.0, 15.0, LIMITS);
        assert_eq!(r.verdict, Verdict::Go);
        assert_eq!(r.observed, "5 before, 15 now (+10)");
        let r = compare("q", 5.0, 2.5, LIMITS);
        assert_eq!(r.observed, "5 before, 2.5 now (-2.5)");
        let r = compare("q", 0.1, 0.30000000000000004, LIMITS);
        assert_eq!(r.observed, "0.1 before, 0.30000000000000004 now (+0.2)");
    }

    #[test]
    fn increases_past_either_limit_are_no_go() {
        assert_eq!(
            compare("q", 5.0, 15.5, LIMITS).verdict,
            Verdict::NoGo("rose from 5 to 15.5: +10.5 is more than the allowed +10".into())
        );
        let ratio = Limits {
            max_increase: None,
            max_ratio: Some(1.2),
        };
        assert_eq!(compare("q", 10.0, 12.0, ratio).verdict, Verdict::Go);
        assert_eq!(
            compare("q", 10.0, 12.5, ratio).verdict,
            Verdict::NoGo("rose from 10 to 12.5: x1.25 is more than the allowed x1.2".into())
        );
        assert_eq!(compare("q", 0.0, 0.0, ratio).verdict, Verdict::Go);
        assert_eq!(
            compare("q", 0.0, 0.5, ratio).verdict,
            Verdict::NoGo(
                "rose from 0 to 0.5: any rise from 0 is more than the allowed x1.2".into()
            )
        );
        assert_eq!(
            compare("q", -2.0, -1.0, ratio).verdict,
            Verdict::Inconclusive("max_ratio needs a baseline of at least 0, it was -2".into())
        );
        let both = Limits {
            max_increase: Some(1.0),
            max_ratio: Some(2.0),
        };
        assert_eq!(
            compare("q", 1.0, 3.0, both).verdict,
            Verdict::NoGo(
                "rose from 1 to 3: +2 is more than the allowed +1, x3 is more than the allowed x2"
                    .into()
            )
        );
    }

    #[test]
    fn prometheus_answers_give_one_finite_value() {
        let ok = |body: &str| prometheus_answer_value(200, body.as_bytes());
        assert_eq!(
            ok(
                r#"{"status":"success","data":{"resultType":"scalar","result":[1795691758.55,"3"]}}"#
            ),
            Ok(3.0)
        );
        assert_eq!(
            ok(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1.5,"0.25"]}]}}"#
            ),
            Ok(0.25)
        );
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}}"#),
            Err("the query returned NaN".into())
        );
        assert_eq!(
            ok(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.5,"+Inf"]}]}}"#
            ),
            Err("the query returned +Inf".into())
        );
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#),
            Err("the query returned a range vector; use an instant query".into())
        );
        assert_eq!(
            prometheus_answer_value(502, b"<html>bad gateway</html>"),
            Err(
                "Prometheus API answered status 502 with no API response (expected value at \
                 line 1 column 1): <html>bad gateway</html>"
                    .into()
            )
        );
    }

    #[test]
    fn alertmanager_answers_drop_suppressed_alerts() {
        let body = br#"[
            {"fingerprint":"a1","labels":{"alertname":"A"},"status":{"state":"active"}},
            {"fingerprint":"b2","labels":{"alertname":"B"},"status":{"state":"suppressed"}},
            {"fingerprint":"c3","labels":{},"status":{"state":"unprocessed"}}
        ]"#;
        let alerts = alertmanager_answer_alerts(200, body).unwrap();
        let fingerprints: Vec<&str> = alerts.iter().map(|a| a.fingerprint.as_str()).collect();
        assert_eq!(fingerprints, ["a1", "c3"]);
        let known = BTreeSet::from(["a1".to_string()]);
        // An alert without a name is named by its fingerprint.
        assert_eq!(
            new_alerts("am", &known, &alerts).verdict,
            Verdict::NoGo("new firing alerts: c3".into())
        );
        assert_eq!(
            alertmanager_answer_alerts(400, b"\"bad matcher\"").map(|_| ()),
            Err("Alertmanager API answered status 400: \"bad matcher\"".into())
        );
    }

    #[test]
    fn many_failing_hosts_are_counted_past_ten() {
        let items: Vec<String> = (1..=12).map(|i| format!("h{i}: down")).collect();
        assert_eq!(
            name_hosts(&items),
            "h1: down; h2: down; h3: down; h4: down; h5: down; h6: down; h7: down; h8: down; \
             h9: down; h10: down; and 2 more hosts"
        );
    }
}
