//! Tests of the SQLite store against real database files: the whole conformance suite, then
//! what is SQLite's own (migrations, pragmas, rows as stored, corrupt values written with raw
//! SQL).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use patchwave_core::HostId;
use rusqlite::Connection;
use tempfile::TempDir;

use patchwave_advisory::{Advisory, EpssFeed, EpssRow};

use super::SqliteStore;
use crate::conformance::fixtures::*;
use crate::conformance::{audit, feeds, hosts, rollouts, Backend, Subject};
use crate::{migrate, KevView, Store, StoreError};

/// Fresh stores in files of one temporary directory (`<n>/patchwave.db`, numbered in the
/// order they were made), kept until the backend is dropped so a test can read them after a
/// case.
struct Files {
    dir: TempDir,
    made: AtomicUsize,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
            made: AtomicUsize::new(0),
        }
    }

    /// The file of the `n`th store made (from 0).
    fn db(&self, n: usize) -> PathBuf {
        self.dir.path().join(n.to_string()).join("patchwave.db")
    }
}

#[async_trait]
impl Backend for Files {
    async fn fresh(&self) -> Subject {
        let path = self.db(self.made.fetch_add(1, Ordering::SeqCst));
        Subject {
            store: Arc::new(SqliteStore::open(&path).unwrap()),
            location: path.display().to_string(),
        }
    }

    async fn another_runner(&self, subject: &Subject) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&subject.location).unwrap())
    }
}

mod conformance {
    crate::store_conformance_tests!(super::Files::new());
}

fn file_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state").join("patchwave.db")).unwrap();
    (dir, store)
}

fn count(db: &Path, table: &str) -> i64 {
    let conn = Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn count_of_host(db: &Path, table: &str, host: &str) -> i64 {
    let conn = Connection::open(db).unwrap();
    conn.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE host_id = ?1"),
        [host],
        |r| r.get(0),
    )
    .unwrap()
}

// ----- Rows as stored, after a conformance case -----

#[tokio::test]
async fn the_same_inventory_twice_is_one_snapshot_row_and_one_package_list() {
    let files = Files::new();
    hosts::same_inventory_twice_is_one_snapshot_seen_again(&files).await;
    assert_eq!(count(&files.db(0), "host_snapshots"), 1);
    assert_eq!(count(&files.db(0), "inventory_packages"), 3);
}

#[tokio::test]
async fn going_back_to_a_package_list_adds_a_snapshot_row_but_no_inventory() {
    let files = Files::new();
    hosts::changed_inventory_starts_a_new_snapshot(&files).await;
    assert_eq!(count(&files.db(0), "host_snapshots"), 3);
    assert_eq!(count(&files.db(0), "inventories"), 2);
}

#[tokio::test]
async fn removing_a_host_deletes_its_rows_and_only_its_own_package_lists() {
    let files = Files::new();
    hosts::hosts_share_inventories_and_removal_frees_only_unshared_ones(&files).await;
    let db = files.db(0);
    for table in [
        "host_tags",
        "host_snapshots",
        "host_upgradable",
        "scan_attempts",
    ] {
        assert_eq!(count_of_host(&db, table, "a"), 0, "{table}");
    }
    assert_eq!(count(&db, "inventories"), 1);
    assert_eq!(count(&db, "inventory_packages"), 3);
}

fn advisory_packages(db: &Path) -> Vec<(String, String, String)> {
    let conn = Connection::open(db).unwrap();
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

#[tokio::test]
async fn advisories_are_indexed_by_ecosystem_and_package() {
    let files = Files::new();
    feeds::advisories_round_trip_sorted_by_id(&files).await;
    assert_eq!(
        advisory_packages(&files.db(0)),
        vec![
            row("Ubuntu:20.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "openssh", "USN-6859-1"),
            row("Ubuntu:24.04:LTS", "openssh", "USN-6859-1"),
        ]
    );
}

#[tokio::test]
async fn the_package_index_follows_the_replaced_advisory() {
    let files = Files::new();
    feeds::newer_modified_wins_and_an_older_one_never_rolls_back(&files).await;
    assert_eq!(
        advisory_packages(&files.db(0)),
        vec![
            row("Ubuntu:22.04:LTS", "glibc", "USN-6409-1"),
            row("Ubuntu:20.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "libxml2", "USN-6658-1"),
            row("Ubuntu:22.04:LTS", "openssh", "USN-6859-1"),
        ]
    );
}

#[tokio::test]
async fn a_returning_kev_entry_keeps_the_date_it_was_first_seen() {
    let files = Files::new();
    feeds::kev_replacement_keeps_tombstones(&files).await;
    let conn = Connection::open(files.db(0)).unwrap();
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

#[tokio::test]
async fn a_replaced_epss_feed_leaves_only_its_rows() {
    let files = Files::new();
    feeds::epss_is_replaced_whole_and_a_stale_write_is_refused(&files).await;
    assert_eq!(count(&files.db(0), "epss_scores"), 2);
}

fn inbox_rows(db: &Path) -> Vec<(String, i64, i64, bool)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT rollout_id, seq, posted_at, consumed FROM rollout_inbox ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn consumed_observations_are_kept_for_the_record() {
    let files = Files::new();
    rollouts::saving_consumes_the_inbox_up_to_the_given_sequence(&files).await;
    let now = |m: i64| t(m).timestamp_millis();
    assert_eq!(
        inbox_rows(&files.db(0)),
        vec![
            ("r1".into(), 1, now(1), true),
            ("r2".into(), 2, now(2), false),
            ("r1".into(), 3, now(3), true),
        ]
    );
}

#[tokio::test]
async fn an_observation_for_an_unknown_rollout_writes_no_row() {
    let files = Files::new();
    rollouts::unknown_rollouts_are_refused(&files).await;
    assert_eq!(count(&files.db(0), "rollout_inbox"), 0);
    assert_eq!(count(&files.db(0), "rollouts"), 0);
}

#[tokio::test]
async fn the_audit_anchor_is_one_row_whatever_happened() {
    let files = Files::new();
    audit::the_audit_anchor_starts_empty_and_only_moves_forward(&files).await;
    assert_eq!(count(&files.db(0), "audit_anchor"), 1);
}

// ----- SQLite's own -----

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
async fn in_memory_store_works_and_rejects_empty_ids() {
    let store = SqliteStore::open_in_memory().unwrap();
    let err = store.register_host(&host("")).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    store.register_host(&host("m")).await.unwrap();
    assert_eq!(store.list_hosts().await.unwrap().len(), 1);
}

#[test]
fn the_schema_is_at_version_7() {
    assert_eq!(migrate::latest(SqliteStore::migrations()), 7);
    assert_eq!(SqliteStore::migrations()[2].name, "advisories");
    assert_eq!(SqliteStore::migrations()[3].name, "rollouts");
    assert_eq!(SqliteStore::migrations()[4].name, "change_rollout");
    assert_eq!(SqliteStore::migrations()[5].name, "audit_anchor");
    assert_eq!(SqliteStore::migrations()[6].name, "change_undoes");
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
    assert_eq!(store.schema_version().await.unwrap(), 7);
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
