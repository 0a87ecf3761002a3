//! Classification: one case per rule and per combination mode, with exact SLA dates.

use chrono::{DateTime, NaiveDate, Utc};
use patchwave_advisory::{
    classify, Advisory, Affected, CombineMode, Ecosystem, EpssFeed, EpssRow, Evidence, Intel,
    KevCatalog, KevEntry, PatchClass, Policy, Rule, Severity, SeverityKind, Source, VendorScheme,
    VendorSeverity,
};

use crate::common::{usn, utc};

const CRIT_98: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";
const HIGH_75: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N";
const MOD_55: &str = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H";
const LOW_37: &str = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N";

/// A stand-in for `patchwave-cvss`: the published base scores of the vectors the tests use.
pub fn score(s: &Severity) -> Result<u8, String> {
    match s.score.as_str() {
        CRIT_98 => Ok(98),
        HIGH_75 => Ok(75),
        MOD_55 => Ok(55),
        LOW_37 => Ok(37),
        "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H" => Ok(78),
        "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:H" => Ok(71),
        "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:N/I:N/A:H" => Ok(47),
        "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:N" => Ok(68),
        other => Err(format!("unknown vector {other}")),
    }
}

/// Disclosure of the default test advisory.
fn disclosed() -> DateTime<Utc> {
    utc(2026, 11, 10, 9, 0, 0)
}

fn epss_date() -> DateTime<Utc> {
    utc(2026, 11, 20, 12, 55, 0)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A matched advisory with one Debian entry and one CVE, disclosed 2026-11-10T09:00Z.
struct Adv(Advisory);

impl Adv {
    fn new(id: &str) -> Adv {
        Adv(Advisory {
            id: id.into(),
            schema_version: None,
            modified: disclosed(),
            published: Some(disclosed()),
            withdrawn: None,
            aliases: vec![],
            upstream: vec!["CVE-2026-0001".into()],
            related: vec![],
            cves: vec!["CVE-2026-0001".into()],
            summary: None,
            details: None,
            severity: vec![],
            vendor_severity: None,
            affected: vec![Affected {
                ecosystem: Ecosystem::parse("Debian:12"),
                package: "pkg".into(),
                purl: None,
                ranges: vec![],
                versions: vec![],
                severity: vec![],
                vendor_severity: None,
                binaries: vec![],
                cves: vec![],
            }],
            source: Source {
                kind: "test".into(),
                location: "mem".into(),
                fetched_at: disclosed(),
            },
            notes: vec![],
        })
    }

    fn cvss(mut self, vector: &str) -> Adv {
        self.0.affected[0].severity.push(Severity {
            kind: SeverityKind::CvssV3,
            score: vector.into(),
        });
        self
    }

    fn urgency(mut self, value: &str) -> Adv {
        self.0.affected[0].vendor_severity =
            Some(VendorSeverity::new(VendorScheme::DebianUrgency, value));
        self
    }

    fn ubuntu(mut self, value: &str) -> Adv {
        self.0.severity.push(Severity {
            kind: SeverityKind::Ubuntu,
            score: value.into(),
        });
        self
    }

    fn published(mut self, at: Option<DateTime<Utc>>, modified: DateTime<Utc>) -> Adv {
        self.0.published = at;
        self.0.modified = modified;
        self
    }
}

fn kev_entry(cve: &str, added: NaiveDate) -> KevEntry {
    KevEntry {
        cve_id: cve.into(),
        vendor_project: String::new(),
        product: String::new(),
        vulnerability_name: String::new(),
        date_added: added,
        short_description: String::new(),
        required_action: String::new(),
        due_date: added,
        known_ransomware: false,
        notes: String::new(),
        cwes: vec![],
    }
}

fn intel(kev: Option<NaiveDate>, epss: Option<f64>) -> Intel {
    let catalog = KevCatalog {
        catalog_version: "t".into(),
        date_released: disclosed(),
        entries: kev
            .map(|d| kev_entry("CVE-2026-0001", d))
            .into_iter()
            .collect(),
    };
    let feed = EpssFeed {
        model_version: "v-test".into(),
        score_date: epss_date(),
        rows: epss
            .map(|e| EpssRow {
                cve: "CVE-2026-0001".into(),
                epss: e,
                percentile: 0.9,
            })
            .into_iter()
            .collect(),
    };
    Intel::new(Some(&catalog), Some(&feed))
}

fn run(advisories: &[Advisory], policy: &Policy, intel: &Intel) -> patchwave_advisory::Verdict {
    let evidence: Vec<Evidence<'_>> = advisories
        .iter()
        .map(|a| Evidence {
            advisory: a,
            entries: a.affected.iter().collect(),
        })
        .collect();
    classify(&evidence, intel, policy, &score).unwrap()
}

struct Case {
    name: &'static str,
    advisories: Vec<Adv>,
    policy: Policy,
    kev: Option<NaiveDate>,
    epss: Option<f64>,
    class: PatchClass,
    rule: &'static str,
    clock: DateTime<Utc>,
    due: Option<DateTime<Utc>>,
}

fn case(name: &'static str, advisories: Vec<Adv>) -> Case {
    Case {
        name,
        advisories,
        policy: Policy::default(),
        kev: None,
        epss: None,
        class: PatchClass::Low,
        rule: "",
        clock: disclosed(),
        due: None,
    }
}

impl Case {
    fn policy(mut self, f: impl FnOnce(&mut Policy)) -> Case {
        f(&mut self.policy);
        self
    }
    fn kev(mut self, added: NaiveDate) -> Case {
        self.kev = Some(added);
        self
    }
    fn epss(mut self, score: f64) -> Case {
        self.epss = Some(score);
        self
    }
    fn want(mut self, class: PatchClass, rule: &'static str, due: Option<DateTime<Utc>>) -> Case {
        self.class = class;
        self.rule = rule;
        self.due = due;
        self
    }
    fn clock(mut self, clock: DateTime<Utc>) -> Case {
        self.clock = clock;
        self
    }
}

#[test]
fn every_rule_and_mode() {
    use PatchClass::*;
    let d7 = Some(utc(2026, 11, 17, 9, 0, 0));
    let d30 = Some(utc(2026, 12, 10, 9, 0, 0));
    let next_cycle = Some(utc(2027, 1, 1, 0, 0, 0));
    let a = || Adv::new("DSA-9000-1");
    let cases = vec![
        case("cvss critical: 7 days", vec![a().cvss(CRIT_98)]).want(Critical, "cvss", d7),
        case("cvss high: 30 days", vec![a().cvss(HIGH_75)]).want(High, "cvss", d30),
        case(
            "cvss moderate: end of next month, across the year",
            vec![a().cvss(MOD_55)],
        )
        .want(Moderate, "cvss", next_cycle),
        case("cvss low: no due date", vec![a().cvss(LOW_37)]).want(Low, "cvss", None),
        case(
            "highest vector wins",
            vec![a().cvss(LOW_37).cvss(HIGH_75).cvss(MOD_55)],
        )
        .want(High, "cvss", d30),
        case("vendor only", vec![a().urgency("high")]).want(High, "vendor", d30),
        case(
            "max: vendor above cvss",
            vec![a().cvss(MOD_55).ubuntu("high")],
        )
        .want(High, "vendor", d30),
        case(
            "max: cvss above vendor",
            vec![a().cvss(CRIT_98).urgency("unimportant")],
        )
        .want(Critical, "cvss", d7),
        case(
            "max: a tie goes to cvss",
            vec![a().cvss(HIGH_75).urgency("high**")],
        )
        .want(High, "cvss", d30),
        case("vendor-first", vec![a().cvss(CRIT_98).urgency("low")])
            .policy(|p| p.combine = CombineMode::VendorFirst)
            .want(Low, "vendor", None),
        case(
            "vendor-first without a vendor rating",
            vec![a().cvss(HIGH_75).urgency("not yet assigned")],
        )
        .policy(|p| p.combine = CombineMode::VendorFirst)
        .want(High, "cvss", d30),
        case("cvss-first", vec![a().cvss(LOW_37).ubuntu("high")])
            .policy(|p| p.combine = CombineMode::CvssFirst)
            .want(Low, "cvss", None),
        case("cvss-first without a vector", vec![a().ubuntu("critical")])
            .policy(|p| p.combine = CombineMode::CvssFirst)
            .want(Critical, "vendor", d7),
        case(
            "unrated: the default class",
            vec![a().urgency("not yet assigned")],
        )
        .want(Moderate, "unrated", next_cycle),
        case("unrated: a configured class", vec![a()])
            .policy(|p| p.unrated = High)
            .want(High, "unrated", d30),
        case(
            "kev after disclosure: clock starts when added",
            vec![a().cvss(MOD_55)],
        )
        .kev(date(2026, 12, 1))
        .want(Critical, "kev", Some(utc(2026, 12, 8, 0, 0, 0)))
        .clock(utc(2026, 12, 1, 0, 0, 0)),
        case(
            "kev before disclosure: clock starts at disclosure",
            vec![a().cvss(LOW_37)],
        )
        .kev(date(2026, 1, 1))
        .want(Critical, "kev", d7),
        case(
            "kev on an already critical finding keeps the earlier clock",
            vec![a().cvss(CRIT_98)],
        )
        .kev(date(2026, 12, 1))
        .want(Critical, "cvss", d7),
        case(
            "epss escalates one class from its score date",
            vec![a().cvss(MOD_55)],
        )
        .epss(0.2)
        .want(High, "epss", Some(utc(2026, 12, 20, 12, 55, 0)))
        .clock(epss_date()),
        case(
            "epss exactly at the threshold escalates",
            vec![a().cvss(LOW_37)],
        )
        .epss(0.1)
        .want(Moderate, "epss", next_cycle)
        .clock(epss_date()),
        case(
            "epss below the threshold does nothing",
            vec![a().cvss(MOD_55)],
        )
        .epss(0.05)
        .want(Moderate, "cvss", next_cycle),
        case("epss disabled", vec![a().cvss(MOD_55)])
            .epss(0.9)
            .policy(|p| p.epss_threshold = None)
            .want(Moderate, "cvss", next_cycle),
        case("epss with a configured threshold", vec![a().cvss(MOD_55)])
            .epss(0.2)
            .policy(|p| p.epss_threshold = Some(0.5))
            .want(Moderate, "cvss", next_cycle),
        case(
            "kev and epss: the earlier clock (epss) decides",
            vec![a().cvss(HIGH_75)],
        )
        .kev(date(2026, 12, 15))
        .epss(0.3)
        .want(Critical, "epss", Some(utc(2026, 11, 27, 12, 55, 0)))
        .clock(epss_date()),
        case(
            "kev and epss: the earlier clock (kev) decides",
            vec![a().cvss(HIGH_75)],
        )
        .kev(date(2026, 11, 12))
        .epss(0.3)
        .want(Critical, "kev", Some(utc(2026, 11, 19, 0, 0, 0)))
        .clock(utc(2026, 11, 12, 0, 0, 0)),
        case(
            "an escalation never moves the deadline later",
            vec![a()
                .cvss(MOD_55)
                .published(Some(utc(2026, 9, 1, 0, 0, 0)), disclosed())],
        )
        .epss(0.5)
        .want(High, "epss", Some(utc(2026, 11, 1, 0, 0, 0)))
        .clock(epss_date()),
        case(
            "disclosure is the earliest published, else modified",
            vec![
                a().cvss(MOD_55),
                Adv::new("DEBIAN-CVE-2026-0001").published(None, utc(2026, 10, 5, 7, 0, 0)),
            ],
        )
        .want(Moderate, "cvss", Some(utc(2026, 12, 1, 0, 0, 0)))
        .clock(utc(2026, 10, 5, 7, 0, 0)),
        case("a 14-day cycle from an anchor", vec![a().cvss(MOD_55)])
            .policy(|p| {
                p.sla.cycle = patchwave_advisory::Cycle::Days {
                    days: 14,
                    anchor: date(2026, 11, 2),
                }
            })
            .want(Moderate, "cvss", Some(utc(2026, 11, 30, 0, 0, 0))),
        case("custom windows", vec![a().cvss(HIGH_75)])
            .policy(|p| p.sla.high_days = 14)
            .want(High, "cvss", Some(utc(2026, 11, 24, 9, 0, 0))),
    ];
    for c in cases {
        let advisories: Vec<Advisory> = c.advisories.into_iter().map(|a| a.0).collect();
        let v = run(&advisories, &c.policy, &intel(c.kev, c.epss));
        assert_eq!(
            (v.class, v.rule.name(), v.clock_start, v.due_at),
            (c.class, c.rule, c.clock, c.due),
            "{}",
            c.name
        );
        assert!(v.notes.is_empty(), "{}: {:?}", c.name, v.notes);
    }
}

#[test]
fn score_boundaries() {
    let class = |t| PatchClass::from_score_tenths(t);
    assert_eq!(
        [100, 90, 89, 70, 69, 40, 39, 0].map(class),
        [
            PatchClass::Critical,
            PatchClass::Critical,
            PatchClass::High,
            PatchClass::High,
            PatchClass::Moderate,
            PatchClass::Moderate,
            PatchClass::Low,
            PatchClass::Low
        ]
    );
    assert_eq!(PatchClass::Low.escalated(), PatchClass::Moderate);
    assert_eq!(PatchClass::Critical.escalated(), PatchClass::Critical);
}

#[test]
fn rules_carry_what_they_saw() {
    let v = run(
        &[Adv::new("DSA-9000-1").cvss(MOD_55).0],
        &Policy::default(),
        &intel(Some(date(2026, 12, 1)), Some(0.2)),
    );
    assert_eq!(
        v.rule,
        Rule::Kev {
            cve: "CVE-2026-0001".into(),
            date_added: date(2026, 12, 1),
            from: PatchClass::Moderate
        }
    );
    assert_eq!(
        v.rule.to_string(),
        "kev: CVE-2026-0001 added 2026-12-01 (escalated from moderate)"
    );
    assert_eq!(v.cvss_class, Some(PatchClass::Moderate));
    assert_eq!(v.vendor_class, None);
    assert_eq!(v.disclosed_at, disclosed());

    let v = run(
        &[Adv::new("DSA-9000-1").cvss(MOD_55).0],
        &Policy::default(),
        &intel(None, Some(0.25)),
    );
    assert_eq!(
        v.rule.to_string(),
        "epss: CVE-2026-0001 scored 0.25 on 2026-11-20 (escalated from moderate)"
    );
    let v = run(
        &[Adv::new("DSA-9000-1").urgency("medium**").0],
        &Policy::default(),
        &intel(None, None),
    );
    assert_eq!(
        v.rule.to_string(),
        "vendor: debian urgency medium** (DSA-9000-1)"
    );
}

#[test]
fn real_cves_map_vectors_and_priorities_are_used() {
    let a = usn("USN-7800-1");
    let v = run(
        std::slice::from_ref(&a),
        &Policy::default(),
        &intel(None, None),
    );
    assert_eq!(v.class, PatchClass::High);
    assert_eq!(
        v.rule,
        Rule::Cvss {
            advisory: "USN-7800-1".into(),
            cve: Some("CVE-2025-38500".into()),
            vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H".into(),
            score_tenths: 78
        }
    );
    assert_eq!(
        v.rule.to_string(),
        "cvss: 7.8 from CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H (USN-7800-1 CVE-2025-38500)"
    );
    assert_eq!(v.vendor_class, Some(PatchClass::Moderate));
    assert_eq!(v.disclosed_at, utc(2025, 10, 2, 13, 46, 50));
    assert_eq!(v.due_at, Some(utc(2025, 11, 1, 13, 46, 50)));
    assert!(v.notes.is_empty(), "{:?}", v.notes);

    // CVSS_V4 only, none scored by this stand-in: every vector is noted; the Ubuntu
    // priority (medium for CVE-2025-4516) decides.
    let py = usn("USN-7570-1");
    let evidence = [Evidence {
        advisory: &py,
        entries: vec![&py.affected[0]],
    }];
    let v = classify(&evidence, &intel(None, None), &Policy::default(), &score).unwrap();
    assert_eq!(v.class, PatchClass::Moderate);
    assert_eq!(v.rule.name(), "vendor");
    assert_eq!(v.cvss_class, None);
    assert_eq!(
        v.notes,
        [
            "USN-7570-1 CVE-2025-1795: CVSS_V4 `CVSS:4.0/AV:N/AC:H/AT:P/PR:L/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N` not scored: unknown vector CVSS:4.0/AV:N/AC:H/AT:P/PR:L/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
            "USN-7570-1 CVE-2025-4516: CVSS_V4 `CVSS:4.0/AV:L/AC:H/AT:P/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N` not scored: unknown vector CVSS:4.0/AV:L/AC:H/AT:P/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N",
        ]
    );
}

#[test]
fn no_evidence_no_verdict() {
    assert!(classify(&[], &intel(None, None), &Policy::default(), &score).is_none());
}
