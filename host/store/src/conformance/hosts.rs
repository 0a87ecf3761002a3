//! Hosts: registering, recording scans (staleness, superseded attempts, shared
//! inventories), the change journal, removal and the fleet as matching sees it.

use std::sync::Arc;

use chrono::Duration;
use patchwave_core::{Environment, Freshness, HostId, Installed, ScanStatus};

use super::fixtures::*;
use super::Backend;
use crate::{
    package_order, ChangeId, FleetHost, HostRecord, InventoryId, NewChange, ScanEffect,
    ScanOutcome, ScanResult, StoreError,
};

/// Successful scan fills the summary.
pub async fn successful_scan_fills_the_summary(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("web-1");
    store.register_host(&host("web-1")).await.unwrap();
    let upgradable = vec![pkg("openssl", "3.0.13-1")];
    let recorded = store
        .record_scan(&id, ok_at(10, base_packages(), upgradable.clone()))
        .await
        .unwrap();
    assert!(matches!(
        recorded.effect,
        ScanEffect::InventoryChanged { .. }
    ));

    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.id, id);
    assert_eq!(s.address, "web-1.example.internal");
    assert_eq!(s.env, Environment::Prod);
    assert_eq!(s.scope, "payments");
    assert_eq!(s.facts, Some(facts()));
    assert_eq!(s.package_count, Some(3));
    assert_eq!(s.upgradable_count, Some(1));
    assert_eq!(s.plugin.as_deref(), Some("debian"));
    assert_eq!(s.last_attempt_at, Some(t(10)));
    assert_eq!(s.last_status, Some(ScanStatus::Ok));
    assert_eq!(s.last_success_at, Some(t(10)));
    assert_eq!(s.inventory_changed_at, Some(t(10)));
    assert_eq!(s.freshness(t(20), DAY), Freshness::Fresh);

    let inv = store.inventory(&id).await.unwrap().unwrap();
    let mut sorted = base_packages();
    sorted.sort_by(package_order);
    assert_eq!(inv.packages, sorted);
    assert_eq!((inv.taken_at, inv.last_seen), (t(10), t(10)));
    assert_eq!(store.upgradable(&id).await.unwrap(), upgradable);

    let record = store.host(&id).await.unwrap().unwrap();
    assert_eq!(record.tags, vec!["eu".to_string(), "web".to_string()]);
    assert_eq!(record.port, Some(22));
    assert_eq!(record.transport, "ssh");
}

/// Never scanned host is unknown.
pub async fn never_scanned_host_is_unknown(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("new");
    store.register_host(&host("new")).await.unwrap();
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.freshness(t(0), DAY), Freshness::Unknown);
    assert_eq!(
        (s.facts, s.package_count, s.last_status),
        (None, None, None)
    );
    assert!(store.inventory(&id).await.unwrap().is_none());
    assert!(store.scan_history(&id, 10).await.unwrap().is_empty());
    assert!(store
        .host_summary(&HostId::from("nope"))
        .await
        .unwrap()
        .is_none());
}

/// Same inventory twice is one snapshot seen again.
pub async fn same_inventory_twice_is_one_snapshot_seen_again(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    let first = store
        .record_scan(&id, ok_at(10, base_packages(), vec![]))
        .await
        .unwrap();
    let mut shuffled = base_packages();
    shuffled.reverse();
    let second = store
        .record_scan(&id, ok_at(24 * 60, shuffled, vec![]))
        .await
        .unwrap();
    let ScanEffect::InventoryChanged { snapshot } = first.effect else {
        panic!("{first:?}")
    };
    assert_eq!(second.effect, ScanEffect::InventoryUnchanged { snapshot });

    let inv = store.inventory(&id).await.unwrap().unwrap();
    assert_eq!(inv.snapshot_id, snapshot);
    assert_eq!((inv.taken_at, inv.last_seen), (t(10), t(24 * 60)));
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.inventory_changed_at, Some(t(10)));
    assert_eq!(s.last_success_at, Some(t(24 * 60)));
    assert_eq!(store.scan_history(&id, 10).await.unwrap().len(), 2);
}

/// Changed inventory starts a new snapshot.
pub async fn changed_inventory_starts_a_new_snapshot(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    let first = store
        .record_scan(
            &id,
            ok_at(10, base_packages(), vec![pkg("openssl", "3.0.13-1")]),
        )
        .await
        .unwrap();
    let ScanEffect::InventoryChanged { snapshot: first } = first.effect else {
        panic!("{first:?}")
    };
    let first_inventory = store.fleet_hosts().await.unwrap()[0].inventory;
    let mut patched = base_packages();
    patched[0] = pkg("openssl", "3.0.13-1");
    let recorded = store
        .record_scan(&id, ok_at(100, patched.clone(), vec![]))
        .await
        .unwrap();
    let ScanEffect::InventoryChanged { snapshot } = recorded.effect else {
        panic!("{recorded:?}")
    };
    let inv = store.inventory(&id).await.unwrap().unwrap();
    assert_eq!(inv.snapshot_id, snapshot);
    assert_eq!(inv.taken_at, t(100));
    patched.sort_by(package_order);
    assert_eq!(inv.packages, patched);
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.inventory_changed_at, Some(t(100)));
    assert_eq!(s.upgradable_count, Some(0));
    assert!(store.upgradable(&id).await.unwrap().is_empty());
    assert_ne!(snapshot, first);
    assert_eq!(
        store.package_versions("openssl").await.unwrap(),
        vec![(id.clone(), pkg("openssl", "3.0.13-1"))]
    );

    // Going back to the first package list is a new period, but its packages are not
    // stored again.
    let back = store
        .record_scan(&id, ok_at(200, base_packages(), vec![]))
        .await
        .unwrap();
    let ScanEffect::InventoryChanged { snapshot: third } = back.effect else {
        panic!("{back:?}")
    };
    assert!(third != first && third != snapshot, "{third:?}");
    assert_eq!(
        store.fleet_hosts().await.unwrap()[0].inventory,
        first_inventory
    );
    let history = store.scan_history(&id, 2).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].finished_at, t(200));
    assert_eq!(history[1].snapshot_id, Some(snapshot));
}

/// Failure after success keeps inventory and goes stale.
pub async fn failure_after_success_keeps_inventory_and_goes_stale(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    store
        .record_scan(
            &id,
            ok_at(10, base_packages(), vec![pkg("bash", "5.2.21-1")]),
        )
        .await
        .unwrap();
    let recorded = store
        .record_scan(&id, unreachable_at(20, "connection refused"))
        .await
        .unwrap();
    assert_eq!(recorded.effect, ScanEffect::AttemptFailed);

    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.package_count, Some(3));
    assert_eq!(s.upgradable_count, Some(1));
    assert_eq!(s.facts, Some(facts()));
    assert_eq!(s.last_success_at, Some(t(10)));
    assert_eq!(s.last_attempt_at, Some(t(20)));
    assert_eq!(
        s.last_status,
        Some(ScanStatus::Unreachable {
            error: "connection refused".into()
        })
    );
    // Well within the allowed age, yet not green.
    assert_eq!(s.freshness(t(21), DAY), Freshness::Stale);
    assert_eq!(
        store.inventory(&id).await.unwrap().unwrap().packages.len(),
        3
    );
    assert_eq!(store.upgradable(&id).await.unwrap().len(), 1);

    let failed = ScanOutcome {
        started_at: t(29),
        finished_at: t(30),
        result: ScanResult::Failed {
            error: "dpkg-query denied".into(),
        },
    };
    store.record_scan(&id, failed).await.unwrap();
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.last_status.as_ref().map(ScanStatus::word), Some("failed"));
    assert_eq!(
        s.last_status.as_ref().and_then(ScanStatus::error),
        Some("dpkg-query denied")
    );
    let history = store.scan_history(&id, 10).await.unwrap();
    let words: Vec<_> = history.iter().map(|a| a.status.word()).collect();
    assert_eq!(words, ["failed", "unreachable", "ok"]);
    assert_eq!(history[2].plugin.as_deref(), Some("debian"));
    assert_eq!(history[0].snapshot_id, None);

    // A later success turns it green again.
    store
        .record_scan(&id, ok_at(40, base_packages(), vec![]))
        .await
        .unwrap();
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.freshness(t(41), DAY), Freshness::Fresh);
    assert_eq!(s.inventory_changed_at, Some(t(10)));
}

/// Changes a rollout makes carry its id, so the rollout finds exactly what it applied on a
/// host, newest first, and never another rollout's (or a manual) change of the same packages.
pub async fn changes_are_found_by_their_rollout(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    for h in ["a", "b"] {
        store.register_host(&host(h)).await.unwrap();
    }
    let change = |h: &str, rollout: Option<&str>, request: &str, at: i64| NewChange {
        host: HostId::from(h),
        kind: patchwave_core::change::ChangeKind::Apply,
        plugin: "debian".into(),
        request: request.into(),
        expected: vec![],
        rollback_plan: Some("[]".into()),
        rollout: rollout.map(str::to_string),
        undoes: None,
        started_at: t(at),
    };
    let first = store
        .begin_change(&change("a", Some("ro-1"), "[1]", 10))
        .await
        .unwrap();
    store
        .begin_change(&change("a", None, "[manual]", 11))
        .await
        .unwrap();
    store
        .begin_change(&change("a", Some("ro-2"), "[2]", 12))
        .await
        .unwrap();
    store
        .begin_change(&change("b", Some("ro-1"), "[b]", 13))
        .await
        .unwrap();
    let second = store
        .begin_change(&change("a", Some("ro-1"), "[3]", 14))
        .await
        .unwrap();
    let found = store
        .rollout_changes("ro-1", &HostId::from("a"))
        .await
        .unwrap();
    assert_eq!(
        found
            .iter()
            .map(|c| (c.id, c.request.as_str()))
            .collect::<Vec<_>>(),
        vec![(second, "[3]"), (first, "[1]")]
    );
    assert!(found.iter().all(|c| c.rollout.as_deref() == Some("ro-1")));
    let manual = store.changes(&HostId::from("a"), 10).await.unwrap();
    assert_eq!(manual.iter().filter(|c| c.rollout.is_none()).count(), 1);
    assert!(store
        .rollout_changes("ro-3", &HostId::from("a"))
        .await
        .unwrap()
        .is_empty());
}

/// A rollback names the apply it undoes by id, and reads back with it; the store refuses a
/// link from an apply, to a change it does not hold, to another host's change, or to a
/// rollback — and records nothing for a refused one.
pub async fn a_rollback_names_the_apply_it_undoes(backend: &dyn Backend) {
    use patchwave_core::change::ChangeKind;
    let store = backend.fresh().await.store;
    for h in ["a", "b"] {
        store.register_host(&host(h)).await.unwrap();
    }
    let change = |h: &str, kind: ChangeKind, undoes: Option<ChangeId>, at: i64| NewChange {
        host: HostId::from(h),
        kind,
        plugin: "debian".into(),
        request: "[]".into(),
        expected: vec![],
        rollback_plan: (kind == ChangeKind::Apply).then(|| "[]".into()),
        rollout: Some("ro-1".into()),
        undoes,
        started_at: t(at),
    };
    let apply = store
        .begin_change(&change("a", ChangeKind::Apply, None, 10))
        .await
        .unwrap();
    let other_host = store
        .begin_change(&change("b", ChangeKind::Apply, None, 11))
        .await
        .unwrap();
    let rollback = store
        .begin_change(&change("a", ChangeKind::Rollback, Some(apply), 12))
        .await
        .unwrap();

    let refused = [
        (
            change("a", ChangeKind::Apply, Some(apply), 13),
            format!("an apply on a cannot undo change {apply}"),
        ),
        (
            change(
                "a",
                ChangeKind::Rollback,
                Some(ChangeId(rollback.0 + 1000)),
                13,
            ),
            format!(
                "a rollback on a undoes change {}, which is not recorded",
                rollback.0 + 1000
            ),
        ),
        (
            change("a", ChangeKind::Rollback, Some(other_host), 13),
            format!("a rollback on a undoes change {other_host}, which was made on b"),
        ),
        (
            change("a", ChangeKind::Rollback, Some(rollback), 13),
            format!("a rollback on a undoes change {rollback}, which is a rollback, not an apply"),
        ),
    ];
    for (new, message) in refused {
        let err = store.begin_change(&new).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("invalid input for the store: {message}")
        );
    }

    let journal = store.changes(&HostId::from("a"), 10).await.unwrap();
    assert_eq!(
        journal
            .iter()
            .map(|c| (c.id, c.kind, c.undoes))
            .collect::<Vec<_>>(),
        vec![
            (rollback, ChangeKind::Rollback, Some(apply)),
            (apply, ChangeKind::Apply, None),
        ]
    );
    let by_rollout = store
        .rollout_changes("ro-1", &HostId::from("a"))
        .await
        .unwrap();
    assert_eq!(by_rollout[0].undoes, Some(apply));
}

/// A change started after the last successful scan makes a fresh record `changed` (the
/// host may hold other versions than the store says) until the next successful scan.
pub async fn a_change_after_the_last_scan_shows_as_changed_until_the_next_scan(
    backend: &dyn Backend,
) {
    let store = backend.fresh().await.store;
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    store
        .record_scan(&id, ok_at(10, base_packages(), vec![]))
        .await
        .unwrap();
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.last_change_at, None);
    assert_eq!(s.freshness(t(11), DAY), Freshness::Fresh);

    store
        .begin_change(&NewChange {
            host: id.clone(),
            kind: patchwave_core::change::ChangeKind::Apply,
            plugin: "debian".into(),
            request: "[]".into(),
            expected: vec![],
            rollback_plan: Some("[]".into()),
            rollout: None,
            undoes: None,
            started_at: t(20),
        })
        .await
        .unwrap();
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.last_change_at, Some(t(20)));
    assert_eq!(s.freshness(t(21), DAY), Freshness::Changed);
    assert_eq!(Freshness::Changed.word(), "CHANGED");
    // Old age still wins: a stale record is stale, changed or not.
    assert_eq!(
        s.freshness(t(10) + DAY + Duration::minutes(1), DAY),
        Freshness::Stale
    );

    store
        .record_scan(&id, ok_at(30, base_packages(), vec![]))
        .await
        .unwrap();
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.freshness(t(31), DAY), Freshness::Fresh);
    assert_eq!(
        store.list_hosts().await.unwrap()[0].last_change_at,
        Some(t(20))
    );
}

/// Late report of an older attempt changes only history.
pub async fn late_report_of_an_older_attempt_changes_only_history(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    store
        .record_scan(&id, ok_at(50, base_packages(), vec![]))
        .await
        .unwrap();
    let late = store
        .record_scan(&id, unreachable_at(40, "timeout"))
        .await
        .unwrap();
    assert_eq!(late.effect, ScanEffect::Superseded);
    let late_ok = store
        .record_scan(&id, ok_at(45, vec![pkg("other", "1")], vec![]))
        .await
        .unwrap();
    assert_eq!(late_ok.effect, ScanEffect::Superseded);
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.last_status, Some(ScanStatus::Ok));
    assert_eq!(s.package_count, Some(3));
    assert_eq!(store.scan_history(&id, 10).await.unwrap().len(), 3);
}

/// Reregistering updates identity and keeps history.
pub async fn reregistering_updates_identity_and_keeps_history(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    store
        .record_scan(&id, ok_at(10, base_packages(), vec![]))
        .await
        .unwrap();
    let mut moved = host("a");
    moved.address = "10.0.0.7".into();
    moved.port = None;
    moved.env = Environment::NonProd;
    moved.tags = vec!["canary".into(), "canary".into()];
    moved.transport = "ssm".into();
    store.register_host(&moved).await.unwrap();

    let record = store.host(&id).await.unwrap().unwrap();
    assert_eq!(record.tags, vec!["canary".to_string()]);
    moved.tags = record.tags.clone();
    assert_eq!(record, moved);
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.address, "10.0.0.7");
    assert_eq!(s.env, Environment::NonProd);
    assert_eq!(s.package_count, Some(3));
    assert_eq!(store.scan_history(&id, 10).await.unwrap().len(), 1);
    assert!(store.inventory(&id).await.unwrap().is_some());
}

/// Hosts share inventories and removal frees only unshared ones.
pub async fn hosts_share_inventories_and_removal_frees_only_unshared_ones(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let (a, b) = (HostId::from("a"), HostId::from("b"));
    store.register_hosts(&[host("b"), host("a")]).await.unwrap();
    store
        .record_scan(&a, ok_at(10, base_packages(), vec![]))
        .await
        .unwrap();
    store
        .record_scan(&b, ok_at(11, base_packages(), vec![]))
        .await
        .unwrap();
    store
        .record_scan(
            &a,
            ok_at(20, vec![pkg("only-on-a", "1")], vec![pkg("x", "2")]),
        )
        .await
        .unwrap();
    store
        .record_scan(&a, unreachable_at(30, "gone"))
        .await
        .unwrap();
    // Two package lists, the first stored once for both hosts.
    let fleet = store.fleet_hosts().await.unwrap();
    let (own, shared) = (fleet[0].inventory.unwrap(), fleet[1].inventory.unwrap());
    assert_ne!(own, shared);
    assert_eq!(store.inventory_packages(own).await.unwrap().len(), 1);
    assert_eq!(store.inventory_packages(shared).await.unwrap().len(), 3);

    let ids: Vec<_> = store
        .list_hosts()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![a.clone(), b.clone()]);
    // Only latest snapshots count: `a` no longer has bash.
    let bash = store.package_versions("bash").await.unwrap();
    assert_eq!(bash, vec![(b.clone(), pkg("bash", "5.2.15-2"))]);

    let removed = store.remove_host(&a).await.unwrap().unwrap();
    assert_eq!(removed.snapshots, 2);
    assert_eq!(removed.scan_attempts, 3);
    assert_eq!(removed.inventories_freed, 1, "the shared list stays for b");
    assert!(store.host_summary(&a).await.unwrap().is_none());
    assert!(store.remove_host(&a).await.unwrap().is_none());
    assert!(store.host(&a).await.unwrap().is_none());
    assert!(store.inventory(&a).await.unwrap().is_none());
    assert!(store.upgradable(&a).await.unwrap().is_empty());
    assert!(store.scan_history(&a, 10).await.unwrap().is_empty());
    assert!(matches!(
        store.inventory_packages(own).await,
        Err(StoreError::InvalidInput { .. })
    ));
    assert_eq!(store.inventory_packages(shared).await.unwrap().len(), 3);
    assert_eq!(
        store.inventory(&b).await.unwrap().unwrap().packages.len(),
        3
    );
}

/// A removed host registered again under the same id starts from nothing.
pub async fn a_removed_host_registered_again_starts_from_nothing(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let a = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    store
        .record_scan(&a, ok_at(10, base_packages(), vec![pkg("x", "2")]))
        .await
        .unwrap();
    assert!(store.remove_host(&a).await.unwrap().is_some());
    store.register_host(&host("a")).await.unwrap();
    assert!(store.scan_history(&a, 10).await.unwrap().is_empty());
    assert!(store.inventory(&a).await.unwrap().is_none());
    assert!(store.upgradable(&a).await.unwrap().is_empty());
    let s = store.host_summary(&a).await.unwrap().unwrap();
    assert_eq!(s.freshness(t(40), DAY), Freshness::Unknown);
}

/// Large inventory round trips exactly.
pub async fn large_inventory_round_trips_exactly(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("big");
    store.register_host(&host("big")).await.unwrap();
    let mut packages: Vec<Installed> = (0..3000)
        .map(|i| Installed {
            name: format!("lib{:04}-{}", (i * 7919) % 3000, i % 3),
            version: format!("{}.{}.{}-{}+deb12u{}", i % 5, i % 11, i, i % 4, i % 2),
            arch: if i % 10 == 0 { "all" } else { "amd64" }.into(),
            source: (i % 3 == 0).then(|| format!("src-{i}")),
        })
        .collect();
    // Things that must survive: multiarch twins, two kernels of one name, exact duplicates,
    // an empty source distinct from no source, and non-ASCII text.
    packages.push(Installed {
        arch: "i386".into(),
        ..packages[1].clone()
    });
    packages.push(pkg("linux-image", "6.1.0-17"));
    packages.push(pkg("linux-image", "6.1.0-18"));
    packages.push(packages[5].clone());
    packages.push(Installed {
        source: Some(String::new()),
        ..pkg("empty-source", "1")
    });
    packages.push(pkg("ünïcode-☃", "1:2.0~rc1"));
    store
        .record_scan(&id, ok_at(10, packages.clone(), vec![]))
        .await
        .unwrap();
    let inv = store.inventory(&id).await.unwrap().unwrap();
    packages.sort_by(package_order);
    assert_eq!(inv.packages.len(), 3006);
    assert_eq!(inv.packages, packages);
    assert_eq!(
        inv.digest,
        patchwave_core::inventory::inventory_digest(&packages)
    );
    let with_source = inv.packages.iter().filter(|p| p.source.is_some()).count();
    assert_eq!(with_source, 1001);
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.package_count, Some(3006));
    let kernels = store.package_versions("linux-image").await.unwrap();
    assert_eq!(kernels.len(), 2);
}

/// Concurrent scans all land.
pub async fn concurrent_scans_all_land(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let hosts: Vec<HostRecord> = (0..20).map(|i| host(&format!("h{i:02}"))).collect();
    store.register_hosts(&hosts).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        for round in 0..5 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let id = HostId(format!("h{i:02}"));
                let outcome = if round == 0 && i % 2 == 0 {
                    unreachable_at(round, "flaky")
                } else {
                    ok_at(
                        round,
                        vec![pkg("p", &format!("{round}")), pkg("q", "1")],
                        vec![],
                    )
                };
                store.record_scan(&id, outcome).await
            }));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    for i in 0..20 {
        let id = HostId(format!("h{i:02}"));
        let history = store.scan_history(&id, 100).await.unwrap();
        assert_eq!(history.len(), 5, "{id}");
        let s = store.host_summary(&id).await.unwrap().unwrap();
        assert_eq!(s.last_attempt_at, Some(t(4)), "{id}");
        assert_eq!(s.package_count, Some(2));
    }
}

/// Scans and changes of a host that was never registered are refused.
pub async fn an_unregistered_host_is_refused(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let err = store
        .record_scan(&HostId::from("ghost"), ok_at(1, base_packages(), vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownHost { .. }), "{err}");
    let err = store.register_host(&host("")).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert!(store.list_hosts().await.unwrap().is_empty());
}

/// Fleet hosts show identity facts and shared inventories.
pub async fn fleet_hosts_show_identity_facts_and_shared_inventories(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let mut bare = host("e-never-ok");
    bare.tags = vec![];
    bare.port = None;
    store
        .register_hosts(&[
            host("a-new"),
            host("b-image"),
            host("c-image"),
            host("d-own"),
            bare.clone(),
        ])
        .await
        .unwrap();
    let b = HostId::from("b-image");
    let c = HostId::from("c-image");
    let d = HostId::from("d-own");
    store
        .record_scan(&b, ok_at(10, base_packages(), vec![]))
        .await
        .unwrap();
    let mut reversed = base_packages();
    reversed.reverse();
    store
        .record_scan(&c, ok_at(11, reversed, vec![]))
        .await
        .unwrap();
    store
        .record_scan(&d, ok_at(12, vec![pkg("only-on-d", "1")], vec![]))
        .await
        .unwrap();
    store
        .record_scan(&d, unreachable_at(20, "no route to host"))
        .await
        .unwrap();
    let failed = ScanOutcome {
        started_at: t(29),
        finished_at: t(30),
        result: ScanResult::Failed {
            error: "dpkg-query denied".into(),
        },
    };
    store
        .record_scan(&HostId::from("e-never-ok"), failed)
        .await
        .unwrap();

    let fleet = store.fleet_hosts().await.unwrap();
    let image = fleet[1].inventory;
    let own = fleet[3].inventory;
    assert!(image.is_some() && own.is_some());
    assert_ne!(image, own);
    assert_eq!(
        fleet,
        vec![
            FleetHost {
                record: recorded("a-new"),
                facts: None,
                inventory: None,
                last_success_at: None,
                status: None,
            },
            FleetHost {
                record: recorded("b-image"),
                facts: Some(facts()),
                inventory: image,
                last_success_at: Some(t(10)),
                status: Some(ScanStatus::Ok),
            },
            FleetHost {
                record: recorded("c-image"),
                facts: Some(facts()),
                inventory: image,
                last_success_at: Some(t(11)),
                status: Some(ScanStatus::Ok),
            },
            FleetHost {
                record: recorded("d-own"),
                facts: Some(facts()),
                inventory: own,
                last_success_at: Some(t(12)),
                status: Some(ScanStatus::Unreachable {
                    error: "no route to host".into()
                }),
            },
            FleetHost {
                record: bare,
                facts: None,
                inventory: None,
                last_success_at: None,
                status: Some(ScanStatus::Failed {
                    error: "dpkg-query denied".into()
                }),
            },
        ]
    );
    assert_eq!(
        store.inventory_packages(own.unwrap()).await.unwrap(),
        vec![pkg("only-on-d", "1")]
    );
}

/// Inventory packages come back in package order.
pub async fn inventory_packages_come_back_in_package_order(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    let i386_bash = Installed {
        arch: "i386".into(),
        ..pkg("bash", "5.2.15-2")
    };
    let sourced_openssl = Installed {
        source: Some("openssl".into()),
        ..pkg("openssl", "3.0.11-1")
    };
    let scanned = vec![
        pkg("zlib1g", "1:1.2.13"),
        sourced_openssl.clone(),
        i386_bash.clone(),
        pkg("openssl", "3.0.11-1"),
        pkg("bash", "5.2.15-2"),
        pkg("linux-image", "6.1.0-18"),
        pkg("linux-image", "6.1.0-17"),
    ];
    store
        .record_scan(&id, ok_at(10, scanned, vec![]))
        .await
        .unwrap();
    let inventory = store.fleet_hosts().await.unwrap()[0].inventory.unwrap();
    assert_eq!(
        store.inventory_packages(inventory).await.unwrap(),
        vec![
            pkg("bash", "5.2.15-2"),
            i386_bash,
            pkg("linux-image", "6.1.0-17"),
            pkg("linux-image", "6.1.0-18"),
            pkg("openssl", "3.0.11-1"),
            sourced_openssl,
            pkg("zlib1g", "1:1.2.13"),
        ]
    );
    let missing = InventoryId(inventory.0 + 1);
    let err = store.inventory_packages(missing).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid input for the store: inventory {} is not stored (every host that had it \
             was removed)",
            missing.0
        )
    );
}
