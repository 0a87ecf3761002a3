//! Tests of the SQLite store against real database files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use patchwave_core::{Environment, Freshness, HostId, Installed, OsFacts, ScanStatus};
use rusqlite::Connection;
use tempfile::TempDir;

use super::SqliteStore;
use crate::{
    migrate, package_order, HostRecord, ScanEffect, ScanOutcome, ScanResult, Store, StoreError,
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
