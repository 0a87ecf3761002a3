//! When a feed may replace what is stored: the trust rules of an import, as pure functions.
//!
//! A feed import is one unit per feed (OSV, KEV, EPSS). Before a unit is stored, the caller
//! asks [`refusals`] (and, for OSV, [`osv_refusals`]) what speaks against it, and
//! [`prune_for`] how far the feed may remove what it does not list:
//!
//! - **Empty**: a document that yields no usable record (a KEV catalogue without entries,
//!   an EPSS file with only its header, an OSV location without records, or one whose
//!   records were all rejected) is refused.
//! - **Shrunk**: a KEV catalogue or EPSS file with fewer than [`SHRINK_PERCENT`] % of the
//!   stored entries is refused. (OSV imports never remove a record, so they cannot shrink.)
//! - **Dated in the future**: a feed date (KEV `dateReleased`, EPSS `score_date`, an OSV
//!   record's `modified`) later than `now` + [`MAX_CLOCK_SKEW`] is refused: once stored it
//!   would make every genuine feed look older.
//! - **Older**: a KEV catalogue or EPSS file dated before the stored one is refused, so an
//!   old mirror cannot tombstone newer entries.
//!
//! Each refusal can be overridden by an operator (`advisories import --force --reason`),
//! which the caller audits. What [`prune_for`] decides is never overridden: a feed with a
//! rejected record never removes what that record would have kept.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::cve::is_cve_id;
use crate::model::Advisory;
use crate::reject::Rejected;

/// How far a feed date may lie beyond `now` before it is refused: one day, for clocks that
/// disagree and feeds published in another time zone.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::days(1);

/// A KEV catalogue or EPSS file with fewer entries than this percentage of the stored ones
/// is refused as shrunk (with 50: fewer than half).
pub const SHRINK_PERCENT: usize = 50;

/// The three advisory feeds, each imported as its own unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedKind {
    /// OSV advisories.
    Osv,
    /// The CISA KEV catalogue.
    Kev,
    /// The FIRST EPSS scores.
    Epss,
}

impl fmt::Display for FeedKind {
    /// `osv`, `kev`, `epss`: the names the CLI prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeedKind::Osv => "osv",
            FeedKind::Kev => "kev",
            FeedKind::Epss => "epss",
        })
    }
}

/// The date and size of a feed that replaces the stored one (KEV, EPSS): of the offered
/// document, or of what the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStamp {
    /// KEV `dateReleased`, EPSS `score_date`.
    pub date: DateTime<Utc>,
    /// Entries: the usable ones of a document, the live ones of the store.
    pub entries: usize,
}

/// Why a feed is not stored unless an operator forces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "refusal")]
pub enum Refusal {
    /// The document (or one OSV location) yields no usable record.
    Empty {
        /// The file or URL.
        location: String,
        /// How many of its records were rejected as malformed.
        rejected: usize,
    },
    /// Fewer than [`SHRINK_PERCENT`] % of the stored entries.
    Shrunk {
        /// Usable entries offered.
        offered: usize,
        /// Entries stored.
        stored: usize,
    },
    /// Dated later than `now` + [`MAX_CLOCK_SKEW`].
    Future {
        /// What carries the date (`dateReleased`, `score_date`, an OSV record id).
        what: String,
        /// The date.
        date: DateTime<Utc>,
        /// The clock it was compared with.
        now: DateTime<Utc>,
    },
    /// Older than the stored feed.
    Older {
        /// The offered feed's date.
        offered: DateTime<Utc>,
        /// The stored feed's date.
        stored: DateTime<Utc>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Empty { location, rejected } => match rejected {
                0 => write!(f, "{location} holds no records"),
                n => write!(f, "{location} holds no usable records ({n} rejected)"),
            },
            Refusal::Shrunk { offered, stored } => write!(
                f,
                "{offered} entries, fewer than {SHRINK_PERCENT}% of the {stored} stored"
            ),
            Refusal::Future { what, date, now } => write!(
                f,
                "{what} {} is later than now ({}) plus {} hours",
                show(*date),
                show(*now),
                MAX_CLOCK_SKEW.num_hours()
            ),
            Refusal::Older { offered, stored } => write!(
                f,
                "dated {}, older than the stored one from {}",
                show(*offered),
                show(*stored)
            ),
        }
    }
}

fn show(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `true` when `date` lies beyond `now` + [`MAX_CLOCK_SKEW`].
fn in_the_future(date: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now.checked_add_signed(MAX_CLOCK_SKEW)
        .is_some_and(|limit| date > limit)
}

/// What speaks against replacing the `stored` feed (`None`: nothing stored yet) with the
/// `offered` document read from `location` with `rejected` malformed records, at `now`.
/// Empty when nothing does.
pub fn refusals(
    location: &str,
    offered: FeedStamp,
    rejected: usize,
    stored: Option<FeedStamp>,
    now: DateTime<Utc>,
    date_field: &str,
) -> Vec<Refusal> {
    let mut out = Vec::new();
    if offered.entries == 0 {
        out.push(Refusal::Empty {
            location: location.to_string(),
            rejected,
        });
    }
    if in_the_future(offered.date, now) {
        out.push(Refusal::Future {
            what: date_field.to_string(),
            date: offered.date,
            now,
        });
    }
    if let Some(stored) = stored {
        // Shrunk: offered < stored × SHRINK_PERCENT / 100, without rounding.
        if offered.entries > 0
            && offered.entries.saturating_mul(100) < stored.entries.saturating_mul(SHRINK_PERCENT)
        {
            out.push(Refusal::Shrunk {
                offered: offered.entries,
                stored: stored.entries,
            });
        }
        if offered.date < stored.date {
            out.push(Refusal::Older {
                offered: offered.date,
                stored: stored.date,
            });
        }
    }
    out
}

/// What one OSV location (a file, directory or URL named by the operator) yielded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsvLocation {
    /// The location as given.
    pub location: String,
    /// Advisories kept from it.
    pub advisories: usize,
    /// Records rejected from it.
    pub rejected: usize,
}

/// What speaks against storing an OSV batch: each of its `locations` that yields no
/// advisory, and each advisory whose `modified` lies beyond `now` + [`MAX_CLOCK_SKEW`] (an
/// advisory stored with a future `modified` would never be updated again).
pub fn osv_refusals(
    locations: &[OsvLocation],
    advisories: &[Advisory],
    now: DateTime<Utc>,
) -> Vec<Refusal> {
    let empty = locations
        .iter()
        .filter(|l| l.advisories == 0)
        .map(|l| Refusal::Empty {
            location: l.location.clone(),
            rejected: l.rejected,
        });
    let future = advisories
        .iter()
        .filter(|a| in_the_future(a.modified, now))
        .map(|a| Refusal::Future {
            what: format!("{} `modified`", a.id),
            date: a.modified,
            now,
        });
    empty.chain(future).collect()
}

/// How far a replacing feed (KEV, EPSS) may remove stored entries it does not list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "prune", content = "keep")]
pub enum Prune {
    /// Every stored entry the feed does not list goes (KEV: becomes a tombstone; EPSS: its
    /// score is deleted). Only for a feed without rejected records.
    Absent,
    /// As [`Prune::Absent`], but these CVEs stay as stored: the ids of rejected records.
    AbsentExcept(BTreeSet<String>),
    /// Nothing is removed; the feed only adds and updates. A record was rejected without a
    /// readable CVE id, so any stored entry could be the one it meant.
    Nothing,
}

impl Prune {
    /// Whether a stored entry for `cve` that the replacing feed does not list is removed
    /// (KEV: tombstoned; EPSS: deleted), rather than kept as stored.
    pub fn removes(&self, cve: &str) -> bool {
        match self {
            Prune::Absent => true,
            Prune::AbsentExcept(keep) => !keep.contains(cve),
            Prune::Nothing => false,
        }
    }
}

/// How far a feed whose rejected records are `rejected` may prune: a rejected record keeps
/// its CVE (its id, when that is a valid CVE id) as stored; one without a valid CVE id
/// keeps everything.
pub fn prune_for(rejected: &[Rejected]) -> Prune {
    if rejected.is_empty() {
        return Prune::Absent;
    }
    let mut keep = BTreeSet::new();
    for r in rejected {
        match r.id.as_deref().map(str::trim) {
            Some(id) if is_cve_id(id) => {
                keep.insert(id.to_string());
            }
            _ => return Prune::Nothing,
        }
    }
    Prune::AbsentExcept(keep)
}

/// Advisories that name an ecosystem patchwave does not know: they are stored but never
/// matched, which an import reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownEcosystem {
    /// The ecosystem, verbatim.
    pub name: String,
    /// The advisories naming it, sorted.
    pub advisories: Vec<String>,
}

/// Every unknown ecosystem named by an affected entry of `advisories`, sorted by name.
pub fn unknown_ecosystems(advisories: &[Advisory]) -> Vec<UnknownEcosystem> {
    let mut by_name: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for advisory in advisories {
        for affected in &advisory.affected {
            if !affected.ecosystem.is_known() {
                by_name
                    .entry(affected.ecosystem.to_string())
                    .or_default()
                    .insert(advisory.id.as_str());
            }
        }
    }
    by_name
        .into_iter()
        .map(|(name, ids)| UnknownEcosystem {
            name,
            advisories: ids.into_iter().map(str::to_string).collect(),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::reject::{Location, Position, RejectReason};

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn stamp(date: DateTime<Utc>, entries: usize) -> FeedStamp {
        FeedStamp { date, entries }
    }

    fn check(offered: FeedStamp, stored: Option<FeedStamp>) -> Vec<Refusal> {
        refusals(
            "kev.json",
            offered,
            0,
            stored,
            at(2025, 3, 21),
            "dateReleased",
        )
    }

    #[test]
    fn a_clean_newer_feed_of_the_same_size_passes() {
        let stored = stamp(at(2025, 3, 14), 1000);
        assert_eq!(check(stamp(at(2025, 3, 20), 1000), Some(stored)), []);
        // The same feed again is harmless.
        assert_eq!(check(stored, Some(stored)), []);
        // Nothing stored: only the document itself is judged.
        assert_eq!(check(stamp(at(2025, 3, 20), 1), None), []);
    }

    #[test]
    fn an_empty_document_is_refused_and_names_its_rejections() {
        let got = refusals(
            "kev.json",
            stamp(at(2025, 3, 20), 0),
            8,
            None,
            at(2025, 3, 21),
            "dateReleased",
        );
        assert_eq!(
            got,
            [Refusal::Empty {
                location: "kev.json".into(),
                rejected: 8
            }]
        );
        assert_eq!(
            got[0].to_string(),
            "kev.json holds no usable records (8 rejected)"
        );
        assert_eq!(
            check(stamp(at(2025, 3, 20), 0), None)[0].to_string(),
            "kev.json holds no records"
        );
    }

    #[test]
    fn fewer_than_half_the_stored_entries_is_shrunk() {
        let stored = Some(stamp(at(2025, 3, 14), 1000));
        assert_eq!(check(stamp(at(2025, 3, 20), 500), stored), []);
        let got = check(stamp(at(2025, 3, 20), 499), stored);
        assert_eq!(
            got,
            [Refusal::Shrunk {
                offered: 499,
                stored: 1000
            }]
        );
        assert_eq!(
            got[0].to_string(),
            "499 entries, fewer than 50% of the 1000 stored"
        );
        // An odd count: 3 of 7 is under half, 4 of 7 is not.
        let seven = Some(stamp(at(2025, 3, 14), 7));
        assert_eq!(check(stamp(at(2025, 3, 20), 3), seven).len(), 1);
        assert_eq!(check(stamp(at(2025, 3, 20), 4), seven), []);
    }

    #[test]
    fn a_date_past_the_clock_skew_is_refused() {
        let now = at(2025, 3, 21);
        let within = now + MAX_CLOCK_SKEW;
        assert_eq!(check(stamp(within, 10), None), []);
        let beyond = within + TimeDelta::seconds(1);
        let got = check(stamp(beyond, 10), None);
        assert_eq!(
            got,
            [Refusal::Future {
                what: "dateReleased".into(),
                date: beyond,
                now
            }]
        );
        assert_eq!(
            got[0].to_string(),
            "dateReleased 2025-03-22T00:00:01Z is later than now (2025-03-21T00:00:00Z) plus \
             24 hours"
        );
        // The far future, and a clock at the end of time, do not overflow.
        assert_eq!(
            refusals(
                "e.csv",
                stamp(DateTime::<Utc>::MAX_UTC, 1),
                0,
                None,
                DateTime::<Utc>::MAX_UTC,
                "score_date"
            ),
            []
        );
    }

    #[test]
    fn an_older_feed_is_refused_with_both_dates() {
        let got = check(
            stamp(at(2025, 3, 14), 1000),
            Some(stamp(at(2025, 3, 20), 1000)),
        );
        assert_eq!(
            got[0].to_string(),
            "dated 2025-03-14T00:00:00Z, older than the stored one from 2025-03-20T00:00:00Z"
        );
    }

    #[test]
    fn every_refusal_is_listed_at_once() {
        let got = check(stamp(at(2099, 1, 1), 0), Some(stamp(at(2100, 1, 1), 1000)));
        assert_eq!(got.len(), 3, "{got:?}");
    }

    fn rejected(id: Option<&str>) -> Rejected {
        Rejected {
            location: Location::new("kev.json", Position::Index(0)),
            id: id.map(str::to_string),
            reason: RejectReason::MissingField {
                field: "dateAdded".into(),
            },
        }
    }

    #[test]
    fn a_rejected_record_keeps_its_cve_and_one_without_an_id_keeps_everything() {
        assert_eq!(prune_for(&[]), Prune::Absent);
        assert_eq!(
            prune_for(&[
                rejected(Some("CVE-2024-0002")),
                rejected(Some(" CVE-2024-0001 "))
            ]),
            Prune::AbsentExcept(["CVE-2024-0001", "CVE-2024-0002"].map(String::from).into())
        );
        assert_eq!(
            prune_for(&[rejected(Some("CVE-2024-0001")), rejected(None)]),
            Prune::Nothing
        );
        // An id that is not a CVE id cannot name the stored entry it meant.
        assert_eq!(
            prune_for(&[rejected(Some("cve-2024-0001"))]),
            Prune::Nothing
        );
    }

    #[test]
    fn a_prune_removes_what_it_does_not_keep() {
        let keep = Prune::AbsentExcept(["CVE-2024-0001".to_string()].into());
        assert!(Prune::Absent.removes("CVE-2024-0001"));
        assert!(!keep.removes("CVE-2024-0001"));
        assert!(keep.removes("CVE-2024-0002"));
        assert!(!Prune::Nothing.removes("CVE-2024-0001"));
    }
}
