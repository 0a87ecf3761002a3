//! What is on a host: facts, packages, and how fresh that knowledge is.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fleet::{Environment, HostId};

/// One installed package as the host's package manager reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Installed {
    /// Package name.
    pub name: String,
    /// Exact installed version, in the ecosystem's own syntax.
    pub version: String,
    /// Architecture (`amd64`, `all`, `x86_64`, `noarch`, ...).
    pub arch: String,
    /// Source package, when known.
    pub source: Option<String>,
}

/// What the operating system says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsFacts {
    /// os-release `ID`.
    pub id: String,
    /// os-release `VERSION_ID`.
    pub version_id: String,
    /// os-release `VERSION_CODENAME`.
    pub codename: Option<String>,
    /// os-release `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// Running kernel release.
    pub kernel: String,
    /// Machine architecture.
    pub arch: String,
    /// A reboot is pending to finish an update.
    pub reboot_required: bool,
}

/// A digest of an inventory that does not depend on the order packages were listed in.
///
/// Two scans with the same digest saw the same packages, so the store can record "seen again"
/// instead of a new snapshot.
pub fn inventory_digest(packages: &[Installed]) -> String {
    let mut sorted: Vec<&Installed> = packages.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for p in sorted {
        for field in [&p.name, &p.version, &p.arch] {
            h.update(field.as_bytes());
            h.update([0u8]);
        }
        h.update(p.source.as_deref().unwrap_or("").as_bytes());
        h.update([b'\n']);
    }
    hex::encode(h.finalize())
}

/// Outcome of the last scan attempt of a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum ScanStatus {
    /// Facts and inventory were read and stored.
    Ok,
    /// The host could not be reached (connection refused, no route, killed mid-scan, ...).
    Unreachable {
        /// The transport's own words.
        error: String,
    },
    /// The host answered but the scan failed (plugin error, denied exec, trap, ...).
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl ScanStatus {
    /// Short word for tables: `ok`, `unreachable`, `failed`.
    pub fn word(&self) -> &'static str {
        match self {
            ScanStatus::Ok => "ok",
            ScanStatus::Unreachable { .. } => "unreachable",
            ScanStatus::Failed { .. } => "failed",
        }
    }

    /// The error message, if the scan did not succeed.
    pub fn error(&self) -> Option<&str> {
        match self {
            ScanStatus::Ok => None,
            ScanStatus::Unreachable { error } | ScanStatus::Failed { error } => Some(error),
        }
    }
}

/// How much to trust a host's stored inventory right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Freshness {
    /// Never scanned successfully: nothing is known.
    Unknown,
    /// Last successful scan is within the allowed age and the latest attempt succeeded.
    Fresh,
    /// Last successful scan is older than the allowed age, or later attempts failed.
    Stale,
    /// A change (apply or rollback) started on the host after its last successful scan:
    /// what is installed may differ from the stored inventory until it is scanned again.
    Changed,
}

impl Freshness {
    /// Judge freshness from the last successful scan, the latest attempt and the clock.
    pub fn judge(
        last_success: Option<DateTime<Utc>>,
        last_attempt_ok: bool,
        now: DateTime<Utc>,
        max_age: Duration,
    ) -> Freshness {
        match last_success {
            None => Freshness::Unknown,
            Some(at) if last_attempt_ok && now.signed_duration_since(at) <= max_age => {
                Freshness::Fresh
            }
            Some(_) => Freshness::Stale,
        }
    }

    /// The word shown to operators.
    pub fn word(self) -> &'static str {
        match self {
            Freshness::Unknown => "UNKNOWN",
            Freshness::Fresh => "fresh",
            Freshness::Stale => "STALE",
            Freshness::Changed => "CHANGED",
        }
    }
}

/// The per-host record answered from the store without touching the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// Host id.
    pub id: HostId,
    /// Where it is reached (address or instance id).
    pub address: String,
    /// prod / non-prod.
    pub env: Environment,
    /// Reporting scope (team, service, ...).
    pub scope: String,
    /// Facts from the last successful scan.
    pub facts: Option<OsFacts>,
    /// Number of installed packages at the last successful scan.
    pub package_count: Option<u64>,
    /// Packages with a newer candidate at the last successful scan (the patch level:
    /// 0 = fully patched against the configured repositories).
    pub upgradable_count: Option<u64>,
    /// The plugin that scanned it.
    pub plugin: Option<String>,
    /// When the last scan attempt finished.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// How the last scan attempt ended.
    pub last_status: Option<ScanStatus>,
    /// When the inventory was last read successfully.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When the stored inventory last changed.
    pub inventory_changed_at: Option<DateTime<Utc>>,
    /// When the latest apply or rollback on the host started (from the change journal).
    pub last_change_at: Option<DateTime<Utc>>,
}

impl HostSummary {
    /// Freshness of this record at `now`: [`Freshness::judge`], except that a fresh record
    /// with a change started after its last successful scan is [`Freshness::Changed`].
    pub fn freshness(&self, now: DateTime<Utc>, max_age: Duration) -> Freshness {
        let last_ok = matches!(self.last_status, Some(ScanStatus::Ok) | None);
        match Freshness::judge(self.last_success_at, last_ok, now, max_age) {
            Freshness::Fresh
                if self
                    .last_change_at
                    .zip(self.last_success_at)
                    .is_some_and(|(change, scan)| change > scan) =>
            {
                Freshness::Changed
            }
            judged => judged,
        }
    }
}

/// Render an age as a short human string: `45s`, `12m`, `3h 4m`, `2d 5h`.
pub fn human_age(age: Duration) -> String {
    let secs = age.num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str) -> Installed {
        Installed {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source: None,
        }
    }

    #[test]
    fn digest_ignores_order_but_not_versions() {
        let a = vec![pkg("a", "1"), pkg("b", "2")];
        let b = vec![pkg("b", "2"), pkg("a", "1")];
        let c = vec![pkg("a", "1"), pkg("b", "3")];
        assert_eq!(inventory_digest(&a), inventory_digest(&b));
        assert_ne!(inventory_digest(&a), inventory_digest(&c));
    }

    #[test]
    fn digest_separates_fields() {
        // "ab"+"c" must not collide with "a"+"bc".
        let a = vec![pkg("ab", "c")];
        let b = vec![pkg("a", "bc")];
        assert_ne!(inventory_digest(&a), inventory_digest(&b));
    }

    #[test]
    fn freshness_rules() {
        let now = Utc::now();
        let day = Duration::hours(24);
        assert_eq!(Freshness::judge(None, true, now, day), Freshness::Unknown);
        assert_eq!(
            Freshness::judge(Some(now - Duration::hours(1)), true, now, day),
            Freshness::Fresh
        );
        assert_eq!(
            Freshness::judge(Some(now - Duration::hours(25)), true, now, day),
            Freshness::Stale
        );
        // A recent success followed by a failed attempt is not green.
        assert_eq!(
            Freshness::judge(Some(now - Duration::hours(1)), false, now, day),
            Freshness::Stale
        );
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(human_age(Duration::seconds(5)), "5s");
        assert_eq!(human_age(Duration::seconds(125)), "2m");
        assert_eq!(human_age(Duration::seconds(3 * 3600 + 240)), "3h 4m");
        assert_eq!(human_age(Duration::seconds(2 * 86_400 + 5 * 3600)), "2d 5h");
    }
}
