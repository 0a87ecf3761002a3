//! The human view of a rollout, for `rollout status`.

use std::fmt;

use patchwave_core::HostId;
use serde::{Deserialize, Serialize};

use crate::manifest::PatchClass;
use crate::plan::{ForceRecord, StageId};
use crate::state::{HostPhase, RollbackPhase, Rollout, StagePhase, Status, WaitingFor};

/// Host tallies and phase of one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageSummary {
    /// The stage.
    pub stage: StageId,
    /// Where it stands.
    pub phase: StagePhase,
    /// Hosts in the stage.
    pub total: usize,
    /// Not started.
    pub pending: usize,
    /// With an apply, reconcile or verify outstanding.
    pub in_flight: usize,
    /// Whose apply reported success (verified or not).
    pub applied: usize,
    /// Whose pinned versions were found installed.
    pub verified: usize,
    /// Whose apply or verification failed.
    pub failed: usize,
    /// Lost mid-step.
    pub lost: usize,
    /// Rolled back.
    pub rolled_back: usize,
    /// Whose rollback failed.
    pub rollback_failed: usize,
}

/// A host that needs attention, with what went wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProblem {
    /// The host.
    pub host: HostId,
    /// Its stage.
    pub stage: StageId,
    /// What went wrong.
    pub problem: String,
}

/// Everything `rollout status` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The rollout's id.
    pub id: String,
    /// The manifest's id.
    pub manifest_id: String,
    /// The manifest's class.
    pub class: PatchClass,
    /// Where the rollout stands.
    pub status: Status,
    /// The stage in progress, if any.
    pub current_stage: Option<StageId>,
    /// Every stage.
    pub stages: Vec<StageSummary>,
    /// Targets that needed nothing.
    pub up_to_date: usize,
    /// What it waits for.
    pub waiting_for: WaitingFor,
    /// The force the plan was made with, if any.
    pub forced: Option<ForceRecord>,
    /// Failed, lost and not-rolled-back hosts, in plan order.
    pub problems: Vec<HostProblem>,
}

impl Rollout {
    /// The human view: per stage, hosts total / applied / verified / failed / lost / rolled
    /// back and the stage's phase, plus what the rollout waits for.
    pub fn summary(&self) -> Summary {
        Summary {
            id: self.id.clone(),
            manifest_id: self.manifest().id().to_string(),
            class: self.manifest().class(),
            status: self.status.clone(),
            current_stage: self.current_stage(),
            stages: self
                .stages
                .iter()
                .map(|stage| self.stage_summary(stage.id, &stage.phase))
                .collect(),
            up_to_date: self.plan.up_to_date().len(),
            waiting_for: self.waiting_for.clone(),
            forced: self.plan.forced().cloned(),
            problems: self.host_problems(),
        }
    }

    fn stage_summary(&self, stage: StageId, phase: &StagePhase) -> StageSummary {
        let mut s = StageSummary {
            stage,
            phase: phase.clone(),
            total: 0,
            pending: 0,
            in_flight: 0,
            applied: 0,
            verified: 0,
            failed: 0,
            lost: 0,
            rolled_back: 0,
            rollback_failed: 0,
        };
        for host in self.hosts.values().filter(|h| h.stage == stage) {
            s.total += 1;
            s.pending += usize::from(host.phase == HostPhase::Pending);
            s.in_flight += usize::from(host.phase.in_flight());
            s.applied += usize::from(host.phase.applied());
            s.verified += usize::from(host.phase == HostPhase::Verified);
            s.failed += usize::from(matches!(host.phase, HostPhase::Failed { .. }));
            s.lost += usize::from(matches!(host.phase, HostPhase::Lost { .. }));
            s.rolled_back += usize::from(host.rollback == RollbackPhase::RolledBack);
            s.rollback_failed += usize::from(matches!(host.rollback, RollbackPhase::Failed { .. }));
        }
        s
    }

    fn host_problems(&self) -> Vec<HostProblem> {
        let mut problems = Vec::new();
        for planned in self.plan.stages() {
            for host in &planned.hosts {
                let Some(state) = self.hosts.get(&host.host) else {
                    continue;
                };
                let mut what = Vec::new();
                if state.phase.is_failure() {
                    what.push(state.phase.to_string());
                }
                if let RollbackPhase::Failed { detail } = &state.rollback {
                    what.push(format!("rollback failed: {detail}"));
                }
                if !what.is_empty() {
                    problems.push(HostProblem {
                        host: host.host.clone(),
                        stage: planned.id,
                        problem: what.join("; "),
                    });
                }
            }
        }
        problems
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rollout {} of manifest {} ({}): {}",
            self.id, self.manifest_id, self.class, self.status
        )?;
        writeln!(
            f,
            "{:<8} {:>5} {:>7} {:>9} {:>7} {:>8} {:>6} {:>4} {:>11} {:>15}  phase",
            "stage",
            "hosts",
            "pending",
            "in-flight",
            "applied",
            "verified",
            "failed",
            "lost",
            "rolled-back",
            "rollback-failed"
        )?;
        for s in &self.stages {
            writeln!(
                f,
                "{:<8} {:>5} {:>7} {:>9} {:>7} {:>8} {:>6} {:>4} {:>11} {:>15}  {}",
                s.stage.to_string(),
                s.total,
                s.pending,
                s.in_flight,
                s.applied,
                s.verified,
                s.failed,
                s.lost,
                s.rolled_back,
                s.rollback_failed,
                s.phase
            )?;
        }
        writeln!(f, "up to date: {} hosts", self.up_to_date)?;
        for p in &self.problems {
            writeln!(f, "problem: {} ({}): {}", p.host, p.stage, p.problem)?;
        }
        if let Some(forced) = &self.forced {
            let overridden: Vec<String> =
                forced.overridden.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "forced by {}: {} (overrode: {})",
                forced.by,
                forced.reason,
                overridden.join(" | ")
            )?;
        }
        write!(f, "waiting for: {}", self.waiting_for)
    }
}
