//! The stage machine: starting stages, running hosts within the window and the budgets,
//! gates, the canary soak, halts and rollbacks.

use chrono::{DateTime, Utc};
use patchwave_core::HostId;

use crate::action::{Action, Outcome, WaitReason};
use crate::health::HealthCheck;
use crate::plan::StageId;
use crate::policy::RollbackScope;
use crate::state::{EventKind, HaltScope, HostPhase, RollbackPhase, Rollout, StagePhase, Status};

/// Whether a stage may start hosts now.
enum Gate {
    /// No window, or it is open.
    Open,
    /// Closed; it opens next at this instant.
    ClosedUntil(DateTime<Utc>),
    /// The window cannot be used (it never opens again, or is invalid); says why.
    Unusable(String),
}

impl Rollout {
    /// The phase of the current stage, if there is one.
    pub(super) fn current_phase(&self) -> Option<&StagePhase> {
        self.stages.get(self.current).map(|s| &s.phase)
    }

    fn set_current_phase(&mut self, phase: StagePhase) {
        if let Some(stage) = self.stages.get_mut(self.current) {
            stage.phase = phase;
        }
    }

    /// What a no-go at `stage` rolls back under the policy.
    pub(super) fn policy_scope(&self, stage: StageId) -> HaltScope {
        match self.plan.policy().rollback_scope {
            RollbackScope::Stage => HaltScope::Stage(stage),
            RollbackScope::All => HaltScope::AllStages,
        }
    }

    /// A go for `check` of the current stage.
    pub(super) fn verdict_go(&mut self, now: DateTime<Utc>, check: HealthCheck) {
        match check {
            HealthCheck::Gate => {
                if self.plan.policy().rollback_failed_hosts {
                    self.want_rollback_of_failures();
                }
                self.set_current_phase(StagePhase::Settling);
            }
            HealthCheck::Smoke => self.pass_current(now),
        }
    }

    fn want_rollback_of_failures(&mut self) {
        let Some(stage) = self.stages.get(self.current).map(|s| s.id) else {
            return;
        };
        for host in self.hosts.values_mut() {
            if host.stage == stage
                && host.phase.is_failure()
                && host.rollback == RollbackPhase::NotRequested
            {
                host.rollback = RollbackPhase::Wanted;
            }
        }
    }

    fn pass_current(&mut self, now: DateTime<Utc>) {
        if let Some(stage) = self.stages.get_mut(self.current) {
            stage.phase = StagePhase::Passed;
            stage.ended_at = Some(now);
            let id = stage.id;
            self.record(now, EventKind::StagePassed { stage: id });
        }
    }

    pub(super) fn pause(&mut self, now: DateTime<Utc>, reason: String) {
        self.record(
            now,
            EventKind::Paused {
                reason: reason.clone(),
            },
        );
        self.status = Status::Paused { reason };
    }

    pub(super) fn halt(&mut self, now: DateTime<Utc>, reason: String, scope: HaltScope) {
        if let Some(stage) = self.stages.get_mut(self.current) {
            if !matches!(stage.phase, StagePhase::Pending | StagePhase::Passed) {
                stage.phase = StagePhase::Failed {
                    reason: reason.clone(),
                };
                stage.ended_at = Some(now);
            }
        }
        self.record(
            now,
            EventKind::Halted {
                reason: reason.clone(),
            },
        );
        self.status = Status::Halted { reason, scope };
    }

    /// Moves to a final status and records how it ended.
    pub(super) fn finish(&mut self, now: DateTime<Utc>, status: Status) {
        self.status = status;
        if let Some(outcome) = self.outcome() {
            self.record(now, EventKind::Finished { outcome });
        }
    }

    /// How the rollout ended, once its status is final.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        match &self.status {
            Status::Completed => Some(Outcome::Completed {
                hosts: self.hosts.len(),
                failed: self.hosts.values().filter(|h| h.phase.is_failure()).count(),
                rollback_failed: self
                    .hosts
                    .values()
                    .filter(|h| matches!(h.rollback, RollbackPhase::Failed { .. }))
                    .count(),
            }),
            Status::RolledBack { reason } => Some(Outcome::RolledBack {
                reason: reason.clone(),
            }),
            Status::RollbackFailed { reason, hosts } => Some(Outcome::RollbackFailed {
                reason: reason.clone(),
                hosts: hosts.clone(),
            }),
            Status::Aborted { by, reason } => Some(Outcome::Aborted {
                by: by.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        }
    }

    /// Takes every step possible without new outcomes.
    pub(super) fn advance(&mut self, now: DateTime<Utc>, actions: &mut Vec<Action>) {
        // Each step that moves changes the status or a stage phase, or passes a stage, so
        // this bound is never reached by a consistent state; it guards a tampered one.
        let limit = 8 * self.stages.len() + 16;
        for _ in 0..limit {
            if !self.step(now, actions) {
                break;
            }
        }
    }

    /// One step; true when something moved and another step may follow.
    fn step(&mut self, now: DateTime<Utc>, actions: &mut Vec<Action>) -> bool {
        match &self.status {
            Status::Running => self.step_running(now, actions),
            Status::Paused { reason } => {
                actions.push(Action::AwaitApproval {
                    reason: reason.clone(),
                });
                false
            }
            Status::Aborting { by, reason } => {
                if self.any_busy() {
                    return false;
                }
                let status = Status::Aborted {
                    by: by.clone(),
                    reason: reason.clone(),
                };
                self.finish(now, status);
                true
            }
            Status::Halted { reason, scope } => {
                let (reason, scope) = (reason.clone(), *scope);
                self.step_halted(now, reason, scope)
            }
            _ => false,
        }
    }

    fn step_running(&mut self, now: DateTime<Utc>, actions: &mut Vec<Action>) -> bool {
        let Some(stage) = self.stages.get(self.current) else {
            self.finish(now, Status::Completed);
            return true;
        };
        let id = stage.id;
        match stage.phase.clone() {
            StagePhase::Pending => self.start_stage(now, id, actions),
            StagePhase::CapturingBaseline => {
                actions.push(Action::CaptureBaseline { stage: id });
                false
            }
            StagePhase::Running => self.run_hosts(now, id, actions),
            StagePhase::Checking { check } => {
                actions.push(Action::CheckHealth {
                    stage: id,
                    check,
                    hosts: self.patched_hosts(id),
                });
                false
            }
            StagePhase::AwaitingApproval { check, reason } => {
                self.pause(now, format!("{id} {check} inconclusive: {reason}"));
                true
            }
            StagePhase::Settling => {
                if self.hosts.values().any(|h| h.stage == id && h.busy()) {
                    return false;
                }
                self.after_gate(now, id);
                true
            }
            StagePhase::Soaking { until } => {
                if now >= until {
                    self.set_current_phase(StagePhase::Checking {
                        check: HealthCheck::Smoke,
                    });
                    return true;
                }
                actions.push(Action::WaitUntil {
                    at: until,
                    reason: WaitReason::Soak { stage: id },
                });
                false
            }
            StagePhase::Passed => {
                self.current += 1;
                true
            }
            StagePhase::Failed { reason } => {
                let scope = self.policy_scope(id);
                self.halt(now, reason, scope);
                true
            }
        }
    }

    fn start_stage(&mut self, now: DateTime<Utc>, id: StageId, actions: &mut Vec<Action>) -> bool {
        if matches!(id, StageId::Wave(_)) {
            match self.window_gate(now) {
                Gate::Open => {}
                Gate::ClosedUntil(at) => {
                    actions.push(Action::WaitUntil {
                        at,
                        reason: WaitReason::Window { stage: id },
                    });
                    return false;
                }
                Gate::Unusable(reason) => {
                    self.pause(now, reason);
                    return true;
                }
            }
        }
        if let Some(stage) = self.stages.get_mut(self.current) {
            stage.phase = StagePhase::CapturingBaseline;
            stage.started_at = Some(now);
        }
        self.record(now, EventKind::StageStarted { stage: id });
        true
    }

    fn window_gate(&self, now: DateTime<Utc>) -> Gate {
        match self.plan.policy().window() {
            Ok(None) => Gate::Open,
            Ok(Some(window)) => match window.next_open(now) {
                Some(at) if at <= now => Gate::Open,
                Some(at) => Gate::ClosedUntil(at),
                None => Gate::Unusable(
                    "the maintenance window never opens again; abort or roll back the rollout"
                        .to_string(),
                ),
            },
            Err(problems) => Gate::Unusable(format!(
                "the stored policy's maintenance window is invalid ({problems}); \
                 abort or roll back the rollout"
            )),
        }
    }

    fn run_hosts(&mut self, now: DateTime<Utc>, id: StageId, actions: &mut Vec<Action>) -> bool {
        let (pending, busy) = self.stage_load(id);
        if let Some(reason) = self.budget_exceeded(id) {
            if busy > 0 {
                return false;
            }
            let scope = self.policy_scope(id);
            self.halt(now, reason, scope);
            return true;
        }
        if pending > 0 {
            let slots = match self.plan.policy().max_parallel {
                Some(max) => (max as usize).saturating_sub(busy),
                None => usize::MAX,
            };
            if slots == 0 {
                return false;
            }
            if matches!(id, StageId::Wave(_)) {
                match self.window_gate(now) {
                    Gate::Open => {}
                    Gate::ClosedUntil(at) => {
                        if busy == 0 {
                            actions.push(Action::WaitUntil {
                                at,
                                reason: WaitReason::Window { stage: id },
                            });
                        }
                        return false;
                    }
                    Gate::Unusable(reason) => {
                        self.pause(now, reason);
                        return true;
                    }
                }
            }
            self.start_hosts(slots, actions);
            return false;
        }
        if busy > 0 {
            return false;
        }
        self.set_current_phase(StagePhase::Checking {
            check: HealthCheck::Gate,
        });
        true
    }

    /// Hosts of the stage not started yet, and hosts of the stage with a step outstanding.
    fn stage_load(&self, id: StageId) -> (usize, usize) {
        self.hosts
            .values()
            .filter(|h| h.stage == id)
            .fold((0, 0), |(pending, busy), h| {
                (
                    pending + usize::from(h.phase == HostPhase::Pending),
                    busy + usize::from(h.busy()),
                )
            })
    }

    /// Why the stage or the rollout is over its failure budget, if it is.
    fn budget_exceeded(&self, id: StageId) -> Option<String> {
        let policy = self.plan.policy();
        let (stage_hosts, stage_failed) = self
            .hosts
            .values()
            .filter(|h| h.stage == id)
            .fold((0, 0), |(n, failed), h| {
                (n + 1, failed + usize::from(h.phase.is_failure()))
            });
        if policy.stage_budget.exceeded(stage_failed, stage_hosts) {
            return Some(format!(
                "{id}: {stage_failed} of {stage_hosts} hosts failed, over the stage budget of {}",
                policy.stage_budget.allowed(stage_hosts)
            ));
        }
        let all_hosts = self.hosts.len();
        let all_failed = self.hosts.values().filter(|h| h.phase.is_failure()).count();
        if policy.rollout_budget.exceeded(all_failed, all_hosts) {
            return Some(format!(
                "{all_failed} of {all_hosts} hosts failed over the rollout, over its budget of {}",
                policy.rollout_budget.allowed(all_hosts)
            ));
        }
        None
    }

    /// Starts up to `slots` pending hosts of the current stage, in plan order.
    fn start_hosts(&mut self, slots: usize, actions: &mut Vec<Action>) {
        let Some(planned) = self.plan.stages().get(self.current) else {
            return;
        };
        let mut started = 0;
        for host in &planned.hosts {
            if started == slots {
                break;
            }
            let Some(state) = self.hosts.get_mut(&host.host) else {
                continue;
            };
            if state.phase != HostPhase::Pending {
                continue;
            }
            state.phase = HostPhase::Applying;
            actions.push(Action::Apply {
                host: host.host.clone(),
                changes: host.changes.clone(),
            });
            started += 1;
        }
        self.counters.applies += started as u64;
    }

    /// The stage's hosts that carry the manifest, in plan order.
    fn patched_hosts(&self, id: StageId) -> Vec<HostId> {
        self.planned_hosts_of(id)
            .filter(|h| self.hosts.get(*h).is_some_and(|s| s.phase.patched()))
            .cloned()
            .collect()
    }

    fn planned_hosts_of(&self, id: StageId) -> impl Iterator<Item = &HostId> {
        self.plan
            .stages()
            .iter()
            .filter(move |s| s.id == id)
            .flat_map(|s| s.hosts.iter().map(|h| &h.host))
    }

    /// The gate said go and the failed hosts' own rollbacks are done.
    fn after_gate(&mut self, now: DateTime<Utc>, id: StageId) {
        if id == StageId::Canary {
            let until = now
                .checked_add_signed(self.plan.policy().soak.to_time_delta())
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            self.set_current_phase(StagePhase::Soaking { until });
            self.record(now, EventKind::SoakStarted { stage: id, until });
        } else {
            self.pass_current(now);
        }
    }

    fn step_halted(&mut self, now: DateTime<Utc>, reason: String, scope: HaltScope) -> bool {
        for host in self.hosts.values_mut() {
            let in_scope = match scope {
                HaltScope::Stage(stage) => host.stage == stage,
                HaltScope::AllStages => true,
            };
            if in_scope && host.phase.attempted() && host.rollback == RollbackPhase::NotRequested {
                host.rollback = RollbackPhase::Wanted;
            }
        }
        if self.any_busy() {
            return false;
        }
        let failed: Vec<HostId> = self
            .hosts
            .iter()
            .filter(|(_, h)| matches!(h.rollback, RollbackPhase::Failed { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        let status = if failed.is_empty() {
            Status::RolledBack { reason }
        } else {
            Status::RollbackFailed {
                reason,
                hosts: failed,
            }
        };
        self.finish(now, status);
        true
    }

    fn any_busy(&self) -> bool {
        self.hosts.values().any(|h| h.busy())
    }
}
