//! A simulated Debian host: a [`Transport`] holding its own dpkg database that answers
//! the commands the Debian plugin runs, at once, with no process and no network.
//!
//! For benches and demos (`transport = "sim"`), never in place of a real host in a test of
//! what a host does: it knows only the command lines listed in [`SimKind`], answers every
//! other one with status 127, and its answers are shaped after the real tools' output, not
//! produced by them.
//!
//! Deterministic: a host's database is its [`SimImage`]; nothing depends on the clock or
//! on chance. Changes (`apt-get install`, `remove`, `apt-mark hold`) change that host's
//! database and nothing else.

mod request;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use patchwave_core::HostId;

use request::{classify, AptLine, Request};
pub use request::{SimKind, SHOW_FORMAT};

use crate::{Command, Output, Transport, TransportError};

/// The real `dpkg-query -W` output of a Debian 12 machine; simulated images take their
/// packages from it.
const DEBIAN12: &str = include_str!("../../../plugins/debian/tests/data/dpkg-query-debian12.txt");
/// The real `/etc/os-release` of a Debian 12 machine.
const OS_RELEASE: &str = include_str!("../../../plugins/debian/tests/data/os-release-debian12");

/// One package instance in a simulated dpkg database.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    fn installed_at(name: &str, version: String) -> Package {
        Package {
            want: b'i',
            current: b'i',
            name: name.into(),
            version,
            arch: "amd64".into(),
            source: name.into(),
        }
    }

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

/// What a simulated host starts from: its installed packages (sorted by name) and the
/// versions its package archive offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimImage {
    packages: Vec<Package>,
    /// Versions offered, oldest first; a package not listed is offered only at the version
    /// installed.
    archive: BTreeMap<String, Vec<String>>,
}

/// How many distinct installed packages [`SimImage::debian12`] can take.
pub fn debian12_package_count() -> usize {
    debian12_lines().count()
}

fn debian12_lines() -> impl Iterator<Item = Package> {
    let mut seen = std::collections::BTreeSet::new();
    DEBIAN12.lines().filter_map(move |line| {
        let [status, name, version, arch, source] = line.split('\t').collect::<Vec<_>>()[..] else {
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
}

impl SimImage {
    /// The first `packages` installed packages of a real Debian 12 machine (at most
    /// [`debian12_package_count`]), and an archive offering nothing newer.
    pub fn debian12(packages: usize) -> SimImage {
        let mut packages: Vec<Package> = debian12_lines().take(packages).collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        SimImage {
            packages,
            archive: BTreeMap::new(),
        }
    }

    /// `name` installed at `version` (added, or moved to it).
    pub fn with_installed(mut self, name: &str, version: &str) -> SimImage {
        set_installed(&mut self.packages, name, version.to_string());
        self
    }

    /// The archive offers `name` at `versions` (oldest first): a host at any of them but
    /// the last sees the last as an upgrade.
    pub fn with_archive(mut self, name: &str, versions: &[&str]) -> SimImage {
        self.archive.insert(
            name.to_string(),
            versions.iter().map(|v| v.to_string()).collect(),
        );
        self
    }

    /// The same image rebuilt as number `image`: every tenth package (by an offset that
    /// depends on `image`) at the image's own rebuild `VERSION+imgN`, so no two numbers
    /// share an inventory. Packages the archive offers keep their version.
    pub fn rebuilt(&self, image: usize) -> SimImage {
        let packages = self
            .packages
            .iter()
            .enumerate()
            .map(|(p, pkg)| {
                let mut pkg = pkg.clone();
                if !self.archive.contains_key(&*pkg.name) && (p + image).is_multiple_of(10) {
                    pkg.version = format!("{}+img{image}", pkg.version);
                }
                pkg
            })
            .collect();
        SimImage {
            packages,
            archive: self.archive.clone(),
        }
    }

    /// Packages in the database.
    pub fn len(&self) -> usize {
        self.packages.len()
    }

    /// True when the database is empty.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty()
    }
}

/// Counters shared by any number of simulated hosts.
#[derive(Debug, Default)]
pub struct SimStats {
    execs: [AtomicU64; SimKind::ALL.len()],
    /// Wall time spent inside `Transport::exec`, in nanoseconds.
    nanos: AtomicU64,
    /// The first unknown commands.
    unknown: Mutex<Vec<String>>,
}

impl SimStats {
    /// Commands answered so far, by kind, in the order of [`SimKind::ALL`].
    pub fn counts(&self) -> [u64; SimKind::ALL.len()] {
        std::array::from_fn(|i| self.execs[i].load(Ordering::SeqCst))
    }

    /// Commands of `kind` answered so far.
    pub fn count(&self, kind: SimKind) -> u64 {
        self.execs[kind.index()].load(Ordering::SeqCst)
    }

    /// Wall time spent answering, in seconds (an upper bound of the hosts' CPU).
    pub fn seconds(&self) -> f64 {
        self.nanos.load(Ordering::SeqCst) as f64 / 1e9
    }

    /// The first five commands no simulated host knew, as `program [args]`.
    pub fn unknown(&self) -> Vec<String> {
        lock(&self.unknown).clone()
    }
}

/// One simulated host.
#[derive(Debug)]
pub struct SimTransport {
    id: HostId,
    packages: Mutex<Vec<Package>>,
    archive: BTreeMap<String, Vec<String>>,
    stats: Arc<SimStats>,
}

impl SimTransport {
    /// Host `id`, starting from `image`, counting into `stats`.
    pub fn new(id: HostId, image: SimImage, stats: Arc<SimStats>) -> SimTransport {
        SimTransport {
            id,
            packages: Mutex::new(image.packages),
            archive: image.archive,
            stats,
        }
    }

    /// The counters this host adds to.
    pub fn stats(&self) -> &Arc<SimStats> {
        &self.stats
    }

    /// The installed version of `name` and whether it is held, if it is installed.
    pub fn installed(&self, name: &str) -> Option<(String, bool)> {
        let packages = lock(&self.packages);
        find(&packages, name)
            .map(|i| &packages[i])
            .filter(|p| p.installed())
            .map(|p| (p.version.clone(), p.want == b'h'))
    }

    /// What the host answers to `cmd`, and the kind it took it for.
    pub fn answer(&self, cmd: &Command) -> (SimKind, Output) {
        match classify(cmd) {
            Request::Known(kind) => (kind, self.known(kind, cmd)),
            Request::Named(kind, names) => (kind, self.named(kind, names)),
            Request::Apt(SimKind::Unknown, _) => (SimKind::Unknown, unknown(cmd)),
            Request::Apt(kind, line) => (kind, self.apt(kind, &line)),
        }
    }

    fn offered(&self, name: &str) -> &[String] {
        self.archive.get(name).map_or(&[], Vec::as_slice)
    }

    fn known(&self, kind: SimKind, cmd: &Command) -> Output {
        match kind {
            SimKind::OsRelease => output(0, OS_RELEASE, ""),
            SimKind::Uname => output(0, "6.1.0-18-amd64 x86_64\n", ""),
            SimKind::RebootRequired => output(1, "", ""),
            SimKind::DpkgQueryAll => {
                let packages = lock(&self.packages);
                let mut out = String::with_capacity(packages.len() * 64);
                packages.iter().for_each(|p| p.write_line(&mut out));
                output(0, out, "")
            }
            SimKind::AptMarkShowHold => {
                let packages = lock(&self.packages);
                let held: String = packages
                    .iter()
                    .filter(|p| p.want == b'h')
                    .map(|p| format!("{}\n", p.name))
                    .collect();
                output(0, held, "")
            }
            SimKind::DpkgConfigurePending => output(0, "", ""),
            _ => unknown(cmd),
        }
    }

    fn named(&self, kind: SimKind, names: &[String]) -> Output {
        match kind {
            SimKind::DpkgQueryNamed => self.query(names),
            SimKind::AptMarkHold | SimKind::AptMarkUnhold => {
                self.mark(kind == SimKind::AptMarkHold, names)
            }
            _ => output(127, "", format!("sim: {kind:?} takes no package names")),
        }
    }

    /// `dpkg-query -W -- names`: one line per known package, status 1 when some are not.
    fn query(&self, names: &[String]) -> Output {
        let packages = lock(&self.packages);
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
        let mut packages = lock(&self.packages);
        let name = names.first().map_or("", |n| base_name(n));
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

    fn apt(&self, kind: SimKind, line: &AptLine<'_>) -> Output {
        match kind {
            SimKind::AptSimulateUpgrade => self.simulate_upgrade(),
            SimKind::AptCheck => output(
                0,
                "Reading package lists...\nBuilding dependency tree...\nReading state information...\n",
                "",
            ),
            SimKind::AptInstall | SimKind::AptSimulateInstall => {
                self.install(line.packages, line.allow_held, line.simulate)
            }
            SimKind::AptRemove | SimKind::AptSimulateRemove => {
                self.remove(line.packages, line.simulate)
            }
            _ => output(127, "", format!("sim: {kind:?} is not an apt-get command")),
        }
    }

    /// `apt-get -s upgrade`: installed, unheld packages whose archive has a newer version.
    fn simulate_upgrade(&self) -> Output {
        let packages = lock(&self.packages);
        let mut out = String::from("NOTE: This is only a simulation!\nReading package lists...\n");
        for p in packages.iter().filter(|p| p.installed() && p.want != b'h') {
            let offered = self.offered(&p.name);
            let Some(newest) = offered.last() else {
                continue;
            };
            if offered[..offered.len() - 1].contains(&p.version) {
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
        let mut packages = lock(&self.packages);
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
            let offered = self.offered(name).iter().any(|v| v == version)
                || current.is_some_and(|p| p.version == version);
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
        let mut packages = lock(&self.packages);
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

#[async_trait]
impl Transport for SimTransport {
    fn host(&self) -> &HostId {
        &self.id
    }

    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        let started = Instant::now();
        let (kind, out) = self.answer(cmd);
        self.stats.execs[kind.index()].fetch_add(1, Ordering::SeqCst);
        if kind == SimKind::Unknown {
            let mut unknown = lock(&self.stats.unknown);
            if unknown.len() < 5 {
                unknown.push(format!("{} {:?}", cmd.program, cmd.args));
            }
        }
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.nanos.fetch_add(took, Ordering::SeqCst);
        Ok(out)
    }
}

/// A poisoned lock still holds a consistent database: every change is made in one step
/// after its checks.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn output(status: i32, stdout: impl Into<Vec<u8>>, stderr: impl Into<Vec<u8>>) -> Output {
    Output {
        status,
        stdout: stdout.into(),
        stderr: stderr.into(),
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
            packages.insert(at, Package::installed_at(name, version));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn host() -> SimTransport {
        let image = SimImage::debian12(20)
            .with_installed("acme-web", "1.0-1")
            .with_archive("acme-web", &["1.0-1", "1.0-2"]);
        SimTransport::new("s1".into(), image, Arc::default())
    }

    fn run(t: &SimTransport, program: &str, args: &[&str]) -> (SimKind, i32, String, String) {
        let (kind, out) = t.answer(&Command::new(program, args, Duration::from_secs(1)));
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (kind, out.status, text(out.stdout), text(out.stderr))
    }

    fn query_all(t: &SimTransport) -> String {
        run(t, "dpkg-query", &["-W", SHOW_FORMAT]).2
    }

    #[test]
    fn facts_commands_answer_as_a_debian_12_machine() {
        let t = host();
        let (kind, status, out, _) = run(&t, "cat", &["/etc/os-release"]);
        assert_eq!((kind, status), (SimKind::OsRelease, 0));
        assert!(out.contains("VERSION_ID=\"12\""), "{out}");
        assert_eq!(
            run(&t, "uname", &["-r", "-m"]),
            (
                SimKind::Uname,
                0,
                "6.1.0-18-amd64 x86_64\n".into(),
                "".into()
            )
        );
        let (kind, status, ..) = run(&t, "test", &["-e", "/var/run/reboot-required"]);
        assert_eq!((kind, status), (SimKind::RebootRequired, 1));
    }

    #[test]
    fn the_database_is_the_image_sorted_with_one_line_per_package() {
        let t = host();
        let all = query_all(&t);
        let names: Vec<&str> = all.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
        assert_eq!(names.len(), 21);
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        assert!(
            all.contains("ii \tacme-web\t1.0-1\tamd64\tacme-web\n"),
            "{all}"
        );
        // The same image twice is the same database; a rebuilt one is not.
        assert_eq!(all, query_all(&host()));
        let base = SimImage::debian12(20).with_archive("acme-web", &["1.0-1", "1.0-2"]);
        let rebuilt = SimTransport::new("s2".into(), base.rebuilt(3), Arc::default());
        let other = query_all(&rebuilt);
        assert_ne!(
            other,
            query_all(&SimTransport::new("s3".into(), base, Arc::default()))
        );
        assert_eq!(other.matches("+img3").count(), 2, "{other}");
    }

    #[test]
    fn a_format_the_plugin_does_not_use_is_an_unknown_command() {
        let t = host();
        let (kind, status, _, err) = run(&t, "dpkg-query", &["-W", "--showformat=${Package}"]);
        assert_eq!((kind, status), (SimKind::Unknown, 127));
        assert!(err.starts_with("sim: no such command"), "{err}");
        assert_eq!(run(&t, "rm", &["-rf", "/"]).0, SimKind::Unknown);
        assert_eq!(
            run(&t, "apt-get", &["install", "stray", "--", "x"]).0,
            SimKind::Unknown
        );
    }

    #[test]
    fn named_queries_report_unknown_packages_with_status_1() {
        let t = host();
        let (kind, status, out, err) = run(
            &t,
            "dpkg-query",
            &["-W", SHOW_FORMAT, "--", "acme-web:amd64", "nope"],
        );
        assert_eq!((kind, status), (SimKind::DpkgQueryNamed, 1));
        assert_eq!(out, "ii \tacme-web\t1.0-1\tamd64\tacme-web\n");
        assert_eq!(err, "dpkg-query: no packages found matching nope\n");
    }

    #[test]
    fn upgrades_are_offered_from_the_archive_until_held() {
        let t = host();
        let (kind, status, out, _) = run(&t, "apt-get", &["-s", "-o", "Debug::X=1", "upgrade"]);
        assert_eq!((kind, status), (SimKind::AptSimulateUpgrade, 0));
        assert!(
            out.contains("Inst acme-web [1.0-1] (1.0-2 Debian:12/stable [amd64])"),
            "{out}"
        );
        assert_eq!(out.matches("Inst ").count(), 1, "{out}");

        assert_eq!(
            run(&t, "apt-mark", &["hold", "--", "acme-web"]),
            (
                SimKind::AptMarkHold,
                0,
                "acme-web set on hold.\n".into(),
                "".into()
            )
        );
        assert_eq!(run(&t, "apt-mark", &["showhold"]).2, "acme-web\n");
        assert!(!run(&t, "apt-get", &["-s", "upgrade"]).2.contains("Inst "));
        // A held package moves only with --allow-change-held-packages.
        let (_, status, _, err) = run(&t, "apt-get", &["install", "--", "acme-web=1.0-2"]);
        assert_eq!(status, 100);
        assert!(err.contains("--allow-change-held-packages"), "{err}");
        let (_, status, ..) = run(
            &t,
            "apt-get",
            &[
                "--allow-change-held-packages",
                "install",
                "--",
                "acme-web=1.0-2",
            ],
        );
        assert_eq!(status, 0);
        assert_eq!(t.installed("acme-web"), Some(("1.0-2".into(), true)));
        assert_eq!(
            run(&t, "apt-mark", &["unhold", "--", "acme-web"]).2,
            "Canceled hold on acme-web.\n"
        );
        assert_eq!(run(&t, "apt-mark", &["showhold"]).2, "");
        assert_eq!(run(&t, "apt-mark", &["hold", "--", "nope"]).1, 100);
    }

    #[test]
    fn install_is_all_or_nothing_and_simulate_changes_nothing() {
        let t = host();
        let (kind, status, out, _) = run(&t, "apt-get", &["-s", "install", "--", "acme-web=1.0-2"]);
        assert_eq!((kind, status), (SimKind::AptSimulateInstall, 0));
        assert!(out.contains("Inst acme-web [1.0-1] (1.0-2"), "{out}");
        assert!(out.contains("1 upgraded, 0 newly installed"), "{out}");
        assert_eq!(t.installed("acme-web"), Some(("1.0-1".into(), false)));

        // One version the archive does not offer fails the whole transaction.
        let (_, status, _, err) = run(
            &t,
            "apt-get",
            &["install", "--", "acme-web=1.0-2", "acme-web=9.9"],
        );
        assert_eq!(status, 100);
        assert_eq!(err, "E: Version '9.9' for 'acme-web' was not found\n");
        assert_eq!(t.installed("acme-web"), Some(("1.0-1".into(), false)));

        let (kind, status, ..) = run(&t, "apt-get", &["-y", "install", "--", "acme-web=1.0-2"]);
        assert_eq!((kind, status), (SimKind::AptInstall, 0));
        assert_eq!(t.installed("acme-web"), Some(("1.0-2".into(), false)));
        // Back down to an offered older version: the rollback path.
        assert_eq!(
            run(&t, "apt-get", &["install", "--", "acme-web=1.0-1"]).1,
            0
        );
        assert_eq!(t.installed("acme-web"), Some(("1.0-1".into(), false)));
        assert_eq!(run(&t, "apt-get", &["install", "--", "acme-web"]).1, 100);
    }

    #[test]
    fn remove_keeps_configuration_files() {
        let t = host();
        let (kind, status, out, _) = run(&t, "apt-get", &["-s", "remove", "--", "acme-web"]);
        assert_eq!((kind, status), (SimKind::AptSimulateRemove, 0));
        assert!(out.contains("Remv acme-web [1.0-1]"), "{out}");
        assert!(t.installed("acme-web").is_some());
        assert_eq!(
            run(&t, "apt-get", &["remove", "--", "acme-web"]).0,
            SimKind::AptRemove
        );
        assert_eq!(t.installed("acme-web"), None);
        assert!(query_all(&t).contains("rc \tacme-web\t1.0-1"));
        assert_eq!(
            run(&t, "apt-get", &["check"]).0,
            SimKind::AptCheck,
            "verify's wait"
        );
        assert_eq!(
            run(&t, "dpkg", &["--force-confold", "--configure", "-a"]).0,
            SimKind::DpkgConfigurePending
        );
    }

    #[tokio::test]
    async fn exec_counts_every_answer_and_keeps_the_first_unknown_commands() {
        let stats = Arc::new(SimStats::default());
        let t = SimTransport::new("s1".into(), SimImage::debian12(5), stats.clone());
        let one = Duration::from_secs(1);
        t.exec(&Command::new("uname", &["-r", "-m"], one))
            .await
            .unwrap();
        for i in 0..7 {
            let out = t
                .exec(&Command::new("nope", &[&i.to_string()], one))
                .await
                .unwrap();
            assert_eq!(out.status, 127);
        }
        assert_eq!(stats.count(SimKind::Uname), 1);
        assert_eq!(stats.count(SimKind::Unknown), 7);
        assert_eq!(stats.counts().iter().sum::<u64>(), 8);
        assert_eq!(stats.unknown().len(), 5);
        assert_eq!(stats.unknown()[0], "nope [\"0\"]");
        assert_eq!(t.host().as_str(), "s1");
    }

    #[test]
    fn the_kinds_are_listed_in_index_order() {
        for (i, kind) in SimKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
        assert!(debian12_package_count() >= 300);
        assert_eq!(
            SimImage::debian12(usize::MAX).len(),
            debian12_package_count()
        );
    }
}
