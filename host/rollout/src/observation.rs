//! What the engine tells `decide`: operator commands and the outcomes of actions.

use std::fmt;

use patchwave_core::HostId;
use serde::{Deserialize, Serialize};

use crate::health::{HealthCheck, Verdict};
use crate::plan::StageId;

/// Something that happened since the last decision.
///
/// The engine must feed back the outcome of **every** host action of the previous decision
/// (`Apply` → `Applied` or `HostLost`, `Verify` → `Verified` or `HostLost`, `Rollback` →
/// `RolledBack` or `HostLost`, `Reconcile` → `Reconciled` or `HostLost`) in the next call:
/// a host still marked as applying or rolling back without an outcome is taken to mean that
/// the runner died mid-step, and it is reconciled, never applied twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Observation {
    /// An operator starts a planned rollout.
    Start {
        /// Who.
        by: String,
    },
    /// An operator approves going on after an inconclusive health check.
    Approved {
        /// Who.
        by: String,
    },
    /// An operator stops the rollout: no new host starts, hosts in flight finish, nothing is
    /// rolled back automatically.
    Abort {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// An operator asks to roll back every host the manifest was applied to.
    RollbackRequested {
        /// Who.
        by: String,
    },
    /// The plugin's apply report for a host.
    Applied {
        /// The host.
        host: HostId,
        /// The package manager succeeded and the state read back is the wanted one.
        ok: bool,
        /// The report's words (output tail, failing package).
        detail: String,
    },
    /// A re-inventory of a host: the pinned versions are installed, or not. Exit codes are
    /// not trusted; only what the package database says.
    Verified {
        /// The host.
        host: HostId,
        /// Every pinned version is present and installed.
        ok: bool,
        /// What was found.
        detail: String,
    },
    /// A host could not be reached, vanished or timed out in the middle of a step.
    HostLost {
        /// The host.
        host: HostId,
        /// The transport's words.
        reason: String,
    },
    /// After a runner died mid-step, a re-inventory settled whether that step took. Report
    /// a partial result (some packages changed) as `took: true`: it then goes through
    /// verify and, failing it, rollback, rather than being applied over.
    Reconciled {
        /// The host.
        host: HostId,
        /// The interrupted apply (or rollback) did take.
        took: bool,
    },
    /// The metrics baseline before a stage was captured.
    BaselineCaptured {
        /// The stage.
        stage: StageId,
    },
    /// The combined verdict of the health sources for a check of a stage (see
    /// [`crate::combine`]).
    Health {
        /// The stage.
        stage: StageId,
        /// Which check it answers.
        check: HealthCheck,
        /// The verdict.
        verdict: Verdict,
    },
    /// The plugin's rollback report for a host.
    RolledBack {
        /// The host.
        host: HostId,
        /// The previous versions are back.
        ok: bool,
        /// The report's words.
        detail: String,
    },
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observation::Start { by } => write!(f, "start by {by}"),
            Observation::Approved { by } => write!(f, "approval by {by}"),
            Observation::Abort { by, reason } => write!(f, "abort by {by}: {reason}"),
            Observation::RollbackRequested { by } => write!(f, "rollback requested by {by}"),
            Observation::Applied { host, ok, .. } => write!(f, "apply of {host} (ok: {ok})"),
            Observation::Verified { host, ok, .. } => write!(f, "verify of {host} (ok: {ok})"),
            Observation::HostLost { host, reason } => write!(f, "{host} lost: {reason}"),
            Observation::Reconciled { host, took } => {
                write!(f, "reconcile of {host} (took: {took})")
            }
            Observation::BaselineCaptured { stage } => write!(f, "baseline of {stage}"),
            Observation::Health {
                stage,
                check,
                verdict,
            } => write!(f, "{stage} {check}: {verdict}"),
            Observation::RolledBack { host, ok, .. } => {
                write!(f, "rollback of {host} (ok: {ok})")
            }
        }
    }
}
