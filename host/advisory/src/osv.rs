//! OSV (schema 1.x) parsing, as Debian (DSA, DLA, DEBIAN-CVE) and Ubuntu (USN) publish it.
//!
//! Lenient where the feeds differ (unknown fields are ignored; timestamps with or without
//! fractional seconds or `Z`), strict where matching depends on it. A record is rejected,
//! and the rest of the input kept, when:
//! - it is not a JSON object, or has no string `id`;
//! - `modified` is missing, or `modified`/`published`/`withdrawn` is not a timestamp;
//! - a field has the wrong JSON type;
//! - an affected package has no ecosystem or no name;
//! - a range has a type other than `ECOSYSTEM`, `SEMVER` or `GIT`, does not start with an
//!   `introduced` event, has an event that is not exactly one of
//!   `introduced`/`fixed`/`last_affected`/`limit` with a string value, or has both `fixed`
//!   and `last_affected` events;
//! - a version (in an event or in `versions`) is empty;
//! - Ubuntu's `database_specific.cves_map` is malformed (it carries severities, so dropping
//!   it silently could lower a class);
//! - another record in the same input has the same id and a later (or equal, when it came
//!   first) `modified`.
//!
//! Kept with a note in [`Advisory::notes`], not rejected: `SEMVER` and `GIT` ranges (kept in
//! the model, not used for matching) and affected entries without a package.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

use crate::cve::cve_in;
use crate::ecosystem::Ecosystem;
use crate::model::{
    Advisory, Affected, Binary, CveSeverity, Event, Range, RangeKind, Severity, SeverityKind,
    Source,
};
use crate::reject::{json_type, DocumentError, Location, Position, RejectReason, Rejected};
use crate::timestamp::parse_timestamp;
use crate::vendor::{VendorScheme, VendorSeverity};

/// Parse one OSV document: a single advisory object or a JSON array of them.
///
/// Every advisory gets a copy of `source`; rejections are located in `source.location`
/// (the whole document for a single object, the array index otherwise). Only a document
/// that is not JSON, or is JSON of another shape, is an error.
pub fn parse_osv(
    input: &[u8],
    source: &Source,
) -> Result<(Vec<Advisory>, Vec<Rejected>), DocumentError> {
    let mut batch = Batch::default();
    batch.add_document(input, source)?;
    Ok(batch.finish())
}

/// Parse several OSV documents (for example every file of a directory, or of an archive)
/// as one batch.
///
/// A document that cannot be read does not stop the others: it is reported as a rejection
/// at [`Position::Document`] with reason [`RejectReason::NotJson`] (not JSON) or
/// [`RejectReason::Schema`] (JSON of another shape). Duplicate ids are resolved across the
/// whole batch: the record with the latest `modified` is kept.
pub fn parse_osv_documents<'a>(
    documents: impl IntoIterator<Item = (&'a [u8], Source)>,
) -> (Vec<Advisory>, Vec<Rejected>) {
    let mut batch = Batch::default();
    for (input, source) in documents {
        if let Err(err) = batch.add_document(input, &source) {
            batch.rejected.push(Rejected {
                location: Location::new(&source.location, Position::Document),
                id: None,
                reason: document_reason(err),
            });
        }
    }
    batch.finish()
}

fn document_reason(err: DocumentError) -> RejectReason {
    match err {
        DocumentError::NotJson { detail, .. } => RejectReason::NotJson { detail },
        other => RejectReason::Schema {
            detail: other.to_string(),
        },
    }
}

/// Records parsed so far, with duplicate ids resolved as they arrive.
#[derive(Default)]
struct Batch {
    kept: Vec<(Location, Advisory)>,
    by_id: HashMap<String, usize>,
    rejected: Vec<Rejected>,
}

impl Batch {
    fn add_document(&mut self, input: &[u8], source: &Source) -> Result<(), DocumentError> {
        let value: Value = serde_json::from_slice(input).map_err(|e| DocumentError::NotJson {
            location: source.location.clone(),
            detail: e.to_string(),
        })?;
        match value {
            Value::Object(_) => self.add_record(value, source, Position::Document),
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    self.add_record(item, source, Position::Index(i));
                }
            }
            other => {
                return Err(DocumentError::NotOsv {
                    location: source.location.clone(),
                    found: json_type(&other),
                })
            }
        }
        Ok(())
    }

    fn add_record(&mut self, value: Value, source: &Source, position: Position) {
        let location = Location::new(&source.location, position);
        match convert(value, source) {
            Ok(advisory) => self.keep(location, advisory),
            Err(Rejection { id, reason }) => self.rejected.push(Rejected {
                location,
                id,
                reason,
            }),
        }
    }

    /// Keep `advisory` unless a record with the same id and a later or equal `modified` is
    /// already kept; the loser is rejected as a duplicate.
    fn keep(&mut self, location: Location, advisory: Advisory) {
        let Some(&slot) = self.by_id.get(&advisory.id) else {
            self.by_id.insert(advisory.id.clone(), self.kept.len());
            self.kept.push((location, advisory));
            return;
        };
        let Some(existing) = self.kept.get_mut(slot) else {
            return;
        };
        let (loser_location, loser_id, kept_at) = if advisory.modified > existing.1.modified {
            let old = std::mem::replace(existing, (location, advisory));
            (old.0, old.1.id, existing.0.to_string())
        } else {
            (location, advisory.id, existing.0.to_string())
        };
        self.rejected.push(Rejected {
            location: loser_location,
            id: Some(loser_id),
            reason: RejectReason::Duplicate { kept: kept_at },
        });
    }

    fn finish(self) -> (Vec<Advisory>, Vec<Rejected>) {
        (
            self.kept.into_iter().map(|(_, a)| a).collect(),
            self.rejected,
        )
    }
}

/// Why one record was skipped.
struct Rejection {
    id: Option<String>,
    reason: RejectReason,
}

#[derive(Deserialize)]
struct RawAdvisory {
    schema_version: Option<String>,
    modified: Option<String>,
    published: Option<String>,
    withdrawn: Option<String>,
    aliases: Option<Vec<String>>,
    upstream: Option<Vec<String>>,
    related: Option<Vec<String>>,
    summary: Option<String>,
    details: Option<String>,
    severity: Option<Vec<RawSeverity>>,
    affected: Option<Vec<RawAffected>>,
    references: Option<Vec<RawReference>>,
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    package: Option<RawPackage>,
    severity: Option<Vec<RawSeverity>>,
    ranges: Option<Vec<RawRange>>,
    versions: Option<Vec<String>>,
    ecosystem_specific: Option<Value>,
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: Option<String>,
    name: Option<String>,
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: Option<String>,
    repo: Option<String>,
    events: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct RawReference {
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawCvesMap {
    cves: Vec<RawCve>,
}

#[derive(Deserialize)]
struct RawCve {
    id: String,
    severity: Option<Vec<RawSeverity>>,
}

#[derive(Deserialize)]
struct RawBinary {
    binary_name: String,
    binary_version: Option<String>,
}

fn convert(value: Value, source: &Source) -> Result<Advisory, Rejection> {
    if !value.is_object() {
        return Err(Rejection {
            id: None,
            reason: RejectReason::NotAnObject,
        });
    }
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or(Rejection {
            id: None,
            reason: RejectReason::MissingId,
        })?;
    let reject = |reason| Rejection {
        id: Some(id.clone()),
        reason,
    };
    let raw: RawAdvisory = serde_json::from_value(value).map_err(|e| {
        reject(RejectReason::Schema {
            detail: e.to_string(),
        })
    })?;
    convert_raw(&id, raw, source).map_err(reject)
}

fn convert_raw(id: &str, raw: RawAdvisory, source: &Source) -> Result<Advisory, RejectReason> {
    let modified = raw
        .modified
        .as_deref()
        .ok_or_else(|| RejectReason::MissingField {
            field: "modified".into(),
        })
        .and_then(|t| timestamp("modified", t))?;
    let published = optional_timestamp("published", raw.published.as_deref())?;
    let withdrawn = optional_timestamp("withdrawn", raw.withdrawn.as_deref())?;
    let mut notes = Vec::new();
    let mut affected = Vec::new();
    for (i, entry) in raw.affected.unwrap_or_default().into_iter().enumerate() {
        if let Some(a) = convert_affected(i, entry, &mut notes)? {
            affected.push(a);
        }
    }
    let aliases = raw.aliases.unwrap_or_default();
    let upstream = raw.upstream.unwrap_or_default();
    let related = raw.related.unwrap_or_default();
    let cves = collect_cves(id, [&aliases, &upstream, &related], &affected);
    let has_red_hat = affected
        .iter()
        .any(|a| matches!(a.ecosystem, Ecosystem::RedHat { .. }));
    let vendor_severity = vendor_in(raw.database_specific.as_ref(), has_red_hat)
        .or_else(|| red_hat_classification(raw.references.as_deref().unwrap_or_default()));
    Ok(Advisory {
        id: id.to_string(),
        schema_version: raw.schema_version,
        modified,
        published,
        withdrawn,
        aliases,
        upstream,
        related,
        cves,
        summary: raw.summary,
        details: raw.details,
        severity: severities(raw.severity),
        vendor_severity,
        affected,
        source: source.clone(),
        notes,
    })
}

fn timestamp(field: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, RejectReason> {
    parse_timestamp(text).ok_or_else(|| RejectReason::BadTimestamp {
        field: field.into(),
        value: text.into(),
    })
}

fn optional_timestamp(
    field: &str,
    text: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, RejectReason> {
    text.map(|t| timestamp(field, t)).transpose()
}

fn severities(raw: Option<Vec<RawSeverity>>) -> Vec<Severity> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|s| Severity {
            kind: SeverityKind::from(s.kind),
            score: s.score,
        })
        .collect()
}

fn convert_affected(
    i: usize,
    raw: RawAffected,
    notes: &mut Vec<String>,
) -> Result<Option<Affected>, RejectReason> {
    let Some(package) = raw.package else {
        notes.push(format!(
            "affected[{i}] has no package: kept out, not matched"
        ));
        return Ok(None);
    };
    let ecosystem = required_text(package.ecosystem, || {
        format!("affected[{i}].package.ecosystem")
    })?;
    let name = required_text(package.name, || format!("affected[{i}].package.name"))?;
    let ecosystem = Ecosystem::from(ecosystem);
    let mut ranges = Vec::new();
    for (j, range) in raw.ranges.unwrap_or_default().into_iter().enumerate() {
        let path = format!("affected[{i}].ranges[{j}]");
        let range = convert_range(&path, range)?;
        if range.kind != RangeKind::Ecosystem {
            notes.push(format!(
                "{path} is {:?}: kept, not used for matching",
                range.kind
            ));
        }
        ranges.push(range);
    }
    let versions = raw.versions.unwrap_or_default();
    if let Some(k) = versions.iter().position(|v| v.trim().is_empty()) {
        return Err(RejectReason::EmptyVersion {
            field: format!("affected[{i}].versions[{k}]"),
        });
    }
    let is_red_hat = matches!(ecosystem, Ecosystem::RedHat { .. });
    let vendor_severity = vendor_in(raw.ecosystem_specific.as_ref(), is_red_hat)
        .or_else(|| vendor_in(raw.database_specific.as_ref(), is_red_hat));
    Ok(Some(Affected {
        ecosystem,
        package: name,
        purl: package.purl,
        ranges,
        versions,
        severity: severities(raw.severity),
        vendor_severity,
        binaries: binaries(raw.ecosystem_specific.as_ref()),
        cves: cves_map(i, raw.database_specific.as_ref())?,
    }))
}

fn required_text(
    value: Option<String>,
    field: impl Fn() -> String,
) -> Result<String, RejectReason> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(RejectReason::BadPackage { field: field() }),
    }
}

fn convert_range(path: &str, raw: RawRange) -> Result<Range, RejectReason> {
    let kind = match raw.kind.as_deref() {
        Some("ECOSYSTEM") => RangeKind::Ecosystem,
        Some("SEMVER") => RangeKind::Semver,
        Some("GIT") => RangeKind::Git,
        Some(other) => {
            return Err(RejectReason::UnknownRangeType {
                range: path.into(),
                kind: other.into(),
            })
        }
        None => {
            return Err(RejectReason::MissingField {
                field: format!("{path}.type"),
            })
        }
    };
    let events = raw
        .events
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(k, e)| convert_event(&format!("{path}.events[{k}]"), e))
        .collect::<Result<Vec<_>, _>>()?;
    if !matches!(events.first(), Some(Event::Introduced(_))) {
        return Err(RejectReason::RangeWithoutIntroduced { range: path.into() });
    }
    let has = |f: fn(&Event) -> bool| events.iter().any(f);
    if has(|e| matches!(e, Event::Fixed(_))) && has(|e| matches!(e, Event::LastAffected(_))) {
        return Err(RejectReason::FixedAndLastAffected { range: path.into() });
    }
    Ok(Range {
        kind,
        repo: raw.repo,
        events,
    })
}

fn convert_event(path: &str, value: &Value) -> Result<Event, RejectReason> {
    let bad = || RejectReason::BadEvent { event: path.into() };
    let object = value.as_object().ok_or_else(bad)?;
    let mut found = ["introduced", "fixed", "last_affected", "limit"]
        .into_iter()
        .filter_map(|key| object.get(key).map(|v| (key, v)));
    let (Some((key, version)), None) = (found.next(), found.next()) else {
        return Err(bad());
    };
    let version = version.as_str().ok_or_else(bad)?;
    if version.trim().is_empty() {
        return Err(RejectReason::EmptyVersion {
            field: format!("{path}.{key}"),
        });
    }
    let version = version.to_string();
    Ok(match key {
        "introduced" => Event::Introduced(version),
        "fixed" => Event::Fixed(version),
        "last_affected" => Event::LastAffected(version),
        _ => Event::Limit(version),
    })
}

/// A vendor severity in an `ecosystem_specific` or `database_specific` object: `urgency`
/// (Debian), `priority` (Ubuntu), and `severity` (Red Hat) only for Red Hat records, since
/// other databases use that key for their own scales.
fn vendor_in(object: Option<&Value>, red_hat: bool) -> Option<VendorSeverity> {
    let object = object?.as_object()?;
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    if let Some(v) = text("urgency") {
        return Some(VendorSeverity::new(VendorScheme::DebianUrgency, v));
    }
    if let Some(v) = text("priority") {
        return Some(VendorSeverity::new(VendorScheme::UbuntuPriority, v));
    }
    text("severity")
        .filter(|_| red_hat)
        .map(|v| VendorSeverity::new(VendorScheme::RedHatSeverity, v))
}

/// Red Hat's converter states the rating only as a reference to
/// `https://access.redhat.com/security/updates/classification/#important`.
fn red_hat_classification(references: &[RawReference]) -> Option<VendorSeverity> {
    references.iter().find_map(|r| {
        let url = r.url.as_deref()?;
        let (_, rating) = url.split_once("access.redhat.com/security/updates/classification/#")?;
        (!rating.is_empty()).then(|| VendorSeverity::new(VendorScheme::RedHatSeverity, rating))
    })
}

/// Ubuntu's `ecosystem_specific.binaries`. Informational; malformed entries are skipped.
fn binaries(ecosystem_specific: Option<&Value>) -> Vec<Binary> {
    let Some(list) = ecosystem_specific.and_then(|v| v.get("binaries")) else {
        return Vec::new();
    };
    list.as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| RawBinary::deserialize(b).ok())
        .map(|b| Binary {
            name: b.binary_name,
            version: b.binary_version.unwrap_or_default(),
        })
        .collect()
}

/// Ubuntu's `database_specific.cves_map.cves`.
fn cves_map(i: usize, database_specific: Option<&Value>) -> Result<Vec<CveSeverity>, RejectReason> {
    let Some(map) = database_specific.and_then(|v| v.get("cves_map")) else {
        return Ok(Vec::new());
    };
    let raw = RawCvesMap::deserialize(map).map_err(|e| RejectReason::Schema {
        detail: format!("affected[{i}].database_specific.cves_map: {e}"),
    })?;
    Ok(raw
        .cves
        .into_iter()
        .map(|c| CveSeverity {
            id: c.id,
            severity: severities(c.severity),
        })
        .collect())
}

fn collect_cves(id: &str, lists: [&Vec<String>; 3], affected: &[Affected]) -> Vec<String> {
    let listed = lists.into_iter().flatten().map(String::as_str);
    let mapped = affected
        .iter()
        .flat_map(|a| a.cves.iter().map(|c| c.id.as_str()));
    std::iter::once(id)
        .chain(listed)
        .chain(mapped)
        .filter_map(cve_in)
        .map(str::to_string)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn source() -> Source {
        Source {
            kind: "test".into(),
            location: "mem.json".into(),
            fetched_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn reasons(input: &str) -> Vec<RejectReason> {
        let (_, rejected) = parse_osv(input.as_bytes(), &source()).unwrap();
        rejected.into_iter().map(|r| r.reason).collect()
    }

    fn record(affected: &str) -> String {
        format!(r#"{{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{affected}]}}"#)
    }

    #[test]
    fn a_document_that_is_not_json_is_an_error() {
        let err = parse_osv(b"<html>", &source()).unwrap_err();
        assert!(
            matches!(err, DocumentError::NotJson { ref location, .. } if location == "mem.json")
        );
        let err = parse_osv(b"42", &source()).unwrap_err();
        assert_eq!(
            err,
            DocumentError::NotOsv {
                location: "mem.json".into(),
                found: "a number"
            }
        );
    }

    #[test]
    fn event_shapes_are_checked() {
        let range = |events: &str| {
            record(&format!(
                r#"{{"package":{{"ecosystem":"Debian:12","name":"p"}},"ranges":[{{"type":"ECOSYSTEM","events":{events}}}]}}"#
            ))
        };
        let bad_event = |k: usize| RejectReason::BadEvent {
            event: format!("affected[0].ranges[0].events[{k}]"),
        };
        assert_eq!(
            reasons(&range(r#"[{"introduced":"0","fixed":"1"}]"#)),
            [bad_event(0)]
        );
        assert_eq!(
            reasons(&range(r#"[{"introduced":"0"},{"fixed":1}]"#)),
            [bad_event(1)]
        );
        assert_eq!(
            reasons(&range(r#"[{"introduced":"0"},"1.0"]"#)),
            [bad_event(1)]
        );
        assert_eq!(
            reasons(&range(r#"[{"introduced":"0"},{}]"#)),
            [bad_event(1)]
        );
        assert_eq!(
            reasons(&range(r#"[{"introduced":"0"},{"fixed":" "}]"#)),
            [RejectReason::EmptyVersion {
                field: "affected[0].ranges[0].events[1].fixed".into()
            }]
        );
        assert_eq!(
            reasons(&range(r#"[]"#)),
            [RejectReason::RangeWithoutIntroduced {
                range: "affected[0].ranges[0]".into()
            }]
        );
        assert_eq!(
            reasons(&range(
                r#"[{"introduced":"0"},{"fixed":"2"},{"introduced":"3"},{"last_affected":"4"}]"#
            )),
            [RejectReason::FixedAndLastAffected {
                range: "affected[0].ranges[0]".into()
            }]
        );
        // Unknown keys beside the one event key are tolerated.
        assert_eq!(
            reasons(&range(r#"[{"introduced":"0","note":"x"},{"limit":"*"}]"#)),
            []
        );
    }

    #[test]
    fn range_types_and_packages_are_checked() {
        assert_eq!(
            reasons(&record(
                r#"{"package":{"ecosystem":"Debian:12","name":"p"},"ranges":[{"type":"PEP440","events":[{"introduced":"0"}]}]}"#
            )),
            [RejectReason::UnknownRangeType {
                range: "affected[0].ranges[0]".into(),
                kind: "PEP440".into()
            }]
        );
        assert_eq!(
            reasons(&record(
                r#"{"package":{"ecosystem":"Debian:12","name":"p"},"ranges":[{"events":[{"introduced":"0"}]}]}"#
            )),
            [RejectReason::MissingField {
                field: "affected[0].ranges[0].type".into()
            }]
        );
        assert_eq!(
            reasons(&record(r#"{"package":{"ecosystem":"Debian:12"}}"#)),
            [RejectReason::BadPackage {
                field: "affected[0].package.name".into()
            }]
        );
        assert_eq!(
            reasons(&record(
                r#"{"package":{"ecosystem":"Debian:12","name":"p"},"versions":["1.0",""]}"#
            )),
            [RejectReason::EmptyVersion {
                field: "affected[0].versions[1]".into()
            }]
        );
    }

    #[test]
    fn git_ranges_and_packageless_entries_are_kept_with_a_note() {
        let input = record(
            r#"{"package":{"ecosystem":"Debian:12","name":"p"},"ranges":[{"type":"GIT","repo":"https://x","events":[{"introduced":"abc"},{"fixed":"def"}]},{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0-1"}]}]},{"ranges":[{"type":"GIT","repo":"https://x","events":[{"introduced":"abc"}]}]}"#,
        );
        let (advisories, rejected) = parse_osv(input.as_bytes(), &source()).unwrap();
        assert!(rejected.is_empty());
        let a = &advisories[0];
        assert_eq!(a.affected.len(), 1);
        assert_eq!(a.affected[0].ranges[0].kind, RangeKind::Git);
        assert_eq!(a.affected[0].ranges[0].repo.as_deref(), Some("https://x"));
        assert_eq!(
            a.notes,
            [
                "affected[0].ranges[0] is Git: kept, not used for matching",
                "affected[1] has no package: kept out, not matched"
            ]
        );
    }

    #[test]
    fn duplicates_keep_the_latest_modified() {
        let input = r#"[
            {"id":"D-1","modified":"2024-01-01T00:00:00Z","summary":"old"},
            {"id":"D-1","modified":"2024-02-01T00:00:00Z","summary":"new"},
            {"id":"D-1","modified":"2024-01-15T00:00:00Z","summary":"middle"}
        ]"#;
        let (advisories, rejected) = parse_osv(input.as_bytes(), &source()).unwrap();
        assert_eq!(advisories.len(), 1);
        assert_eq!(advisories[0].summary.as_deref(), Some("new"));
        let got: Vec<(String, RejectReason)> = rejected
            .into_iter()
            .map(|r| (r.location.to_string(), r.reason))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "mem.json[0]".to_string(),
                    RejectReason::Duplicate {
                        kept: "mem.json[1]".into()
                    }
                ),
                (
                    "mem.json[2]".to_string(),
                    RejectReason::Duplicate {
                        kept: "mem.json[1]".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn vendor_severities_are_read_from_the_documented_places() {
        let input = r#"[
          {"id":"DEBIAN-CVE-2024-0001","modified":"2024-01-01T00:00:00Z",
           "affected":[{"package":{"ecosystem":"Debian:12","name":"p"},"ecosystem_specific":{"urgency":"low*"},"database_specific":{"urgency":"high"}}]},
          {"id":"DSA-1-1","modified":"2024-01-01T00:00:00Z","database_specific":{"urgency":"medium"},
           "affected":[{"package":{"ecosystem":"Debian:12","name":"p"},"database_specific":{"urgency":"high**"}}]},
          {"id":"USN-1-1","modified":"2024-01-01T00:00:00Z",
           "affected":[{"package":{"ecosystem":"Ubuntu:22.04:LTS","name":"p"},"ecosystem_specific":{"priority":"high"}}]},
          {"id":"RHSA-2024:1","modified":"2024-01-01T00:00:00Z",
           "references":[{"type":"ARTICLE","url":"https://access.redhat.com/security/updates/classification/#important"}],
           "affected":[{"package":{"ecosystem":"Red Hat:enterprise_linux:9::baseos","name":"p"},"database_specific":{"severity":"Moderate"}}]},
          {"id":"GHSA-x","modified":"2024-01-01T00:00:00Z","database_specific":{"severity":"HIGH"},
           "affected":[{"package":{"ecosystem":"npm","name":"p"},"database_specific":{"severity":"HIGH"}}]}
        ]"#;
        let (a, rejected) = parse_osv(input.as_bytes(), &source()).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        use VendorScheme::*;
        let v = |s, x: &str| Some(VendorSeverity::new(s, x));
        assert_eq!(a[0].affected[0].vendor_severity, v(DebianUrgency, "low*"));
        assert_eq!(a[0].vendor_severity, None);
        assert_eq!(a[1].vendor_severity, v(DebianUrgency, "medium"));
        assert_eq!(a[1].affected[0].vendor_severity, v(DebianUrgency, "high**"));
        assert_eq!(a[2].affected[0].vendor_severity, v(UbuntuPriority, "high"));
        assert_eq!(a[3].vendor_severity, v(RedHatSeverity, "important"));
        assert_eq!(
            a[3].affected[0].vendor_severity,
            v(RedHatSeverity, "Moderate")
        );
        assert_eq!(a[4].vendor_severity, None);
        assert_eq!(a[4].affected[0].vendor_severity, None);
    }

    #[test]
    fn cve_ids_are_collected_and_normalised() {
        let input = r#"{"id":"DEBIAN-CVE-2024-0001","modified":"2024-01-01T00:00:00Z",
            "aliases":["GHSA-aaaa"],"upstream":["CVE-2024-0001","UBUNTU-CVE-2023-9999"],
            "related":["CVE-2022-1111","USN-1-1"]}"#;
        let (a, _) = parse_osv(input.as_bytes(), &source()).unwrap();
        assert_eq!(
            a[0].cves,
            ["CVE-2022-1111", "CVE-2023-9999", "CVE-2024-0001"]
        );
    }

    #[test]
    fn the_batch_helper_reports_unreadable_documents_and_keeps_the_rest() {
        let good = br#"{"id":"A-1","modified":"2024-01-01T00:00:00Z"}"#;
        let mut s2 = source();
        s2.location = "broken.json".into();
        let mut s3 = source();
        s3.location = "string.json".into();
        let (advisories, rejected) = parse_osv_documents([
            (&good[..], source()),
            (&b"{not json"[..], s2),
            (&b"\"x\""[..], s3),
        ]);
        assert_eq!(advisories.len(), 1);
        assert_eq!(rejected.len(), 2);
        assert_eq!(rejected[0].location.to_string(), "broken.json");
        assert!(matches!(rejected[0].reason, RejectReason::NotJson { .. }));
        assert_eq!(
            rejected[1].reason,
            RejectReason::Schema {
                detail: "string.json: expected an OSV object or an array of them, found a string"
                    .into()
            }
        );
    }
}
