//! Package changes made to a host, and how an unknown outcome is settled.
//!
//! Every apply or rollback is written down before it is attempted and again when its outcome
//! is known. When the outcome cannot be known (the link dropped mid-apply, the runner died),
//! it stays `Unknown` until the next successful inventory settles it by looking at what is
//! really installed — never by assuming.

use serde::{Deserialize, Serialize};

use crate::inventory::Installed;
use crate::plugin::Change;

/// What kind of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Installing target versions.
    Apply,
    /// Undoing an apply.
    Rollback,
}

impl ChangeKind {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Apply => "apply",
            ChangeKind::Rollback => "rollback",
        }
    }
}

/// How a change ended, as far as the runner could tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeOutcome {
    /// Written before the attempt; still the state if the runner died during it.
    InProgress,
    /// The package manager succeeded and the state read back is what was wanted.
    Applied,
    /// It ran and did not reach the wanted state (state read back says how).
    Failed,
    /// The runner lost the host while the change was running: it may or may not have taken.
    Unknown,
}

impl ChangeOutcome {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOutcome::InProgress => "in-progress",
            ChangeOutcome::Applied => "applied",
            ChangeOutcome::Failed => "failed",
            ChangeOutcome::Unknown => "unknown",
        }
    }

    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Option<ChangeOutcome> {
        Some(match s {
            "in-progress" => ChangeOutcome::InProgress,
            "applied" => ChangeOutcome::Applied,
            "failed" => ChangeOutcome::Failed,
            "unknown" => ChangeOutcome::Unknown,
            _ => return None,
        })
    }

    /// Whether the next inventory must settle it.
    pub fn needs_reconciling(self) -> bool {
        matches!(self, ChangeOutcome::InProgress | ChangeOutcome::Unknown)
    }
}

/// What a package should look like if the change took: installed at `version`, or absent
/// when `version` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Package name.
    pub name: String,
    /// Version it should have (`None` = removed).
    pub version: Option<String>,
}

impl Expected {
    /// What the host holds once `changes` are applied: each package at its `to`.
    pub fn after_apply(changes: &[Change]) -> Vec<Expected> {
        changes
            .iter()
            .map(|c| Expected {
                name: c.name.clone(),
                version: Some(c.to.clone()),
            })
            .collect()
    }

    /// What the host held before `changes` were applied, so what undoing them brings
    /// back: each package at its `from`, or absent when it was not installed.
    pub fn before_apply(changes: &[Change]) -> Vec<Expected> {
        changes
            .iter()
            .map(|c| Expected {
                name: c.name.clone(),
                version: c.from.clone(),
            })
            .collect()
    }
}

/// What an inventory says about an unsettled change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reconciliation {
    /// Every package is as the change wanted.
    Took,
    /// No package is as the change wanted.
    DidNotTake,
    /// Some are, some are not.
    Partial,
}

impl Reconciliation {
    /// Stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Reconciliation::Took => "took",
            Reconciliation::DidNotTake => "did-not-take",
            Reconciliation::Partial => "partial",
        }
    }

    /// Parse the stored spelling.
    pub fn parse(s: &str) -> Option<Reconciliation> {
        Some(match s {
            "took" => Reconciliation::Took,
            "did-not-take" => Reconciliation::DidNotTake,
            "partial" => Reconciliation::Partial,
            _ => return None,
        })
    }

    /// Settle a change against what is installed now.
    pub fn judge(expected: &[Expected], inventory: &[Installed]) -> Reconciliation {
        let as_wanted = expected
            .iter()
            .filter(|e| {
                let installed: Vec<&Installed> =
                    inventory.iter().filter(|p| p.name == e.name).collect();
                match &e.version {
                    Some(v) => installed.iter().any(|p| &p.version == v),
                    None => installed.is_empty(),
                }
            })
            .count();
        match as_wanted {
            n if n == expected.len() => Reconciliation::Took,
            0 => Reconciliation::DidNotTake,
            _ => Reconciliation::Partial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str) -> Installed {
        Installed {
            name: name.into(),
            version: version.into(),
            arch: "all".into(),
            source: None,
        }
    }

    fn want(name: &str, version: Option<&str>) -> Expected {
        Expected {
            name: name.into(),
            version: version.map(str::to_string),
        }
    }

    #[test]
    fn judged_by_what_is_installed() {
        let inv = vec![pkg("a", "2"), pkg("b", "1")];
        assert_eq!(
            Reconciliation::judge(&[want("a", Some("2"))], &inv),
            Reconciliation::Took
        );
        assert_eq!(
            Reconciliation::judge(&[want("a", Some("3"))], &inv),
            Reconciliation::DidNotTake
        );
        assert_eq!(
            Reconciliation::judge(&[want("a", Some("2")), want("b", Some("2"))], &inv),
            Reconciliation::Partial
        );
        assert_eq!(
            Reconciliation::judge(&[want("c", None)], &inv),
            Reconciliation::Took
        );
        assert_eq!(
            Reconciliation::judge(&[want("b", None)], &inv),
            Reconciliation::DidNotTake
        );
    }

    #[test]
    fn spellings_round_trip() {
        for o in [
            ChangeOutcome::InProgress,
            ChangeOutcome::Applied,
            ChangeOutcome::Failed,
            ChangeOutcome::Unknown,
        ] {
            assert_eq!(ChangeOutcome::parse(o.as_str()), Some(o));
        }
        for r in [
            Reconciliation::Took,
            Reconciliation::DidNotTake,
            Reconciliation::Partial,
        ] {
            assert_eq!(Reconciliation::parse(r.as_str()), Some(r));
        }
    }
}
