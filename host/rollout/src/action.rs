//! What `decide` asks the engine to do.

use std::fmt;

use chrono::{DateTime, Utc};
use patchwave_core::change::ChangeKind;
use patchwave_core::{Change, HostId};
use serde::{Deserialize, Serialize};

use crate::health::HealthCheck;
use crate::plan::StageId;
use crate::state::Rollout;

/// One thing for the engine to do. `Apply` and `Rollback` are asked for exactly once per
/// attempt; the read-only actions (`Verify`, `Reconcile`, `CaptureBaseline`, `CheckHealth`)
/// and the waits are repeated by every decision until their outcome is observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    /// Record the metrics of the health sources before `stage` starts, so the gate can
    /// compare with them. Answer: `BaselineCaptured`.
    CaptureBaseline {
        /// The stage about to start.
        stage: StageId,
    },
    /// Apply exactly these changes to the host. Answer: `Applied` or `HostLost`.
    Apply {
        /// The host.
        host: HostId,
        /// The changes, each to its pinned version.
        changes: Vec<Change>,
    },
    /// Re-inventory the host and check the pinned versions are installed. Answer: `Verified`
    /// or `HostLost`.
    Verify {
        /// The host.
        host: HostId,
    },
    /// Ask the health sources about the stage's patched hosts. Answer: `Health`.
    CheckHealth {
        /// The stage.
        stage: StageId,
        /// Which check.
        check: HealthCheck,
        /// The stage's hosts that carry the manifest (applied or verified).
        hosts: Vec<HostId>,
    },
    /// A runner died while this step ran on the host: re-inventory it and settle whether the
    /// step took. Answer: `Reconciled` or `HostLost`.
    Reconcile {
        /// The host.
        host: HostId,
        /// The step that was interrupted.
        step: ChangeKind,
    },
    /// Roll the host back to the versions it had before. Answer: `RolledBack` or `HostLost`.
    Rollback {
        /// The host.
        host: HostId,
    },
    /// Nothing to do before `at` unless an operator acts.
    WaitUntil {
        /// When to decide again.
        at: DateTime<Utc>,
        /// What is awaited.
        reason: WaitReason,
    },
    /// A human must approve (observation `Approved`) or stop the rollout.
    AwaitApproval {
        /// What needs approving.
        reason: String,
    },
    /// The rollout is over.
    Finished {
        /// How it ended.
        outcome: Outcome,
    },
}

/// Why a rollout waits for a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitReason {
    /// The canary soaks before its smoke check.
    Soak {
        /// The soaking stage.
        stage: StageId,
    },
    /// The maintenance window opens then.
    Window {
        /// The stage waiting to start hosts.
        stage: StageId,
    },
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Soak { stage } => write!(f, "{stage} soak"),
            WaitReason::Window { stage } => write!(f, "maintenance window for {stage}"),
        }
    }
}

/// How a rollout ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every stage passed.
    Completed {
        /// Staged hosts.
        hosts: usize,
        /// Hosts that failed or were lost within the budgets.
        failed: usize,
        /// Of those, hosts whose own rollback failed too: they need a human.
        rollback_failed: usize,
    },
    /// A gate failed or an operator asked for it, and every rollback succeeded.
    RolledBack {
        /// Why it was rolled back.
        reason: String,
    },
    /// A rollback failed on some hosts: they need a human.
    RollbackFailed {
        /// Why it was rolled back.
        reason: String,
        /// Hosts whose rollback failed.
        hosts: Vec<HostId>,
    },
    /// An operator stopped it.
    Aborted {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed {
                hosts,
                failed,
                rollback_failed,
            } => write!(
                f,
                "completed on {hosts} hosts ({failed} failed within budget, \
                 {rollback_failed} of them not rolled back)"
            ),
            Outcome::RolledBack { reason } => write!(f, "rolled back: {reason}"),
            Outcome::RollbackFailed { reason, hosts } => {
                let hosts: Vec<&str> = hosts.iter().map(HostId::as_str).collect();
                write!(f, "rollback failed on {}: {reason}", hosts.join(", "))
            }
            Outcome::Aborted { by, reason } => write!(f, "aborted by {by}: {reason}"),
        }
    }
}

/// The result of one `decide`: the state to persist before acting, and the actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The next state. Persist it before executing `actions`: it records the intents.
    pub state: Rollout,
    /// What to do, in order.
    pub actions: Vec<Action>,
}
