//! `decide` over a whole 1,000-host rollout.
//!
//! Drives a rollout of 20 non-prod and 980 prod hosts (canary, soak, smoke check, waves of
//! 5/25/50/100 %) through `decide` with every action answered at once, and measures only the
//! time spent inside `decide`. Each host is in exactly one stage, so the time per host per
//! wave is the total divided by 1,000. Run twice: every host of a stage started together,
//! and at most 25 hosts in flight (many more decisions).
//!
//! `cargo bench -p patchwave-rollout --bench decide -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use patchwave_core::{Change, Environment, HostId};
use patchwave_rollout::{
    decide, plan, Action, Observation, PatchClass, PinnedPackage, Plan, Policy, ReleaseManifest,
    Rollout, Status, Target, Verdict,
};

const NON_PROD: usize = 20;
const PROD: usize = 980;
const HOSTS: usize = NON_PROD + PROD;

fn fleet_plan(max_parallel: Option<u32>) -> Plan {
    let manifest = ReleaseManifest::new(
        vec![
            PinnedPackage::new("Debian:12", "acme-web", "1.0-2"),
            PinnedPackage::new("Debian:12", "openssl", "3.0.15-1~deb12u1"),
        ],
        "findings: critical",
        PatchClass::Critical,
    )
    .unwrap();
    let target = |i: usize| Target {
        host: HostId(format!("host-{i:04}")),
        environment: if i < NON_PROD {
            Environment::NonProd
        } else {
            Environment::Prod
        },
        scope: "web".into(),
        changes: vec![
            Change {
                name: "acme-web".into(),
                from: Some("1.0-1".into()),
                to: "1.0-2".into(),
            },
            Change {
                name: "openssl".into(),
                from: Some("3.0.14-1~deb12u1".into()),
                to: "3.0.15-1~deb12u1".into(),
            },
        ],
    };
    let targets: Vec<Target> = (0..HOSTS).map(target).collect();
    let policy = Policy {
        max_parallel,
        ..Policy::default()
    };
    plan(&manifest, &targets, &policy, None).unwrap()
}

/// The answer of an always-healthy fleet to one action.
fn answer(action: &Action) -> Option<Observation> {
    match action {
        Action::CaptureBaseline { stage } => Some(Observation::BaselineCaptured { stage: *stage }),
        Action::Apply { host, .. } => Some(Observation::Applied {
            host: host.clone(),
            ok: true,
            detail: String::new(),
        }),
        Action::Verify { host } => Some(Observation::Verified {
            host: host.clone(),
            ok: true,
            detail: String::new(),
        }),
        Action::CheckHealth { stage, check, .. } => Some(Observation::Health {
            stage: *stage,
            check: *check,
            verdict: Verdict::Go,
        }),
        _ => None,
    }
}

/// Runs the rollout to the end; returns the time spent in `decide` and the decision count.
fn drive(plan: &Plan) -> (Duration, usize) {
    let mut state = Rollout::new("bench", plan.clone());
    let mut now: DateTime<Utc> = DateTime::from_timestamp(1_704_672_000, 0).unwrap();
    let mut inbox = vec![Observation::Start { by: "bench".into() }];
    let mut in_decide = Duration::ZERO;
    let mut decisions = 0;
    loop {
        let started = Instant::now();
        let decision = decide(&state, now, &inbox);
        in_decide += started.elapsed();
        decisions += 1;
        state = black_box(decision.state);
        inbox = decision.actions.iter().filter_map(answer).collect();
        if inbox.is_empty() {
            match decision.actions.iter().find_map(|a| match a {
                Action::WaitUntil { at, .. } => Some(*at),
                _ => None,
            }) {
                Some(at) => now = at,
                None => break,
            }
        }
    }
    assert_eq!(state.status(), &Status::Completed);
    (in_decide, decisions)
}

fn report(name: &str, plan: &Plan) {
    let runs = 10;
    let mut total = Duration::ZERO;
    let mut decisions = 0;
    for _ in 0..runs {
        let (time, count) = drive(plan);
        total += time;
        decisions = count;
    }
    let per_rollout = total / runs;
    println!(
        "{name}: {HOSTS} hosts, {decisions} decisions, decide CPU {per_rollout:?} per rollout, \
         {:?} per decision, {:?} per host per wave",
        per_rollout / decisions as u32,
        per_rollout / HOSTS as u32,
    );
}

fn bench(c: &mut Criterion) {
    for (name, max_parallel) in [("all_at_once", None), ("max_parallel_25", Some(25))] {
        let plan = fleet_plan(max_parallel);
        report(name, &plan);
        c.bench_function(&format!("decide_rollout_1000_hosts/{name}"), |b| {
            b.iter_custom(|iterations| (0..iterations).map(|_| drive(&plan).0).sum::<Duration>())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
