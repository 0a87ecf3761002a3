//! Parsing a vector string into a [`Vector`] of a known [`Version`].

use std::fmt;
use std::str::FromStr;

use crate::v3::{self, Roundup};
use crate::{v4, CvssError, Score};

/// A CVSS version this crate scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// CVSS v3.0, vectors starting `CVSS:3.0/`.
    V3_0,
    /// CVSS v3.1, vectors starting `CVSS:3.1/`.
    V3_1,
    /// CVSS v4.0, vectors starting `CVSS:4.0/`.
    V4_0,
}

impl Version {
    /// The label a vector of this version starts with, e.g. `CVSS:3.1`.
    pub fn prefix(self) -> &'static str {
        match self {
            Version::V3_0 => "CVSS:3.0",
            Version::V3_1 => "CVSS:3.1",
            Version::V4_0 => "CVSS:4.0",
        }
    }
}

impl fmt::Display for Version {
    /// The version number alone: `3.0`, `3.1` or `4.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V3_0 => "3.0",
            Version::V3_1 => "3.1",
            Version::V4_0 => "4.0",
        })
    }
}

/// A CVSS vector string that follows its specification, reduced to what its base score needs.
///
/// Optional metrics (temporal or threat, environmental, supplemental) are checked while
/// parsing and then dropped: [`Vector::base_score`] is the base score whatever else the
/// vector carries. For v4.0 that is CVSS-B, the score with Threat and Environmental metrics
/// Not Defined, even when the vector sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vector {
    pub(crate) parsed: Parsed,
}

/// The base metrics of a vector, by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed {
    V3_0(v3::Base),
    V3_1(v3::Base),
    V4_0(v4::Base),
}

impl Vector {
    /// The CVSS version the vector's prefix names.
    pub fn version(&self) -> Version {
        match self.parsed {
            Parsed::V3_0(_) => Version::V3_0,
            Parsed::V3_1(_) => Version::V3_1,
            Parsed::V4_0(_) => Version::V4_0,
        }
    }

    /// The base score, by the equations of the vector's version (CVSS-B for v4.0).
    pub fn base_score(&self) -> Score {
        match &self.parsed {
            Parsed::V3_0(base) => base.score(Roundup::V3_0),
            Parsed::V3_1(base) => base.score(Roundup::V3_1),
            Parsed::V4_0(base) => base.score(),
        }
    }
}

impl FromStr for Vector {
    type Err = CvssError;

    /// The same as [`parse`].
    fn from_str(vector: &str) -> Result<Vector, CvssError> {
        parse(vector)
    }
}

/// Parses a CVSS v3.0, v3.1 or v4.0 vector string, strictly by its specification.
///
/// The string must start with `CVSS:3.0/`, `CVSS:3.1/` or `CVSS:4.0/` and carry every base
/// metric once, with known metric names and values (case-sensitive) and no empty component;
/// surrounding whitespace is not accepted. Optional metrics are accepted when valid. v3.x
/// metrics may come in any order (v3.1 section 6); v4.0 metrics must follow Table 23.
pub fn parse(vector: &str) -> Result<Vector, CvssError> {
    if vector.is_empty() {
        return Err(CvssError::Empty);
    }
    let (prefix, components) = match vector.split_once('/') {
        Some((prefix, components)) => (prefix, Some(components)),
        None => (vector, None),
    };
    let parsed = match version_of(prefix, vector)? {
        version @ Version::V3_0 => {
            let values = v3::GRAMMAR.base_values(version, components, vector)?;
            Parsed::V3_0(v3::Base::from_values(values))
        }
        version @ Version::V3_1 => {
            let values = v3::GRAMMAR.base_values(version, components, vector)?;
            Parsed::V3_1(v3::Base::from_values(values))
        }
        version @ Version::V4_0 => {
            let values = v4::GRAMMAR.base_values(version, components, vector)?;
            Parsed::V4_0(v4::Base::from_values(values))
        }
    };
    Ok(Vector { parsed })
}

/// The version a `CVSS:<version>` label names.
fn version_of(prefix: &str, vector: &str) -> Result<Version, CvssError> {
    [Version::V3_0, Version::V3_1, Version::V4_0]
        .into_iter()
        .find(|version| version.prefix() == prefix)
        .ok_or_else(|| {
            if prefix.starts_with("CVSS:") {
                CvssError::UnsupportedVersion {
                    prefix: prefix.to_owned(),
                    vector: vector.to_owned(),
                }
            } else {
                CvssError::MissingPrefix {
                    vector: vector.to_owned(),
                }
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const V31: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";

    /// The error a vector should be refused with, given the vector.
    type ExpectedError = fn(&str) -> CvssError;
    const V40: &str = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N";

    fn missing_prefix(vector: &str) -> CvssError {
        CvssError::MissingPrefix {
            vector: vector.to_owned(),
        }
    }

    fn unsupported(prefix: &str, vector: &str) -> CvssError {
        CvssError::UnsupportedVersion {
            prefix: prefix.to_owned(),
            vector: vector.to_owned(),
        }
    }

    fn empty_component(vector: &str) -> CvssError {
        CvssError::EmptyComponent {
            vector: vector.to_owned(),
        }
    }

    fn malformed(component: &str, vector: &str) -> CvssError {
        CvssError::MalformedComponent {
            component: component.to_owned(),
            vector: vector.to_owned(),
        }
    }

    fn unknown_metric(metric: &str, version: Version, vector: &str) -> CvssError {
        CvssError::UnknownMetric {
            metric: metric.to_owned(),
            version,
            vector: vector.to_owned(),
        }
    }

    fn unknown_value(metric: &'static str, value: &str, vector: &str) -> CvssError {
        CvssError::UnknownValue {
            metric,
            value: value.to_owned(),
            vector: vector.to_owned(),
        }
    }

    fn duplicate(metric: &'static str, vector: &str) -> CvssError {
        CvssError::DuplicateMetric {
            metric,
            vector: vector.to_owned(),
        }
    }

    fn missing(metric: &'static str, vector: &str) -> CvssError {
        CvssError::MissingMetric {
            metric,
            vector: vector.to_owned(),
        }
    }

    fn out_of_order(metric: &'static str, previous: &'static str, vector: &str) -> CvssError {
        CvssError::OutOfOrder {
            metric,
            previous,
            vector: vector.to_owned(),
        }
    }

    #[test]
    fn malformed_vectors_are_refused_with_the_reason() {
        use Version::{V3_0, V3_1, V4_0};
        let cases: Vec<(&str, ExpectedError)> = vec![
            ("", |_| CvssError::Empty),
            ("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", missing_prefix),
            (" CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", missing_prefix),
            ("cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", missing_prefix),
            ("CVSS:2.0/AV:N/AC:L/Au:N/C:C/I:C/A:C", |v| unsupported("CVSS:2.0", v)),
            ("CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| unsupported("CVSS:3.2", v)),
            ("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| unknown_value("AV", "Q", v)),
            ("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| unknown_value("AV", "X", v)),
            ("CVSS:3.1/AV:N:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| unknown_value("AV", "N:N", v)),
            ("CVSS:3.1/AV:N/AC:L/UI:N/S:U/C:H/I:H/A:H", |v| missing("PR", v)),
            ("CVSS:3.1", |v| missing("AV", v)),
            ("CVSS:3.1/AV:N/AC:L/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| duplicate("AC", v)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:F/E:F", |v| duplicate("E", v)),
            ("CVSS:3.1/AV:N//AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", empty_component),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", empty_component),
            ("CVSS:3.1/", empty_component),
            ("CVSS:3.1/AV:N/ACL/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| malformed("ACL", v)),
            ("CVSS:3.1/AV:N/AC:/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| malformed("AC:", v)),
            ("CVSS:3.1/AV:N/:L/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| malformed(":L", v)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:Y", |v| unknown_metric("XX", V3_1, v)),
            ("CVSS:3.0/AV:N/AC:L/AT:N/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| unknown_metric("AT", V3_0, v)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:A", |v| unknown_value("E", "A", v)),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:P/S:U/C:H/I:H/A:H", |v| unknown_value("UI", "P", v)),
            // The invalid examples of the v4.0 specification, section 7.
            ("CVSS:4.0/AV:F/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N", |v| unknown_value("AV", "F", v)),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/E:A/E:X", |v| duplicate("E", v)),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/ui:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N", |v| unknown_metric("ui", V4_0, v)),
            ("AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N", missing_prefix),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/SC:N/SI:N/SA:N", |v| missing("VA", v)),
            (
                "CVSS:4.0/AC:L/AV:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N/CR:L/IR:X/AR:L/RE:H/MAV:A/MAC:H/MAT:N/MPR:N/MUI:P/AT:N/MVC:X/MVI:N/MVA:H/MSC:N/MSI:L/MSA:S/E:U/S:N/AU:N/R:I/V:C/U:Green",
                |v| out_of_order("AV", "AC", v),
            ),
            // Further v4.0 cases.
            ("CVSS:4.0/E:A/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N", |v| out_of_order("AV", "E", v)),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N/U:Red/S:P", |v| out_of_order("S", "U", v)),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:S/SA:N", |v| unknown_value("SI", "S", v)),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N/U:red", |v| unknown_value("U", "red", v)),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N/RL:O", |v| unknown_metric("RL", V4_0, v)),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:R/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N", |v| unknown_value("UI", "R", v)),
            ("CVSS:4.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", |v| unknown_value("S", "U", v)),
        ];
        assert!(cases.len() >= 15);
        for (vector, expected) in cases {
            assert_eq!(parse(vector), Err(expected(vector)), "{vector:?}");
        }
    }

    #[test]
    fn error_messages_name_the_component_and_the_reason() {
        let message = |vector: &str| parse(vector).unwrap_err().to_string();
        assert_eq!(
            message("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            r#"unknown value "Q" for metric AV in "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H""#
        );
        assert_eq!(
            message("CVSS:3.1/AV:N/AC:L/UI:N/S:U/C:H/I:H/A:H"),
            r#"missing mandatory metric PR in "CVSS:3.1/AV:N/AC:L/UI:N/S:U/C:H/I:H/A:H""#
        );
        assert_eq!(
            message("CVSS:3.1/AC:L/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            r#"metric AC given twice in "CVSS:3.1/AC:L/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H""#
        );
        assert_eq!(
            message("CVSS:2.0/AV:N/AC:L/Au:N/C:C/I:C/A:C"),
            r#"unsupported CVSS version "CVSS:2.0" in "CVSS:2.0/AV:N/AC:L/Au:N/C:C/I:C/A:C" (supported: CVSS:3.0, CVSS:3.1, CVSS:4.0)"#
        );
        assert_eq!(
            message("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N/XY:Z"),
            r#"unknown metric "XY" for CVSS v4.0 in "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N/XY:Z""#
        );
        assert_eq!(
            message("CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N"),
            r#"metric AV must come before AC in "CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N" (CVSS v4.0 fixes the order of metrics)"#
        );
        assert_eq!(message(""), "empty CVSS vector");
    }

    #[test]
    fn v3_metrics_may_come_in_any_order_with_optional_metrics() {
        // The v3.1 specification's own example of a non-preferred ordering (section 6).
        let reordered = parse("CVSS:3.1/S:U/AV:N/AC:L/PR:H/UI:N/C:L/I:L/A:N/E:F/RL:X").unwrap();
        let preferred = parse("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:N").unwrap();
        assert_eq!(reordered, preferred);
        assert_eq!(reordered.base_score().tenths(), 38);
        let everything = "CVSS:3.0/AV:N/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:N/E:H/RL:O/RC:C/CR:H/IR:M/AR:L/MAV:P/MAC:H/MPR:L/MUI:R/MS:C/MC:N/MI:L/MA:H";
        let vector = parse(everything).unwrap();
        assert_eq!(vector.version(), Version::V3_0);
        assert_eq!(vector.base_score().tenths(), 38);
    }

    #[test]
    fn v4_specification_sample_vectors_are_accepted_and_scored_as_cvss_b() {
        // The valid samples of the v4.0 specification, section 7, with their CVSS-B scores.
        let samples = [
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N", 51),
            ("CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N/E:A", 51),
            ("CVSS:4.0/AV:A/AC:H/AT:P/PR:L/UI:P/VC:H/VI:H/VA:H/SC:L/SI:L/SA:L/E:P", 54),
            (
                "CVSS:4.0/AV:L/AC:H/AT:N/PR:N/UI:A/VC:N/VI:N/VA:L/SC:H/SI:H/SA:H/CR:H/IR:H/AR:M/MAV:N/MAC:L/MAT:P/MPR:L/MUI:A/MVC:N/MVI:H/MVA:L/MSC:L/MSI:S/MSA:H",
                50,
            ),
            (
                "CVSS:4.0/AV:P/AC:H/AT:P/PR:L/UI:P/VC:H/VI:H/VA:H/SC:L/SI:L/SA:L/E:A/S:P/AU:Y/R:A/V:D/RE:L/U:Red",
                54,
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N/E:U/CR:L/IR:X/AR:L/MAV:A/MAC:H/MAT:N/MPR:N/MUI:P/MVC:X/MVI:N/MVA:H/MSC:N/MSI:L/MSA:S/S:N/AU:N/R:I/V:C/RE:H/U:Green",
                51,
            ),
        ];
        for (vector, tenths) in samples {
            let parsed = parse(vector).expect(vector);
            assert_eq!(parsed.version(), Version::V4_0, "{vector}");
            assert_eq!(parsed.base_score().tenths(), tenths, "{vector}");
        }
    }

    #[test]
    fn from_str_and_base_score_agree_with_parse() {
        let vector: Vector = V31.parse().unwrap();
        assert_eq!(vector, parse(V31).unwrap());
        assert_eq!(vector.version(), Version::V3_1);
        let (score, severity) = crate::base_score(V40).unwrap();
        assert_eq!(format!("{score} {severity}"), "6.9 Medium");
        assert_eq!(
            crate::base_score("CVSS:4.0"),
            Err(missing("AV", "CVSS:4.0"))
        );
        assert_eq!(
            "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
                .parse::<Vector>()
                .unwrap()
                .version(),
            Version::V3_0
        );
    }

    #[test]
    fn versions_print_their_number_and_prefix() {
        let printed: Vec<String> = [Version::V3_0, Version::V3_1, Version::V4_0]
            .iter()
            .map(|version| format!("{version} {}", version.prefix()))
            .collect();
        assert_eq!(printed, ["3.0 CVSS:3.0", "3.1 CVSS:3.1", "4.0 CVSS:4.0"]);
    }
}
