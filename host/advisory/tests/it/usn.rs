//! The 24 real Ubuntu Security Notices.

use patchwave_advisory::{
    parse_osv_documents, Ecosystem, Event, RangeKind, Severity, SeverityKind, UbuntuChannel,
};

use crate::common::{parse, read, source, usn, usn_files, utc};

#[test]
fn all_24_notices_parse_with_no_rejection() {
    let files = usn_files();
    assert_eq!(files.len(), 24);
    for file in &files {
        let (advisories, rejected) = parse(&format!("ubuntu-usn/{file}"));
        assert!(rejected.is_empty(), "{file}: {rejected:?}");
        assert_eq!(advisories.len(), 1, "{file}");
        assert_eq!(format!("{}.json", advisories[0].id), *file);
        assert!(
            advisories[0].notes.is_empty(),
            "{file}: {:?}",
            advisories[0].notes
        );
        assert!(
            advisories[0]
                .affected
                .iter()
                .all(|a| a.ecosystem.is_known()),
            "{file}"
        );
    }
}

#[test]
fn advisories_round_trip_through_json_as_the_store_keeps_them() {
    for file in usn_files() {
        let (advisories, _) = parse(&format!("ubuntu-usn/{file}"));
        let json = serde_json::to_string(&advisories[0]).unwrap();
        let back: patchwave_advisory::Advisory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, advisories[0], "{file}");
    }
}

#[test]
fn the_batch_helper_reads_all_24_at_once() {
    let inputs: Vec<(Vec<u8>, String)> = usn_files()
        .into_iter()
        .map(|f| (read(&format!("ubuntu-usn/{f}")), f))
        .collect();
    let (advisories, rejected) = parse_osv_documents(
        inputs
            .iter()
            .map(|(bytes, name)| (bytes.as_slice(), source("ubuntu-usn", name))),
    );
    assert!(rejected.is_empty());
    assert_eq!(advisories.len(), 24);
    assert_eq!(advisories[23].source.location, "USN-7950-1.json");
    assert_eq!(advisories[23].source.kind, "ubuntu-usn");
}

#[test]
fn usn_6793_1_git_three_lts_releases_and_an_epoch_fix() {
    let a = usn("USN-6793-1");
    assert_eq!(a.schema_version.as_deref(), Some("1.7.0"));
    assert_eq!(a.summary.as_deref(), Some("git vulnerabilities"));
    assert_eq!(
        a.published,
        Some(utc(2024, 5, 28, 13, 39, 27) + chrono::Duration::microseconds(536_163))
    );
    assert_eq!(a.modified, utc(2025, 7, 16, 4, 44, 46));
    assert_eq!(a.withdrawn, None);
    assert_eq!(
        a.upstream,
        [
            "UBUNTU-CVE-2024-32002",
            "UBUNTU-CVE-2024-32004",
            "UBUNTU-CVE-2024-32020",
            "UBUNTU-CVE-2024-32021",
            "UBUNTU-CVE-2024-32465"
        ]
    );
    assert_eq!(
        a.cves,
        [
            "CVE-2024-32002",
            "CVE-2024-32004",
            "CVE-2024-32020",
            "CVE-2024-32021",
            "CVE-2024-32465"
        ]
    );
    let ecosystems: Vec<String> = a.affected.iter().map(|e| e.ecosystem.to_string()).collect();
    assert_eq!(
        ecosystems,
        ["Ubuntu:20.04:LTS", "Ubuntu:22.04:LTS", "Ubuntu:24.04:LTS"]
    );
    let noble = &a.affected[2];
    assert_eq!(
        noble.ecosystem,
        Ecosystem::Ubuntu {
            release: "24.04".into(),
            lts: true,
            channel: UbuntuChannel::Standard
        }
    );
    assert_eq!(noble.package, "git");
    assert_eq!(noble.ranges.len(), 1);
    assert_eq!(noble.ranges[0].kind, RangeKind::Ecosystem);
    assert_eq!(
        noble.ranges[0].events,
        [
            Event::Introduced("0".into()),
            Event::Fixed("1:2.43.0-1ubuntu7.1".into())
        ]
    );
    assert_eq!(noble.versions.len(), 5);
    assert_eq!(noble.binaries.len(), 14);
    assert!(noble
        .binaries
        .iter()
        .any(|b| b.name == "git-man" && b.version == "1:2.43.0-1ubuntu7.1"));
    assert!(noble.cves.is_empty());
    assert_eq!(a.affected[0].versions.len(), 17);
    assert_eq!(a.affected[0].binaries.len(), 15);
}

#[test]
fn usn_7264_1_schema_1_6_3_lists_its_cves_in_related() {
    let a = usn("USN-7264-1");
    assert_eq!(a.schema_version.as_deref(), Some("1.6.3"));
    assert!(a.upstream.is_empty());
    assert_eq!(
        a.related,
        [
            "CVE-2024-9143",
            "UBUNTU-CVE-2024-9143",
            "CVE-2024-12797",
            "UBUNTU-CVE-2024-12797",
            "CVE-2024-13176",
            "UBUNTU-CVE-2024-13176"
        ]
    );
    assert_eq!(
        a.cves,
        ["CVE-2024-12797", "CVE-2024-13176", "CVE-2024-9143"]
    );
    assert_eq!(a.published, Some(a.modified));
    assert_eq!(a.affected.len(), 1);
    assert_eq!(a.affected[0].ecosystem.to_string(), "Ubuntu:24.10");
    assert_eq!(
        a.affected[0].ranges[0].events[1],
        Event::Fixed("3.3.1-2ubuntu2.1".into())
    );
}

#[test]
fn usn_7800_1_realtime_kernel_has_106_cves_and_a_cves_map_of_6() {
    let a = usn("USN-7800-1");
    assert_eq!(a.upstream.len(), 106);
    assert_eq!(a.cves.len(), 106);
    assert_eq!(a.affected.len(), 1);
    let kernel = &a.affected[0];
    assert_eq!(
        kernel.ecosystem,
        Ecosystem::Ubuntu {
            release: "24.04".into(),
            lts: true,
            channel: UbuntuChannel::ProVariant("Realtime".into())
        }
    );
    assert_eq!(
        kernel.ecosystem.to_string(),
        "Ubuntu:Pro:Realtime:24.04:LTS"
    );
    assert_eq!(kernel.package, "linux-raspi-realtime");
    let ids: Vec<&str> = kernel.cves.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "CVE-2025-37756",
            "CVE-2025-37785",
            "CVE-2025-38477",
            "CVE-2025-38500",
            "CVE-2025-38617",
            "CVE-2025-38618"
        ]
    );
    // CVE-2025-38500 lists the same CVSS_V3 vector twice, then its Ubuntu priority.
    assert_eq!(
        kernel.cves[3].severity,
        [
            Severity {
                kind: SeverityKind::CvssV3,
                score: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H".into()
            },
            Severity {
                kind: SeverityKind::CvssV3,
                score: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H".into()
            },
            Severity {
                kind: SeverityKind::Ubuntu,
                score: "medium".into()
            },
        ]
    );
    assert!(kernel.cves.iter().all(|c| a.cves.contains(&c.id)));
}

#[test]
fn usn_7570_1_has_only_cvss_v4_vectors() {
    let a = usn("USN-7570-1");
    assert_eq!(a.affected.len(), 8);
    assert!(a.severity.is_empty());
    let kinds: Vec<&SeverityKind> = a
        .affected
        .iter()
        .flat_map(|e| {
            e.cves
                .iter()
                .flat_map(|c| c.severity.iter().map(|s| &s.kind))
        })
        .collect();
    assert_eq!(kinds.len(), 32);
    assert!(kinds
        .iter()
        .all(|k| matches!(k, SeverityKind::CvssV4 | SeverityKind::Ubuntu)));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| ***k == SeverityKind::CvssV4)
            .count(),
        16
    );
    let first = &a.affected[0];
    assert_eq!(first.ecosystem.to_string(), "Ubuntu:Pro:18.04:LTS");
    assert_eq!(first.package, "python3.6");
    assert_eq!(
        first.cves[1].severity[0].score,
        "CVSS:4.0/AV:L/AC:H/AT:P/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N"
    );
}

#[test]
fn ecosystems_and_versions_across_the_sample() {
    let names: Vec<Vec<String>> = ["USN-6619-1", "USN-7000-1", "USN-7559-1", "USN-7950-1"]
        .iter()
        .map(|id| {
            usn(id)
                .affected
                .iter()
                .map(|a| a.ecosystem.to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        names[0],
        [
            "Ubuntu:Pro:18.04:LTS",
            "Ubuntu:20.04:LTS",
            "Ubuntu:22.04:LTS"
        ]
    );
    assert_eq!(
        names[1],
        [
            "Ubuntu:Pro:14.04:LTS",
            "Ubuntu:Pro:16.04:LTS",
            "Ubuntu:Pro:18.04:LTS",
            "Ubuntu:20.04:LTS",
            "Ubuntu:24.04:LTS"
        ]
    );
    assert_eq!(
        names[2],
        [
            "Ubuntu:Pro:20.04:LTS",
            "Ubuntu:22.04:LTS",
            "Ubuntu:24.04:LTS",
            "Ubuntu:25.04"
        ]
    );
    assert_eq!(names[3].last().map(String::as_str), Some("Ubuntu:25.10"));
    let runc = usn("USN-6619-1");
    assert_eq!(
        runc.affected[0].ranges[0].events[1],
        Event::Fixed("1.1.4-0ubuntu1~18.04.2+esm1".into())
    );
    // USN-6409-1 (commit B) has no database_specific; USN-6429-1 (commit A) has cves_map.
    assert!(usn("USN-6409-1").affected.iter().all(|a| a.cves.is_empty()));
    let curl = usn("USN-6429-1");
    assert_eq!(curl.affected[0].cves.len(), 1);
    assert_eq!(curl.affected[1].cves.len(), 2);
}
