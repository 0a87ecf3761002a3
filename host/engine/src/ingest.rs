//! Reading advisory feeds (OSV, CISA KEV, EPSS) into the store.
//!
//! A location is a local path (a file, or a directory whose `*.json` files are read in name
//! order), a `file://` URL, or an `http://` / `https://` URL fetched as [`fetch`] describes
//! (redirects, size limits, timeouts, an optional CA file). A local file is gunzipped when
//! its name ends in `.gz`; a fetched body when it starts with the gzip magic bytes. An OSV
//! URL is one JSON document (one record or an array of them), like a file. Every record
//! keeps its source location (the URL for a fetched feed) and fetch time. A malformed
//! record is reported and skipped; the rest of its document is kept.
//!
//! Each feed (all OSV locations together, the KEV catalogue, the EPSS file) is one unit:
//! it is read, judged by the trust rules of [`patchwave_advisory::feed`] and stored in one
//! transaction, or not stored at all. A feed that cannot be read, or is refused, changes
//! nothing and does not stop the others; the feeds already stored stay stored. An operator
//! may override the refusals with a [`Force`], which is written to the audit log (event
//! `feed-import-forced`) before the feed is stored.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use patchwave_advisory::{
    osv_refusals, parse_epss, parse_kev, parse_osv_documents, prune_for, refusals,
    unknown_ecosystems, FeedKind, FeedStamp, OsvLocation, Prune, Refusal, Rejected, Source,
    UnknownEcosystem,
};
use patchwave_core::audit::OperatorEvent;
use patchwave_plugin_host::AuditLog;
use patchwave_store::{AdvisoryImport, EpssImport, FeedWrite, KevImport, Store, StoreError};
use url::Url;

use crate::http::{redact, redact_text};

pub mod fetch;

pub use fetch::{FeedFetcher, FetchFailure, FetchSettings};

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Feeds {
    /// OSV files, directories, `file://` URLs or `http(s)://` URLs.
    pub osv: Vec<String>,
    /// The KEV catalogue: a file or a URL.
    pub kev: Option<String>,
    /// The EPSS CSV (gzip allowed): a file or a URL.
    pub epss: Option<String>,
}

/// An operator's override of the trust rules (`advisories import --force --reason R`).
#[derive(Clone, Copy, Debug)]
pub struct Force<'a> {
    /// Why (required, recorded).
    pub reason: &'a str,
    /// Who.
    pub by: &'a str,
    /// Where the override is recorded before anything is stored.
    pub audit: &'a AuditLog,
}

/// How to import.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions<'a> {
    /// The clock: every record's fetch time, and what feed dates are judged against.
    pub now: DateTime<Utc>,
    /// Override the refusals (audited), when given.
    pub force: Option<Force<'a>>,
}

/// What the OSV unit stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsvImport {
    /// OSV documents read.
    pub documents: usize,
    /// What the store did with the records.
    pub stored: AdvisoryImport,
    /// Ecosystems patchwave does not know, with the advisories naming them: stored, never
    /// matched (a feed of the wrong kind, or a misspelt name).
    pub unknown_ecosystems: Vec<UnknownEcosystem>,
    /// CVSS vectors that cannot be scored, as `(advisory, vector, why)`: the records are
    /// stored, and classified without them (`findings explain` names them too).
    pub unscorable: Vec<(String, String, String)>,
}

/// Every CVSS v3/v4 vector of `advisories` that does not score, with why.
fn unscorable(advisories: &[patchwave_advisory::Advisory]) -> Vec<(String, String, String)> {
    use patchwave_advisory::{CvssScorer, SeverityKind};
    let scorer = crate::findings::cvss_scorer();
    let mut out = Vec::new();
    for a in advisories {
        let all = a.severity.iter().chain(a.affected.iter().flat_map(|f| {
            f.severity
                .iter()
                .chain(f.cves.iter().flat_map(|c| c.severity.iter()))
        }));
        for severity in all {
            if !matches!(severity.kind, SeverityKind::CvssV3 | SeverityKind::CvssV4) {
                continue;
            }
            if let Err(why) = scorer.base_score_tenths(severity) {
                let entry = (a.id.clone(), severity.score.clone(), why);
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
    }
    out
}

/// What the KEV unit stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KevOutcome {
    /// What the store did.
    pub stored: KevImport,
    /// How far the catalogue was allowed to tombstone (see [`prune_for`]).
    pub prune: Prune,
}

/// What the EPSS unit stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpssOutcome {
    /// What the store did.
    pub stored: EpssImport,
    /// How far the feed was allowed to delete scores (see [`prune_for`]).
    pub prune: Prune,
}

/// Why a feed was not stored. Nothing of it was.
#[derive(Debug, thiserror::Error)]
pub enum FeedFailure {
    /// The trust rules refused it, and no [`Force`] was given.
    #[error("refused: {}", list(.0))]
    Refused(Vec<Refusal>),
    /// It could not be read, parsed, audited or stored.
    #[error(transparent)]
    Error(#[from] IngestError),
}

impl From<StoreError> for FeedFailure {
    fn from(e: StoreError) -> Self {
        FeedFailure::Error(IngestError::Store(e))
    }
}

fn list(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One feed's outcome.
#[derive(Debug)]
pub struct FeedReport<T> {
    /// Stored (with what was done), or why not.
    pub result: Result<T, FeedFailure>,
    /// Records skipped as malformed, each with file, id and reason.
    pub rejected: Vec<Rejected>,
    /// Refusals a [`Force`] overrode (each audited).
    pub forced: Vec<Refusal>,
}

impl<T> FeedReport<T> {
    fn failed(failure: impl Into<FeedFailure>) -> Self {
        FeedReport {
            result: Err(failure.into()),
            rejected: Vec::new(),
            forced: Vec::new(),
        }
    }
}

/// What an import did, feed by feed (`None`: the feed was not asked for).
#[derive(Debug, Default)]
pub struct ImportReport {
    /// The OSV locations, as one unit.
    pub osv: Option<FeedReport<OsvImport>>,
    /// The KEV catalogue.
    pub kev: Option<FeedReport<KevOutcome>>,
    /// The EPSS scores.
    pub epss: Option<FeedReport<EpssOutcome>>,
}

impl ImportReport {
    /// Each feed asked for, with its failure when it was not stored.
    pub fn outcomes(&self) -> Vec<(FeedKind, Option<&FeedFailure>)> {
        fn one<T>(kind: FeedKind, r: &FeedReport<T>) -> (FeedKind, Option<&FeedFailure>) {
            (kind, r.result.as_ref().err())
        }
        let mut out = Vec::new();
        out.extend(self.osv.as_ref().map(|r| one(FeedKind::Osv, r)));
        out.extend(self.kev.as_ref().map(|r| one(FeedKind::Kev, r)));
        out.extend(self.epss.as_ref().map(|r| one(FeedKind::Epss, r)));
        out
    }

    /// Every record skipped, feed by feed.
    pub fn rejected(&self) -> impl Iterator<Item = &Rejected> {
        let osv = self.osv.iter().flat_map(|r| &r.rejected);
        let kev = self.kev.iter().flat_map(|r| &r.rejected);
        let epss = self.epss.iter().flat_map(|r| &r.rejected);
        osv.chain(kev).chain(epss)
    }
}

/// Why a feed could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A location could not be read.
    #[error("{location}: {detail}")]
    Read {
        /// The location.
        location: String,
        /// What went wrong.
        detail: String,
    },
    /// A feed URL gave no document.
    #[error("{url}: {failure}")]
    Fetch {
        /// The URL asked for (never with credentials).
        url: String,
        /// What went wrong.
        failure: FetchFailure,
    },
    /// The extra CA file for `https` feeds could not be read or holds no usable certificate.
    #[error("advisories CA file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The TLS library refused its settings.
    #[error("cannot set up TLS for fetching feeds: {0}")]
    Tls(String),
    /// A whole document was not what it should be (not JSON, not a KEV catalogue, ...).
    #[error("{0}")]
    Document(String),
    /// A forced import could not be written to the audit log, so it was not done.
    #[error("not forced: the audit log could not record it: {0}")]
    Audit(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Read `feeds` and store what they hold, each feed as its own unit (see the module
/// documentation); URLs are fetched with `fetcher`. OSV records from every location are
/// stored in one transaction, never removing a stored advisory; KEV and EPSS each replace
/// the stored feed as far as [`prune_for`] allows. The feeds are handled in that order, and
/// every feed asked for is attempted whatever became of the ones before.
pub async fn import(
    store: &dyn Store,
    feeds: &Feeds,
    fetcher: &FeedFetcher,
    options: ImportOptions<'_>,
) -> ImportReport {
    ImportReport {
        osv: match feeds.osv.as_slice() {
            [] => None,
            locations => Some(import_osv(store, locations, fetcher, options).await),
        },
        kev: match &feeds.kev {
            None => None,
            Some(location) => Some(import_kev(store, location, fetcher, options).await),
        },
        epss: match &feeds.epss {
            None => None,
            Some(location) => Some(import_epss(store, location, fetcher, options).await),
        },
    }
}

/// The OSV unit: every location read, then stored in one transaction.
async fn import_osv(
    store: &dyn Store,
    locations: &[String],
    fetcher: &FeedFetcher,
    options: ImportOptions<'_>,
) -> FeedReport<OsvImport> {
    // Each document, and the index of the location it came from.
    let mut documents: Vec<(Vec<u8>, Source)> = Vec::new();
    let mut origin: HashMap<String, usize> = HashMap::new();
    for (at, location) in locations.iter().enumerate() {
        let read = match read_location(location, true, fetcher).await {
            Ok(read) => read,
            Err(e) => return FeedReport::failed(e),
        };
        for (path, bytes) in read {
            origin.insert(path.clone(), at);
            documents.push((bytes, source("osv", path, options.now)));
        }
    }
    let (advisories, rejected) =
        parse_osv_documents(documents.iter().map(|(b, s)| (b.as_slice(), s.clone())));
    let mut counts: Vec<OsvLocation> = locations
        .iter()
        .map(|location| OsvLocation {
            location: location.clone(),
            advisories: 0,
            rejected: 0,
        })
        .collect();
    let mut count = |path: &str, kept: bool| {
        if let Some(c) = origin.get(path).and_then(|&at| counts.get_mut(at)) {
            if kept {
                c.advisories += 1;
            } else {
                c.rejected += 1;
            }
        }
    };
    advisories
        .iter()
        .for_each(|a| count(&a.source.location, true));
    rejected
        .iter()
        .for_each(|r| count(&r.location.source, false));
    let judged = osv_refusals(&counts, &advisories, options.now);
    let what = locations.join(", ");
    let result = match overridden(FeedKind::Osv, &what, judged, options) {
        Ok(forced) => store
            .import_advisories(&advisories)
            .await
            .map(|stored| OsvImport {
                documents: documents.len(),
                stored,
                unknown_ecosystems: unknown_ecosystems(&advisories),
                unscorable: unscorable(&advisories),
            })
            .map_err(FeedFailure::from)
            .map(|import| (import, forced)),
        Err(e) => Err(e),
    };
    finish(result, rejected)
}

/// The KEV unit.
async fn import_kev(
    store: &dyn Store,
    location: &str,
    fetcher: &FeedFetcher,
    options: ImportOptions<'_>,
) -> FeedReport<KevOutcome> {
    let (path, bytes) = match read_one(location, fetcher).await {
        Ok(read) => read,
        Err(e) => return FeedReport::failed(e),
    };
    let (catalog, rejected) = match parse_kev(&bytes, &path) {
        Ok(parsed) => parsed,
        Err(e) => return FeedReport::failed(IngestError::Document(e.to_string())),
    };
    let offered = FeedStamp {
        date: catalog.date_released,
        entries: catalog.entries.len(),
    };
    let prune = prune_for(&rejected);
    let result = async {
        let stored = store.kev_stamp().await?;
        let judged = refusals(
            &path,
            offered,
            rejected.len(),
            stored,
            options.now,
            "dateReleased",
        );
        let forced = overridden(FeedKind::Kev, &path, judged, options)?;
        let write = FeedWrite {
            expected: stored,
            prune: prune.clone(),
        };
        let stored = store
            .import_kev(
                &catalog,
                &source("cisa-kev", path.clone(), options.now),
                &write,
            )
            .await?;
        Ok::<_, FeedFailure>((KevOutcome { stored, prune }, forced))
    }
    .await;
    finish(result, rejected)
}

/// The EPSS unit.
async fn import_epss(
    store: &dyn Store,
    location: &str,
    fetcher: &FeedFetcher,
    options: ImportOptions<'_>,
) -> FeedReport<EpssOutcome> {
    let (path, bytes) = match read_one(location, fetcher).await {
        Ok(read) => read,
        Err(e) => return FeedReport::failed(e),
    };
    let (feed, rejected) = match parse_epss(&bytes, &path) {
        Ok(parsed) => parsed,
        Err(e) => return FeedReport::failed(IngestError::Document(e.to_string())),
    };
    let offered = FeedStamp {
        date: feed.score_date,
        entries: feed.rows.len(),
    };
    let prune = prune_for(&rejected);
    let result = async {
        let stored = store.epss_stamp().await?;
        let judged = refusals(
            &path,
            offered,
            rejected.len(),
            stored,
            options.now,
            "score_date",
        );
        let forced = overridden(FeedKind::Epss, &path, judged, options)?;
        let write = FeedWrite {
            expected: stored,
            prune: prune.clone(),
        };
        let stored = store
            .import_epss(&feed, &source("epss", path.clone(), options.now), &write)
            .await?;
        Ok::<_, FeedFailure>((EpssOutcome { stored, prune }, forced))
    }
    .await;
    finish(result, rejected)
}

fn source(kind: &str, location: String, now: DateTime<Utc>) -> Source {
    Source {
        kind: kind.into(),
        location,
        fetched_at: now,
    }
}

fn finish<T>(
    result: Result<(T, Vec<Refusal>), FeedFailure>,
    rejected: Vec<Rejected>,
) -> FeedReport<T> {
    match result {
        Ok((done, forced)) => FeedReport {
            result: Ok(done),
            rejected,
            forced,
        },
        Err(failure) => FeedReport {
            result: Err(failure),
            rejected,
            forced: Vec::new(),
        },
    }
}

/// The refusals of `feed` (read from `location`) that a [`Force`] overrides, after writing
/// the override to the audit log; [`FeedFailure::Refused`] without one.
fn overridden(
    feed: FeedKind,
    location: &str,
    refusals: Vec<Refusal>,
    options: ImportOptions<'_>,
) -> Result<Vec<Refusal>, FeedFailure> {
    if refusals.is_empty() {
        return Ok(refusals);
    }
    let Some(force) = options.force else {
        return Err(FeedFailure::Refused(refusals));
    };
    let event = OperatorEvent {
        time: options.now,
        event: "feed-import-forced".into(),
        // Not a rollout: the feed is named in `detail`.
        rollout: String::new(),
        by: force.by.to_string(),
        detail: serde_json::json!({
            "feed": feed.to_string(),
            "location": location,
            "reason": force.reason,
            "overrides": refusals.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "refusals": refusals,
        }),
    };
    force
        .audit
        .append(&event)
        .map_err(|e| IngestError::Audit(e.to_string()))?;
    Ok(refusals)
}

/// Exactly one document.
async fn read_one(location: &str, fetcher: &FeedFetcher) -> Result<(String, Vec<u8>), IngestError> {
    let mut all = read_location(location, false, fetcher).await?;
    match all.pop() {
        Some(one) if all.is_empty() => Ok(one),
        _ => Err(IngestError::Read {
            location: location.to_string(),
            detail: "expected one file".into(),
        }),
    }
}

/// Where a location points.
#[derive(Debug, PartialEq)]
enum Place {
    Path(PathBuf),
    Url(Url),
}

/// A local path, a `file://` URL (a path) or an `http(s)://` URL; other schemes are refused.
fn place_of(location: &str) -> Result<Place, IngestError> {
    if let Some(rest) = location.strip_prefix("file://") {
        return Ok(Place::Path(PathBuf::from(rest)));
    }
    if !location.contains("://") {
        return Ok(Place::Path(PathBuf::from(location)));
    }
    let fail = |detail: String| IngestError::Read {
        location: redact_text(location),
        detail,
    };
    let url = Url::parse(location).map_err(|e| fail(format!("not a valid URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(Place::Url(url)),
        other => Err(fail(format!(
            "scheme `{other}` is not supported (use a local path or a file://, http:// or \
             https:// URL)"
        ))),
    }
}

/// The documents at `location`: `(path or URL, bytes)` each.
async fn read_location(
    location: &str,
    allow_dir: bool,
    fetcher: &FeedFetcher,
) -> Result<Vec<(String, Vec<u8>)>, IngestError> {
    match place_of(location)? {
        Place::Url(url) => {
            let shown = redact(&url);
            let bytes = fetcher
                .fetch(&url)
                .await
                .map_err(|failure| IngestError::Fetch {
                    url: shown.clone(),
                    failure,
                })?;
            Ok(vec![(shown, bytes)])
        }
        Place::Path(path) => read_path(
            location,
            &path,
            allow_dir,
            fetcher.settings().max_decompressed_bytes,
        ),
    }
}

/// The documents at a local `path`: the file, or a directory's `*.json` files.
fn read_path(
    location: &str,
    path: &Path,
    allow_dir: bool,
    max_decompressed: usize,
) -> Result<Vec<(String, Vec<u8>)>, IngestError> {
    let fail = |detail: String| IngestError::Read {
        location: location.to_string(),
        detail,
    };
    if path.is_dir() {
        if !allow_dir {
            return Err(fail("is a directory; expected one file".into()));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.to_string_lossy();
                p.is_file() && (name.ends_with(".json") || name.ends_with(".json.gz"))
            })
            .collect();
        files.sort();
        return files
            .iter()
            .map(|p| {
                let bytes = read_file(p, max_decompressed).map_err(&fail)?;
                Ok((p.display().to_string(), bytes))
            })
            .collect();
    }
    Ok(vec![(
        path.display().to_string(),
        read_file(path, max_decompressed).map_err(fail)?,
    )])
}

/// A file's bytes, gunzipped (to at most `max_decompressed` bytes) when its name ends in
/// `.gz`.
fn read_file(path: &Path, max_decompressed: usize) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        return gunzip(&raw, max_decompressed).map_err(|e| match e {
            GunzipError::TooLarge { limit } => {
                format!("{}: gunzipped, larger than {limit} bytes", path.display())
            }
            GunzipError::Corrupt(e) => format!("{}: not gzip: {e}", path.display()),
        });
    }
    Ok(raw)
}

/// Why gzip data could not be unpacked.
#[derive(Debug)]
enum GunzipError {
    /// It unpacks to more than the limit.
    TooLarge { limit: usize },
    /// It is not valid gzip.
    Corrupt(std::io::Error),
}

/// `raw` gunzipped, refusing to produce more than `limit` bytes.
fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(raw)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(GunzipError::Corrupt)?;
    if out.len() > limit {
        return Err(GunzipError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn locations_are_paths_file_urls_or_http_urls() {
        assert_eq!(
            place_of("/var/feeds/kev.json").unwrap(),
            Place::Path("/var/feeds/kev.json".into())
        );
        assert_eq!(
            place_of("file:///var/feeds/osv").unwrap(),
            Place::Path("/var/feeds/osv".into())
        );
        assert_eq!(
            place_of("HTTPS://feeds.example/kev.json").unwrap(),
            Place::Url(Url::parse("https://feeds.example/kev.json").unwrap())
        );
        assert_eq!(
            place_of("ftp://bob:pw@mirror.example/kev.json")
                .unwrap_err()
                .to_string(),
            "ftp://mirror.example/kev.json: scheme `ftp` is not supported (use a local path or \
             a file://, http:// or https:// URL)"
        );
        assert_eq!(
            place_of("http://bob:pw@[::1/kev.json")
                .unwrap_err()
                .to_string(),
            "http://[::1/kev.json: not a valid URL: invalid IPv6 address"
        );
    }

    #[test]
    fn gunzip_stops_past_the_limit() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&[b'x'; 4096]).unwrap();
        let packed = encoder.finish().unwrap();
        assert_eq!(gunzip(&packed, 4096).unwrap().len(), 4096);
        assert!(matches!(
            gunzip(&packed, 4095),
            Err(GunzipError::TooLarge { limit: 4095 })
        ));
        assert!(matches!(
            gunzip(b"plain text", 100),
            Err(GunzipError::Corrupt(_))
        ));
    }
}
