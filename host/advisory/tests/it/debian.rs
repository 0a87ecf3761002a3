//! The hand-written Debian OSV fixtures (see tests/data/debian/README.md).

use patchwave_advisory::{
    Event, Location, Position, RangeKind, RejectReason, Rejected, VendorScheme, VendorSeverity,
};

use crate::common::{parse, utc};

#[test]
fn a_single_dsa_object_with_an_epoch_fix_and_timestamps_without_z() {
    let (advisories, rejected) = parse("debian/DSA-5700-1.json");
    assert!(rejected.is_empty());
    let a = &advisories[0];
    assert_eq!(a.id, "DSA-5700-1");
    assert_eq!(a.published, Some(utc(2024, 6, 1, 0, 0, 0)));
    assert_eq!(a.modified, utc(2024, 6, 2, 8, 15, 0));
    assert_eq!(a.cves, ["CVE-2024-31578", "CVE-2024-31582"]);
    assert_eq!(a.affected[0].ecosystem.to_string(), "Debian:12");
    assert_eq!(a.affected[0].package, "ffmpeg");
    assert_eq!(
        a.affected[0].purl.as_deref(),
        Some("pkg:deb/debian/ffmpeg?arch=source")
    );
    assert_eq!(
        a.affected[0].ranges[0].events,
        [
            Event::Introduced("0".into()),
            Event::Fixed("7:5.1.5-0+deb12u1".into())
        ]
    );
}

#[test]
fn tilde_versions_and_two_releases() {
    let (advisories, _) = parse("debian/DSA-5701-1.json");
    let a = &advisories[0];
    assert_eq!(
        a.published,
        Some(utc(2024, 2, 5, 10, 20, 30) + chrono::Duration::microseconds(123_456))
    );
    assert_eq!(
        a.modified,
        utc(2024, 2, 6, 11, 0, 0) + chrono::Duration::milliseconds(500)
    );
    let fixes: Vec<(String, &str)> = a
        .affected
        .iter()
        .map(|e| (e.ecosystem.to_string(), e.ranges[0].events[1].version()))
        .collect();
    assert_eq!(
        fixes,
        [
            ("Debian:11".to_string(), "1.1.1w-0+deb11u2"),
            ("Debian:12".to_string(), "3.0.13-1~deb12u1")
        ]
    );
}

#[test]
fn two_introduced_fixed_pairs_in_one_range() {
    let (advisories, _) = parse("debian/DLA-3800-1.json");
    assert_eq!(
        advisories[0].affected[0].ranges[0].events,
        [
            Event::Introduced("0".into()),
            Event::Fixed("2.4.56-1~deb11u1".into()),
            Event::Introduced("2.4.57-1~deb11u1".into()),
            Event::Fixed("2.4.59-1~deb11u1".into()),
        ]
    );
    assert_eq!(advisories[0].cves, ["CVE-2023-27522"]);
}

#[test]
fn debian_cve_records_last_affected_withdrawn_versions_and_urgencies() {
    let (a, rejected) = parse("debian/debian-cve.json");
    assert!(rejected.is_empty());
    let ids: Vec<&str> = a.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "DEBIAN-CVE-2024-1111",
            "DEBIAN-CVE-2022-3333",
            "DEBIAN-CVE-2024-2222",
            "DEBIAN-CVE-2024-3333"
        ]
    );
    assert_eq!(
        a[0].affected[0].ranges[0].events,
        [
            Event::Introduced("1:1.2.11.dfsg-1".into()),
            Event::LastAffected("1:1.2.13.dfsg-1".into())
        ]
    );
    assert_eq!(a[0].cves, ["CVE-2024-1111"]);
    assert!(!a[0].is_withdrawn());
    assert_eq!(a[1].withdrawn, Some(utc(2023, 1, 10, 0, 0, 0)));
    assert!(a[1].is_withdrawn());
    assert_eq!(
        a[2].affected[0].versions,
        ["590-1", "590-2", "590-2.1", "590-2.1+deb12u1"]
    );
    assert_eq!(a[3].affected[0].ranges[0].kind, RangeKind::Git);
    assert_eq!(
        a[3].notes,
        ["affected[0].ranges[0] is Git: kept, not used for matching"]
    );
    let urgency = |i: usize| a[i].affected[0].vendor_severity.clone();
    let debian = |v: &str| Some(VendorSeverity::new(VendorScheme::DebianUrgency, v));
    assert_eq!(urgency(0), debian("low"));
    assert_eq!(urgency(2), debian("medium**"));
    assert_eq!(urgency(3), debian("not yet assigned"));
    assert_eq!(urgency(3).unwrap().class(), None);
}

#[test]
fn a_mixed_file_keeps_the_good_records_and_names_each_bad_one() {
    let (advisories, rejected) = parse("debian/mixed.json");
    let kept: Vec<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(kept, ["DSA-5800-1", "DLA-3900-1"]);
    let at = |i| Location::new("debian/mixed.json", Position::Index(i));
    assert_eq!(
        rejected,
        [
            Rejected {
                location: at(1),
                id: None,
                reason: RejectReason::MissingId
            },
            Rejected {
                location: at(2),
                id: Some("DSA-5802-1".into()),
                reason: RejectReason::RangeWithoutIntroduced {
                    range: "affected[0].ranges[0]".into()
                }
            },
            Rejected {
                location: at(3),
                id: Some("DSA-5803-1".into()),
                reason: RejectReason::BadTimestamp {
                    field: "modified".into(),
                    value: "2024-02-30T00:00:00Z".into()
                }
            },
            Rejected {
                location: at(4),
                id: None,
                reason: RejectReason::NotAnObject
            },
        ]
    );
    assert_eq!(
        rejected[2].to_string(),
        "debian/mixed.json[3] (DSA-5803-1): `modified` is not a timestamp: `2024-02-30T00:00:00Z`"
    );
}
