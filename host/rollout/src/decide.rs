//! `decide`: the pure step from (state, now, observations) to (next state, actions).
//!
//! One call:
//! 1. applies each observation to a copy of the state (unknown, stale or duplicate ones are
//!    ignored and recorded);
//! 2. turns every apply or rollback that is still marked in flight into a reconcile: the
//!    engine feeds back every outcome before deciding again, so a missing one means the
//!    runner died mid-step, and the step is settled by re-inventory, never repeated blindly;
//! 3. advances the stage machine as far as it can without new outcomes, issuing `Apply` and
//!    `Rollback` exactly once per attempt, on the transition that records the intent;
//! 4. repeats the read-only actions still outstanding (verify, reconcile, baseline, health
//!    check, waits), so deciding again without new observations gives the same actions.

use chrono::{DateTime, Utc};
use patchwave_core::change::ChangeKind;

use crate::action::{Action, Decision};
use crate::observation::Observation;
use crate::state::{EventKind, HostPhase, RollbackPhase, Rollout, Status, WaitingFor};

/// Decides what happens next. Pure and deterministic: the same state, `now` and
/// observations always give the same decision, and deciding again on the returned state
/// without new observations gives the same outstanding actions.
///
/// The engine's loop: load the state, `decide`, persist `decision.state` (it records the
/// intents, e.g. hosts marked applying), execute `decision.actions`, and feed every outcome
/// back as observations to the next `decide`.
pub fn decide(state: &Rollout, now: DateTime<Utc>, observations: &[Observation]) -> Decision {
    let mut next = state.clone();
    for observation in observations {
        next.counters.observations += 1;
        next.observe(now, observation);
    }
    next.reconcile_interrupted(now);
    let mut actions = Vec::new();
    next.advance(now, &mut actions);
    next.start_wanted_rollbacks(&mut actions);
    next.outstanding_host_actions(&mut actions);
    if let Some(outcome) = next.outcome() {
        actions.push(Action::Finished { outcome });
    }
    next.waiting_for = next.waiting_for_given(&actions);
    Decision {
        state: next,
        actions,
    }
}

impl Rollout {
    /// Applies and rollbacks still marked in flight got no outcome: the runner that issued
    /// them died. Settle them by re-inventory instead of issuing them again.
    fn reconcile_interrupted(&mut self, now: DateTime<Utc>) {
        let mut applies = Vec::new();
        let mut rollbacks = Vec::new();
        for (id, host) in self.hosts.iter_mut() {
            if host.phase == HostPhase::Applying {
                host.phase = HostPhase::Reconciling;
                applies.push(id.clone());
            }
            if host.rollback == RollbackPhase::RollingBack {
                host.rollback = RollbackPhase::Reconciling;
                rollbacks.push(id.clone());
            }
        }
        for (step, hosts) in [
            (ChangeKind::Apply, applies),
            (ChangeKind::Rollback, rollbacks),
        ] {
            if !hosts.is_empty() {
                self.counters.reconciles += hosts.len() as u64;
                self.record(now, EventKind::Interrupted { step, hosts });
            }
        }
    }

    /// Issues `Rollback` for every host whose rollback is due, in plan order.
    fn start_wanted_rollbacks(&mut self, actions: &mut Vec<Action>) {
        for planned in self.plan.stages() {
            for host in &planned.hosts {
                let Some(state) = self.hosts.get_mut(&host.host) else {
                    continue;
                };
                if state.rollback == RollbackPhase::Wanted {
                    state.rollback = RollbackPhase::RollingBack;
                    self.counters.rollbacks += 1;
                    actions.push(Action::Rollback {
                        host: host.host.clone(),
                    });
                }
            }
        }
    }

    /// The read-only host actions still outstanding, in plan order.
    fn outstanding_host_actions(&self, actions: &mut Vec<Action>) {
        for planned in self.plan.stages() {
            for host in &planned.hosts {
                let Some(state) = self.hosts.get(&host.host) else {
                    continue;
                };
                let id = host.host.clone();
                match (&state.phase, &state.rollback) {
                    (HostPhase::Reconciling, _) => actions.push(Action::Reconcile {
                        host: id,
                        step: ChangeKind::Apply,
                    }),
                    (HostPhase::Verifying, _) => actions.push(Action::Verify { host: id }),
                    (_, RollbackPhase::Reconciling) => actions.push(Action::Reconcile {
                        host: id,
                        step: ChangeKind::Rollback,
                    }),
                    _ => {}
                }
            }
        }
    }

    fn waiting_for_given(&self, actions: &[Action]) -> WaitingFor {
        if self.status.is_final() {
            return WaitingFor::Nothing;
        }
        if self.status == Status::Planned {
            return WaitingFor::Start;
        }
        let mut waiting = None;
        for action in actions {
            let candidate = match action {
                Action::AwaitApproval { reason } => (
                    0,
                    WaitingFor::Approval {
                        reason: reason.clone(),
                    },
                ),
                Action::CheckHealth { stage, check, .. } => (
                    1,
                    WaitingFor::Health {
                        stage: *stage,
                        check: *check,
                    },
                ),
                Action::CaptureBaseline { stage } => (2, WaitingFor::Baseline { stage: *stage }),
                Action::WaitUntil { at, reason } => (
                    3,
                    WaitingFor::Until {
                        at: *at,
                        reason: reason.clone(),
                    },
                ),
                _ => continue,
            };
            if waiting.as_ref().is_none_or(|(rank, _)| candidate.0 < *rank) {
                waiting = Some(candidate);
            }
        }
        match waiting {
            Some((_, waiting)) => waiting,
            None => WaitingFor::Hosts {
                busy: self.hosts.values().filter(|h| h.busy()).count(),
            },
        }
    }
}

mod observe;
mod stages;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
