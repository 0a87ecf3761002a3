//! The rollout executor's orchestration overhead on a 1,000-host plan.
//!
//! ```text
//! make plugins
//! cargo bench -p patchwave-engine --bench rollout
//! ```
//!
//! Drives a real rollout end to end through `patchwave_engine::rollout::Executor`: the real
//! Debian plugin (wasm, every exec grant-checked and audited to a real hash-chained log,
//! opened as the CLI opens it: every line synced to disk before its call returns, each
//! sync's head recorded in the store), a real SQLite store, `decide` and every save. Only the hosts are simulated: each one is a
//! `patchwave_transport::sim` host, the transport `transport = "sim"` builds: a
//! [`Transport`] holding its own dpkg database (300 packages, `acme-web 1.0-1` among them)
//! that answers the commands the plugin runs at once, with no process and no network.
//!
//! The plan: 50 non-prod hosts (the canary) and 950 prod hosts, all in scope `a`, a manifest
//! pinning `acme-web=1.0-2` (class high), the default policy (waves 5/25/50/100 %, soak
//! 24 h), no health sources, 64 host steps at a time. The clock is a controlled one: it moves
//! 1 ms per decision and jumps over the soak.
//!
//! Prints, per run and as best and median of the runs: the process CPU time (user + system,
//! from `/proc/self/stat`, 10 ms resolution) from `create` to the `Completed` outcome, per
//! host (each host is in exactly one stage) and per host of each stage; the wall time spent
//! inside the simulated hosts (an upper bound of their CPU) and the CPU net of it; the exec
//! requests answered and the plugin calls they imply; decisions (each one saved); the size of
//! the final stored state; the audit log's lines, its syncs (their wall time and the syncer
//! thread's CPU, which the process CPU includes) and the heads recorded in the store (the
//! run ends with the log flushed, as a command does before it exits). Target:
//! orchestration < 1 ms CPU per host per wave.
//!
//! Two fleet shapes: every host's inventory distinct (some of its package versions carry
//! the host's number), so every scan the rollout records stores a new inventory, the
//! store's worst case; and hosts made from 20 golden images, whose inventories the store
//! keeps once per image.
//!
//! The bench fails when the rollout does not complete with all 1,000 hosts verified and at
//! the pinned version, or when the plugin runs a command the simulated hosts do not know.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use patchwave_core::{Change, Environment, HostId};
use patchwave_engine::config::{HostConfig, SimSpec, TransportSpec};
use patchwave_engine::plugins::PluginSet;
use patchwave_engine::rollout::{Executor, NoHealthSources};
use patchwave_engine::transports::sim_image;
use patchwave_engine::{HostTarget, ScanEvent, Scanner};
use patchwave_plugin_host::{
    AuditLog, AuditStats, Limits, PluginGrants, PluginRuntime, RuntimeOptions,
};
use patchwave_rollout::{
    plan, EventKind, HostPhase, Observation, Outcome, PatchClass, PinnedPackage, Plan, Policy,
    ReleaseManifest, Rollout, StageId, Status, Target, WaitingFor,
};
use patchwave_store::{SqliteStore, Store};
use patchwave_transport::{SimImage, SimKind, SimStats, SimTransport, Transport};

const HOSTS: usize = 1_000;
const NON_PROD: usize = 50;
/// Packages on every simulated host, `acme-web` included.
const PACKAGES: usize = 300;
/// Host steps the executor runs at once.
const CONCURRENCY: usize = 64;
const RUNS: usize = 3;

const PACKAGE: &str = "acme-web";
const FROM: &str = "1.0-1";
const TO: &str = "1.0-2";

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat` (fixed at 100 on
/// every architecture patchwave runs on).
const USER_HZ: f64 = 100.0;

// ---------------------------------------------------------------------------------------
// Measuring

/// CPU time (user + system) of this process so far, in seconds: every thread, including
/// those that have exited.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may contain blanks and parentheses; fields 3.. follow the
    // last `)`. utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields[i].parse::<u64>().expect("a tick count") as f64;
    (ticks(11) + ticks(12)) / USER_HZ
}

/// The rollout's clock: moves 1 ms per decision (so every decision has its own time, and
/// the stage starts in the rollout's history can be matched with CPU samples) and jumps
/// over waits. Samples the process CPU time at every decision.
struct SimClock {
    millis: AtomicI64,
    samples: Mutex<Vec<(DateTime<Utc>, f64)>>,
}

impl SimClock {
    fn new(start: DateTime<Utc>) -> SimClock {
        SimClock {
            millis: AtomicI64::new(start.timestamp_millis()),
            samples: Mutex::new(Vec::new()),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        let at = self.millis.fetch_add(1, Ordering::SeqCst) + 1;
        let at = DateTime::from_timestamp_millis(at).expect("a time in range");
        self.samples
            .lock()
            .unwrap()
            .push((at, process_cpu_seconds()));
        at
    }

    /// Move to just after `at`.
    fn jump_past(&self, at: DateTime<Utc>) {
        self.millis
            .fetch_max(at.timestamp_millis() + 1_000, Ordering::SeqCst);
    }

    /// The CPU time sampled when the clock gave `at`.
    fn cpu_at(&self, at: DateTime<Utc>) -> Option<f64> {
        let samples = self.samples.lock().unwrap();
        samples.iter().find(|(t, _)| *t == at).map(|(_, cpu)| *cpu)
    }
}

// ---------------------------------------------------------------------------------------
// The simulated hosts (`patchwave_transport::sim`)

/// Exec requests answered, by kind, over the whole fleet.
type ExecCounts = [u64; SimKind::ALL.len()];

/// The image of host number `image` (`None`: the base image the others are rebuilt
/// from): [`PACKAGES`]` - 1` packages of the Debian 12 list plus `acme-web` at [`FROM`],
/// with an archive offering [`TO`].
fn sim_spec(image: Option<usize>) -> SimSpec {
    SimSpec {
        packages: PACKAGES - 1,
        image,
        installed: BTreeMap::from([(PACKAGE.to_string(), FROM.to_string())]),
        archive: BTreeMap::from([(PACKAGE.to_string(), vec![FROM.to_string(), TO.to_string()])]),
    }
}

fn base_image() -> SimImage {
    let base = sim_image(&sim_spec(None));
    assert_eq!(base.len(), PACKAGES, "too few packages in the data");
    base
}

// ---------------------------------------------------------------------------------------
// The fleet, the plan and one run

fn host_id(n: usize) -> HostId {
    HostId::from(format!("h{n:04}").as_str())
}

fn environment(n: usize) -> Environment {
    if n < NON_PROD {
        Environment::NonProd
    } else {
        Environment::Prod
    }
}

/// How the fleet's inventories relate, which decides how much the store writes.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    /// Host `n` is made from image `n % images`.
    images: usize,
}

/// Every host distinct (the store's worst case: each recorded scan stores a new
/// inventory), then a fleet of 20 golden images (hosts share inventories, as auto-scaled
/// groups do, and the store keeps each once).
const SHAPES: [Shape; 2] = [
    Shape {
        name: "every inventory distinct",
        images: HOSTS,
    },
    Shape {
        name: "20 golden images (shared inventories)",
        images: 20,
    },
];

struct Fleet {
    hosts: Vec<Arc<SimTransport>>,
    stats: Arc<SimStats>,
    images: usize,
}

fn fleet(base: &SimImage, shape: Shape) -> Fleet {
    let stats = Arc::new(SimStats::default());
    // What `transport = "sim"` would build from the spec the hosts are configured with.
    assert!(sim_image(&sim_spec(Some(1))) == base.rebuilt(1));
    let hosts = (0..HOSTS)
        .map(|n| {
            Arc::new(SimTransport::new(
                host_id(n),
                base.rebuilt(n % shape.images),
                stats.clone(),
            ))
        })
        .collect();
    Fleet {
        hosts,
        stats,
        images: shape.images,
    }
}

fn targets(fleet: &Fleet) -> Vec<HostTarget> {
    fleet
        .hosts
        .iter()
        .enumerate()
        .map(|(n, host)| HostTarget {
            config: HostConfig {
                id: host.host().clone(),
                transport: TransportSpec::Sim(sim_spec(Some(n % fleet.images))),
                env: environment(n),
                scope: "a".into(),
                tags: Vec::new(),
                plugin: None,
            },
            transport: host.clone(),
        })
        .collect()
}

fn rollout_plan() -> Plan {
    let manifest = ReleaseManifest::new(
        vec![PinnedPackage::new("Debian:12", PACKAGE, TO)],
        "bench",
        PatchClass::High,
    )
    .unwrap();
    let targets: Vec<Target> = (0..HOSTS)
        .map(|n| Target {
            host: host_id(n),
            environment: environment(n),
            scope: "a".into(),
            changes: vec![Change {
                name: PACKAGE.into(),
                from: Some(FROM.into()),
                to: TO.into(),
            }],
        })
        .collect();
    plan(&manifest, &targets, &Policy::default(), None).unwrap()
}

fn plugin_dir() -> PathBuf {
    std::env::var_os("PATCHWAVE_PLUGIN_BUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../plugins/target/wasm32-wasip2/release")
        })
}

/// What one run measured.
struct Figures {
    cpu: f64,
    wall: f64,
    host: f64,
    decisions: usize,
    ticks: usize,
    execs: ExecCounts,
    /// Per stage: its hosts and the CPU from its start to the next stage's start (the
    /// canary's includes the soak's end and the smoke check).
    stages: Vec<(StageId, usize, f64)>,
    state_bytes: usize,
    db_bytes: u64,
    audit: AuditFigures,
}

/// Everything a run needs that is set up before the measurement starts.
struct Setup {
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    base: SimImage,
    plan: Plan,
    wasm: PathBuf,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let wasm = plugin_dir().join("patchwave_plugin_debian.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run `make plugins`",
        wasm.display()
    );
    Setup {
        rt,
        dir: tempfile::tempdir().unwrap(),
        base: base_image(),
        plan: rollout_plan(),
        wasm,
    }
}

fn run(setup: &Setup, shape: Shape, number: usize) -> Figures {
    let dir = setup
        .dir
        .path()
        .join(format!("{}-run{number}", shape.images));
    let audit_path = dir.join("audit.jsonl");
    let db = dir.join("state.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
    // Anchored in the store, as the CLI opens it: every sync's head is recorded there.
    let audit = Arc::new(
        setup
            .rt
            .block_on(patchwave_engine::audit::open(&audit_path, store.clone()))
            .unwrap(),
    );
    let options = RuntimeOptions {
        cache_dir: Some(setup.dir.path().join("cache")),
        ..RuntimeOptions::default()
    };
    let runtime = PluginRuntime::new(options, audit.clone()).unwrap();
    let debian = setup
        .rt
        .block_on(runtime.load(&setup.wasm, PluginGrants::Manifest, Limits::default()))
        .unwrap();
    let plugins = Arc::new(PluginSet::from_plugins([debian]));
    let fleet = fleet(&setup.base, shape);
    let targets = targets(&fleet);

    // Every host scanned once before the rollout, as `rollout plan` requires.
    let scanner = Scanner::new(plugins.clone(), store.clone(), CONCURRENCY);
    let scan = setup
        .rt
        .block_on(scanner.scan(targets.clone(), Arc::new(|_: ScanEvent| {})))
        .unwrap();
    assert_eq!(scan.ok_count(), HOSTS, "the pre-rollout scan");
    let before = fleet.stats.counts();
    let host_before = fleet.stats.seconds();
    let audit_before = audit.stats();
    let sync_cpu_before = thread_cpu_seconds("patchwave-audit");

    let executor = Executor::new(
        store.clone(),
        plugins,
        targets,
        Arc::new(NoHealthSources),
        CONCURRENCY,
        audit.clone(),
    );
    let clock = SimClock::new(DateTime::from_timestamp(1_798_000_000, 0).unwrap());
    let id = format!("bench-{number}");
    let wall = Instant::now();
    let cpu = process_cpu_seconds();
    let (rollout, decisions, ticks) = setup
        .rt
        .block_on(drive(&executor, &id, &setup.plan, &clock));
    // As a command does before it exits: every line on disk, the head in the store.
    setup.rt.block_on(audit.flush()).unwrap();
    let cpu_end = process_cpu_seconds();
    let wall = wall.elapsed().as_secs_f64();

    check_completed(&rollout, &fleet);
    let execs = delta(fleet.stats.counts(), before);
    let record = setup.rt.block_on(store.rollout(&id)).unwrap().unwrap();
    Figures {
        cpu: cpu_end - cpu,
        wall,
        host: fleet.stats.seconds() - host_before,
        decisions,
        ticks,
        execs,
        stages: stage_cpu(&rollout, &setup.plan, &clock, cpu_end),
        state_bytes: serde_json::to_string(&record.state).unwrap().len(),
        db_bytes: file_size(&db) + file_size(&db.with_extension("db-wal")),
        audit: AuditFigures::new(
            &audit_before,
            &audit.stats(),
            thread_cpu_seconds("patchwave-audit") - sync_cpu_before,
            AuditLog::verify(
                &audit_path,
                setup.rt.block_on(store.audit_anchor()).unwrap().as_ref(),
            )
            .unwrap()
            .lines(),
        ),
    }
}

/// The audit log's part of a run.
struct AuditFigures {
    lines: u64,
    syncs: u64,
    sync_wall: f64,
    /// CPU of the syncer thread (the `fdatasync` calls and their wake-ups).
    sync_cpu: f64,
    anchor_records: u64,
    anchor_wall: f64,
}

impl AuditFigures {
    /// The figures between `before` and `after`; `verified_lines` is what `verify` (against
    /// the store's anchor) counts in the whole log, which must hold every line written.
    fn new(before: &AuditStats, after: &AuditStats, sync_cpu: f64, verified_lines: u64) -> Self {
        assert!(
            verified_lines >= after.lines,
            "the log verifies and holds every line"
        );
        AuditFigures {
            lines: after.lines - before.lines,
            syncs: after.syncs - before.syncs,
            sync_wall: (after.sync_time - before.sync_time).as_secs_f64(),
            sync_cpu,
            anchor_records: after.anchor_records - before.anchor_records,
            anchor_wall: (after.anchor_time - before.anchor_time).as_secs_f64(),
        }
    }
}

/// CPU time (user + system) of this process's threads whose name starts with `prefix`,
/// live ones only (the audit syncer lives as long as its log), in seconds.
fn thread_cpu_seconds(prefix: &str) -> f64 {
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let task = task.expect("a task entry").path();
        let Ok(stat) = std::fs::read_to_string(task.join("stat")) else {
            continue;
        };
        let name =
            &stat[stat.find('(').expect("a stat line") + 1..stat.rfind(')').expect("a stat line")];
        if !name.starts_with(prefix) {
            continue;
        }
        let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        let ticks = |i: usize| fields[i].parse::<u64>().expect("a tick count") as f64;
        total += (ticks(11) + ticks(12)) / USER_HZ;
    }
    total
}

/// Create, start and tick the rollout to its end, jumping the clock over every wait.
/// Returns the final state, the decisions taken and the ticks run.
async fn drive(
    executor: &Executor,
    id: &str,
    plan: &Plan,
    clock: &SimClock,
) -> (Rollout, usize, usize) {
    executor
        .create(Rollout::new(id, plan.clone()), "bench", clock.now())
        .await
        .unwrap();
    executor
        .post(id, &Observation::Start { by: "bench".into() }, clock.now())
        .await
        .unwrap();
    let now = || clock.now();
    let mut decisions = 0;
    for ticks in 1..=20 {
        let report = executor.tick(id, &now).await.unwrap();
        decisions += report.decisions;
        if let Some(outcome) = report.outcome {
            assert_eq!(
                outcome,
                Outcome::Completed {
                    hosts: HOSTS,
                    failed: 0,
                    rollback_failed: 0
                }
            );
            return (report.rollout, decisions, ticks);
        }
        match report.rollout.waiting_for() {
            WaitingFor::Until { at, .. } => clock.jump_past(*at),
            other => panic!(
                "the rollout waits for {other:?} ({:?}) at {}",
                report.waiting,
                report.rollout.status()
            ),
        }
    }
    panic!("the rollout did not finish in 20 ticks");
}

/// The rollout completed, every host verified at the pin, and every simulated host holds
/// the pinned version; no command was unknown.
fn check_completed(rollout: &Rollout, fleet: &Fleet) {
    let unknown = fleet.stats.unknown();
    assert!(
        unknown.is_empty(),
        "the plugin ran commands the simulated hosts do not know: {unknown:?}"
    );
    assert_eq!(rollout.status(), &Status::Completed);
    let verified = rollout
        .hosts()
        .values()
        .filter(|h| h.phase == HostPhase::Verified)
        .count();
    assert_eq!(verified, HOSTS, "hosts verified");
    assert_eq!(rollout.counters().applies, HOSTS as u64);
    assert_eq!(rollout.counters().rollbacks, 0);
    for host in &fleet.hosts {
        assert_eq!(
            host.installed(PACKAGE),
            Some((TO.to_string(), false)),
            "{}",
            host.host()
        );
    }
}

fn delta(after: ExecCounts, before: ExecCounts) -> ExecCounts {
    std::array::from_fn(|i| after[i] - before[i])
}

/// CPU per stage, from the stage starts in the rollout's history and the clock's samples.
fn stage_cpu(
    rollout: &Rollout,
    plan: &Plan,
    clock: &SimClock,
    cpu_end: f64,
) -> Vec<(StageId, usize, f64)> {
    let starts: Vec<(StageId, f64)> = rollout
        .history()
        .filter_map(|e| match &e.kind {
            EventKind::StageStarted { stage } => Some((*stage, clock.cpu_at(e.at)?)),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), plan.stages().len(), "a start for every stage");
    let hosts: BTreeMap<StageId, usize> = plan
        .stages()
        .iter()
        .map(|s| (s.id, s.hosts.len()))
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, (stage, cpu))| {
            let next = starts.get(i + 1).map_or(cpu_end, |(_, c)| *c);
            (*stage, hosts[stage], next - cpu)
        })
        .collect()
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

// ---------------------------------------------------------------------------------------
// Reporting

fn count(execs: &ExecCounts, kind: SimKind) -> u64 {
    execs[kind.index()]
}

/// Plugin calls, from the commands each function runs first or only: `facts` reads
/// os-release, `inventory` the whole database, `upgradable` simulates an upgrade, `apply`
/// installs, `verify` waits with `apt-get check`; `plan-rollback`, `apply` and `verify` each
/// read named packages once. Valid while nothing is rolled back.
fn plugin_calls(execs: &ExecCounts) -> Vec<(&'static str, u64)> {
    let facts = count(execs, SimKind::OsRelease);
    let inventory = count(execs, SimKind::DpkgQueryAll);
    let upgradable = count(execs, SimKind::AptSimulateUpgrade);
    let apply = count(execs, SimKind::AptInstall);
    let verify = count(execs, SimKind::AptCheck);
    let plan_rollback = count(execs, SimKind::DpkgQueryNamed) - apply - verify;
    vec![
        ("facts", facts),
        ("inventory", inventory),
        ("upgradable", upgradable),
        ("plan-rollback", plan_rollback),
        ("apply", apply),
        ("verify", verify),
    ]
}

fn ms(seconds: f64) -> String {
    format!("{:.1} ms", seconds * 1e3)
}

fn us(seconds: f64) -> String {
    format!("{:.0} µs", seconds * 1e6)
}

fn print_run(number: usize, f: &Figures) {
    let execs: u64 = f.execs.iter().sum();
    println!(
        "run {number}: CPU {} ({} per host; {} per host net of the simulated hosts' {}), wall {}, {} decisions in {} ticks, {} exec requests, {} audit lines in {} syncs ({} wall, syncer CPU {}), {} anchor records ({} wall)",
        ms(f.cpu),
        us(f.cpu / HOSTS as f64),
        us((f.cpu - f.host) / HOSTS as f64),
        ms(f.host),
        ms(f.wall),
        f.decisions,
        f.ticks,
        execs,
        f.audit.lines,
        f.audit.syncs,
        ms(f.audit.sync_wall),
        ms(f.audit.sync_cpu),
        f.audit.anchor_records,
        ms(f.audit.anchor_wall),
    );
    let stages: Vec<String> = f
        .stages
        .iter()
        .map(|(stage, hosts, cpu)| {
            format!(
                "{stage}: {hosts} hosts, {} = {} per host",
                ms(*cpu),
                us(cpu / *hosts as f64)
            )
        })
        .collect();
    println!("  per stage: {}", stages.join("; "));
}

fn print_detail(f: &Figures) {
    let kinds: Vec<String> = SimKind::ALL
        .iter()
        .filter(|kind| count(&f.execs, **kind) > 0)
        .map(|kind| format!("{} {}", kind.label(), count(&f.execs, *kind)))
        .collect();
    println!("exec requests answered (last run): {}", kinds.join(", "));
    let calls = plugin_calls(&f.execs);
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    let calls: Vec<String> = calls
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!(
        "plugin calls (last run, from the commands): {total}: {}",
        calls.join(", ")
    );
    println!(
        "stored state: {} bytes of JSON after the last save; database {} bytes",
        f.state_bytes, f.db_bytes
    );
}

fn best_and_median(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2])
}

fn print_summary(all: &[Figures]) {
    let per_host = |f: &Figures| f.cpu / HOSTS as f64;
    let (best, median) = best_and_median(all.iter().map(per_host));
    let (net_best, net_median) =
        best_and_median(all.iter().map(|f| (f.cpu - f.host) / HOSTS as f64));
    let (cpu_best, cpu_median) = best_and_median(all.iter().map(|f| f.cpu));
    let (wall_best, wall_median) = best_and_median(all.iter().map(|f| f.wall));
    let runs = all.len();
    println!(
        "rollout of {HOSTS} hosts, best / median of {runs}: CPU {} / {}; per host per wave {} / {} [target < 1 ms]; net of the simulated hosts {} / {}; wall {} / {}",
        ms(cpu_best),
        ms(cpu_median),
        us(best),
        us(median),
        us(net_best),
        us(net_median),
        ms(wall_best),
        ms(wall_median),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once as a smoke test.
    let runs = if std::env::args().any(|a| a == "--bench") {
        RUNS
    } else {
        1
    };
    let setup = setup();
    for shape in SHAPES {
        println!(
            "\n{HOSTS} simulated hosts ({NON_PROD} non-prod), {PACKAGES} packages each, {}; executor concurrency {CONCURRENCY}; {} stages",
            shape.name,
            setup.plan.stages().len()
        );
        let all: Vec<Figures> = (1..=runs)
            .map(|n| {
                let f = run(&setup, shape, n);
                print_run(n, &f);
                f
            })
            .collect();
        print_detail(all.last().expect("at least one run"));
        print_summary(&all);
    }
}
