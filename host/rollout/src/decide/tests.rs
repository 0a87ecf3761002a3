#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::TimeDelta;
use patchwave_core::change::ChangeKind;
use patchwave_core::HostId;

use super::decide;
use super::sim::{at, change, fleet, h, make_plan, stage_hosts, t0, Crash, Run};
use crate::{
    plan, Action, Decision, EventKind, FailureBudget, Force, HaltScope, HealthCheck, HostPhase,
    HostStep, Observation, Outcome, PatchClass, Policy, RollbackPhase, RollbackScope, Rollout,
    StageId, StagePhase, Status, Verdict, WaitReason, WaitingFor, WindowSpec, HISTORY_LIMIT,
};

fn policy() -> Policy {
    Policy::default()
}

fn wave(n: u32) -> StageId {
    StageId::Wave(n)
}

fn go(stage: StageId, check: HealthCheck) -> Observation {
    Observation::Health {
        stage,
        check,
        verdict: Verdict::Go,
    }
}

fn applied(host: &str) -> Observation {
    Observation::Applied {
        host: h(host),
        ok: true,
        detail: "apt-get exited 0".into(),
    }
}

fn verified(host: &str) -> Observation {
    Observation::Verified {
        host: h(host),
        ok: true,
        detail: "acme-web 1.0-2 ii".into(),
    }
}

fn apply(host: &str) -> Action {
    Action::Apply {
        host: h(host),
        changes: vec![change()],
    }
}

/// The parts of a state that a crash and resume must not change: status, stage phases and
/// host phases (history and operational counters legitimately record the crash).
type Essence = (
    Status,
    Vec<(StageId, StagePhase)>,
    Vec<(HostId, HostPhase, RollbackPhase)>,
);

fn essence(state: &Rollout) -> Essence {
    (
        state.status().clone(),
        state
            .stages()
            .iter()
            .map(|s| (s.id, s.phase.clone()))
            .collect(),
        state
            .hosts()
            .iter()
            .map(|(id, s)| (id.clone(), s.phase.clone(), s.rollback.clone()))
            .collect(),
    )
}

fn sizes(batches: &[Vec<HostId>]) -> Vec<usize> {
    batches.iter().map(Vec::len).collect()
}

// ----- the good path -----------------------------------------------------------------------

#[test]
fn one_canary_and_one_prod_host_step_by_step() {
    let targets = fleet(1, 1);
    let mut run = Run::new(make_plan(&policy(), &targets));
    let soak_end = t0() + TimeDelta::hours(24);
    let script: Vec<(Vec<Observation>, Vec<Action>)> = vec![
        (
            vec![Observation::Start { by: "alice".into() }],
            vec![Action::CaptureBaseline {
                stage: StageId::Canary,
            }],
        ),
        (
            vec![Observation::BaselineCaptured {
                stage: StageId::Canary,
            }],
            vec![apply("np-00")],
        ),
        (
            vec![applied("np-00")],
            vec![Action::Verify { host: h("np-00") }],
        ),
        (
            vec![verified("np-00")],
            vec![Action::CheckHealth {
                stage: StageId::Canary,
                check: HealthCheck::Gate,
                hosts: vec![h("np-00")],
            }],
        ),
        (
            vec![go(StageId::Canary, HealthCheck::Gate)],
            vec![Action::WaitUntil {
                at: soak_end,
                reason: WaitReason::Soak {
                    stage: StageId::Canary,
                },
            }],
        ),
        (
            vec![],
            vec![Action::CheckHealth {
                stage: StageId::Canary,
                check: HealthCheck::Smoke,
                hosts: vec![h("np-00")],
            }],
        ),
        (
            vec![go(StageId::Canary, HealthCheck::Smoke)],
            vec![Action::CaptureBaseline { stage: wave(1) }],
        ),
        (
            vec![Observation::BaselineCaptured { stage: wave(1) }],
            vec![apply("p-0000")],
        ),
        (
            vec![applied("p-0000")],
            vec![Action::Verify { host: h("p-0000") }],
        ),
        (
            vec![verified("p-0000")],
            vec![Action::CheckHealth {
                stage: wave(1),
                check: HealthCheck::Gate,
                hosts: vec![h("p-0000")],
            }],
        ),
        (
            vec![go(wave(1), HealthCheck::Gate)],
            vec![Action::Finished {
                outcome: Outcome::Completed {
                    hosts: 2,
                    failed: 0,
                    rollback_failed: 0,
                },
            }],
        ),
    ];
    run.run();
    let seen: Vec<(Vec<Observation>, Vec<Action>)> = run
        .log
        .iter()
        .map(|t| (t.observations.clone(), t.actions.clone()))
        .collect();
    assert_eq!(seen, script);
    // The soak ended exactly 24 h after the canary passed; wave 1 started then.
    assert_eq!(run.log[5].now, soak_end);
    assert_eq!(run.log[7].now, soak_end);
    assert_eq!(run.state.status(), &Status::Completed);
    assert_eq!(run.state.waiting_for(), &WaitingFor::Nothing);
    assert_eq!(
        run.state
            .stages()
            .iter()
            .map(|s| (s.started_at, s.ended_at))
            .collect::<Vec<_>>(),
        vec![
            (Some(t0()), Some(soak_end)),
            (Some(soak_end), Some(soak_end)),
        ]
    );
}

#[test]
fn good_path_wave_sizes_for_fleets_of_every_size() {
    for (prod, waves) in [
        (1, vec![1]),
        (3, vec![1, 1, 1]),
        (19, vec![1, 4, 5, 9]),
        (20, vec![1, 4, 5, 10]),
        (100, vec![5, 20, 25, 50]),
        (1000, vec![50, 200, 250, 500]),
    ] {
        let targets = fleet(2, prod);
        let plan = make_plan(&policy(), &targets);
        let mut run = Run::new(plan.clone());
        run.run();
        let mut expected = vec![2];
        expected.extend(waves.iter().copied());
        assert_eq!(sizes(&run.apply_batches()), expected, "{prod} prod hosts");
        // Each batch is exactly the planned stage, in plan order.
        let stages: Vec<StageId> = plan.stages().iter().map(|s| s.id).collect();
        for (batch, stage) in run.apply_batches().iter().zip(&stages) {
            assert_eq!(batch, &stage_hosts(&plan, *stage), "{stage}");
        }
        assert_eq!(run.state.status(), &Status::Completed, "{prod}");
        assert!(
            run.applies.values().all(|n| *n == 1) && run.applies.len() == prod + 2,
            "every host applied exactly once"
        );
        assert!(run
            .state
            .hosts()
            .values()
            .all(|s| s.phase == HostPhase::Verified && s.rollback == RollbackPhase::NotRequested));
        assert!(run
            .state
            .stages()
            .iter()
            .all(|s| s.phase == StagePhase::Passed));
        assert_eq!(
            run.all_actions().last(),
            Some(&Action::Finished {
                outcome: Outcome::Completed {
                    hosts: prod + 2,
                    failed: 0,
                    rollback_failed: 0
                }
            })
        );
        assert_eq!(run.rolled_back_hosts(), Vec::<HostId>::new());
    }
}

#[test]
fn a_soak_given_in_seconds_ends_to_the_second() {
    let p: Policy = serde_json::from_str(r#"{"soak": "90s"}"#).unwrap();
    let mut run = Run::new(make_plan(&p, &fleet(1, 2)));
    let actions = run.run_until(|a| a.iter().any(|a| matches!(a, Action::WaitUntil { .. })));
    assert_eq!(
        actions,
        vec![Action::WaitUntil {
            at: t0() + TimeDelta::seconds(90),
            reason: WaitReason::Soak {
                stage: StageId::Canary
            }
        }]
    );
    // Before the end nothing happens; at the end the smoke check is asked for.
    let early = decide(&run.state, t0() + TimeDelta::seconds(89), &[]);
    assert_eq!(early.actions, actions);
    assert_eq!(early.state, run.state);
    let due = decide(&run.state, t0() + TimeDelta::seconds(90), &[]);
    assert_eq!(
        due.actions,
        vec![Action::CheckHealth {
            stage: StageId::Canary,
            check: HealthCheck::Smoke,
            hosts: vec![h("np-00")]
        }]
    );
}

// ----- bad health ---------------------------------------------------------------------------

#[test]
fn a_no_go_at_the_canary_rolls_it_back_and_never_touches_prod() {
    let plan = make_plan(&policy(), &fleet(2, 20));
    let canary = stage_hosts(&plan, StageId::Canary);
    let mut run = Run::new(plan);
    run.world.health.push((
        (StageId::Canary, HealthCheck::Gate),
        Verdict::NoGo("error rate 5% > 1%".into()),
    ));
    run.run();
    let reason = "canary gate: no-go: error rate 5% > 1%".to_string();
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: reason.clone()
        }
    );
    assert_eq!(
        run.all_actions().last(),
        Some(&Action::Finished {
            outcome: Outcome::RolledBack {
                reason: reason.clone()
            }
        })
    );
    assert_eq!(run.rolled_back_hosts(), canary);
    assert_eq!(sizes(&run.apply_batches()), vec![2]);
    for (id, host) in run.state.hosts() {
        if canary.contains(id) {
            assert_eq!(host.phase, HostPhase::Verified);
            assert_eq!(host.rollback, RollbackPhase::RolledBack);
        } else {
            assert_eq!(host.phase, HostPhase::Pending, "{id}");
            assert_eq!(host.rollback, RollbackPhase::NotRequested);
        }
    }
    assert_eq!(run.state.stages()[0].phase, StagePhase::Failed { reason });
    assert!(run.state.stages()[1..]
        .iter()
        .all(|s| s.phase == StagePhase::Pending));
    assert!(run.world.installed.is_empty());
}

#[test]
fn a_no_go_at_the_smoke_check_after_the_soak_rolls_the_canary_back() {
    let plan = make_plan(&policy(), &fleet(2, 5));
    let canary = stage_hosts(&plan, StageId::Canary);
    let mut run = Run::new(plan);
    run.world.health.push((
        (StageId::Canary, HealthCheck::Smoke),
        Verdict::NoGo("p99 latency doubled".into()),
    ));
    run.run();
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: "canary smoke check: no-go: p99 latency doubled".into()
        }
    );
    assert_eq!(run.rolled_back_hosts(), canary);
    assert_eq!(sizes(&run.apply_batches()), vec![2]);
    // The rollback came after the soak.
    let rollback_tick = run
        .log
        .iter()
        .find(|t| {
            t.actions
                .iter()
                .any(|a| matches!(a, Action::Rollback { .. }))
        })
        .unwrap();
    assert_eq!(rollback_tick.now, t0() + TimeDelta::hours(24));
}

// ----- failures and budgets -------------------------------------------------------------------

#[test]
fn a_host_failing_within_budget_is_rolled_back_alone_and_the_rollout_goes_on() {
    // 20 prod hosts: waves of 1, 4, 5, 10; wave 4 allows floor(10 % of 10) = 1 failure and the
    // rollout floor(5 % of 22) = 1.
    let plan = make_plan(&policy(), &fleet(2, 20));
    let bad = stage_hosts(&plan, wave(4))[3].clone();
    let mut run = Run::new(plan);
    run.world.fail_verify.insert(bad.clone());
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
    assert_eq!(
        run.all_actions().last(),
        Some(&Action::Finished {
            outcome: Outcome::Completed {
                hosts: 22,
                failed: 1,
                rollback_failed: 0
            }
        })
    );
    assert_eq!(run.rolled_back_hosts(), vec![bad.clone()]);
    let state = run.state.host(&bad).unwrap();
    assert_eq!(
        state.phase,
        HostPhase::Failed {
            step: HostStep::Verify,
            detail: "acme-web 1.0-2 ii".into()
        }
    );
    assert_eq!(state.rollback, RollbackPhase::RolledBack);
    assert_eq!(
        run.state
            .hosts()
            .values()
            .filter(|s| s.phase == HostPhase::Verified)
            .count(),
        21
    );
    // The individual rollback finished before the stage passed.
    let summary = run.state.summary();
    assert_eq!(summary.stages[4].failed, 1);
    assert_eq!(summary.stages[4].rolled_back, 1);
    assert_eq!(summary.stages[4].verified, 9);
    assert_eq!(summary.problems.len(), 1);
    assert_eq!(
        summary.problems[0].problem,
        "verify failed: acme-web 1.0-2 ii"
    );
}

#[test]
fn a_host_failing_within_budget_stays_as_it_is_when_so_configured() {
    let p = Policy {
        rollback_failed_hosts: false,
        ..policy()
    };
    let plan = make_plan(&p, &fleet(2, 20));
    let bad = stage_hosts(&plan, wave(4))[0].clone();
    let mut run = Run::new(plan);
    run.world.fail_apply.insert(bad.clone());
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
    assert_eq!(run.rolled_back_hosts(), Vec::<HostId>::new());
    assert_eq!(
        run.state.host(&bad).unwrap().phase,
        HostPhase::Failed {
            step: HostStep::Apply,
            detail: "apt-get exited 0".into()
        }
    );
    assert_eq!(
        run.state.host(&bad).unwrap().rollback,
        RollbackPhase::NotRequested
    );
}

#[test]
fn failures_over_the_stage_budget_halt_and_roll_back_that_stage() {
    let plan = make_plan(&policy(), &fleet(2, 20));
    let wave4 = stage_hosts(&plan, wave(4));
    let mut run = Run::new(plan);
    run.world.fail_verify.insert(wave4[0].clone());
    run.world.fail_verify.insert(wave4[5].clone());
    run.run();
    let reason = "wave 4: 2 of 10 hosts failed, over the stage budget of 1".to_string();
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: reason.clone()
        }
    );
    assert_eq!(run.rolled_back_hosts(), wave4);
    // No health check was asked for wave 4: over budget is a no-go by itself.
    assert!(!run.all_actions().any(|a| matches!(
        a,
        Action::CheckHealth {
            stage: StageId::Wave(4),
            ..
        }
    )));
    assert_eq!(run.state.stages()[4].phase, StagePhase::Failed { reason });
    for id in run.state.hosts().keys() {
        let expected = if wave4.contains(id) {
            RollbackPhase::RolledBack
        } else {
            RollbackPhase::NotRequested
        };
        assert_eq!(run.state.host(id).unwrap().rollback, expected, "{id}");
    }
}

#[test]
fn with_rollback_scope_all_a_failed_gate_rolls_back_every_stage() {
    let p = Policy {
        rollback_scope: RollbackScope::All,
        ..policy()
    };
    let plan = make_plan(&p, &fleet(2, 20));
    let mut run = Run::new(plan.clone());
    run.world.health.push((
        (wave(3), HealthCheck::Gate),
        Verdict::NoGo("5xx rate".into()),
    ));
    run.run();
    let mut expected: Vec<HostId> = Vec::new();
    for stage in [StageId::Canary, wave(1), wave(2), wave(3)] {
        expected.extend(stage_hosts(&plan, stage));
    }
    assert_eq!(run.rolled_back_hosts(), expected);
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: "wave 3 gate: no-go: 5xx rate".into()
        }
    );
    assert!(stage_hosts(&plan, wave(4))
        .iter()
        .all(|id| run.state.host(id).unwrap().phase == HostPhase::Pending));
}

#[test]
fn the_rollout_budget_counts_failures_over_every_stage() {
    let p = Policy {
        stage_budget: FailureBudget::percent(50),
        ..policy()
    };
    let plan = make_plan(&p, &fleet(2, 20));
    let mut run = Run::new(plan.clone());
    run.world
        .fail_apply
        .insert(stage_hosts(&plan, wave(2))[0].clone());
    run.world
        .fail_apply
        .insert(stage_hosts(&plan, wave(3))[0].clone());
    run.run();
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: "2 of 22 hosts failed over the rollout, over its budget of 1".into()
        }
    );
    // Wave 2's failed host was rolled back alone when wave 2 passed; wave 3's whole stage
    // was rolled back by the halt.
    let mut expected = vec![stage_hosts(&plan, wave(2))[0].clone()];
    expected.extend(stage_hosts(&plan, wave(3)));
    assert_eq!(run.rolled_back_hosts(), expected);
}

#[test]
fn lost_hosts_count_as_failed_and_a_failed_rollback_is_reported() {
    let plan = make_plan(&policy(), &fleet(2, 20));
    let canary = stage_hosts(&plan, StageId::Canary);
    let lost = canary[1].clone();
    let mut run = Run::new(plan);
    run.world.lose_on_apply.insert(lost.clone());
    run.world.lose_on_rollback.insert(lost.clone());
    run.run();
    let reason = "canary: 1 of 2 hosts failed, over the stage budget of 0".to_string();
    assert_eq!(
        run.state.status(),
        &Status::RollbackFailed {
            reason: reason.clone(),
            hosts: vec![lost.clone()]
        }
    );
    assert_eq!(
        run.all_actions().last(),
        Some(&Action::Finished {
            outcome: Outcome::RollbackFailed {
                reason,
                hosts: vec![lost.clone()]
            }
        })
    );
    let host = run.state.host(&lost).unwrap();
    assert_eq!(
        host.phase,
        HostPhase::Lost {
            reason: "connection reset".into()
        }
    );
    assert_eq!(
        host.rollback,
        RollbackPhase::Failed {
            detail: "host lost: no route to host".into()
        }
    );
    let summary = run.state.summary();
    assert_eq!(
        (
            summary.stages[0].total,
            summary.stages[0].applied,
            summary.stages[0].verified,
            summary.stages[0].lost,
            summary.stages[0].rolled_back,
            summary.stages[0].rollback_failed
        ),
        (2, 1, 1, 1, 1, 1)
    );
    assert_eq!(
        summary.problems[0].problem,
        "lost: connection reset; rollback failed: host lost: no route to host"
    );
    assert_eq!(sizes(&run.apply_batches()), vec![2]);
}

#[test]
fn with_limited_parallelism_a_stage_over_budget_stops_starting_hosts() {
    let p = Policy {
        max_parallel: Some(2),
        ..policy()
    };
    let plan = make_plan(&p, &fleet(1, 100));
    let wave4 = stage_hosts(&plan, wave(4));
    let mut run = Run::new(plan);
    // Wave 4 has 50 hosts and allows 5 failures; its first 6 hosts fail.
    for id in &wave4[..6] {
        run.world.fail_apply.insert(id.clone());
    }
    run.run();
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: "wave 4: 6 of 50 hosts failed, over the stage budget of 5".into()
        }
    );
    let started: Vec<HostId> = wave4
        .iter()
        .filter(|id| run.applies.contains_key(*id))
        .cloned()
        .collect();
    assert_eq!(started, wave4[..6].to_vec());
    assert!(run.apply_batches().iter().all(|b| b.len() <= 2));
}

// ----- humans ----------------------------------------------------------------------------------

#[test]
fn an_inconclusive_check_pauses_until_approved() {
    let mut run = Run::new(make_plan(&policy(), &fleet(1, 20)));
    run.world.health.push((
        (wave(1), HealthCheck::Gate),
        Verdict::Inconclusive("prometheus: no data".into()),
    ));
    let reason = "wave 1 gate inconclusive: prometheus: no data".to_string();
    run.run();
    assert_eq!(
        run.state.status(),
        &Status::Paused {
            reason: reason.clone()
        }
    );
    assert_eq!(
        run.state.waiting_for(),
        &WaitingFor::Approval {
            reason: reason.clone()
        }
    );
    assert_eq!(
        run.log.last().unwrap().actions,
        vec![Action::AwaitApproval {
            reason: reason.clone()
        }]
    );
    // Deciding again without an approval changes nothing.
    let again = decide(&run.state, run.now, &[]);
    assert_eq!(again.state, run.state);
    assert_eq!(again.actions, vec![Action::AwaitApproval { reason }]);
    // Approval is a go.
    run.inbox.push(Observation::Approved { by: "bob".into() });
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
    assert!(run
        .state
        .history()
        .any(|e| e.kind == EventKind::Approved { by: "bob".into() }));
    assert_eq!(sizes(&run.apply_batches()), vec![1, 1, 4, 5, 10]);
}

#[test]
fn an_approver_lets_a_run_through_inconclusive_checks() {
    let mut run = Run::new(make_plan(&policy(), &fleet(1, 3)));
    run.approver = Some("bob".into());
    run.world.health.push((
        (StageId::Canary, HealthCheck::Smoke),
        Verdict::Inconclusive("alertmanager unreachable".into()),
    ));
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
}

#[test]
fn abort_stops_new_hosts_lets_in_flight_ones_finish_and_rolls_nothing_back() {
    let p = Policy {
        max_parallel: Some(2),
        ..policy()
    };
    let plan = make_plan(&p, &fleet(1, 20));
    let wave2 = stage_hosts(&plan, wave(2));
    let mut run = Run::new(plan);
    run.run_until(|a| {
        a.iter()
            .any(|a| matches!(a, Action::Apply { host, .. } if *host == wave2[0]))
    });
    run.inbox.push(Observation::Abort {
        by: "carol".into(),
        reason: "change freeze".into(),
    });
    let actions = run.decide();
    assert_eq!(
        run.state.status(),
        &Status::Aborting {
            by: "carol".into(),
            reason: "change freeze".into()
        }
    );
    assert_eq!(
        actions,
        vec![
            Action::Verify {
                host: wave2[0].clone()
            },
            Action::Verify {
                host: wave2[1].clone()
            }
        ]
    );
    run.execute(&actions);
    run.run();
    let outcome = Outcome::Aborted {
        by: "carol".into(),
        reason: "change freeze".into(),
    };
    assert_eq!(
        run.state.status(),
        &Status::Aborted {
            by: "carol".into(),
            reason: "change freeze".into()
        }
    );
    assert_eq!(
        run.log.last().unwrap().actions,
        vec![Action::Finished { outcome }]
    );
    assert_eq!(run.rolled_back_hosts(), Vec::<HostId>::new());
    let phases: Vec<HostPhase> = wave2
        .iter()
        .map(|id| run.state.host(id).unwrap().phase.clone())
        .collect();
    assert_eq!(
        phases,
        vec![
            HostPhase::Verified,
            HostPhase::Verified,
            HostPhase::Pending,
            HostPhase::Pending
        ]
    );
    assert_eq!(run.applies.len(), 1 + 1 + 2);
}

#[test]
fn a_requested_rollback_undoes_every_applied_host() {
    let plan = make_plan(&policy(), &fleet(2, 20));
    let mut run = Run::new(plan.clone());
    run.run_until(|a| a.contains(&Action::CaptureBaseline { stage: wave(3) }));
    run.inbox
        .push(Observation::RollbackRequested { by: "dave".into() });
    run.run();
    let reason = "rollback requested by dave".to_string();
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: reason.clone()
        }
    );
    let mut expected = Vec::new();
    for stage in [StageId::Canary, wave(1), wave(2)] {
        expected.extend(stage_hosts(&plan, stage));
    }
    assert_eq!(run.rolled_back_hosts(), expected);
    assert_eq!(run.state.stages()[3].phase, StagePhase::Failed { reason });
    assert!(!run.all_actions().any(
        |a| matches!(a, Action::Apply { host, .. } if stage_hosts(&plan, wave(3)).contains(host))
    ));
    assert!(run.world.installed.is_empty());
}

#[test]
fn a_rollback_can_be_requested_after_completion_and_retries_failed_rollbacks() {
    let plan = make_plan(&policy(), &fleet(1, 3));
    let mut run = Run::new(plan.clone());
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
    let stubborn = stage_hosts(&plan, wave(2))[0].clone();
    run.world.fail_rollback.insert(stubborn.clone());
    run.inbox
        .push(Observation::RollbackRequested { by: "dave".into() });
    run.run();
    assert_eq!(
        run.state.status(),
        &Status::RollbackFailed {
            reason: "rollback requested by dave".into(),
            hosts: vec![stubborn.clone()]
        }
    );
    // The second request retries only the host whose rollback failed.
    run.world.fail_rollback.clear();
    run.inbox
        .push(Observation::RollbackRequested { by: "dave".into() });
    let before = run.rolled_back_hosts().len();
    run.run();
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: "rollback requested by dave".into()
        }
    );
    assert_eq!(run.rolled_back_hosts()[before..], [stubborn]);
    // A third request has nothing left to do.
    let d = decide(
        &run.state,
        run.now,
        &[Observation::RollbackRequested { by: "dave".into() }],
    );
    assert_eq!(d.state.status(), run.state.status());
    assert_eq!(
        d.state.history().last().unwrap().kind,
        EventKind::Ignored {
            observation: "rollback requested by dave".into(),
            why: "nothing is left to roll back".into()
        }
    );
}

// ----- windows ----------------------------------------------------------------------------------

fn window(cron: &str, duration: &str, tz: &str) -> Option<WindowSpec> {
    Some(WindowSpec {
        cron: cron.into(),
        duration: duration.parse().unwrap(),
        tz: tz.into(),
    })
}

#[test]
fn prod_waves_wait_for_the_window_across_a_dst_change() {
    // New York weeknights 22:00 local for 8 h. Clocks moved forward on Sunday 2024-03-10.
    let p = Policy {
        window: window("0 0 22 * * Mon-Fri *", "8h", "America/New_York"),
        ..policy()
    };
    let mut run = Run::new(make_plan(&p, &fleet(1, 20)));
    // Friday 2024-03-08 12:00 UTC: the canary runs at once (it is not window-bound), soaks
    // until Saturday 12:00 UTC.
    run.now = at("2024-03-08T12:00:00Z");
    let actions = run.run_until(|a| {
        a.iter().any(|a| {
            matches!(
                a,
                Action::WaitUntil {
                    reason: WaitReason::Window { .. },
                    ..
                }
            )
        })
    });
    // Monday 22:00 EDT is Tuesday 02:00 UTC (it would be 03:00 under EST).
    assert_eq!(
        actions,
        vec![Action::WaitUntil {
            at: at("2024-03-12T02:00:00Z"),
            reason: WaitReason::Window { stage: wave(1) }
        }]
    );
    assert_eq!(run.log.last().unwrap().now, at("2024-03-09T12:00:00Z"));
    assert_eq!(
        run.state.waiting_for(),
        &WaitingFor::Until {
            at: at("2024-03-12T02:00:00Z"),
            reason: WaitReason::Window { stage: wave(1) }
        }
    );
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
    let wave1_start = run
        .log
        .iter()
        .find(|t| {
            t.actions
                .contains(&Action::CaptureBaseline { stage: wave(1) })
        })
        .unwrap();
    assert_eq!(wave1_start.now, at("2024-03-12T02:00:00Z"));
}

#[test]
fn hosts_started_in_the_window_finish_after_it_closes_and_no_new_one_starts() {
    // One hour from 22:00 UTC daily; one host at a time; each decision takes 15 minutes on
    // the simulated clock.
    let p = Policy {
        window: window("0 0 22 * * * *", "1h", "UTC"),
        max_parallel: Some(1),
        canary: false,
        waves: vec![50, 100],
        ..policy()
    };
    let plan = plan(
        &super::sim::manifest(PatchClass::Low),
        &fleet(0, 8),
        &p,
        None,
    )
    .unwrap();
    let wave1 = stage_hosts(&plan, wave(1));
    let mut run = Run::new(plan);
    run.tick_cost = TimeDelta::minutes(15);
    run.now = at("2024-01-08T22:00:00Z");
    let actions = run.run_until(|a| {
        a.iter().any(|a| {
            matches!(
                a,
                Action::WaitUntil {
                    reason: WaitReason::Window { .. },
                    ..
                }
            )
        })
    });
    assert_eq!(
        actions,
        vec![Action::WaitUntil {
            at: at("2024-01-09T22:00:00Z"),
            reason: WaitReason::Window { stage: wave(1) }
        }]
    );
    // 22:00 baseline, 22:15 apply #0, 22:30 verify #0, 22:45 apply #1 (still open),
    // 23:00 verify #1, 23:15 #1 verified after the close, and #2 is not started.
    let starts: Vec<(chrono::DateTime<chrono::Utc>, Vec<Action>)> =
        run.log.iter().map(|t| (t.now, t.actions.clone())).collect();
    assert_eq!(
        starts,
        vec![
            (
                at("2024-01-08T22:00:00Z"),
                vec![Action::CaptureBaseline { stage: wave(1) }]
            ),
            (
                at("2024-01-08T22:15:00Z"),
                vec![Action::Apply {
                    host: wave1[0].clone(),
                    changes: vec![change()]
                }]
            ),
            (
                at("2024-01-08T22:30:00Z"),
                vec![Action::Verify {
                    host: wave1[0].clone()
                }]
            ),
            (
                at("2024-01-08T22:45:00Z"),
                vec![Action::Apply {
                    host: wave1[1].clone(),
                    changes: vec![change()]
                }]
            ),
            (
                at("2024-01-08T23:00:00Z"),
                vec![Action::Verify {
                    host: wave1[1].clone()
                }]
            ),
            (at("2024-01-08T23:15:00Z"), actions.clone()),
        ]
    );
    let phases: Vec<HostPhase> = wave1
        .iter()
        .map(|id| run.state.host(id).unwrap().phase.clone())
        .collect();
    assert_eq!(
        phases,
        vec![
            HostPhase::Verified,
            HostPhase::Verified,
            HostPhase::Pending,
            HostPhase::Pending
        ]
    );
    // The next night picks up where it stopped.
    let next = run.decide();
    assert_eq!(run.log.last().unwrap().now, at("2024-01-09T22:00:00Z"));
    assert_eq!(
        next,
        vec![Action::Apply {
            host: wave1[2].clone(),
            changes: vec![change()]
        }]
    );
    run.execute(&next);
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
}

#[test]
fn a_stored_window_that_never_opens_again_pauses_the_rollout() {
    let p = Policy {
        window: window("0 0 22 * * * 2020", "1h", "UTC"),
        ..policy()
    };
    let mut run = Run::new(make_plan(&p, &fleet(1, 3)));
    run.run();
    let reason = "the maintenance window never opens again; abort or roll back the rollout";
    assert_eq!(
        run.state.status(),
        &Status::Paused {
            reason: reason.into()
        }
    );
    assert_eq!(
        run.log.last().unwrap().actions,
        vec![Action::AwaitApproval {
            reason: reason.into()
        }]
    );
}

// ----- crash and resume -------------------------------------------------------------------------

/// Runs `make` uninterrupted, then once per decision and crash kind with a crash right after
/// that decision, and checks: the resumed decision reconciles (never re-applies) every host
/// that was mid-apply; the end state equals the uninterrupted one; no host got a second
/// `Apply` unless its reconcile said the first did not take.
fn check_every_crash_point(make: impl Fn() -> Run) {
    let mut clean = make();
    clean.run();
    let expected = essence(&clean.state);
    let decisions = clean.log.len();
    assert!(decisions > 5);
    for crash_at in 0..decisions {
        for crash in [Crash::BeforeExecuting, Crash::AfterExecuting] {
            let mut run = make();
            for _ in 0..crash_at {
                assert!(run.tick(), "stopped early");
            }
            run.tick_and_crash(crash);
            let in_flight: Vec<HostId> = run
                .state
                .hosts()
                .iter()
                .filter(|(_, s)| s.phase == HostPhase::Applying)
                .map(|(id, _)| id.clone())
                .collect();
            let rolling: Vec<HostId> = run
                .state
                .hosts()
                .iter()
                .filter(|(_, s)| s.rollback == RollbackPhase::RollingBack)
                .map(|(id, _)| id.clone())
                .collect();
            let resumed = run.decide();
            for id in &in_flight {
                assert!(
                    resumed.contains(&Action::Reconcile {
                        host: id.clone(),
                        step: ChangeKind::Apply
                    }),
                    "crash {crash:?} after decision {crash_at}: {id} not reconciled"
                );
                assert!(!resumed
                    .iter()
                    .any(|a| matches!(a, Action::Apply { host, .. } if host == id)));
            }
            for id in &rolling {
                assert!(resumed.contains(&Action::Reconcile {
                    host: id.clone(),
                    step: ChangeKind::Rollback
                }));
                assert!(!resumed.contains(&Action::Rollback { host: id.clone() }));
            }
            if run.execute(&resumed) {
                run.run();
            }
            assert_eq!(
                essence(&run.state),
                expected,
                "crash {crash:?} after decision {crash_at}"
            );
            for (id, applies) in &run.applies {
                let allowed = 1 + run.not_taken.get(id).copied().unwrap_or(0);
                assert!(
                    *applies <= allowed,
                    "crash {crash:?} after decision {crash_at}: {id} applied {applies} times"
                );
            }
            if crash == Crash::AfterExecuting {
                assert!(run.applies.values().all(|n| *n == 1));
                assert!(run.not_taken.is_empty());
            }
            assert_eq!(
                run.state.counters().reconciles,
                (in_flight.len() + rolling.len()) as u64
            );
        }
    }
}

#[test]
fn every_crash_point_of_a_full_rollout_resumes_to_the_same_end() {
    check_every_crash_point(|| {
        let plan = make_plan(&policy(), &fleet(2, 20));
        let bad = stage_hosts(&plan, wave(4))[2].clone();
        let mut run = Run::new(plan);
        run.world.fail_verify.insert(bad);
        run
    });
}

#[test]
fn every_crash_point_of_a_rolled_back_rollout_resumes_to_the_same_end() {
    check_every_crash_point(|| {
        let mut run = Run::new(make_plan(&policy(), &fleet(2, 20)));
        run.world
            .health
            .push(((wave(2), HealthCheck::Gate), Verdict::NoGo("5xx".into())));
        run
    });
}

#[test]
fn every_crash_point_with_limited_parallelism_resumes_to_the_same_end() {
    check_every_crash_point(|| {
        let p = Policy {
            max_parallel: Some(3),
            rollback_scope: RollbackScope::All,
            ..policy()
        };
        let mut run = Run::new(make_plan(&p, &fleet(2, 10)));
        run.world
            .health
            .push(((wave(3), HealthCheck::Gate), Verdict::NoGo("5xx".into())));
        run
    });
}

#[test]
fn a_reconcile_that_says_the_apply_did_not_take_applies_again() {
    let mut run = Run::new(make_plan(&policy(), &fleet(1, 1)));
    run.run_until(|a| a.contains(&apply("np-00")));
    // The runner died before the apply ran: nothing was installed.
    run.inbox.clear();
    run.world.installed.clear();
    let resumed = run.decide();
    assert_eq!(
        resumed,
        vec![Action::Reconcile {
            host: h("np-00"),
            step: ChangeKind::Apply
        }]
    );
    assert_eq!(
        run.state.host(&h("np-00")).unwrap().phase,
        HostPhase::Reconciling
    );
    assert_eq!(run.state.waiting_for(), &WaitingFor::Hosts { busy: 1 });
    run.execute(&resumed);
    let again = run.decide();
    assert_eq!(again, vec![apply("np-00")]);
    assert!(run.state.history().any(|e| e.kind
        == EventKind::Reconciled {
            host: h("np-00"),
            step: ChangeKind::Apply,
            took: false
        }));
}

// ----- determinism and idempotence ---------------------------------------------------------------

#[test]
fn deciding_twice_on_the_same_input_gives_the_same_decision() {
    let plan = make_plan(&policy(), &fleet(2, 20));
    let bad = stage_hosts(&plan, wave(3))[0].clone();
    let mut run = Run::new(plan);
    run.world.fail_verify.insert(bad);
    run.run();
    for tick in &run.log {
        let first = decide(&tick.state_before, tick.now, &tick.observations);
        let second = decide(&tick.state_before, tick.now, &tick.observations);
        assert_eq!(first, second);
        assert_eq!(first.state, tick.state_after);
        assert_eq!(first.actions, tick.actions);
    }
}

#[test]
fn deciding_again_without_observations_repeats_the_outstanding_actions() {
    let plan = make_plan(&policy(), &fleet(2, 20));
    let bad = stage_hosts(&plan, wave(4))[1].clone();
    let mut run = Run::new(plan);
    run.world.fail_verify.insert(bad);
    run.run();
    for tick in &run.log {
        let resumed: Decision = decide(&tick.state_after, tick.now, &[]);
        let again = decide(&resumed.state, tick.now, &[]);
        assert_eq!(again, resumed, "not a fixed point at {}", tick.now);
        assert!(!resumed
            .actions
            .iter()
            .any(|a| matches!(a, Action::Apply { .. } | Action::Rollback { .. })));
    }
}

#[test]
fn a_state_read_back_from_json_decides_the_same() {
    let mut run = Run::new(make_plan(&policy(), &fleet(2, 20)));
    run.run_until(|a| a.contains(&Action::CaptureBaseline { stage: wave(2) }));
    let json = serde_json::to_string(&run.state).unwrap();
    let back: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, run.state);
    assert_eq!(
        decide(&back, run.now, &run.inbox),
        decide(&run.state, run.now, &run.inbox)
    );
}

// ----- stray observations -------------------------------------------------------------------------

#[test]
fn unknown_stale_and_duplicate_observations_are_ignored_and_recorded() {
    let mut run = Run::new(make_plan(&policy(), &fleet(1, 3)));
    run.run_until(|a| a.contains(&apply("np-00")));
    let strays = vec![
        applied("np-00"),
        applied("np-00"),
        applied("stranger"),
        verified("p-0000"),
        Observation::Health {
            stage: wave(2),
            check: HealthCheck::Gate,
            verdict: Verdict::NoGo("late".into()),
        },
        Observation::BaselineCaptured {
            stage: StageId::Canary,
        },
        Observation::Start { by: "eve".into() },
        Observation::Approved { by: "eve".into() },
    ];
    run.inbox = strays;
    let actions = run.decide();
    assert_eq!(actions, vec![Action::Verify { host: h("np-00") }]);
    let ignored: Vec<EventKind> = run
        .state
        .history()
        .filter(|e| matches!(e.kind, EventKind::Ignored { .. }))
        .map(|e| e.kind.clone())
        .collect();
    let ignored_as = |observation: &str, why: &str| EventKind::Ignored {
        observation: observation.into(),
        why: why.into(),
    };
    assert_eq!(
        ignored,
        vec![
            ignored_as(
                "apply of np-00 (ok: true)",
                "np-00 is verifying, not applying"
            ),
            ignored_as(
                "apply of stranger (ok: true)",
                "stranger is not staged in this rollout"
            ),
            ignored_as(
                "verify of p-0000 (ok: true)",
                "p-0000 is pending, not verifying"
            ),
            ignored_as("wave 2 gate: no-go: late", "the current stage is canary"),
            ignored_as(
                "baseline of canary",
                "canary is running, not capturing a baseline"
            ),
            ignored_as("start by eve", "the rollout is already running"),
            ignored_as(
                "approval by eve",
                "nothing awaits approval (the rollout is running)"
            ),
        ]
    );
    assert_eq!(run.state.counters().ignored, 7);
    assert_eq!(run.state.status(), &Status::Running);
}

#[test]
fn the_history_is_bounded() {
    let mut run = Run::new(make_plan(&policy(), &fleet(1, 3)));
    run.tick();
    run.inbox = (0..300).map(|_| applied("stranger")).collect();
    run.decide();
    // Started, canary started, then 300 ignored: 302 events, 256 kept.
    assert_eq!(run.state.history().count(), HISTORY_LIMIT);
    assert_eq!(run.state.dropped_events(), 302 - HISTORY_LIMIT as u64);
}

// ----- verify off, forced ------------------------------------------------------------------------

#[test]
fn with_verify_forced_off_an_apply_report_is_final() {
    let p = Policy {
        verify: false,
        ..policy()
    };
    let targets = fleet(1, 3);
    let plan = plan(
        &super::sim::manifest(PatchClass::Critical),
        &targets,
        &p,
        Some(Force {
            reason: "verification plugin broken, INC-42".into(),
            by: "alice".into(),
        }),
    )
    .unwrap();
    let mut run = Run::new(plan);
    run.run();
    assert_eq!(run.state.status(), &Status::Completed);
    assert!(!run
        .all_actions()
        .any(|a| matches!(a, Action::Verify { .. })));
    assert!(run
        .state
        .hosts()
        .values()
        .all(|s| s.phase == HostPhase::Applied));
    assert_eq!(
        run.state.summary().forced.unwrap().reason,
        "verification plugin broken, INC-42"
    );
}

// ----- status ------------------------------------------------------------------------------------

#[test]
fn the_summary_reads_per_stage() {
    let p = Policy {
        stage_budget: FailureBudget::percent(50),
        rollout_budget: FailureBudget::percent(10),
        ..policy()
    };
    let plan = make_plan(&p, &fleet(1, 20));
    let bad = stage_hosts(&plan, wave(2))[1].clone();
    let mut run = Run::new(plan);
    run.world.fail_apply.insert(bad.clone());
    run.run_until(|a| a.contains(&Action::CaptureBaseline { stage: wave(3) }));
    let summary = run.state.summary();
    assert_eq!(summary.current_stage, Some(wave(3)));
    assert_eq!(summary.waiting_for, WaitingFor::Baseline { stage: wave(3) });
    let text = summary.to_string();
    let expected = format!(
        "rollout r-1 of manifest {id} (critical): running\n\
stage    hosts pending in-flight applied verified failed lost rolled-back rollback-failed  phase\n\
canary       1       0         0       1        1      0    0           0               0  passed\n\
wave 1       1       0         0       1        1      0    0           0               0  passed\n\
wave 2       4       0         0       3        3      1    0           1               0  passed\n\
wave 3       5       5         0       0        0      0    0           0               0  capturing baseline\n\
wave 4      10      10         0       0        0      0    0           0               0  pending\n\
up to date: 0 hosts\n\
problem: {bad} (wave 2): apply failed: apt-get exited 0\n\
waiting for: the baseline of wave 3",
        id = run.state.manifest().id()
    );
    assert_eq!(text, expected);
}

#[test]
fn halting_records_the_scope() {
    let plan = make_plan(&policy(), &fleet(1, 3));
    let mut run = Run::new(plan);
    run.world
        .health
        .push(((wave(1), HealthCheck::Gate), Verdict::NoGo("boom".into())));
    run.run_until(|a| a.iter().any(|a| matches!(a, Action::Rollback { .. })));
    assert_eq!(
        run.state.status(),
        &Status::Halted {
            reason: "wave 1 gate: no-go: boom".into(),
            scope: HaltScope::Stage(wave(1))
        }
    );
    assert_eq!(run.state.waiting_for(), &WaitingFor::Hosts { busy: 1 });
    // An abort cannot stop a rollback.
    run.inbox.push(Observation::Abort {
        by: "eve".into(),
        reason: "stop".into(),
    });
    run.run();
    let ignored: Vec<&EventKind> = run
        .state
        .history()
        .map(|e| &e.kind)
        .filter(|k| matches!(k, EventKind::Ignored { .. }))
        .collect();
    assert_eq!(
        ignored,
        vec![&EventKind::Ignored {
            observation: "abort by eve: stop".into(),
            why: "a rollback is in progress and cannot be aborted".into()
        }]
    );
    assert_eq!(
        run.state.status(),
        &Status::RolledBack {
            reason: "wave 1 gate: no-go: boom".into()
        }
    );
}

#[test]
fn an_empty_plan_completes_on_start() {
    let targets: Vec<crate::Target> = fleet(1, 2)
        .into_iter()
        .map(|mut t| {
            t.changes.clear();
            t
        })
        .collect();
    let mut run = Run::new(make_plan(&policy(), &targets));
    run.run();
    assert_eq!(
        run.log[0].actions,
        vec![Action::Finished {
            outcome: Outcome::Completed {
                hosts: 0,
                failed: 0,
                rollback_failed: 0
            }
        }]
    );
    assert_eq!(run.state.summary().up_to_date, 3);
}

#[test]
fn abort_before_start_finishes_at_once() {
    let mut run = Run::new(make_plan(&policy(), &fleet(1, 2)));
    run.inbox = vec![Observation::Abort {
        by: "alice".into(),
        reason: "wrong manifest".into(),
    }];
    let actions = run.decide();
    assert_eq!(
        actions,
        vec![Action::Finished {
            outcome: Outcome::Aborted {
                by: "alice".into(),
                reason: "wrong manifest".into()
            }
        }]
    );
    assert_eq!(run.state.waiting_for(), &WaitingFor::Nothing);
}
