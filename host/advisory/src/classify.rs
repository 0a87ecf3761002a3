//! Classification: which class a set of matched advisories gets, the rule that chose it,
//! and when its SLA clock starts and ends.
//!
//! 1. **CVSS class**: the highest base score over every CVSS vector of the matched
//!    advisories (advisory-level, of the matched entries, and of those entries' `cves_map`):
//!    ≥ 9.0 critical, ≥ 7.0 high, ≥ 4.0 moderate, else low. Scores come from a
//!    [`CvssScorer`]; a vector it cannot score is skipped and named in [`Verdict::notes`].
//! 2. **Vendor class**: the highest class over the vendor severities of the matched
//!    advisories and entries (Debian urgency, Ubuntu priority, including `Ubuntu` severity
//!    entries and `cves_map` priorities, Red Hat severity; see [`crate::vendor`]).
//! 3. **Base class** by [`CombineMode`]: `max` (the higher of the two; CVSS on a tie),
//!    `vendor-first` (vendor when present, else CVSS) or `cvss-first`. With neither, the
//!    policy's `unrated` class (default moderate, rule `unrated`).
//! 4. **Escalations**, each only when it raises the class: a CVE of the matched
//!    advisories with an EPSS score ≥ the threshold raises the base class one step (rule
//!    `epss`); a CVE in CISA KEV makes it critical (rule `kev`).
//! 5. The result is the highest class any of these gives. When several give it, the one
//!    whose clock starts first decides (the stricter deadline); on a tie the base rule,
//!    then `kev`, then `epss`.
//!
//! **Clock.** Disclosure is the earliest `published` of the matched advisories (`modified`
//! for one without `published`). The base class's clock starts at disclosure; an
//! escalation's clock starts at the later of disclosure and the escalation date (the
//! earliest KEV `dateAdded` among the advisories' CVEs, at midnight UTC; the EPSS
//! `score_date`). The due date follows [`crate::sla`], except that an escalation never
//! moves a deadline later: the due date is the earlier of the escalated class's (from its
//! clock) and the base class's (from disclosure).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::epss::EpssFeed;
use crate::kev::KevCatalog;
use crate::model::{Advisory, Affected, Severity, SeverityKind};
use crate::policy::{CombineMode, Policy};
use crate::timestamp::midnight;
use crate::vendor::{VendorScheme, VendorSeverity};

pub use patchwave_core::PatchClass;

/// Scores CVSS vectors. The real scorer (`patchwave-cvss`) is plugged in by the caller;
/// any `Fn(&Severity) -> Result<u8, String>` is one.
pub trait CvssScorer {
    /// The base score of a CVSS severity entry (`CVSS_V2`, `CVSS_V3` or `CVSS_V4`), in
    /// tenths (9.8 → 98), or why it cannot be scored.
    fn base_score_tenths(&self, severity: &Severity) -> Result<u8, String>;
}

impl<F> CvssScorer for F
where
    F: Fn(&Severity) -> Result<u8, String>,
{
    fn base_score_tenths(&self, severity: &Severity) -> Result<u8, String> {
        self(severity)
    }
}

/// What is known about exploitation: CISA KEV membership and EPSS scores.
pub trait ThreatIntel {
    /// When CISA added `cve` to KEV, if it is in the current catalogue.
    fn kev_added(&self, cve: &str) -> Option<NaiveDate>;
    /// The EPSS score of `cve` and the date it was scored.
    fn epss(&self, cve: &str) -> Option<(f64, DateTime<Utc>)>;
}

/// [`ThreatIntel`] held in memory, built from a KEV catalogue and an EPSS feed.
#[derive(Clone, Debug, Default)]
pub struct Intel {
    kev: HashMap<String, NaiveDate>,
    epss: HashMap<String, f64>,
    epss_date: Option<DateTime<Utc>>,
}

impl Intel {
    /// Intel from the current KEV catalogue and the latest EPSS feed, either optional.
    pub fn new(kev: Option<&KevCatalog>, epss: Option<&EpssFeed>) -> Intel {
        Intel {
            kev: kev
                .map(|k| {
                    k.entries
                        .iter()
                        .map(|e| (e.cve_id.clone(), e.date_added))
                        .collect()
                })
                .unwrap_or_default(),
            epss: epss
                .map(|f| f.rows.iter().map(|r| (r.cve.clone(), r.epss)).collect())
                .unwrap_or_default(),
            epss_date: epss.map(|f| f.score_date),
        }
    }
}

impl ThreatIntel for Intel {
    fn kev_added(&self, cve: &str) -> Option<NaiveDate> {
        self.kev.get(cve).copied()
    }

    fn epss(&self, cve: &str) -> Option<(f64, DateTime<Utc>)> {
        Some((*self.epss.get(cve)?, self.epss_date?))
    }
}

/// One matched advisory and the entries of it that matched.
#[derive(Clone, Debug)]
pub struct Evidence<'a> {
    /// The advisory.
    pub advisory: &'a Advisory,
    /// Its matched `affected` entries.
    pub entries: Vec<&'a Affected>,
}

/// The rule that chose a class, with what it saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "rule")]
pub enum Rule {
    /// The highest CVSS base score.
    Cvss {
        /// The advisory carrying the vector.
        advisory: String,
        /// The CVE the vector belongs to, for a `cves_map` vector.
        cve: Option<String>,
        /// The vector.
        vector: String,
        /// Its base score in tenths.
        score_tenths: u8,
    },
    /// The highest vendor severity.
    Vendor {
        /// The advisory carrying it.
        advisory: String,
        /// The CVE it belongs to, for a `cves_map` priority.
        cve: Option<String>,
        /// The severity, as written.
        severity: VendorSeverity,
    },
    /// No CVSS vector and no vendor rating: the policy's `unrated` class.
    Unrated,
    /// An EPSS score at or above the threshold raised the class one step.
    Epss {
        /// The CVE with the highest score.
        cve: String,
        /// Its score.
        score: f64,
        /// The date it was scored; the clock starts no earlier.
        score_date: DateTime<Utc>,
        /// The class before escalation.
        from: PatchClass,
    },
    /// A CVE in CISA KEV made the class critical.
    Kev {
        /// The CVE added earliest.
        cve: String,
        /// When it was added; the clock starts no earlier.
        date_added: NaiveDate,
        /// The class before escalation.
        from: PatchClass,
    },
}

impl Rule {
    /// The rule's name: `cvss`, `vendor`, `unrated`, `epss` or `kev`.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Cvss { .. } => "cvss",
            Rule::Vendor { .. } => "vendor",
            Rule::Unrated => "unrated",
            Rule::Epss { .. } => "epss",
            Rule::Kev { .. } => "kev",
        }
    }
}

impl fmt::Display for Rule {
    /// One line for `findings explain`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cve = |c: &Option<String>| c.as_ref().map(|c| format!(" {c}")).unwrap_or_default();
        match self {
            Rule::Cvss {
                advisory,
                cve: c,
                vector,
                score_tenths,
            } => write!(
                f,
                "cvss: {}.{} from {vector} ({advisory}{})",
                score_tenths / 10,
                score_tenths % 10,
                cve(c)
            ),
            Rule::Vendor {
                advisory,
                cve: c,
                severity,
            } => write!(f, "vendor: {severity} ({advisory}{})", cve(c)),
            Rule::Unrated => f.write_str("unrated: no CVSS vector and no vendor rating"),
            Rule::Epss {
                cve,
                score,
                score_date,
                from,
            } => write!(
                f,
                "epss: {cve} scored {score} on {} (escalated from {from})",
                score_date.date_naive()
            ),
            Rule::Kev {
                cve,
                date_added,
                from,
            } => write!(f, "kev: {cve} added {date_added} (escalated from {from})"),
        }
    }
}

/// The classification of a set of matched advisories.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The class.
    pub class: PatchClass,
    /// The rule that chose it.
    pub rule: Rule,
    /// The class from CVSS alone, if any vector was scored.
    pub cvss_class: Option<PatchClass>,
    /// The class from vendor severities alone, if any had a rating.
    pub vendor_class: Option<PatchClass>,
    /// Earliest disclosure of the matched advisories.
    pub disclosed_at: DateTime<Utc>,
    /// When the SLA clock started.
    pub clock_start: DateTime<Utc>,
    /// When the finding is due; `None` for low. Never later than the base class's due
    /// date.
    pub due_at: Option<DateTime<Utc>>,
    /// Vectors that could not be scored, and why.
    pub notes: Vec<String>,
}

/// Classify the matched advisories `evidence` (see the module documentation). `None` when
/// `evidence` is empty.
pub fn classify(
    evidence: &[Evidence<'_>],
    intel: &dyn ThreatIntel,
    policy: &Policy,
    scorer: &dyn CvssScorer,
) -> Option<Verdict> {
    let disclosed_at = evidence.iter().map(|e| e.advisory.disclosed_at()).min()?;
    let mut notes = Vec::new();
    let cvss = highest_cvss(evidence, scorer, &mut notes);
    let vendor = highest_vendor(evidence);
    let cvss_class = cvss.as_ref().map(|(c, _)| *c);
    let vendor_class = vendor.as_ref().map(|(c, _)| *c);
    let (base, base_rule) = combine(policy, cvss, vendor);
    let mut best = (base, disclosed_at, base_rule);
    for candidate in escalations(evidence, intel, policy, base, disclosed_at) {
        let better = candidate.0 > best.0 || (candidate.0 == best.0 && candidate.1 < best.1);
        if better {
            best = candidate;
        }
    }
    let (class, clock_start, rule) = best;
    let due_at = match (
        policy.sla.due_at(class, clock_start),
        policy.sla.due_at(base, disclosed_at),
    ) {
        (Some(escalated), Some(unescalated)) => Some(escalated.min(unescalated)),
        (due, None) | (None, due) => due,
    };
    Some(Verdict {
        class,
        rule,
        cvss_class,
        vendor_class,
        disclosed_at,
        clock_start,
        due_at,
        notes,
    })
}

fn combine(
    policy: &Policy,
    cvss: Option<(PatchClass, Rule)>,
    vendor: Option<(PatchClass, Rule)>,
) -> (PatchClass, Rule) {
    let picked = match (policy.combine, cvss, vendor) {
        (CombineMode::Max, Some(c), Some(v)) => Some(if v.0 > c.0 { v } else { c }),
        (CombineMode::VendorFirst, c, v) => v.or(c),
        (CombineMode::CvssFirst | CombineMode::Max, c, v) => c.or(v),
    };
    picked.unwrap_or((policy.unrated, Rule::Unrated))
}

/// Every (vector, where it came from) of the evidence, in a stable order.
fn severities<'a>(
    evidence: &'a [Evidence<'a>],
) -> impl Iterator<Item = (&'a str, Option<&'a str>, &'a Severity)> + 'a {
    evidence.iter().flat_map(|e| {
        let id = e.advisory.id.as_str();
        let top = e.advisory.severity.iter().map(move |s| (id, None, s));
        let entries = e.entries.iter().flat_map(move |a| {
            let own = a.severity.iter().map(move |s| (id, None, s));
            let per_cve = a
                .cves
                .iter()
                .flat_map(move |c| c.severity.iter().map(move |s| (id, Some(c.id.as_str()), s)));
            own.chain(per_cve)
        });
        top.chain(entries)
    })
}

fn highest_cvss(
    evidence: &[Evidence<'_>],
    scorer: &dyn CvssScorer,
    notes: &mut Vec<String>,
) -> Option<(PatchClass, Rule)> {
    let mut best: Option<(u8, Rule)> = None;
    for (advisory, cve, severity) in severities(evidence).filter(|(_, _, s)| s.kind.is_cvss()) {
        match scorer.base_score_tenths(severity) {
            Ok(score) if best.as_ref().is_none_or(|(b, _)| score > *b) => {
                best = Some((
                    score,
                    Rule::Cvss {
                        advisory: advisory.to_string(),
                        cve: cve.map(str::to_string),
                        vector: severity.score.clone(),
                        score_tenths: score,
                    },
                ));
            }
            Ok(_) => {}
            Err(why) => notes.push(format!(
                "{advisory}{}: {} `{}` not scored: {why}",
                cve.map(|c| format!(" {c}")).unwrap_or_default(),
                severity.kind.as_str(),
                severity.score
            )),
        }
    }
    best.map(|(score, rule)| (PatchClass::from_score_tenths(score), rule))
}

fn highest_vendor(evidence: &[Evidence<'_>]) -> Option<(PatchClass, Rule)> {
    let advisory_level = evidence.iter().flat_map(|e| {
        let own = e.advisory.vendor_severity.iter();
        let entries = e.entries.iter().filter_map(|a| a.vendor_severity.as_ref());
        own.chain(entries)
            .map(move |v| (e.advisory.id.as_str(), None, v.clone()))
    });
    let ubuntu = severities(evidence)
        .filter(|(_, _, s)| s.kind == SeverityKind::Ubuntu)
        .map(|(a, c, s)| {
            (
                a,
                c,
                VendorSeverity::new(VendorScheme::UbuntuPriority, &s.score),
            )
        });
    let mut best: Option<(PatchClass, Rule)> = None;
    for (advisory, cve, severity) in advisory_level.chain(ubuntu) {
        let Some(class) = severity.class() else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| class > *b) {
            best = Some((
                class,
                Rule::Vendor {
                    advisory: advisory.to_string(),
                    cve: cve.map(str::to_string),
                    severity,
                },
            ));
        }
    }
    best
}

/// The escalations that raise `base`, each with its clock start; KEV before EPSS so that
/// KEV wins a full tie.
fn escalations(
    evidence: &[Evidence<'_>],
    intel: &dyn ThreatIntel,
    policy: &Policy,
    base: PatchClass,
    disclosed_at: DateTime<Utc>,
) -> Vec<(PatchClass, DateTime<Utc>, Rule)> {
    if base == PatchClass::Critical {
        return Vec::new();
    }
    let mut cves: Vec<&str> = evidence
        .iter()
        .flat_map(|e| e.advisory.cves.iter().map(String::as_str))
        .collect();
    cves.sort_unstable();
    cves.dedup();
    let mut out = Vec::new();
    let kev = cves
        .iter()
        .filter_map(|c| Some((intel.kev_added(c)?, *c)))
        .min();
    if let Some((date_added, cve)) = kev {
        let start = disclosed_at.max(midnight(date_added));
        let rule = Rule::Kev {
            cve: cve.to_string(),
            date_added,
            from: base,
        };
        out.push((PatchClass::Critical, start, rule));
    }
    if let Some(threshold) = policy.epss_threshold {
        let mut top: Option<(f64, DateTime<Utc>, &str)> = None;
        for cve in &cves {
            match intel.epss(cve) {
                Some((score, date))
                    if score >= threshold && top.is_none_or(|(s, _, _)| score > s) =>
                {
                    top = Some((score, date, cve));
                }
                _ => {}
            }
        }
        if let Some((score, score_date, cve)) = top {
            let rule = Rule::Epss {
                cve: cve.to_string(),
                score,
                score_date,
                from: base,
            };
            out.push((base.escalated(), disclosed_at.max(score_date), rule));
        }
    }
    out
}
