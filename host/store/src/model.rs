//! The values the store takes and gives, beyond the domain types of `patchwave-core`.

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Utc};
use patchwave_advisory::{EpssFeed, FeedStamp, KevCatalog, KevTombstone, Prune, Source};
use patchwave_core::{Environment, HostId, Installed, OsFacts, ScanStatus};

/// A host's identity as the fleet config declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRecord {
    /// Stable id.
    pub id: HostId,
    /// Where it is reached: hostname, IP address or instance id.
    pub address: String,
    /// Port, when the transport uses one and it is not the default.
    pub port: Option<u16>,
    /// prod / non-prod.
    pub env: Environment,
    /// Reporting scope (team, service, ...).
    pub scope: String,
    /// Free-form labels used to select hosts. A set: duplicates are dropped and the store
    /// returns them sorted.
    pub tags: Vec<String>,
    /// Transport kind: `ssh`, `local`, `ssm`, ...
    pub transport: String,
}

/// One scan attempt of one host, as the engine reports it to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOutcome {
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// When it ended; the time the inventory is known to be true at.
    pub finished_at: DateTime<Utc>,
    /// What it found.
    pub result: ScanResult,
}

/// How a scan attempt ended and, on success, what it read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per scan and moved into the store; boxing would only add noise"
)]
pub enum ScanResult {
    /// Facts and inventory were read.
    Ok {
        /// Name of the plugin that scanned.
        plugin: String,
        /// SHA-256 of the plugin's wasm.
        plugin_digest: String,
        /// What the OS says about itself.
        facts: OsFacts,
        /// Every installed package, in any order.
        packages: Vec<Installed>,
        /// Installed packages that have a newer candidate, each with the *candidate* version.
        upgradable: Vec<Installed>,
    },
    /// The host could not be reached.
    Unreachable {
        /// The transport's own words.
        error: String,
    },
    /// The host answered but the scan failed.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl ScanResult {
    /// The status this result leaves on the host.
    pub fn status(&self) -> ScanStatus {
        match self {
            ScanResult::Ok { .. } => ScanStatus::Ok,
            ScanResult::Unreachable { error } => ScanStatus::Unreachable {
                error: error.clone(),
            },
            ScanResult::Failed { error } => ScanStatus::Failed {
                error: error.clone(),
            },
        }
    }
}

/// Identity of one inventory snapshot of one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId(pub i64);

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What [`Store::record_scan`](crate::Store::record_scan) did with an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedScan {
    /// Id of the attempt in the scan history.
    pub attempt_id: i64,
    /// Its effect on the host's stored state.
    pub effect: ScanEffect,
}

/// The effect of one recorded scan attempt on the host's current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanEffect {
    /// A successful scan found a different inventory than the latest snapshot (or the first
    /// one): a new snapshot was started.
    InventoryChanged {
        /// The new snapshot.
        snapshot: SnapshotId,
    },
    /// A successful scan found the same inventory: the latest snapshot was marked seen again.
    InventoryUnchanged {
        /// The snapshot seen again.
        snapshot: SnapshotId,
    },
    /// The attempt failed: only the last attempt and its status changed; the stored
    /// inventory is kept (and is now stale).
    AttemptFailed,
    /// The attempt finished before the host's latest recorded attempt (a late report). It is
    /// in the history but changed nothing else.
    Superseded,
}

/// A host's latest inventory snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryView {
    /// The snapshot.
    pub snapshot_id: SnapshotId,
    /// [`inventory_digest`](patchwave_core::inventory::inventory_digest) of the packages.
    pub digest: String,
    /// When this inventory was first seen on the host (its `first_seen`).
    pub taken_at: DateTime<Utc>,
    /// When a scan last found exactly this inventory.
    pub last_seen: DateTime<Utc>,
    /// The packages, sorted by [`package_order`].
    pub packages: Vec<Installed>,
}

/// One entry of a host's scan history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanAttempt {
    /// Id of the attempt.
    pub id: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub status: ScanStatus,
    /// Plugin that scanned, for successful attempts.
    pub plugin: Option<String>,
    /// Digest of that plugin's wasm, for successful attempts.
    pub plugin_digest: Option<String>,
    /// The snapshot a successful attempt created or saw again (gone if pruned).
    pub snapshot_id: Option<SnapshotId>,
}

/// What [`Store::remove_host`](crate::Store::remove_host) deleted along with the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovedHost {
    /// Inventory snapshots of the host.
    pub snapshots: u64,
    /// Scan attempts in its history.
    pub scan_attempts: u64,
    /// Package lists no other host shared, freed with it.
    pub inventories_freed: u64,
}

/// The order the store keeps packages in: name, then arch, then version, then source
/// (no source first). Inventories come back from the store in this order.
pub fn package_order(a: &Installed, b: &Installed) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| a.arch.cmp(&b.arch))
        .then_with(|| a.version.cmp(&b.version))
        .then_with(|| a.source.cmp(&b.source))
}

/// Identity of one recorded change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeId(pub i64);

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A change about to be attempted on a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChange {
    /// The host.
    pub host: HostId,
    /// Apply or rollback.
    pub kind: patchwave_core::change::ChangeKind,
    /// Plugin carrying it out.
    pub plugin: String,
    /// The request as JSON (changes or rollback steps).
    pub request: String,
    /// What the host has if it took.
    pub expected: Vec<patchwave_core::change::Expected>,
    /// For an apply: the rollback steps planned before it, as JSON.
    pub rollback_plan: Option<String>,
    /// The rollout that makes the change, if one does.
    pub rollout: Option<String>,
    /// For a rollback: the apply it undoes (a change of the same host). `None` for an apply.
    pub undoes: Option<ChangeId>,
    /// When the attempt starts.
    pub started_at: DateTime<Utc>,
}

/// A recorded change and everything known about how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Its id.
    pub id: ChangeId,
    /// The host.
    pub host: HostId,
    /// Apply or rollback.
    pub kind: patchwave_core::change::ChangeKind,
    /// Plugin.
    pub plugin: String,
    /// The request as JSON.
    pub request: String,
    /// What the host has if it took.
    pub expected: Vec<patchwave_core::change::Expected>,
    /// Planned rollback steps (JSON), for applies.
    pub rollback_plan: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When its outcome was recorded.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended as far as the runner could tell.
    pub outcome: patchwave_core::change::ChangeOutcome,
    /// Report or error.
    pub detail: Option<String>,
    /// When a later inventory settled an unknown outcome.
    pub reconciled_at: Option<DateTime<Utc>>,
    /// What that inventory showed.
    pub reconciled: Option<patchwave_core::change::Reconciliation>,
    /// The rollout that made the change, if one did.
    pub rollout: Option<String>,
    /// For a rollback: the apply it undoes.
    pub undoes: Option<ChangeId>,
}

/// Identity of one content-addressed package list (shared by every snapshot, of any host,
/// that holds exactly those packages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InventoryId(pub i64);

/// One host as matching and reporting see it.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetHost {
    /// Identity from the config.
    pub record: HostRecord,
    /// Facts from the last successful scan.
    pub facts: Option<OsFacts>,
    /// The package list of its latest snapshot.
    pub inventory: Option<InventoryId>,
    /// When a scan last succeeded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// How the latest attempt ended (`None`: never attempted).
    pub status: Option<ScanStatus>,
}

/// What [`Store::import_advisories`](crate::Store::import_advisories) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdvisoryImport {
    /// Ids not stored before.
    pub inserted: usize,
    /// Stored records replaced by a newer `modified`.
    pub updated: usize,
    /// Records no newer than the stored ones, left alone.
    pub unchanged: usize,
}

/// What [`Store::import_kev`](crate::Store::import_kev) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KevImport {
    /// CVEs not live before (new, or back from a tombstone).
    pub added: usize,
    /// CVEs live before and now.
    pub kept: usize,
    /// CVEs that disappeared with this catalogue, now tombstones.
    pub removed: Vec<KevTombstone>,
    /// CVEs live before that the catalogue does not list and that stay live anyway, sorted:
    /// the write's [`Prune`] kept them (a rejected entry named them, or one without an id
    /// was rejected).
    pub kept_unlisted: Vec<String>,
}

/// What [`Store::import_epss`](crate::Store::import_epss) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpssImport {
    /// Scores written from the feed.
    pub written: usize,
    /// Stored scores the feed does not list, deleted.
    pub removed: usize,
    /// Stored scores the feed does not list, kept as they were (the write's [`Prune`] kept
    /// them).
    pub kept_unlisted: usize,
}

/// How a KEV or EPSS import writes, as the caller decided with the rules of
/// `patchwave_advisory::feed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedWrite {
    /// The stored feed the decision was made against (`None`: nothing stored). When the
    /// store holds another one, nothing is written ([`StoreError::FeedChanged`]).
    ///
    /// [`StoreError::FeedChanged`]: crate::StoreError::FeedChanged
    pub expected: Option<FeedStamp>,
    /// How far stored entries the feed does not list are removed.
    pub prune: Prune,
}

/// The stored KEV state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KevView {
    /// The live catalogue (`None` before the first import).
    pub catalog: Option<KevCatalog>,
    /// Where it was read from and when.
    pub source: Option<Source>,
    /// Entries that disappeared from the catalogue, kept for the record.
    pub tombstones: Vec<KevTombstone>,
}

/// The stored EPSS feed.
#[derive(Clone, Debug, PartialEq)]
pub struct EpssView {
    /// The scores.
    pub feed: EpssFeed,
    /// Where they were read from and when.
    pub source: Source,
}

/// A rollout as stored: its state (JSON of `patchwave_rollout::Rollout`) and its inbox.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutRecord {
    /// The rollout id.
    pub id: String,
    /// Incremented by every save; pass it back to `save_rollout`.
    pub revision: i64,
    /// The status word saved with the state (for listing without parsing the state).
    pub status: String,
    /// The state.
    pub state: serde_json::Value,
    /// Operator observations posted and not yet consumed: (sequence, observation).
    pub inbox: Vec<(i64, serde_json::Value)>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last saved.
    pub updated_at: DateTime<Utc>,
}

/// One line of `rollout list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutSummaryRow {
    /// The rollout id.
    pub id: String,
    /// The status word.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last saved.
    pub updated_at: DateTime<Utc>,
}
