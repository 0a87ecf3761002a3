//! CISA KEV and FIRST EPSS feeds.

use chrono::NaiveDate;
use patchwave_advisory::{
    kev_removed, parse_epss, parse_kev, EpssRow, KevTombstone, Location, Position, RejectReason,
    Rejected,
};

use crate::common::{read, utc};

const KEV_14: &str = "kev/catalog-2025.03.14.json";
const KEV_20: &str = "kev/catalog-2025.03.20.json";
const EPSS: &str = "epss/epss_scores-2025-03-15.csv";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn a_kev_catalogue_keeps_good_entries_and_names_bad_ones() {
    let (catalog, rejected) = parse_kev(&read(KEV_14), KEV_14).unwrap();
    assert_eq!(catalog.catalog_version, "2025.03.14");
    assert_eq!(
        catalog.date_released,
        utc(2025, 3, 14, 16, 1, 59) + chrono::Duration::microseconds(730_500)
    );
    let ids: Vec<&str> = catalog.entries.iter().map(|e| e.cve_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "CVE-2021-44228",
            "CVE-2024-32002",
            "CVE-2023-5678",
            "CVE-2024-0727"
        ]
    );
    let log4j = &catalog.entries[0];
    assert_eq!(log4j.vendor_project, "Apache");
    assert_eq!(log4j.product, "Log4j2");
    assert_eq!(log4j.date_added, date(2021, 12, 10));
    assert_eq!(log4j.due_date, date(2021, 12, 24));
    assert!(log4j.known_ransomware);
    assert_eq!(log4j.cwes, ["CWE-20", "CWE-400", "CWE-502"]);
    assert_eq!(
        log4j.notes,
        "https://nvd.nist.gov/vuln/detail/CVE-2021-44228"
    );
    assert!(!catalog.entries[1].known_ransomware);
    // Absent notes and cwes are empty, not errors.
    assert_eq!(catalog.entries[3].notes, "");
    assert!(catalog.entries[3].cwes.is_empty());

    let at = |i| Location::new(KEV_14, Position::Index(i));
    assert_eq!(
        rejected,
        [
            Rejected {
                location: at(4),
                id: Some("CVE-2024-xyz".into()),
                reason: RejectReason::BadCveId {
                    value: "CVE-2024-xyz".into()
                }
            },
            Rejected {
                location: at(5),
                id: Some("CVE-2024-4577".into()),
                reason: RejectReason::MissingField {
                    field: "dateAdded".into()
                }
            },
            Rejected {
                location: at(6),
                id: Some("CVE-2024-6387".into()),
                reason: RejectReason::BadDate {
                    field: "dueDate".into(),
                    value: "2025-02-30".into()
                }
            },
            Rejected {
                location: at(7),
                id: Some("CVE-2024-32002".into()),
                reason: RejectReason::Duplicate {
                    kept: "kev/catalog-2025.03.14.json[1]".into()
                }
            },
            Rejected {
                location: at(8),
                id: None,
                reason: RejectReason::NotAnObject
            },
        ]
    );
}

#[test]
fn entries_that_disappear_become_tombstones() {
    let (old, _) = parse_kev(&read(KEV_14), KEV_14).unwrap();
    let (new, rejected) = parse_kev(&read(KEV_20), KEV_20).unwrap();
    assert!(rejected.is_empty());
    assert_eq!(new.entries.len(), 4);
    let previous: Vec<&str> = old.entries.iter().map(|e| e.cve_id.as_str()).collect();
    assert_eq!(
        kev_removed(previous.iter().copied(), &new),
        [KevTombstone {
            cve_id: "CVE-2023-5678".into(),
            removed_at: utc(2025, 3, 20, 17, 30, 0)
        }]
    );
    // Known ids are sorted and deduplicated; an id still listed is never a tombstone.
    let known = [
        "CVE-2024-0727",
        "CVE-2019-0001",
        "CVE-2023-5678",
        "CVE-2019-0001",
    ];
    let removed: Vec<String> = kev_removed(known, &new)
        .into_iter()
        .map(|t| t.cve_id)
        .collect();
    assert_eq!(removed, ["CVE-2019-0001", "CVE-2023-5678"]);
    assert_eq!(kev_removed(previous.iter().copied(), &old), []);
}

#[test]
fn epss_keeps_the_model_line_and_rejects_bad_rows_by_line() {
    let (feed, rejected) = parse_epss(&read(EPSS), EPSS).unwrap();
    assert_eq!(feed.model_version, "v2025.03.14");
    assert_eq!(feed.score_date, utc(2025, 3, 15, 12, 55, 0));
    let row = |cve: &str, epss: f64, percentile: f64| EpssRow {
        cve: cve.into(),
        epss,
        percentile,
    };
    assert_eq!(
        feed.rows,
        [
            row("CVE-1999-0001", 0.01141, 0.77754),
            row("CVE-2024-32002", 0.42, 0.97),
            row("CVE-2023-5678", 0.00612, 0.69),
            row("CVE-2024-6387", 0.9, 0.999),
        ]
    );
    let got: Vec<(String, Option<String>, RejectReason)> = rejected
        .into_iter()
        .map(|r| (r.location.to_string(), r.id, r.reason))
        .collect();
    let line = |n: usize| format!("{EPSS}:{n}");
    let id = |s: &str| Some(s.to_string());
    assert_eq!(
        got,
        [
            (
                line(6),
                id("CVE-2024-0727"),
                RejectReason::FieldCount {
                    expected: 3,
                    found: 2
                }
            ),
            (
                line(7),
                id("CVE-24-0001"),
                RejectReason::BadCveId {
                    value: "CVE-24-0001".into()
                }
            ),
            (
                line(8),
                id("CVE-2024-1111"),
                RejectReason::BadProbability {
                    field: "epss".into(),
                    value: "1.5".into()
                }
            ),
            (
                line(9),
                id("CVE-2024-2222"),
                RejectReason::BadProbability {
                    field: "percentile".into(),
                    value: "high".into()
                }
            ),
            (
                line(10),
                id("CVE-2024-32002"),
                RejectReason::Duplicate { kept: line(4) }
            ),
            (
                line(11),
                id("CVE-2024-3333"),
                RejectReason::FieldCount {
                    expected: 3,
                    found: 4
                }
            ),
        ]
    );
}

#[test]
fn older_epss_files_with_a_colonless_offset_are_read() {
    let input = b"#model_version:v2023.03.01,score_date:2023-03-08T00:00:00+0000\ncve,epss,percentile\nCVE-2023-0001,0.5,0.9\n";
    let (feed, rejected) = parse_epss(input, "old.csv").unwrap();
    assert!(rejected.is_empty());
    assert_eq!(feed.model_version, "v2023.03.01");
    assert_eq!(feed.score_date, utc(2023, 3, 8, 0, 0, 0));
    assert_eq!(feed.rows.len(), 1);
}
