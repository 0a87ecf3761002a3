//! Matching and classification at fleet scale: 10,000 hosts × 1,500 packages against 50,000
//! advisories, versions ordered by the real Debian plugin (batched `compare-versions`).
//!
//! ```text
//! make plugins
//! cargo bench -p patchwave-engine --bench findings
//! ```
//!
//! Prints the time of a full assessment (match + classification, plugin calls included),
//! the fan-out of findings to hosts, the work counters and the peak RSS. Target: a full
//! assessment < 2 s on the 2-core CI machine.
//!
//! The fleet is generated, deterministic and shaped like a real one: 40 golden images
//! (24 Debian 12, 16 Ubuntu 22.04) at 25 patch levels, so hosts share inventories the way
//! auto-scaled groups do; each package has a handful of Debian-style versions (epochs, `~`
//! backports, `+debNuM` revisions) from a history of ~46 revisions, of which hosts run 40–46.
//! Advisories are skewed towards a few hot packages (as kernels and OpenSSL are); 99 % were
//! fixed in the package's past (they must still be checked), 1 % are recent enough to affect
//! hosts. They carry CVSS v3.x vectors and vendor severities, some are withdrawn, some use
//! `last_affected`; KEV and EPSS name some of their CVEs.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use patchwave_advisory::{parse_epss, parse_kev, parse_osv, Source};
use patchwave_core::{Environment, HostId, Installed, OsFacts};
use patchwave_engine::findings::{
    assess, AssessOptions, FleetInventories, Intelligence, PluginOracle,
};
use patchwave_engine::plugins::PluginSet;
use patchwave_plugin_host::{AuditLog, Limits, PluginGrants, PluginRuntime, RuntimeOptions};
use patchwave_store::{FleetHost, HostRecord, InventoryId};

const HOSTS: usize = 10_000;
const PACKAGES: usize = 1_500;
const ADVISORIES: usize = 50_000;
const IMAGES: usize = 40;
const LEVELS: usize = 25;
/// The oldest package revision installed anywhere in the fleet; revisions go up to 46.
const INSTALLED_FROM: usize = 40;

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Revision `r` (1-based) of package `p` in Debian syntax.
fn version(p: usize, r: usize) -> String {
    let upstream = format!("{}.{}.{}", 1 + p % 5, p % 17, p % 7);
    match p % 10 {
        0 => format!("1:{upstream}-{r}"),
        3 => format!("{upstream}-1~deb12u{r}"),
        6 => format!("{upstream}+dfsg-{r}ubuntu0.{r}"),
        _ => format!("{upstream}-{r}+deb12u{r}"),
    }
}

fn name(p: usize) -> String {
    format!("pkg{p:04}")
}

fn fleet() -> FleetInventories {
    let mut rng = Rng(7);
    // Per image: a base revision (40..=42) per package; per level: +0..=2 on a subset.
    let bases: Vec<Vec<usize>> = (0..IMAGES)
        .map(|_| {
            (0..PACKAGES)
                .map(|_| INSTALLED_FROM + rng.below(3))
                .collect()
        })
        .collect();
    let mut inventories = HashMap::new();
    for (img, base) in bases.iter().enumerate() {
        for level in 0..LEVELS {
            let packages: Vec<Installed> = (0..PACKAGES)
                .map(|p| {
                    let bump = if (p * 31 + level * 17) % 5 < level % 5 {
                        1 + level % 3
                    } else {
                        0
                    };
                    let r = base[p] + bump;
                    Installed {
                        name: name(p),
                        version: version(p, r),
                        arch: "amd64".into(),
                        source: Some(name(p)),
                    }
                })
                .collect();
            inventories.insert(
                InventoryId((img * LEVELS + level) as i64),
                Arc::new(packages),
            );
        }
    }
    let hosts = (0..HOSTS)
        .map(|i| {
            let img = i % IMAGES;
            let level = (i / IMAGES) % LEVELS;
            let (id, version_id) = if img < 24 {
                ("debian", "12")
            } else {
                ("ubuntu", "22.04")
            };
            FleetHost {
                record: HostRecord {
                    id: HostId::from(format!("h{i:05}").as_str()),
                    address: format!("10.0.{}.{}", i / 250, i % 250),
                    port: None,
                    env: if i % 10 == 0 {
                        Environment::NonProd
                    } else {
                        Environment::Prod
                    },
                    scope: format!("team{}", i % 12),
                    tags: Vec::new(),
                    transport: "ssh".into(),
                },
                facts: Some(OsFacts {
                    id: id.into(),
                    version_id: version_id.into(),
                    codename: None,
                    pretty_name: None,
                    kernel: "6.1.0".into(),
                    arch: "x86_64".into(),
                    reboot_required: false,
                }),
                inventory: Some(InventoryId((img * LEVELS + level) as i64)),
                last_success_at: None,
                status: None,
            }
        })
        .collect();
    FleetInventories { hosts, inventories }
}

const VECTORS: &[&str] = &[
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
    "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
    "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
];

fn advisories() -> (String, String, String) {
    let mut rng = Rng(11);
    let start = Utc.with_ymd_and_hms(2024, 11, 1, 0, 0, 0).unwrap();
    let mut docs = Vec::with_capacity(ADVISORIES);
    let mut kev = Vec::new();
    let mut epss = String::from(
        "#model_version:v2025.03.14,score_date:2026-11-25T00:00:00Z\ncve,epss,percentile\n",
    );
    for j in 0..ADVISORIES {
        // 30% of advisories hit 50 hot packages.
        let p = if rng.below(10) < 3 {
            rng.below(50)
        } else {
            rng.below(PACKAGES)
        };
        let ubuntu = j % 2 == 1;
        let ecosystem = if ubuntu {
            "Ubuntu:22.04:LTS"
        } else {
            "Debian:12"
        };
        // Most advisories were fixed long before the fleet's oldest revision; about 1 in 100
        // is recent enough to affect some hosts.
        let fixed_rev = if rng.below(100) == 0 {
            INSTALLED_FROM + 1 + rng.below(6)
        } else {
            1 + rng.below(INSTALLED_FROM - 1)
        };
        let fixed = version(p, fixed_rev);
        let events = if j % 23 == 0 {
            format!(
                r#"[{{"introduced":"0"}},{{"last_affected":"{}"}}]"#,
                version(p, fixed_rev - 1)
            )
        } else {
            format!(r#"[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]"#)
        };
        let published = start + Duration::hours(rng.below(2 * 365 * 24) as i64);
        let cve = format!("CVE-{}-{:05}", 2024 + j % 3, j);
        let vendor = if ubuntu {
            let pr = ["negligible", "low", "medium", "high", "critical"][rng.below(5)];
            format!(r#","ecosystem_specific":{{"priority":"{pr}"}}"#)
        } else {
            let ur = ["unimportant", "low", "medium", "high"][rng.below(4)];
            format!(r#","ecosystem_specific":{{"urgency":"{ur}"}}"#)
        };
        let withdrawn = if j % 101 == 0 {
            r#","withdrawn":"2026-01-01T00:00:00Z""#
        } else {
            ""
        };
        docs.push(format!(
            r#"{{"schema_version":"1.6.0","id":"BENCH-{j}","modified":"2026-11-01T00:00:00Z","published":"{}","aliases":["{cve}"]{withdrawn},"severity":[{{"type":"CVSS_V3","score":"{}"}}],"affected":[{{"package":{{"ecosystem":"{ecosystem}","name":"{}"}},"ranges":[{{"type":"ECOSYSTEM","events":{events}}}]{vendor}}}]}}"#,
            published.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            VECTORS[rng.below(VECTORS.len())],
            name(p),
        ));
        if j % 100 == 0 {
            kev.push(format!(
                r#"{{"cveID":"{cve}","vendorProject":"x","product":"x","vulnerabilityName":"x","dateAdded":"2026-06-01","shortDescription":"x","requiredAction":"x","dueDate":"2026-06-22","knownRansomwareCampaignUse":"Unknown","notes":"","cwes":[]}}"#
            ));
        }
        epss.push_str(&format!(
            "{cve},{:.5},{:.5}\n",
            rng.below(1000) as f64 / 1000.0,
            0.5
        ));
    }
    let kev = format!(
        r#"{{"title":"bench","catalogVersion":"2026.11.25","dateReleased":"2026-11-25T00:00:00.000Z","count":{},"vulnerabilities":[{}]}}"#,
        kev.len(),
        kev.join(",")
    );
    (format!("[{}]", docs.join(",")), kev, epss)
}

fn plugin_dir() -> PathBuf {
    std::env::var_os("PATCHWAVE_PLUGIN_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../plugins/target/wasm32-wasip2/release")
        })
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once as a smoke test.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(AuditLog::open(&dir.path().join("audit.jsonl")).unwrap());
    let runtime = PluginRuntime::new(RuntimeOptions::default(), audit).unwrap();
    let path = plugin_dir().join("patchwave_plugin_debian.wasm");
    assert!(
        path.is_file(),
        "{} is missing: run `make plugins`",
        path.display()
    );
    let debian = rt
        .block_on(runtime.load(&path, PluginGrants::Manifest, Limits::default()))
        .unwrap();
    let plugins = PluginSet::from_plugins([debian]);

    let t = Instant::now();
    let fleet = fleet();
    let (osv, kev, epss) = advisories();
    let source = Source {
        kind: "bench".into(),
        location: "generated".into(),
        fetched_at: Utc::now(),
    };
    let (advisories, rejected) = parse_osv(osv.as_bytes(), &source).unwrap();
    assert!(rejected.is_empty(), "{:?}", rejected.first());
    let (kev, _) = parse_kev(kev.as_bytes(), "generated").unwrap();
    let (epss, _) = parse_epss(epss.as_bytes(), "generated").unwrap();
    let intelligence = Intelligence::new(
        advisories,
        Some(&kev),
        Some(&epss),
        patchwave_advisory::Policy::default(),
    );
    println!(
        "setup: {} hosts, {} distinct inventories × {} packages, {} advisories, {} KEV, {} EPSS rows ({:.1} s)",
        fleet.hosts.len(),
        fleet.inventories.len(),
        PACKAGES,
        intelligence.index().len(),
        kev.entries.len(),
        epss.rows.len(),
        t.elapsed().as_secs_f64()
    );

    let oracle: Arc<dyn patchwave_engine::findings::VersionOracle> =
        Arc::new(PluginOracle::new(&plugins));
    let runs = 3;
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let out = rt.block_on(assess(
            &fleet,
            &intelligence,
            oracle.clone(),
            AssessOptions::default(),
        ));
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(out);
    }
    let out = last.unwrap();
    let now = Utc::now();
    let t = Instant::now();
    let all = out.findings(now);
    let fan_out = t.elapsed().as_secs_f64();
    let overdue = all.iter().filter(|f| f.overdue(now)).count();
    let s = out.stats;
    println!(
        "assess (match + classify, plugin compare included): best of {runs}: {:.3} s  [target < 2 s]",
        best
    );
    println!(
        "  {} hosts assessed in {} cohorts; {} distinct queries, {} vulnerable; {} version pairs in {} compare-versions calls; {} undecided ranges",
        s.assessed_hosts, s.cohorts, s.distinct_queries, s.vulnerable_queries, s.version_pairs, s.compare_calls, out.errors.len()
    );
    println!(
        "fan-out to hosts: {} findings ({} overdue) in {:.3} s",
        all.len(),
        overdue,
        fan_out
    );
    println!("peak RSS: {:.0} MiB", peak_rss_mib());
    assert_eq!(out.count(), all.len());
    assert!(out.unassessed.is_empty());
}
