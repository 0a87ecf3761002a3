//! FIRST EPSS scores, from the daily CSV file (decompressed by the caller).
//!
//! The file is:
//!
//! ```text
//! #model_version:v2025.03.14,score_date:2025-03-15T12:55:00Z
//! cve,epss,percentile
//! CVE-1999-0001,0.01141,0.77754
//! ```
//!
//! Both values of the first line are required and kept; the second line must be that
//! header. Each row is checked on its own: a row without exactly three fields, with a
//! malformed CVE id, with a score or percentile that is not a number in [0, 1], or
//! repeating a CVE already read, is rejected with its line number and the rest kept.
//! Blank lines are skipped; `\r\n` line ends are accepted.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cve::is_cve_id;
use crate::reject::{DocumentError, Location, Position, RejectReason, Rejected};
use crate::timestamp::parse_timestamp;

const HEADER: [&str; 3] = ["cve", "epss", "percentile"];

/// One day's EPSS scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpssFeed {
    /// `model_version` from the first line (`v2025.03.14`).
    pub model_version: String,
    /// `score_date` from the first line. An EPSS escalation starts its clock here.
    pub score_date: DateTime<Utc>,
    /// The rows kept, in file order.
    pub rows: Vec<EpssRow>,
}

/// One CVE's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpssRow {
    /// The CVE id.
    pub cve: String,
    /// Probability of exploitation in the next 30 days.
    pub epss: f64,
    /// Percentile of that probability among all scored CVEs.
    pub percentile: f64,
}

/// Parse an EPSS CSV file read from `location` (a file or URL, used in messages).
///
/// Errors only when the input is not UTF-8 or its first two lines are not the model line
/// and the header.
pub fn parse_epss(
    input: &[u8],
    location: &str,
) -> Result<(EpssFeed, Vec<Rejected>), DocumentError> {
    let not_epss = |detail: String| DocumentError::NotEpss {
        location: location.to_string(),
        detail,
    };
    let text = std::str::from_utf8(input).map_err(|e| not_epss(format!("not UTF-8: {e}")))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let (model_version, score_date) =
        parse_model_line(lines.next().unwrap_or_default()).map_err(&not_epss)?;
    let header = lines.next().unwrap_or_default();
    if header.trim().split(',').map(str::trim).ne(HEADER) {
        return Err(not_epss(format!(
            "line 2 must be `cve,epss,percentile`, found `{header}`"
        )));
    }
    let (rows, rejected) = parse_rows(lines, location);
    Ok((
        EpssFeed {
            model_version,
            score_date,
            rows,
        },
        rejected,
    ))
}

/// `#model_version:v2025.03.14,score_date:2025-03-15T12:55:00Z`.
fn parse_model_line(line: &str) -> Result<(String, DateTime<Utc>), String> {
    let body = line
        .trim()
        .strip_prefix('#')
        .ok_or_else(|| format!("line 1 must start with `#model_version:`, found `{line}`"))?;
    let fields: HashMap<&str, &str> = body
        .split(',')
        .filter_map(|f| f.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let model = fields
        .get("model_version")
        .filter(|v| !v.is_empty())
        .ok_or("line 1 has no `model_version`")?;
    let date_text = fields
        .get("score_date")
        .ok_or("line 1 has no `score_date`")?;
    let date = parse_timestamp(date_text)
        .ok_or_else(|| format!("`score_date` is not a timestamp: `{date_text}`"))?;
    Ok((model.to_string(), date))
}

fn parse_rows<'a>(
    lines: impl Iterator<Item = &'a str>,
    location: &str,
) -> (Vec<EpssRow>, Vec<Rejected>) {
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in lines.enumerate() {
        let number = i + 3;
        if line.trim().is_empty() {
            continue;
        }
        let result = parse_row(line).and_then(|row| match seen.get(&row.cve) {
            Some(&first) => Err(RejectReason::Duplicate {
                kept: Location::new(location, Position::Line(first)).to_string(),
            }),
            None => Ok(row),
        });
        match result {
            Ok(row) => {
                seen.insert(row.cve.clone(), number);
                rows.push(row);
            }
            Err(reason) => rejected.push(Rejected {
                location: Location::new(location, Position::Line(number)),
                id: line
                    .split(',')
                    .next()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                reason,
            }),
        }
    }
    (rows, rejected)
}

fn parse_row(line: &str) -> Result<EpssRow, RejectReason> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [cve, epss, percentile] = fields.as_slice() else {
        return Err(RejectReason::FieldCount {
            expected: HEADER.len(),
            found: fields.len(),
        });
    };
    if !is_cve_id(cve) {
        return Err(RejectReason::BadCveId {
            value: cve.to_string(),
        });
    }
    Ok(EpssRow {
        cve: cve.to_string(),
        epss: probability("epss", epss)?,
        percentile: probability("percentile", percentile)?,
    })
}

fn probability(field: &str, text: &str) -> Result<f64, RejectReason> {
    text.parse::<f64>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| RejectReason::BadProbability {
            field: field.into(),
            value: text.into(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_or_wrong_header_lines_are_document_errors() {
        let err = |input: &str| {
            parse_epss(input.as_bytes(), "e.csv")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("cve,epss,percentile\nCVE-2024-0001,0.1,0.2\n"),
            "e.csv: not an EPSS CSV file: line 1 must start with `#model_version:`, found `cve,epss,percentile`"
        );
        assert_eq!(
            err("#score_date:2025-03-15T12:55:00Z\ncve,epss,percentile\n"),
            "e.csv: not an EPSS CSV file: line 1 has no `model_version`"
        );
        assert_eq!(
            err("#model_version:v1,score_date:tomorrow\ncve,epss,percentile\n"),
            "e.csv: not an EPSS CSV file: `score_date` is not a timestamp: `tomorrow`"
        );
        assert_eq!(
            err("#model_version:v1,score_date:2025-03-15T12:55:00Z\ncve,score\n"),
            "e.csv: not an EPSS CSV file: line 2 must be `cve,epss,percentile`, found `cve,score`"
        );
        assert_eq!(
            parse_epss(&[b'#', 0xff], "e.csv").unwrap_err().to_string(),
            "e.csv: not an EPSS CSV file: not UTF-8: invalid utf-8 sequence of 1 bytes from index 1"
        );
    }
}
