//! patchwave's persistent state.
//!
//! [`Store`] is what the engine and the CLI program against (as `Arc<dyn Store>`);
//! [`SqliteStore`] is the embedded default, one file on disk. A PostgreSQL implementation for
//! many runners sharing one database goes beside it, with its own migration list under
//! `migrations/postgres/` numbered like the SQLite one (see [`migrate`]). It reports through
//! the same backend-neutral [`StoreError`] (its driver's error boxed as a [`BackendError`]),
//! calls the same rules (the crate's `rules` module: input checks, which attempt or advisory
//! wins, what a feed replacement keeps) and must pass the same conformance suite
//! (`conformance`, behind the cargo feature of that name, run with
//! `store_conformance_tests!`).
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
//! What is kept about vulnerabilities:
//! - OSV advisories (`advisories`), one per id as JSON beside the columns queries use, the
//!   record with the newest `modified` winning, so importing an old mirror never rolls one
//!   back; `advisory_packages` indexes them by (ecosystem, package);
//! - the CISA KEV catalogue (`kev_catalog`, `kev_entries`), replaced by each import: an
//!   entry that leaves it becomes a tombstone dated by the first release without it and is
//!   never deleted, and one that comes back is live again;
//! - the EPSS scores (`epss_feed`, `epss_scores`), replaced by each import.
//!
//! Whether a KEV or EPSS feed may replace the stored one, and how far it may remove what it
//! does not list, is decided by the caller with the pure rules of `patchwave_advisory::feed`
//! against the stored [`FeedStamp`](patchwave_advisory::FeedStamp); the store writes what it
//! is told ([`FeedWrite`]) and refuses with [`StoreError::FeedChanged`] when the stored feed
//! is no longer the one the decision was made against.
//!
//! What is kept about rollouts (the state machine itself lives in `patchwave-rollout`):
//! - each rollout's state as JSON (`rollouts`), with its status word beside it for listings
//!   and a `revision` incremented by every save. A runner passes back the revision it loaded
//!   ([`Store::save_rollout`]); when another runner saved in between, nothing is written and
//!   [`StoreError::Conflict`] is returned (optimistic concurrency between runners);
//! - an inbox of operator commands (start, approve, abort, rollback) per rollout
//!   (`rollout_inbox`), posted by [`Store::post_rollout_observation`] and marked consumed
//!   by the save whose state took them into account, in the same transaction, so a command
//!   is acted on exactly once even when a runner dies between ticks.
//!
//! [`inventory_digest`]: patchwave_core::inventory::inventory_digest

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
pub mod migrate;
mod model;
mod rules;
mod sqlite;
mod store;

pub use error::{BackendError, StoreError};
pub use model::{
    package_order, AdvisoryImport, ChangeId, ChangeRecord, EpssImport, EpssView, FeedWrite,
    FleetHost, HostRecord, InventoryId, InventoryView, KevImport, KevView, NewChange, RecordedScan,
    RemovedHost, RolloutRecord, RolloutSummaryRow, ScanAttempt, ScanEffect, ScanOutcome,
    ScanResult, SnapshotId,
};
pub use sqlite::SqliteStore;
pub use store::Store;

/// Open (creating and migrating it if needed) the store at `location`, with the backend the
/// location names. A path is a SQLite file ([`SqliteStore::open`]), the only backend so far;
/// a PostgreSQL backend is picked here by its URL.
pub fn open(location: &std::path::Path) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(std::sync::Arc::new(SqliteStore::open(location)?))
}
