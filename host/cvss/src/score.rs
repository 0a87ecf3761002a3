//! Scores held exactly, in tenths, and their qualitative severity ratings.

use std::fmt;

/// A CVSS score from 0.0 to 10.0, held exactly as a whole number of tenths.
///
/// `Display` prints one decimal place: `Score` of 98 tenths prints `9.8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score(u8);

impl Score {
    /// The score 0.0.
    pub(crate) const ZERO: Score = Score(0);

    /// The highest score, 10.0.
    pub(crate) const MAX: Score = Score(100);

    /// A score of `tenths` tenths, capped at 10.0.
    pub(crate) fn from_tenths_capped(tenths: u64) -> Score {
        u8::try_from(tenths.min(100)).map_or(Score::MAX, Score)
    }

    /// The score in tenths: 98 for 9.8.
    pub fn tenths(self) -> u8 {
        self.0
    }

    /// The qualitative rating of this score (the same scale in v3.0, v3.1 and v4.0).
    pub fn severity(self) -> Severity {
        match self.0 {
            0 => Severity::None,
            1..=39 => Severity::Low,
            40..=69 => Severity::Medium,
            70..=89 => Severity::High,
            _ => Severity::Critical,
        }
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// The qualitative severity rating scale shared by CVSS v3.0, v3.1 and v4.0.
///
/// None is 0.0, Low 0.1–3.9, Medium 4.0–6.9, High 7.0–8.9 and Critical 9.0–10.0.
/// The variants are ordered from the least to the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// A score of 0.0.
    None,
    /// A score from 0.1 to 3.9.
    Low,
    /// A score from 4.0 to 6.9.
    Medium,
    /// A score from 7.0 to 8.9.
    High,
    /// A score from 9.0 to 10.0.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::None => "None",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prints_one_decimal_place() {
        assert_eq!(Score(0).to_string(), "0.0");
        assert_eq!(Score(1).to_string(), "0.1");
        assert_eq!(Score(98).to_string(), "9.8");
        assert_eq!(Score(100).to_string(), "10.0");
    }

    #[test]
    fn severity_bands_follow_the_rating_scale() {
        let cases = [
            (0, Severity::None),
            (1, Severity::Low),
            (39, Severity::Low),
            (40, Severity::Medium),
            (69, Severity::Medium),
            (70, Severity::High),
            (89, Severity::High),
            (90, Severity::Critical),
            (100, Severity::Critical),
        ];
        for (tenths, severity) in cases {
            assert_eq!(Score(tenths).severity(), severity, "{tenths} tenths");
        }
    }

    #[test]
    fn severity_display_names_the_rating() {
        let names: Vec<String> = [
            Severity::None,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(names, ["None", "Low", "Medium", "High", "Critical"]);
    }

    #[test]
    fn capping_keeps_scores_within_ten() {
        assert_eq!(Score::from_tenths_capped(0), Score::ZERO);
        assert_eq!(Score::from_tenths_capped(57), Score(57));
        assert_eq!(Score::from_tenths_capped(100), Score::MAX);
        assert_eq!(Score::from_tenths_capped(101), Score::MAX);
        assert_eq!(Score::from_tenths_capped(u64::MAX), Score::MAX);
    }

    #[test]
    fn scores_order_by_value() {
        assert!(Score(39) < Score(40));
        assert!(Severity::High < Severity::Critical);
        assert!(Severity::None < Severity::Low);
    }
}
