//! Reading advisory feeds (OSV, CISA KEV, EPSS) into the store.
//!
//! A location is a local path (a file, or a directory whose `*.json` files are read in name
//! order), a `file://` URL, or an `http://` / `https://` URL fetched as [`fetch`] describes
//! (redirects, size limits, timeouts, an optional CA file). A local file is gunzipped when
//! its name ends in `.gz`; a fetched body when it starts with the gzip magic bytes. An OSV
//! URL is one JSON document (one record or an array of them), like a file. Every record
//! keeps its source location (the URL for a fetched feed) and fetch time. A malformed
//! record is reported and skipped; the rest of its document is kept.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use patchwave_advisory::{parse_epss, parse_kev, parse_osv_documents, Rejected, Source};
use patchwave_store::{AdvisoryImport, KevImport, Store, StoreError};
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

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// OSV documents read.
    pub osv_documents: usize,
    /// What the store did with the OSV records.
    pub osv: AdvisoryImport,
    /// KEV changes, when a catalogue was given.
    pub kev: Option<KevImport>,
    /// EPSS rows stored, when a feed was given.
    pub epss: Option<usize>,
    /// Records skipped, each with file, id and reason.
    pub rejected: Vec<Rejected>,
}

/// Why an import could not run at all.
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
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Read `feeds` and store what they hold; URLs are fetched with `fetcher`, and `now` is
/// recorded as every record's fetch time. OSV records from every location are imported in
/// one transaction; KEV and EPSS each replace the stored feed (older feeds are refused by
/// the store). The feeds are read and stored in that order, so a KEV or EPSS location that
/// fails leaves the OSV records already stored.
pub async fn import(
    store: &dyn Store,
    feeds: &Feeds,
    fetcher: &FeedFetcher,
    now: DateTime<Utc>,
) -> Result<ImportReport, IngestError> {
    let mut report = ImportReport::default();
    let mut documents: Vec<(Vec<u8>, Source)> = Vec::new();
    for location in &feeds.osv {
        for (path, bytes) in read_location(location, true, fetcher).await? {
            documents.push((
                bytes,
                Source {
                    kind: "osv".into(),
                    location: path,
                    fetched_at: now,
                },
            ));
        }
    }
    report.osv_documents = documents.len();
    if !documents.is_empty() {
        let (advisories, rejected) =
            parse_osv_documents(documents.iter().map(|(b, s)| (b.as_slice(), s.clone())));
        report.rejected.extend(rejected);
        report.osv = store.import_advisories(&advisories).await?;
    }
    if let Some(location) = &feeds.kev {
        let (path, bytes) = read_one(location, fetcher).await?;
        let (catalog, rejected) =
            parse_kev(&bytes, &path).map_err(|e| IngestError::Document(e.to_string()))?;
        report.rejected.extend(rejected);
        let source = Source {
            kind: "cisa-kev".into(),
            location: path,
            fetched_at: now,
        };
        report.kev = Some(store.import_kev(&catalog, &source).await?);
    }
    if let Some(location) = &feeds.epss {
        let (path, bytes) = read_one(location, fetcher).await?;
        let (feed, rejected) =
            parse_epss(&bytes, &path).map_err(|e| IngestError::Document(e.to_string()))?;
        report.rejected.extend(rejected);
        let source = Source {
            kind: "epss".into(),
            location: path,
            fetched_at: now,
        };
        report.epss = Some(store.import_epss(&feed, &source).await?);
    }
    Ok(report)
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
