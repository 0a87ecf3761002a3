//! The advisory model: what the parsers produce and the store keeps (as JSON).
//!
//! It follows the OSV schema 1.x closely and keeps the distribution-specific parts that
//! classification needs: Ubuntu's per-CVE `cves_map` (vectors and priority), Debian's
//! urgency, Ubuntu's priority and Red Hat's severity, and Ubuntu's list of binaries built
//! from each source package.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ecosystem::Ecosystem;
use crate::vendor::VendorSeverity;

/// Where a record came from, as the caller (the import command) describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The feed, named by the caller (`ubuntu-usn`, `debian-osv`, …).
    pub kind: String,
    /// The file path or URL read.
    pub location: String,
    /// When the caller read it.
    pub fetched_at: DateTime<Utc>,
}

/// One OSV advisory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// The advisory id (`USN-6793-1`, `DSA-5678-1`, `DEBIAN-CVE-2024-1234`).
    pub id: String,
    /// `schema_version`, when given (absent means 1.0.0).
    pub schema_version: Option<String>,
    /// Last modification.
    pub modified: DateTime<Utc>,
    /// Publication, when given.
    pub published: Option<DateTime<Utc>>,
    /// When the advisory was withdrawn. A withdrawn advisory is kept but never matches.
    pub withdrawn: Option<DateTime<Utc>>,
    /// Ids of the same vulnerability in other databases.
    pub aliases: Vec<String>,
    /// Ids of upstream vulnerabilities this record refers to (`UBUNTU-CVE-…`, `CVE-…`).
    pub upstream: Vec<String>,
    /// Ids of related vulnerabilities.
    pub related: Vec<String>,
    /// The CVE ids this advisory is about, sorted and unique: every `CVE-…` id in `id`,
    /// `aliases`, `upstream`, `related` and the `cves_map` entries, with distribution
    /// prefixes removed (`UBUNTU-CVE-2024-32002` → `CVE-2024-32002`). KEV and EPSS are looked
    /// up by these.
    pub cves: Vec<String>,
    /// One-line summary.
    pub summary: Option<String>,
    /// Long description.
    pub details: Option<String>,
    /// Advisory-level severities (CVSS vectors, Ubuntu priority, …).
    pub severity: Vec<Severity>,
    /// An advisory-level vendor severity: `database_specific.urgency` (Debian),
    /// `.priority` (Ubuntu) or `.severity` (Red Hat); for Red Hat records without it, the
    /// rating named by a `…/security/updates/classification/#important` reference.
    pub vendor_severity: Option<VendorSeverity>,
    /// The affected packages.
    pub affected: Vec<Affected>,
    /// Where the record was read from.
    pub source: Source,
    /// What the parser ignored and why (for example a `GIT` range, kept but not used for
    /// matching).
    pub notes: Vec<String>,
}

impl Advisory {
    /// `true` when the advisory has been withdrawn.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }

    /// When the advisory disclosed its vulnerabilities: `published`, or `modified` for a
    /// record without `published`.
    pub fn disclosed_at(&self) -> DateTime<Utc> {
        self.published.unwrap_or(self.modified)
    }
}

/// One affected package in one ecosystem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// The ecosystem (`Ubuntu:22.04:LTS`).
    pub ecosystem: Ecosystem,
    /// The package name the record uses (a source package for Debian and Ubuntu).
    pub package: String,
    /// The package URL, when given.
    pub purl: Option<String>,
    /// Version ranges. Only `ECOSYSTEM` ranges are used for matching.
    pub ranges: Vec<Range>,
    /// Versions listed as affected.
    pub versions: Vec<String>,
    /// Severities specific to this package.
    pub severity: Vec<Severity>,
    /// The vendor severity for this package: `ecosystem_specific` first, then
    /// `database_specific`; key `urgency` (Debian), `priority` (Ubuntu) or `severity`
    /// (Red Hat).
    pub vendor_severity: Option<VendorSeverity>,
    /// Binary packages built from this source (Ubuntu's `ecosystem_specific.binaries`).
    pub binaries: Vec<Binary>,
    /// Per-CVE severities (Ubuntu's `database_specific.cves_map.cves`).
    pub cves: Vec<CveSeverity>,
}

/// A binary package built from an affected source package, at its fixed version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binary {
    /// `binary_name`.
    pub name: String,
    /// `binary_version`.
    pub version: String,
}

/// The severities of one CVE, as Ubuntu lists them in `cves_map`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CveSeverity {
    /// The CVE id.
    pub id: String,
    /// Its severities: CVSS vectors and the `Ubuntu` priority.
    pub severity: Vec<Severity>,
}

/// A version range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The range type.
    #[serde(rename = "type")]
    pub kind: RangeKind,
    /// The repository, for `GIT` ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The events, in the record's order. The first is always `introduced`.
    pub events: Vec<Event>,
}

/// The type of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeKind {
    /// Versions in the ecosystem's own ordering: the only type used for matching.
    Ecosystem,
    /// Semantic versions; kept, not matched.
    Semver,
    /// Git commits; kept, not matched.
    Git,
}

/// One event of a range. Serialized exactly as OSV writes it: `{"introduced": "0"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The vulnerability starts at this version; `0` means before every version.
    Introduced(String),
    /// The first version that is not affected.
    Fixed(String),
    /// The last affected version (inclusive).
    LastAffected(String),
    /// An upper limit on the range; `*` means none.
    Limit(String),
}

impl Event {
    /// The event's version string.
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }

    /// The OSV field name: `introduced`, `fixed`, `last_affected` or `limit`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Introduced(_) => "introduced",
            Event::Fixed(_) => "fixed",
            Event::LastAffected(_) => "last_affected",
            Event::Limit(_) => "limit",
        }
    }
}

/// One severity entry: a scoring type and its score.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Severity {
    /// The type (`CVSS_V3`, `Ubuntu`, …).
    #[serde(rename = "type")]
    pub kind: SeverityKind,
    /// The score: a CVSS vector string, or a priority word.
    pub score: String,
}

/// A severity type, as named by the OSV schema.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum SeverityKind {
    /// `CVSS_V2`.
    CvssV2,
    /// `CVSS_V3` (3.0 and 3.1 vectors).
    CvssV3,
    /// `CVSS_V4`.
    CvssV4,
    /// `Ubuntu`: an Ubuntu priority word.
    Ubuntu,
    /// Any other type, verbatim.
    Other(String),
}

impl SeverityKind {
    /// `true` for the CVSS types, whose score is a vector to be scored.
    pub fn is_cvss(&self) -> bool {
        matches!(
            self,
            SeverityKind::CvssV2 | SeverityKind::CvssV3 | SeverityKind::CvssV4
        )
    }

    /// The OSV name.
    pub fn as_str(&self) -> &str {
        match self {
            SeverityKind::CvssV2 => "CVSS_V2",
            SeverityKind::CvssV3 => "CVSS_V3",
            SeverityKind::CvssV4 => "CVSS_V4",
            SeverityKind::Ubuntu => "Ubuntu",
            SeverityKind::Other(s) => s,
        }
    }
}

impl From<String> for SeverityKind {
    fn from(s: String) -> SeverityKind {
        match s.as_str() {
            "CVSS_V2" => SeverityKind::CvssV2,
            "CVSS_V3" => SeverityKind::CvssV3,
            "CVSS_V4" => SeverityKind::CvssV4,
            "Ubuntu" => SeverityKind::Ubuntu,
            _ => SeverityKind::Other(s),
        }
    }
}

impl From<SeverityKind> for String {
    fn from(k: SeverityKind) -> String {
        k.as_str().to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_osv_writes_them() {
        let events = vec![
            Event::Introduced("0".into()),
            Event::Fixed("1:2.0-1".into()),
            Event::LastAffected("1.9".into()),
            Event::Limit("*".into()),
        ];
        assert_eq!(
            serde_json::to_string(&events).unwrap(),
            r#"[{"introduced":"0"},{"fixed":"1:2.0-1"},{"last_affected":"1.9"},{"limit":"*"}]"#
        );
    }

    #[test]
    fn severities_serialize_with_the_osv_type_names() {
        let s = Severity {
            kind: SeverityKind::CvssV4,
            score: "CVSS:4.0/AV:N".into(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"}"#
        );
        let other: Severity = serde_json::from_str(r#"{"type":"X","score":"1"}"#).unwrap();
        assert_eq!(other.kind, SeverityKind::Other("X".into()));
        assert!(!other.kind.is_cvss());
        assert!(SeverityKind::CvssV2.is_cvss());
    }
}
