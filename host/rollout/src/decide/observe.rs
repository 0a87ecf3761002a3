//! How each observation changes the state. An observation that does not fit the state
//! (unknown host, stale or duplicate report) is ignored and recorded in the history.

use chrono::{DateTime, Utc};
use patchwave_core::change::ChangeKind;
use patchwave_core::HostId;

use crate::health::{HealthCheck, Verdict};
use crate::observation::Observation;
use crate::plan::StageId;
use crate::state::{
    EventKind, HaltScope, HostPhase, HostStep, RollbackPhase, Rollout, StagePhase, StageState,
    Status,
};

impl Rollout {
    pub(super) fn observe(&mut self, now: DateTime<Utc>, observation: &Observation) {
        let result = match observation {
            Observation::Start { by } => self.on_start(now, by),
            Observation::Approved { by } => self.on_approved(now, by),
            Observation::Abort { by, reason } => self.on_abort(now, by, reason),
            Observation::RollbackRequested { by } => self.on_rollback_requested(now, by),
            Observation::Applied { host, ok, detail } => self.on_applied(now, host, *ok, detail),
            Observation::Verified { host, ok, detail } => self.on_verified(now, host, *ok, detail),
            Observation::HostLost { host, reason } => self.on_host_lost(now, host, reason),
            Observation::Reconciled { host, took } => self.on_reconciled(now, host, *took),
            Observation::BaselineCaptured { stage } => self.on_baseline(*stage),
            Observation::Health {
                stage,
                check,
                verdict,
            } => self.on_health(now, *stage, *check, verdict),
            Observation::RolledBack { host, ok, detail } => {
                self.on_rolled_back(now, host, *ok, detail)
            }
        };
        if let Err(why) = result {
            self.counters.ignored += 1;
            self.record(
                now,
                EventKind::Ignored {
                    observation: observation.to_string(),
                    why,
                },
            );
        }
    }

    fn on_start(&mut self, now: DateTime<Utc>, by: &str) -> Result<(), String> {
        if self.status != Status::Planned {
            return Err(format!("the rollout is already {}", self.status));
        }
        self.status = Status::Running;
        self.record(now, EventKind::Started { by: by.to_string() });
        Ok(())
    }

    fn on_approved(&mut self, now: DateTime<Utc>, by: &str) -> Result<(), String> {
        if !matches!(self.status, Status::Paused { .. }) {
            return Err(format!(
                "nothing awaits approval (the rollout is {})",
                self.status
            ));
        }
        self.status = Status::Running;
        self.record(now, EventKind::Approved { by: by.to_string() });
        if let Some(StagePhase::AwaitingApproval { check, .. }) = self.current_phase().cloned() {
            self.verdict_go(now, check);
        }
        Ok(())
    }

    fn on_abort(&mut self, now: DateTime<Utc>, by: &str, reason: &str) -> Result<(), String> {
        let (by, reason) = (by.to_string(), reason.to_string());
        match self.status {
            Status::Planned => {
                self.record(
                    now,
                    EventKind::AbortRequested {
                        by: by.clone(),
                        reason: reason.clone(),
                    },
                );
                self.finish(now, Status::Aborted { by, reason });
            }
            Status::Running | Status::Paused { .. } => {
                self.record(
                    now,
                    EventKind::AbortRequested {
                        by: by.clone(),
                        reason: reason.clone(),
                    },
                );
                self.status = Status::Aborting { by, reason };
            }
            Status::Halted { .. } => {
                return Err("a rollback is in progress and cannot be aborted".to_string())
            }
            _ => return Err(format!("the rollout is already {}", self.status)),
        }
        Ok(())
    }

    fn on_rollback_requested(&mut self, now: DateTime<Utc>, by: &str) -> Result<(), String> {
        match &self.status {
            Status::Planned => return Err("nothing has been applied yet".to_string()),
            Status::Halted {
                scope: HaltScope::AllStages,
                ..
            } => return Err("every stage is already being rolled back".to_string()),
            _ => {}
        }
        let candidates = self
            .hosts
            .values()
            .filter(|h| {
                (h.phase.attempted() || h.phase.in_flight())
                    && matches!(
                        h.rollback,
                        RollbackPhase::NotRequested | RollbackPhase::Failed { .. }
                    )
            })
            .count();
        if candidates == 0 && self.status.is_final() {
            return Err("nothing is left to roll back".to_string());
        }
        for host in self.hosts.values_mut() {
            if matches!(host.rollback, RollbackPhase::Failed { .. }) {
                host.rollback = RollbackPhase::NotRequested;
            }
        }
        self.record(now, EventKind::RollbackRequested { by: by.to_string() });
        self.halt(
            now,
            format!("rollback requested by {by}"),
            HaltScope::AllStages,
        );
        Ok(())
    }

    fn on_applied(
        &mut self,
        now: DateTime<Utc>,
        host: &HostId,
        ok: bool,
        detail: &str,
    ) -> Result<(), String> {
        let verify = self.plan.policy().verify;
        let state = self.hosts.get_mut(host).ok_or_else(|| not_staged(host))?;
        if state.phase != HostPhase::Applying {
            return Err(format!("{host} is {}, not applying", state.phase));
        }
        state.phase = match (ok, verify) {
            (true, true) => HostPhase::Verifying,
            (true, false) => HostPhase::Applied,
            (false, _) => HostPhase::Failed {
                step: HostStep::Apply,
                detail: detail.to_string(),
            },
        };
        if !ok {
            self.record_failure(now, host, HostStep::Apply, detail);
        }
        Ok(())
    }

    fn on_verified(
        &mut self,
        now: DateTime<Utc>,
        host: &HostId,
        ok: bool,
        detail: &str,
    ) -> Result<(), String> {
        let state = self.hosts.get_mut(host).ok_or_else(|| not_staged(host))?;
        if state.phase != HostPhase::Verifying {
            return Err(format!("{host} is {}, not verifying", state.phase));
        }
        if ok {
            state.phase = HostPhase::Verified;
        } else {
            state.phase = HostPhase::Failed {
                step: HostStep::Verify,
                detail: detail.to_string(),
            };
            self.record_failure(now, host, HostStep::Verify, detail);
        }
        Ok(())
    }

    fn record_failure(&mut self, now: DateTime<Utc>, host: &HostId, step: HostStep, detail: &str) {
        self.record(
            now,
            EventKind::HostFailed {
                host: host.clone(),
                step,
                detail: detail.to_string(),
            },
        );
    }

    fn on_host_lost(
        &mut self,
        now: DateTime<Utc>,
        host: &HostId,
        reason: &str,
    ) -> Result<(), String> {
        let state = self.hosts.get_mut(host).ok_or_else(|| not_staged(host))?;
        if state.phase.in_flight() {
            state.phase = HostPhase::Lost {
                reason: reason.to_string(),
            };
            self.record(
                now,
                EventKind::HostLost {
                    host: host.clone(),
                    reason: reason.to_string(),
                },
            );
        } else if matches!(
            state.rollback,
            RollbackPhase::RollingBack | RollbackPhase::Reconciling
        ) {
            let detail = format!("host lost: {reason}");
            state.rollback = RollbackPhase::Failed {
                detail: detail.clone(),
            };
            self.record(
                now,
                EventKind::RollbackFailed {
                    host: host.clone(),
                    detail,
                },
            );
        } else {
            return Err(format!("nothing is in flight on {host} ({})", state.phase));
        }
        Ok(())
    }

    fn on_reconciled(
        &mut self,
        now: DateTime<Utc>,
        host: &HostId,
        took: bool,
    ) -> Result<(), String> {
        let verify = self.plan.policy().verify;
        let state = self.hosts.get_mut(host).ok_or_else(|| not_staged(host))?;
        let step = if state.phase == HostPhase::Reconciling {
            state.phase = match (took, verify) {
                (true, true) => HostPhase::Verifying,
                (true, false) => HostPhase::Applied,
                (false, _) => HostPhase::Pending,
            };
            ChangeKind::Apply
        } else if state.rollback == RollbackPhase::Reconciling {
            state.rollback = if took {
                RollbackPhase::RolledBack
            } else {
                RollbackPhase::Wanted
            };
            ChangeKind::Rollback
        } else {
            return Err(format!("{host} has no interrupted step ({})", state.phase));
        };
        self.record(
            now,
            EventKind::Reconciled {
                host: host.clone(),
                step,
                took,
            },
        );
        Ok(())
    }

    fn on_rolled_back(
        &mut self,
        now: DateTime<Utc>,
        host: &HostId,
        ok: bool,
        detail: &str,
    ) -> Result<(), String> {
        let state = self.hosts.get_mut(host).ok_or_else(|| not_staged(host))?;
        if state.rollback != RollbackPhase::RollingBack {
            return Err(format!("{host} is not rolling back"));
        }
        if ok {
            state.rollback = RollbackPhase::RolledBack;
        } else {
            state.rollback = RollbackPhase::Failed {
                detail: detail.to_string(),
            };
            self.record(
                now,
                EventKind::RollbackFailed {
                    host: host.clone(),
                    detail: detail.to_string(),
                },
            );
        }
        Ok(())
    }

    fn on_baseline(&mut self, stage: StageId) -> Result<(), String> {
        let current = self.running_stage(stage)?;
        if current.phase != StagePhase::CapturingBaseline {
            return Err(format!(
                "{stage} is {}, not capturing a baseline",
                current.phase
            ));
        }
        current.phase = StagePhase::Running;
        Ok(())
    }

    fn on_health(
        &mut self,
        now: DateTime<Utc>,
        stage: StageId,
        check: HealthCheck,
        verdict: &Verdict,
    ) -> Result<(), String> {
        let current = self.running_stage(stage)?;
        if current.phase != (StagePhase::Checking { check }) {
            return Err(format!(
                "{stage} is {}, not waiting for its {check}",
                current.phase
            ));
        }
        self.record(
            now,
            EventKind::Verdict {
                stage,
                check,
                verdict: verdict.clone(),
            },
        );
        match verdict {
            Verdict::Go => self.verdict_go(now, check),
            Verdict::NoGo(reason) => {
                let scope = self.policy_scope(stage);
                self.halt(now, format!("{stage} {check}: no-go: {reason}"), scope);
            }
            Verdict::Inconclusive(reason) => {
                if let Some(current) = self.stages.get_mut(self.current) {
                    current.phase = StagePhase::AwaitingApproval {
                        check,
                        reason: reason.clone(),
                    };
                }
                self.pause(now, format!("{stage} {check} inconclusive: {reason}"));
            }
        }
        Ok(())
    }

    /// The current stage, if the rollout is running and it is `stage`.
    fn running_stage(&mut self, stage: StageId) -> Result<&mut StageState, String> {
        if self.status != Status::Running {
            return Err(format!("the rollout is {}", self.status));
        }
        match self.stages.get_mut(self.current) {
            Some(current) if current.id == stage => Ok(current),
            Some(current) => Err(format!("the current stage is {}", current.id)),
            None => Err("every stage has passed".to_string()),
        }
    }
}

fn not_staged(host: &HostId) -> String {
    format!("{host} is not staged in this rollout")
}
