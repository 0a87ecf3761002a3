//! Distribution (vendor) severities: Debian urgency, Ubuntu priority, Red Hat severity.
//!
//! The value is kept as the feed wrote it; [`VendorSeverity::class`] maps it to a
//! [`PatchClass`]. The mapping is fixed:
//!
//! | scheme | low | moderate | high | critical | no class |
//! |---|---|---|---|---|---|
//! | Debian urgency | `unimportant`, `low` | `medium` | `high` | — | `not yet assigned`, anything else |
//! | Ubuntu priority | `negligible`, `low` | `medium` | `high` | `critical` | `untriaged`, anything else |
//! | Red Hat severity | `Low` | `Moderate` | `Important` | `Critical` | anything else |
//!
//! Debian's `*` and `**` suffixes (`low*`, `medium**`) are ignored for the class. Matching is
//! case-insensitive.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::classify::PatchClass;

/// Whose severity scale a value is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VendorScheme {
    /// Debian security tracker urgency.
    DebianUrgency,
    /// Ubuntu CVE priority.
    UbuntuPriority,
    /// Red Hat severity rating.
    RedHatSeverity,
}

impl VendorScheme {
    /// A short name for explanations: `debian urgency`, `ubuntu priority`, `red hat severity`.
    pub fn label(self) -> &'static str {
        match self {
            VendorScheme::DebianUrgency => "debian urgency",
            VendorScheme::UbuntuPriority => "ubuntu priority",
            VendorScheme::RedHatSeverity => "red hat severity",
        }
    }
}

/// A vendor's severity for an advisory or one of its CVEs, as written in the feed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VendorSeverity {
    /// The scale.
    pub scheme: VendorScheme,
    /// The value exactly as the feed wrote it (`medium**`, `Important`).
    pub value: String,
}

impl VendorSeverity {
    /// A value on `scheme`.
    pub fn new(scheme: VendorScheme, value: &str) -> VendorSeverity {
        VendorSeverity {
            scheme,
            value: value.to_string(),
        }
    }

    /// The class this value maps to, or `None` when it carries no rating
    /// (`not yet assigned`, `untriaged`, or an unknown word). See the module table.
    pub fn class(&self) -> Option<PatchClass> {
        let word = self
            .value
            .trim()
            .trim_end_matches('*')
            .trim()
            .to_ascii_lowercase();
        match (self.scheme, word.as_str()) {
            (VendorScheme::DebianUrgency, "unimportant" | "low") => Some(PatchClass::Low),
            (VendorScheme::DebianUrgency, "medium") => Some(PatchClass::Moderate),
            (VendorScheme::DebianUrgency, "high") => Some(PatchClass::High),
            (VendorScheme::UbuntuPriority, "negligible" | "low") => Some(PatchClass::Low),
            (VendorScheme::UbuntuPriority, "medium") => Some(PatchClass::Moderate),
            (VendorScheme::UbuntuPriority, "high") => Some(PatchClass::High),
            (VendorScheme::UbuntuPriority, "critical") => Some(PatchClass::Critical),
            (VendorScheme::RedHatSeverity, "low") => Some(PatchClass::Low),
            (VendorScheme::RedHatSeverity, "moderate") => Some(PatchClass::Moderate),
            (VendorScheme::RedHatSeverity, "important") => Some(PatchClass::High),
            (VendorScheme::RedHatSeverity, "critical") => Some(PatchClass::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for VendorSeverity {
    /// `debian urgency medium**`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.scheme.label(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VendorScheme::*;

    fn class(scheme: VendorScheme, value: &str) -> Option<PatchClass> {
        VendorSeverity::new(scheme, value).class()
    }

    #[test]
    fn debian_urgencies() {
        assert_eq!(class(DebianUrgency, "unimportant"), Some(PatchClass::Low));
        assert_eq!(class(DebianUrgency, "low"), Some(PatchClass::Low));
        assert_eq!(class(DebianUrgency, "low*"), Some(PatchClass::Low));
        assert_eq!(class(DebianUrgency, "medium"), Some(PatchClass::Moderate));
        assert_eq!(class(DebianUrgency, "medium**"), Some(PatchClass::Moderate));
        assert_eq!(class(DebianUrgency, "high"), Some(PatchClass::High));
        assert_eq!(class(DebianUrgency, "high**"), Some(PatchClass::High));
        assert_eq!(class(DebianUrgency, "not yet assigned"), None);
        assert_eq!(class(DebianUrgency, "end-of-life"), None);
        assert_eq!(class(DebianUrgency, "critical"), None);
    }

    #[test]
    fn ubuntu_priorities() {
        assert_eq!(class(UbuntuPriority, "negligible"), Some(PatchClass::Low));
        assert_eq!(class(UbuntuPriority, "low"), Some(PatchClass::Low));
        assert_eq!(class(UbuntuPriority, "medium"), Some(PatchClass::Moderate));
        assert_eq!(class(UbuntuPriority, "high"), Some(PatchClass::High));
        assert_eq!(
            class(UbuntuPriority, "critical"),
            Some(PatchClass::Critical)
        );
        assert_eq!(class(UbuntuPriority, "untriaged"), None);
    }

    #[test]
    fn red_hat_severities() {
        assert_eq!(class(RedHatSeverity, "Low"), Some(PatchClass::Low));
        assert_eq!(
            class(RedHatSeverity, "Moderate"),
            Some(PatchClass::Moderate)
        );
        assert_eq!(class(RedHatSeverity, "Important"), Some(PatchClass::High));
        assert_eq!(
            class(RedHatSeverity, "Critical"),
            Some(PatchClass::Critical)
        );
        assert_eq!(class(RedHatSeverity, "medium"), None);
    }

    #[test]
    fn display_names_the_scale_and_the_raw_value() {
        assert_eq!(
            VendorSeverity::new(DebianUrgency, "medium**").to_string(),
            "debian urgency medium**"
        );
    }
}
