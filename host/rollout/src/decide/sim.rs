//! A scripted fleet and runner that drive `decide` on a controllable clock, for tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use patchwave_core::change::ChangeKind;
use patchwave_core::{Change, Environment, HostId};

use crate::{
    decide, plan, Action, HealthCheck, Observation, PatchClass, PinnedPackage, Plan, Policy,
    ReleaseManifest, Rollout, StageId, Target, Verdict,
};

/// Monday 2024-01-08 00:00 UTC.
pub(super) fn t0() -> DateTime<Utc> {
    at("2024-01-08T00:00:00Z")
}

pub(super) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn h(id: &str) -> HostId {
    HostId::from(id)
}

pub(super) fn change() -> Change {
    Change {
        name: "acme-web".into(),
        from: Some("1.0-1".into()),
        to: "1.0-2".into(),
    }
}

pub(super) fn manifest(class: PatchClass) -> ReleaseManifest {
    ReleaseManifest::new(
        vec![PinnedPackage::new("Debian:12", "acme-web", "1.0-2")],
        "findings: critical",
        class,
    )
    .unwrap()
}

/// `non_prod` hosts `np-NN` and `prod` hosts `p-NNNN`, all in scope `web`, all needing the
/// change.
pub(super) fn fleet(non_prod: usize, prod: usize) -> Vec<Target> {
    let target = |id: String, environment| Target {
        host: HostId(id),
        environment,
        scope: "web".into(),
        changes: vec![change()],
    };
    (0..non_prod)
        .map(|i| target(format!("np-{i:02}"), Environment::NonProd))
        .chain((0..prod).map(|i| target(format!("p-{i:04}"), Environment::Prod)))
        .collect()
}

pub(super) fn make_plan(policy: &Policy, targets: &[Target]) -> Plan {
    plan(&manifest(PatchClass::Critical), targets, policy, None).unwrap()
}

/// The hosts of a planned stage, in plan order.
pub(super) fn stage_hosts(plan: &Plan, stage: StageId) -> Vec<HostId> {
    plan.stages()
        .iter()
        .find(|s| s.id == stage)
        .map(|s| s.hosts.iter().map(|h| h.host.clone()).collect())
        .unwrap_or_default()
}

/// The fleet's reaction to actions.
#[derive(Clone, Debug, Default)]
pub(super) struct World {
    /// Hosts where the manifest is installed now.
    pub installed: BTreeSet<HostId>,
    pub fail_apply: BTreeSet<HostId>,
    pub fail_verify: BTreeSet<HostId>,
    pub lose_on_apply: BTreeSet<HostId>,
    pub lose_on_rollback: BTreeSet<HostId>,
    pub fail_rollback: BTreeSet<HostId>,
    /// Verdicts other than go.
    pub health: Vec<((StageId, HealthCheck), Verdict)>,
}

impl World {
    /// Executes one action; the observation it produces, if any.
    pub fn execute(&mut self, action: &Action) -> Option<Observation> {
        Some(match action {
            Action::CaptureBaseline { stage } => Observation::BaselineCaptured { stage: *stage },
            Action::Apply { host, .. } => self.apply(host),
            Action::Verify { host } => Observation::Verified {
                host: host.clone(),
                ok: self.installed.contains(host) && !self.fail_verify.contains(host),
                detail: "acme-web 1.0-2 ii".into(),
            },
            Action::CheckHealth { stage, check, .. } => Observation::Health {
                stage: *stage,
                check: *check,
                verdict: self
                    .health
                    .iter()
                    .find(|(key, _)| *key == (*stage, *check))
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Verdict::Go),
            },
            Action::Reconcile { host, step } => Observation::Reconciled {
                host: host.clone(),
                took: match step {
                    ChangeKind::Apply => self.installed.contains(host),
                    ChangeKind::Rollback => !self.installed.contains(host),
                },
            },
            Action::Rollback { host } => self.rollback(host),
            Action::WaitUntil { .. } | Action::AwaitApproval { .. } | Action::Finished { .. } => {
                return None
            }
        })
    }

    fn apply(&mut self, host: &HostId) -> Observation {
        if self.lose_on_apply.contains(host) {
            return Observation::HostLost {
                host: host.clone(),
                reason: "connection reset".into(),
            };
        }
        self.installed.insert(host.clone());
        Observation::Applied {
            host: host.clone(),
            ok: !self.fail_apply.contains(host),
            detail: "apt-get exited 0".into(),
        }
    }

    fn rollback(&mut self, host: &HostId) -> Observation {
        if self.lose_on_rollback.contains(host) {
            return Observation::HostLost {
                host: host.clone(),
                reason: "no route to host".into(),
            };
        }
        let ok = !self.fail_rollback.contains(host);
        if ok {
            self.installed.remove(host);
        }
        Observation::RolledBack {
            host: host.clone(),
            ok,
            detail: "downgraded acme-web to 1.0-1".into(),
        }
    }
}

/// How a runner crashes right after persisting a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Crash {
    /// Before executing any action.
    BeforeExecuting,
    /// After executing every action, before feeding the outcomes back.
    AfterExecuting,
}

/// One decision as the runner saw it.
#[derive(Clone, Debug)]
pub(super) struct Tick {
    pub now: DateTime<Utc>,
    pub observations: Vec<Observation>,
    pub state_before: Rollout,
    pub state_after: Rollout,
    pub actions: Vec<Action>,
}

/// A runner: decide, persist, execute, feed back.
pub(super) struct Run {
    pub state: Rollout,
    pub now: DateTime<Utc>,
    pub world: World,
    /// Observations for the next decision.
    pub inbox: Vec<Observation>,
    /// Who approves inconclusive checks; `None` leaves the rollout paused.
    pub approver: Option<String>,
    /// Time each decision takes on the simulated clock.
    pub tick_cost: TimeDelta,
    pub log: Vec<Tick>,
    /// `Apply` actions per host.
    pub applies: BTreeMap<HostId, usize>,
    /// Hosts whose interrupted apply was reconciled as not taken.
    pub not_taken: BTreeMap<HostId, usize>,
}

impl Run {
    pub fn new(plan: Plan) -> Run {
        Run {
            state: Rollout::new("r-1", plan),
            now: t0(),
            world: World::default(),
            inbox: vec![Observation::Start { by: "alice".into() }],
            approver: None,
            tick_cost: TimeDelta::zero(),
            log: Vec::new(),
            applies: BTreeMap::new(),
            not_taken: BTreeMap::new(),
        }
    }

    /// Decides on the inbox and persists the next state; returns the actions.
    pub fn decide(&mut self) -> Vec<Action> {
        let observations = std::mem::take(&mut self.inbox);
        for o in &observations {
            if let Observation::Reconciled { host, took: false } = o {
                if self.state.host(host).map(|s| &s.phase) == Some(&crate::HostPhase::Reconciling) {
                    *self.not_taken.entry(host.clone()).or_default() += 1;
                }
            }
        }
        let decision = decide(&self.state, self.now, &observations);
        for a in &decision.actions {
            if let Action::Apply { host, .. } = a {
                *self.applies.entry(host.clone()).or_default() += 1;
            }
        }
        self.log.push(Tick {
            now: self.now,
            observations,
            state_before: self.state.clone(),
            state_after: decision.state.clone(),
            actions: decision.actions.clone(),
        });
        self.state = decision.state;
        decision.actions
    }

    /// Executes the actions into the inbox; approves and moves the clock as a runner would.
    /// False when the run cannot go on by itself (finished, or waiting for a human).
    pub fn execute(&mut self, actions: &[Action]) -> bool {
        self.now += self.tick_cost;
        let mut outcomes: Vec<Observation> = actions
            .iter()
            .filter_map(|a| self.world.execute(a))
            .collect();
        self.inbox.append(&mut outcomes);
        if actions.iter().any(|a| matches!(a, Action::Finished { .. })) {
            return false;
        }
        if !self.inbox.is_empty() {
            return true;
        }
        if let Some(by) = &self.approver {
            if actions
                .iter()
                .any(|a| matches!(a, Action::AwaitApproval { .. }))
            {
                self.inbox.push(Observation::Approved { by: by.clone() });
                return true;
            }
        }
        match actions.iter().find_map(|a| match a {
            Action::WaitUntil { at, .. } => Some(*at),
            _ => None,
        }) {
            Some(at) => {
                self.now = self.now.max(at);
                true
            }
            None => false,
        }
    }

    /// One decision and its execution; false when the run stops.
    pub fn tick(&mut self) -> bool {
        let actions = self.decide();
        self.execute(&actions)
    }

    /// One decision, then a crash: the outcomes of its actions never reach `decide`.
    pub fn tick_and_crash(&mut self, crash: Crash) {
        let actions = self.decide();
        if crash == Crash::AfterExecuting {
            for a in &actions {
                self.world.execute(a);
            }
        }
    }

    /// Ticks until the run stops; panics if it does not within `limit` decisions.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            if !self.tick() {
                return;
            }
        }
        panic!("the rollout did not settle");
    }

    /// Ticks until a decision's actions satisfy `stop`; returns those actions (already
    /// executed into the inbox).
    pub fn run_until(&mut self, stop: impl Fn(&[Action]) -> bool) -> Vec<Action> {
        for _ in 0..100_000 {
            let actions = self.decide();
            let go_on = self.execute(&actions);
            if stop(&actions) {
                return actions;
            }
            assert!(go_on, "stopped before the awaited actions: {actions:?}");
        }
        panic!("the awaited actions never came");
    }

    /// The hosts given `Apply` in each decision that gave any, in order.
    pub fn apply_batches(&self) -> Vec<Vec<HostId>> {
        self.log
            .iter()
            .map(|t| {
                t.actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Apply { host, .. } => Some(host.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|batch| !batch.is_empty())
            .collect()
    }

    /// Every action of the run, in order.
    pub fn all_actions(&self) -> impl Iterator<Item = &Action> {
        self.log.iter().flat_map(|t| t.actions.iter())
    }

    /// Hosts given `Rollback`, in order.
    pub fn rolled_back_hosts(&self) -> Vec<HostId> {
        self.all_actions()
            .filter_map(|a| match a {
                Action::Rollback { host } => Some(host.clone()),
                _ => None,
            })
            .collect()
    }
}
