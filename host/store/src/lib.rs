//! patchwave's persistent state.
//!
//! [`Store`] is what the engine and the CLI program against (as `Arc<dyn Store>`);
//! [`SqliteStore`] is the embedded default, one file on disk. A PostgreSQL implementation for
//! many runners sharing one database goes beside it, with its own migration list under
//! `migrations/postgres/` numbered like the SQLite one (see [`migrate`]).
//!
//! What is kept about hosts:
//! - identity from the config (`hosts`, `host_tags`), upserted by [`Store::register_hosts`];
//! - the summary `hosts show` prints, in the same `hosts` row, refreshed by every scan;
//! - inventories, stored once per distinct package list (`inventories`,
//!   `inventory_packages`, keyed by [`inventory_digest`]) and referenced by per-host
//!   snapshots (`host_snapshots`: `first_seen` .. `last_seen`), so a daily scan that finds
//!   nothing new writes one row, and a fleet built from one image stores its packages once;
//! - the current upgradable list (`host_upgradable`) and every scan attempt
//!   (`scan_attempts`).
//!
//! [`inventory_digest`]: patchwave_core::inventory::inventory_digest

mod error;
pub mod migrate;
mod model;
mod sqlite;
mod store;

pub use error::StoreError;
pub use model::{
    package_order, ChangeId, ChangeRecord, HostRecord, InventoryView, NewChange, RecordedScan,
    RemovedHost, ScanAttempt, ScanEffect, ScanOutcome, ScanResult, SnapshotId,
};
pub use sqlite::SqliteStore;
pub use store::Store;
