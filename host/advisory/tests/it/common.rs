//! Shared helpers: fixtures, a fixed clock, dpkg's ordering.

use std::cmp::Ordering;
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use patchwave_advisory::{parse_osv, Advisory, AdvisoryIndex, Rejected, Source, VersionOrder};
use patchwave_core::Installed;

/// dpkg's real ordering, from the Debian plugin built natively.
pub struct Dpkg;

impl VersionOrder for Dpkg {
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, String> {
        patchwave_plugin_debian::version::compare(a, b)
    }
}

pub fn data_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(data_path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

pub fn source(kind: &str, location: &str) -> Source {
    Source {
        kind: kind.to_string(),
        location: location.to_string(),
        fetched_at: utc(2026, 5, 1, 6, 0, 0),
    }
}

/// Parse one fixture file under `tests/data`.
pub fn parse(rel: &str) -> (Vec<Advisory>, Vec<Rejected>) {
    parse_osv(&read(rel), &source("fixture", rel)).unwrap()
}

/// The 24 USN file names, sorted.
pub fn usn_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_path("ubuntu-usn"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// One USN advisory.
pub fn usn(id: &str) -> Advisory {
    let (mut advisories, rejected) = parse(&format!("ubuntu-usn/{id}.json"));
    assert!(rejected.is_empty(), "{rejected:?}");
    assert_eq!(advisories.len(), 1);
    advisories.remove(0)
}

/// Every fixture advisory: the 24 USNs and the Debian files except `mixed.json`.
pub fn all_fixture_advisories() -> Vec<Advisory> {
    let mut out: Vec<Advisory> = usn_files()
        .iter()
        .flat_map(|f| parse(&format!("ubuntu-usn/{f}")).0)
        .collect();
    for f in [
        "DSA-5700-1.json",
        "DSA-5701-1.json",
        "DLA-3800-1.json",
        "debian-cve.json",
    ] {
        out.extend(parse(&format!("debian/{f}")).0);
    }
    out
}

pub fn index() -> AdvisoryIndex {
    AdvisoryIndex::new(all_fixture_advisories())
}

pub fn installed(name: &str, version: &str, source: Option<&str>) -> Installed {
    Installed {
        name: name.to_string(),
        version: version.to_string(),
        arch: "amd64".to_string(),
        source: source.map(str::to_string),
    }
}
