//! What a simulated host makes of a command line: which of the Debian plugin's commands it
//! is, or none.

use crate::Command;

/// The `--showformat` the Debian plugin passes to `dpkg-query`. A simulated host answers
/// only this format: a different one would be parsed wrongly, so it is an unknown command.
pub const SHOW_FORMAT: &str =
    "--showformat=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\n";

/// The commands a simulated host answers, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimKind {
    /// `cat /etc/os-release` (or `/usr/lib/os-release`).
    OsRelease,
    /// `uname -r -m`.
    Uname,
    /// `test -e /var/run/reboot-required`.
    RebootRequired,
    /// `dpkg-query -W --showformat=…`: the whole database.
    DpkgQueryAll,
    /// `dpkg-query -W --showformat=… -- NAME…`.
    DpkgQueryNamed,
    /// `apt-get -s upgrade`.
    AptSimulateUpgrade,
    /// `apt-get check`.
    AptCheck,
    /// `apt-get install -- NAME=VERSION…`.
    AptInstall,
    /// `apt-get -s install -- NAME=VERSION…`.
    AptSimulateInstall,
    /// `apt-get remove -- NAME…`.
    AptRemove,
    /// `apt-get -s remove -- NAME…`.
    AptSimulateRemove,
    /// `apt-mark hold -- NAME`.
    AptMarkHold,
    /// `apt-mark unhold -- NAME`.
    AptMarkUnhold,
    /// `apt-mark showhold`.
    AptMarkShowHold,
    /// `dpkg … --configure -a`.
    DpkgConfigurePending,
    /// Anything else: answered with status 127, as a missing program would be.
    Unknown,
}

impl SimKind {
    /// Every kind, in the order of [`SimStats::counts`](super::SimStats::counts).
    pub const ALL: [SimKind; 16] = [
        SimKind::OsRelease,
        SimKind::Uname,
        SimKind::RebootRequired,
        SimKind::DpkgQueryAll,
        SimKind::DpkgQueryNamed,
        SimKind::AptSimulateUpgrade,
        SimKind::AptCheck,
        SimKind::AptInstall,
        SimKind::AptSimulateInstall,
        SimKind::AptRemove,
        SimKind::AptSimulateRemove,
        SimKind::AptMarkHold,
        SimKind::AptMarkUnhold,
        SimKind::AptMarkShowHold,
        SimKind::DpkgConfigurePending,
        SimKind::Unknown,
    ];

    /// Its place in [`SimKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short name for reports.
    pub fn label(self) -> &'static str {
        match self {
            SimKind::OsRelease => "cat os-release",
            SimKind::Uname => "uname -r -m",
            SimKind::RebootRequired => "test -e reboot-required",
            SimKind::DpkgQueryAll => "dpkg-query -W (all)",
            SimKind::DpkgQueryNamed => "dpkg-query -W -- names",
            SimKind::AptSimulateUpgrade => "apt-get -s upgrade",
            SimKind::AptCheck => "apt-get check",
            SimKind::AptInstall => "apt-get install",
            SimKind::AptSimulateInstall => "apt-get -s install",
            SimKind::AptRemove => "apt-get remove",
            SimKind::AptSimulateRemove => "apt-get -s remove",
            SimKind::AptMarkHold => "apt-mark hold",
            SimKind::AptMarkUnhold => "apt-mark unhold",
            SimKind::AptMarkShowHold => "apt-mark showhold",
            SimKind::DpkgConfigurePending => "dpkg --configure -a",
            SimKind::Unknown => "UNKNOWN",
        }
    }
}

/// An `apt-get` command line: its verb, whether it only simulates, whether it may move
/// held packages, and the packages after `--`.
pub(super) struct AptLine<'a> {
    pub verb: Option<&'a str>,
    pub simulate: bool,
    pub allow_held: bool,
    pub packages: &'a [String],
    /// Words that are neither options nor the verb nor after `--`.
    pub stray: usize,
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

/// A command, classified.
pub(super) enum Request<'a> {
    /// Needs nothing but its kind.
    Known(SimKind),
    /// Takes the package names after `--`.
    Named(SimKind, &'a [String]),
    /// An `apt-get` line.
    Apt(SimKind, AptLine<'a>),
}

pub(super) fn classify(cmd: &Command) -> Request<'_> {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    match (cmd.program.as_str(), &args[..]) {
        ("cat", ["/etc/os-release" | "/usr/lib/os-release"]) => Request::Known(SimKind::OsRelease),
        ("uname", ["-r", "-m"]) => Request::Known(SimKind::Uname),
        ("test", ["-e", "/var/run/reboot-required"]) => Request::Known(SimKind::RebootRequired),
        ("dpkg-query", ["-W", format]) if *format == SHOW_FORMAT => {
            Request::Known(SimKind::DpkgQueryAll)
        }
        ("dpkg-query", ["-W", format, "--", ..]) if *format == SHOW_FORMAT => {
            Request::Named(SimKind::DpkgQueryNamed, &cmd.args[3..])
        }
        ("dpkg", [.., "--configure", "-a"]) => Request::Known(SimKind::DpkgConfigurePending),
        ("apt-mark", ["showhold"]) => Request::Known(SimKind::AptMarkShowHold),
        ("apt-mark", ["hold", "--", _]) => Request::Named(SimKind::AptMarkHold, &cmd.args[2..]),
        ("apt-mark", ["unhold", "--", _]) => Request::Named(SimKind::AptMarkUnhold, &cmd.args[2..]),
        ("apt-get", _) => classify_apt(&cmd.args),
        _ => Request::Known(SimKind::Unknown),
    }
}

fn classify_apt(args: &[String]) -> Request<'_> {
    let line = AptLine::parse(args);
    let kind = match (line.verb, line.simulate, line.packages.is_empty()) {
        _ if line.stray > 0 => SimKind::Unknown,
        (Some("upgrade"), true, true) => SimKind::AptSimulateUpgrade,
        (Some("check"), false, true) => SimKind::AptCheck,
        (Some("install"), false, false) => SimKind::AptInstall,
        (Some("install"), true, false) => SimKind::AptSimulateInstall,
        (Some("remove"), false, false) => SimKind::AptRemove,
        (Some("remove"), true, false) => SimKind::AptSimulateRemove,
        _ => SimKind::Unknown,
    };
    Request::Apt(kind, line)
}
