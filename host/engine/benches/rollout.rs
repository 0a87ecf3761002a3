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
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use patchwave_core::{Change, Environment, HostId};
use patchwave_engine::config::{HostConfig, KeyRef, TransportSpec};
use patchwave_engine::plugins::PluginSet;
use patchwave_engine::rollout::{Executor, NoHealthSources};
use patchwave_engine::{HostTarget, ScanEvent, Scanner};
use patchwave_plugin_host::{
    AuditLog, AuditStats, Limits, PluginGrants, PluginRuntime, RuntimeOptions,
};
use patchwave_rollout::{
    plan, EventKind, HostPhase, Observation, Outcome, PatchClass, PinnedPackage, Plan, Policy,
    ReleaseManifest, Rollout, StageId, Status, Target, WaitingFor,
};
use patchwave_store::{SqliteStore, Store};
use patchwave_transport::{Command, Output, Transport, TransportError};

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

/// The real `dpkg-query -W` output of a Debian 12 machine; the simulated hosts' packages
/// are taken from it.
const DEBIAN12: &str = include_str!("../../../plugins/debian/tests/data/dpkg-query-debian12.txt");
/// The real `/etc/os-release` of a Debian 12 machine.
const OS_RELEASE: &str = include_str!("../../../plugins/debian/tests/data/os-release-debian12");
/// The `--showformat` the Debian plugin passes to `dpkg-query`. The simulated hosts answer
/// only this format: a different one would be parsed wrongly, so it is an unknown command.
const SHOW_FORMAT: &str =
    "--showformat=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\n";
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
// The simulated hosts

/// What the plugin asked a simulated host to run, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    OsRelease,
    Uname,
    RebootRequired,
    DpkgQueryAll,
    DpkgQueryNamed,
    AptSimulateUpgrade,
    AptCheck,
    AptInstall,
    AptSimulateInstall,
    AptRemove,
    AptSimulateRemove,
    AptMarkHold,
    AptMarkUnhold,
    AptMarkShowHold,
    DpkgConfigurePending,
    Unknown,
}

const KINDS: [(Kind, &str); 16] = [
    (Kind::OsRelease, "cat os-release"),
    (Kind::Uname, "uname -r -m"),
    (Kind::RebootRequired, "test -e reboot-required"),
    (Kind::DpkgQueryAll, "dpkg-query -W (all)"),
    (Kind::DpkgQueryNamed, "dpkg-query -W -- names"),
    (Kind::AptSimulateUpgrade, "apt-get -s upgrade"),
    (Kind::AptCheck, "apt-get check"),
    (Kind::AptInstall, "apt-get install"),
    (Kind::AptSimulateInstall, "apt-get -s install"),
    (Kind::AptRemove, "apt-get remove"),
    (Kind::AptSimulateRemove, "apt-get -s remove"),
    (Kind::AptMarkHold, "apt-mark hold"),
    (Kind::AptMarkUnhold, "apt-mark unhold"),
    (Kind::AptMarkShowHold, "apt-mark showhold"),
    (Kind::DpkgConfigurePending, "dpkg --configure -a"),
    (Kind::Unknown, "UNKNOWN"),
];

/// Exec requests answered, by kind, over the whole fleet.
type ExecCounts = [u64; KINDS.len()];

fn index(kind: Kind) -> usize {
    KINDS.iter().position(|(k, _)| *k == kind).expect("listed")
}

/// Counters shared by every simulated host.
#[derive(Default)]
struct FleetStats {
    execs: [AtomicU64; KINDS.len()],
    /// Wall time spent inside `Transport::exec`, in nanoseconds.
    host_nanos: AtomicU64,
    /// The first unknown commands, for the failure message.
    unknown: Mutex<Vec<String>>,
}

impl FleetStats {
    fn counts(&self) -> ExecCounts {
        std::array::from_fn(|i| self.execs[i].load(Ordering::SeqCst))
    }

    fn host_seconds(&self) -> f64 {
        self.host_nanos.load(Ordering::SeqCst) as f64 / 1e9
    }
}

/// The versions the simulated package archive offers, oldest first; a package not listed
/// is offered only at the version installed.
fn archive(name: &str) -> &'static [&'static str] {
    if name == PACKAGE {
        &[FROM, TO]
    } else {
        &[]
    }
}

/// One package instance in a simulated dpkg database.
#[derive(Clone, Debug)]
struct Package {
    /// dpkg's desired action: `i`nstall, `h`old, `r`emove.
    want: u8,
    /// dpkg's current status: `i`nstalled, `c`onfig-files.
    current: u8,
    name: Arc<str>,
    version: String,
    arch: Arc<str>,
    source: Arc<str>,
}

impl Package {
    fn write_line(&self, out: &mut String) {
        out.push(self.want as char);
        out.push(self.current as char);
        out.push_str(" \t");
        for field in [&*self.name, &self.version, &*self.arch] {
            out.push_str(field);
            out.push('\t');
        }
        out.push_str(&self.source);
        out.push('\n');
    }

    fn installed(&self) -> bool {
        self.current == b'i'
    }
}

/// The first `PACKAGES - 1` installed packages of the Debian 12 machine, plus `acme-web`
/// at [`FROM`], sorted by name.
fn base_packages() -> Vec<Package> {
    let mut seen = std::collections::BTreeSet::new();
    let mut packages: Vec<Package> = DEBIAN12
        .lines()
        .filter_map(|line| {
            let [status, name, version, arch, source] = line.split('\t').collect::<Vec<_>>()[..]
            else {
                return None;
            };
            (status == "ii " && seen.insert(name)).then(|| Package {
                want: b'i',
                current: b'i',
                name: name.into(),
                version: version.into(),
                arch: arch.into(),
                source: source.into(),
            })
        })
        .take(PACKAGES - 1)
        .collect();
    assert_eq!(packages.len(), PACKAGES - 1, "too few packages in the data");
    packages.push(Package {
        want: b'i',
        current: b'i',
        name: PACKAGE.into(),
        version: FROM.into(),
        arch: "amd64".into(),
        source: PACKAGE.into(),
    });
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

/// The packages of a host made from `image`: the base set, with every tenth package (by
/// an image-dependent offset) at the image's own rebuild `+imgN`, so no two images share
/// an inventory.
fn image_packages(base: &[Package], image: usize) -> Vec<Package> {
    base.iter()
        .enumerate()
        .map(|(p, pkg)| {
            let mut pkg = pkg.clone();
            if &*pkg.name != PACKAGE && (p + image).is_multiple_of(10) {
                pkg.version = format!("{}+img{image}", pkg.version);
            }
            pkg
        })
        .collect()
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

fn output(status: i32, stdout: impl Into<Vec<u8>>, stderr: impl Into<Vec<u8>>) -> Output {
    Output {
        status,
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

/// An `apt-get` command line: its verb, whether it only simulates, whether it may move
/// held packages, and the packages after `--`.
struct AptLine<'a> {
    verb: Option<&'a str>,
    simulate: bool,
    allow_held: bool,
    packages: &'a [String],
    /// Words that are neither options nor the verb nor after `--`.
    stray: usize,
}

impl<'a> AptLine<'a> {
    fn parse(args: &'a [String]) -> AptLine<'a> {
        let mut line = AptLine {
            verb: None,
            simulate: false,
            allow_held: false,
            packages: &[],
            stray: 0,
        };
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "--" => {
                    line.packages = &args[i + 1..];
                    break;
                }
                // `-o Name=value`: the value is not a word of its own.
                "-o" => i += 1,
                "-s" | "--simulate" => line.simulate = true,
                "--allow-change-held-packages" => line.allow_held = true,
                flag if flag.starts_with('-') => {}
                word if line.verb.is_none() => line.verb = Some(word),
                _ => line.stray += 1,
            }
            i += 1;
        }
        line
    }
}

/// What a simulated host makes of a command.
enum Request<'a> {
    Known(Kind),
    Named(Kind, &'a [String]),
    Apt(Kind, AptLine<'a>),
}

fn classify(cmd: &Command) -> Request<'_> {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    match (cmd.program.as_str(), &args[..]) {
        ("cat", ["/etc/os-release" | "/usr/lib/os-release"]) => Request::Known(Kind::OsRelease),
        ("uname", ["-r", "-m"]) => Request::Known(Kind::Uname),
        ("test", ["-e", "/var/run/reboot-required"]) => Request::Known(Kind::RebootRequired),
        ("dpkg-query", ["-W", format]) if *format == SHOW_FORMAT => {
            Request::Known(Kind::DpkgQueryAll)
        }
        ("dpkg-query", ["-W", format, "--", ..]) if *format == SHOW_FORMAT => {
            Request::Named(Kind::DpkgQueryNamed, &cmd.args[3..])
        }
        ("dpkg", [.., "--configure", "-a"]) => Request::Known(Kind::DpkgConfigurePending),
        ("apt-mark", ["showhold"]) => Request::Known(Kind::AptMarkShowHold),
        ("apt-mark", ["hold", "--", _]) => Request::Named(Kind::AptMarkHold, &cmd.args[2..]),
        ("apt-mark", ["unhold", "--", _]) => Request::Named(Kind::AptMarkUnhold, &cmd.args[2..]),
        ("apt-get", _) => classify_apt(&cmd.args),
        _ => Request::Known(Kind::Unknown),
    }
}

fn classify_apt(args: &[String]) -> Request<'_> {
    let line = AptLine::parse(args);
    let kind = match (line.verb, line.simulate, line.packages.is_empty()) {
        _ if line.stray > 0 => Kind::Unknown,
        (Some("upgrade"), true, true) => Kind::AptSimulateUpgrade,
        (Some("check"), false, true) => Kind::AptCheck,
        (Some("install"), false, false) => Kind::AptInstall,
        (Some("install"), true, false) => Kind::AptSimulateInstall,
        (Some("remove"), false, false) => Kind::AptRemove,
        (Some("remove"), true, false) => Kind::AptSimulateRemove,
        _ => Kind::Unknown,
    };
    Request::Apt(kind, line)
}

/// One simulated host: its dpkg database, answering the Debian plugin's commands at once.
struct SimHost {
    id: HostId,
    packages: Mutex<Vec<Package>>,
    stats: Arc<FleetStats>,
}

impl SimHost {
    fn new(id: HostId, packages: Vec<Package>, stats: Arc<FleetStats>) -> SimHost {
        SimHost {
            id,
            packages: Mutex::new(packages),
            stats,
        }
    }

    /// The installed version of `name`, if installed.
    fn installed(&self, name: &str) -> Option<(String, u8)> {
        let packages = self.packages.lock().unwrap();
        find(&packages, name)
            .map(|i| &packages[i])
            .filter(|p| p.installed())
            .map(|p| (p.version.clone(), p.want))
    }

    fn answer(&self, cmd: &Command) -> (Kind, Output) {
        match classify(cmd) {
            Request::Known(kind) => (kind, self.known(kind, cmd)),
            Request::Named(kind, names) => (kind, self.named(kind, names)),
            Request::Apt(Kind::Unknown, _) => (Kind::Unknown, unknown(cmd)),
            Request::Apt(kind, line) => (kind, self.apt(kind, &line)),
        }
    }

    fn known(&self, kind: Kind, cmd: &Command) -> Output {
        match kind {
            Kind::OsRelease => output(0, OS_RELEASE, ""),
            Kind::Uname => output(0, "6.1.0-18-amd64 x86_64\n", ""),
            Kind::RebootRequired => output(1, "", ""),
            Kind::DpkgQueryAll => {
                let packages = self.packages.lock().unwrap();
                let mut out = String::with_capacity(packages.len() * 64);
                packages.iter().for_each(|p| p.write_line(&mut out));
                output(0, out, "")
            }
            Kind::AptMarkShowHold => {
                let packages = self.packages.lock().unwrap();
                let held: String = packages
                    .iter()
                    .filter(|p| p.want == b'h')
                    .map(|p| format!("{}\n", p.name))
                    .collect();
                output(0, held, "")
            }
            Kind::DpkgConfigurePending => output(0, "", ""),
            _ => unknown(cmd),
        }
    }

    fn named(&self, kind: Kind, names: &[String]) -> Output {
        match kind {
            Kind::DpkgQueryNamed => self.query(names),
            Kind::AptMarkHold | Kind::AptMarkUnhold => self.mark(kind == Kind::AptMarkHold, names),
            _ => output(127, "", format!("sim: {kind:?} takes no package names")),
        }
    }

    /// `dpkg-query -W -- names`: one line per known package, status 1 when some are not.
    fn query(&self, names: &[String]) -> Output {
        let packages = self.packages.lock().unwrap();
        let mut out = String::new();
        let mut err = String::new();
        for name in names {
            match find(&packages, base_name(name)) {
                Some(i) => packages[i].write_line(&mut out),
                None => err.push_str(&format!("dpkg-query: no packages found matching {name}\n")),
            }
        }
        output(if err.is_empty() { 0 } else { 1 }, out, err)
    }

    fn mark(&self, hold: bool, names: &[String]) -> Output {
        let mut packages = self.packages.lock().unwrap();
        let name = base_name(&names[0]);
        let Some(i) = find(&packages, name).filter(|&i| packages[i].installed()) else {
            return output(100, "", format!("E: Unable to locate package {name}\n"));
        };
        packages[i].want = if hold { b'h' } else { b'i' };
        let said = if hold {
            format!("{name} set on hold.\n")
        } else {
            format!("Canceled hold on {name}.\n")
        };
        output(0, said, "")
    }

    fn apt(&self, kind: Kind, line: &AptLine<'_>) -> Output {
        match kind {
            Kind::AptSimulateUpgrade => self.simulate_upgrade(),
            Kind::AptCheck => output(
                0,
                "Reading package lists...\nBuilding dependency tree...\nReading state information...\n",
                "",
            ),
            Kind::AptInstall | Kind::AptSimulateInstall => {
                self.install(line.packages, line.allow_held, line.simulate)
            }
            Kind::AptRemove | Kind::AptSimulateRemove => self.remove(line.packages, line.simulate),
            _ => output(127, "", format!("sim: {kind:?} is not an apt-get command")),
        }
    }

    /// `apt-get -s upgrade`: installed, unheld packages whose archive has a newer version.
    fn simulate_upgrade(&self) -> Output {
        let packages = self.packages.lock().unwrap();
        let mut out = String::from("NOTE: This is only a simulation!\nReading package lists...\n");
        for p in packages.iter().filter(|p| p.installed() && p.want != b'h') {
            let offered = archive(&p.name);
            let Some(newest) = offered.last() else {
                continue;
            };
            if offered[..offered.len() - 1].contains(&p.version.as_str()) {
                out.push_str(&format!(
                    "Inst {0} [{1}] ({newest} Debian:12/stable [{2}])\nConf {0} ({newest} Debian:12/stable [{2}])\n",
                    p.name, p.version, p.arch
                ));
            }
        }
        output(0, out, "")
    }

    /// `apt-get [-s] install -- name=version...`, one transaction: all or nothing.
    fn install(&self, specs: &[String], allow_held: bool, simulate: bool) -> Output {
        let mut packages = self.packages.lock().unwrap();
        let mut moves = Vec::new();
        for spec in specs {
            let Some((name, version)) = spec.split_once('=') else {
                return output(
                    100,
                    "",
                    format!("sim: install wants name=version, got {spec}\n"),
                );
            };
            let name = base_name(name);
            let at = find(&packages, name);
            let current = at.map(|i| &packages[i]);
            let offered =
                archive(name).contains(&version) || current.is_some_and(|p| p.version == version);
            if !offered {
                return output(
                    100,
                    "",
                    format!("E: Version '{version}' for '{name}' was not found\n"),
                );
            }
            if current.is_some_and(|p| p.want == b'h' && p.version != version) && !allow_held {
                return output(100, "", "E: Held packages were changed and -y was used without --allow-change-held-packages.\n");
            }
            if current.is_some_and(|p| p.installed() && p.version == version) {
                continue;
            }
            moves.push((name.to_string(), version.to_string(), at));
        }
        let mut out = String::from("Reading package lists...\n");
        let mut upgraded = 0;
        for (name, version, at) in &moves {
            let old = at
                .map(|i| &packages[i])
                .filter(|p| p.installed())
                .map(|p| format!(" [{}]", p.version));
            upgraded += usize::from(old.is_some());
            out.push_str(&format!(
                "Inst {name}{} ({version} Debian:12/stable [amd64])\nConf {name} ({version} Debian:12/stable [amd64])\n",
                old.unwrap_or_default()
            ));
        }
        out.push_str(&format!(
            "{upgraded} upgraded, {} newly installed, 0 to remove and 0 not upgraded.\n",
            moves.len() - upgraded
        ));
        if !simulate {
            for (name, version, _) in moves {
                set_installed(&mut packages, &name, version);
            }
        }
        output(0, out, "")
    }

    /// `apt-get [-s] remove -- names`: configuration files stay (`rc`).
    fn remove(&self, names: &[String], simulate: bool) -> Output {
        let mut packages = self.packages.lock().unwrap();
        let mut out = String::from("Reading package lists...\n");
        for name in names {
            let name = base_name(name);
            let Some(i) = find(&packages, name).filter(|&i| packages[i].installed()) else {
                continue;
            };
            out.push_str(&format!("Remv {name} [{}]\n", packages[i].version));
            if !simulate {
                packages[i].want = b'r';
                packages[i].current = b'c';
            }
        }
        output(0, out, "")
    }
}

fn unknown(cmd: &Command) -> Output {
    output(
        127,
        "",
        format!(
            "sim: no such command on this host: {} {:?}\n",
            cmd.program, cmd.args
        ),
    )
}

/// `name` without an `:arch` qualifier.
fn base_name(spec: &str) -> &str {
    spec.split(':').next().unwrap_or(spec)
}

fn find(packages: &[Package], name: &str) -> Option<usize> {
    packages.binary_search_by(|p| (*p.name).cmp(name)).ok()
}

fn set_installed(packages: &mut Vec<Package>, name: &str, version: String) {
    match find(packages, name) {
        Some(i) => {
            let p = &mut packages[i];
            p.version = version;
            p.current = b'i';
            if p.want != b'h' {
                p.want = b'i';
            }
        }
        None => {
            let at = packages.partition_point(|p| &*p.name < name);
            packages.insert(
                at,
                Package {
                    want: b'i',
                    current: b'i',
                    name: name.into(),
                    version,
                    arch: "amd64".into(),
                    source: name.into(),
                },
            );
        }
    }
}

#[async_trait::async_trait]
impl Transport for SimHost {
    fn host(&self) -> &HostId {
        &self.id
    }

    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        let started = Instant::now();
        let (kind, out) = self.answer(cmd);
        self.stats.execs[index(kind)].fetch_add(1, Ordering::SeqCst);
        if kind == Kind::Unknown {
            let mut unknown = self.stats.unknown.lock().unwrap();
            if unknown.len() < 5 {
                unknown.push(format!("{} {:?}", cmd.program, cmd.args));
            }
        }
        let took = started.elapsed().as_nanos() as u64;
        self.stats.host_nanos.fetch_add(took, Ordering::SeqCst);
        Ok(out)
    }
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

struct Fleet {
    hosts: Vec<Arc<SimHost>>,
    stats: Arc<FleetStats>,
}

fn fleet(base: &[Package], shape: Shape) -> Fleet {
    let stats = Arc::new(FleetStats::default());
    let hosts = (0..HOSTS)
        .map(|n| {
            Arc::new(SimHost::new(
                host_id(n),
                image_packages(base, n % shape.images),
                stats.clone(),
            ))
        })
        .collect();
    Fleet { hosts, stats }
}

fn targets(fleet: &Fleet) -> Vec<HostTarget> {
    fleet
        .hosts
        .iter()
        .enumerate()
        .map(|(n, host)| HostTarget {
            config: HostConfig {
                id: host.id.clone(),
                transport: TransportSpec::Ssh {
                    address: format!("10.0.{}.{}", n / 250, n % 250 + 1),
                    port: 22,
                    user: "patchwave".into(),
                    key: KeyRef::File("/etc/patchwave/id_ed25519".into()),
                    known_hosts: "/etc/patchwave/known_hosts".into(),
                },
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
    base: Vec<Package>,
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
        base: base_packages(),
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
    let host_before = fleet.stats.host_seconds();
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
        host: fleet.stats.host_seconds() - host_before,
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
    let unknown = fleet.stats.unknown.lock().unwrap();
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
            Some((TO.to_string(), b'i')),
            "{}",
            host.id
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

fn count(execs: &ExecCounts, kind: Kind) -> u64 {
    execs[index(kind)]
}

/// Plugin calls, from the commands each function runs first or only: `facts` reads
/// os-release, `inventory` the whole database, `upgradable` simulates an upgrade, `apply`
/// installs, `verify` waits with `apt-get check`; `plan-rollback`, `apply` and `verify` each
/// read named packages once. Valid while nothing is rolled back.
fn plugin_calls(execs: &ExecCounts) -> Vec<(&'static str, u64)> {
    let facts = count(execs, Kind::OsRelease);
    let inventory = count(execs, Kind::DpkgQueryAll);
    let upgradable = count(execs, Kind::AptSimulateUpgrade);
    let apply = count(execs, Kind::AptInstall);
    let verify = count(execs, Kind::AptCheck);
    let plan_rollback = count(execs, Kind::DpkgQueryNamed) - apply - verify;
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
    let kinds: Vec<String> = KINDS
        .iter()
        .filter(|(kind, _)| count(&f.execs, *kind) > 0)
        .map(|(kind, name)| format!("{name} {}", count(&f.execs, *kind)))
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
