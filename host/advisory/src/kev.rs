//! CISA Known Exploited Vulnerabilities (KEV) catalogue.
//!
//! The catalogue is JSON: `{"catalogVersion", "dateReleased", "vulnerabilities": [...]}`.
//! Each entry needs a valid `cveID`, a `dateAdded` and a `dueDate` (`YYYY-MM-DD`);
//! `knownRansomwareCampaignUse` is `Known` or `Unknown`; the text fields may be absent.
//! A malformed entry is rejected and the rest kept; a second entry with the same CVE is
//! rejected as a duplicate.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cve::is_cve_id;
use crate::reject::{json_type, DocumentError, Location, Position, RejectReason, Rejected};
use crate::timestamp::{parse_date, parse_timestamp};

/// A KEV catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KevCatalog {
    /// `catalogVersion` (`2025.03.14`).
    pub catalog_version: String,
    /// `dateReleased`.
    pub date_released: DateTime<Utc>,
    /// The entries, in catalogue order.
    pub entries: Vec<KevEntry>,
}

/// One known exploited vulnerability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KevEntry {
    /// `cveID`.
    pub cve_id: String,
    /// `vendorProject`.
    pub vendor_project: String,
    /// `product`.
    pub product: String,
    /// `vulnerabilityName`.
    pub vulnerability_name: String,
    /// `dateAdded`: when CISA added it. An escalation to critical starts its clock here.
    pub date_added: NaiveDate,
    /// `shortDescription`.
    pub short_description: String,
    /// `requiredAction`.
    pub required_action: String,
    /// `dueDate`: CISA's deadline for federal agencies.
    pub due_date: NaiveDate,
    /// `knownRansomwareCampaignUse` is `Known`.
    pub known_ransomware: bool,
    /// `notes`.
    pub notes: String,
    /// `cwes`.
    pub cwes: Vec<String>,
}

/// A CVE that was in an earlier catalogue and is not in the current one. The store keeps
/// it as a tombstone and never deletes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KevTombstone {
    /// The CVE that disappeared.
    pub cve_id: String,
    /// The `dateReleased` of the first catalogue without it.
    pub removed_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCatalog {
    catalog_version: Option<String>,
    date_released: Option<String>,
    vulnerabilities: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(rename = "cveID")]
    cve_id: Option<String>,
    vendor_project: Option<String>,
    product: Option<String>,
    vulnerability_name: Option<String>,
    date_added: Option<String>,
    short_description: Option<String>,
    required_action: Option<String>,
    due_date: Option<String>,
    known_ransomware_campaign_use: Option<String>,
    notes: Option<String>,
    cwes: Option<Vec<String>>,
}

/// Parse a KEV catalogue read from `location` (a file or URL, used in messages).
///
/// Errors only when the document is not JSON, or lacks `catalogVersion`, a readable
/// `dateReleased` or the `vulnerabilities` array.
pub fn parse_kev(
    input: &[u8],
    location: &str,
) -> Result<(KevCatalog, Vec<Rejected>), DocumentError> {
    let not_kev = |detail: String| DocumentError::NotKev {
        location: location.to_string(),
        detail,
    };
    let value: Value = serde_json::from_slice(input).map_err(|e| DocumentError::NotJson {
        location: location.to_string(),
        detail: e.to_string(),
    })?;
    if !value.is_object() {
        return Err(not_kev(format!(
            "expected an object, found {}",
            json_type(&value)
        )));
    }
    let raw: RawCatalog = serde_json::from_value(value).map_err(|e| not_kev(e.to_string()))?;
    let catalog_version = raw
        .catalog_version
        .ok_or_else(|| not_kev("`catalogVersion` is missing".into()))?;
    let released_text = raw
        .date_released
        .ok_or_else(|| not_kev("`dateReleased` is missing".into()))?;
    let date_released = parse_timestamp(&released_text).ok_or_else(|| {
        not_kev(format!(
            "`dateReleased` is not a timestamp: `{released_text}`"
        ))
    })?;
    let items = raw
        .vulnerabilities
        .ok_or_else(|| not_kev("`vulnerabilities` is missing".into()))?;
    let (entries, rejected) = parse_entries(items, location);
    Ok((
        KevCatalog {
            catalog_version,
            date_released,
            entries,
        },
        rejected,
    ))
}

fn parse_entries(items: Vec<Value>, location: &str) -> (Vec<KevEntry>, Vec<Rejected>) {
    let mut entries = Vec::new();
    let mut rejected = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = Location::new(location, Position::Index(i));
        let id = item
            .get("cveID")
            .and_then(Value::as_str)
            .map(str::to_string);
        let reason = match convert_entry(item) {
            Ok(entry) => match seen.get(&entry.cve_id) {
                Some(&first) => RejectReason::Duplicate {
                    kept: Location::new(location, Position::Index(first)).to_string(),
                },
                None => {
                    seen.insert(entry.cve_id.clone(), i);
                    entries.push(entry);
                    continue;
                }
            },
            Err(reason) => reason,
        };
        rejected.push(Rejected {
            location: at,
            id,
            reason,
        });
    }
    (entries, rejected)
}

fn convert_entry(item: Value) -> Result<KevEntry, RejectReason> {
    if !item.is_object() {
        return Err(RejectReason::NotAnObject);
    }
    let raw: RawEntry = serde_json::from_value(item).map_err(|e| RejectReason::Schema {
        detail: e.to_string(),
    })?;
    let cve_id = raw.cve_id.ok_or_else(|| RejectReason::MissingField {
        field: "cveID".into(),
    })?;
    if !is_cve_id(&cve_id) {
        return Err(RejectReason::BadCveId { value: cve_id });
    }
    Ok(KevEntry {
        date_added: date("dateAdded", raw.date_added)?,
        due_date: date("dueDate", raw.due_date)?,
        cve_id,
        vendor_project: raw.vendor_project.unwrap_or_default(),
        product: raw.product.unwrap_or_default(),
        vulnerability_name: raw.vulnerability_name.unwrap_or_default(),
        short_description: raw.short_description.unwrap_or_default(),
        required_action: raw.required_action.unwrap_or_default(),
        known_ransomware: raw
            .known_ransomware_campaign_use
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("known")),
        notes: raw.notes.unwrap_or_default(),
        cwes: raw.cwes.unwrap_or_default(),
    })
}

fn date(field: &str, text: Option<String>) -> Result<NaiveDate, RejectReason> {
    let text = text.ok_or_else(|| RejectReason::MissingField {
        field: field.into(),
    })?;
    parse_date(&text).ok_or_else(|| RejectReason::BadDate {
        field: field.into(),
        value: text,
    })
}

/// The CVEs of `previous` (the ids known before) that are not in `current`, sorted, each
/// with `removed_at` = `current.date_released`.
pub fn kev_removed<'a>(
    previous: impl IntoIterator<Item = &'a str>,
    current: &KevCatalog,
) -> Vec<KevTombstone> {
    let now: BTreeSet<&str> = current.entries.iter().map(|e| e.cve_id.as_str()).collect();
    previous
        .into_iter()
        .filter(|id| !now.contains(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|id| KevTombstone {
            cve_id: id.to_string(),
            removed_at: current.date_released,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_catalogue_without_its_header_fields_is_not_kev() {
        let err = parse_kev(br#"{"vulnerabilities":[]}"#, "kev.json").unwrap_err();
        assert_eq!(
            err,
            DocumentError::NotKev {
                location: "kev.json".into(),
                detail: "`catalogVersion` is missing".into()
            }
        );
        let err = parse_kev(
            br#"{"catalogVersion":"1","dateReleased":"soon","vulnerabilities":[]}"#,
            "kev.json",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "kev.json: not a CISA KEV catalogue: `dateReleased` is not a timestamp: `soon`"
        );
        assert!(matches!(
            parse_kev(b"[]", "kev.json").unwrap_err(),
            DocumentError::NotKev { .. }
        ));
        assert!(matches!(
            parse_kev(b"nope", "kev.json").unwrap_err(),
            DocumentError::NotJson { .. }
        ));
    }
}
