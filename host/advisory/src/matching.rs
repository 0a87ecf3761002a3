//! Matching installed versions against advisories, in two phases so that version
//! comparisons can be batched through a plugin.
//!
//! 1. Build an [`AdvisoryIndex`] once. For each DISTINCT [`PackageQuery`] in the fleet
//!    (ecosystems, package name, version), [`AdvisoryIndex::pairs_needed`] lists every
//!    version pair whose order the evaluation may need. The caller merges the pairs of all
//!    queries (a [`VersionPair`] is canonical, so `(a, b)` and `(b, a)` are one pair), asks
//!    the plugin of each [`crate::VersionFamily`] once, and loads the answers into a
//!    [`PrecomputedOrder`].
//! 2. [`AdvisoryIndex::evaluate`] runs the OSV evaluation with that order and returns the
//!    matches, each saying which advisory, which affected entry and which range (or the
//!    `versions` list) matched, and the `fixed` version that ends that range.
//!
//! # Evaluation
//!
//! As the OSV schema's `IsVulnerable`: only `ECOSYSTEM` ranges are used. A range applies
//! when the version is below one of its `limit` events (none, or a limit containing `*`,
//! means no limit). Its events are sorted by version (`introduced: "0"` before everything;
//! on equal versions `introduced` sorts first, so `introduced X, fixed X` is empty and
//! `introduced X, last_affected X` holds exactly X) and the version is affected when the
//! last event it has reached is an `introduced` one (it has reached `introduced X` and
//! `fixed X` when `v >= X`, `last_affected X` when `v > X`). This is the schema's loop over
//! sorted events, computed without sorting: only the events around the version are
//! compared. The range's end is the first `fixed` or `last_affected` event after the
//! version.
//!
//! An entry also matches when its `versions` list holds the version exactly (string
//! equality, as the schema's `IncludedInVersions`); such a match reports as its fix the
//! lowest `fixed` event of the entry's ranges above the version, if any. A `versions` hit
//! is reported only when no range of the entry matched.
//!
//! A comparison the order cannot answer (an invalid version, or a pair that was not
//! precomputed) makes that range a [`MatchError`], never a panic and never a silent miss.
//! Withdrawn advisories and entries of [`Ecosystem::Other`] are never indexed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rustc_hash::FxHashMap;

use patchwave_core::Installed;
use serde::{Deserialize, Serialize};

use crate::classify::Evidence;
use crate::ecosystem::{Ecosystem, PackageNaming};
use crate::model::{Advisory, Affected, Event, Range, RangeKind};

/// An ordering of versions of one ecosystem family, as the plugin's `compare-versions`
/// answers it. An error names the version that cannot be ordered.
pub trait VersionOrder {
    /// How `a` compares to `b`.
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, String>;
}

impl<F> VersionOrder for F
where
    F: Fn(&str, &str) -> Result<Ordering, String>,
{
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, String> {
        self(a, b)
    }
}

/// Two distinct version strings whose order is needed, in canonical order (`a < b` as
/// strings), so that a set of pairs has no mirrored duplicates.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VersionPair {
    /// The string that sorts first byte-wise.
    pub a: String,
    /// The other string.
    pub b: String,
}

impl VersionPair {
    /// The canonical pair of `x` and `y`; `None` when they are the same string (equal
    /// strings are equal versions and need no comparison).
    pub fn new(x: &str, y: &str) -> Option<VersionPair> {
        let (a, b) = match x.cmp(y) {
            Ordering::Equal => return None,
            Ordering::Less => (x, y),
            Ordering::Greater => (y, x),
        };
        Some(VersionPair {
            a: a.to_string(),
            b: b.to_string(),
        })
    }
}

/// A [`VersionOrder`] answered from a batch of precomputed comparisons.
///
/// Load it with the plugin's answers: each answer is the order of `pair.a` relative to
/// `pair.b`. Asking for a pair in either direction works; asking for a pair that was not
/// loaded is an error naming both versions.
#[derive(Clone, Debug, Default)]
pub struct PrecomputedOrder {
    answers: FxHashMap<String, FxHashMap<String, Result<Ordering, String>>>,
    len: usize,
}

impl PrecomputedOrder {
    /// An empty order.
    pub fn new() -> PrecomputedOrder {
        PrecomputedOrder::default()
    }

    /// Record the answer for `pair`: `Ok(order of pair.a relative to pair.b)`, or the
    /// plugin's error for that pair.
    pub fn insert(&mut self, pair: VersionPair, answer: Result<Ordering, String>) {
        let previous = self
            .answers
            .entry(pair.a)
            .or_default()
            .insert(pair.b, answer);
        if previous.is_none() {
            self.len += 1;
        }
    }

    /// How many pairs are loaded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when no pair is loaded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl FromIterator<(VersionPair, Result<Ordering, String>)> for PrecomputedOrder {
    fn from_iter<I: IntoIterator<Item = (VersionPair, Result<Ordering, String>)>>(
        iter: I,
    ) -> PrecomputedOrder {
        let mut order = PrecomputedOrder::new();
        for (pair, answer) in iter {
            order.insert(pair, answer);
        }
        order
    }
}

impl VersionOrder for PrecomputedOrder {
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, String> {
        let (lo, hi, flipped) = match a.cmp(b) {
            Ordering::Equal => return Ok(Ordering::Equal),
            Ordering::Less => (a, b, false),
            Ordering::Greater => (b, a, true),
        };
        match self.answers.get(lo).and_then(|m| m.get(hi)) {
            Some(Ok(o)) if flipped => Ok(o.reverse()),
            Some(Ok(o)) => Ok(*o),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!(
                "`{a}` and `{b}` were not compared (the pair was not in pairs_needed)"
            )),
        }
    }
}

/// One package name to look up in one ecosystem.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Lookup {
    /// The ecosystem.
    pub ecosystem: Ecosystem,
    /// The package name its records use (a source package for Debian and Ubuntu).
    pub package: String,
}

/// What to match: one installed version, looked up under each ecosystem that applies to
/// the host. Distinct queries are the unit of work: hosts with the same release, Pro
/// status, package and version share one. Usable as a map key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageQuery {
    /// The installed version.
    pub version: String,
    /// Where to look it up.
    pub lookups: Vec<Lookup>,
}

impl PackageQuery {
    /// A query for one package name in one ecosystem.
    pub fn new(ecosystem: Ecosystem, package: &str, version: &str) -> PackageQuery {
        PackageQuery {
            version: version.to_string(),
            lookups: vec![Lookup {
                ecosystem,
                package: package.to_string(),
            }],
        }
    }
}

/// Where an installed version was found affected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Hit {
    /// Inside an `ECOSYSTEM` range.
    Range {
        /// Index in the entry's `ranges`.
        range_index: usize,
        /// The `introduced` event that opened the range containing the version.
        introduced: String,
        /// What ends it.
        end: RangeEnd,
    },
    /// Listed in the entry's `versions`.
    Versions,
}

/// What ends the range containing a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "version")]
pub enum RangeEnd {
    /// `fixed`: the first version that is not affected.
    Fixed(String),
    /// `last_affected`: the last affected version; no fixed version is named.
    LastAffected(String),
    /// Nothing: no fix yet.
    Open,
}

/// One advisory entry that an installed version matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    /// The advisory id.
    pub advisory: String,
    /// The ecosystem of the matched entry.
    pub ecosystem: Ecosystem,
    /// The package name of the matched entry.
    pub package: String,
    /// Index of the entry in the advisory's `affected`.
    pub affected_index: usize,
    /// The range or list that matched.
    pub hit: Hit,
    /// The version that fixes this match: the `fixed` ending the range, or for a
    /// `versions` hit the lowest `fixed` above the version. `None`: no fix known.
    pub fixed: Option<String>,
}

impl Match {
    /// One line for `findings explain`, e.g. ``USN-6793-1 affected[1] (Ubuntu:22.04:LTS git):
    /// 1:2.34.1-1ubuntu1.10 is in ranges[0] [introduced 0, fixed 1:2.34.1-1ubuntu1.11)``.
    pub fn explain(&self, version: &str) -> String {
        let head = format!(
            "{} affected[{}] ({} {}): {version}",
            self.advisory, self.affected_index, self.ecosystem, self.package
        );
        match &self.hit {
            Hit::Range {
                range_index,
                introduced,
                end,
            } => {
                let end = match end {
                    RangeEnd::Fixed(f) => format!("fixed {f})"),
                    RangeEnd::LastAffected(l) => format!("last_affected {l}]"),
                    RangeEnd::Open => "no fix yet)".to_string(),
                };
                format!("{head} is in ranges[{range_index}] [introduced {introduced}, {end}")
            }
            Hit::Versions => match &self.fixed {
                Some(f) => format!("{head} is listed in versions; fixed in {f}"),
                None => format!("{head} is listed in versions; no fix known"),
            },
        }
    }
}

/// A comparison the order could not answer, which leaves one range (or one `versions`
/// hit's fix) undecided.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub struct MatchError {
    /// The advisory id.
    pub advisory: String,
    /// The entry's ecosystem.
    pub ecosystem: Ecosystem,
    /// The entry's package name.
    pub package: String,
    /// Index of the entry in `affected`.
    pub affected_index: usize,
    /// The range, or `None` for the fix of a `versions` hit.
    pub range_index: Option<usize>,
    /// One version of the pair.
    pub a: String,
    /// The other.
    pub b: String,
    /// The order's message.
    pub reason: String,
}

impl fmt::Display for MatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} affected[{}] ({} {})",
            self.advisory, self.affected_index, self.ecosystem, self.package
        )?;
        if let Some(r) = self.range_index {
            write!(f, " ranges[{r}]")?;
        }
        write!(
            f,
            ": cannot order `{}` and `{}`: {}",
            self.a, self.b, self.reason
        )
    }
}

/// The result of evaluating one query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Every match, sorted by advisory id, entry and range.
    pub matches: Vec<Match>,
    /// Every range that could not be decided.
    pub errors: Vec<MatchError>,
}

/// Advisories indexed by (ecosystem, package name).
#[derive(Clone, Debug, Default)]
pub struct AdvisoryIndex {
    advisories: Vec<Advisory>,
    by_id: FxHashMap<String, usize>,
    entries: FxHashMap<Ecosystem, FxHashMap<String, Vec<EntryRef>>>,
    binary_sources: FxHashMap<Ecosystem, FxHashMap<String, String>>,
}

#[derive(Clone, Copy, Debug)]
struct EntryRef {
    advisory: usize,
    affected: usize,
}

/// A comparison that failed.
struct Unordered {
    a: String,
    b: String,
    reason: String,
}

impl AdvisoryIndex {
    /// Index `advisories`. When an id appears more than once, the one with the latest
    /// `modified` is kept (the first on a tie). Withdrawn advisories are kept (see
    /// [`AdvisoryIndex::get`]) but not indexed for matching; so are entries whose
    /// ecosystem is [`Ecosystem::Other`].
    pub fn new(advisories: impl IntoIterator<Item = Advisory>) -> AdvisoryIndex {
        let mut index = AdvisoryIndex::default();
        for advisory in advisories {
            index.add(advisory);
        }
        index.build_entries();
        index
    }

    fn add(&mut self, advisory: Advisory) {
        match self.by_id.get(&advisory.id) {
            Some(&i) => {
                if let Some(slot) = self.advisories.get_mut(i) {
                    if advisory.modified > slot.modified {
                        *slot = advisory;
                    }
                }
            }
            None => {
                self.by_id
                    .insert(advisory.id.clone(), self.advisories.len());
                self.advisories.push(advisory);
            }
        }
    }

    fn build_entries(&mut self) {
        for (ai, advisory) in self.advisories.iter().enumerate() {
            if advisory.is_withdrawn() {
                continue;
            }
            for (ei, entry) in advisory.affected.iter().enumerate() {
                if !entry.ecosystem.is_known() {
                    continue;
                }
                self.entries
                    .entry(entry.ecosystem.clone())
                    .or_default()
                    .entry(entry.package.clone())
                    .or_default()
                    .push(EntryRef {
                        advisory: ai,
                        affected: ei,
                    });
                let sources = self
                    .binary_sources
                    .entry(entry.ecosystem.clone())
                    .or_default();
                for binary in &entry.binaries {
                    sources
                        .entry(binary.name.clone())
                        .or_insert_with(|| entry.package.clone());
                }
            }
        }
    }

    /// How many advisories are held (withdrawn ones included).
    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    /// `true` when no advisory is held.
    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// Every advisory held, withdrawn ones included.
    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    /// The advisory with this id.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        self.by_id.get(id).and_then(|&i| self.advisories.get(i))
    }

    /// The name to look an installed package up by in `ecosystem` (see
    /// [`PackageNaming`]). For source-named ecosystems: the installed source package; when
    /// the source is unknown, the source that an indexed record lists this binary under
    /// (Ubuntu's `binaries`); else the binary name itself.
    pub fn lookup_name<'a>(&'a self, ecosystem: &Ecosystem, installed: &'a Installed) -> &'a str {
        if ecosystem.package_naming() == PackageNaming::Binary {
            return &installed.name;
        }
        if let Some(source) = installed.source.as_deref().filter(|s| !s.is_empty()) {
            return source;
        }
        self.binary_sources
            .get(ecosystem)
            .and_then(|m| m.get(&installed.name))
            .map_or(installed.name.as_str(), String::as_str)
    }

    /// The query for an installed package on a host to which `ecosystems` apply.
    pub fn query(&self, ecosystems: &[Ecosystem], installed: &Installed) -> PackageQuery {
        PackageQuery {
            version: installed.version.clone(),
            lookups: ecosystems
                .iter()
                .map(|e| Lookup {
                    ecosystem: e.clone(),
                    package: self.lookup_name(e, installed).to_string(),
                })
                .collect(),
        }
    }

    fn candidates<'s>(
        &'s self,
        query: &'s PackageQuery,
    ) -> impl Iterator<Item = (&'s Advisory, usize, &'s Affected)> + 's {
        query
            .lookups
            .iter()
            .filter_map(|l| self.entries.get(&l.ecosystem)?.get(&l.package))
            .flatten()
            .filter_map(|r| {
                let advisory = self.advisories.get(r.advisory)?;
                Some((advisory, r.affected, advisory.affected.get(r.affected)?))
            })
    }

    /// Every version pair [`AdvisoryIndex::evaluate`] may compare for `query`, sorted and
    /// without duplicates: [`pairs_for_version`](Self::pairs_for_version),
    /// [`pairs_within_ranges`](Self::pairs_within_ranges) and every pair of `fixed`
    /// versions of the candidates (a superset of what
    /// [`pairs_among_fixes`](Self::pairs_among_fixes) asks for, usable in one round).
    pub fn pairs_needed(&self, query: &PackageQuery) -> Vec<VersionPair> {
        let mut pairs: BTreeSet<VersionPair> = self.pairs_for_version(query).into_iter().collect();
        pairs.extend(self.pairs_within_ranges(query));
        let fixed: BTreeSet<&str> = self.fixed_versions(query).collect();
        let fixed: Vec<&str> = fixed.into_iter().collect();
        for (i, x) in fixed.iter().enumerate() {
            for y in fixed.iter().skip(i + 1) {
                pairs.extend(VersionPair::new(x, y));
            }
        }
        pairs.into_iter().collect()
    }

    /// The installed version against every event version of every candidate `ECOSYSTEM`
    /// range (except `introduced: "0"` and `*` limits), sorted and without duplicates.
    pub fn pairs_for_version(&self, query: &PackageQuery) -> Vec<VersionPair> {
        let version = query.version.as_str();
        let mut pairs = BTreeSet::new();
        for range in self.ecosystem_ranges(query) {
            for e in range
                .events
                .iter()
                .filter(|e| !is_zero(e) && !is_infinite(e))
            {
                pairs.extend(VersionPair::new(version, e.version()));
            }
        }
        pairs.into_iter().collect()
    }

    /// The event versions of each candidate range against each other (the OSV algorithm
    /// sorts them), sorted and without duplicates. They depend only on `query.lookups`, so
    /// a caller with many versions of one package computes them once.
    pub fn pairs_within_ranges(&self, query: &PackageQuery) -> Vec<VersionPair> {
        let mut pairs = BTreeSet::new();
        for range in self.ecosystem_ranges(query) {
            let ordered: Vec<&str> = range
                .events
                .iter()
                .filter(|e| !is_zero(e) && !matches!(e, Event::Limit(_)))
                .map(Event::version)
                .collect();
            for (i, x) in ordered.iter().enumerate() {
                for y in ordered.iter().skip(i + 1) {
                    pairs.extend(VersionPair::new(x, y));
                }
            }
        }
        pairs.into_iter().collect()
    }

    /// The second round of a two-round evaluation: once `order` answers
    /// [`pairs_for_version`](Self::pairs_for_version) and
    /// [`pairs_within_ranges`](Self::pairs_within_ranges), the pairs among the `fixed`
    /// versions that are *above* the installed version. Only those can end a range that
    /// holds the version or fix a `versions` hit, so they are all the evaluation and the
    /// fix of all matches (a maximum over them) still need. On a patched fleet most fixes
    /// are in the past, so this round is small where [`pairs_needed`](Self::pairs_needed)
    /// would pair every fix with every other.
    pub fn pairs_among_fixes(
        &self,
        query: &PackageQuery,
        order: &impl VersionOrder,
    ) -> Vec<VersionPair> {
        let version = query.version.as_str();
        let above: BTreeSet<&str> = self
            .fixed_versions(query)
            .filter(|f| matches!(order.compare(version, f), Ok(Ordering::Less)))
            .collect();
        let above: Vec<&str> = above.into_iter().collect();
        let mut pairs = Vec::new();
        for (i, x) in above.iter().enumerate() {
            for y in above.iter().skip(i + 1) {
                pairs.extend(VersionPair::new(x, y));
            }
        }
        pairs
    }

    /// The `fixed` versions of every candidate `ECOSYSTEM` range (with repeats).
    fn fixed_versions<'s>(&'s self, query: &'s PackageQuery) -> impl Iterator<Item = &'s str> + 's {
        self.ecosystem_ranges(query).flat_map(|range| {
            range.events.iter().filter_map(|e| match e {
                Event::Fixed(f) => Some(f.as_str()),
                _ => None,
            })
        })
    }

    /// The `ECOSYSTEM` ranges of every candidate entry of `query`.
    fn ecosystem_ranges<'s>(
        &'s self,
        query: &'s PackageQuery,
    ) -> impl Iterator<Item = &'s Range> + 's {
        self.candidates(query).flat_map(|(_, _, entry)| {
            entry
                .ranges
                .iter()
                .filter(|r| r.kind == RangeKind::Ecosystem)
        })
    }

    /// Evaluate `query` with `order` (see the module documentation).
    pub fn evaluate(&self, query: &PackageQuery, order: &impl VersionOrder) -> Evaluation {
        let mut out = Evaluation::default();
        for (advisory, index, entry) in self.candidates(query) {
            evaluate_entry(advisory, index, entry, &query.version, order, &mut out);
        }
        out.matches.sort_by(|x, y| {
            (&x.advisory, x.affected_index, range_of(&x.hit)).cmp(&(
                &y.advisory,
                y.affected_index,
                range_of(&y.hit),
            ))
        });
        out.errors.sort_by(|x, y| {
            (&x.advisory, x.affected_index, x.range_index).cmp(&(
                &y.advisory,
                y.affected_index,
                y.range_index,
            ))
        });
        out
    }

    /// The matched advisories and entries, grouped per advisory (sorted by id), for
    /// classification. Matches naming an unknown advisory are ignored.
    pub fn evidence(&self, matches: &[Match]) -> Vec<Evidence<'_>> {
        let mut grouped: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
        for m in matches {
            grouped
                .entry(m.advisory.as_str())
                .or_default()
                .insert(m.affected_index);
        }
        grouped
            .into_iter()
            .filter_map(|(id, entries)| {
                let advisory = self.get(id)?;
                let entries = entries
                    .into_iter()
                    .filter_map(|i| advisory.affected.get(i))
                    .collect();
                Some(Evidence { advisory, entries })
            })
            .collect()
    }
}

fn range_of(hit: &Hit) -> Option<usize> {
    match hit {
        Hit::Range { range_index, .. } => Some(*range_index),
        Hit::Versions => None,
    }
}

fn is_zero(e: &Event) -> bool {
    matches!(e, Event::Introduced(v) if v == "0")
}

fn is_infinite(e: &Event) -> bool {
    matches!(e, Event::Limit(v) if v.contains('*'))
}

fn evaluate_entry(
    advisory: &Advisory,
    affected_index: usize,
    entry: &Affected,
    version: &str,
    order: &impl VersionOrder,
    out: &mut Evaluation,
) {
    let new_match = |hit, fixed| Match {
        advisory: advisory.id.clone(),
        ecosystem: entry.ecosystem.clone(),
        package: entry.package.clone(),
        affected_index,
        hit,
        fixed,
    };
    let new_error = |range_index, u: Unordered| MatchError {
        advisory: advisory.id.clone(),
        ecosystem: entry.ecosystem.clone(),
        package: entry.package.clone(),
        affected_index,
        range_index,
        a: u.a,
        b: u.b,
        reason: u.reason,
    };
    let mut range_hit = false;
    for (j, range) in entry.ranges.iter().enumerate() {
        if range.kind != RangeKind::Ecosystem {
            continue;
        }
        match range_contains(version, &range.events, order) {
            Ok(Some((introduced, end))) => {
                range_hit = true;
                let fixed = match &end {
                    RangeEnd::Fixed(f) => Some(f.clone()),
                    _ => None,
                };
                out.matches.push(new_match(
                    Hit::Range {
                        range_index: j,
                        introduced,
                        end,
                    },
                    fixed,
                ));
            }
            Ok(None) => {}
            Err(u) => out.errors.push(new_error(Some(j), u)),
        }
    }
    if range_hit || !entry.versions.iter().any(|v| v == version) {
        return;
    }
    match lowest_fixed_above(version, entry, order) {
        Ok(fixed) => out.matches.push(new_match(Hit::Versions, fixed)),
        Err(u) => {
            out.matches.push(new_match(Hit::Versions, None));
            out.errors.push(new_error(None, u));
        }
    }
}

fn compare(order: &impl VersionOrder, a: &str, b: &str) -> Result<Ordering, Unordered> {
    if a == b {
        return Ok(Ordering::Equal);
    }
    order.compare(a, b).map_err(|reason| Unordered {
        a: a.to_string(),
        b: b.to_string(),
        reason,
    })
}

/// Whether `version` is inside the range made of `events`: the `introduced` version that
/// opened it and what ends it, or `None` when it is outside.
fn range_contains(
    version: &str,
    events: &[Event],
    order: &impl VersionOrder,
) -> Result<Option<(String, RangeEnd)>, Unordered> {
    if !before_limits(version, events, order)? {
        return Ok(None);
    }
    let mut reached = Vec::new();
    let mut ahead = Vec::new();
    for event in events {
        let is_reached = match event {
            Event::Limit(_) => continue,
            Event::Introduced(v) if v == "0" => true,
            Event::Introduced(v) | Event::Fixed(v) => compare(order, version, v)? != Ordering::Less,
            Event::LastAffected(v) => compare(order, version, v)? == Ordering::Greater,
        };
        if is_reached {
            reached.push(event);
        } else {
            ahead.push(event);
        }
    }
    let Some(Event::Introduced(introduced)) = extreme(&reached, order, Ordering::Greater)? else {
        return Ok(None);
    };
    let ends: Vec<&Event> = ahead
        .into_iter()
        .filter(|e| matches!(e, Event::Fixed(_) | Event::LastAffected(_)))
        .collect();
    let end = match extreme(&ends, order, Ordering::Less)? {
        Some(Event::Fixed(f)) => RangeEnd::Fixed(f.clone()),
        Some(Event::LastAffected(l)) => RangeEnd::LastAffected(l.clone()),
        _ => RangeEnd::Open,
    };
    Ok(Some((introduced.clone(), end)))
}

/// The schema's `BeforeLimits`: no limit, a `*` limit, or the version below some limit.
fn before_limits(
    version: &str,
    events: &[Event],
    order: &impl VersionOrder,
) -> Result<bool, Unordered> {
    let mut limits = events
        .iter()
        .filter_map(|e| match e {
            Event::Limit(l) => Some(l.as_str()),
            _ => None,
        })
        .peekable();
    if limits.peek().is_none() {
        return Ok(true);
    }
    for limit in limits {
        if limit.contains('*') || compare(order, version, limit)? == Ordering::Less {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The greatest (`want = Greater`) or least (`want = Less`) event in sort order; the first
/// one wins a tie.
fn extreme<'e>(
    events: &[&'e Event],
    order: &impl VersionOrder,
    want: Ordering,
) -> Result<Option<&'e Event>, Unordered> {
    let mut best: Option<&Event> = None;
    for &event in events {
        best = match best {
            Some(b) if event_order(event, b, order)? != want => Some(b),
            _ => Some(event),
        };
    }
    Ok(best)
}

/// Sort order of events: by version with `introduced: "0"` lowest; on equal versions
/// `introduced` first.
fn event_order(x: &Event, y: &Event, order: &impl VersionOrder) -> Result<Ordering, Unordered> {
    let by_version = match (is_zero(x), is_zero(y)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => compare(order, x.version(), y.version())?,
    };
    let rank = |e: &Event| u8::from(!matches!(e, Event::Introduced(_)));
    Ok(by_version.then(rank(x).cmp(&rank(y))))
}

/// The lowest `fixed` of the entry's `ECOSYSTEM` ranges above `version`.
fn lowest_fixed_above(
    version: &str,
    entry: &Affected,
    order: &impl VersionOrder,
) -> Result<Option<String>, Unordered> {
    let mut best: Option<&str> = None;
    let fixes = entry
        .ranges
        .iter()
        .filter(|r| r.kind == RangeKind::Ecosystem)
        .flat_map(|r| r.events.iter())
        .filter_map(|e| match e {
            Event::Fixed(f) => Some(f.as_str()),
            _ => None,
        });
    for fixed in fixes {
        if compare(order, version, fixed)? != Ordering::Less {
            continue;
        }
        best = match best {
            Some(b) if compare(order, fixed, b)? != Ordering::Less => Some(b),
            _ => Some(fixed),
        };
    }
    Ok(best.map(str::to_string))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::model::{Range, Source};
    use chrono::{TimeZone, Utc};

    /// Integers in their natural order; anything else cannot be ordered.
    fn numeric(a: &str, b: &str) -> Result<Ordering, String> {
        let n = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("`{s}` is not a number"))
        };
        Ok(n(a)?.cmp(&n(b)?))
    }

    fn index_of(events: &[Event]) -> AdvisoryIndex {
        let source = Source {
            kind: "t".into(),
            location: "t".into(),
            fetched_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        AdvisoryIndex::new([Advisory {
            id: "T-1".into(),
            schema_version: None,
            modified: source.fetched_at,
            published: None,
            withdrawn: None,
            aliases: vec![],
            upstream: vec![],
            related: vec![],
            cves: vec![],
            summary: None,
            details: None,
            severity: vec![],
            vendor_severity: None,
            affected: vec![Affected {
                ecosystem: Ecosystem::parse("Debian:12"),
                package: "p".into(),
                purl: None,
                ranges: vec![Range {
                    kind: RangeKind::Ecosystem,
                    repo: None,
                    events: events.to_vec(),
                }],
                versions: vec![],
                severity: vec![],
                vendor_severity: None,
                binaries: vec![],
                cves: vec![],
            }],
            source,
            notes: vec![],
        }])
    }

    /// The hit of version `v`, or `None`.
    fn hit(events: &[Event], v: &str) -> Option<(String, RangeEnd)> {
        let index = index_of(events);
        let query = PackageQuery::new(Ecosystem::parse("Debian:12"), "p", v);
        let eval = index.evaluate(&query, &numeric);
        assert!(eval.errors.is_empty(), "{:?}", eval.errors);
        eval.matches.into_iter().next().map(|m| match m.hit {
            Hit::Range {
                introduced, end, ..
            } => (introduced, end),
            Hit::Versions => unreachable!("no versions list"),
        })
    }

    fn i(v: &str) -> Event {
        Event::Introduced(v.into())
    }
    fn f(v: &str) -> Event {
        Event::Fixed(v.into())
    }
    fn la(v: &str) -> Event {
        Event::LastAffected(v.into())
    }
    fn lim(v: &str) -> Event {
        Event::Limit(v.into())
    }
    fn open(from: &str) -> Option<(String, RangeEnd)> {
        Some((from.into(), RangeEnd::Open))
    }
    fn until(from: &str, fixed: &str) -> Option<(String, RangeEnd)> {
        Some((from.into(), RangeEnd::Fixed(fixed.into())))
    }

    #[test]
    fn limits_bound_the_range_from_above() {
        let events = [i("0"), lim("5")];
        assert_eq!(hit(&events, "4"), open("0"));
        assert_eq!(hit(&events, "5"), None);
        assert_eq!(hit(&[i("0"), lim("5"), lim("10")], "7"), open("0"));
        assert_eq!(hit(&[i("0"), lim("5"), lim("10")], "10"), None);
        assert_eq!(hit(&[i("2"), lim("*")], "1000"), open("2"));
        assert_eq!(hit(&[i("2"), lim("*")], "1"), None);
    }

    #[test]
    fn equal_versions_sort_introduced_first() {
        assert_eq!(hit(&[i("3"), f("3")], "3"), None);
        assert_eq!(hit(&[i("3"), f("3")], "2"), None);
        let inclusive = Some(("3".to_string(), RangeEnd::LastAffected("3".into())));
        assert_eq!(hit(&[i("3"), la("3")], "3"), inclusive);
        assert_eq!(hit(&[i("3"), la("3")], "4"), None);
    }

    #[test]
    fn unsorted_events_are_evaluated_in_version_order() {
        let events = [i("5"), f("7"), i("0"), f("2")];
        assert_eq!(hit(&events, "1"), until("0", "2"));
        assert_eq!(hit(&events, "2"), None);
        assert_eq!(hit(&events, "3"), None);
        assert_eq!(hit(&events, "6"), until("5", "7"));
        assert_eq!(hit(&events, "7"), None);
        // A redundant `introduced` inside a range does not end it.
        assert_eq!(hit(&[i("0"), i("4"), f("9")], "6"), until("4", "9"));
        assert_eq!(hit(&[i("0"), i("4"), f("9")], "2"), until("0", "9"));
    }

    #[test]
    fn a_precomputed_order_answers_both_directions_and_names_missing_pairs() {
        let order: PrecomputedOrder = [
            (VersionPair::new("2", "10").unwrap(), Ok(Ordering::Greater)),
            (
                VersionPair::new("x", "1").unwrap(),
                Err("`x` is bad".to_string()),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(order.len(), 2);
        // Canonical order is byte-wise, so the pair is ("10", "2") and its answer "10 > 2".
        assert_eq!(VersionPair::new("2", "10").unwrap().a, "10");
        assert_eq!(order.compare("10", "2"), Ok(Ordering::Greater));
        assert_eq!(order.compare("2", "10"), Ok(Ordering::Less));
        assert_eq!(order.compare("7", "7"), Ok(Ordering::Equal));
        assert_eq!(order.compare("1", "x"), Err("`x` is bad".to_string()));
        assert_eq!(
            order.compare("3", "4"),
            Err("`3` and `4` were not compared (the pair was not in pairs_needed)".to_string())
        );
        assert_eq!(VersionPair::new("a", "a"), None);
    }
}
