//! Assessments per distinct query, fanned out to hosts as findings, with exclusions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use patchwave_advisory::{
    ecosystems_for_host, parse_epss, parse_kev, AdvisoryIndex, Assessment, Assessor, Ecosystem,
    Finding, FindingStatus, FixedIn, HostRef, Intel, PackageQuery, PatchClass, Policy,
    PolicyConfig, PrecomputedOrder, VersionOrder, VersionPair,
};
use patchwave_core::{HostId, Installed};

use crate::classification::score;
use crate::common::{index, installed, read, utc, Dpkg};

/// The engine's two phases for a set of distinct queries: one batch of comparisons, then
/// one assessment per query.
fn assess_all(
    index: &AdvisoryIndex,
    policy: &Policy,
    intel: &Intel,
    queries: &[PackageQuery],
) -> Vec<Assessment> {
    let mut pairs: Vec<VersionPair> = queries.iter().flat_map(|q| index.pairs_needed(q)).collect();
    pairs.sort();
    pairs.dedup();
    let order: PrecomputedOrder = pairs
        .into_iter()
        .map(|p| {
            let answer = Dpkg.compare(&p.a, &p.b);
            (p, answer)
        })
        .collect();
    let assessor = Assessor {
        index,
        policy,
        intel,
        scorer: &score,
    };
    queries.iter().map(|q| assessor.assess(q, &order)).collect()
}

fn fixture_intel() -> Intel {
    let (kev, _) = parse_kev(&read("kev/catalog-2025.03.14.json"), "kev").unwrap();
    let (epss, _) = parse_epss(&read("epss/epss_scores-2025-03-15.csv"), "epss").unwrap();
    Intel::new(Some(&kev), Some(&epss))
}

fn web1() -> HostRef {
    HostRef {
        id: HostId("web-1".into()),
        scope: Some("payments".into()),
    }
}

fn jammy(index: &AdvisoryIndex, package: &Installed) -> PackageQuery {
    index.query(&ecosystems_for_host("ubuntu", "22.04", false), package)
}

fn ssh_server() -> Installed {
    installed("openssh-server", "1:8.9p1-3ubuntu0.6", Some("openssh"))
}

#[test]
fn a_kev_listed_git_finding_is_critical_from_the_day_it_was_added() {
    let index = index();
    let git = installed("git-man", "1:2.34.1-1ubuntu1.10", Some("git"));
    let query = jammy(&index, &git);
    let assessed = assess_all(
        &index,
        &Policy::default(),
        &fixture_intel(),
        std::slice::from_ref(&query),
    );
    let a = &assessed[0];
    assert_eq!(a.query, query);
    assert!(a.errors.is_empty());
    let v = a.vulnerability.as_ref().unwrap();
    let f = Finding::new(&web1(), &git, v, utc(2024, 6, 1, 0, 0, 0));
    assert_eq!(f.host, HostId("web-1".into()));
    assert_eq!(f.package, "git-man");
    assert_eq!(f.installed_version, "1:2.34.1-1ubuntu1.10");
    assert_eq!(f.source_package.as_deref(), Some("git"));
    assert_eq!(
        f.fixed_in(),
        &FixedIn::Version("1:2.34.1-1ubuntu1.11".into())
    );
    assert_eq!(f.advisory_ids(), ["USN-6793-1"]);
    assert_eq!(
        f.cve_ids(),
        [
            "CVE-2024-32002",
            "CVE-2024-32004",
            "CVE-2024-32020",
            "CVE-2024-32021",
            "CVE-2024-32465"
        ]
    );
    assert_eq!(f.class(), PatchClass::Critical);
    assert_eq!(f.rule().name(), "kev");
    assert_eq!(
        f.disclosed_at(),
        utc(2024, 5, 28, 13, 39, 27) + chrono::Duration::microseconds(536_163)
    );
    assert_eq!(
        f.vulnerability.verdict.clock_start,
        utc(2024, 6, 20, 0, 0, 0)
    );
    assert_eq!(f.due_at(), Some(utc(2024, 6, 27, 0, 0, 0)));
    assert!(!f.overdue(utc(2024, 6, 26, 23, 59, 59)));
    assert!(f.overdue(utc(2024, 6, 27, 0, 0, 0)));
    assert_eq!(f.exclusion, Default::default());
}

#[test]
fn the_fix_for_all_advisories_is_the_highest_fixed_version() {
    let index = index();
    let query = jammy(&index, &ssh_server());
    let a = assess_all(&index, &Policy::default(), &fixture_intel(), &[query]).remove(0);
    let v = a.vulnerability.unwrap();
    assert_eq!(v.advisory_ids(), ["USN-6859-1", "USN-7270-1"]);
    assert_eq!(v.fixed_in, FixedIn::Version("1:8.9p1-3ubuntu0.11".into()));
    assert_eq!(
        v.cves,
        ["CVE-2024-6387", "CVE-2025-26465", "CVE-2025-26466"]
    );
    // CVSS 6.8 and Ubuntu "medium" give moderate; CVE-2024-6387's EPSS of 0.9 raises it to
    // high from 2025-03-15, but never past the moderate deadline from disclosure.
    assert_eq!(v.verdict.cvss_class, Some(PatchClass::Moderate));
    assert_eq!(v.verdict.vendor_class, Some(PatchClass::Moderate));
    assert_eq!(v.verdict.class, PatchClass::High);
    assert_eq!(v.verdict.rule.name(), "epss");
    assert_eq!(v.verdict.clock_start, utc(2025, 3, 15, 12, 55, 0));
    assert_eq!(v.verdict.due_at, Some(utc(2024, 9, 1, 0, 0, 0)));

    // Above the first fix, only the second advisory is left.
    let newer = installed("openssh-server", "1:8.9p1-3ubuntu0.10", Some("openssh"));
    let a = assess_all(
        &index,
        &Policy::default(),
        &Intel::default(),
        &[jammy(&index, &newer)],
    )
    .remove(0);
    let v = a.vulnerability.unwrap();
    assert_eq!(v.advisory_ids(), ["USN-7270-1"]);
    assert_eq!(v.fixed_in, FixedIn::Version("1:8.9p1-3ubuntu0.11".into()));
    assert_eq!(v.verdict.class, PatchClass::Moderate);
    assert_eq!(v.verdict.due_at, Some(utc(2025, 4, 1, 0, 0, 0)));

    let fixed = installed("openssh-server", "1:8.9p1-3ubuntu0.11", Some("openssh"));
    let a = assess_all(
        &index,
        &Policy::default(),
        &Intel::default(),
        &[jammy(&index, &fixed)],
    )
    .remove(0);
    assert!(a.vulnerability.is_none());
    assert!(a.errors.is_empty());
}

#[test]
fn no_fix_yet_and_unorderable_versions() {
    let index = index();
    let debian12 = ecosystems_for_host("debian", "12", false);
    let queries = [
        index.query(
            &debian12,
            &installed("zlib1g", "1:1.2.13.dfsg-1", Some("zlib")),
        ),
        index.query(&debian12, &installed("ffmpeg", "7:5.1 .4", None)),
    ];
    let mut assessed =
        assess_all(&index, &Policy::default(), &Intel::default(), &queries).into_iter();
    let zlib = assessed.next().unwrap().vulnerability.unwrap();
    assert_eq!(zlib.fixed_in, FixedIn::NoFixYet);
    assert_eq!(zlib.verdict.class, PatchClass::Low);
    assert_eq!(zlib.verdict.due_at, None);
    let broken = assessed.next().unwrap();
    assert!(broken.vulnerability.is_none());
    assert_eq!(broken.errors.len(), 1);
    assert_eq!(broken.errors[0].advisory, "DSA-5700-1");
    assert_eq!(broken.errors[0].a, "7:5.1 .4");
}

fn policy(exclusions: serde_json::Value) -> Policy {
    let config: PolicyConfig =
        serde_json::from_value(serde_json::json!({ "exclusions": exclusions })).unwrap();
    config.compile().unwrap()
}

fn exclusion(id: &str, expires: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "reason": "accepted", "owner": "sec-team", "expires": expires})
}

fn ssh_finding(
    policy: &Policy,
    host: &HostRef,
    package: &Installed,
    now: DateTime<Utc>,
) -> Finding {
    let index = index();
    let a = assess_all(&index, policy, &Intel::default(), &[jammy(&index, package)]).remove(0);
    Finding::new(host, package, a.vulnerability.as_ref().unwrap(), now)
}

#[test]
fn exclusions_active_partial_expired_and_targeted() {
    let now = utc(2026, 5, 1, 0, 0, 0);
    let due = Some(utc(2024, 9, 1, 0, 0, 0));

    // Both advisories excluded: excluded until the earlier expiry, then overdue again.
    let p = policy(serde_json::json!([
        exclusion("USN-6859-1", "2026-12-31"),
        exclusion("usn-7270-1", "2026-06-30"),
    ]));
    let f = ssh_finding(&p, &web1(), &ssh_server(), now);
    assert_eq!(f.due_at(), due);
    assert_eq!(f.exclusion.applied.len(), 2);
    assert_eq!(f.exclusion.applied[0].reason, "accepted");
    assert_eq!(f.exclusion.applied[0].owner, "sec-team");
    assert!(f.exclusion.uncovered.is_empty());
    assert_eq!(f.exclusion.excluded_until, Some(utc(2026, 7, 1, 0, 0, 0)));
    assert!(f.is_excluded(now));
    assert!(!f.overdue(now));
    assert!(f.overdue(utc(2026, 7, 1, 0, 0, 0)));
    assert_eq!(f.status(now), FindingStatus::Excluded);
    assert_eq!(f.status(utc(2026, 7, 1, 0, 0, 0)), FindingStatus::Overdue);

    // A CVE covers only itself: the rest stays due.
    let p = policy(serde_json::json!([exclusion(
        "CVE-2025-26465",
        "2026-12-31"
    )]));
    let f = ssh_finding(&p, &web1(), &ssh_server(), now);
    assert_eq!(f.exclusion.applied.len(), 1);
    assert_eq!(f.exclusion.uncovered, ["CVE-2024-6387", "CVE-2025-26466"]);
    assert_eq!(f.exclusion.excluded_until, None);
    assert!(f.overdue(now));

    // CVE and advisory exclusions together cover everything.
    let p = policy(serde_json::json!([
        exclusion("CVE-2024-6387", "2026-12-31"),
        exclusion("USN-7270-1", "2027-03-01T12:00:00Z"),
    ]));
    let f = ssh_finding(&p, &web1(), &ssh_server(), now);
    assert_eq!(f.exclusion.excluded_until, Some(utc(2027, 1, 1, 0, 0, 0)));
    assert!(!f.overdue(now));

    // Expired: ignored and flagged.
    let p = policy(serde_json::json!([
        exclusion("USN-6859-1", "2025-01-01"),
        exclusion("USN-7270-1", "2025-01-01"),
    ]));
    let f = ssh_finding(&p, &web1(), &ssh_server(), now);
    assert!(f.exclusion.applied.is_empty());
    assert_eq!(f.exclusion.expired.len(), 2);
    assert_eq!(f.exclusion.expired[0].expires, utc(2025, 1, 2, 0, 0, 0));
    assert!(!f.is_excluded(now));
    assert!(f.overdue(now));
    assert_eq!(f.status(now), FindingStatus::Overdue);
    let before_due = utc(2024, 8, 1, 0, 0, 0);
    assert_eq!(f.status(before_due), FindingStatus::ExclusionExpired);
    assert_eq!(f.status(before_due).word(), "exclusion-expired");

    // Targets and packages.
    let scoped = |sel: serde_json::Value| {
        let mut both = vec![
            exclusion("USN-6859-1", "2026-12-31"),
            exclusion("USN-7270-1", "2026-12-31"),
        ];
        for e in &mut both {
            e.as_object_mut()
                .unwrap()
                .extend(sel.as_object().unwrap().clone());
        }
        policy(serde_json::Value::Array(both))
    };
    let db1 = HostRef {
        id: HostId("db-1".into()),
        scope: Some("storage".into()),
    };
    let client = installed("openssh-client", "1:8.9p1-3ubuntu0.6", Some("openssh"));
    let p = scoped(serde_json::json!({"host": "web-1"}));
    assert!(ssh_finding(&p, &web1(), &ssh_server(), now).is_excluded(now));
    let other = ssh_finding(&p, &db1, &ssh_server(), now);
    assert!(!other.is_excluded(now));
    assert!(other.exclusion.applied.is_empty() && other.exclusion.expired.is_empty());
    assert_eq!(other.status(utc(2024, 8, 1, 0, 0, 0)), FindingStatus::Open);
    assert_eq!(other.status(now).word(), "overdue");
    let p = scoped(serde_json::json!({"scope": "payments"}));
    assert!(ssh_finding(&p, &web1(), &ssh_server(), now).is_excluded(now));
    assert!(!ssh_finding(&p, &db1, &ssh_server(), now).is_excluded(now));
    let p = scoped(serde_json::json!({"package": "openssh-server"}));
    assert!(ssh_finding(&p, &web1(), &ssh_server(), now).is_excluded(now));
    assert!(!ssh_finding(&p, &web1(), &client, now).is_excluded(now));
    let p = scoped(serde_json::json!({"package": "openssh"}));
    assert!(ssh_finding(&p, &web1(), &client, now).is_excluded(now));

    // An exclusion for something else never shows up.
    let p = policy(serde_json::json!([exclusion(
        "CVE-2021-44228",
        "2026-12-31"
    )]));
    assert_eq!(
        ssh_finding(&p, &web1(), &ssh_server(), now).exclusion,
        Default::default()
    );
}

/// Measures the engine's path for a synthetic fleet: 10,000 Ubuntu 22.04 hosts × 1,500
/// packages, three versions of each package in the fleet (two of them vulnerable).
/// Run with `cargo test -p patchwave-advisory --release -- --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn fan_out_10000_hosts_by_1500_packages() {
    const HOSTS: usize = 10_000;
    const PACKAGES: usize = 1_500;
    let jammy = Ecosystem::parse("Ubuntu:22.04:LTS");
    let advisories = (0..PACKAGES).map(|p| {
        let json = format!(
            r#"{{"id":"USN-{p}-1","modified":"2025-01-01T00:00:00Z","published":"2025-01-01T00:00:00Z",
               "upstream":["CVE-2025-{:05}"],
               "affected":[{{"package":{{"ecosystem":"Ubuntu:22.04:LTS","name":"src{p}"}},
                 "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"1.0-3ubuntu0.1"}}]}}]}}]}}"#,
            10_000 + p
        );
        let src = crate::common::source("synthetic", "mem");
        patchwave_advisory::parse_osv(json.as_bytes(), &src).unwrap().0.remove(0)
    });
    let index = AdvisoryIndex::new(advisories);
    let versions = ["1.0-2", "1.0-3", "1.0-3ubuntu0.1"];
    let inventory = |h: usize| -> Vec<Installed> {
        (0..PACKAGES)
            .map(|p| {
                installed(
                    &format!("bin{p}"),
                    versions[(h + p) % 3],
                    Some(&format!("src{p}")),
                )
            })
            .collect()
    };
    let ecosystems = vec![jammy];
    let start = Instant::now();
    let mut distinct: HashMap<PackageQuery, Option<Arc<patchwave_advisory::Vulnerability>>> =
        HashMap::new();
    let mut per_host: Vec<Vec<(usize, PackageQuery)>> = Vec::with_capacity(3);
    // Hosts h and h+3 have the same inventory: collect queries once per distinct inventory,
    // as the store deduplicates inventories by digest.
    for h in 0..3 {
        let queries: Vec<(usize, PackageQuery)> = inventory(h)
            .iter()
            .enumerate()
            .map(|(i, pkg)| (i, index.query(&ecosystems, pkg)))
            .collect();
        for (_, q) in &queries {
            distinct.entry(q.clone()).or_insert(None);
        }
        per_host.push(queries);
    }
    let queries: Vec<PackageQuery> = distinct.keys().cloned().collect();
    let t_queries = start.elapsed();
    let assessed = assess_all(&index, &Policy::default(), &Intel::default(), &queries);
    for a in assessed {
        distinct.insert(a.query.clone(), a.vulnerability);
    }
    let t_assess = start.elapsed();
    let now = utc(2025, 6, 1, 0, 0, 0);
    let inventories: Vec<Vec<Installed>> = (0..3).map(inventory).collect();
    let mut findings = 0usize;
    let mut overdue = 0usize;
    for h in 0..HOSTS {
        let host = HostRef {
            id: HostId(format!("host-{h}")),
            scope: None,
        };
        let inv = &inventories[h % 3];
        for (i, q) in &per_host[h % 3] {
            if let Some(Some(v)) = distinct.get(q) {
                let f = Finding::new(&host, &inv[*i], v, now);
                findings += 1;
                overdue += usize::from(f.overdue(now));
            }
        }
    }
    let t_total = start.elapsed();
    assert_eq!(distinct.len(), 3 * PACKAGES);
    assert_eq!(findings, HOSTS * PACKAGES * 2 / 3);
    assert_eq!(overdue, findings);
    println!(
        "distinct queries {}: collect {:?}, pairs+assess {:?}; {findings} findings built in {:?}",
        distinct.len(),
        t_queries,
        t_assess - t_queries,
        t_total - t_assess
    );
}
