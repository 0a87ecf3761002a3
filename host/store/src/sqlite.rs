//! The embedded default store: one SQLite file.
//!
//! One connection serves the process. It sits behind a `tokio::sync::Mutex` and every operation
//! runs on the blocking pool with the lock's owned guard moved into it: callers queue in FIFO
//! order *asynchronously* (no blocking-pool thread parks waiting for the lock), exactly one
//! pool thread works the database at a time, and an operation whose caller is dropped still
//! finishes or rolls back as a whole. SQLite allows one writer at a time anyway; a second
//! connection for readers would only pay off for long reads running beside writes, and can
//! be added behind the same trait. Other *processes* may share the file: WAL lets readers
//! proceed beside a writer, and writers wait out each other via `busy_timeout` (write
//! transactions start `IMMEDIATE` so that the wait applies to them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchwave_advisory::{Advisory, EpssFeed, FeedStamp, KevCatalog, Source};
use patchwave_core::audit::AuditHead;
use patchwave_core::change::{ChangeKind, ChangeOutcome, Reconciliation};
use patchwave_core::inventory::inventory_digest;
use patchwave_core::{Environment, HostId, HostSummary, Installed, OsFacts, ScanStatus};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use tokio::sync::Mutex;

use crate::error::{StoreError, UNNAMED};
use crate::migrate::{self, Migration};
use crate::model::{
    package_order, AdvisoryImport, ChangeId, ChangeRecord, EpssImport, EpssView, FeedWrite,
    FleetHost, HostRecord, InventoryId, InventoryView, KevImport, KevView, NewChange, RecordedScan,
    RemovedHost, RolloutRecord, RolloutSummaryRow, ScanAttempt, ScanEffect, ScanOutcome,
    ScanResult, SnapshotId,
};
use crate::rules;
use crate::store::Store;

mod audit_anchor;
mod feeds;
mod rollouts;
#[cfg(test)]
mod tests;

/// The SQLite driver's errors, raised through `?` in this backend, become
/// [`StoreError::Backend`] (boxed, so the public error never names `rusqlite`), their
/// operation named by [`SqliteStore::run`].
#[doc(hidden)]
impl From<rusqlite::Error> for StoreError {
    fn from(source: rusqlite::Error) -> Self {
        StoreError::backend(UNNAMED, source)
    }
}

/// How long a writer waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Statements kept prepared; comfortably more than the store uses.
const STATEMENT_CACHE: usize = 64;

/// A [`Store`] in one SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// Open (creating it and its parent directories if needed) the database at `path`, and
    /// bring its schema up to date. The file is kept `0600` in a `0700` directory owned by
    /// the runner; a symbolic link, or a file or directory of another user, is refused
    /// ([`StoreError::NotPrivate`]).
    ///
    /// Refuses a database written by a newer patchwave ([`StoreError::NewerSchema`]).
    /// Blocks while migrating: call it at startup, not from inside a busy runtime.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        make_private(&path).map_err(StoreError::NotPrivate)?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source: source.into(),
        })?;
        Self::init(conn, path, true)
    }

    /// A private, empty, fully migrated in-memory store (for tests).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.clone(),
            source: source.into(),
        })?;
        Self::init(conn, path, false)
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema migrations this binary knows, oldest first.
    pub fn migrations() -> &'static [Migration] {
        migrate::SQLITE
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.run("schema_version", |conn| {
            Ok(applied_migrations(conn)?
                .iter()
                .map(|(v, _)| *v)
                .max()
                .unwrap_or(0))
        })
        .await
    }

    /// Record many scans in one transaction, through the same code as
    /// [`Store::record_scan`]. For seeding benchmarks and demos; not part of the contract.
    #[doc(hidden)]
    pub async fn seed_scans(
        &self,
        scans: Vec<(HostId, ScanOutcome)>,
    ) -> Result<Vec<RecordedScan>, StoreError> {
        self.run("seed_scans", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let recorded = scans
                .into_iter()
                .map(|(host, outcome)| record_scan_tx(&tx, &host, outcome))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(recorded)
        })
        .await
    }

    fn init(mut conn: Connection, path: PathBuf, file: bool) -> Result<Self, StoreError> {
        configure(&conn, file).map_err(|source| StoreError::Open {
            path: path.clone(),
            source: source.into(),
        })?;
        migrate_schema(&mut conn, migrate::SQLITE).map_err(|e| e.during("migrate"))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// Run `f` on the connection on the blocking pool, after the callers before it.
    async fn run<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let mut conn = Arc::clone(&self.conn).lock_owned().await;
        match tokio::task::spawn_blocking(move || f(&mut conn)).await {
            Ok(result) => result.map_err(|e| e.during(operation)),
            // A panic in the store is a bug: let it surface where it would have without the
            // thread hop. The transaction it was in rolled back while unwinding.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Cancelled { operation }),
        }
    }
}

/// Create the database file `0600` in a private directory (0700, the runner's), never
/// through a symbolic link, before SQLite opens it by name; tighten it and the journal
/// files SQLite keeps beside it (which SQLite creates with the database's mode) when an
/// older patchwave left them readable by others. Nobody else can write the directory, so
/// the file SQLite opens next is the one checked here.
fn make_private(path: &Path) -> Result<(), patchwave_fs::FsError> {
    use patchwave_fs::{Access, PrivateDir};
    let (dir, name) = patchwave_fs::split(path)?;
    let dir = PrivateDir::ensure(dir)?;
    drop(dir.open(name, Access::ReadWrite)?);
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = name.as_os_str().to_os_string();
        side.push(suffix);
        drop(dir.open_existing(&side, Access::ReadWrite)?);
    }
    Ok(())
}

fn configure(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    if file {
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some filesystems (network mounts) cannot share WAL memory; the store still
            // works, with readers and the writer blocking each other.
            tracing::warn!(journal_mode = %mode, "SQLite store could not switch to WAL mode");
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

fn applied_migrations(conn: &Connection) -> Result<Vec<(u32, String)>, StoreError> {
    let mut stmt = conn.prepare("SELECT version, name FROM schema_migrations ORDER BY version")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(v, name)| {
            u32::try_from(v)
                .map(|v| (v, name))
                .map_err(|_| StoreError::corrupt(format!("schema_migrations.version = {v}")))
        })
        .collect()
}

/// Apply pending migrations, each in its own `IMMEDIATE` transaction that re-reads what is
/// applied first, so several processes opening one file at once migrate it exactly once.
fn migrate_schema(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY NOT NULL,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )?;
    // Fast path without the write lock: an up-to-date database is opened read-only.
    if migrate::pending(migrations, &applied_migrations(conn)?)?.is_empty() {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = applied_migrations(&tx)?;
        let Some(m) = migrate::pending(migrations, &applied)?.first() else {
            return Ok(());
        };
        tx.execute_batch(m.sql)
            .map_err(|source| StoreError::Migration {
                version: m.version,
                name: m.name,
                source: source.into(),
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, Utc::now().timestamp_millis()],
        )?;
        tx.commit()?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied store schema migration"
        );
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn register_hosts(&self, hosts: &[HostRecord]) -> Result<(), StoreError> {
        rules::check_host_ids(hosts)?;
        let hosts = hosts.to_vec();
        self.run("register_hosts", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for h in &hosts {
                register_tx(&tx, h)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn host(&self, id: &HostId) -> Result<Option<HostRecord>, StoreError> {
        let id = id.clone();
        self.run("host", move |conn| {
            let tx = conn.transaction()?;
            let sql = format!("SELECT {IDENTITY_COLUMNS} FROM hosts WHERE hosts.id = ?1");
            let row = tx
                .prepare_cached(&sql)?
                .query_row([id.as_str()], |r| RawIdentity::read(r, 0))
                .optional()?;
            let Some(identity) = row else {
                return Ok(None);
            };
            let tags = tx
                .prepare_cached("SELECT tag FROM host_tags WHERE host_id = ?1 ORDER BY tag")?
                .query_map([id.as_str()], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            identity.into_record(tags).map(Some)
        })
        .await
    }

    async fn remove_host(&self, id: &HostId) -> Result<Option<RemovedHost>, StoreError> {
        let id = id.clone();
        self.run("remove_host", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let removed = remove_tx(&tx, &id)?;
            tx.commit()?;
            Ok(removed)
        })
        .await
    }

    async fn record_scan(
        &self,
        host: &HostId,
        outcome: ScanOutcome,
    ) -> Result<RecordedScan, StoreError> {
        let host = host.clone();
        self.run("record_scan", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let recorded = record_scan_tx(&tx, &host, outcome)?;
            tx.commit()?;
            Ok(recorded)
        })
        .await
    }

    async fn host_summary(&self, id: &HostId) -> Result<Option<HostSummary>, StoreError> {
        let id = id.clone();
        self.run("host_summary", move |conn| {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM hosts WHERE id = ?1");
            let raw = conn
                .prepare_cached(&sql)?
                .query_row([id.as_str()], RawSummary::read)
                .optional()?;
            raw.map(RawSummary::into_summary).transpose()
        })
        .await
    }

    async fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError> {
        self.run("list_hosts", |conn| {
            let sql = format!("SELECT {SUMMARY_COLUMNS} FROM hosts ORDER BY id");
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(RawSummary::read(row)?.into_summary()?);
            }
            Ok(out)
        })
        .await
    }

    async fn inventory(&self, id: &HostId) -> Result<Option<InventoryView>, StoreError> {
        let id = id.clone();
        self.run("inventory", move |conn| {
            let tx = conn.transaction()?;
            let head = tx
                .prepare_cached(
                    "SELECT s.id, s.inventory_id, i.digest, i.package_count,
                            s.first_seen, s.last_seen
                     FROM hosts h
                     JOIN host_snapshots s ON s.id = h.snapshot_id
                     JOIN inventories i ON i.id = s.inventory_id
                     WHERE h.id = ?1",
                )?
                .query_row([id.as_str()], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, i64>(5)?,
                    ))
                })
                .optional()?;
            let Some((snapshot, inventory_id, digest, count, first_seen, last_seen)) = head else {
                return Ok(None);
            };
            let packages = read_packages(&tx, inventory_id)?;
            if i64::try_from(packages.len()).ok() != Some(count) {
                return Err(StoreError::corrupt(format!(
                    "inventory {digest} of host `{id}` should hold {count} packages but holds {}",
                    packages.len()
                )));
            }
            Ok(Some(InventoryView {
                snapshot_id: SnapshotId(snapshot),
                digest,
                taken_at: from_ms(first_seen, "host_snapshots.first_seen")?,
                last_seen: from_ms(last_seen, "host_snapshots.last_seen")?,
                packages,
            }))
        })
        .await
    }

    async fn upgradable(&self, id: &HostId) -> Result<Vec<Installed>, StoreError> {
        let id = id.clone();
        self.run("upgradable", move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT name, version, arch, source FROM host_upgradable
                     WHERE host_id = ?1 ORDER BY ord",
                )?
                .query_map([id.as_str()], read_installed)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn scan_history(&self, id: &HostId, limit: u32) -> Result<Vec<ScanAttempt>, StoreError> {
        let id = id.clone();
        self.run("scan_history", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, started_at, finished_at, status, error, plugin, plugin_digest,
                        snapshot_id
                 FROM scan_attempts WHERE host_id = ?1
                 ORDER BY finished_at DESC, id DESC LIMIT ?2",
            )?;
            let raw = stmt
                .query_map(params![id.as_str(), limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter()
                .map(
                    |(id, started, finished, status, error, plugin, plugin_digest, snapshot)| {
                        Ok(ScanAttempt {
                            id,
                            started_at: from_ms(started, "scan_attempts.started_at")?,
                            finished_at: from_ms(finished, "scan_attempts.finished_at")?,
                            status: parse_status(&status, error)?,
                            plugin,
                            plugin_digest,
                            snapshot_id: snapshot.map(SnapshotId),
                        })
                    },
                )
                .collect()
        })
        .await
    }

    async fn package_versions(&self, name: &str) -> Result<Vec<(HostId, Installed)>, StoreError> {
        let name = name.to_string();
        self.run("package_versions", move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT h.id, p.name, p.version, p.arch, p.source
                 FROM inventory_packages p
                 JOIN host_snapshots s ON s.inventory_id = p.inventory_id
                 JOIN hosts h ON h.snapshot_id = s.id
                 WHERE p.name = ?1
                 ORDER BY h.id, p.ord",
            )?;
            let rows = stmt
                .query_map([name], |r| {
                    Ok((
                        HostId(r.get(0)?),
                        Installed {
                            name: r.get(1)?,
                            version: r.get(2)?,
                            arch: r.get(3)?,
                            source: r.get(4)?,
                        },
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn begin_change(&self, change: &NewChange) -> Result<ChangeId, StoreError> {
        let c = change.clone();
        let expected = serde_json::to_string(&c.expected)
            .map_err(|e| StoreError::corrupt(format!("expected versions: {e}")))?;
        self.run("begin_change", move |conn| {
            let known: Option<i64> = conn
                .prepare_cached("SELECT 1 FROM hosts WHERE id = ?1")?
                .query_row([c.host.as_str()], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Err(StoreError::UnknownHost { host: c.host.clone() });
            }
            let undone = match c.undoes {
                Some(id) => conn
                    .prepare_cached("SELECT host_id, kind FROM host_changes WHERE id = ?1")?
                    .query_row([id.0], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .optional()?,
                None => None,
            };
            rules::check_undoes(&c, undone.as_ref().map(|(h, k)| (h.as_str(), k.as_str())))?;
            conn.prepare_cached(
                "INSERT INTO host_changes (host_id, kind, plugin, request, expected, rollback_plan, started_at, outcome, rollout, undoes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'in-progress', ?8, ?9)",
            )?
            .execute(params![
                c.host.as_str(),
                c.kind.as_str(),
                c.plugin,
                c.request,
                expected,
                c.rollback_plan,
                c.started_at.timestamp_millis(),
                c.rollout,
                c.undoes.map(|id| id.0),
            ])?;
            Ok(ChangeId(conn.last_insert_rowid()))
        })
        .await
    }

    async fn finish_change(
        &self,
        id: ChangeId,
        outcome: ChangeOutcome,
        detail: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let detail = detail.to_string();
        self.run("finish_change", move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE host_changes SET outcome = ?2, detail = ?3, finished_at = ?4 WHERE id = ?1",
                )?
                .execute(params![id.0, outcome.as_str(), detail, at.timestamp_millis()])?;
            if n == 0 {
                return Err(StoreError::corrupt(format!("no change {id} to finish")));
            }
            Ok(())
        })
        .await
    }

    async fn unsettled_changes(&self, host: &HostId) -> Result<Vec<ChangeRecord>, StoreError> {
        let host = host.clone();
        self.run("unsettled_changes", move |conn| {
            let sql = format!(
                "SELECT {CHANGE_COLUMNS} FROM host_changes
                 WHERE host_id = ?1 AND outcome IN ('in-progress', 'unknown') AND reconciled_at IS NULL
                 ORDER BY id"
            );
            let rows = conn
                .prepare_cached(&sql)?
                .query_map([host.as_str()], RawChange::read)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(RawChange::into_record).collect()
        })
        .await
    }

    async fn reconcile_change(
        &self,
        id: ChangeId,
        how: Reconciliation,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.run("reconcile_change", move |conn| {
            conn.prepare_cached(
                "UPDATE host_changes SET reconciled = ?2, reconciled_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id.0, how.as_str(), at.timestamp_millis()])?;
            Ok(())
        })
        .await
    }

    async fn changes(&self, host: &HostId, limit: u32) -> Result<Vec<ChangeRecord>, StoreError> {
        let host = host.clone();
        self.run("changes", move |conn| {
            let sql = format!(
                "SELECT {CHANGE_COLUMNS} FROM host_changes WHERE host_id = ?1 ORDER BY id DESC LIMIT ?2"
            );
            let rows = conn
                .prepare_cached(&sql)?
                .query_map(params![host.as_str(), limit], RawChange::read)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(RawChange::into_record).collect()
        })
        .await
    }

    async fn rollout_changes(
        &self,
        rollout: &str,
        host: &HostId,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let (rollout, host) = (rollout.to_string(), host.clone());
        self.run("rollout_changes", move |conn| {
            let sql = format!(
                "SELECT {CHANGE_COLUMNS} FROM host_changes WHERE rollout = ?1 AND host_id = ?2
                 ORDER BY id DESC"
            );
            let rows = conn
                .prepare_cached(&sql)?
                .query_map(params![rollout, host.as_str()], RawChange::read)?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(RawChange::into_record).collect()
        })
        .await
    }

    async fn import_advisories(
        &self,
        advisories: &[Advisory],
    ) -> Result<AdvisoryImport, StoreError> {
        // Serialized here, so the connection is held only for the writes.
        let rows = advisories
            .iter()
            .map(feeds::AdvisoryRow::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.run("import_advisories", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let import = feeds::import_advisories_tx(&tx, &rows)?;
            tx.commit()?;
            Ok(import)
        })
        .await
    }

    async fn advisories(&self) -> Result<Vec<Advisory>, StoreError> {
        self.run("advisories", |conn| {
            feeds::read_advisories(&conn.transaction()?)
        })
        .await
    }

    async fn advisory(&self, id: &str) -> Result<Option<Advisory>, StoreError> {
        let id = id.to_string();
        self.run("advisory", move |conn| {
            feeds::read_advisory(&conn.transaction()?, &id)
        })
        .await
    }

    async fn import_kev(
        &self,
        catalog: &KevCatalog,
        source: &Source,
        write: &FeedWrite,
    ) -> Result<KevImport, StoreError> {
        rules::check_kev(catalog)?;
        let (catalog, source, write) = (catalog.clone(), source.clone(), write.clone());
        self.run("import_kev", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let import = feeds::import_kev_tx(&tx, &catalog, &source, &write)?;
            tx.commit()?;
            Ok(import)
        })
        .await
    }

    async fn kev_stamp(&self) -> Result<Option<FeedStamp>, StoreError> {
        self.run("kev_stamp", |conn| feeds::kev_stamp(&conn.transaction()?))
            .await
    }

    async fn kev(&self) -> Result<KevView, StoreError> {
        self.run("kev", |conn| feeds::read_kev(&conn.transaction()?))
            .await
    }

    async fn import_epss(
        &self,
        feed: &EpssFeed,
        source: &Source,
        write: &FeedWrite,
    ) -> Result<EpssImport, StoreError> {
        rules::check_epss(feed)?;
        let (feed, source, write) = (feed.clone(), source.clone(), write.clone());
        self.run("import_epss", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let import = feeds::import_epss_tx(&tx, &feed, &source, &write)?;
            tx.commit()?;
            Ok(import)
        })
        .await
    }

    async fn epss_stamp(&self) -> Result<Option<FeedStamp>, StoreError> {
        self.run("epss_stamp", |conn| feeds::epss_stamp(&conn.transaction()?))
            .await
    }

    async fn epss(&self) -> Result<Option<EpssView>, StoreError> {
        self.run("epss", |conn| feeds::read_epss(&conn.transaction()?))
            .await
    }

    async fn fleet_hosts(&self) -> Result<Vec<FleetHost>, StoreError> {
        self.run("fleet_hosts", |conn| {
            let tx = conn.transaction()?;
            let mut tags = all_tags(&tx)?;
            let sql = format!(
                "SELECT {IDENTITY_COLUMNS}, {FACTS_COLUMNS}, s.inventory_id,
                        hosts.last_success_at, hosts.last_status, hosts.last_error
                 FROM hosts LEFT JOIN host_snapshots s ON s.id = hosts.snapshot_id
                 ORDER BY hosts.id"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let raw = RawFleetHost::read(row)?;
                let host_tags = tags.remove(&raw.identity.id).unwrap_or_default();
                out.push(raw.into_fleet_host(host_tags)?);
            }
            Ok(out)
        })
        .await
    }

    async fn inventory_packages(&self, id: InventoryId) -> Result<Vec<Installed>, StoreError> {
        self.run("inventory_packages", move |conn| {
            let tx = conn.transaction()?;
            let count: Option<i64> = tx
                .prepare_cached("SELECT package_count FROM inventories WHERE id = ?1")?
                .query_row([id.0], |r| r.get(0))
                .optional()?;
            let Some(count) = count else {
                return Err(StoreError::InvalidInput {
                    what: format!(
                        "inventory {} is not stored (every host that had it was removed)",
                        id.0
                    ),
                });
            };
            let packages = read_packages(&tx, id.0)?;
            if i64::try_from(packages.len()).ok() != Some(count) {
                return Err(StoreError::corrupt(format!(
                    "inventory {} should hold {count} packages but holds {}",
                    id.0,
                    packages.len()
                )));
            }
            Ok(packages)
        })
        .await
    }

    async fn create_rollout(
        &self,
        id: &str,
        status: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let write = rollouts::RolloutWrite::new(id, status, state, at)?;
        self.run("create_rollout", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            rollouts::create_rollout_tx(&tx, &write)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn rollout(&self, id: &str) -> Result<Option<RolloutRecord>, StoreError> {
        let id = id.to_string();
        self.run("rollout", move |conn| {
            rollouts::read_rollout(&conn.transaction()?, &id)
        })
        .await
    }

    async fn save_rollout(
        &self,
        id: &str,
        expected_revision: i64,
        status: &str,
        state: &serde_json::Value,
        consumed: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let write = rollouts::RolloutWrite::new(id, status, state, at)?;
        self.run("save_rollout", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let revision = rollouts::save_rollout_tx(&tx, &write, expected_revision, consumed)?;
            tx.commit()?;
            Ok(revision)
        })
        .await
    }

    async fn post_rollout_observation(
        &self,
        id: &str,
        observation: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let observation = rollouts::observation_json(id, observation)?;
        let id = id.to_string();
        self.run("post_rollout_observation", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seq = rollouts::post_observation_tx(&tx, &id, &observation, at)?;
            tx.commit()?;
            Ok(seq)
        })
        .await
    }

    async fn rollouts(&self) -> Result<Vec<RolloutSummaryRow>, StoreError> {
        self.run("rollouts", |conn| {
            rollouts::read_rollouts(&conn.transaction()?)
        })
        .await
    }

    async fn audit_anchor(&self) -> Result<Option<AuditHead>, StoreError> {
        self.run("audit_anchor", |conn| audit_anchor::read(conn))
            .await
    }

    async fn advance_audit_anchor(
        &self,
        head: &AuditHead,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let write = audit_anchor::AnchorWrite::new(head, at)?;
        self.run("advance_audit_anchor", move |conn| {
            audit_anchor::advance(conn, &write)
        })
        .await
    }

    async fn reset_audit_anchor(
        &self,
        head: &AuditHead,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let write = audit_anchor::AnchorWrite::new(head, at)?;
        self.run("reset_audit_anchor", move |conn| {
            audit_anchor::reset(conn, &write)
        })
        .await
    }
}

const CHANGE_COLUMNS: &str =
    "id, host_id, kind, plugin, request, expected, rollback_plan, started_at, \
     finished_at, outcome, detail, reconciled_at, reconciled, rollout, undoes";

struct RawChange {
    id: i64,
    host: String,
    kind: String,
    plugin: String,
    request: String,
    expected: String,
    rollback_plan: Option<String>,
    started_at: i64,
    finished_at: Option<i64>,
    outcome: String,
    detail: Option<String>,
    reconciled_at: Option<i64>,
    reconciled: Option<String>,
    rollout: Option<String>,
    undoes: Option<i64>,
}

impl RawChange {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawChange> {
        Ok(RawChange {
            id: r.get(0)?,
            host: r.get(1)?,
            kind: r.get(2)?,
            plugin: r.get(3)?,
            request: r.get(4)?,
            expected: r.get(5)?,
            rollback_plan: r.get(6)?,
            started_at: r.get(7)?,
            finished_at: r.get(8)?,
            outcome: r.get(9)?,
            detail: r.get(10)?,
            reconciled_at: r.get(11)?,
            reconciled: r.get(12)?,
            rollout: r.get(13)?,
            undoes: r.get(14)?,
        })
    }

    fn into_record(self) -> Result<ChangeRecord, StoreError> {
        let kind = match self.kind.as_str() {
            "apply" => ChangeKind::Apply,
            "rollback" => ChangeKind::Rollback,
            other => return Err(StoreError::corrupt(format!("change kind `{other}`"))),
        };
        let outcome = ChangeOutcome::parse(&self.outcome)
            .ok_or_else(|| StoreError::corrupt(format!("change outcome `{}`", self.outcome)))?;
        let reconciled = self
            .reconciled
            .map(|r| {
                Reconciliation::parse(&r)
                    .ok_or_else(|| StoreError::corrupt(format!("reconciliation `{r}`")))
            })
            .transpose()?;
        let expected = serde_json::from_str(&self.expected).map_err(|e| {
            StoreError::corrupt(format!("change {} expected versions: {e}", self.id))
        })?;
        Ok(ChangeRecord {
            id: ChangeId(self.id),
            host: HostId(self.host),
            kind,
            plugin: self.plugin,
            request: self.request,
            expected,
            rollback_plan: self.rollback_plan,
            started_at: from_ms(self.started_at, "host_changes.started_at")?,
            finished_at: opt_from_ms(self.finished_at, "host_changes.finished_at")?,
            outcome,
            detail: self.detail,
            reconciled_at: opt_from_ms(self.reconciled_at, "host_changes.reconciled_at")?,
            reconciled,
            rollout: self.rollout,
            undoes: self.undoes.map(ChangeId),
        })
    }
}

fn register_tx(tx: &Transaction<'_>, h: &HostRecord) -> Result<(), StoreError> {
    // The WHERE clause skips the write when nothing changed, so a daily config sync of the
    // whole fleet does not rewrite every row.
    tx.prepare_cached(
        "INSERT INTO hosts (id, address, port, env, scope, transport)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET
             address = excluded.address, port = excluded.port, env = excluded.env,
             scope = excluded.scope, transport = excluded.transport
         WHERE address IS NOT excluded.address OR port IS NOT excluded.port
            OR env IS NOT excluded.env OR scope IS NOT excluded.scope
            OR transport IS NOT excluded.transport",
    )?
    .execute(params![
        h.id.as_str(),
        h.address,
        h.port,
        h.env.as_str(),
        h.scope,
        h.transport
    ])?;
    let mut want = h.tags.clone();
    want.sort();
    want.dedup();
    let have = tx
        .prepare_cached("SELECT tag FROM host_tags WHERE host_id = ?1 ORDER BY tag")?
        .query_map([h.id.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    if have != want {
        tx.prepare_cached("DELETE FROM host_tags WHERE host_id = ?1")?
            .execute([h.id.as_str()])?;
        let mut insert =
            tx.prepare_cached("INSERT INTO host_tags (host_id, tag) VALUES (?1, ?2)")?;
        for tag in &want {
            insert.execute(params![h.id.as_str(), tag])?;
        }
    }
    Ok(())
}

fn remove_tx(tx: &Transaction<'_>, id: &HostId) -> Result<Option<RemovedHost>, StoreError> {
    let count = |sql: &str| -> Result<u64, StoreError> {
        let n: i64 = tx
            .prepare_cached(sql)?
            .query_row([id.as_str()], |r| r.get(0))?;
        count_from_sql(n, "row count")
    };
    let exists: Option<i64> = tx
        .prepare_cached("SELECT 1 FROM hosts WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let snapshots = count("SELECT COUNT(*) FROM host_snapshots WHERE host_id = ?1")?;
    let scan_attempts = count("SELECT COUNT(*) FROM scan_attempts WHERE host_id = ?1")?;
    let inventories = tx
        .prepare_cached("SELECT DISTINCT inventory_id FROM host_snapshots WHERE host_id = ?1")?
        .query_map([id.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    // Tags, snapshots, the upgradable list and the history go by ON DELETE CASCADE.
    tx.prepare_cached("DELETE FROM hosts WHERE id = ?1")?
        .execute([id.as_str()])?;
    let mut free = tx.prepare_cached(
        "DELETE FROM inventories WHERE id = ?1
         AND NOT EXISTS (SELECT 1 FROM host_snapshots WHERE inventory_id = ?1)",
    )?;
    let mut inventories_freed = 0;
    for inventory in inventories {
        inventories_freed += free.execute([inventory])? as u64;
    }
    Ok(Some(RemovedHost {
        snapshots,
        scan_attempts,
        inventories_freed,
    }))
}

/// The body of [`Store::record_scan`], inside the caller's write transaction.
fn record_scan_tx(
    tx: &Transaction<'_>,
    host: &HostId,
    outcome: ScanOutcome,
) -> Result<RecordedScan, StoreError> {
    let current = tx
        .prepare_cached(
            "SELECT last_attempt_at, snapshot_id, upgradable_digest FROM hosts WHERE id = ?1",
        )?
        .query_row([host.as_str()], |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?;
    let Some((last_attempt, current_snapshot, current_upgradable)) = current else {
        return Err(StoreError::UnknownHost { host: host.clone() });
    };
    let started = outcome.started_at.timestamp_millis();
    let finished = outcome.finished_at.timestamp_millis();
    let superseded = rules::attempt_is_superseded(
        opt_from_ms(last_attempt, "hosts.last_attempt_at")?,
        outcome.finished_at,
    );
    let status = outcome.result.status();

    let attempt = |plugin: Option<&str>, digest: Option<&str>, snapshot: Option<i64>| {
        tx.prepare_cached(
            "INSERT INTO scan_attempts
                 (host_id, started_at, finished_at, status, error, plugin, plugin_digest,
                  snapshot_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            host.as_str(),
            started,
            finished,
            status.word(),
            status.error(),
            plugin,
            digest,
            snapshot
        ])?;
        Ok::<_, StoreError>(tx.last_insert_rowid())
    };

    let ScanResult::Ok {
        plugin,
        plugin_digest,
        facts,
        mut packages,
        mut upgradable,
    } = outcome.result
    else {
        let attempt_id = attempt(None, None, None)?;
        if superseded {
            return Ok(RecordedScan {
                attempt_id,
                effect: ScanEffect::Superseded,
            });
        }
        tx.prepare_cached(
            "UPDATE hosts SET last_attempt_at = ?2, last_status = ?3, last_error = ?4
             WHERE id = ?1",
        )?
        .execute(params![
            host.as_str(),
            finished,
            status.word(),
            status.error()
        ])?;
        return Ok(RecordedScan {
            attempt_id,
            effect: ScanEffect::AttemptFailed,
        });
    };
    if superseded {
        let attempt_id = attempt(Some(&plugin), Some(&plugin_digest), None)?;
        return Ok(RecordedScan {
            attempt_id,
            effect: ScanEffect::Superseded,
        });
    }

    packages.sort_by(package_order);
    let digest = inventory_digest(&packages);
    let same_snapshot = match current_snapshot {
        Some(snapshot) => {
            let latest: String = tx
                .prepare_cached(
                    "SELECT i.digest FROM host_snapshots s
                     JOIN inventories i ON i.id = s.inventory_id WHERE s.id = ?1",
                )?
                .query_row([snapshot], |r| r.get(0))?;
            (latest == digest).then_some(snapshot)
        }
        None => None,
    };
    let (snapshot, changed) = match same_snapshot {
        Some(snapshot) => {
            tx.prepare_cached(
                "UPDATE host_snapshots SET last_seen = MAX(last_seen, ?2) WHERE id = ?1",
            )?
            .execute(params![snapshot, finished])?;
            (snapshot, false)
        }
        None => {
            let inventory = find_or_insert_inventory(tx, &digest, &packages)?;
            tx.prepare_cached(
                "INSERT INTO host_snapshots (host_id, inventory_id, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?3)",
            )?
            .execute(params![host.as_str(), inventory, finished])?;
            (tx.last_insert_rowid(), true)
        }
    };
    let effect = if changed {
        ScanEffect::InventoryChanged {
            snapshot: SnapshotId(snapshot),
        }
    } else {
        ScanEffect::InventoryUnchanged {
            snapshot: SnapshotId(snapshot),
        }
    };

    upgradable.sort_by(package_order);
    let upgradable_digest = inventory_digest(&upgradable);
    if current_upgradable.as_deref() != Some(upgradable_digest.as_str()) {
        tx.prepare_cached("DELETE FROM host_upgradable WHERE host_id = ?1")?
            .execute([host.as_str()])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO host_upgradable (host_id, ord, name, version, arch, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (ord, p) in upgradable.iter().enumerate() {
            insert.execute(params![
                host.as_str(),
                count_to_sql(ord),
                p.name,
                p.version,
                p.arch,
                p.source
            ])?;
        }
    }

    tx.prepare_cached(
        "UPDATE hosts SET
             os_id = ?2, os_version_id = ?3, os_codename = ?4, os_pretty_name = ?5,
             kernel = ?6, os_arch = ?7, reboot_required = ?8,
             package_count = ?9, upgradable_count = ?10, upgradable_digest = ?11,
             plugin = ?12, plugin_digest = ?13, snapshot_id = ?14,
             last_attempt_at = ?15, last_status = 'ok', last_error = NULL,
             last_success_at = ?15,
             inventory_changed_at = CASE WHEN ?16 THEN ?15 ELSE inventory_changed_at END
         WHERE id = ?1",
    )?
    .execute(params![
        host.as_str(),
        facts.id,
        facts.version_id,
        facts.codename,
        facts.pretty_name,
        facts.kernel,
        facts.arch,
        facts.reboot_required,
        count_to_sql(packages.len()),
        count_to_sql(upgradable.len()),
        upgradable_digest,
        plugin,
        plugin_digest,
        snapshot,
        finished,
        changed
    ])?;
    let attempt_id = attempt(Some(&plugin), Some(&plugin_digest), Some(snapshot))?;
    Ok(RecordedScan { attempt_id, effect })
}

/// The id of the stored package list with `digest`, storing `packages` (already in
/// [`package_order`]) under it first if no host had it yet.
fn find_or_insert_inventory(
    tx: &Transaction<'_>,
    digest: &str,
    packages: &[Installed],
) -> Result<i64, StoreError> {
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM inventories WHERE digest = ?1")?
        .query_row([digest], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO inventories (digest, package_count) VALUES (?1, ?2)")?
        .execute(params![digest, count_to_sql(packages.len())])?;
    let id = tx.last_insert_rowid();
    let mut insert = tx.prepare_cached(
        "INSERT INTO inventory_packages (inventory_id, ord, name, version, arch, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (ord, p) in packages.iter().enumerate() {
        insert.execute(params![
            id,
            count_to_sql(ord),
            p.name,
            p.version,
            p.arch,
            p.source
        ])?;
    }
    Ok(id)
}

/// The columns [`RawSummary::read`] expects, in order (the OS facts, columns 4 to 10, in the
/// order of [`FACTS_COLUMNS`]).
const SUMMARY_COLUMNS: &str = "id, address, env, scope, os_id, os_version_id, os_codename, \
     os_pretty_name, kernel, os_arch, reboot_required, package_count, upgradable_count, plugin, \
     last_attempt_at, last_status, last_error, last_success_at, inventory_changed_at, \
     (SELECT MAX(c.started_at) FROM host_changes c WHERE c.host_id = hosts.id)";

/// A `hosts` row as stored, before its values are checked.
struct RawSummary {
    id: String,
    address: String,
    env: String,
    scope: String,
    facts: RawFacts,
    package_count: Option<i64>,
    upgradable_count: Option<i64>,
    plugin: Option<String>,
    last_attempt_at: Option<i64>,
    last_status: Option<String>,
    last_error: Option<String>,
    last_success_at: Option<i64>,
    inventory_changed_at: Option<i64>,
    last_change_at: Option<i64>,
}

impl RawSummary {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawSummary {
            id: r.get(0)?,
            address: r.get(1)?,
            env: r.get(2)?,
            scope: r.get(3)?,
            facts: RawFacts::read(r, 4)?,
            package_count: r.get(11)?,
            upgradable_count: r.get(12)?,
            plugin: r.get(13)?,
            last_attempt_at: r.get(14)?,
            last_status: r.get(15)?,
            last_error: r.get(16)?,
            last_success_at: r.get(17)?,
            inventory_changed_at: r.get(18)?,
            last_change_at: r.get(19)?,
        })
    }

    fn into_summary(self) -> Result<HostSummary, StoreError> {
        let id = HostId(self.id);
        let facts = self.facts.into_facts(&id)?;
        let last_status = self
            .last_status
            .map(|s| parse_status(&s, self.last_error))
            .transpose()?;
        Ok(HostSummary {
            env: parse_env(&self.env, &id)?,
            address: self.address,
            scope: self.scope,
            facts,
            package_count: self
                .package_count
                .map(|n| count_from_sql(n, "hosts.package_count"))
                .transpose()?,
            upgradable_count: self
                .upgradable_count
                .map(|n| count_from_sql(n, "hosts.upgradable_count"))
                .transpose()?,
            plugin: self.plugin,
            last_attempt_at: opt_from_ms(self.last_attempt_at, "hosts.last_attempt_at")?,
            last_status,
            last_success_at: opt_from_ms(self.last_success_at, "hosts.last_success_at")?,
            inventory_changed_at: opt_from_ms(
                self.inventory_changed_at,
                "hosts.inventory_changed_at",
            )?,
            last_change_at: opt_from_ms(self.last_change_at, "host_changes.started_at")?,
            id,
        })
    }
}

/// The identity columns of `hosts`, in the order [`RawIdentity::read`] expects.
const IDENTITY_COLUMNS: &str =
    "hosts.id, hosts.address, hosts.port, hosts.env, hosts.scope, hosts.transport";

/// A host's identity as stored in `hosts`, before its values are checked.
struct RawIdentity {
    id: String,
    address: String,
    port: Option<u16>,
    env: String,
    scope: String,
    transport: String,
}

impl RawIdentity {
    /// Read [`IDENTITY_COLUMNS`] starting at column `at`.
    fn read(r: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(RawIdentity {
            id: r.get(at)?,
            address: r.get(at + 1)?,
            port: r.get(at + 2)?,
            env: r.get(at + 3)?,
            scope: r.get(at + 4)?,
            transport: r.get(at + 5)?,
        })
    }

    /// The record, with the host's `tags` (sorted).
    fn into_record(self, tags: Vec<String>) -> Result<HostRecord, StoreError> {
        let id = HostId(self.id);
        Ok(HostRecord {
            env: parse_env(&self.env, &id)?,
            id,
            address: self.address,
            port: self.port,
            scope: self.scope,
            tags,
            transport: self.transport,
        })
    }
}

/// The OS fact columns of `hosts`, in the order [`RawFacts::read`] expects.
const FACTS_COLUMNS: &str = "hosts.os_id, hosts.os_version_id, hosts.os_codename, \
     hosts.os_pretty_name, hosts.kernel, hosts.os_arch, hosts.reboot_required";

/// A host's OS facts as stored (all NULL before its first successful scan).
struct RawFacts {
    os_id: Option<String>,
    os_version_id: Option<String>,
    os_codename: Option<String>,
    os_pretty_name: Option<String>,
    kernel: Option<String>,
    os_arch: Option<String>,
    reboot_required: Option<bool>,
}

impl RawFacts {
    /// Read [`FACTS_COLUMNS`] starting at column `at`.
    fn read(r: &Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(RawFacts {
            os_id: r.get(at)?,
            os_version_id: r.get(at + 1)?,
            os_codename: r.get(at + 2)?,
            os_pretty_name: r.get(at + 3)?,
            kernel: r.get(at + 4)?,
            os_arch: r.get(at + 5)?,
            reboot_required: r.get(at + 6)?,
        })
    }

    /// The facts of `host`: `None` when none were stored, an error when only some were.
    fn into_facts(self, host: &HostId) -> Result<Option<OsFacts>, StoreError> {
        match (
            self.os_id,
            self.os_version_id,
            self.kernel,
            self.os_arch,
            self.reboot_required,
        ) {
            (None, None, None, None, None) => Ok(None),
            (Some(os_id), Some(version_id), Some(kernel), Some(arch), Some(reboot_required)) => {
                Ok(Some(OsFacts {
                    id: os_id,
                    version_id,
                    codename: self.os_codename,
                    pretty_name: self.os_pretty_name,
                    kernel,
                    arch,
                    reboot_required,
                }))
            }
            _ => Err(StoreError::corrupt(format!(
                "host `{host}` has only some of its OS facts"
            ))),
        }
    }
}

/// One row of the [`Store::fleet_hosts`] query, before its values are checked.
struct RawFleetHost {
    identity: RawIdentity,
    facts: RawFacts,
    inventory: Option<i64>,
    last_success_at: Option<i64>,
    last_status: Option<String>,
    last_error: Option<String>,
}

impl RawFleetHost {
    /// Read `IDENTITY_COLUMNS, FACTS_COLUMNS, inventory_id, last_success_at, last_status,
    /// last_error`.
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawFleetHost {
            identity: RawIdentity::read(r, 0)?,
            facts: RawFacts::read(r, 6)?,
            inventory: r.get(13)?,
            last_success_at: r.get(14)?,
            last_status: r.get(15)?,
            last_error: r.get(16)?,
        })
    }

    fn into_fleet_host(self, tags: Vec<String>) -> Result<FleetHost, StoreError> {
        let record = self.identity.into_record(tags)?;
        Ok(FleetHost {
            facts: self.facts.into_facts(&record.id)?,
            inventory: self.inventory.map(InventoryId),
            last_success_at: opt_from_ms(self.last_success_at, "hosts.last_success_at")?,
            status: self
                .last_status
                .map(|s| parse_status(&s, self.last_error))
                .transpose()?,
            record,
        })
    }
}

/// Every host's tags, sorted, by host id.
fn all_tags(tx: &Transaction<'_>) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT host_id, tag FROM host_tags ORDER BY host_id, tag")?;
    let mut rows = stmt.query([])?;
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(row) = rows.next()? {
        tags.entry(row.get(0)?).or_default().push(row.get(1)?);
    }
    Ok(tags)
}

/// The packages of inventory `inventory_id`, in `ord` order.
fn read_packages(tx: &Transaction<'_>, inventory_id: i64) -> Result<Vec<Installed>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT name, version, arch, source FROM inventory_packages
             WHERE inventory_id = ?1 ORDER BY ord",
        )?
        .query_map([inventory_id], read_installed)?
        .collect::<Result<Vec<_>, _>>()?)
}

fn read_installed(r: &Row<'_>) -> rusqlite::Result<Installed> {
    Ok(Installed {
        name: r.get(0)?,
        version: r.get(1)?,
        arch: r.get(2)?,
        source: r.get(3)?,
    })
}

fn parse_env(env: &str, host: &HostId) -> Result<Environment, StoreError> {
    Environment::parse(env)
        .ok_or_else(|| StoreError::corrupt(format!("host `{host}` has env `{env}`")))
}

fn parse_status(word: &str, error: Option<String>) -> Result<ScanStatus, StoreError> {
    let error = error.unwrap_or_default();
    match word {
        "ok" => Ok(ScanStatus::Ok),
        "unreachable" => Ok(ScanStatus::Unreachable { error }),
        "failed" => Ok(ScanStatus::Failed { error }),
        other => Err(StoreError::corrupt(format!("scan status `{other}`"))),
    }
}

fn from_ms(ms: i64, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::corrupt(format!("{what} = {ms} is not a time")))
}

fn opt_from_ms(ms: Option<i64>, what: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|ms| from_ms(ms, what)).transpose()
}

fn count_to_sql(n: usize) -> i64 {
    // A count that does not fit in i64 cannot be held in memory in the first place.
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count_from_sql(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::corrupt(format!("{what} = {n}")))
}
