//! The rollout policy: how a manifest moves through the fleet and when it stops.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::manifest::PatchClass;
use crate::problems::{ok_or_problems, Problems};
use crate::window::Window;
use patchwave_core::duration::HumanDuration;

/// How many failed hosts a stage, or the whole rollout, tolerates before it is a no-go.
///
/// The allowance is `max_failed_percent` of the hosts counted, rounded down, and at most
/// `max_failed_hosts` when that is set. A lost host counts as failed. Exceeding it — having
/// more failed hosts than allowed — is a no-go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureBudget {
    /// Percent (0..=100) of the hosts counted that may fail, rounded down.
    pub max_failed_percent: u32,
    /// An absolute cap on failed hosts, applied on top of the percentage.
    #[serde(default)]
    pub max_failed_hosts: Option<u32>,
}

impl FailureBudget {
    /// A budget of `percent` percent with no absolute cap.
    pub const fn percent(percent: u32) -> FailureBudget {
        FailureBudget {
            max_failed_percent: percent,
            max_failed_hosts: None,
        }
    }

    /// How many of `hosts` hosts may fail: `floor(percent · hosts / 100)`, capped by
    /// `max_failed_hosts`.
    pub fn allowed(&self, hosts: usize) -> usize {
        let by_percent = hosts.saturating_mul(self.max_failed_percent.min(100) as usize) / 100;
        match self.max_failed_hosts {
            Some(cap) => by_percent.min(cap as usize),
            None => by_percent,
        }
    }

    /// Whether `failed` failures among `hosts` hosts are more than allowed.
    pub fn exceeded(&self, failed: usize, hosts: usize) -> bool {
        failed > self.allowed(hosts)
    }
}

/// Which hosts a failed gate rolls back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RollbackScope {
    /// Only the hosts of the stage whose gate failed.
    #[default]
    Stage,
    /// The hosts of that stage and of every earlier stage.
    All,
}

/// A maintenance window as written in the policy: it opens at every occurrence of `cron`
/// (cron crate 0.17 syntax with seconds, e.g. `0 0 22 * * Mon-Fri *`) read in time zone `tz`
/// (an IANA name such as `Europe/Berlin`) and stays open for `duration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// When the window opens, as a cron expression with a seconds field.
    pub cron: String,
    /// How long it stays open after each opening (elapsed time).
    pub duration: HumanDuration,
    /// IANA time zone the cron expression is read in.
    pub tz: String,
}

/// How a rollout moves. `Default` is the playbook:
///
/// | field | default |
/// |---|---|
/// | `canary` | `true`: non-prod hosts first |
/// | `soak` | `24h` after the canary passes, then a smoke check |
/// | `waves` | `[5, 25, 50, 100]`: cumulative percent of the prod hosts |
/// | `window` | none: prod waves may start at any time |
/// | `stage_budget` | 10 % of the stage's hosts may fail (canary and every wave) |
/// | `rollout_budget` | 5 % of all the rollout's hosts may fail |
/// | `verify` | `true`: re-inventory every host after its apply |
/// | `rollback_scope` | `stage` |
/// | `skip_canary_for` | empty |
/// | `rollback_failed_hosts` | `true` |
/// | `max_parallel` | none: every host of a stage starts at once |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Whether non-prod hosts form a canary stage that must pass (and soak) before prod.
    pub canary: bool,
    /// How long the canary soaks after its gate passes, before the smoke check.
    pub soak: HumanDuration,
    /// Cumulative coverage of the prod hosts after each wave, in percent: strictly
    /// increasing, each in 1..=100, the last exactly 100.
    pub waves: Vec<u32>,
    /// When prod waves may start new hosts. Hosts already started always finish.
    pub window: Option<WindowSpec>,
    /// Failures tolerated within one stage (the canary or a wave).
    pub stage_budget: FailureBudget,
    /// Failures tolerated over the whole rollout, counted over every staged host.
    pub rollout_budget: FailureBudget,
    /// Whether each host is re-inventoried after its apply; an apply's exit code alone is
    /// not trusted.
    pub verify: bool,
    /// Which hosts a failed gate rolls back.
    pub rollback_scope: RollbackScope,
    /// Classes whose manifests skip the canary. Only `moderate` and `low` may be listed;
    /// their non-prod hosts then join the first wave.
    pub skip_canary_for: Vec<PatchClass>,
    /// Whether a host that failed within the budget is rolled back on its own when its
    /// stage passes.
    pub rollback_failed_hosts: bool,
    /// At most this many hosts of a stage are in flight at once (none: all at once).
    pub max_parallel: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            canary: true,
            soak: HumanDuration::from_hours(24),
            waves: vec![5, 25, 50, 100],
            window: None,
            stage_budget: FailureBudget::percent(10),
            rollout_budget: FailureBudget::percent(5),
            verify: true,
            rollback_scope: RollbackScope::Stage,
            skip_canary_for: Vec::new(),
            rollback_failed_hosts: true,
            max_parallel: None,
        }
    }
}

/// One problem in a policy, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// `waves` is empty.
    #[error("waves: empty; give cumulative percentages ending in 100, e.g. [5, 25, 50, 100]")]
    NoWaves,
    /// A wave outside 1..=100.
    #[error("waves[{index}]: {percent} is not in 1..=100")]
    WaveOutOfRange {
        /// Position in `waves`.
        index: usize,
        /// The value.
        percent: u32,
    },
    /// A wave not above the one before it.
    #[error("waves[{index}]: {percent} is not above the previous wave's {previous}; waves are cumulative and strictly increasing")]
    WavesNotIncreasing {
        /// Position in `waves`.
        index: usize,
        /// The previous value.
        previous: u32,
        /// The value.
        percent: u32,
    },
    /// The last wave does not reach every prod host.
    #[error("waves: the last wave is {last}, it must be 100 so every prod host is covered")]
    LastWaveNotFull {
        /// The last value.
        last: u32,
    },
    /// A budget percentage above 100.
    #[error("{budget}.max_failed_percent: {percent} is not in 0..=100")]
    BudgetOutOfRange {
        /// `stage_budget` or `rollout_budget`.
        budget: &'static str,
        /// The value.
        percent: u32,
    },
    /// `skip_canary_for` lists a class that must always pass a canary.
    #[error(
        "skip_canary_for: `{class}` patches cannot skip the canary; only moderate and low may"
    )]
    CanaryRequired {
        /// The class listed.
        class: PatchClass,
    },
    /// `max_parallel` is 0, which would never start a host.
    #[error("max_parallel: 0 would never start a host; use at least 1 or leave it out")]
    NoParallelism,
    /// The window's cron expression does not parse.
    #[error("window.cron: `{cron}`: {message} (expected seconds minutes hours day-of-month month day-of-week [year], e.g. `0 0 22 * * Mon-Fri *`)")]
    WindowCron {
        /// The expression.
        cron: String,
        /// The parser's words.
        message: String,
    },
    /// The window's time zone is not an IANA name.
    #[error("window.tz: `{tz}` is not an IANA time zone name such as `Europe/Berlin` or `UTC`")]
    WindowTimeZone {
        /// The name given.
        tz: String,
    },
    /// The window's duration is zero, so it would never be open.
    #[error("window.duration: 0s would never be open")]
    WindowNeverOpen,
}

/// All problems of one policy.
pub type PolicyErrors = Problems<PolicyError>;

impl Policy {
    /// Checks the whole policy and returns every problem at once.
    pub fn validate(&self) -> Result<(), PolicyErrors> {
        let mut problems = wave_problems(&self.waves);
        for (budget, value) in [
            ("stage_budget", self.stage_budget),
            ("rollout_budget", self.rollout_budget),
        ] {
            if value.max_failed_percent > 100 {
                problems.push(PolicyError::BudgetOutOfRange {
                    budget,
                    percent: value.max_failed_percent,
                });
            }
        }
        for class in &self.skip_canary_for {
            if class.requires_canary() {
                problems.push(PolicyError::CanaryRequired { class: *class });
            }
        }
        if self.max_parallel == Some(0) {
            problems.push(PolicyError::NoParallelism);
        }
        if let Some(spec) = &self.window {
            if let Err(window_problems) = Window::from_spec(spec) {
                problems.extend(window_problems.into_vec());
            }
        }
        ok_or_problems((), problems)
    }

    /// The compiled maintenance window, if the policy has one.
    pub fn window(&self) -> Result<Option<Window>, PolicyErrors> {
        self.window.as_ref().map(Window::from_spec).transpose()
    }

    /// Whether a manifest of `class` goes through a canary stage under this policy.
    pub fn canary_for(&self, class: PatchClass) -> bool {
        self.canary && !self.skip_canary_for.contains(&class)
    }
}

fn wave_problems(waves: &[u32]) -> Vec<PolicyError> {
    let Some(&last) = waves.last() else {
        return vec![PolicyError::NoWaves];
    };
    let mut problems = Vec::new();
    for (index, &percent) in waves.iter().enumerate() {
        if !(1..=100).contains(&percent) {
            problems.push(PolicyError::WaveOutOfRange { index, percent });
        }
        if let Some(&previous) = index.checked_sub(1).and_then(|i| waves.get(i)) {
            if percent <= previous {
                problems.push(PolicyError::WavesNotIncreasing {
                    index,
                    previous,
                    percent,
                });
            }
        }
    }
    if last != 100 && (1..=100).contains(&last) {
        problems.push(PolicyError::LastWaveNotFull { last });
    }
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_default_is_the_playbook() {
        let p = Policy::default();
        assert!(p.canary);
        assert_eq!(p.soak.as_secs(), 86_400);
        assert_eq!(p.waves, vec![5, 25, 50, 100]);
        assert_eq!(p.window, None);
        assert_eq!(p.stage_budget, FailureBudget::percent(10));
        assert_eq!(p.rollout_budget, FailureBudget::percent(5));
        assert!(p.verify);
        assert_eq!(p.rollback_scope, RollbackScope::Stage);
        assert!(p.skip_canary_for.is_empty());
        assert!(p.rollback_failed_hosts);
        assert_eq!(p.max_parallel, None);
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn reads_a_partial_policy_and_fills_in_the_playbook() {
        let p: Policy = serde_json::from_str(
            r#"{
                "soak": "90s",
                "waves": [10, 100],
                "window": {"cron": "0 0 22 * * Mon-Fri *", "duration": "8h", "tz": "Europe/Berlin"},
                "stage_budget": {"max_failed_percent": 20, "max_failed_hosts": 3},
                "rollback_scope": "all",
                "skip_canary_for": ["low"]
            }"#,
        )
        .unwrap();
        assert_eq!(p.soak.as_secs(), 90);
        assert_eq!(p.waves, vec![10, 100]);
        assert_eq!(
            p.window,
            Some(WindowSpec {
                cron: "0 0 22 * * Mon-Fri *".into(),
                duration: HumanDuration::from_hours(8),
                tz: "Europe/Berlin".into(),
            })
        );
        assert_eq!(
            p.stage_budget,
            FailureBudget {
                max_failed_percent: 20,
                max_failed_hosts: Some(3)
            }
        );
        assert_eq!(p.rollout_budget, FailureBudget::percent(5));
        assert_eq!(p.rollback_scope, RollbackScope::All);
        assert_eq!(p.skip_canary_for, vec![PatchClass::Low]);
        assert!(p.canary && p.verify && p.rollback_failed_hosts);
        assert_eq!(p.validate(), Ok(()));
        assert!(p.canary_for(PatchClass::High));
        assert!(!p.canary_for(PatchClass::Low));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<Policy>(r#"{"wavez": [100]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown field `wavez`, expected one of `canary`, `soak`, `waves`, `window`, \
             `stage_budget`, `rollout_budget`, `verify`, `rollback_scope`, `skip_canary_for`, \
             `rollback_failed_hosts`, `max_parallel` at line 1 column 8"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let p = Policy {
            waves: vec![0, 50, 50, 90],
            window: Some(WindowSpec {
                cron: "every night".into(),
                duration: HumanDuration::from_secs(0),
                tz: "Mars/Olympus".into(),
            }),
            stage_budget: FailureBudget::percent(101),
            skip_canary_for: vec![PatchClass::Critical, PatchClass::Low, PatchClass::High],
            max_parallel: Some(0),
            ..Policy::default()
        };
        let problems = p.validate().unwrap_err().into_vec();
        assert_eq!(
            problems,
            vec![
                PolicyError::WaveOutOfRange {
                    index: 0,
                    percent: 0
                },
                PolicyError::WavesNotIncreasing {
                    index: 2,
                    previous: 50,
                    percent: 50
                },
                PolicyError::LastWaveNotFull { last: 90 },
                PolicyError::BudgetOutOfRange {
                    budget: "stage_budget",
                    percent: 101
                },
                PolicyError::CanaryRequired {
                    class: PatchClass::Critical
                },
                PolicyError::CanaryRequired {
                    class: PatchClass::High
                },
                PolicyError::NoParallelism,
                PolicyError::WindowCron {
                    cron: "every night".into(),
                    message: "every night\n^\nThe 'Seconds' field does not support using \
                              names. 'every' specified."
                        .into(),
                },
                PolicyError::WindowNeverOpen,
                PolicyError::WindowTimeZone {
                    tz: "Mars/Olympus".into()
                },
            ]
        );
        let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            texts[1],
            "waves[2]: 50 is not above the previous wave's 50; waves are cumulative and strictly increasing"
        );
        assert_eq!(
            texts[4],
            "skip_canary_for: `critical` patches cannot skip the canary; only moderate and low may"
        );
        assert_eq!(
            texts[9],
            "window.tz: `Mars/Olympus` is not an IANA time zone name such as `Europe/Berlin` or `UTC`"
        );
    }

    #[test]
    fn empty_waves_are_one_problem() {
        let p = Policy {
            waves: vec![],
            ..Policy::default()
        };
        assert_eq!(
            p.validate().unwrap_err().into_vec(),
            vec![PolicyError::NoWaves]
        );
    }

    #[test]
    fn budgets_round_down_and_respect_the_cap() {
        let ten = FailureBudget::percent(10);
        assert_eq!(ten.allowed(9), 0);
        assert_eq!(ten.allowed(10), 1);
        assert_eq!(ten.allowed(19), 1);
        assert_eq!(ten.allowed(500), 50);
        let capped = FailureBudget {
            max_failed_percent: 10,
            max_failed_hosts: Some(3),
        };
        assert_eq!(capped.allowed(500), 3);
        assert!(!capped.exceeded(3, 500));
        assert!(capped.exceeded(4, 500));
        assert!(FailureBudget::percent(0).exceeded(1, 1000));
    }
}
