//! The classification policy: how classes are combined, when EPSS escalates, the SLA
//! windows, and the exclusions operators have granted.
//!
//! [`PolicyConfig`] is what a config file holds (every key optional, unknown keys refused);
//! [`PolicyConfig::compile`] checks it and reports EVERY problem at once. [`Policy`]
//! deserializes through the same check. In TOML:
//!
//! ```toml
//! combine = "max"              # or "vendor-first", "cvss-first"
//! epss_escalation = true
//! epss_threshold = 0.1
//! unrated = "moderate"         # class when no CVSS vector and no vendor rating
//! critical_days = 7
//! high_days = 30
//! cycle = "monthly"            # or "days", with cycle_days = 14 and cycle_anchor = "2026-01-05"
//!
//! [[exclusions]]
//! id = "CVE-2024-6387"         # an advisory id or a CVE id
//! package = "openssh-server"   # optional: binary or source package name
//! host = "web-1"               # optional: one host, or `scope = "payments"`, not both
//! reason = "not reachable: sshd bound to the management VLAN"
//! owner = "alice@example.com"
//! expires = "2026-12-31"       # a date (valid through that day, UTC) or an RFC 3339 time
//! ```
//!
//! Dates are quoted strings (TOML's unquoted dates are not accepted).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use patchwave_core::HostId;
use serde::{Deserialize, Serialize};

use crate::classify::PatchClass;
use crate::sla::{Cycle, Sla};
use crate::timestamp::{midnight, parse_date};

/// How the CVSS class and the vendor class combine into the base class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CombineMode {
    /// The higher of the two (CVSS on a tie).
    #[default]
    Max,
    /// The vendor class when there is one, else the CVSS class.
    VendorFirst,
    /// The CVSS class when there is one, else the vendor class.
    CvssFirst,
}

impl CombineMode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CombineMode::Max => "max",
            CombineMode::VendorFirst => "vendor-first",
            CombineMode::CvssFirst => "cvss-first",
        }
    }

    fn parse(s: &str) -> Option<CombineMode> {
        [
            CombineMode::Max,
            CombineMode::VendorFirst,
            CombineMode::CvssFirst,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// A checked policy. Build it with [`PolicyConfig::compile`] (or deserialize it, which
/// compiles); [`Policy::default`] is the playbook's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PolicyConfig", into = "PolicyConfig")]
pub struct Policy {
    /// How CVSS and vendor classes combine.
    pub combine: CombineMode,
    /// EPSS probability at or above which the class is raised one step; `None` disables.
    pub epss_threshold: Option<f64>,
    /// The class of a finding with no CVSS vector and no vendor rating.
    pub unrated: PatchClass,
    /// SLA windows.
    pub sla: Sla,
    /// Granted exclusions, shared with the findings they apply to.
    pub exclusions: Vec<Arc<Exclusion>>,
}

impl Default for Policy {
    /// `max`, EPSS ≥ 0.1, unrated → moderate, 7 d / 30 d / monthly, no exclusions.
    fn default() -> Policy {
        Policy {
            combine: CombineMode::Max,
            epss_threshold: Some(0.1),
            unrated: PatchClass::Moderate,
            sla: Sla::default(),
            exclusions: Vec::new(),
        }
    }
}

/// An accepted risk: a finding the selector names is listed but not due while the
/// exclusion is active.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// What it applies to.
    pub selector: Selector,
    /// Why the risk is accepted.
    pub reason: String,
    /// Who accepted it.
    pub owner: String,
    /// When it stops applying.
    pub expires: DateTime<Utc>,
}

impl Exclusion {
    /// `true` while `now` is before `expires`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires
    }
}

/// What an exclusion applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// An advisory id (`USN-6793-1`) or a CVE id, compared case-insensitively. An advisory
    /// id covers all of that advisory's CVEs; a CVE id covers that CVE only.
    pub id: String,
    /// Only this package (the installed binary name or its source package name).
    pub package: Option<String>,
    /// Only this host or scope.
    pub target: Option<Target>,
}

/// A host or a scope an exclusion is limited to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One host.
    Host(HostId),
    /// Every host of a scope.
    Scope(String),
}

/// The policy as a config file writes it. Missing keys take the defaults of
/// [`Policy::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// `max`, `vendor-first` or `cvss-first`.
    pub combine: String,
    /// Whether EPSS escalates at all.
    pub epss_escalation: bool,
    /// The EPSS probability that escalates, in [0, 1].
    pub epss_threshold: f64,
    /// The class of unrated findings: `low`, `moderate`, `high` or `critical`.
    pub unrated: String,
    /// Days for critical findings, at least 1.
    pub critical_days: u32,
    /// Days for high findings, at least 1.
    pub high_days: u32,
    /// `monthly` or `days`.
    pub cycle: String,
    /// With `cycle = "days"`: the period in days, at least 1.
    pub cycle_days: Option<u32>,
    /// With `cycle = "days"`: a date (`YYYY-MM-DD`) on which a cycle starts.
    pub cycle_anchor: Option<String>,
    /// The exclusions.
    pub exclusions: Vec<ExclusionConfig>,
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig::from(Policy::default())
    }
}

/// One exclusion as a config file writes it. Every field is optional here so that
/// [`PolicyConfig::compile`] can name each one that is missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExclusionConfig {
    /// Advisory id or CVE id (required).
    pub id: Option<String>,
    /// Package name.
    pub package: Option<String>,
    /// Host id (not with `scope`).
    pub host: Option<String>,
    /// Scope (not with `host`).
    pub scope: Option<String>,
    /// Why (required).
    pub reason: Option<String>,
    /// Who (required).
    pub owner: Option<String>,
    /// Until when (required): `YYYY-MM-DD` (valid through that day, UTC) or RFC 3339.
    pub expires: Option<String>,
}

/// One problem in a policy config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyProblem {
    /// Where: a key (`epss_threshold`) or an exclusion field (`exclusions[1] (CVE-2024-1).owner`).
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in a policy config.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) in the classification policy: {}", .0.len(), join(.0))]
pub struct PolicyErrors(pub Vec<PolicyProblem>);

fn join(problems: &[PolicyProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects problems while a config is compiled.
#[derive(Default)]
struct Problems(Vec<PolicyProblem>);

impl Problems {
    fn add(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.0.push(PolicyProblem {
            location: location.into(),
            message: message.into(),
        });
    }
}

impl PolicyConfig {
    /// Check the config and build the [`Policy`], or return every problem found.
    pub fn compile(&self) -> Result<Policy, PolicyErrors> {
        let mut problems = Problems::default();
        let combine = CombineMode::parse(&self.combine);
        if combine.is_none() {
            problems.add(
                "combine",
                format!(
                    "`{}` (expected max, vendor-first or cvss-first)",
                    self.combine
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.epss_threshold) {
            problems.add(
                "epss_threshold",
                format!("{} is not between 0 and 1", self.epss_threshold),
            );
        }
        let unrated = PatchClass::parse(&self.unrated);
        if unrated.is_none() {
            problems.add(
                "unrated",
                format!(
                    "`{}` (expected low, moderate, high or critical)",
                    self.unrated
                ),
            );
        }
        let sla = self.compile_sla(&mut problems);
        let exclusions: Vec<Arc<Exclusion>> = self
            .exclusions
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.compile(i, &mut problems).map(Arc::new))
            .collect();
        match (combine, unrated, sla) {
            (Some(combine), Some(unrated), Some(sla)) if problems.0.is_empty() => Ok(Policy {
                combine,
                epss_threshold: self.epss_escalation.then_some(self.epss_threshold),
                unrated,
                sla,
                exclusions,
            }),
            _ => Err(PolicyErrors(problems.0)),
        }
    }

    fn compile_sla(&self, problems: &mut Problems) -> Option<Sla> {
        for (key, days) in [
            ("critical_days", self.critical_days),
            ("high_days", self.high_days),
        ] {
            if days == 0 {
                problems.add(key, "must be at least 1");
            }
        }
        let cycle = match self.cycle.as_str() {
            "monthly" => {
                for (key, set) in [
                    ("cycle_days", self.cycle_days.is_some()),
                    ("cycle_anchor", self.cycle_anchor.is_some()),
                ] {
                    if set {
                        problems.add(key, "only applies with cycle = \"days\"");
                    }
                }
                Some(Cycle::Monthly)
            }
            "days" => self.compile_days_cycle(problems),
            other => {
                problems.add("cycle", format!("`{other}` (expected monthly or days)"));
                None
            }
        };
        Some(Sla {
            critical_days: self.critical_days,
            high_days: self.high_days,
            cycle: cycle?,
        })
    }

    fn compile_days_cycle(&self, problems: &mut Problems) -> Option<Cycle> {
        let days = match self.cycle_days {
            Some(d) if d >= 1 => Some(d),
            Some(_) => {
                problems.add("cycle_days", "must be at least 1");
                None
            }
            None => {
                problems.add("cycle_days", "required with cycle = \"days\"");
                None
            }
        };
        let anchor = match self.cycle_anchor.as_deref() {
            Some(text) => {
                let date = parse_date(text);
                if date.is_none() {
                    problems.add(
                        "cycle_anchor",
                        format!("`{text}` is not a date (YYYY-MM-DD)"),
                    );
                }
                date
            }
            None => {
                problems.add("cycle_anchor", "required with cycle = \"days\"");
                None
            }
        };
        Some(Cycle::Days {
            days: days?,
            anchor: anchor?,
        })
    }
}

impl ExclusionConfig {
    fn compile(&self, index: usize, problems: &mut Problems) -> Option<Exclusion> {
        let label = match self.id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => format!("exclusions[{index}] ({id})"),
            None => format!("exclusions[{index}]"),
        };
        let mut required = |field: &str, value: &Option<String>| {
            let v = value.as_deref().map(str::trim).filter(|s| !s.is_empty());
            if v.is_none() {
                problems.add(format!("{label}.{field}"), "required");
            }
            v.map(str::to_string)
        };
        let id = required("id", &self.id);
        let reason = required("reason", &self.reason);
        let owner = required("owner", &self.owner);
        let expires_text = required("expires", &self.expires);
        let expires = expires_text.and_then(|text| {
            let parsed = parse_expiry(&text);
            if parsed.is_none() {
                problems.add(
                    format!("{label}.expires"),
                    format!("`{text}` is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
                );
            }
            parsed
        });
        let target = match (&self.host, &self.scope) {
            (Some(_), Some(_)) => {
                problems.add(label.as_str(), "give `host` or `scope`, not both");
                None
            }
            (Some(h), None) => Some(Target::Host(HostId(h.clone()))),
            (None, Some(s)) => Some(Target::Scope(s.clone())),
            (None, None) => None,
        };
        Some(Exclusion {
            selector: Selector {
                id: id?,
                package: self.package.clone(),
                target,
            },
            reason: reason?,
            owner: owner?,
            expires: expires?,
        })
    }
}

/// A date is valid through that whole day (UTC): it expires at the next midnight.
fn parse_expiry(text: &str) -> Option<DateTime<Utc>> {
    if let Some(date) = parse_date(text) {
        return date.checked_add_signed(Duration::days(1)).map(midnight);
    }
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl TryFrom<PolicyConfig> for Policy {
    type Error = PolicyErrors;

    fn try_from(config: PolicyConfig) -> Result<Policy, PolicyErrors> {
        config.compile()
    }
}

impl From<Policy> for PolicyConfig {
    fn from(policy: Policy) -> PolicyConfig {
        let (cycle, cycle_days, cycle_anchor) = match policy.sla.cycle {
            Cycle::Monthly => ("monthly", None, None),
            Cycle::Days { days, anchor } => ("days", Some(days), Some(anchor.to_string())),
        };
        PolicyConfig {
            combine: policy.combine.as_str().to_string(),
            epss_escalation: policy.epss_threshold.is_some(),
            epss_threshold: policy.epss_threshold.unwrap_or(0.1),
            unrated: policy.unrated.as_str().to_string(),
            critical_days: policy.sla.critical_days,
            high_days: policy.sla.high_days,
            cycle: cycle.to_string(),
            cycle_days,
            cycle_anchor,
            exclusions: policy
                .exclusions
                .iter()
                .map(|e| ExclusionConfig::from(&**e))
                .collect(),
        }
    }
}

impl From<&Exclusion> for ExclusionConfig {
    fn from(e: &Exclusion) -> ExclusionConfig {
        let (host, scope) = match &e.selector.target {
            Some(Target::Host(h)) => (Some(h.0.clone()), None),
            Some(Target::Scope(s)) => (None, Some(s.clone())),
            None => (None, None),
        };
        ExclusionConfig {
            id: Some(e.selector.id.clone()),
            package: e.selector.package.clone(),
            host,
            scope,
            reason: Some(e.reason.clone()),
            owner: Some(e.owner.clone()),
            expires: Some(e.expires.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    #[test]
    fn the_default_policy_is_the_playbook() {
        let p = Policy::default();
        assert_eq!(p.combine, CombineMode::Max);
        assert_eq!(p.epss_threshold, Some(0.1));
        assert_eq!(p.unrated, PatchClass::Moderate);
        assert_eq!(p.sla, Sla::default());
        assert_eq!(PolicyConfig::default().compile().unwrap(), p);
        let empty: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, p);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config: PolicyConfig = serde_json::from_value(serde_json::json!({
            "combine": "average",
            "epss_threshold": 1.5,
            "unrated": "urgent",
            "critical_days": 0,
            "cycle": "days",
            "cycle_anchor": "next monday",
            "exclusions": [
                {"id": "CVE-2024-1", "reason": "r", "owner": "o", "expires": "2026-12-31"},
                {"id": "USN-1-1"},
                {"reason": "r", "owner": "o", "expires": "someday", "host": "a", "scope": "b"}
            ]
        }))
        .unwrap();
        let problems: Vec<String> = config
            .compile()
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "combine: `average` (expected max, vendor-first or cvss-first)",
                "epss_threshold: 1.5 is not between 0 and 1",
                "unrated: `urgent` (expected low, moderate, high or critical)",
                "critical_days: must be at least 1",
                "cycle_days: required with cycle = \"days\"",
                "cycle_anchor: `next monday` is not a date (YYYY-MM-DD)",
                "exclusions[1] (USN-1-1).reason: required",
                "exclusions[1] (USN-1-1).owner: required",
                "exclusions[1] (USN-1-1).expires: required",
                "exclusions[2].id: required",
                "exclusions[2].expires: `someday` is neither a date (YYYY-MM-DD) nor an RFC 3339 time",
                "exclusions[2]: give `host` or `scope`, not both",
            ]
        );
    }

    #[test]
    fn deserializing_a_policy_checks_it() {
        let err = serde_json::from_str::<Policy>(r#"{"exclusions":[{"id":"CVE-2024-1"}]}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "3 problem(s) in the classification policy: exclusions[0] (CVE-2024-1).reason: required; exclusions[0] (CVE-2024-1).owner: required; exclusions[0] (CVE-2024-1).expires: required"
        );
        let unknown = serde_json::from_str::<PolicyConfig>(r#"{"combin":"max"}"#);
        assert!(unknown
            .unwrap_err()
            .to_string()
            .starts_with("unknown field `combin`"));
    }

    #[test]
    fn exclusions_compile_with_dates_through_the_day_and_targets() {
        let config: PolicyConfig = serde_json::from_value(serde_json::json!({
            "epss_escalation": false,
            "cycle": "days", "cycle_days": 14, "cycle_anchor": "2026-01-05",
            "exclusions": [
                {"id": "CVE-2024-6387", "package": "openssh-server", "host": "web-1",
                 "reason": "not reachable", "owner": "alice", "expires": "2026-12-31"},
                {"id": "USN-6793-1", "scope": "payments",
                 "reason": "vendor build", "owner": "bob", "expires": "2026-06-01T12:00:00+02:00"}
            ]
        }))
        .unwrap();
        let policy = config.compile().unwrap();
        assert_eq!(policy.epss_threshold, None);
        assert_eq!(
            policy.sla.cycle,
            Cycle::Days {
                days: 14,
                anchor: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()
            }
        );
        let first = &policy.exclusions[0];
        assert_eq!(
            first.selector,
            Selector {
                id: "CVE-2024-6387".into(),
                package: Some("openssh-server".into()),
                target: Some(Target::Host(HostId("web-1".into()))),
            }
        );
        assert_eq!(
            first.expires,
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
        assert!(first.is_active(Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap()));
        assert!(!first.is_active(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()));
        let second = &policy.exclusions[1];
        assert_eq!(
            second.selector.target,
            Some(Target::Scope("payments".into()))
        );
        assert_eq!(
            second.expires,
            Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap()
        );
        // The checked policy round-trips through its config form.
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
    }
}
