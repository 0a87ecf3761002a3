//! The [`Store`] trait: everything the engine and the CLI persist or read back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchwave_core::audit::AuditHead;
use patchwave_core::change::{ChangeOutcome, Reconciliation};
use patchwave_core::{HostId, HostSummary, Installed};

use crate::error::StoreError;
use patchwave_advisory::{Advisory, EpssFeed, FeedStamp, KevCatalog, Source};

use crate::model::{
    AdvisoryImport, ChangeId, ChangeRecord, EpssImport, EpssView, FeedWrite, FleetHost, HostRecord,
    InventoryId, InventoryView, KevImport, KevView, NewChange, RecordedScan, RemovedHost,
    RolloutRecord, RolloutSummaryRow, ScanAttempt, ScanOutcome,
};

/// Persistent state of a patchwave installation, shared as `Arc<dyn Store>`.
///
/// Every method is one atomic unit: it either happens completely or not at all, also when the
/// calling future is dropped half-way. Implementations serialize writes that touch the same
/// host (SQLite: one writer; PostgreSQL: a row lock on the host), so concurrent callers never
/// see half a scan.
///
/// Timestamps are kept to the millisecond.
#[async_trait]
pub trait Store: Send + Sync {
    /// Insert or update the identity of many hosts in one transaction (a config sync).
    ///
    /// Updating identity never touches scan state or history. Unchanged hosts are not
    /// rewritten.
    async fn register_hosts(&self, hosts: &[HostRecord]) -> Result<(), StoreError>;

    /// Insert or update one host's identity; see [`Store::register_hosts`].
    async fn register_host(&self, host: &HostRecord) -> Result<(), StoreError> {
        self.register_hosts(std::slice::from_ref(host)).await
    }

    /// A host's identity as last registered.
    async fn host(&self, id: &HostId) -> Result<Option<HostRecord>, StoreError>;

    /// Delete a host together with its snapshots, upgradable list and scan history, and
    /// report how much went with it. `None` when the host was not registered.
    ///
    /// Nothing is kept: registering the same id again starts from nothing. The audit log is
    /// the permanent record of what was done to a host.
    async fn remove_host(&self, id: &HostId) -> Result<Option<RemovedHost>, StoreError>;

    /// Record one scan attempt of a registered host.
    ///
    /// Every attempt lands in the history. A successful one also stores the inventory (a new
    /// snapshot only when it differs from the latest one, else that snapshot is marked seen
    /// again) and refreshes the host's summary, all in one transaction. A failed one only
    /// changes the last attempt, its status and error: the previous inventory stays and reads
    /// as stale. An attempt that finished before the host's latest recorded attempt is kept in
    /// the history only.
    async fn record_scan(
        &self,
        host: &HostId,
        outcome: ScanOutcome,
    ) -> Result<RecordedScan, StoreError>;

    /// The record `hosts show` prints, read without touching the host.
    async fn host_summary(&self, id: &HostId) -> Result<Option<HostSummary>, StoreError>;

    /// Every host's summary, sorted by id.
    async fn list_hosts(&self) -> Result<Vec<HostSummary>, StoreError>;

    /// The latest inventory snapshot of a host; `None` when it never scanned successfully (or
    /// is not registered).
    async fn inventory(&self, id: &HostId) -> Result<Option<InventoryView>, StoreError>;

    /// Packages with a newer candidate (carrying the candidate version) at the host's last
    /// successful scan, sorted like [`InventoryView::packages`]. Empty for an unknown host.
    async fn upgradable(&self, id: &HostId) -> Result<Vec<Installed>, StoreError>;

    /// The host's most recent scan attempts, newest first, at most `limit`.
    async fn scan_history(&self, id: &HostId, limit: u32) -> Result<Vec<ScanAttempt>, StoreError>;

    /// Every installed package named `name` in the latest snapshot of every host, sorted by
    /// host then [`package_order`](crate::package_order). A host with several versions or
    /// architectures of the package appears once for each.
    async fn package_versions(&self, name: &str) -> Result<Vec<(HostId, Installed)>, StoreError>;

    /// Write a change down before it is attempted (outcome `in-progress`).
    async fn begin_change(&self, change: &NewChange) -> Result<ChangeId, StoreError>;

    /// Record how a change ended, with its report or error.
    async fn finish_change(
        &self,
        id: ChangeId,
        outcome: ChangeOutcome,
        detail: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A host's changes whose outcome is not known (`in-progress` or `unknown`) and that no
    /// inventory has settled yet, oldest first.
    async fn unsettled_changes(&self, host: &HostId) -> Result<Vec<ChangeRecord>, StoreError>;

    /// Settle an unknown change from what an inventory showed.
    async fn reconcile_change(
        &self,
        id: ChangeId,
        how: Reconciliation,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A host's most recent changes, newest first, at most `limit`.
    async fn changes(&self, host: &HostId, limit: u32) -> Result<Vec<ChangeRecord>, StoreError>;

    /// Every change rollout `rollout` made on `host`, newest first.
    async fn rollout_changes(
        &self,
        rollout: &str,
        host: &HostId,
    ) -> Result<Vec<ChangeRecord>, StoreError>;

    // ----- Advisories (what is known to be vulnerable) -----

    /// Insert or update advisories in one transaction, each keeping its own
    /// [`Source`](patchwave_advisory::Source) (location and fetch time).
    ///
    /// Keyed by advisory id: a record whose `modified` is newer than the stored one replaces
    /// it; an older or equal one leaves the stored record alone (counted `unchanged`), so
    /// importing an old mirror never rolls an advisory back.
    async fn import_advisories(
        &self,
        advisories: &[Advisory],
    ) -> Result<AdvisoryImport, StoreError>;

    /// Every stored advisory (withdrawn ones included), sorted by id.
    async fn advisories(&self) -> Result<Vec<Advisory>, StoreError>;

    /// One advisory by id.
    async fn advisory(&self, id: &str) -> Result<Option<Advisory>, StoreError>;

    /// Replace the live CISA KEV catalogue with `catalog`, read from `source`, as `write`
    /// says.
    ///
    /// Every entry of `catalog` is live afterwards. A stored live entry it does not list
    /// becomes a tombstone (`removed_at` = the new catalogue's release date, never deleted)
    /// unless `write.prune` keeps it live; an entry that comes back is live again and its
    /// tombstone is cleared. Whether the catalogue may replace the stored one at all (older,
    /// shrunk, future-dated) is the caller's decision, made against
    /// [`Store::kev_stamp`]: when the stored stamp is no longer `write.expected`, nothing is
    /// written and [`StoreError::FeedChanged`] is returned. A catalogue listing one CVE
    /// twice is refused with [`StoreError::InvalidInput`].
    async fn import_kev(
        &self,
        catalog: &KevCatalog,
        source: &Source,
        write: &FeedWrite,
    ) -> Result<KevImport, StoreError>;

    /// The stored KEV catalogue's release date and live entry count (`None` before the
    /// first import).
    async fn kev_stamp(&self) -> Result<Option<FeedStamp>, StoreError>;

    /// The live KEV catalogue (`None` before the first import) and every tombstone.
    async fn kev(&self) -> Result<KevView, StoreError>;

    /// Replace the EPSS scores with `feed`, read from `source`, as `write` says: every row
    /// of `feed` is stored, and a stored score it does not list is deleted unless
    /// `write.prune` keeps it. As for [`Store::import_kev`], the decision is the caller's,
    /// made against [`Store::epss_stamp`] (`write.expected`, else
    /// [`StoreError::FeedChanged`]).
    async fn import_epss(
        &self,
        feed: &EpssFeed,
        source: &Source,
        write: &FeedWrite,
    ) -> Result<EpssImport, StoreError>;

    /// The stored EPSS feed's score date and number of scores (`None` before the first
    /// import).
    async fn epss_stamp(&self) -> Result<Option<FeedStamp>, StoreError>;

    /// The current EPSS feed (`None` before the first import).
    async fn epss(&self) -> Result<Option<EpssView>, StoreError>;

    // ----- The fleet as matching sees it -----

    /// Every registered host with its identity, facts and the content-addressed inventory of
    /// its latest snapshot (`None` before the first successful scan), sorted by id. Hosts
    /// built from one image share an [`InventoryId`], so matching reads each distinct
    /// inventory once.
    async fn fleet_hosts(&self) -> Result<Vec<FleetHost>, StoreError>;

    /// The packages of one inventory, sorted by [`package_order`](crate::package_order).
    async fn inventory_packages(&self, id: InventoryId) -> Result<Vec<Installed>, StoreError>;

    // ----- Rollouts (state owned by `patchwave-rollout`, kept here as JSON) -----

    /// Create a rollout with its first state. Fails with [`StoreError::InvalidInput`] when
    /// the id exists.
    async fn create_rollout(
        &self,
        id: &str,
        status: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// A rollout's latest state and the operator observations posted since it was saved
    /// (oldest first); `None` for an unknown id.
    async fn rollout(&self, id: &str) -> Result<Option<RolloutRecord>, StoreError>;

    /// Save a rollout's next state and mark the inbox consumed up to `consumed` (the highest
    /// inbox sequence the state took into account), in one transaction. `expected_revision`
    /// is the revision that was loaded: when another runner saved in between, nothing is
    /// written and [`StoreError::Conflict`] is returned. Returns the new revision.
    async fn save_rollout(
        &self,
        id: &str,
        expected_revision: i64,
        status: &str,
        state: &serde_json::Value,
        consumed: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Post an operator observation (start, approve, abort, rollback) to a rollout's inbox;
    /// the next tick consumes it. Returns its sequence number.
    async fn post_rollout_observation(
        &self,
        id: &str,
        observation: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Every rollout, newest first.
    async fn rollouts(&self) -> Result<Vec<RolloutSummaryRow>, StoreError>;

    // ----- The audit log's anchor (the head of `<state>/audit.jsonl`, kept apart from it) -----

    /// The audit log's head as last recorded; `None` before the first line was anchored.
    async fn audit_anchor(&self) -> Result<Option<AuditHead>, StoreError>;

    /// Record `head` (the audit log's last line on disk) if it is past the recorded one.
    /// A head at or before it changes nothing (another runner's later line was recorded
    /// first), so the anchor only moves forward. Returns whether it moved. A head with `seq`
    /// 0 or a hash that is not 64 lowercase hex digits is [`StoreError::InvalidInput`].
    async fn advance_audit_anchor(
        &self,
        head: &AuditHead,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Record `head` whatever was recorded before, also an earlier line: an operator
    /// accepting the log as it is (`patchwave audit reanchor`).
    async fn reset_audit_anchor(
        &self,
        head: &AuditHead,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
