#![allow(clippy::unwrap_used, clippy::expect_used)]

use patchwave_core::{Change, Environment, HostId};

use super::*;
use crate::manifest::PinnedPackage;

fn manifest(class: PatchClass) -> ReleaseManifest {
    ReleaseManifest::new(
        vec![
            PinnedPackage::new("Debian:12", "acme-web", "1.0-2"),
            PinnedPackage::new("Debian:12", "openssl", "3.0.15-1~deb12u1"),
        ],
        "findings: critical,high",
        class,
    )
    .unwrap()
}

fn change(name: &str, to: &str) -> Change {
    Change {
        name: name.into(),
        from: Some("0".into()),
        to: to.into(),
    }
}

fn target(id: &str, environment: Environment, scope: &str) -> Target {
    Target {
        host: HostId::from(id),
        environment,
        scope: scope.into(),
        changes: vec![change("acme-web", "1.0-2")],
    }
}

fn prod(n: usize) -> Vec<Target> {
    (0..n)
        .map(|i| target(&format!("p-{i:04}"), Environment::Prod, "web"))
        .collect()
}

fn non_prod(n: usize) -> Vec<Target> {
    (0..n)
        .map(|i| target(&format!("np-{i:02}"), Environment::NonProd, "web"))
        .collect()
}

fn fleet(np: usize, p: usize) -> Vec<Target> {
    let mut targets = non_prod(np);
    targets.extend(prod(p));
    targets
}

fn ids(stage: &PlannedStage) -> Vec<&str> {
    stage.hosts.iter().map(|h| h.host.as_str()).collect()
}

fn shape(plan: &Plan) -> Vec<(StageId, usize)> {
    plan.stages()
        .iter()
        .map(|s| (s.id, s.hosts.len()))
        .collect()
}

fn force() -> Force {
    Force {
        reason: "INC-42: exploit in the wild".into(),
        by: "alice".into(),
    }
}

#[test]
fn waves_end_at_cumulative_coverage_rounded_up() {
    let waves = [5, 25, 50, 100];
    assert_eq!(wave_ends(1, &waves), vec![(5, 1)]);
    assert_eq!(wave_ends(3, &waves), vec![(5, 1), (25, 2), (50, 3)]);
    assert_eq!(
        wave_ends(19, &waves),
        vec![(5, 1), (25, 5), (50, 10), (100, 19)]
    );
    assert_eq!(
        wave_ends(20, &waves),
        vec![(5, 1), (25, 5), (50, 10), (100, 20)]
    );
    assert_eq!(
        wave_ends(100, &waves),
        vec![(5, 5), (25, 25), (50, 50), (100, 100)]
    );
    assert_eq!(
        wave_ends(1000, &waves),
        vec![(5, 50), (25, 250), (50, 500), (100, 1000)]
    );
    assert_eq!(wave_ends(0, &waves), vec![]);
}

#[test]
fn every_wave_adds_at_least_one_host_while_hosts_remain() {
    assert_eq!(
        wave_ends(10, &[1, 2, 3, 100]),
        vec![(1, 1), (2, 2), (3, 3), (100, 10)]
    );
    assert_eq!(wave_ends(2, &[1, 2, 3, 100]), vec![(1, 1), (2, 2)]);
}

#[test]
fn canary_then_waves_with_their_coverage() {
    let plan = plan(
        &manifest(PatchClass::Critical),
        &fleet(2, 20),
        &Policy::default(),
        None,
    )
    .unwrap();
    assert_eq!(
        shape(&plan),
        vec![
            (StageId::Canary, 2),
            (StageId::Wave(1), 1),
            (StageId::Wave(2), 4),
            (StageId::Wave(3), 5),
            (StageId::Wave(4), 10),
        ]
    );
    let coverage: Vec<(Option<u32>, usize)> = plan
        .stages()
        .iter()
        .map(|s| (s.coverage_percent, s.prod_hosts_covered))
        .collect();
    assert_eq!(
        coverage,
        vec![
            (None, 0),
            (Some(5), 1),
            (Some(25), 5),
            (Some(50), 10),
            (Some(100), 20)
        ]
    );
    assert!(plan.stages()[0]
        .hosts
        .iter()
        .all(|h| h.environment == Environment::NonProd));
    assert!(plan.stages()[1..]
        .iter()
        .flat_map(|s| &s.hosts)
        .all(|h| h.environment == Environment::Prod));
    assert_eq!(plan.staged_hosts(), 22);
    assert_eq!(plan.forced(), None);
    assert_eq!(
        plan.changes_for(&HostId::from("p-0007")),
        Some(&[change("acme-web", "1.0-2")][..])
    );
    assert_eq!(plan.changes_for(&HostId::from("nobody")), None);
}

#[test]
fn hosts_are_ordered_by_the_hash_of_their_id() {
    let plan = plan(
        &manifest(PatchClass::Critical),
        &fleet(3, 6),
        &Policy::default(),
        None,
    )
    .unwrap();
    // sha256 order of the ids, worked out independently.
    assert_eq!(ids(&plan.stages()[0]), vec!["np-02", "np-00", "np-01"]);
    let prod_order: Vec<&str> = plan.stages()[1..].iter().flat_map(ids).collect();
    assert_eq!(
        prod_order,
        vec!["p-0003", "p-0000", "p-0005", "p-0004", "p-0001", "p-0002"]
    );
}

#[test]
fn re_planning_gives_the_same_waves_whatever_the_input_order() {
    let m = manifest(PatchClass::Critical);
    let targets = fleet(2, 50);
    let mut reversed = targets.clone();
    reversed.reverse();
    let a = plan(&m, &targets, &Policy::default(), None).unwrap();
    let b = plan(&m, &reversed, &Policy::default(), None).unwrap();
    assert_eq!(a, b);
}

#[test]
fn adding_a_host_does_not_reorder_the_others() {
    let m = manifest(PatchClass::Critical);
    let before = plan(&m, &fleet(1, 40), &Policy::default(), None).unwrap();
    let mut more = fleet(1, 40);
    more.push(target("p-new", Environment::Prod, "web"));
    let after = plan(&m, &more, &Policy::default(), None).unwrap();
    let order = |p: &Plan| -> Vec<String> {
        p.stages()[1..]
            .iter()
            .flat_map(|s| s.hosts.iter().map(|h| h.host.0.clone()))
            .collect()
    };
    let mut without_new = order(&after);
    without_new.retain(|id| id != "p-new");
    assert_eq!(without_new, order(&before));
    assert_eq!(order(&after).len(), 41);
}

#[test]
fn hosts_without_changes_are_up_to_date_not_staged() {
    let mut targets = fleet(1, 3);
    targets[2].changes.clear();
    targets.push(Target {
        host: HostId::from("a-first"),
        environment: Environment::Prod,
        scope: "web".into(),
        changes: vec![],
    });
    let plan = plan(
        &manifest(PatchClass::Critical),
        &targets,
        &Policy::default(),
        None,
    )
    .unwrap();
    assert_eq!(
        plan.up_to_date(),
        &[HostId::from("a-first"), HostId::from("p-0001")]
    );
    assert_eq!(plan.staged_hosts(), 3);
    assert!(plan.host(&HostId::from("p-0001")).is_none());
}

#[test]
fn a_single_prod_stage_is_refused_with_how_to_force() {
    let policy = Policy {
        waves: vec![100],
        ..Policy::default()
    };
    let err = plan(
        &manifest(PatchClass::Critical),
        &fleet(1, 20),
        &policy,
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.as_slice(),
        &[PlanError::Refused(AntiPattern::SingleProdStage {
            prod_hosts: 20,
            waves: vec![100]
        })]
    );
    assert_eq!(
        err.to_string(),
        "1 problem: refused: all 20 prod hosts would be patched in a single stage (waves [100]); \
         use several waves such as [5, 25, 50, 100]; to go ahead anyway, plan again with a force \
         giving the reason and who decides it"
    );
    // Also for one prod host when the policy itself has a single wave.
    let err = plan(&manifest(PatchClass::Low), &prod(1), &policy, None).unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![PlanError::Refused(AntiPattern::SingleProdStage {
            prod_hosts: 1,
            waves: vec![100]
        })]
    );
}

#[test]
fn several_prod_hosts_collapsing_into_one_wave_are_refused() {
    let policy = Policy {
        waves: vec![99, 100],
        ..Policy::default()
    };
    let err = plan(&manifest(PatchClass::Critical), &fleet(1, 2), &policy, None).unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![PlanError::Refused(AntiPattern::SingleProdStage {
            prod_hosts: 2,
            waves: vec![99, 100]
        })]
    );
}

#[test]
fn one_prod_host_under_a_multi_wave_policy_is_fine() {
    let plan = plan(
        &manifest(PatchClass::Critical),
        &fleet(1, 1),
        &Policy::default(),
        None,
    )
    .unwrap();
    assert_eq!(
        shape(&plan),
        vec![(StageId::Canary, 1), (StageId::Wave(1), 1)]
    );
    assert_eq!(plan.forced(), None);
}

#[test]
fn verify_off_is_refused() {
    let policy = Policy {
        verify: false,
        ..Policy::default()
    };
    let err = plan(&manifest(PatchClass::Low), &fleet(1, 20), &policy, None).unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![PlanError::Refused(AntiPattern::VerifyOff)]
    );
}

#[test]
fn critical_patches_without_non_prod_hosts_are_refused() {
    let err = plan(
        &manifest(PatchClass::Critical),
        &prod(20),
        &Policy::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.as_slice(),
        &[PlanError::Refused(AntiPattern::NoCanary {
            class: PatchClass::Critical,
            missing: MissingCanary::UncoveredScopes {
                scopes: vec!["web".into()]
            }
        })]
    );
    assert_eq!(
        err.to_string(),
        "1 problem: refused: critical patches would reach prod without a canary: no non-prod \
         host in scope web; add a non-prod host of each such scope to the rollout; to go ahead \
         anyway, plan again with a force giving the reason and who decides it"
    );
}

#[test]
fn the_canary_must_cover_every_prod_scope_for_urgent_patches() {
    let mut targets = fleet(1, 10);
    targets.push(target("db-01", Environment::Prod, "db"));
    targets.push(target("cache-01", Environment::Prod, "cache"));
    let err = plan(
        &manifest(PatchClass::High),
        &targets,
        &Policy::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![PlanError::Refused(AntiPattern::NoCanary {
            class: PatchClass::High,
            missing: MissingCanary::UncoveredScopes {
                scopes: vec!["cache".into(), "db".into()]
            }
        })]
    );
    // Moderate patches need no canary coverage.
    assert!(plan(
        &manifest(PatchClass::Moderate),
        &targets,
        &Policy::default(),
        None
    )
    .is_ok());
}

#[test]
fn urgent_patches_with_the_canary_disabled_are_refused() {
    let policy = Policy {
        canary: false,
        ..Policy::default()
    };
    let err = plan(&manifest(PatchClass::High), &fleet(2, 20), &policy, None).unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![PlanError::Refused(AntiPattern::NoCanary {
            class: PatchClass::High,
            missing: MissingCanary::Disabled
        })]
    );
}

#[test]
fn listed_classes_skip_the_canary_and_their_non_prod_hosts_lead_wave_one() {
    let policy = Policy {
        skip_canary_for: vec![PatchClass::Low],
        ..Policy::default()
    };
    let plan = plan(&manifest(PatchClass::Low), &fleet(2, 20), &policy, None).unwrap();
    assert_eq!(
        shape(&plan),
        vec![
            (StageId::Wave(1), 3),
            (StageId::Wave(2), 4),
            (StageId::Wave(3), 5),
            (StageId::Wave(4), 10),
        ]
    );
    assert_eq!(&ids(&plan.stages()[0])[..2], &["np-00", "np-01"]);
    assert_eq!(plan.stages()[0].hosts[2].environment, Environment::Prod);
    // With only non-prod hosts they form one wave.
    let only = crate::plan(&manifest(PatchClass::Low), &non_prod(2), &policy, None).unwrap();
    assert_eq!(shape(&only), vec![(StageId::Wave(1), 2)]);
}

#[test]
fn every_refusal_is_reported_at_once_and_a_force_overrides_and_records_them() {
    let policy = Policy {
        waves: vec![100],
        verify: false,
        canary: false,
        ..Policy::default()
    };
    let m = manifest(PatchClass::Critical);
    let refusals = vec![
        AntiPattern::SingleProdStage {
            prod_hosts: 20,
            waves: vec![100],
        },
        AntiPattern::VerifyOff,
        AntiPattern::NoCanary {
            class: PatchClass::Critical,
            missing: MissingCanary::Disabled,
        },
    ];
    let err = plan(&m, &fleet(2, 20), &policy, None).unwrap_err();
    assert_eq!(
        err.into_vec(),
        refusals
            .iter()
            .cloned()
            .map(PlanError::Refused)
            .collect::<Vec<_>>()
    );
    let forced = plan(&m, &fleet(2, 20), &policy, Some(force())).unwrap();
    assert_eq!(
        forced.forced(),
        Some(&ForceRecord {
            reason: "INC-42: exploit in the wild".into(),
            by: "alice".into(),
            overridden: refusals,
        })
    );
    assert_eq!(shape(&forced), vec![(StageId::Wave(1), 22)]);
}

#[test]
fn a_force_needs_a_reason_and_a_name() {
    let policy = Policy {
        verify: false,
        ..Policy::default()
    };
    let err = plan(
        &manifest(PatchClass::Low),
        &fleet(1, 20),
        &policy,
        Some(Force {
            reason: " ".into(),
            by: String::new(),
        }),
    )
    .unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![
            PlanError::ForceIncomplete { field: "reason" },
            PlanError::ForceIncomplete { field: "by" },
        ]
    );
}

#[test]
fn a_force_with_nothing_to_override_is_not_recorded() {
    let plan = plan(
        &manifest(PatchClass::Critical),
        &fleet(1, 20),
        &Policy::default(),
        Some(force()),
    )
    .unwrap();
    assert_eq!(plan.forced(), None);
}

#[test]
fn targets_are_checked_against_the_manifest() {
    let mut targets = fleet(1, 3);
    targets.push(target("p-0001", Environment::Prod, "web"));
    targets[1].changes = vec![
        change("acme-web", "1.0-3"),
        change("openssl", "3.0.15-1~deb12u1"),
        change("openssl", "3.0.15-1~deb12u1"),
    ];
    let err = plan(
        &manifest(PatchClass::Critical),
        &targets,
        &Policy::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![
            PlanError::NotPinned {
                host: HostId::from("p-0000"),
                package: "acme-web".into(),
                version: "1.0-3".into()
            },
            PlanError::DuplicateChange {
                host: HostId::from("p-0000"),
                package: "openssl".into()
            },
            PlanError::DuplicateTarget {
                host: HostId::from("p-0001")
            },
        ]
    );
}

#[test]
fn an_invalid_policy_is_reported_with_the_target_problems() {
    let policy = Policy {
        waves: vec![50, 40],
        ..Policy::default()
    };
    let mut targets = fleet(1, 3);
    targets.push(target("p-0000", Environment::Prod, "web"));
    let err = plan(&manifest(PatchClass::Critical), &targets, &policy, None).unwrap_err();
    assert_eq!(
        err.into_vec(),
        vec![
            PlanError::Policy(PolicyError::WavesNotIncreasing {
                index: 1,
                previous: 50,
                percent: 40
            }),
            PlanError::Policy(PolicyError::LastWaveNotFull { last: 40 }),
            PlanError::DuplicateTarget {
                host: HostId::from("p-0000")
            },
        ]
    );
}
