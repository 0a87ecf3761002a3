//! The persisted state of one rollout.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchwave_core::change::ChangeKind;
use patchwave_core::HostId;
use serde::{Deserialize, Serialize};

use crate::action::{Outcome, WaitReason};
use crate::health::{HealthCheck, Verdict};
use crate::manifest::ReleaseManifest;
use crate::plan::{Plan, StageId};
use crate::policy::Policy;

/// How many events the history keeps; older ones are dropped (and counted).
pub const HISTORY_LIMIT: usize = 256;

/// Where the rollout as a whole stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Planned, waiting for `Start`.
    Planned,
    /// Moving through its stages.
    Running,
    /// Waiting for a human: an inconclusive health check, or a window that cannot be used.
    Paused {
        /// What needs a decision.
        reason: String,
    },
    /// Stopped by an operator; hosts in flight are finishing.
    Aborting {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// Stopped by an operator; nothing is in flight. Final unless a rollback is requested.
    Aborted {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// A gate failed or a rollback was requested; hosts are being rolled back.
    Halted {
        /// Why.
        reason: String,
        /// Which hosts are rolled back.
        scope: HaltScope,
    },
    /// Every rollback asked for succeeded. Final.
    RolledBack {
        /// Why it was rolled back.
        reason: String,
    },
    /// Some rollbacks failed. Final unless a rollback is requested again (it retries them).
    RollbackFailed {
        /// Why it was rolled back.
        reason: String,
        /// Hosts whose rollback failed.
        hosts: Vec<HostId>,
    },
    /// Every stage passed. Final unless a rollback is requested.
    Completed,
}

impl Status {
    /// The one word for this status (`planned`, `running`, `paused`, `aborting`, `aborted`,
    /// `halted`, `rolled-back`, `rollback-failed`, `completed`): what the store records,
    /// `rollout list` and `tick` print, and the tag of its serialized form.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Running => "running",
            Status::Paused { .. } => "paused",
            Status::Aborting { .. } => "aborting",
            Status::Aborted { .. } => "aborted",
            Status::Halted { .. } => "halted",
            Status::RolledBack { .. } => "rolled-back",
            Status::RollbackFailed { .. } => "rollback-failed",
            Status::Completed => "completed",
        }
    }

    /// Whether nothing more happens without an operator.
    pub fn is_final(&self) -> bool {
        Status::word_is_final(self.word())
    }

    /// Whether a status [`word`](Status::word) (as the store keeps it beside the state)
    /// names a final status, so listings need not read the state itself.
    pub fn word_is_final(word: &str) -> bool {
        matches!(
            word,
            "aborted" | "rolled-back" | "rollback-failed" | "completed"
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Planned => f.write_str("planned"),
            Status::Running => f.write_str("running"),
            Status::Paused { reason } => write!(f, "paused: {reason}"),
            Status::Aborting { by, reason } => write!(f, "aborting (by {by}: {reason})"),
            Status::Aborted { by, reason } => write!(f, "aborted (by {by}: {reason})"),
            Status::Halted { reason, scope } => {
                write!(f, "halted, rolling back {scope}: {reason}")
            }
            Status::RolledBack { reason } => write!(f, "rolled back: {reason}"),
            Status::RollbackFailed { reason, hosts } => {
                let hosts: Vec<&str> = hosts.iter().map(HostId::as_str).collect();
                write!(f, "rollback failed on {}: {reason}", hosts.join(", "))
            }
            Status::Completed => f.write_str("completed"),
        }
    }
}

/// Which hosts a halt rolls back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "stage", rename_all = "kebab-case")]
pub enum HaltScope {
    /// The hosts of one stage.
    Stage(StageId),
    /// Every host the manifest was applied to.
    AllStages,
}

impl fmt::Display for HaltScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaltScope::Stage(stage) => write!(f, "{stage}"),
            HaltScope::AllStages => f.write_str("all stages"),
        }
    }
}

/// Where one stage stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StagePhase {
    /// Not started.
    Pending,
    /// Waiting for the metrics baseline.
    CapturingBaseline,
    /// Its hosts are being applied and verified.
    Running,
    /// Waiting for a health verdict.
    Checking {
        /// Which check.
        check: HealthCheck,
    },
    /// A health check was inconclusive; a human decides.
    AwaitingApproval {
        /// Which check.
        check: HealthCheck,
        /// What the sources said.
        reason: String,
    },
    /// The gate said go; hosts that failed within the budget are being rolled back.
    Settling,
    /// The canary soaks until `until`, then gets a smoke check.
    Soaking {
        /// End of the soak.
        until: DateTime<Utc>,
    },
    /// Done and healthy.
    Passed,
    /// No-go.
    Failed {
        /// Why.
        reason: String,
    },
}

impl fmt::Display for StagePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StagePhase::Pending => f.write_str("pending"),
            StagePhase::CapturingBaseline => f.write_str("capturing baseline"),
            StagePhase::Running => f.write_str("running"),
            StagePhase::Checking { check } => write!(f, "{check}"),
            StagePhase::AwaitingApproval { check, .. } => {
                write!(f, "{check} inconclusive, awaiting approval")
            }
            StagePhase::Settling => f.write_str("rolling back failed hosts"),
            StagePhase::Soaking { until } => write!(f, "soaking until {}", until.to_rfc3339()),
            StagePhase::Passed => f.write_str("passed"),
            StagePhase::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// One stage's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageState {
    /// Which stage.
    pub id: StageId,
    /// Where it stands.
    pub phase: StagePhase,
    /// When it started (its baseline was asked for).
    pub started_at: Option<DateTime<Utc>>,
    /// When it passed or failed.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Which step of a host's apply failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStep {
    /// The plugin's apply reported failure.
    Apply,
    /// The re-inventory did not find the pinned versions.
    Verify,
}

/// How far the manifest got on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostPhase {
    /// Not started.
    Pending,
    /// `Apply` was asked for (the intent is persisted); waiting for its report.
    Applying,
    /// The runner died during the apply; `Reconcile` settles whether it took.
    Reconciling,
    /// The apply reported success; waiting for the re-inventory.
    Verifying,
    /// The apply reported success and verification is off.
    Applied,
    /// The pinned versions were found installed.
    Verified,
    /// The apply or the verification failed.
    Failed {
        /// Which step.
        step: HostStep,
        /// The report's words.
        detail: String,
    },
    /// The host was lost in the middle of a step. Counted as failed, never dropped.
    Lost {
        /// The transport's words.
        reason: String,
    },
}

impl HostPhase {
    /// Apply, reconcile or verify is outstanding.
    pub fn in_flight(&self) -> bool {
        matches!(
            self,
            HostPhase::Applying | HostPhase::Reconciling | HostPhase::Verifying
        )
    }

    /// Counts against the failure budgets.
    pub fn is_failure(&self) -> bool {
        matches!(self, HostPhase::Failed { .. } | HostPhase::Lost { .. })
    }

    /// An apply was attempted and has ended, so there may be something to roll back.
    pub fn attempted(&self) -> bool {
        matches!(
            self,
            HostPhase::Applied
                | HostPhase::Verified
                | HostPhase::Failed { .. }
                | HostPhase::Lost { .. }
        )
    }

    /// The apply reported success (whatever the verification said after).
    pub fn applied(&self) -> bool {
        matches!(
            self,
            HostPhase::Verifying
                | HostPhase::Applied
                | HostPhase::Verified
                | HostPhase::Failed {
                    step: HostStep::Verify,
                    ..
                }
        )
    }

    /// Carries the manifest, as far as anyone can tell.
    pub fn patched(&self) -> bool {
        matches!(self, HostPhase::Applied | HostPhase::Verified)
    }
}

impl fmt::Display for HostPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPhase::Pending => f.write_str("pending"),
            HostPhase::Applying => f.write_str("applying"),
            HostPhase::Reconciling => f.write_str("reconciling an interrupted apply"),
            HostPhase::Verifying => f.write_str("verifying"),
            HostPhase::Applied => f.write_str("applied"),
            HostPhase::Verified => f.write_str("verified"),
            HostPhase::Failed {
                step: HostStep::Apply,
                detail,
            } => write!(f, "apply failed: {detail}"),
            HostPhase::Failed {
                step: HostStep::Verify,
                detail,
            } => write!(f, "verify failed: {detail}"),
            HostPhase::Lost { reason } => write!(f, "lost: {reason}"),
        }
    }
}

/// Whether and how a host is being rolled back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackPhase {
    /// No rollback asked for.
    #[default]
    NotRequested,
    /// A rollback is due; the next decision asks for it.
    Wanted,
    /// `Rollback` was asked for (the intent is persisted); waiting for its report.
    RollingBack,
    /// The runner died during the rollback; `Reconcile` settles whether it took.
    Reconciling,
    /// The previous versions are back.
    RolledBack,
    /// The rollback failed: the host needs a human.
    Failed {
        /// The report's words.
        detail: String,
    },
}

impl RollbackPhase {
    /// A rollback is due or outstanding.
    pub fn pending(&self) -> bool {
        matches!(
            self,
            RollbackPhase::Wanted | RollbackPhase::RollingBack | RollbackPhase::Reconciling
        )
    }
}

/// One host's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// Its stage.
    pub stage: StageId,
    /// How far the manifest got.
    pub phase: HostPhase,
    /// Whether it is being rolled back.
    pub rollback: RollbackPhase,
}

impl HostState {
    /// Something is outstanding on the host: an apply, verify, reconcile or rollback.
    pub fn busy(&self) -> bool {
        self.phase.in_flight() || self.rollback.pending()
    }
}

/// Operational tallies. They count what was asked and seen, so a crash and resume shows up
/// here (e.g. as extra reconciles) while host and stage phases end the same.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// `Apply` actions issued.
    pub applies: u64,
    /// Interrupted steps found, each answered by a `Reconcile`.
    pub reconciles: u64,
    /// `Rollback` actions issued.
    pub rollbacks: u64,
    /// Observations received.
    pub observations: u64,
    /// Observations ignored as unknown, stale or duplicate.
    pub ignored: u64,
}

/// Something worth telling a human, with when it was decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The `now` of the decision that recorded it.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened. Successful host steps are not recorded (the host phases show them);
/// failures, stage moves, verdicts and operator commands are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// An operator started the rollout.
    Started {
        /// Who.
        by: String,
    },
    /// A stage started.
    StageStarted {
        /// The stage.
        stage: StageId,
    },
    /// A host's apply or verification failed.
    HostFailed {
        /// The host.
        host: HostId,
        /// Which step.
        step: HostStep,
        /// The report's words.
        detail: String,
    },
    /// A host was lost.
    HostLost {
        /// The host.
        host: HostId,
        /// The transport's words.
        reason: String,
    },
    /// Steps without an outcome were found: the previous runner died during them.
    Interrupted {
        /// The step.
        step: ChangeKind,
        /// The hosts.
        hosts: Vec<HostId>,
    },
    /// An interrupted step was settled.
    Reconciled {
        /// The host.
        host: HostId,
        /// The step.
        step: ChangeKind,
        /// Whether it took.
        took: bool,
    },
    /// A host's rollback failed.
    RollbackFailed {
        /// The host.
        host: HostId,
        /// The report's words.
        detail: String,
    },
    /// A health verdict arrived.
    Verdict {
        /// The stage.
        stage: StageId,
        /// Which check.
        check: HealthCheck,
        /// The verdict.
        verdict: Verdict,
    },
    /// The canary started soaking.
    SoakStarted {
        /// The stage.
        stage: StageId,
        /// Until when.
        until: DateTime<Utc>,
    },
    /// A stage passed.
    StagePassed {
        /// The stage.
        stage: StageId,
    },
    /// The rollout paused for a human.
    Paused {
        /// Why.
        reason: String,
    },
    /// An operator approved going on.
    Approved {
        /// Who.
        by: String,
    },
    /// An operator aborted.
    AbortRequested {
        /// Who.
        by: String,
        /// Why.
        reason: String,
    },
    /// An operator asked for a rollback of everything.
    RollbackRequested {
        /// Who.
        by: String,
    },
    /// The rollout halted and rolls back.
    Halted {
        /// Why.
        reason: String,
    },
    /// The rollout ended.
    Finished {
        /// How.
        outcome: Outcome,
    },
    /// An observation was ignored.
    Ignored {
        /// The observation, as text.
        observation: String,
        /// Why.
        why: String,
    },
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Started { by } => write!(f, "started by {by}"),
            EventKind::StageStarted { stage } => write!(f, "{stage} started"),
            EventKind::HostFailed { host, step, detail } => {
                let step = match step {
                    HostStep::Apply => "apply",
                    HostStep::Verify => "verify",
                };
                write!(f, "{host}: {step} failed: {detail}")
            }
            EventKind::HostLost { host, reason } => write!(f, "{host} lost: {reason}"),
            EventKind::Interrupted { step, hosts } => {
                let hosts: Vec<&str> = hosts.iter().map(HostId::as_str).collect();
                write!(
                    f,
                    "interrupted {} on {}: reconciling",
                    step.as_str(),
                    hosts.join(", ")
                )
            }
            EventKind::Reconciled { host, step, took } => write!(
                f,
                "{host}: interrupted {} {}",
                step.as_str(),
                if *took { "took" } else { "did not take" }
            ),
            EventKind::RollbackFailed { host, detail } => {
                write!(f, "{host}: rollback failed: {detail}")
            }
            EventKind::Verdict {
                stage,
                check,
                verdict,
            } => write!(f, "{stage} {check}: {verdict}"),
            EventKind::SoakStarted { stage, until } => {
                write!(f, "{stage} soaking until {}", until.to_rfc3339())
            }
            EventKind::StagePassed { stage } => write!(f, "{stage} passed"),
            EventKind::Paused { reason } => write!(f, "paused: {reason}"),
            EventKind::Approved { by } => write!(f, "approved by {by}"),
            EventKind::AbortRequested { by, reason } => write!(f, "abort by {by}: {reason}"),
            EventKind::RollbackRequested { by } => write!(f, "rollback requested by {by}"),
            EventKind::Halted { reason } => write!(f, "halted: {reason}"),
            EventKind::Finished { outcome } => write!(f, "finished: {outcome}"),
            EventKind::Ignored { observation, why } => {
                write!(f, "ignored {observation}: {why}")
            }
        }
    }
}

/// What the rollout waits for, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "kebab-case")]
pub enum WaitingFor {
    /// An operator's `Start`.
    Start,
    /// Outcomes of steps in flight on these many hosts.
    Hosts {
        /// How many hosts are busy.
        busy: usize,
    },
    /// The baseline of a stage.
    Baseline {
        /// The stage.
        stage: StageId,
    },
    /// A health verdict.
    Health {
        /// The stage.
        stage: StageId,
        /// Which check.
        check: HealthCheck,
    },
    /// A point in time.
    Until {
        /// When.
        at: DateTime<Utc>,
        /// What for.
        reason: WaitReason,
    },
    /// A human's approval (or abort).
    Approval {
        /// What needs approving.
        reason: String,
    },
    /// Nothing: the rollout is over.
    Nothing,
}

impl fmt::Display for WaitingFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitingFor::Start => f.write_str("an operator to start it"),
            WaitingFor::Hosts { busy } => write!(f, "outcomes from {busy} busy hosts"),
            WaitingFor::Baseline { stage } => write!(f, "the baseline of {stage}"),
            WaitingFor::Health { stage, check } => write!(f, "the {check} verdict of {stage}"),
            WaitingFor::Until { at, reason } => write!(f, "{} ({reason})", at.to_rfc3339()),
            WaitingFor::Approval { reason } => write!(f, "approval: {reason}"),
            WaitingFor::Nothing => f.write_str("nothing (finished)"),
        }
    }
}

/// The whole state of one rollout. Serialise it to persist it; change it only through
/// [`crate::decide`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub(crate) id: String,
    /// Shared, not copied, by every decision: the plan never changes.
    pub(crate) plan: Arc<Plan>,
    pub(crate) status: Status,
    /// Index of the current stage; equal to the number of stages once all passed.
    pub(crate) current: usize,
    pub(crate) stages: Vec<StageState>,
    pub(crate) hosts: BTreeMap<HostId, HostState>,
    pub(crate) counters: Counters,
    pub(crate) history: VecDeque<Event>,
    pub(crate) dropped_events: u64,
    pub(crate) waiting_for: WaitingFor,
}

impl Rollout {
    /// A planned rollout named `id` (chosen by the engine) of `plan`. Nothing happens until
    /// an operator's `Start` is observed.
    pub fn new(id: &str, plan: Plan) -> Rollout {
        let stages = plan
            .stages()
            .iter()
            .map(|s| StageState {
                id: s.id,
                phase: StagePhase::Pending,
                started_at: None,
                ended_at: None,
            })
            .collect();
        let hosts = plan
            .stages()
            .iter()
            .flat_map(|s| {
                s.hosts.iter().map(|h| {
                    (
                        h.host.clone(),
                        HostState {
                            stage: s.id,
                            phase: HostPhase::Pending,
                            rollback: RollbackPhase::NotRequested,
                        },
                    )
                })
            })
            .collect();
        Rollout {
            id: id.to_string(),
            plan: Arc::new(plan),
            status: Status::Planned,
            current: 0,
            stages,
            hosts,
            counters: Counters::default(),
            history: VecDeque::new(),
            dropped_events: 0,
            waiting_for: WaitingFor::Start,
        }
    }

    /// The id the engine gave it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The plan it follows.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The pinned set it installs.
    pub fn manifest(&self) -> &ReleaseManifest {
        self.plan.manifest()
    }

    /// The policy it follows.
    pub fn policy(&self) -> &Policy {
        self.plan.policy()
    }

    /// Where it stands.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The stage in progress (or that stopped it); `None` before the first and after the
    /// last.
    pub fn current_stage(&self) -> Option<StageId> {
        if matches!(self.status, Status::Planned) {
            return None;
        }
        self.stages.get(self.current).map(|s| s.id)
    }

    /// Every stage's progress, in order.
    pub fn stages(&self) -> &[StageState] {
        &self.stages
    }

    /// One host's progress, if it is staged.
    pub fn host(&self, host: &HostId) -> Option<&HostState> {
        self.hosts.get(host)
    }

    /// Every staged host's progress, by id.
    pub fn hosts(&self) -> &BTreeMap<HostId, HostState> {
        &self.hosts
    }

    /// Operational tallies.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The most recent events, oldest first (at most [`HISTORY_LIMIT`]).
    pub fn history(&self) -> impl Iterator<Item = &Event> {
        self.history.iter()
    }

    /// How many older events were dropped from the history.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// What it waits for, as of the last decision.
    pub fn waiting_for(&self) -> &WaitingFor {
        &self.waiting_for
    }

    /// Appends an event, dropping the oldest beyond [`HISTORY_LIMIT`].
    pub(crate) fn record(&mut self, at: DateTime<Utc>, kind: EventKind) {
        if self.history.len() >= HISTORY_LIMIT {
            self.history.pop_front();
            self.dropped_events += 1;
        }
        self.history.push_back(Event { at, kind });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word is the tag of the serialized status, for every variant: what the store
    /// keeps beside the state and what the state says agree.
    #[test]
    fn the_status_word_is_the_serialized_tag() {
        let r = || "r".to_string();
        let all = [
            Status::Planned,
            Status::Running,
            Status::Paused { reason: r() },
            Status::Aborting {
                by: r(),
                reason: r(),
            },
            Status::Aborted {
                by: r(),
                reason: r(),
            },
            Status::Halted {
                reason: r(),
                scope: HaltScope::Stage(StageId::Canary),
            },
            Status::RolledBack { reason: r() },
            Status::RollbackFailed {
                reason: r(),
                hosts: vec![HostId("h".into())],
            },
            Status::Completed,
        ];
        let finals: Vec<&str> = all
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.word())
            .collect();
        assert_eq!(
            finals,
            ["aborted", "rolled-back", "rollback-failed", "completed"]
        );
        for status in all {
            let tag = match serde_json::to_value(&status).unwrap() {
                serde_json::Value::String(s) => s,
                serde_json::Value::Object(m) => m.keys().next().unwrap().clone(),
                other => panic!("{other}"),
            };
            assert_eq!(status.word(), tag, "{status:?}");
        }
    }
}
