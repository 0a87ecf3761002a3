//! Matching with dpkg's real ordering: exact matches on both sides of every boundary.

use patchwave_advisory::{
    ecosystems_for_host, AdvisoryIndex, Ecosystem, Evaluation, Hit, Match, MatchError,
    PackageQuery, PrecomputedOrder, RangeEnd, VersionOrder, VersionPair,
};

use crate::common::{all_fixture_advisories, index, installed, Dpkg};

fn eval(index: &AdvisoryIndex, ecosystem: &str, package: &str, version: &str) -> Evaluation {
    index.evaluate(
        &PackageQuery::new(Ecosystem::parse(ecosystem), package, version),
        &Dpkg,
    )
}

/// (advisory, affected index, hit, fixed) of each match.
fn summary(e: &Evaluation) -> Vec<(String, usize, Hit, Option<String>)> {
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    e.matches
        .iter()
        .map(|m| {
            (
                m.advisory.clone(),
                m.affected_index,
                m.hit.clone(),
                m.fixed.clone(),
            )
        })
        .collect()
}

fn range(index: usize, introduced: &str, end: RangeEnd) -> Hit {
    Hit::Range {
        range_index: index,
        introduced: introduced.to_string(),
        end,
    }
}

fn fixed(v: &str) -> RangeEnd {
    RangeEnd::Fixed(v.to_string())
}

fn some(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn epochs_order_before_everything_else() {
    let index = index();
    let hit = |v: &str| summary(&eval(&index, "Debian:12", "ffmpeg", v));
    let expected = vec![(
        "DSA-5700-1".to_string(),
        0,
        range(0, "0", fixed("7:5.1.5-0+deb12u1")),
        some("7:5.1.5-0+deb12u1"),
    )];
    assert_eq!(hit("7:5.1.4-0+deb12u1"), expected);
    assert_eq!(hit("7:5.1.5-0+deb12u1"), []);
    assert_eq!(hit("7:5.1.6-0+deb12u1"), []);
    // Epoch 0 sorts below epoch 7 whatever the upstream version.
    assert_eq!(hit("9.9.9-1"), expected);
    assert_eq!(hit("8:1.0-1"), []);
}

#[test]
fn tilde_sorts_before_the_release_and_before_anything() {
    let index = index();
    let openssl12 = |v: &str| summary(&eval(&index, "Debian:12", "openssl", v));
    let dsa = vec![(
        "DSA-5701-1".to_string(),
        1,
        range(0, "0", fixed("3.0.13-1~deb12u1")),
        some("3.0.13-1~deb12u1"),
    )];
    assert_eq!(openssl12("3.0.11-1~deb12u2"), dsa);
    assert_eq!(openssl12("3.0.13-1~deb11u1"), dsa);
    assert_eq!(openssl12("3.0.13-1~deb12u1"), []);
    // The release itself is above its `~` pre-release.
    assert_eq!(openssl12("3.0.13-1"), []);

    let runc = |v: &str| summary(&eval(&index, "Ubuntu:22.04:LTS", "runc", v));
    let usn = vec![(
        "USN-6619-1".to_string(),
        2,
        range(0, "0", fixed("1.1.7-0ubuntu1~22.04.2")),
        some("1.1.7-0ubuntu1~22.04.2"),
    )];
    assert_eq!(runc("1.1.7-0ubuntu1~22.04.1"), usn);
    assert_eq!(runc("1.0.1-0ubuntu2"), usn);
    assert_eq!(runc("1.1.7-0ubuntu1~22.04.2"), []);
    assert_eq!(runc("1.1.7-0ubuntu1"), []);
}

#[test]
fn last_affected_is_inclusive_and_introduced_too() {
    let index = index();
    let zlib = |v: &str| summary(&eval(&index, "Debian:12", "zlib", v));
    let hit = vec![(
        "DEBIAN-CVE-2024-1111".to_string(),
        0,
        range(
            0,
            "1:1.2.11.dfsg-1",
            RangeEnd::LastAffected("1:1.2.13.dfsg-1".into()),
        ),
        None,
    )];
    assert_eq!(zlib("1:1.2.11.dfsg-0.1"), []);
    assert_eq!(zlib("1:1.2.11.dfsg-1"), hit);
    assert_eq!(zlib("1:1.2.12.dfsg-2"), hit);
    assert_eq!(zlib("1:1.2.13.dfsg-1"), hit);
    assert_eq!(zlib("1:1.2.13.dfsg-1+b1"), []);
    assert_eq!(zlib("1.2.13.dfsg-1"), []);
}

#[test]
fn two_introduced_fixed_pairs_name_the_fix_of_their_own_pair() {
    let index = index();
    let apache = |v: &str| summary(&eval(&index, "Debian:11", "apache2", v));
    let first = vec![(
        "DLA-3800-1".to_string(),
        0,
        range(0, "0", fixed("2.4.56-1~deb11u1")),
        some("2.4.56-1~deb11u1"),
    )];
    let second = vec![(
        "DLA-3800-1".to_string(),
        0,
        range(0, "2.4.57-1~deb11u1", fixed("2.4.59-1~deb11u1")),
        some("2.4.59-1~deb11u1"),
    )];
    assert_eq!(apache("2.4.55-1~deb11u1"), first);
    assert_eq!(apache("2.4.56-1~deb11u1"), []);
    assert_eq!(apache("2.4.56-1~deb11u2"), []);
    assert_eq!(apache("2.4.57-1~deb11u0"), []);
    assert_eq!(apache("2.4.57-1~deb11u1"), second);
    assert_eq!(apache("2.4.58-1~deb11u1"), second);
    assert_eq!(apache("2.4.59-1~deb11u1"), []);
    assert_eq!(apache("2.4.62-1~deb11u1"), []);
}

#[test]
fn a_withdrawn_advisory_never_matches() {
    let index = index();
    assert!(index.get("DEBIAN-CVE-2022-3333").unwrap().is_withdrawn());
    // 3.0.8-1 is inside the withdrawn record's range (fixed 3.0.9-1): only the DSA matches.
    let got = summary(&eval(&index, "Debian:12", "openssl", "3.0.8-1"));
    assert_eq!(
        got,
        [(
            "DSA-5701-1".to_string(),
            1,
            range(0, "0", fixed("3.0.13-1~deb12u1")),
            some("3.0.13-1~deb12u1")
        )]
    );
    let alone = AdvisoryIndex::new(
        all_fixture_advisories()
            .into_iter()
            .filter(|a| a.id == "DEBIAN-CVE-2022-3333"),
    );
    assert_eq!(alone.len(), 1);
    let query = PackageQuery::new(Ecosystem::parse("Debian:12"), "openssl", "3.0.8-1");
    assert_eq!(alone.evaluate(&query, &Dpkg), Evaluation::default());
    assert!(alone.pairs_needed(&query).is_empty());
}

#[test]
fn a_versions_list_matches_exactly_and_reports_the_next_fix() {
    let index = index();
    let less = |v: &str| summary(&eval(&index, "Debian:12", "less", v));
    let in_range = vec![(
        "DEBIAN-CVE-2024-2222".to_string(),
        0,
        range(0, "590-2", fixed("590-2.1+deb12u2")),
        some("590-2.1+deb12u2"),
    )];
    // 590-1 is below the range but listed: a `versions` hit, fixed by the next fix above.
    assert_eq!(
        less("590-1"),
        [(
            "DEBIAN-CVE-2024-2222".to_string(),
            0,
            Hit::Versions,
            some("590-2.1+deb12u2")
        )]
    );
    assert_eq!(less("590-2"), in_range);
    assert_eq!(less("590-2.1+deb12u1"), in_range);
    assert_eq!(less("590-2.1+deb12u2"), []);
    assert_eq!(less("589-1"), []);
    // A GIT-only record still matches through its versions list, with no known fix.
    let libxml2 = |v: &str| summary(&eval(&index, "Debian:12", "libxml2", v));
    assert_eq!(
        libxml2("2.9.14+dfsg-1.3~deb12u1"),
        [("DEBIAN-CVE-2024-3333".to_string(), 0, Hit::Versions, None)]
    );
    assert_eq!(libxml2("2.9.14+dfsg-1.3~deb12u2"), []);
}

#[test]
fn ubuntu_binaries_are_matched_by_their_source_package() {
    let index = index();
    let oracular = ecosystems_for_host("ubuntu", "24.10", false);
    let usn = |name: &str, source: Option<&str>| {
        let query = index.query(&oracular, &installed(name, "3.3.1-2ubuntu2", source));
        (
            query.lookups[0].package.clone(),
            summary(&index.evaluate(&query, &Dpkg)),
        )
    };
    let hit = vec![(
        "USN-7264-1".to_string(),
        0,
        range(0, "0", fixed("3.3.1-2ubuntu2.1")),
        some("3.3.1-2ubuntu2.1"),
    )];
    // Source known: looked up by it.
    assert_eq!(
        usn("libssl3t64", Some("openssl")),
        ("openssl".to_string(), hit.clone())
    );
    // Source unknown: the notice's binaries list names the source.
    assert_eq!(
        usn("libssl3t64", None),
        ("openssl".to_string(), hit.clone())
    );
    assert_eq!(
        usn("libssl-doc", None),
        ("openssl".to_string(), hit.clone())
    );
    // Source unknown and not listed: the binary name itself, which no record names.
    assert_eq!(usn("libfoo1", None), ("libfoo1".to_string(), vec![]));

    let jammy = ecosystems_for_host("ubuntu", "22.04", false);
    let git = |v: &str| {
        let query = index.query(&jammy, &installed("git-man", v, Some("git")));
        summary(&index.evaluate(&query, &Dpkg))
    };
    assert_eq!(
        git("1:2.34.1-1ubuntu1.10"),
        [(
            "USN-6793-1".to_string(),
            1,
            range(0, "0", fixed("1:2.34.1-1ubuntu1.11")),
            some("1:2.34.1-1ubuntu1.11")
        )]
    );
    assert_eq!(git("1:2.34.1-1ubuntu1.11"), []);
}

#[test]
fn pro_records_apply_only_to_hosts_with_pro() {
    let index = index();
    let runc = installed("runc", "1.1.4-0ubuntu1~18.04.1", Some("runc"));
    let with_pro = index.query(&ecosystems_for_host("ubuntu", "18.04", true), &runc);
    assert_eq!(
        summary(&index.evaluate(&with_pro, &Dpkg)),
        [(
            "USN-6619-1".to_string(),
            0,
            range(0, "0", fixed("1.1.4-0ubuntu1~18.04.2+esm1")),
            some("1.1.4-0ubuntu1~18.04.2+esm1")
        )]
    );
    let without = index.query(&ecosystems_for_host("ubuntu", "18.04", false), &runc);
    assert_eq!(summary(&index.evaluate(&without, &Dpkg)), []);
}

#[test]
fn a_version_that_cannot_be_ordered_is_an_error_for_that_record() {
    let index = index();
    let got = eval(&index, "Debian:12", "ffmpeg", "1.0 beta");
    assert_eq!(got.matches, []);
    assert_eq!(
        got.errors,
        [MatchError {
            advisory: "DSA-5700-1".into(),
            ecosystem: Ecosystem::parse("Debian:12"),
            package: "ffmpeg".into(),
            affected_index: 0,
            range_index: Some(0),
            a: "1.0 beta".into(),
            b: "7:5.1.5-0+deb12u1".into(),
            reason: "version '1.0 beta' has bad syntax: version string has embedded spaces".into(),
        }]
    );
    assert_eq!(
        got.errors[0].to_string(),
        "DSA-5700-1 affected[0] (Debian:12 ffmpeg) ranges[0]: cannot order `1.0 beta` and `7:5.1.5-0+deb12u1`: version '1.0 beta' has bad syntax: version string has embedded spaces"
    );
}

#[test]
fn explanations_say_which_advisory_and_which_range() {
    let index = index();
    let m =
        |eco: &str, pkg: &str, v: &str| -> Match { eval(&index, eco, pkg, v).matches.remove(0) };
    assert_eq!(
        m("Debian:11", "apache2", "2.4.58-1~deb11u1").explain("2.4.58-1~deb11u1"),
        "DLA-3800-1 affected[0] (Debian:11 apache2): 2.4.58-1~deb11u1 is in ranges[0] [introduced 2.4.57-1~deb11u1, fixed 2.4.59-1~deb11u1)"
    );
    assert_eq!(
        m("Debian:12", "zlib", "1:1.2.13.dfsg-1").explain("1:1.2.13.dfsg-1"),
        "DEBIAN-CVE-2024-1111 affected[0] (Debian:12 zlib): 1:1.2.13.dfsg-1 is in ranges[0] [introduced 1:1.2.11.dfsg-1, last_affected 1:1.2.13.dfsg-1]"
    );
    assert_eq!(
        m("Debian:12", "less", "590-1").explain("590-1"),
        "DEBIAN-CVE-2024-2222 affected[0] (Debian:12 less): 590-1 is listed in versions; fixed in 590-2.1+deb12u2"
    );
}

#[test]
fn pairs_needed_lists_exactly_the_comparisons() {
    let index = index();
    let pairs = |eco: &str, pkg: &str, v: &str| -> Vec<(String, String)> {
        index
            .pairs_needed(&PackageQuery::new(Ecosystem::parse(eco), pkg, v))
            .into_iter()
            .map(|p| (p.a, p.b))
            .collect()
    };
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        pairs("Debian:12", "ffmpeg", "7:5.1.4-0+deb12u1"),
        [p("7:5.1.4-0+deb12u1", "7:5.1.5-0+deb12u1")]
    );
    assert_eq!(
        pairs("Debian:11", "apache2", "2.4.58-1~deb11u1"),
        [
            p("2.4.56-1~deb11u1", "2.4.57-1~deb11u1"),
            p("2.4.56-1~deb11u1", "2.4.58-1~deb11u1"),
            p("2.4.56-1~deb11u1", "2.4.59-1~deb11u1"),
            p("2.4.57-1~deb11u1", "2.4.58-1~deb11u1"),
            p("2.4.57-1~deb11u1", "2.4.59-1~deb11u1"),
            p("2.4.58-1~deb11u1", "2.4.59-1~deb11u1"),
        ]
    );
    // The installed version equal to the only event version needs no comparison.
    assert_eq!(pairs("Debian:12", "ffmpeg", "7:5.1.5-0+deb12u1"), []);
    assert_eq!(pairs("Debian:12", "no-such-package", "1.0-1"), []);
}

/// Every version that appears anywhere in an entry, plus a few around them.
fn probe_versions(index: &AdvisoryIndex) -> Vec<(Ecosystem, String, String)> {
    let mut out = Vec::new();
    for a in index.advisories() {
        for e in &a.affected {
            let mut versions: Vec<String> = e.versions.clone();
            for r in &e.ranges {
                for ev in &r.events {
                    let v = ev.version();
                    if v != "0" && !v.contains('*') {
                        versions.push(v.to_string());
                        versions.push(format!("{v}~"));
                        versions.push(format!("{v}+b1"));
                    }
                }
            }
            versions.push("0.1-1".to_string());
            versions.push("not a version".to_string());
            for v in versions {
                out.push((e.ecosystem.clone(), e.package.clone(), v));
            }
        }
    }
    out
}

#[test]
fn the_two_phase_evaluation_equals_the_direct_one_on_every_fixture() {
    let index = index();
    let probes = probe_versions(&index);
    assert_eq!(probes.len(), 1198);
    let queries: Vec<PackageQuery> = probes
        .iter()
        .map(|(e, p, v)| PackageQuery::new(e.clone(), p, v))
        .collect();
    // Phase 1: the fleet-wide set of pairs, answered in one batch.
    let mut all: Vec<VersionPair> = queries.iter().flat_map(|q| index.pairs_needed(q)).collect();
    all.sort();
    all.dedup();
    let order: PrecomputedOrder = all
        .iter()
        .map(|p| (p.clone(), Dpkg.compare(&p.a, &p.b)))
        .collect();
    assert_eq!(order.len(), all.len());
    // Phase 2: the same answers as comparing directly, errors included.
    let mut matched = 0;
    let mut errored = 0;
    for q in &queries {
        let direct = index.evaluate(q, &Dpkg);
        let batched = index.evaluate(q, &order);
        assert_eq!(batched, direct, "{q:?}");
        matched += usize::from(!direct.matches.is_empty());
        errored += usize::from(!direct.errors.is_empty());
    }
    // Exact for these fixtures: 1,159 distinct pairs; 971 probes affected; the 74 probes
    // "not a version" that meet an ECOSYSTEM range fail.
    assert_eq!((all.len(), matched, errored), (1159, 971, 74));
}
