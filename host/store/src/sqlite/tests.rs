//! Tests of the SQLite store against real database files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use patchwave_core::audit::AuditHead;
use patchwave_core::{Environment, Freshness, HostId, Installed, OsFacts, ScanStatus};
use rusqlite::Connection;
use tempfile::TempDir;

use patchwave_advisory::{
    parse_epss, parse_kev, parse_osv, Advisory, EpssFeed, EpssRow, FeedStamp, KevCatalog,
    KevTombstone, Prune, Source,
};

use super::SqliteStore;
use crate::{
    migrate, package_order, AdvisoryImport, EpssImport, EpssView, FeedWrite, FleetHost, HostRecord,
    InventoryId, KevImport, KevView, NewChange, ScanEffect, ScanOutcome, ScanResult, Store,
    StoreError,
};

const DAY: Duration = Duration::hours(24);

fn t(minutes: i64) -> DateTime<Utc> {
    // Whole milliseconds: the store keeps time to the millisecond.
    DateTime::from_timestamp_millis(1_750_000_000_000 + minutes * 60_000).unwrap()
}

fn file_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state").join("patchwave.db")).unwrap();
    (dir, store)
}

fn host(id: &str) -> HostRecord {
    HostRecord {
        id: HostId::from(id),
        address: format!("{id}.example.internal"),
        port: Some(22),
        env: Environment::Prod,
        scope: "payments".into(),
        tags: vec!["web".into(), "eu".into()],
        transport: "ssh".into(),
    }
}

fn pkg(name: &str, version: &str) -> Installed {
    Installed {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: None,
    }
}

fn facts() -> OsFacts {
    OsFacts {
        id: "debian".into(),
        version_id: "12".into(),
        codename: Some("bookworm".into()),
        pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
        kernel: "6.1.0-18-amd64".into(),
        arch: "x86_64".into(),
        reboot_required: false,
    }
}

fn ok_at(minute: i64, packages: Vec<Installed>, upgradable: Vec<Installed>) -> ScanOutcome {
    ScanOutcome {
        started_at: t(minute - 1),
        finished_at: t(minute),
        result: ScanResult::Ok {
            plugin: "debian".into(),
            plugin_digest: "d1g3st".into(),
            facts: facts(),
            packages,
            upgradable,
        },
    }
}

fn unreachable_at(minute: i64, error: &str) -> ScanOutcome {
    ScanOutcome {
        started_at: t(minute - 1),
        finished_at: t(minute),
        result: ScanResult::Unreachable {
            error: error.into(),
        },
    }
}

fn base_packages() -> Vec<Installed> {
    vec![
        pkg("openssl", "3.0.11-1"),
        pkg("bash", "5.2.15-2"),
        pkg("zlib1g", "1:1.2.13"),
    ]
}

fn count(store: &SqliteStore, table: &str) -> i64 {
    let conn = Connection::open(store.path()).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn fresh_database_is_migrated_and_configured() {
    let (_dir, store) = file_store();
    assert!(store.path().exists(), "parent directories are created");
    assert_eq!(
        store.schema_version().await.unwrap(),
        migrate::latest(SqliteStore::migrations())
    );
    let conn = Connection::open(store.path()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let applied: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied as usize, SqliteStore::migrations().len());
    // Foreign keys are on for the store's own connection: a snapshot of a missing host fails.
    let err = store
        .record_scan(&HostId::from("ghost"), ok_at(1, base_packages(), vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownHost { .. }), "{err}");
}

#[tokio::test]
async fn reopening_is_a_no_op_and_keeps_data() {
    let (_dir, store) = file_store();
    store.register_host(&host("a")).await.unwrap();
    let path = store.path().to_path_buf();
    let applied_at = |path: &std::path::Path| -> Vec<(i64, i64)> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = applied_at(&path);
    drop(store);
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(applied_at(&path), before);
    assert!(again.host(&HostId::from("a")).await.unwrap().is_some());
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let (_dir, store) = file_store();
    let path = store.path().to_path_buf();
    drop(store);
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    let supported = migrate::latest(SqliteStore::migrations());
    assert!(
        matches!(err, StoreError::NewerSchema { found: 9999, supported: s } if s == supported),
        "{err}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn failed_migration_rolls_back_and_names_itself() {
    let list = [
        migrate::Migration {
            version: 1,
            name: "good",
            sql: "CREATE TABLE good (a INTEGER);",
        },
        migrate::Migration {
            version: 2,
            name: "bad",
            sql: "CREATE TABLE half (a INTEGER); INSERT INTO nowhere VALUES (1);",
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("m.db")).unwrap();
    let err = super::migrate_schema(&mut conn, &list).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Migration {
                version: 2,
                name: "bad",
                ..
            }
        ),
        "{err}"
    );
    let versions: Vec<u32> = super::applied_migrations(&conn)
        .unwrap()
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(versions, [1]);
    let half: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(half, 0, "the failed script left nothing behind");
    // Fixed, it applies on the next open.
    let fixed = [
        list[0],
        migrate::Migration {
            sql: "CREATE TABLE half (a INTEGER);",
            ..list[1]
        },
    ];
    super::migrate_schema(&mut conn, &fixed).unwrap();
    assert_eq!(super::applied_migrations(&conn).unwrap().len(), 2);
}

#[tokio::test]
async fn successful_scan_fills_the_summary() {
    let (_dir, store) = file_store();
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

#[tokio::test]
async fn never_scanned_host_is_unknown() {
    let (_dir, store) = file_store();
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

#[tokio::test]
async fn same_inventory_twice_is_one_snapshot_seen_again() {
    let (_dir, store) = file_store();
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

    assert_eq!(count(&store, "host_snapshots"), 1);
    assert_eq!(count(&store, "inventory_packages"), 3);
    let inv = store.inventory(&id).await.unwrap().unwrap();
    assert_eq!(inv.snapshot_id, snapshot);
    assert_eq!((inv.taken_at, inv.last_seen), (t(10), t(24 * 60)));
    let s = store.host_summary(&id).await.unwrap().unwrap();
    assert_eq!(s.inventory_changed_at, Some(t(10)));
    assert_eq!(s.last_success_at, Some(t(24 * 60)));
    assert_eq!(store.scan_history(&id, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn changed_inventory_starts_a_new_snapshot() {
    let (_dir, store) = file_store();
    let id = HostId::from("a");
    store.register_host(&host("a")).await.unwrap();
    store
        .record_scan(
            &id,
            ok_at(10, base_packages(), vec![pkg("openssl", "3.0.13-1")]),
        )
        .await
        .unwrap();
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
    assert_eq!(count(&store, "host_snapshots"), 2);
    assert_eq!(
        store.package_versions("openssl").await.unwrap(),
        vec![(id.clone(), pkg("openssl", "3.0.13-1"))]
    );

    // Going back to the first package list is a new period, but its packages are not
    // stored again.
    store
        .record_scan(&id, ok_at(200, base_packages(), vec![]))
        .await
        .unwrap();
    assert_eq!(count(&store, "host_snapshots"), 3);
    assert_eq!(count(&store, "inventories"), 2);
    let history = store.scan_history(&id, 2).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].finished_at, t(200));
    assert_eq!(history[1].snapshot_id, Some(snapshot));
}

#[tokio::test]
async fn failure_after_success_keeps_inventory_and_goes_stale() {
    let (_dir, store) = file_store();
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
#[tokio::test]
async fn changes_are_found_by_their_rollout() {
    let (_dir, store) = file_store();
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

/// A change started after the last successful scan makes a fresh record `changed` (the
/// host may hold other versions than the store says) until the next successful scan.
#[tokio::test]
async fn a_change_after_the_last_scan_shows_as_changed_until_the_next_scan() {
    let (_dir, store) = file_store();
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

#[tokio::test]
async fn late_report_of_an_older_attempt_changes_only_history() {
    let (_dir, store) = file_store();
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

#[tokio::test]
async fn reregistering_updates_identity_and_keeps_history() {
    let (_dir, store) = file_store();
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

#[tokio::test]
async fn hosts_share_inventories_and_removal_frees_only_unshared_ones() {
    let (_dir, store) = file_store();
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
    assert_eq!(count(&store, "inventories"), 2);
    assert_eq!(count(&store, "inventory_packages"), 4);

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
    for table in [
        "host_tags",
        "host_snapshots",
        "host_upgradable",
        "scan_attempts",
    ] {
        let conn = Connection::open(store.path()).unwrap();
        let left: i64 = conn
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE host_id = 'a'"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    assert_eq!(count(&store, "inventory_packages"), 3);
    assert_eq!(
        store.inventory(&b).await.unwrap().unwrap().packages.len(),
        3
    );

    // The same id registered again starts from nothing.
    store.register_host(&host("a")).await.unwrap();
    assert!(store.scan_history(&a, 10).await.unwrap().is_empty());
    let s = store.host_summary(&a).await.unwrap().unwrap();
    assert_eq!(s.freshness(t(40), DAY), Freshness::Unknown);
}

#[tokio::test]
async fn large_inventory_round_trips_exactly() {
    let (_dir, store) = file_store();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scans_all_land() {
    let (_dir, store) = file_store();
    let store: Arc<dyn Store> = Arc::new(store);
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

#[tokio::test]
async fn in_memory_store_works_and_rejects_empty_ids() {
    let store = SqliteStore::open_in_memory().unwrap();
    let err = store.register_host(&host("")).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    store.register_host(&host("m")).await.unwrap();
    assert_eq!(store.list_hosts().await.unwrap().len(), 1);
}

// ----- Advisories, KEV, EPSS -----

const USN_6859: &[u8] = include_bytes!("../../../advisory/tests/data/ubuntu-usn/USN-6859-1.json");
const USN_6658: &[u8] = include_bytes!("../../../advisory/tests/data/ubuntu-usn/USN-6658-1.json");
const USN_6409: &[u8] = include_bytes!("../../../advisory/tests/data/ubuntu-usn/USN-6409-1.json");
const KEV_0314: &[u8] = include_bytes!("../../../advisory/tests/data/kev/catalog-2025.03.14.json");
const KEV_0320: &[u8] = include_bytes!("../../../advisory/tests/data/kev/catalog-2025.03.20.json");
const EPSS_0315: &[u8] =
    include_bytes!("../../../advisory/tests/data/epss/epss_scores-2025-03-15.csv");

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn source(kind: &str, location: &str) -> Source {
    Source {
        kind: kind.into(),
        location: location.into(),
        fetched_at: t(0),
    }
}

/// The one advisory of an OSV document.
fn usn(document: &[u8]) -> Advisory {
    let (mut advisories, rejected) =
        parse_osv(document, &source("ubuntu-usn", "ubuntu-usn/osv")).unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(advisories.len(), 1);
    advisories.remove(0)
}

/// A write prepared as the engine prepares it: against the stored stamp read just now.
async fn kev_write(store: &SqliteStore, prune: Prune) -> FeedWrite {
    FeedWrite {
        expected: store.kev_stamp().await.unwrap(),
        prune,
    }
}

/// See [`kev_write`].
async fn epss_write(store: &SqliteStore, prune: Prune) -> FeedWrite {
    FeedWrite {
        expected: store.epss_stamp().await.unwrap(),
        prune,
    }
}

/// Import `catalog` as a clean catalogue (nothing rejected).
async fn import_kev(
    store: &SqliteStore,
    catalog: &KevCatalog,
    src: &Source,
) -> Result<KevImport, StoreError> {
    let write = kev_write(store, Prune::Absent).await;
    store.import_kev(catalog, src, &write).await
}

/// Import `feed` as a clean feed (nothing rejected).
async fn import_epss(
    store: &SqliteStore,
    feed: &EpssFeed,
    src: &Source,
) -> Result<EpssImport, StoreError> {
    let write = epss_write(store, Prune::Absent).await;
    store.import_epss(feed, src, &write).await
}

fn kev_catalog(document: &[u8]) -> KevCatalog {
    parse_kev(document, "known_exploited_vulnerabilities.json")
        .unwrap()
        .0
}

fn cve_ids(catalog: &KevCatalog) -> Vec<&str> {
    catalog.entries.iter().map(|e| e.cve_id.as_str()).collect()
}

fn advisory_packages(store: &SqliteStore) -> Vec<(String, String, String)> {
    let conn = Connection::open(store.path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT ecosystem, package, advisory_id FROM advisory_packages ORDER BY 3, 1, 2")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn row(ecosystem: &str, package: &str, advisory: &str) -> (String, String, String) {
    (ecosystem.into(), package.into(), advisory.into())
}

#[test]
fn the_schema_is_at_version_6() {
    assert_eq!(migrate::latest(SqliteStore::migrations()), 6);
    assert_eq!(SqliteStore::migrations()[2].name, "advisories");
    assert_eq!(SqliteStore::migrations()[3].name, "rollouts");
    assert_eq!(SqliteStore::migrations()[4].name, "change_rollout");
    assert_eq!(SqliteStore::migrations()[5].name, "audit_anchor");
}

#[tokio::test]
async fn a_version_2_database_migrates_to_the_latest_and_keeps_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut conn = Connection::open(&path).unwrap();
    super::migrate_schema(&mut conn, &migrate::SQLITE[..2]).unwrap();
    conn.execute(
        "INSERT INTO hosts (id, address, env, scope, transport)
         VALUES ('old', 'old.example.internal', 'prod', 'payments', 'ssh')",
        [],
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 6);
    assert_eq!(store.rollouts().await.unwrap(), vec![]);
    assert_eq!(store.audit_anchor().await.unwrap(), None);
    let old = store.host(&HostId::from("old")).await.unwrap().unwrap();
    assert_eq!(old.address, "old.example.internal");
    assert!(store.advisories().await.unwrap().is_empty());
    assert_eq!(
        store.kev().await.unwrap(),
        KevView {
            catalog: None,
            source: None,
            tombstones: vec![]
        }
    );
    assert_eq!(store.epss().await.unwrap(), None);
}

#[tokio::test]
async fn advisories_round_trip_sorted_by_id() {
    let (_dir, store) = file_store();
    let (openssh, libxml2) = (usn(USN_6859), usn(USN_6658));
    let import = store
        .import_advisories(&[openssh.clone(), libxml2.clone()])
        .await
        .unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 2,
            updated: 0,
            unchanged: 0
        }
    );
    assert_eq!(
        store.advisories().await.unwrap(),
        vec![libxml2.clone(), openssh.clone()]
    );
    // Microseconds of `published` survive: the record is kept as JSON.
    let stored = store.advisory("USN-6859-1").await.unwrap().unwrap();
    assert_eq!(stored, openssh);
    assert_eq!(stored.published, Some(utc("2024-07-01T09:06:31.434165Z")));
    assert_eq!(store.advisory("USN-0000-1").await.unwrap(), None);
    assert_eq!(
        advisory_packages(&store),
        vec![
            row("Ubuntu:20.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "openssh", "USN-6859-1"),
            row("Ubuntu:24.04:LTS", "openssh", "USN-6859-1"),
        ]
    );
}

#[tokio::test]
async fn newer_modified_wins_and_an_older_one_never_rolls_back() {
    let (_dir, store) = file_store();
    let (openssh, libxml2, glibc) = (usn(USN_6859), usn(USN_6658), usn(USN_6409));
    store
        .import_advisories(&[openssh.clone(), libxml2.clone()])
        .await
        .unwrap();

    let mut newer = openssh.clone();
    newer.modified = openssh.modified + Duration::days(1);
    newer.summary = Some("openssh regression fixed".into());
    newer.affected.truncate(1);
    newer.source = source("ubuntu-usn", "mirror-2");
    let mut older = libxml2.clone();
    older.modified = libxml2.modified - Duration::days(1);
    older.summary = Some("an old copy".into());
    let import = store
        .import_advisories(&[newer.clone(), older, glibc.clone()])
        .await
        .unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 1,
            updated: 1,
            unchanged: 1
        }
    );
    assert_eq!(
        store.advisories().await.unwrap(),
        vec![glibc.clone(), libxml2.clone(), newer.clone()]
    );
    // The package index follows the replaced record.
    assert_eq!(
        advisory_packages(&store),
        vec![
            row("Ubuntu:22.04:LTS", "glibc", "USN-6409-1"),
            row("Ubuntu:20.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "openssh", "USN-6859-1"),
        ]
    );

    // Same `modified`, other content: the stored record stays.
    let mut same = newer.clone();
    same.summary = Some("same time, other words".into());
    let import = store.import_advisories(&[same]).await.unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 0,
            updated: 0,
            unchanged: 1
        }
    );
    assert_eq!(store.advisory("USN-6859-1").await.unwrap(), Some(newer));
}

#[tokio::test]
async fn one_id_twice_in_a_batch_keeps_the_newest() {
    let (_dir, store) = file_store();
    let old = usn(USN_6658);
    let mut new = old.clone();
    new.modified = old.modified + Duration::hours(1);
    new.summary = Some("second revision".into());
    let import = store
        .import_advisories(&[old.clone(), new.clone()])
        .await
        .unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 1,
            updated: 1,
            unchanged: 0
        }
    );
    let (_dir2, other) = file_store();
    let import = other.import_advisories(&[new.clone(), old]).await.unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 1,
            updated: 0,
            unchanged: 1
        }
    );
    assert_eq!(store.advisories().await.unwrap(), vec![new.clone()]);
    assert_eq!(other.advisories().await.unwrap(), vec![new]);
}

#[tokio::test]
async fn an_advisory_without_an_id_is_refused_and_nothing_is_written() {
    let (_dir, store) = file_store();
    let mut nameless = usn(USN_6658);
    nameless.id = String::new();
    let err = store
        .import_advisories(&[usn(USN_6859), nameless])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid input for the store: an advisory from ubuntu-usn/osv has an empty id"
    );
    assert!(store.advisories().await.unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_advisory_json_is_reported() {
    let (_dir, store) = file_store();
    store.import_advisories(&[usn(USN_6658)]).await.unwrap();
    let conn = Connection::open(store.path()).unwrap();
    conn.execute("UPDATE advisories SET body = '{\"id\": 7}'", [])
        .unwrap();
    let err = store.advisory("USN-6658-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().starts_with(
            "store holds an invalid value: advisory `USN-6658-1`: stored JSON is not an advisory: "
        ),
        "{err}"
    );
}

#[tokio::test]
async fn kev_replacement_keeps_tombstones() {
    let (_dir, store) = file_store();
    let first = kev_catalog(KEV_0314);
    let second = kev_catalog(KEV_0320);
    assert_eq!(
        cve_ids(&first),
        [
            "CVE-2021-44228",
            "CVE-2024-32002",
            "CVE-2023-5678",
            "CVE-2024-0727"
        ]
    );
    assert_eq!(
        cve_ids(&second),
        [
            "CVE-2021-44228",
            "CVE-2024-32002",
            "CVE-2024-0727",
            "CVE-2025-24813"
        ]
    );
    let src = source("cisa-kev", "kev/catalog.json");

    let import = import_kev(&store, &first, &src).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 4,
            kept: 0,
            removed: vec![],
            kept_unlisted: vec![]
        }
    );
    let view = store.kev().await.unwrap();
    // Kept to the millisecond: `.7305Z` reads back as `.730Z`.
    let first_ms = KevCatalog {
        date_released: utc("2025-03-14T16:01:59.730Z"),
        ..first.clone()
    };
    assert_eq!(
        view,
        KevView {
            catalog: Some(first_ms),
            source: Some(src.clone()),
            tombstones: vec![]
        }
    );

    // CVE-2023-5678 leaves, CVE-2025-24813 arrives.
    let gone = KevTombstone {
        cve_id: "CVE-2023-5678".into(),
        removed_at: utc("2025-03-20T17:30:00Z"),
    };
    let import = import_kev(&store, &second, &src).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 1,
            kept: 3,
            removed: vec![gone.clone()],
            kept_unlisted: vec![]
        }
    );
    let after_second = KevView {
        catalog: Some(second.clone()),
        source: Some(src.clone()),
        tombstones: vec![gone.clone()],
    };
    assert_eq!(store.kev().await.unwrap(), after_second);

    // The same catalogue again changes nothing.
    let import = import_kev(&store, &second, &src).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 0,
            kept: 4,
            removed: vec![],
            kept_unlisted: vec![]
        }
    );
    assert_eq!(store.kev().await.unwrap(), after_second);

    // CVE-2023-5678 comes back; CVE-2025-24813 leaves.
    let third = KevCatalog {
        catalog_version: "2025.03.27".into(),
        date_released: utc("2025-03-27T15:00:00Z"),
        entries: first.entries.clone(),
    };
    let import = import_kev(&store, &third, &src).await.unwrap();
    let left = KevTombstone {
        cve_id: "CVE-2025-24813".into(),
        removed_at: utc("2025-03-27T15:00:00Z"),
    };
    assert_eq!(
        import,
        KevImport {
            added: 1,
            kept: 3,
            removed: vec![left.clone()],
            kept_unlisted: vec![]
        }
    );
    assert_eq!(
        store.kev().await.unwrap(),
        KevView {
            catalog: Some(third),
            source: Some(src),
            tombstones: vec![left]
        }
    );
    // A returning CVE keeps the date it was first seen.
    let conn = Connection::open(store.path()).unwrap();
    let first_seen: i64 = conn
        .query_row(
            "SELECT first_seen FROM kev_entries WHERE cve_id = 'CVE-2023-5678'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        first_seen,
        utc("2025-03-14T16:01:59.730Z").timestamp_millis()
    );
}

// Whether an older catalogue may replace a newer one is no longer the store's rule (it is
// `patchwave_advisory::feed::refusals`, applied by the engine); the store refuses a write
// prepared against a stored catalogue that is no longer there, so two imports racing
// cannot undo each other's decision.
#[tokio::test]
async fn a_kev_write_prepared_against_another_stored_catalogue_changes_nothing() {
    let (_dir, store) = file_store();
    let src = source("cisa-kev", "kev/catalog.json");
    // Prepared while nothing was stored ...
    let prepared = kev_write(&store, Prune::Absent).await;
    assert_eq!(prepared.expected, None);
    // ... and another import lands first.
    import_kev(&store, &kev_catalog(KEV_0320), &src)
        .await
        .unwrap();
    let before = store.kev().await.unwrap();
    assert_eq!(
        store.kev_stamp().await.unwrap(),
        Some(FeedStamp {
            date: utc("2025-03-20T17:30:00Z"),
            entries: 4
        })
    );
    let old_mirror = source("cisa-kev", "mirror/old.json");
    let err = store
        .import_kev(&kev_catalog(KEV_0314), &old_mirror, &prepared)
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::FeedChanged { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "KEV catalogue was changed by another import (expected nothing stored, found \
         2025-03-20T17:30:00Z with 4 entries): not imported"
    );
    assert_eq!(store.kev().await.unwrap(), before);
}

#[tokio::test]
async fn a_kev_catalogue_listing_a_cve_twice_is_refused() {
    let (_dir, store) = file_store();
    let mut catalog = kev_catalog(KEV_0320);
    catalog.entries.push(catalog.entries[1].clone());
    let err = import_kev(&store, &catalog, &source("cisa-kev", "kev.json"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: KEV catalogue 2025.03.20 lists CVE-2024-32002 twice"
    );
    assert_eq!(store.kev().await.unwrap().catalog, None);
}

#[tokio::test]
async fn a_kev_write_keeps_live_what_its_prune_keeps() {
    let (_dir, store) = file_store();
    let src = source("cisa-kev", "kev/catalog.json");
    import_kev(&store, &kev_catalog(KEV_0320), &src)
        .await
        .unwrap();
    let stored = kev_catalog(KEV_0320);
    // A newer catalogue listing only CVE-2021-44228 and CVE-2024-0727.
    let newer = KevCatalog {
        catalog_version: "2025.03.27".into(),
        date_released: utc("2025-03-27T15:00:00Z"),
        entries: vec![stored.entries[0].clone(), stored.entries[2].clone()],
    };

    // CVE-2024-32002 was rejected from it: it stays live, in its stored form, after the
    // listed entries; CVE-2025-24813 goes.
    let keep = Prune::AbsentExcept(["CVE-2024-32002".to_string()].into());
    let write = kev_write(&store, keep).await;
    let import = store.import_kev(&newer, &src, &write).await.unwrap();
    let gone = KevTombstone {
        cve_id: "CVE-2025-24813".into(),
        removed_at: utc("2025-03-27T15:00:00Z"),
    };
    assert_eq!(
        import,
        KevImport {
            added: 0,
            kept: 2,
            removed: vec![gone.clone()],
            kept_unlisted: vec!["CVE-2024-32002".into()]
        }
    );
    let view = store.kev().await.unwrap();
    let live = view.catalog.unwrap();
    assert_eq!(
        cve_ids(&live),
        ["CVE-2021-44228", "CVE-2024-0727", "CVE-2024-32002"]
    );
    assert_eq!(live.entries[2], stored.entries[1]);
    assert_eq!(view.tombstones, std::slice::from_ref(&gone));

    // A record without an id was rejected: nothing is tombstoned.
    let only_one = KevCatalog {
        catalog_version: "2025.03.28".into(),
        date_released: utc("2025-03-28T15:00:00Z"),
        entries: vec![stored.entries[0].clone()],
    };
    let write = kev_write(&store, Prune::Nothing).await;
    let import = store.import_kev(&only_one, &src, &write).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 0,
            kept: 1,
            removed: vec![],
            kept_unlisted: vec!["CVE-2024-0727".into(), "CVE-2024-32002".into()]
        }
    );
    let view = store.kev().await.unwrap();
    assert_eq!(
        cve_ids(&view.catalog.unwrap()),
        ["CVE-2021-44228", "CVE-2024-0727", "CVE-2024-32002"]
    );
    assert_eq!(view.tombstones, [gone]);
}

#[tokio::test]
async fn an_epss_write_keeps_the_scores_its_prune_keeps() {
    let (_dir, store) = file_store();
    let src = source("first-epss", "epss_scores-2025-03-15.csv");
    let first = epss_feed();
    import_epss(&store, &first, &src).await.unwrap();
    let later = |rows: Vec<EpssRow>| EpssFeed {
        model_version: "v2025.03.14".into(),
        score_date: utc("2025-03-16T12:55:00Z"),
        rows,
    };
    let rescored = EpssRow {
        cve: "CVE-2024-6387".into(),
        epss: 0.95,
        percentile: 0.9999,
    };

    // CVE-2024-32002's row was rejected: its stored score stays, after the feed's rows.
    let keep = Prune::AbsentExcept(["CVE-2024-32002".to_string()].into());
    let write = epss_write(&store, keep).await;
    let feed = later(vec![rescored.clone()]);
    let import = store.import_epss(&feed, &src, &write).await.unwrap();
    assert_eq!(
        import,
        EpssImport {
            written: 1,
            removed: 2,
            kept_unlisted: 1
        }
    );
    let rows = store.epss().await.unwrap().unwrap().feed.rows;
    assert_eq!(rows, [rescored.clone(), first.rows[1].clone()]);

    // A row without an id was rejected: no score is deleted.
    let import_all = epss_write(&store, Prune::Nothing).await;
    let newest = EpssRow {
        cve: "CVE-2025-0001".into(),
        epss: 0.5,
        percentile: 0.5,
    };
    let feed = later(vec![newest.clone()]);
    let import = store.import_epss(&feed, &src, &import_all).await.unwrap();
    assert_eq!(
        import,
        EpssImport {
            written: 1,
            removed: 0,
            kept_unlisted: 2
        }
    );
    let rows = store.epss().await.unwrap().unwrap().feed.rows;
    assert_eq!(rows, [newest, rescored, first.rows[1].clone()]);
}

fn epss_feed() -> EpssFeed {
    parse_epss(EPSS_0315, "epss_scores-2025-03-15.csv")
        .unwrap()
        .0
}

#[tokio::test]
async fn epss_is_replaced_whole_and_a_stale_write_is_refused() {
    let (_dir, store) = file_store();
    let first = epss_feed();
    let cves: Vec<&str> = first.rows.iter().map(|r| r.cve.as_str()).collect();
    assert_eq!(
        cves,
        [
            "CVE-1999-0001",
            "CVE-2024-32002",
            "CVE-2023-5678",
            "CVE-2024-6387"
        ]
    );
    let src = source("first-epss", "epss_scores-2025-03-15.csv");
    assert_eq!(
        import_epss(&store, &first, &src).await.unwrap(),
        EpssImport {
            written: 4,
            removed: 0,
            kept_unlisted: 0
        }
    );
    assert_eq!(
        store.epss().await.unwrap(),
        Some(EpssView {
            feed: first.clone(),
            source: src.clone()
        })
    );

    let second = EpssFeed {
        model_version: "v2025.03.14".into(),
        score_date: utc("2025-03-16T12:55:00Z"),
        rows: vec![
            EpssRow {
                cve: "CVE-2024-6387".into(),
                epss: 0.91,
                percentile: 0.9991,
            },
            EpssRow {
                cve: "CVE-2024-0727".into(),
                epss: 0.0,
                percentile: 1.0,
            },
        ],
    };
    let src2 = source("first-epss", "epss_scores-2025-03-16.csv");
    let prepared = epss_write(&store, Prune::Absent).await;
    assert_eq!(
        import_epss(&store, &second, &src2).await.unwrap(),
        EpssImport {
            written: 2,
            removed: 3,
            kept_unlisted: 0
        }
    );
    let after_second = Some(EpssView {
        feed: second.clone(),
        source: src2.clone(),
    });
    assert_eq!(store.epss().await.unwrap(), after_second);
    assert_eq!(count(&store, "epss_scores"), 2);

    // A write prepared before the second feed landed is refused.
    let err = store
        .import_epss(&first, &src, &prepared)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "EPSS feed was changed by another import (expected 2025-03-15T12:55:00Z with 4 \
         entries, found 2025-03-16T12:55:00Z with 2 entries): not imported"
    );
    assert!(matches!(err, StoreError::FeedChanged { .. }), "{err}");
    assert_eq!(store.epss().await.unwrap(), after_second);

    // The same day again is accepted.
    assert_eq!(
        import_epss(&store, &second, &src2).await.unwrap().written,
        2
    );
    assert_eq!(store.epss().await.unwrap(), after_second);
}

#[tokio::test]
async fn epss_values_the_store_cannot_hold_are_refused() {
    let (_dir, store) = file_store();
    let src = source("first-epss", "e.csv");
    let mut nan = epss_feed();
    nan.rows[2].epss = f64::NAN;
    assert_eq!(
        import_epss(&store, &nan, &src)
            .await
            .unwrap_err()
            .to_string(),
        "invalid input for the store: EPSS score of CVE-2023-5678 is NaN, not a probability \
         in [0, 1]"
    );
    let mut twice = epss_feed();
    twice.rows.push(twice.rows[0].clone());
    assert_eq!(
        import_epss(&store, &twice, &src)
            .await
            .unwrap_err()
            .to_string(),
        "invalid input for the store: EPSS feed v2025.03.14 scores CVE-1999-0001 twice"
    );
    assert_eq!(store.epss().await.unwrap(), None);
}

// ----- The fleet as matching sees it -----

fn recorded(id: &str) -> HostRecord {
    let mut record = host(id);
    record.tags.sort();
    record
}

#[tokio::test]
async fn fleet_hosts_show_identity_facts_and_shared_inventories() {
    let (_dir, store) = file_store();
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

#[tokio::test]
async fn inventory_packages_come_back_in_package_order() {
    let (_dir, store) = file_store();
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

// ----- Rollouts -----

fn rollout_state(stage: &str, done: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "id": "r1",
        "stage": stage,
        "done": done,
        "failure_budget": 0.25,
        "note": "ünïcode \"quoted\" text",
        "window": null,
        "hosts": {"web-1": {"attempts": 2}, "web-2": {"attempts": 0}}
    })
}

fn approve(stage: &str) -> serde_json::Value {
    serde_json::json!({"approve": {"stage": stage, "by": "alice"}})
}

fn inbox_rows(store: &SqliteStore) -> Vec<(String, i64, i64, bool)> {
    let conn = Connection::open(store.path()).unwrap();
    let mut stmt = conn
        .prepare("SELECT rollout_id, seq, posted_at, consumed FROM rollout_inbox ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_rollout_round_trips_its_state_as_json() {
    let (_dir, store) = file_store();
    let state = rollout_state("canary", &[]);
    store
        .create_rollout("r1", "pending", &state, t(0))
        .await
        .unwrap();
    assert_eq!(
        store.rollout("r1").await.unwrap(),
        Some(crate::RolloutRecord {
            id: "r1".into(),
            revision: 1,
            status: "pending".into(),
            state,
            inbox: vec![],
            created_at: t(0),
            updated_at: t(0),
        })
    );
    assert_eq!(store.rollout("r2").await.unwrap(), None);
}

#[tokio::test]
async fn creating_a_rollout_twice_is_refused_and_keeps_the_first() {
    let (_dir, store) = file_store();
    let first = rollout_state("canary", &[]);
    store
        .create_rollout("r1", "pending", &first, t(0))
        .await
        .unwrap();
    let err = store
        .create_rollout("r1", "running", &rollout_state("wave-1", &[]), t(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `r1` already exists"
    );
    let stored = store.rollout("r1").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.revision,
            stored.status.as_str(),
            stored.state,
            stored.created_at
        ),
        (1, "pending", first, t(0))
    );
}

#[tokio::test]
async fn empty_rollout_ids_and_statuses_are_refused() {
    let (_dir, store) = file_store();
    let state = rollout_state("canary", &[]);
    let err = store
        .create_rollout("", "pending", &state, t(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: a rollout id is empty"
    );
    let err = store
        .create_rollout("r1", "", &state, t(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `r1` is saved with an empty status"
    );
    assert_eq!(count(&store, "rollouts"), 0);
}

#[tokio::test]
async fn saving_with_the_loaded_revision_increments_it() {
    let (_dir, store) = file_store();
    store
        .create_rollout("r1", "pending", &rollout_state("canary", &[]), t(0))
        .await
        .unwrap();
    let canary_done = rollout_state("wave-1", &["canary"]);
    let revision = store
        .save_rollout("r1", 1, "running", &canary_done, None, t(10))
        .await
        .unwrap();
    assert_eq!(revision, 2);
    let wave_done = rollout_state("wave-2", &["canary", "wave-1"]);
    let revision = store
        .save_rollout("r1", 2, "waiting", &wave_done, None, t(20))
        .await
        .unwrap();
    assert_eq!(revision, 3);
    assert_eq!(
        store.rollout("r1").await.unwrap(),
        Some(crate::RolloutRecord {
            id: "r1".into(),
            revision: 3,
            status: "waiting".into(),
            state: wave_done,
            inbox: vec![],
            created_at: t(0),
            updated_at: t(20),
        })
    );
}

#[tokio::test]
async fn a_stale_revision_conflicts_and_writes_nothing() {
    let (_dir, store) = file_store();
    store
        .create_rollout("r1", "pending", &rollout_state("canary", &[]), t(0))
        .await
        .unwrap();
    let seq = store
        .post_rollout_observation("r1", &approve("canary"), t(1))
        .await
        .unwrap();
    store
        .save_rollout(
            "r1",
            1,
            "running",
            &rollout_state("canary", &[]),
            None,
            t(2),
        )
        .await
        .unwrap();
    let before = store.rollout("r1").await.unwrap().unwrap();
    assert_eq!(before.inbox, vec![(seq, approve("canary"))]);

    let err = store
        .save_rollout(
            "r1",
            1,
            "done",
            &rollout_state("done", &["canary"]),
            Some(seq),
            t(3),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Conflict { what, expected: 1, found: 2 } if what == "rollout r1"
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "rollout r1 was changed by another runner (expected revision 1, found 2)"
    );
    assert_eq!(store.rollout("r1").await.unwrap().unwrap(), before);
}

#[tokio::test]
async fn two_runners_on_one_file_cannot_both_save_the_same_revision() {
    let (_dir, first) = file_store();
    let second = SqliteStore::open(first.path()).unwrap();
    first
        .create_rollout("r1", "pending", &rollout_state("canary", &[]), t(0))
        .await
        .unwrap();
    let loaded_by_first = first.rollout("r1").await.unwrap().unwrap();
    let loaded_by_second = second.rollout("r1").await.unwrap().unwrap();
    assert_eq!(loaded_by_first, loaded_by_second);

    let winner = rollout_state("wave-1", &["canary"]);
    let revision = second
        .save_rollout(
            "r1",
            loaded_by_second.revision,
            "running",
            &winner,
            None,
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(revision, 2);
    let err = first
        .save_rollout(
            "r1",
            loaded_by_first.revision,
            "failed",
            &rollout_state("canary", &[]),
            None,
            t(2),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let stored = first.rollout("r1").await.unwrap().unwrap();
    assert_eq!(
        (stored.revision, stored.status.as_str(), stored.state),
        (2, "running", winner)
    );
}

#[tokio::test]
async fn saving_consumes_the_inbox_up_to_the_given_sequence() {
    let (_dir, store) = file_store();
    for id in ["r1", "r2"] {
        store
            .create_rollout(id, "pending", &rollout_state("canary", &[]), t(0))
            .await
            .unwrap();
    }
    let start = serde_json::json!("start");
    let first = store
        .post_rollout_observation("r1", &start, t(1))
        .await
        .unwrap();
    let other = store
        .post_rollout_observation("r2", &start, t(2))
        .await
        .unwrap();
    let second = store
        .post_rollout_observation("r1", &approve("canary"), t(3))
        .await
        .unwrap();
    assert_eq!((first, other, second), (1, 2, 3));
    assert_eq!(
        store.rollout("r1").await.unwrap().unwrap().inbox,
        vec![(first, start.clone()), (second, approve("canary"))]
    );

    let revision = store
        .save_rollout(
            "r1",
            1,
            "running",
            &rollout_state("canary", &[]),
            Some(first),
            t(4),
        )
        .await
        .unwrap();
    assert_eq!(revision, 2);
    assert_eq!(
        store.rollout("r1").await.unwrap().unwrap().inbox,
        vec![(second, approve("canary"))]
    );
    // A save that consumed nothing leaves the inbox alone.
    store
        .save_rollout(
            "r1",
            2,
            "running",
            &rollout_state("canary", &[]),
            None,
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(
        store.rollout("r1").await.unwrap().unwrap().inbox,
        vec![(second, approve("canary"))]
    );
    // Consuming up to r1's last sequence never touches r2's observation in between.
    store
        .save_rollout(
            "r1",
            3,
            "running",
            &rollout_state("wave-1", &["canary"]),
            Some(second),
            t(6),
        )
        .await
        .unwrap();
    assert_eq!(store.rollout("r1").await.unwrap().unwrap().inbox, vec![]);
    assert_eq!(
        store.rollout("r2").await.unwrap().unwrap().inbox,
        vec![(other, start)]
    );
    // Consumed observations are kept for the record.
    let now = |m: i64| t(m).timestamp_millis();
    assert_eq!(
        inbox_rows(&store),
        vec![
            ("r1".into(), 1, now(1), true),
            ("r2".into(), 2, now(2), false),
            ("r1".into(), 3, now(3), true),
        ]
    );
}

#[tokio::test]
async fn consuming_a_sequence_of_another_rollout_is_refused_and_writes_nothing() {
    let (_dir, store) = file_store();
    for id in ["r1", "r2"] {
        store
            .create_rollout(id, "pending", &rollout_state("canary", &[]), t(0))
            .await
            .unwrap();
    }
    let mine = store
        .post_rollout_observation("r1", &serde_json::json!("start"), t(1))
        .await
        .unwrap();
    let theirs = store
        .post_rollout_observation("r2", &serde_json::json!("abort"), t(2))
        .await
        .unwrap();
    let before = store.rollout("r1").await.unwrap().unwrap();
    for consumed in [theirs, theirs + 1, -1] {
        let err = store
            .save_rollout(
                "r1",
                1,
                "running",
                &rollout_state("wave-1", &["canary"]),
                Some(consumed),
                t(3),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid input for the store: inbox sequence {consumed} is not an observation \
                 of rollout `r1`"
            )
        );
    }
    assert_eq!(store.rollout("r1").await.unwrap().unwrap(), before);
    assert_eq!(before.inbox, vec![(mine, serde_json::json!("start"))]);
}

#[tokio::test]
async fn unknown_rollouts_are_refused() {
    let (_dir, store) = file_store();
    let err = store
        .post_rollout_observation("ghost", &serde_json::json!("start"), t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `ghost` does not exist"
    );
    let err = store
        .save_rollout(
            "ghost",
            1,
            "running",
            &rollout_state("canary", &[]),
            None,
            t(0),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `ghost` does not exist"
    );
    assert_eq!(count(&store, "rollout_inbox"), 0);
    assert_eq!(count(&store, "rollouts"), 0);
}

#[tokio::test]
async fn rollouts_are_listed_newest_first_then_by_id() {
    let (_dir, store) = file_store();
    assert_eq!(store.rollouts().await.unwrap(), vec![]);
    let state = rollout_state("canary", &[]);
    for (id, minute) in [("b", 10), ("old", 0), ("c", 10), ("a", 10)] {
        store
            .create_rollout(id, "pending", &state, t(minute))
            .await
            .unwrap();
    }
    // Saving changes `updated_at` and the status, not the order.
    store
        .save_rollout("old", 1, "running", &state, None, t(30))
        .await
        .unwrap();
    let row = |id: &str, status: &str, created: i64, updated: i64| crate::RolloutSummaryRow {
        id: id.into(),
        status: status.into(),
        created_at: t(created),
        updated_at: t(updated),
    };
    assert_eq!(
        store.rollouts().await.unwrap(),
        vec![
            row("a", "pending", 10, 10),
            row("b", "pending", 10, 10),
            row("c", "pending", 10, 10),
            row("old", "running", 0, 30),
        ]
    );
}

#[tokio::test]
async fn corrupt_rollout_json_is_reported() {
    let (_dir, store) = file_store();
    store
        .create_rollout("r1", "pending", &rollout_state("canary", &[]), t(0))
        .await
        .unwrap();
    let seq = store
        .post_rollout_observation("r1", &serde_json::json!("start"), t(1))
        .await
        .unwrap();
    let conn = Connection::open(store.path()).unwrap();
    conn.execute("UPDATE rollout_inbox SET observation = '{oops'", [])
        .unwrap();
    let err = store.rollout("r1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "store holds an invalid value: rollout `r1`: stored observation {seq} is not JSON: "
        )),
        "{err}"
    );
    conn.execute("UPDATE rollouts SET state = 'not json'", [])
        .unwrap();
    let err = store.rollout("r1").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("store holds an invalid value: rollout `r1`: stored state is not JSON: "),
        "{err}"
    );
}

/// `cargo test -p patchwave-store --release -- --ignored --nocapture bulk_`
#[tokio::test]
#[ignore = "measures bulk imports; run with --release"]
async fn bulk_imports_of_a_full_mirror() {
    let (_dir, store) = file_store();
    let template = usn(USN_6859);
    let advisories: Vec<Advisory> = (0..50_000)
        .map(|i| Advisory {
            id: format!("USN-{i:05}-1"),
            ..template.clone()
        })
        .collect();
    let started = std::time::Instant::now();
    let first = store.import_advisories(&advisories).await.unwrap();
    let insert = started.elapsed();
    let started = std::time::Instant::now();
    let again = store.import_advisories(&advisories).await.unwrap();
    let unchanged = started.elapsed();
    let started = std::time::Instant::now();
    let read = store.advisories().await.unwrap();
    let read_all = started.elapsed();
    assert_eq!(first.inserted, 50_000);
    assert_eq!(again.unchanged, 50_000);
    assert_eq!(read.len(), 50_000);
    println!(
        "50,000 advisories: import {insert:?}, re-import (unchanged) {unchanged:?}, \
         read all {read_all:?}"
    );

    let rows: Vec<EpssRow> = (0..300_000)
        .map(|i| EpssRow {
            cve: format!("CVE-{}-{:05}", 2000 + i / 20_000, i % 20_000),
            epss: 0.001,
            percentile: 0.5,
        })
        .collect();
    let feed = EpssFeed {
        model_version: "v2025.03.14".into(),
        score_date: t(0),
        rows,
    };
    let started = std::time::Instant::now();
    let n = import_epss(&store, &feed, &source("first-epss", "e.csv"))
        .await
        .unwrap()
        .written;
    let epss_import = started.elapsed();
    let started = std::time::Instant::now();
    let view = store.epss().await.unwrap().unwrap();
    let epss_read = started.elapsed();
    assert_eq!((n, view.feed.rows.len()), (300_000, 300_000));
    println!("300,000 EPSS scores: import {epss_import:?}, read {epss_read:?}");
}

// ----- The audit log's anchor -----

fn head(seq: u64, fill: char) -> AuditHead {
    AuditHead {
        seq,
        hash: fill.to_string().repeat(64),
    }
}

#[tokio::test]
async fn the_audit_anchor_starts_empty_and_only_moves_forward() {
    let (_dir, store) = file_store();
    assert_eq!(store.audit_anchor().await.unwrap(), None);
    assert!(store
        .advance_audit_anchor(&head(3, 'a'), t(0))
        .await
        .unwrap());
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(3, 'a')));
    // The same line again, or an earlier one (a runner whose later line was recorded
    // first), changes nothing.
    assert!(!store
        .advance_audit_anchor(&head(3, 'b'), t(1))
        .await
        .unwrap());
    assert!(!store
        .advance_audit_anchor(&head(2, 'c'), t(1))
        .await
        .unwrap());
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(3, 'a')));
    assert!(store
        .advance_audit_anchor(&head(9, 'd'), t(2))
        .await
        .unwrap());
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(9, 'd')));
    // An operator re-anchoring moves it anywhere, also back.
    store.reset_audit_anchor(&head(4, 'e'), t(3)).await.unwrap();
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(4, 'e')));
    // One row, whatever happened.
    assert_eq!(count(&store, "audit_anchor"), 1);
}

#[tokio::test]
async fn two_runners_on_one_file_keep_the_later_audit_head() {
    let (dir, a) = file_store();
    let b = SqliteStore::open(dir.path().join("state").join("patchwave.db")).unwrap();
    assert!(a.advance_audit_anchor(&head(10, 'a'), t(0)).await.unwrap());
    assert!(!b.advance_audit_anchor(&head(8, 'b'), t(1)).await.unwrap());
    assert!(b.advance_audit_anchor(&head(11, 'b'), t(1)).await.unwrap());
    assert_eq!(a.audit_anchor().await.unwrap(), Some(head(11, 'b')));
}

#[tokio::test]
async fn an_audit_head_no_line_can_have_is_refused() {
    let (_dir, store) = file_store();
    for bad in [
        head(0, 'a'),
        AuditHead {
            seq: 1,
            hash: "A".repeat(64),
        },
        AuditHead {
            seq: 1,
            hash: "a".repeat(63),
        },
        AuditHead {
            seq: u64::MAX,
            hash: "a".repeat(64),
        },
    ] {
        let err = store.advance_audit_anchor(&bad, t(0)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
        let err = store.reset_audit_anchor(&bad, t(0)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    }
    assert_eq!(store.audit_anchor().await.unwrap(), None);
}
