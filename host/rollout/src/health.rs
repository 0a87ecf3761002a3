//! Go / no-go verdicts of health checks.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which health check of a stage is meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthCheck {
    /// The go / no-go gate once every host of the stage has finished.
    Gate,
    /// The smoke check at the end of the canary's soak.
    Smoke,
}

impl fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthCheck::Gate => "gate",
            HealthCheck::Smoke => "smoke check",
        })
    }
}

/// The verdict of one health source, or of several combined.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "kebab-case")]
pub enum Verdict {
    /// Healthy: go on.
    Go,
    /// Unhealthy: stop and roll back. Says why.
    NoGo(String),
    /// The source could not tell (no data, unreachable): a human decides. Says why.
    Inconclusive(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Go => f.write_str("go"),
            Verdict::NoGo(reason) => write!(f, "no-go: {reason}"),
            Verdict::Inconclusive(reason) => write!(f, "inconclusive: {reason}"),
        }
    }
}

/// Combines the verdicts of every configured source: any no-go is a no-go, else any
/// inconclusive is inconclusive, else go. No sources at all is a go. The reasons of the
/// deciding verdicts are joined with `; ` in the order given.
pub fn combine(verdicts: &[Verdict]) -> Verdict {
    let no_go: Vec<&str> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::NoGo(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    if !no_go.is_empty() {
        return Verdict::NoGo(no_go.join("; "));
    }
    let inconclusive: Vec<&str> = verdicts
        .iter()
        .filter_map(|v| match v {
            Verdict::Inconclusive(reason) => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    if !inconclusive.is_empty() {
        return Verdict::Inconclusive(inconclusive.join("; "));
    }
    Verdict::Go
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn no_go(r: &str) -> Verdict {
        Verdict::NoGo(r.into())
    }

    fn unsure(r: &str) -> Verdict {
        Verdict::Inconclusive(r.into())
    }

    #[test]
    fn no_sources_is_a_go() {
        assert_eq!(combine(&[]), Verdict::Go);
    }

    #[test]
    fn all_go_is_a_go() {
        assert_eq!(combine(&[Verdict::Go, Verdict::Go]), Verdict::Go);
    }

    #[test]
    fn any_no_go_wins_and_every_no_go_reason_is_kept() {
        assert_eq!(
            combine(&[
                Verdict::Go,
                unsure("prometheus: no data"),
                no_go("http /health: 503"),
                no_go("alert HighErrorRate firing"),
            ]),
            no_go("http /health: 503; alert HighErrorRate firing")
        );
    }

    #[test]
    fn inconclusive_beats_go() {
        assert_eq!(
            combine(&[Verdict::Go, unsure("prometheus: no data")]),
            unsure("prometheus: no data")
        );
    }

    #[test]
    fn verdicts_serialise_with_their_reason() {
        assert_eq!(
            serde_json::to_string(&no_go("503")).unwrap(),
            r#"{"verdict":"no-go","reason":"503"}"#
        );
        assert_eq!(
            serde_json::to_string(&Verdict::Go).unwrap(),
            r#"{"verdict":"go"}"#
        );
        assert_eq!(
            serde_json::from_str::<Verdict>(r#"{"verdict":"inconclusive","reason":"x"}"#).unwrap(),
            unsure("x")
        );
    }
}
