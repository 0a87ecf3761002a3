//! Findings: per distinct query once, then per host.
//!
//! The engine collects the fleet's distinct [`PackageQuery`]s, has their version pairs
//! answered in one batch, and calls [`Assessor::assess`] once per query. The result's
//! [`Vulnerability`] (matches, fix, class, SLA clock) is shared through an `Arc` by every
//! host that has that query; [`Finding::new`] only adds the host, the package names and
//! the exclusions that apply, so fanning out to 10,000 hosts × 1,500 packages costs a
//! pointer copy and a check of the (pre-filtered) exclusions per finding.
//!
//! **Exclusions.** A finding's items are the CVEs of its advisories (an advisory with no
//! CVE is one item, its own id). An active exclusion covers the items it names: an
//! advisory id covers all that advisory's items, a CVE id that CVE. The finding is excluded
//! only when every item is covered, until the earliest time one of them stops being
//! covered. A partly covered finding stays due and lists what is left. Exclusions whose
//! selector matches but that have expired are ignored and listed as expired. The class is
//! never recomputed for a partial exclusion.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchwave_core::{HostId, Installed};
use serde::{Deserialize, Serialize};

use crate::classify::{classify, CvssScorer, PatchClass, Rule, ThreatIntel, Verdict};
use crate::matching::{AdvisoryIndex, Match, MatchError, PackageQuery, VersionOrder};
use crate::policy::{Exclusion, Policy, Target};

/// The version that fixes every matched advisory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum FixedIn {
    /// This version fixes all of them: the highest of their `fixed` versions.
    Version(String),
    /// At least one matched advisory has no fix yet for this version.
    NoFixYet,
    /// The `fixed` versions could not be ordered; the message says which.
    Unknown(String),
}

/// The advisories of a finding and their CVEs, the unit exclusions cover.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryCves {
    /// The advisory id.
    pub advisory: String,
    /// Its CVE ids (empty when it names none).
    pub cves: Vec<String>,
}

/// What is wrong with one installed version, shared by every host that has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    /// Every match, sorted by advisory.
    pub matches: Vec<Match>,
    /// The matched advisories, sorted by id, each with its CVE ids.
    pub advisories: Vec<AdvisoryCves>,
    /// Every CVE id of the matched advisories, sorted and unique.
    pub cves: Vec<String>,
    /// The version that fixes all of them.
    pub fixed_in: FixedIn,
    /// PatchClass, rule and SLA clock.
    pub verdict: Verdict,
    /// The policy's exclusions whose id names one of these advisories or CVEs.
    #[serde(skip)]
    exclusions: Vec<Arc<Exclusion>>,
}

impl Vulnerability {
    /// The matched advisory ids, sorted.
    pub fn advisory_ids(&self) -> Vec<&str> {
        self.advisories
            .iter()
            .map(|a| a.advisory.as_str())
            .collect()
    }
}

/// The assessment of one query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// What was assessed.
    pub query: PackageQuery,
    /// Ranges that could not be decided (the version or an event could not be ordered).
    /// Reported for the advisory, never treated as "not affected" silently.
    pub errors: Vec<MatchError>,
    /// `None` when nothing matched.
    pub vulnerability: Option<Arc<Vulnerability>>,
}

/// Everything an assessment needs besides the query and the version order.
#[derive(Clone, Copy)]
pub struct Assessor<'a> {
    /// The advisories.
    pub index: &'a AdvisoryIndex,
    /// The classification policy.
    pub policy: &'a Policy,
    /// KEV and EPSS.
    pub intel: &'a dyn ThreatIntel,
    /// The CVSS scorer.
    pub scorer: &'a dyn CvssScorer,
}

impl Assessor<'_> {
    /// Match, classify and find the fix for `query`, comparing versions with `order`
    /// (loaded with the answers to [`AdvisoryIndex::pairs_needed`]).
    pub fn assess(&self, query: &PackageQuery, order: &impl VersionOrder) -> Assessment {
        let evaluation = self.index.evaluate(query, order);
        let evidence = self.index.evidence(&evaluation.matches);
        let verdict = classify(&evidence, self.intel, self.policy, self.scorer);
        let advisories: Vec<AdvisoryCves> = evidence
            .iter()
            .map(|e| AdvisoryCves {
                advisory: e.advisory.id.clone(),
                cves: e.advisory.cves.clone(),
            })
            .collect();
        let vulnerability = verdict.map(|verdict| {
            Arc::new(self.vulnerability(evaluation.matches, advisories, verdict, order))
        });
        Assessment {
            query: query.clone(),
            errors: evaluation.errors,
            vulnerability,
        }
    }

    fn vulnerability(
        &self,
        matches: Vec<Match>,
        advisories: Vec<AdvisoryCves>,
        verdict: Verdict,
        order: &impl VersionOrder,
    ) -> Vulnerability {
        let cves: BTreeSet<&str> = advisories
            .iter()
            .flat_map(|a| a.cves.iter().map(String::as_str))
            .collect();
        let cves: Vec<String> = cves.into_iter().map(str::to_string).collect();
        Vulnerability {
            fixed_in: fixed_in(&matches, order),
            exclusions: self.relevant_exclusions(&advisories, &cves),
            matches,
            advisories,
            cves,
            verdict,
        }
    }

    fn relevant_exclusions(
        &self,
        advisories: &[AdvisoryCves],
        cves: &[String],
    ) -> Vec<Arc<Exclusion>> {
        let names = |id: &str| {
            advisories
                .iter()
                .any(|a| a.advisory.eq_ignore_ascii_case(id))
                || cves.iter().any(|c| c.eq_ignore_ascii_case(id))
        };
        self.policy
            .exclusions
            .iter()
            .filter(|e| names(&e.selector.id))
            .cloned()
            .collect()
    }
}

/// The highest `fixed` over all matches; [`FixedIn::NoFixYet`] when a match has none.
fn fixed_in(matches: &[Match], order: &impl VersionOrder) -> FixedIn {
    let mut best: Option<&str> = None;
    for m in matches {
        let Some(fixed) = m.fixed.as_deref() else {
            return FixedIn::NoFixYet;
        };
        best = match best {
            None => Some(fixed),
            Some(b) if b == fixed => Some(b),
            Some(b) => match order.compare(fixed, b) {
                Ok(Ordering::Greater) => Some(fixed),
                Ok(_) => Some(b),
                Err(why) => {
                    return FixedIn::Unknown(format!(
                        "cannot order fixed versions `{fixed}` and `{b}`: {why}"
                    ))
                }
            },
        };
    }
    best.map_or(FixedIn::NoFixYet, |b| FixedIn::Version(b.to_string()))
}

/// The host a finding is on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRef {
    /// The host id.
    pub id: HostId,
    /// Its scope, when it has one.
    pub scope: Option<String>,
}

/// How exclusions apply to one finding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionStatus {
    /// Active exclusions that apply.
    pub applied: Vec<Arc<Exclusion>>,
    /// Exclusions that would apply but have expired: ignored, flagged.
    pub expired: Vec<Arc<Exclusion>>,
    /// Items (CVE ids, or ids of advisories without CVEs) the applied exclusions leave
    /// uncovered; empty when none applied or all are covered.
    pub uncovered: Vec<String>,
    /// When every item is covered: until when (the earliest expiry among the items, each
    /// item counting its longest-lived exclusion).
    pub excluded_until: Option<DateTime<Utc>>,
}

/// One vulnerable package on one host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The host.
    pub host: HostId,
    /// The host's scope.
    pub scope: Option<String>,
    /// The installed (binary) package.
    pub package: String,
    /// Its installed version.
    pub installed_version: String,
    /// Its source package, when known.
    pub source_package: Option<String>,
    /// What is wrong with it (shared by every host with the same query).
    pub vulnerability: Arc<Vulnerability>,
    /// The exclusions that apply.
    pub exclusion: ExclusionStatus,
}

impl Finding {
    /// The finding for `installed` on `host`, with the exclusions active at `now`.
    pub fn new(
        host: &HostRef,
        installed: &Installed,
        vulnerability: &Arc<Vulnerability>,
        now: DateTime<Utc>,
    ) -> Finding {
        Finding {
            host: host.id.clone(),
            scope: host.scope.clone(),
            package: installed.name.clone(),
            installed_version: installed.version.clone(),
            source_package: installed.source.clone(),
            exclusion: exclusion_status(host, installed, vulnerability, now),
            vulnerability: Arc::clone(vulnerability),
        }
    }

    /// The version that fixes every matched advisory.
    pub fn fixed_in(&self) -> &FixedIn {
        &self.vulnerability.fixed_in
    }

    /// The matched advisory ids.
    pub fn advisory_ids(&self) -> Vec<&str> {
        self.vulnerability.advisory_ids()
    }

    /// The CVE ids of the matched advisories.
    pub fn cve_ids(&self) -> &[String] {
        &self.vulnerability.cves
    }

    /// The class.
    pub fn class(&self) -> PatchClass {
        self.vulnerability.verdict.class
    }

    /// The rule that chose the class.
    pub fn rule(&self) -> &Rule {
        &self.vulnerability.verdict.rule
    }

    /// Earliest disclosure of the matched advisories.
    pub fn disclosed_at(&self) -> DateTime<Utc> {
        self.vulnerability.verdict.disclosed_at
    }

    /// When it is due; `None` for low.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        self.vulnerability.verdict.due_at
    }

    /// `true` while every item is covered by an exclusion.
    pub fn is_excluded(&self, now: DateTime<Utc>) -> bool {
        self.exclusion.excluded_until.is_some_and(|t| now < t)
    }

    /// `true` when the due date has been reached and the finding is not excluded.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        !self.is_excluded(now) && self.due_at().is_some_and(|due| now >= due)
    }

    /// Where the finding stands at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> FindingStatus {
        if self.is_excluded(now) {
            FindingStatus::Excluded
        } else if self.overdue(now) {
            FindingStatus::Overdue
        } else if !self.exclusion.expired.is_empty() {
            FindingStatus::ExclusionExpired
        } else {
            FindingStatus::Open
        }
    }
}

/// Where a finding stands: one word in every output (`findings`, its JSON and CSV, the
/// weekly report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingStatus {
    /// Open, within its SLA (or without a due date).
    Open,
    /// Open and past its due date.
    Overdue,
    /// An active exclusion covers it.
    Excluded,
    /// Open, within its SLA, and an exclusion that covered it has expired.
    ExclusionExpired,
}

impl FindingStatus {
    /// `open`, `overdue`, `excluded` or `exclusion-expired`.
    pub fn word(self) -> &'static str {
        match self {
            FindingStatus::Open => "open",
            FindingStatus::Overdue => "overdue",
            FindingStatus::Excluded => "excluded",
            FindingStatus::ExclusionExpired => "exclusion-expired",
        }
    }
}

impl fmt::Display for FindingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

fn exclusion_status(
    host: &HostRef,
    installed: &Installed,
    vulnerability: &Vulnerability,
    now: DateTime<Utc>,
) -> ExclusionStatus {
    let mut status = ExclusionStatus::default();
    for e in vulnerability
        .exclusions
        .iter()
        .filter(|e| applies(e, host, installed))
    {
        if e.is_active(now) {
            status.applied.push(Arc::clone(e));
        } else {
            status.expired.push(Arc::clone(e));
        }
    }
    if status.applied.is_empty() {
        return status;
    }
    let mut until: Option<DateTime<Utc>> = None;
    let mut uncovered = BTreeSet::new();
    for (advisory, item) in items(vulnerability) {
        let covering = status
            .applied
            .iter()
            .filter(|e| {
                e.selector.id.eq_ignore_ascii_case(advisory)
                    || e.selector.id.eq_ignore_ascii_case(item)
            })
            .map(|e| e.expires)
            .max();
        match covering {
            Some(t) => until = Some(until.map_or(t, |u| u.min(t))),
            None => {
                uncovered.insert(item.to_string());
            }
        }
    }
    status.excluded_until = until.filter(|_| uncovered.is_empty());
    status.uncovered = uncovered.into_iter().collect();
    status
}

/// (advisory id, item) for every item: each CVE, or the advisory id when it has none.
fn items(v: &Vulnerability) -> impl Iterator<Item = (&str, &str)> {
    v.advisories.iter().flat_map(|a| {
        let id = a.advisory.as_str();
        let cves: Vec<&str> = if a.cves.is_empty() {
            vec![id]
        } else {
            a.cves.iter().map(String::as_str).collect()
        };
        cves.into_iter().map(move |c| (id, c))
    })
}

fn applies(e: &Exclusion, host: &HostRef, installed: &Installed) -> bool {
    let package_ok = e
        .selector
        .package
        .as_deref()
        .is_none_or(|p| p == installed.name || installed.source.as_deref() == Some(p));
    let target_ok = match &e.selector.target {
        None => true,
        Some(Target::Host(h)) => *h == host.id,
        Some(Target::Scope(s)) => host.scope.as_deref() == Some(s.as_str()),
    };
    package_ok && target_ok
}
