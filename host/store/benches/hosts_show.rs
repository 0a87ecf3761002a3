//! `hosts show` against a fleet-sized SQLite store.
//!
//! Seeds a file store with 100,000 registered hosts, each scanned once: 100 of them carry a
//! full 3,000-package inventory of their own, the rest one of 50 small image inventories.
//! Then measures reading one host's summary, one full inventory, a fleet-wide package lookup
//! and the whole fleet listing.
//!
//! `cargo bench -p patchwave-store --bench hosts_show -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use patchwave_core::{Environment, HostId, Installed, OsFacts};
use patchwave_store::{HostRecord, ScanOutcome, ScanResult, SqliteStore, Store};

const HOSTS: usize = 100_000;
/// Every `FULL_EVERY`th host has its own 3,000-package inventory.
const FULL_EVERY: usize = 1_000;
const FULL_PACKAGES: usize = 3_000;
const IMAGES: usize = 50;
const IMAGE_PACKAGES: usize = 20;

fn id(i: usize) -> HostId {
    HostId(format!("host-{i:06}"))
}

fn package(name: String, version: String, i: usize) -> Installed {
    Installed {
        name,
        version,
        arch: if i.is_multiple_of(10) { "all" } else { "amd64" }.into(),
        source: i.is_multiple_of(3).then(|| format!("src-{}", i / 3)),
    }
}

fn full_inventory(host: usize) -> Vec<Installed> {
    (0..FULL_PACKAGES)
        .map(|p| {
            // One package differs per host, so every full host has its own snapshot.
            let patch = if p == host % FULL_PACKAGES { host } else { 0 };
            package(format!("pkg-{p:04}"), format!("1.{}.{patch}-1", p % 17), p)
        })
        .collect()
}

fn image_inventory(image: usize) -> Vec<Installed> {
    (0..IMAGE_PACKAGES)
        .map(|p| package(format!("pkg-{p:04}"), format!("2.{image}.{p}-1"), p))
        .collect()
}

fn outcome(at: DateTime<Utc>, packages: Vec<Installed>) -> ScanOutcome {
    ScanOutcome {
        started_at: at,
        finished_at: at,
        result: ScanResult::Ok {
            plugin: "debian".into(),
            plugin_digest: "0f".repeat(32),
            facts: OsFacts {
                id: "debian".into(),
                version_id: "12".into(),
                codename: Some("bookworm".into()),
                pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
                kernel: "6.1.0-18-amd64".into(),
                arch: "x86_64".into(),
                reboot_required: false,
            },
            upgradable: packages.iter().take(2).cloned().collect(),
            packages,
        },
    }
}

async fn seed(store: &SqliteStore) {
    let started = Instant::now();
    let hosts: Vec<HostRecord> = (0..HOSTS)
        .map(|i| HostRecord {
            id: id(i),
            address: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            port: None,
            env: if i.is_multiple_of(20) {
                Environment::NonProd
            } else {
                Environment::Prod
            },
            scope: format!("team-{}", i % 40),
            tags: vec![format!("rack-{}", i % 300)],
            transport: "ssh".into(),
        })
        .collect();
    store.register_hosts(&hosts).await.unwrap();
    let registered = started.elapsed();

    let at = DateTime::from_timestamp_millis(1_750_000_000_000).unwrap();
    let images: Vec<Vec<Installed>> = (0..IMAGES).map(image_inventory).collect();
    for chunk in (0..HOSTS).collect::<Vec<_>>().chunks(10_000) {
        let scans = chunk
            .iter()
            .map(|&i| {
                let packages = if i.is_multiple_of(FULL_EVERY) {
                    full_inventory(i)
                } else {
                    images[i % IMAGES].clone()
                };
                (id(i), outcome(at, packages))
            })
            .collect();
        store.seed_scans(scans).await.unwrap();
    }
    eprintln!(
        "seeded {HOSTS} hosts in {:.1?} (register {:.1?}), {} of them with {FULL_PACKAGES} packages",
        started.elapsed(),
        registered,
        HOSTS / FULL_EVERY
    );
}

/// xorshift64: a reproducible spread of host ids without a dependency.
struct Spread(u64);

impl Spread {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

fn hosts_show(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("bench.db")).unwrap();
    rt.block_on(seed(&store));
    let size = std::fs::metadata(store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!("database file: {:.1} MiB", size as f64 / (1024.0 * 1024.0));

    let mut spread = Spread(0x9e37_79b9_7f4a_7c15);
    c.bench_function("host_summary (random of 100k)", |b| {
        b.iter(|| {
            let host = id(spread.next(HOSTS));
            let summary = rt.block_on(store.host_summary(&host)).unwrap();
            black_box(summary.expect("seeded host"))
        })
    });

    c.bench_function("inventory (3,000 packages)", |b| {
        b.iter(|| {
            let host = id(spread.next(HOSTS / FULL_EVERY) * FULL_EVERY);
            let inventory = rt.block_on(store.inventory(&host)).unwrap();
            black_box(inventory.expect("seeded inventory").packages.len())
        })
    });

    c.bench_function("package_versions (on the 100 full hosts)", |b| {
        b.iter(|| {
            let name = format!("pkg-{:04}", 100 + spread.next(FULL_PACKAGES - 100));
            let found = rt.block_on(store.package_versions(&name)).unwrap();
            assert_eq!(found.len(), HOSTS / FULL_EVERY);
            black_box(found)
        })
    });

    let mut slow = c.benchmark_group("fleet");
    slow.sample_size(10);
    slow.bench_function("list_hosts (100k summaries)", |b| {
        b.iter(|| black_box(rt.block_on(store.list_hosts()).unwrap().len()))
    });
    slow.finish();
}

criterion_group!(benches, hosts_show);
criterion_main!(benches);
