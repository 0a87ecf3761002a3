//! Shared formatting of host records.

use chrono::{DateTime, Utc};
use patchwave_core::inventory::human_age;
use patchwave_core::{HostSummary, OsFacts};

use crate::term::field;

/// `Debian GNU/Linux 12 (bookworm)` or `debian 12`, or `-`; the host wrote it, so every
/// control character in it is escaped ([`field`]).
pub fn os_label(facts: Option<&OsFacts>) -> String {
    match facts {
        Some(f) => match &f.pretty_name {
            Some(name) => field(name).into_owned(),
            None => field(&format!("{} {}", f.id, f.version_id)).into_owned(),
        },
        None => "-".into(),
    }
}

/// `2026-11-26 07:50:02 UTC (3h 4m ago)` or `never`.
pub fn when(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        Some(t) => format!(
            "{} ({} ago)",
            t.format("%Y-%m-%d %H:%M:%S UTC"),
            human_age(now.signed_duration_since(t))
        ),
        None => "never".into(),
    }
}

/// Short age or `-`.
pub fn age(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    at.map(|t| human_age(now.signed_duration_since(t)))
        .unwrap_or_else(|| "-".into())
}

/// The patch level in words: `fully patched`, `5 upgradable`, `+ reboot required`.
pub fn patch_level(s: &HostSummary) -> String {
    let mut out = match s.upgradable_count {
        None => "unknown".to_string(),
        Some(0) => "fully patched (no upgradable packages)".to_string(),
        Some(n) => format!("{n} package{} upgradable", if n == 1 { "" } else { "s" }),
    };
    if s.facts.as_ref().is_some_and(|f| f.reboot_required) {
        out.push_str(", reboot required");
    }
    out
}
