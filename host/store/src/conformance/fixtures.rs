//! What the conformance cases build their scenarios from: hosts, scans, feeds and rollout
//! states, the same for every backend. A backend's own tests may use them too.

use chrono::{DateTime, Duration, Utc};
use patchwave_advisory::{
    parse_epss, parse_kev, parse_osv, Advisory, EpssFeed, KevCatalog, Prune, Source,
};
use patchwave_core::audit::AuditHead;
use patchwave_core::{Environment, HostId, Installed, OsFacts};

use crate::{
    EpssImport, FeedWrite, HostRecord, KevImport, ScanOutcome, ScanResult, Store, StoreError,
};

/// The age past which a scan is stale in these cases.
pub const DAY: Duration = Duration::hours(24);

/// Ubuntu's OSV record of USN-6859-1 (openssh).
pub const USN_6859: &[u8] =
    include_bytes!("../../../advisory/tests/data/ubuntu-usn/USN-6859-1.json");
/// Ubuntu's OSV record of USN-6658-1 (libxml2).
pub const USN_6658: &[u8] =
    include_bytes!("../../../advisory/tests/data/ubuntu-usn/USN-6658-1.json");
/// Ubuntu's OSV record of USN-6409-1 (glibc).
pub const USN_6409: &[u8] =
    include_bytes!("../../../advisory/tests/data/ubuntu-usn/USN-6409-1.json");
/// The KEV catalogue of 2025-03-14.
pub const KEV_0314: &[u8] =
    include_bytes!("../../../advisory/tests/data/kev/catalog-2025.03.14.json");
/// The KEV catalogue of 2025-03-20.
pub const KEV_0320: &[u8] =
    include_bytes!("../../../advisory/tests/data/kev/catalog-2025.03.20.json");
/// The EPSS scores of 2025-03-15.
pub const EPSS_0315: &[u8] =
    include_bytes!("../../../advisory/tests/data/epss/epss_scores-2025-03-15.csv");

/// `minutes` after a fixed instant, in whole milliseconds (the store keeps time to the
/// millisecond).
pub fn t(minutes: i64) -> DateTime<Utc> {
    // Whole milliseconds: the store keeps time to the millisecond.
    DateTime::from_timestamp_millis(1_750_000_000_000 + minutes * 60_000).unwrap()
}

/// A production SSH host `id` in scope `payments`, tagged `web` and `eu` (unsorted).
pub fn host(id: &str) -> HostRecord {
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

/// An `amd64` package without a source package.
pub fn pkg(name: &str, version: &str) -> Installed {
    Installed {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source: None,
    }
}

/// The OS facts of a Debian 12 host.
pub fn facts() -> OsFacts {
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

/// A successful scan finished at minute `minute` (started a minute before).
pub fn ok_at(minute: i64, packages: Vec<Installed>, upgradable: Vec<Installed>) -> ScanOutcome {
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

/// An unreachable attempt finished at minute `minute`.
pub fn unreachable_at(minute: i64, error: &str) -> ScanOutcome {
    ScanOutcome {
        started_at: t(minute - 1),
        finished_at: t(minute),
        result: ScanResult::Unreachable {
            error: error.into(),
        },
    }
}

/// Three packages, not in package order.
pub fn base_packages() -> Vec<Installed> {
    vec![
        pkg("openssl", "3.0.11-1"),
        pkg("bash", "5.2.15-2"),
        pkg("zlib1g", "1:1.2.13"),
    ]
}

/// An RFC 3339 time.
pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// A source of kind `kind` at `location`, fetched at `t(0)`.
pub fn source(kind: &str, location: &str) -> Source {
    Source {
        kind: kind.into(),
        location: location.into(),
        fetched_at: t(0),
    }
}

/// The one advisory of an OSV document.
pub fn usn(document: &[u8]) -> Advisory {
    let (mut advisories, rejected) =
        parse_osv(document, &source("ubuntu-usn", "ubuntu-usn/osv")).unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(advisories.len(), 1);
    advisories.remove(0)
}

/// A write prepared as the engine prepares it: against the stored stamp read just now.
pub async fn kev_write(store: &dyn Store, prune: Prune) -> FeedWrite {
    FeedWrite {
        expected: store.kev_stamp().await.unwrap(),
        prune,
    }
}

/// See [`kev_write`].
pub async fn epss_write(store: &dyn Store, prune: Prune) -> FeedWrite {
    FeedWrite {
        expected: store.epss_stamp().await.unwrap(),
        prune,
    }
}

/// Import `catalog` as a clean catalogue (nothing rejected).
pub async fn import_kev(
    store: &dyn Store,
    catalog: &KevCatalog,
    src: &Source,
) -> Result<KevImport, StoreError> {
    let write = kev_write(store, Prune::Absent).await;
    store.import_kev(catalog, src, &write).await
}

/// Import `feed` as a clean feed (nothing rejected).
pub async fn import_epss(
    store: &dyn Store,
    feed: &EpssFeed,
    src: &Source,
) -> Result<EpssImport, StoreError> {
    let write = epss_write(store, Prune::Absent).await;
    store.import_epss(feed, src, &write).await
}

/// The catalogue of a KEV document.
pub fn kev_catalog(document: &[u8]) -> KevCatalog {
    parse_kev(document, "known_exploited_vulnerabilities.json")
        .unwrap()
        .0
}

/// The CVE ids of a catalogue, in its order.
pub fn cve_ids(catalog: &KevCatalog) -> Vec<&str> {
    catalog.entries.iter().map(|e| e.cve_id.as_str()).collect()
}

/// The EPSS feed of 2025-03-15 (four scores).
pub fn epss_feed() -> EpssFeed {
    parse_epss(EPSS_0315, "epss_scores-2025-03-15.csv")
        .unwrap()
        .0
}

/// [`host`] as the store gives it back: its tags sorted.
pub fn recorded(id: &str) -> HostRecord {
    let mut record = host(id);
    record.tags.sort();
    record
}

/// A rollout state at `stage` with the stages `done`, with text that needs escaping.
pub fn rollout_state(stage: &str, done: &[&str]) -> serde_json::Value {
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

/// An operator approving `stage`.
pub fn approve(stage: &str) -> serde_json::Value {
    serde_json::json!({"approve": {"stage": stage, "by": "alice"}})
}

/// An audit log head at line `seq` whose hash is `fill` 64 times.
pub fn head(seq: u64, fill: char) -> AuditHead {
    AuditHead {
        seq,
        hash: fill.to_string().repeat(64),
    }
}
