//! The store's own rules, the same on every backend: what input it refuses, which of two scan
//! attempts or advisory records wins, what replacing the KEV catalogue or the EPSS scores
//! keeps, and how a lost race between runners is reported.
//!
//! A backend reads what a rule needs inside its transaction, calls the rule, and writes what
//! it decided, so SQLite and PostgreSQL agree on every verdict and every message (the
//! conformance suite checks both). Times are compared to the millisecond, as they are kept.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use patchwave_advisory::{
    kev_removed, Advisory, EpssFeed, FeedStamp, KevCatalog, KevTombstone, Prune,
};
use patchwave_core::audit::AuditHead;
use patchwave_core::change::ChangeKind;

use crate::error::StoreError;
use crate::model::{FeedWrite, HostRecord, KevImport, NewChange};

/// `t` to the millisecond, as every backend keeps it.
fn to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    // Whole milliseconds of a valid time are a valid time; keep `t` should chrono disagree.
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Refuse a host without an id.
pub(crate) fn check_host_ids(hosts: &[HostRecord]) -> Result<(), StoreError> {
    if hosts.iter().any(|h| h.id.as_str().is_empty()) {
        return Err(StoreError::InvalidInput {
            what: "a host id is empty".into(),
        });
    }
    Ok(())
}

/// Refuse a change whose link to the apply it undoes is wrong: only a rollback names one,
/// and it must be a recorded apply of the same host. `undone` is the named change's host and
/// kind (`apply`/`rollback`) as stored, `None` when there is no such change.
pub(crate) fn check_undoes(
    change: &NewChange,
    undone: Option<(&str, &str)>,
) -> Result<(), StoreError> {
    let Some(id) = change.undoes else {
        return Ok(());
    };
    let what = match (change.kind, undone) {
        (ChangeKind::Apply, _) => format!("an apply on {} cannot undo change {id}", change.host),
        (_, None) => format!(
            "a rollback on {} undoes change {id}, which is not recorded",
            change.host
        ),
        (_, Some((host, _))) if host != change.host.as_str() => format!(
            "a rollback on {} undoes change {id}, which was made on {host}",
            change.host
        ),
        (_, Some((_, kind))) if kind != ChangeKind::Apply.as_str() => format!(
            "a rollback on {} undoes change {id}, which is a {kind}, not an apply",
            change.host
        ),
        _ => return Ok(()),
    };
    Err(StoreError::InvalidInput { what })
}

/// Whether an attempt that finished at `finished` came after the host's latest recorded
/// attempt (`last`) had already finished: then it only goes into the history.
pub(crate) fn attempt_is_superseded(last: Option<DateTime<Utc>>, finished: DateTime<Utc>) -> bool {
    last.is_some_and(|last| to_ms(finished) < to_ms(last))
}

/// Refuse an advisory without an id.
pub(crate) fn check_advisory(advisory: &Advisory) -> Result<(), StoreError> {
    if advisory.id.is_empty() {
        return Err(StoreError::InvalidInput {
            what: format!(
                "an advisory from {} has an empty id",
                advisory.source.location
            ),
        });
    }
    Ok(())
}

/// Whether a record modified at `incoming` replaces the stored one modified at `stored`: only
/// a strictly newer one does, so importing an old mirror never rolls an advisory back.
pub(crate) fn advisory_replaces(stored: DateTime<Utc>, incoming: DateTime<Utc>) -> bool {
    to_ms(incoming) > to_ms(stored)
}

/// Refuse a catalogue that names one CVE twice: the store keeps one entry per CVE.
pub(crate) fn check_kev(catalog: &KevCatalog) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    match catalog
        .entries
        .iter()
        .find(|e| !seen.insert(e.cve_id.as_str()))
    {
        Some(twice) => Err(StoreError::InvalidInput {
            what: format!(
                "KEV catalogue {} lists {} twice",
                catalog.catalog_version, twice.cve_id
            ),
        }),
        None => Ok(()),
    }
}

/// What replacing the live KEV catalogue with `catalog` (which passed [`check_kev`]) does,
/// given every CVE the store knows (`true`: live, `false`: a tombstone) and `prune`:
/// - a live CVE it does not list becomes a tombstone dated by its release (to the
///   millisecond) unless `prune` keeps it (`kept_unlisted`, sorted);
/// - a listed CVE live before is `kept`; any other, new or back from a tombstone, `added`.
pub(crate) fn plan_kev(
    known: &HashMap<String, bool>,
    catalog: &KevCatalog,
    prune: &Prune,
) -> KevImport {
    let listed: HashSet<&str> = catalog.entries.iter().map(|e| e.cve_id.as_str()).collect();
    let (prunable, kept_unlisted): (Vec<&str>, Vec<&str>) = known
        .iter()
        .filter(|(id, live)| **live && !listed.contains(id.as_str()))
        .map(|(id, _)| id.as_str())
        .partition(|id| prune.removes(id));
    let removed_at = to_ms(catalog.date_released);
    let removed = kev_removed(prunable, catalog)
        .into_iter()
        .map(|t| KevTombstone { removed_at, ..t })
        .collect();
    let mut kept_unlisted: Vec<String> = kept_unlisted.into_iter().map(String::from).collect();
    kept_unlisted.sort();
    let kept = catalog
        .entries
        .iter()
        .filter(|e| known.get(&e.cve_id) == Some(&true))
        .count();
    KevImport {
        added: catalog.entries.len() - kept,
        kept,
        removed,
        kept_unlisted,
    }
}

/// Refuse a feed the store cannot hold: a CVE scored twice, or a score or percentile that is
/// not a probability.
pub(crate) fn check_epss(feed: &EpssFeed) -> Result<(), StoreError> {
    let invalid = |what: String| Err(StoreError::InvalidInput { what });
    let mut seen = HashSet::new();
    for row in &feed.rows {
        if !seen.insert(row.cve.as_str()) {
            return invalid(format!(
                "EPSS feed {} scores {} twice",
                feed.model_version, row.cve
            ));
        }
        for (field, value) in [("score", row.epss), ("percentile", row.percentile)] {
            if !(0.0..=1.0).contains(&value) {
                return invalid(format!(
                    "EPSS {field} of {} is {value}, not a probability in [0, 1]",
                    row.cve
                ));
            }
        }
    }
    Ok(())
}

/// Of the stored scores' CVEs (`stored`, in stored order), those that stay when `feed`
/// replaces them under `prune` (in stored order), and how many are deleted.
pub(crate) fn epss_kept<'a>(
    stored: &'a [String],
    feed: &EpssFeed,
    prune: &Prune,
) -> (Vec<&'a str>, usize) {
    let listed: HashSet<&str> = feed.rows.iter().map(|r| r.cve.as_str()).collect();
    let (removed, kept): (Vec<&str>, Vec<&str>) = stored
        .iter()
        .map(String::as_str)
        .filter(|cve| !listed.contains(cve))
        .partition(|cve| prune.removes(cve));
    (kept, removed.len())
}

/// [`StoreError::FeedChanged`] unless the stored stamp `found` of `feed` (`KEV catalogue`,
/// `EPSS feed`) is the one `write` was prepared against.
pub(crate) fn expect_stamp(
    feed: &str,
    write: &FeedWrite,
    found: Option<FeedStamp>,
) -> Result<(), StoreError> {
    if write.expected == found {
        return Ok(());
    }
    let show = |stamp: Option<FeedStamp>| match stamp {
        None => "nothing stored".to_string(),
        Some(s) => format!(
            "{} with {} entries",
            s.date.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            s.entries
        ),
    };
    Err(StoreError::FeedChanged {
        feed: feed.to_string(),
        expected: show(write.expected),
        found: show(found),
    })
}

/// Refuse a rollout write with an empty id or status.
pub(crate) fn check_rollout(id: &str, status: &str) -> Result<(), StoreError> {
    if id.is_empty() {
        return Err(StoreError::InvalidInput {
            what: "a rollout id is empty".into(),
        });
    }
    if status.is_empty() {
        return Err(StoreError::InvalidInput {
            what: format!("rollout `{id}` is saved with an empty status"),
        });
    }
    Ok(())
}

/// [`StoreError::Conflict`] unless rollout `id` is still at the revision its saver loaded.
pub(crate) fn expect_revision(id: &str, expected: i64, found: i64) -> Result<(), StoreError> {
    if found == expected {
        return Ok(());
    }
    Err(StoreError::Conflict {
        what: format!("rollout {id}"),
        expected,
        found,
    })
}

/// The `seq` of a head an audit log line can have, as the 64-bit integer databases hold;
/// refuses `seq` 0 (an empty log has nothing to anchor) or beyond, and a hash that is not 64
/// lowercase hex digits.
pub(crate) fn check_audit_head(head: &AuditHead) -> Result<i64, StoreError> {
    let seq = i64::try_from(head.seq)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| StoreError::InvalidInput {
            what: format!("audit anchor seq {} is not a line number", head.seq),
        })?;
    if head.hash.len() != 64
        || !head
            .hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(StoreError::InvalidInput {
            what: format!(
                "audit anchor hash `{}` is not 64 lowercase hex digits",
                head.hash
            ),
        });
    }
    Ok(seq)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_750_000_000_000 + ms).unwrap()
    }

    #[test]
    fn only_an_attempt_that_finished_earlier_is_superseded() {
        assert!(!attempt_is_superseded(None, at(0)));
        assert!(attempt_is_superseded(Some(at(1)), at(0)));
        assert!(!attempt_is_superseded(Some(at(1)), at(1)));
        // Below the millisecond, two attempts finished at the same time.
        let later_by_a_microsecond = at(1) + chrono::Duration::microseconds(1);
        assert!(!attempt_is_superseded(Some(later_by_a_microsecond), at(1)));
    }

    #[test]
    fn only_a_strictly_newer_advisory_replaces() {
        assert!(advisory_replaces(at(0), at(1)));
        assert!(!advisory_replaces(at(1), at(1)));
        assert!(!advisory_replaces(at(1), at(0)));
    }
}
