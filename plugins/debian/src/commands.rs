//! Every command the plugin runs, and the exec grants that cover them.
//!
//! Each [`Spec`] is both the template for a command and its grant, so the manifest
//! cannot drift from what the plugin actually executes. Package arguments always follow a
//! `--`, so nothing a caller passes can be read as an option, and every one is granted
//! only in its typed shape (`<package>`, `<package>=<version>`): the host refuses a path
//! (`/tmp/x.deb`), an option or apt's `name-`/`name+` modifiers before anything runs
//! (names and versions are validated before they get here as well). apt and apt-mark run
//! with [`PATTERN_ONLY`], so a well-formed name that is no package (`les.`) is not read as
//! a regular expression.

use patchwave_plugin_sdk::{Command, EnvGrant, ExecGrant};

use crate::dpkg::SHOW_FORMAT;

/// Timeout for quick reads (`cat`, `uname`, `dpkg-query`, `apt-mark`).
pub const QUERY_TIMEOUT_MS: u32 = 60_000;
/// Timeout for apt simulations, which load the whole package cache.
pub const SIMULATE_TIMEOUT_MS: u32 = 5 * 60_000;
/// Timeout for runs that change packages (downloads and maintainer scripts included, and
/// up to [`LOCK_WAIT_S`] waiting for another apt or dpkg run to finish first).
pub const CHANGE_TIMEOUT_MS: u32 = 30 * 60_000;

/// How long a command that takes dpkg's lock waits for another apt or dpkg run (say, an
/// apply still running after its runner was killed) to release it, in seconds.
pub const LOCK_WAIT_S: u32 = 120;
/// apt's option for that wait: `DPkg::Lock::Timeout` is [`LOCK_WAIT_S`]. apt before
/// 1.9.11 (Debian 10) ignores it and fails at once on a held lock.
pub const LOCK_WAIT_OPTION: &str = "DPkg::Lock::Timeout=120";
/// Timeout for [`APT_WAIT_IDLE`]: the whole lock wait, then loading the package cache as
/// long as a simulation may.
pub const WAIT_IDLE_TIMEOUT_MS: u32 = LOCK_WAIT_S * 1000 + SIMULATE_TIMEOUT_MS;

/// apt's option that makes a package argument a name and nothing else. Without it apt-get
/// and apt-mark read an argument that names no package as a regular expression when it
/// has one of `.?+*|[^$` in it: `apt-get remove -- les.` would remove every package whose
/// name has `les` and one more character in it. (apt before 2.0 ignores the option.)
pub const PATTERN_ONLY: &str = "APT::Cmd::Pattern-Only=1";

/// Environment for everything that may run maintainer scripts: no debconf prompts
/// (questions take their defaults) and no apt-listchanges pager or mail. Granted with
/// exactly these values.
const NONINTERACTIVE: &[(&str, &str)] = &[
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("APT_LISTCHANGES_FRONTEND", "none"),
];

/// One package, as apt and dpkg take it: `name` or `name:arch`.
pub const PACKAGE: &str = "<package>";
/// One exact package version, as apt-get install takes it.
pub const PACKAGE_VERSION: &str = "<package>=<version>";

/// What may follow a spec's fixed arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Nothing.
    None,
    /// Exactly one argument matching this pattern (granted as the pattern).
    One(&'static str),
    /// Any number of arguments, each matching this pattern (granted as `**` with `each`).
    Many(&'static str),
}

/// A command template: program, fixed arguments, what may follow, environment, timeout.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Program name, looked up in the host's fixed `PATH`.
    pub program: &'static str,
    /// The fixed leading arguments.
    pub args: &'static [&'static str],
    /// The variable trailing arguments allowed.
    pub tail: Tail,
    /// Whether the command gets the [`NONINTERACTIVE`] environment.
    pub noninteractive: bool,
    /// Timeout in milliseconds.
    pub timeout_ms: u32,
}

impl Spec {
    /// The command with `tail` appended to the fixed arguments. The caller passes as many
    /// tail arguments as [`Spec::tail`] allows.
    pub fn command<S: AsRef<str>>(&self, tail: &[S]) -> Command {
        let args = self
            .args
            .iter()
            .copied()
            .chain(tail.iter().map(AsRef::as_ref))
            .map(str::to_string)
            .collect();
        let env = if self.noninteractive {
            NONINTERACTIVE
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        } else {
            Vec::new()
        };
        Command {
            program: self.program.to_string(),
            args,
            env,
            stdin: None,
            timeout_ms: self.timeout_ms,
        }
    }

    /// The exec grant covering every command this spec can build.
    pub fn grant(&self) -> ExecGrant {
        let (tail, each) = match self.tail {
            Tail::None => (None, None),
            Tail::One(pattern) => (Some(pattern), None),
            Tail::Many(pattern) => (Some("**"), Some(pattern.to_string())),
        };
        ExecGrant {
            program: self.program.to_string(),
            args: self
                .args
                .iter()
                .copied()
                .chain(tail)
                .map(str::to_string)
                .collect(),
            each,
            env: if self.noninteractive {
                NONINTERACTIVE
                    .iter()
                    .map(|(name, value)| EnvGrant {
                        name: name.to_string(),
                        value: value.to_string(),
                        secret: false,
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

const fn query(program: &'static str, args: &'static [&'static str], tail: Tail) -> Spec {
    Spec {
        program,
        args,
        tail,
        noninteractive: false,
        timeout_ms: QUERY_TIMEOUT_MS,
    }
}

const fn simulation(args: &'static [&'static str], each: &'static str) -> Spec {
    Spec {
        program: "apt-get",
        args,
        tail: Tail::Many(each),
        noninteractive: false,
        timeout_ms: SIMULATE_TIMEOUT_MS,
    }
}

const fn change(program: &'static str, args: &'static [&'static str], tail: Tail) -> Spec {
    Spec {
        program,
        args,
        tail,
        noninteractive: true,
        timeout_ms: CHANGE_TIMEOUT_MS,
    }
}

/// `cat /etc/os-release`.
pub const OS_RELEASE: Spec = query("cat", &["/etc/os-release"], Tail::None);
/// `cat /usr/lib/os-release`, the fallback location.
pub const OS_RELEASE_FALLBACK: Spec = query("cat", &["/usr/lib/os-release"], Tail::None);
/// `uname -r -m`: kernel release and machine, in that order, on one line.
pub const UNAME: Spec = query("uname", &["-r", "-m"], Tail::None);
/// `test -e /var/run/reboot-required`: status 0 = a reboot is wanted, 1 = not.
pub const REBOOT_REQUIRED: Spec = query("test", &["-e", "/var/run/reboot-required"], Tail::None);
/// The whole package database.
pub const DPKG_QUERY_ALL: Spec = query("dpkg-query", &["-W", SHOW_FORMAT], Tail::None);
/// Named packages (`name` or `name:arch`); exits 1 when some are unknown.
pub const DPKG_QUERY: Spec = query(
    "dpkg-query",
    &["-W", SHOW_FORMAT, "--"],
    Tail::Many(PACKAGE),
);
/// What `apt-get upgrade` would do (hold-aware), without locking or changing anything.
pub const APT_SIMULATE_UPGRADE: Spec = Spec {
    tail: Tail::None,
    ..simulation(&["-s", "-o", "Debug::NoLocking=1", "upgrade"], PACKAGE)
};
/// Verify, before reading the database: returns once no other apt or dpkg run holds
/// dpkg's lock, waiting up to [`LOCK_WAIT_S`]. apt has no command that only waits for the
/// lock; `check` takes it (so it waits), reads the package cache and changes nothing. It
/// exits 100 on broken dependencies as well as on a wait that ran out.
pub const APT_WAIT_IDLE: Spec = Spec {
    program: "apt-get",
    args: &["-o", LOCK_WAIT_OPTION, "check"],
    tail: Tail::None,
    noninteractive: false,
    timeout_ms: WAIT_IDLE_TIMEOUT_MS,
};
/// Apply, simulated: what installing exact versions would do, dependencies included, with
/// the options of [`APT_INSTALL`] that decide apt's resolution. Removals are shown rather
/// than refused (`--no-remove` is left out) so that `plan-apply` can name them; the apply
/// itself refuses any. `plan-apply` reports it, and every apply runs it first and refuses a
/// resolution that would touch a package outside the changes it was given.
pub const APT_SIMULATE_INSTALL: Spec = simulation(
    &[
        "-s",
        "-o",
        "Debug::NoLocking=1",
        "-o",
        PATTERN_ONLY,
        "install",
        "--no-install-recommends",
        "--allow-downgrades",
        "--",
    ],
    PACKAGE_VERSION,
);
/// Apply: install exact versions (`name=version`). Keeps the configuration files the admin
/// changed, installs no recommends, allows downgrades, refuses to remove anything and
/// refuses to move held packages. Waits up to [`LOCK_WAIT_S`] for another apt or dpkg run,
/// so an apply sent again while an interrupted one still runs follows it instead of failing.
pub const APT_INSTALL: Spec = change(
    "apt-get",
    &[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        LOCK_WAIT_OPTION,
        "-o",
        PATTERN_ONLY,
        "--allow-downgrades",
        "--no-remove",
        "--",
    ],
    Tail::Many(PACKAGE_VERSION),
);
/// Rollback, simulated first: the same resolution as [`APT_ROLLBACK_INSTALL`].
pub const APT_SIMULATE_ROLLBACK_INSTALL: Spec = simulation(
    &[
        "-s",
        "-o",
        "Debug::NoLocking=1",
        "-o",
        PATTERN_ONLY,
        "install",
        "--no-install-recommends",
        "--allow-downgrades",
        "--allow-change-held-packages",
        "--no-remove",
        "--",
    ],
    PACKAGE_VERSION,
);
/// Rollback: install previous versions, moving held packages if need be, never removing
/// one (removals are separate steps, [`APT_REMOVE`]). What it would install is checked
/// by [`APT_SIMULATE_ROLLBACK_INSTALL`] first. Waits up to [`LOCK_WAIT_S`] for another
/// apt or dpkg run.
pub const APT_ROLLBACK_INSTALL: Spec = change(
    "apt-get",
    &[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        LOCK_WAIT_OPTION,
        "-o",
        PATTERN_ONLY,
        "--allow-downgrades",
        "--allow-change-held-packages",
        "--no-remove",
        "--",
    ],
    Tail::Many(PACKAGE_VERSION),
);
/// Rollback, simulated first: what removing packages would take with them.
pub const APT_SIMULATE_REMOVE: Spec = simulation(
    &[
        "-s",
        "-o",
        "Debug::NoLocking=1",
        "-o",
        PATTERN_ONLY,
        "remove",
        "--allow-change-held-packages",
        "--",
    ],
    PACKAGE,
);
/// Rollback: remove packages an apply installed (configuration files are kept). Waits up
/// to [`LOCK_WAIT_S`] for another apt or dpkg run.
pub const APT_REMOVE: Spec = change(
    "apt-get",
    &[
        "remove",
        "-y",
        "-q",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        LOCK_WAIT_OPTION,
        "-o",
        PATTERN_ONLY,
        "--allow-change-held-packages",
        "--",
    ],
    Tail::Many(PACKAGE),
);
/// Hold one package at its installed version.
pub const APT_MARK_HOLD: Spec = query(
    "apt-mark",
    &["-o", PATTERN_ONLY, "hold", "--"],
    Tail::One(PACKAGE),
);
/// Release the hold on one package.
pub const APT_MARK_UNHOLD: Spec = query(
    "apt-mark",
    &["-o", PATTERN_ONLY, "unhold", "--"],
    Tail::One(PACKAGE),
);
/// Finish configuring packages left half-way by an interrupted or failed dpkg run.
pub const DPKG_CONFIGURE_PENDING: Spec = change(
    "dpkg",
    &["--force-confdef", "--force-confold", "--configure", "-a"],
    Tail::None,
);

/// Every spec the plugin uses, in the order the manifest lists them.
pub const ALL: &[Spec] = &[
    OS_RELEASE,
    OS_RELEASE_FALLBACK,
    UNAME,
    REBOOT_REQUIRED,
    DPKG_QUERY_ALL,
    DPKG_QUERY,
    APT_SIMULATE_UPGRADE,
    APT_WAIT_IDLE,
    APT_SIMULATE_INSTALL,
    APT_INSTALL,
    APT_SIMULATE_ROLLBACK_INSTALL,
    APT_ROLLBACK_INSTALL,
    APT_SIMULATE_REMOVE,
    APT_REMOVE,
    APT_MARK_HOLD,
    APT_MARK_UNHOLD,
    DPKG_CONFIGURE_PENDING,
];

/// The manifest's `wants`: one grant per spec.
pub fn grants() -> Vec<ExecGrant> {
    ALL.iter().map(Spec::grant).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwave_plugin_sdk::{covered, decide, grant_each, GrantDecision};

    /// Example arguments for a tail pattern.
    fn sample(pattern: &str) -> &'static [&'static str] {
        match pattern {
            PACKAGE => &["libssl3", "zlib1g:i386", "g++:amd64"],
            PACKAGE_VERSION => &["libssl3=3.0.22-1~deb12u2", "zlib1g:i386=1:1.2.13.dfsg-1"],
            other => panic!("no sample for {other}"),
        }
    }

    #[test]
    fn commands_are_covered_by_their_grants() {
        let grants = grants();
        for spec in ALL {
            let tail: &[&str] = match spec.tail {
                Tail::None => &[],
                Tail::One(p) => &sample(p)[..1],
                Tail::Many(p) => sample(p),
            };
            let cmd = spec.command(tail);
            assert!(covered(&grants, &cmd), "{cmd:?}");
            assert!(covered(&[spec.grant()], &cmd), "{cmd:?}");
            if let Tail::Many(_) = spec.tail {
                assert!(covered(&[spec.grant()], &spec.command::<&str>(&[])));
            }
        }
    }

    fn cmd(program: &str, args: &[&str]) -> Command {
        Command {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            stdin: None,
            timeout_ms: 0,
        }
    }

    #[test]
    fn grants_are_narrow() {
        let grants = grants();
        for (program, args) in [
            ("cat", &["/etc/shadow"][..]),
            ("cat", &["/etc/os-release", "/etc/shadow"]),
            ("apt-get", &["install", "-y", "foo"]),
            (
                "apt-get",
                &["-s", "-o", "Debug::NoLocking=1", "upgrade", "-o", "x=y"],
            ),
            ("apt-mark", &["-o", PATTERN_ONLY, "hold", "--", "a1", "b2"]),
            ("apt-mark", &["hold", "--", "a1"]),
            ("apt-get", &["check"]),
            (
                "apt-get",
                &["-o", "DPkg::Lock::Timeout=120", "check", "-o", "x=y"],
            ),
            (
                "apt-get",
                &["-o", "DPkg::Lock::Timeout=120", "install", "foo"],
            ),
            ("apt-get", &["-o", "APT::Get::Fix-Broken=1", "check"]),
            ("dpkg", &["--purge", "foo"]),
            ("sh", &["-c", "true"]),
            ("test", &["-e", "/etc/shadow"]),
        ] {
            assert!(!covered(&grants, &cmd(program, args)), "{program} {args:?}");
        }
        // Every trailing-`**` grant ends its fixed part with `--` and types each argument.
        for g in &grants {
            if g.args.last().map(String::as_str) == Some("**") {
                assert_eq!(g.args[g.args.len() - 2], "--", "{g:?}");
                assert!(g.each.is_some(), "{g:?}");
            }
        }
        let mut env = APT_INSTALL.command(&["xx=1"]);
        env.env.push(("LD_PRELOAD".into(), "/x.so".into()));
        assert!(matches!(
            decide(&grants, &grants, &env),
            GrantDecision::Forbidden(_)
        ));
    }

    /// What the host refuses in a tail, whatever the plugin's own validation would say: a
    /// `.deb` path installs a local package, `name-` removes and `name+` installs, an option
    /// changes the command, a version ending in `-` turns an install into a removal.
    #[test]
    fn tails_cannot_become_paths_removals_or_options() {
        let grants = grants();
        for (spec, bad) in [
            (APT_INSTALL, "/tmp/x.deb"),
            (APT_INSTALL, "./x.deb"),
            (APT_INSTALL, "openssh-server-"),
            (APT_INSTALL, "openssh-server=1:9.2p1-2-"),
            (APT_INSTALL, "acme=1.0+"),
            (APT_INSTALL, "acme"),
            (APT_INSTALL, "-oDpkg::Pre-Invoke::=touch /tmp/x"),
            (APT_INSTALL, "acme/bookworm-backports"),
            (APT_ROLLBACK_INSTALL, "/tmp/x.deb"),
            (APT_SIMULATE_ROLLBACK_INSTALL, "openssh-server-"),
            (APT_REMOVE, "openssh-server-"),
            (APT_REMOVE, "acme+"),
            (APT_REMOVE, "/tmp/x.deb"),
            (APT_REMOVE, "acme=1.0"),
            (APT_REMOVE, "g++"),
            (APT_SIMULATE_REMOVE, "lib*"),
            (APT_MARK_HOLD, "-x"),
            (APT_MARK_UNHOLD, "?installed"),
            (DPKG_QUERY, "*"),
            (DPKG_QUERY, "/etc/shadow"),
        ] {
            let tail = match spec.tail {
                Tail::One(_) => vec![bad],
                Tail::Many(PACKAGE) => vec!["libssl3", bad],
                Tail::Many(_) => vec!["libssl3=3", bad],
                Tail::None => panic!("{spec:?} takes no tail"),
            };
            let c = spec.command(&tail);
            assert!(!covered(&grants, &c), "{c:?}");
        }
    }

    #[test]
    fn env_values_are_granted_exactly() {
        let grants = grants();
        let mut c = APT_INSTALL.command(&["acme=1.0"]);
        assert!(covered(&grants, &c));
        c.env[0].1 = "readline; system('touch /tmp/x')".into();
        assert_eq!(decide(&grants, &grants, &c), GrantDecision::Undeclared);
        c.env[0].1 = "Readline".into();
        assert_eq!(decide(&grants, &grants, &c), GrantDecision::Undeclared);
        let mut c = APT_INSTALL.command(&["acme=1.0"]);
        c.env.push(("DEBCONF_SYSTEMRC".into(), "/tmp/rc".into()));
        assert!(matches!(
            decide(&grants, &grants, &c),
            GrantDecision::Forbidden(_)
        ));
        // Commands that run no maintainer script set nothing.
        assert!(DPKG_QUERY.command(&["libssl3"]).env.is_empty());
    }

    #[test]
    fn lock_waits_agree_and_fit_in_their_commands_timeouts() {
        assert_eq!(
            LOCK_WAIT_OPTION,
            format!("DPkg::Lock::Timeout={LOCK_WAIT_S}")
        );
        let waiting: Vec<String> = ALL
            .iter()
            .filter(|spec| spec.args.windows(2).any(|w| w == ["-o", LOCK_WAIT_OPTION]))
            .map(|spec| {
                assert!(
                    spec.timeout_ms > LOCK_WAIT_S * 1000 + 60_000,
                    "{spec:?}: its timeout leaves less than a minute after the lock wait"
                );
                spec.grant().args.join(" ")
            })
            .collect();
        // Every apt run that takes the lock waits for it, options before `--`.
        let want: Vec<String> = [APT_WAIT_IDLE, APT_INSTALL, APT_ROLLBACK_INSTALL, APT_REMOVE]
            .iter()
            .map(|spec| spec.grant().args.join(" "))
            .collect();
        assert_eq!(waiting, want);
    }

    /// The grants operators copy into their configuration, spelled out: a change here
    /// means every such configuration needs the same change.
    #[test]
    fn lock_taking_grants_are_exactly_these() {
        let grant = patchwave_plugin_sdk::grant;
        let env = [
            ("DEBIAN_FRONTEND", "noninteractive"),
            ("APT_LISTCHANGES_FRONTEND", "none"),
        ];
        let opts = [
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "-o",
            "DPkg::Lock::Timeout=120",
            "-o",
            "APT::Cmd::Pattern-Only=1",
        ];
        let args = |head: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> {
            head.iter().chain(&opts).chain(tail).copied().collect()
        };
        let cases = [
            (
                APT_WAIT_IDLE,
                grant("apt-get", &["-o", "DPkg::Lock::Timeout=120", "check"], &[]),
            ),
            (
                APT_INSTALL,
                grant_each(
                    "apt-get",
                    &args(
                        &["install", "-y", "-q", "--no-install-recommends"],
                        &["--allow-downgrades", "--no-remove", "--", "**"],
                    ),
                    "<package>=<version>",
                    &env,
                ),
            ),
            (
                APT_ROLLBACK_INSTALL,
                grant_each(
                    "apt-get",
                    &args(
                        &["install", "-y", "-q", "--no-install-recommends"],
                        &[
                            "--allow-downgrades",
                            "--allow-change-held-packages",
                            "--no-remove",
                            "--",
                            "**",
                        ],
                    ),
                    "<package>=<version>",
                    &env,
                ),
            ),
            (
                APT_REMOVE,
                grant_each(
                    "apt-get",
                    &args(
                        &["remove", "-y", "-q"],
                        &["--allow-change-held-packages", "--", "**"],
                    ),
                    "<package>",
                    &env,
                ),
            ),
        ];
        for (spec, want) in cases {
            let got = spec.grant();
            assert_eq!(
                (&got.program, &got.args, &got.each),
                (&want.program, &want.args, &want.each)
            );
            let pairs = |g: &ExecGrant| -> Vec<(String, String, bool)> {
                g.env
                    .iter()
                    .map(|e| (e.name.clone(), e.value.clone(), e.secret))
                    .collect()
            };
            assert_eq!(pairs(&got), pairs(&want));
        }
        assert_eq!(APT_WAIT_IDLE.timeout_ms, 420_000);
        assert!(APT_WAIT_IDLE.command::<&str>(&[]).env.is_empty());
    }

    /// Every apt run that takes package names reads them as names, never as patterns.
    #[test]
    fn apt_runs_with_package_tails_read_names_only() {
        for spec in ALL {
            let takes_packages = !matches!(spec.tail, Tail::None);
            if takes_packages && spec.program.starts_with("apt") {
                assert!(
                    spec.args.windows(2).any(|w| w == ["-o", PATTERN_ONLY]),
                    "{spec:?}"
                );
            }
        }
    }
}
