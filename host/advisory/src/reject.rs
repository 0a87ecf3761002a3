//! What the parsers report: records they skipped, and documents they could not read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a record sits in its input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "at")]
pub enum Position {
    /// The whole document (a single OSV object, or a document that could not be read).
    Document,
    /// The element at this 0-based index of a JSON array.
    Index(usize),
    /// This 1-based line of a text file.
    Line(usize),
}

/// The input a record came from (the file or URL the caller named) and its place in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The file path or URL, exactly as the caller gave it.
    pub source: String,
    /// The record's place in that input.
    pub position: Position,
}

impl Location {
    /// A location in `source`.
    pub fn new(source: &str, position: Position) -> Location {
        Location {
            source: source.to_string(),
            position,
        }
    }
}

impl fmt::Display for Location {
    /// `file.json` for a whole document, `file.json[3]` for an array element,
    /// `file.csv:17` for a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Document => f.write_str(&self.source),
            Position::Index(i) => write!(f, "{}[{i}]", self.source),
            Position::Line(n) => write!(f, "{}:{n}", self.source),
        }
    }
}

/// A record a parser skipped, and why. The rest of its input was kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    /// Where the record was.
    pub location: Location,
    /// The record's id, when it had a readable one.
    pub id: Option<String>,
    /// What was wrong with it.
    pub reason: RejectReason,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{} ({id}): {}", self.location, self.reason),
            None => write!(f, "{}: {}", self.location, self.reason),
        }
    }
}

/// Why a record was skipped. Paths inside a record are written as in the OSV schema
/// (`affected[1].ranges[0].events[2]`).
#[derive(Clone, Debug, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum RejectReason {
    /// A whole document in a multi-document batch is not JSON (see
    /// [`crate::osv::parse_osv_documents`]).
    #[error("not JSON: {detail}")]
    NotJson {
        /// The JSON parser's message.
        detail: String,
    },
    /// An array element (or a whole document) that is not a JSON object.
    #[error("not a JSON object")]
    NotAnObject,
    /// No `id`, or an `id` that is not a non-empty string.
    #[error("no `id`")]
    MissingId,
    /// A required field is absent.
    #[error("`{field}` is missing")]
    MissingField {
        /// The field's path.
        field: String,
    },
    /// A field has the wrong JSON type, as the deserializer reports it.
    #[error("does not match the schema: {detail}")]
    Schema {
        /// The deserializer's message.
        detail: String,
    },
    /// A timestamp that no accepted format reads.
    #[error("`{field}` is not a timestamp: `{value}`")]
    BadTimestamp {
        /// The field's path.
        field: String,
        /// The text found.
        value: String,
    },
    /// A calendar date that is not `YYYY-MM-DD`.
    #[error("`{field}` is not a date (YYYY-MM-DD): `{value}`")]
    BadDate {
        /// The field's name.
        field: String,
        /// The text found.
        value: String,
    },
    /// A range whose first event is not `introduced` (or that has no events).
    #[error("`{range}` does not start with an `introduced` event")]
    RangeWithoutIntroduced {
        /// The range's path.
        range: String,
    },
    /// A range type other than `ECOSYSTEM`, `SEMVER` or `GIT`.
    #[error("`{range}` has an unknown type `{kind}` (expected ECOSYSTEM, SEMVER or GIT)")]
    UnknownRangeType {
        /// The range's path.
        range: String,
        /// The type found.
        kind: String,
    },
    /// An event that does not hold exactly one of `introduced`, `fixed`, `last_affected`,
    /// `limit` with a string value.
    #[error(
        "`{event}` must hold exactly one of introduced, fixed, last_affected or limit, as a string"
    )]
    BadEvent {
        /// The event's path.
        event: String,
    },
    /// A range with both `fixed` and `last_affected` events, which the OSV schema forbids.
    #[error("`{range}` has both `fixed` and `last_affected` events")]
    FixedAndLastAffected {
        /// The range's path.
        range: String,
    },
    /// An empty version string in an event or in `versions`.
    #[error("`{field}` is an empty version")]
    EmptyVersion {
        /// The field's path.
        field: String,
    },
    /// An affected entry whose package has no ecosystem or no name.
    #[error("`{field}` is missing or empty")]
    BadPackage {
        /// The missing field's path.
        field: String,
    },
    /// A second record with an id already seen; the one with the latest `modified` is kept.
    #[error("duplicate of the record kept at {kept}")]
    Duplicate {
        /// Where the kept record is.
        kept: String,
    },
    /// A text that is not a CVE id (`CVE-YYYY-NNNN`).
    #[error("`{value}` is not a CVE id")]
    BadCveId {
        /// The text found.
        value: String,
    },
    /// A CSV row with the wrong number of fields.
    #[error("expected {expected} comma-separated fields, found {found}")]
    FieldCount {
        /// How many the header names.
        expected: usize,
        /// How many the row has.
        found: usize,
    },
    /// A number that should be a probability between 0 and 1.
    #[error("`{field}` is not a number between 0 and 1: `{value}`")]
    BadProbability {
        /// The column name.
        field: String,
        /// The text found.
        value: String,
    },
}

/// A whole document that cannot be read. Nothing from it is kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON at all.
    #[error("{location}: not JSON: {detail}")]
    NotJson {
        /// The file or URL.
        location: String,
        /// The JSON parser's message.
        detail: String,
    },
    /// JSON, but neither an OSV object nor an array of them.
    #[error("{location}: expected an OSV object or an array of them, found {found}")]
    NotOsv {
        /// The file or URL.
        location: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// JSON, but not a CISA KEV catalogue.
    #[error("{location}: not a CISA KEV catalogue: {detail}")]
    NotKev {
        /// The file or URL.
        location: String,
        /// What is missing or wrong.
        detail: String,
    },
    /// Not an EPSS CSV file (missing or wrong header lines, or not UTF-8).
    #[error("{location}: not an EPSS CSV file: {detail}")]
    NotEpss {
        /// The file or URL.
        location: String,
        /// What is missing or wrong.
        detail: String,
    },
}

/// The JSON type name of a value, for messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_the_source_and_the_place() {
        assert_eq!(
            Location::new("a.json", Position::Document).to_string(),
            "a.json"
        );
        assert_eq!(
            Location::new("a.json", Position::Index(3)).to_string(),
            "a.json[3]"
        );
        assert_eq!(
            Location::new("e.csv", Position::Line(17)).to_string(),
            "e.csv:17"
        );
    }

    #[test]
    fn a_rejection_reads_as_location_id_and_reason() {
        let r = Rejected {
            location: Location::new("dsa.json", Position::Index(2)),
            id: Some("DSA-1-1".to_string()),
            reason: RejectReason::RangeWithoutIntroduced {
                range: "affected[0].ranges[0]".to_string(),
            },
        };
        assert_eq!(
            r.to_string(),
            "dsa.json[2] (DSA-1-1): `affected[0].ranges[0]` does not start with an `introduced` event"
        );
    }
}
