//! The one patch class: how urgently a fix must reach the fleet.
//!
//! Findings are classified into it (`patchwave-advisory`), rollouts carry it in their
//! release manifest (`patchwave-rollout`), and every command and config key spells it the
//! same way. Ordered by urgency: `Low < Moderate < High < Critical`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgently a patch must be deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchClass {
    /// At convenience: no due date.
    Low,
    /// By the end of the next cycle.
    Moderate,
    /// Within `high_days` (30) of disclosure.
    High,
    /// Within `critical_days` (7): known exploited or CVSS ≥ 9.
    Critical,
}

impl PatchClass {
    /// Every class, least urgent first.
    pub const ALL: [PatchClass; 4] = [
        PatchClass::Low,
        PatchClass::Moderate,
        PatchClass::High,
        PatchClass::Critical,
    ];

    /// The class of a CVSS base score given in tenths (`98` is 9.8): the CVSS qualitative
    /// rating, with `none` (0.0) as low.
    pub fn from_score_tenths(tenths: u8) -> PatchClass {
        match tenths {
            90.. => PatchClass::Critical,
            70..=89 => PatchClass::High,
            40..=69 => PatchClass::Moderate,
            _ => PatchClass::Low,
        }
    }

    /// One class higher; critical stays critical.
    pub fn escalated(self) -> PatchClass {
        match self {
            PatchClass::Low => PatchClass::Moderate,
            PatchClass::Moderate => PatchClass::High,
            PatchClass::High | PatchClass::Critical => PatchClass::Critical,
        }
    }

    /// `low`, `moderate`, `high` or `critical`: the spelling of config, output and store.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchClass::Low => "low",
            PatchClass::Moderate => "moderate",
            PatchClass::High => "high",
            PatchClass::Critical => "critical",
        }
    }

    /// Parse the lowercase name.
    pub fn parse(name: &str) -> Option<PatchClass> {
        PatchClass::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether patches of this class must go through a canary (critical and high).
    pub fn requires_canary(self) -> bool {
        matches!(self, PatchClass::Critical | PatchClass::High)
    }
}

impl fmt::Display for PatchClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a class.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}: expected critical, high, moderate or low")]
pub struct UnknownClass(pub String);

impl FromStr for PatchClass {
    type Err = UnknownClass;

    fn from_str(s: &str) -> Result<PatchClass, UnknownClass> {
        PatchClass::parse(s).ok_or_else(|| UnknownClass(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_by_urgency_and_spelled_one_way() {
        assert!(PatchClass::Low < PatchClass::Moderate);
        assert!(PatchClass::Moderate < PatchClass::High);
        assert!(PatchClass::High < PatchClass::Critical);
        for c in PatchClass::ALL {
            assert_eq!(PatchClass::parse(c.as_str()), Some(c));
            assert_eq!(c.to_string().parse::<PatchClass>(), Ok(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert_eq!(
            "Critical".parse::<PatchClass>().unwrap_err().to_string(),
            "Critical: expected critical, high, moderate or low"
        );
    }

    #[test]
    fn scores_and_escalation() {
        assert_eq!(PatchClass::from_score_tenths(100), PatchClass::Critical);
        assert_eq!(PatchClass::from_score_tenths(90), PatchClass::Critical);
        assert_eq!(PatchClass::from_score_tenths(89), PatchClass::High);
        assert_eq!(PatchClass::from_score_tenths(70), PatchClass::High);
        assert_eq!(PatchClass::from_score_tenths(69), PatchClass::Moderate);
        assert_eq!(PatchClass::from_score_tenths(40), PatchClass::Moderate);
        assert_eq!(PatchClass::from_score_tenths(39), PatchClass::Low);
        assert_eq!(PatchClass::from_score_tenths(0), PatchClass::Low);
        assert_eq!(PatchClass::Low.escalated(), PatchClass::Moderate);
        assert_eq!(PatchClass::Critical.escalated(), PatchClass::Critical);
        assert!(PatchClass::High.requires_canary() && !PatchClass::Moderate.requires_canary());
    }
}
