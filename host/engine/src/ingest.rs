//! Reading advisory feeds (OSV, CISA KEV, EPSS) into the store.
//!
//! A location is a local path (a file, or a directory whose `*.json` files are read in name
//! order) or a `file://` URL; `.gz` files are decompressed. `http(s)://` URLs are refused with
//! a message: fetching over the network is not built yet (download the feed, then import the
//! file). Every record keeps its source location and fetch time. A malformed record is
//! reported and skipped; the rest of its file is kept.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use patchwave_advisory::{parse_epss, parse_kev, parse_osv_documents, Rejected, Source};
use patchwave_store::{AdvisoryImport, KevImport, Store, StoreError};

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Feeds {
    /// OSV files, directories or `file://` URLs.
    pub osv: Vec<String>,
    /// The KEV catalogue.
    pub kev: Option<String>,
    /// The EPSS CSV (`.gz` allowed).
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
    /// A whole document was not what it should be (not JSON, not a KEV catalogue, ...).
    #[error("{0}")]
    Document(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Read `feeds` and store what they hold. OSV records from every location are imported in
/// one transaction; KEV and EPSS each replace the stored feed (older feeds are refused by
/// the store).
pub async fn import(
    store: &dyn Store,
    feeds: &Feeds,
    now: DateTime<Utc>,
) -> Result<ImportReport, IngestError> {
    let mut report = ImportReport::default();
    let mut documents: Vec<(Vec<u8>, Source)> = Vec::new();
    for location in &feeds.osv {
        for (path, bytes) in read_location(location, true)? {
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
        let (path, bytes) = read_one(location)?;
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
        let (path, bytes) = read_one(location)?;
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
fn read_one(location: &str) -> Result<(String, Vec<u8>), IngestError> {
    let mut all = read_location(location, false)?;
    match all.pop() {
        Some(one) if all.is_empty() => Ok(one),
        _ => Err(IngestError::Read {
            location: location.to_string(),
            detail: "expected one file".into(),
        }),
    }
}

/// The documents at `location`: `(path, bytes)` each.
fn read_location(location: &str, allow_dir: bool) -> Result<Vec<(String, Vec<u8>)>, IngestError> {
    let fail = |detail: String| IngestError::Read {
        location: location.to_string(),
        detail,
    };
    let path = if let Some(rest) = location.strip_prefix("file://") {
        PathBuf::from(rest)
    } else if location.contains("://") {
        return Err(fail(
            "only local paths and file:// URLs can be read (fetching over the network is not \
             built yet: download the feed and import the file)"
                .into(),
        ));
    } else {
        PathBuf::from(location)
    };
    if path.is_dir() {
        if !allow_dir {
            return Err(fail("is a directory; expected one file".into()));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
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
            .map(|p| Ok((p.display().to_string(), read_file(p).map_err(&fail)?)))
            .collect();
    }
    Ok(vec![(
        path.display().to_string(),
        read_file(&path).map_err(fail)?,
    )])
}

/// A file's bytes, gunzipped when its name ends in `.gz`.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: not gzip: {e}", path.display()))?;
        return Ok(out);
    }
    Ok(raw)
}
