//! apt's simulation output (`apt-get -s`).
//!
//! In a simulation apt prints one line per action, in a fixed, untranslated format:
//!
//! ```text
//! Inst libssl3 [3.0.19-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64]) []
//! Inst libfoo:i386 (1.0-1 Debian:12.15/oldstable [i386])
//! Conf libssl3 (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
//! Remv jq [1.6-2.1+deb12u1]
//! ```
//!
//! `[old]` is present when a version is installed; the parenthesised group holds the new
//! version, the origins (comma-separated) and `[arch]`; what follows it (`[]`, breakage
//! notes) is ignored. Foreign-architecture packages carry a `:arch` qualifier.

use patchwave_plugin_sdk::{Installed, PluginError};

/// One `Inst` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inst<'a> {
    /// Package name, without an architecture qualifier.
    pub name: &'a str,
    /// The name as apt printed it: with a `:arch` qualifier for a foreign architecture.
    pub spec: &'a str,
    /// Installed version; `None` when the package would be newly installed.
    pub old: Option<&'a str>,
    /// The version apt would install.
    pub new: &'a str,
    /// The architecture of the new version.
    pub arch: &'a str,
}

/// What a simulation would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation<'a> {
    /// Packages apt would install or upgrade (or downgrade).
    pub installs: Vec<Inst<'a>>,
    /// Packages apt would remove, as printed (possibly `name:arch`).
    pub removals: Vec<&'a str>,
    /// The installed version of each of [`Simulation::removals`], in the same order, when
    /// apt printed it (`Remv jq [1.6-2.1+deb12u1]`).
    pub removed_versions: Vec<Option<&'a str>>,
    /// Packages apt would (re)configure, as printed.
    pub configures: Vec<&'a str>,
}

impl Simulation<'_> {
    /// The simulation shows no action at all.
    pub fn is_empty(&self) -> bool {
        self.installs.is_empty() && self.removals.is_empty() && self.configures.is_empty()
    }
}

/// Parse the action lines of an `apt-get -s` run; other lines are apt's prose.
pub fn parse_simulation(text: &str) -> Result<Simulation<'_>, PluginError> {
    let mut sim = Simulation::default();
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("Inst ") {
            sim.installs.push(parse_inst(rest).ok_or_else(|| {
                PluginError::Parse(format!("apt-get -s output line {}: {line:?}", i + 1))
            })?);
        } else if let Some((verb, rest)) = line.split_once(' ') {
            let removal = match verb {
                "Remv" | "Purg" => true,
                "Conf" => false,
                _ => continue,
            };
            let mut words = rest.split(' ');
            let name = words.next().filter(|n| !n.is_empty()).ok_or_else(|| {
                PluginError::Parse(format!("apt-get -s output line {}: {line:?}", i + 1))
            })?;
            if removal {
                sim.removals.push(name);
                sim.removed_versions.push(
                    words
                        .next()
                        .and_then(|w| w.strip_prefix('['))
                        .and_then(|w| w.strip_suffix(']'))
                        .filter(|v| !v.is_empty()),
                );
            } else {
                sim.configures.push(name);
            }
        }
    }
    Ok(sim)
}

/// `name [old] (new origins... [arch])...`, after `Inst `.
fn parse_inst(rest: &str) -> Option<Inst<'_>> {
    let (full_name, rest) = rest.split_once(' ')?;
    let name = full_name.split(':').next().filter(|n| !n.is_empty())?;
    let (old, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (old, r) = r.split_once("] ")?;
            (Some(old), r)
        }
        None => (None, rest),
    };
    let group = rest.strip_prefix('(')?;
    let group = group.get(..group.find(')')?)?;
    let new = group.split(' ').next().filter(|v| !v.is_empty())?;
    let arch = group
        .rsplit(' ')
        .next()?
        .strip_prefix('[')?
        .strip_suffix(']')
        .filter(|a| !a.is_empty())?;
    if old.is_some_and(str::is_empty) {
        return None;
    }
    Some(Inst {
        name,
        spec: full_name,
        old,
        new,
        arch,
    })
}

/// The packages an `apt-get -s upgrade` would upgrade, with their candidate versions.
///
/// `apt-get upgrade` leaves out held packages (and, on Ubuntu, phased updates not yet
/// meant for this machine) and never installs new packages or removes any. Should a
/// simulation show a new installation anyway, it is not an upgrade and is left out.
pub fn parse_upgradable(text: &str) -> Result<Vec<Installed>, PluginError> {
    let sim = parse_simulation(text)?;
    Ok(sim
        .installs
        .iter()
        .filter(|i| i.old.is_some())
        .map(|i| Installed {
            name: i.name.to_string(),
            version: i.new.to_string(),
            arch: i.arch.to_string(),
            source: None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `apt-get -s -o Debug::NoLocking=1 upgrade` on Debian 12 (129 upgrades).
    #[test]
    fn real_upgrade_simulation() {
        let text = include_str!("../tests/data/apt-get-s-upgrade-debian12.txt");
        let up = parse_upgradable(text).unwrap();
        assert_eq!(up.len(), 129);
        assert_eq!(
            up.len(),
            text.lines().filter(|l| l.starts_with("Inst ")).count()
        );
        let bash = up.iter().find(|p| p.name == "bash").unwrap();
        assert_eq!(
            (bash.version.as_str(), bash.arch.as_str()),
            ("5.2.15-2+b13", "amd64")
        );
        let jwt = up.iter().find(|p| p.name == "python3-jwt").unwrap();
        assert_eq!(
            (jwt.version.as_str(), jwt.arch.as_str()),
            ("2.6.0-1+deb12u1", "all")
        );
        let pam = up.iter().find(|p| p.name == "libpam-modules-bin").unwrap();
        assert_eq!(pam.version, "1.5.2-6+deb12u2");
        let cap = up.iter().find(|p| p.name == "libcap2").unwrap();
        assert_eq!(cap.version, "1:2.66-4+deb12u3+b1");
    }

    #[test]
    fn inst_line_shapes() {
        let sim = parse_simulation(
            "Reading package lists...\n\
             Inst libfoo:i386 [1.0-1] (1.0-2 Debian:12.15/oldstable [i386])\n\
             Inst newdep (2.0 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []\n\
             Inst bar [1:2.0] (1:2.1 local [all]) [baz:amd64 on bar:amd64] [baz:amd64 ]\n\
             Conf bar (1:2.1 local [all])\n\
             Remv jq [1.6-2.1+deb12u1]\n\
             Remv yq:arm64 [3.1.0-3]\n",
        )
        .unwrap();
        assert_eq!(
            sim.installs,
            [
                Inst {
                    name: "libfoo",
                    spec: "libfoo:i386",
                    old: Some("1.0-1"),
                    new: "1.0-2",
                    arch: "i386"
                },
                Inst {
                    name: "newdep",
                    spec: "newdep",
                    old: None,
                    new: "2.0",
                    arch: "amd64"
                },
                Inst {
                    name: "bar",
                    spec: "bar",
                    old: Some("1:2.0"),
                    new: "1:2.1",
                    arch: "all"
                },
            ]
        );
        assert_eq!(sim.removals, ["jq", "yq:arm64"]);
        assert_eq!(
            sim.removed_versions,
            [Some("1.6-2.1+deb12u1"), Some("3.1.0-3")]
        );
        assert_eq!(sim.configures, ["bar"]);
        assert!(!sim.is_empty());
        assert!(parse_simulation("Reading package lists...\n")
            .unwrap()
            .is_empty());
        let up = parse_upgradable(
            "Inst newdep (2.0 x [amd64])\nInst libfoo:i386 [1.0-1] (1.0-2 x [i386])\n",
        )
        .unwrap();
        assert_eq!(up.len(), 1);
        assert_eq!(
            (up[0].name.as_str(), up[0].arch.as_str()),
            ("libfoo", "i386")
        );
    }

    #[test]
    fn malformed_inst_lines_are_errors() {
        for line in [
            "Inst foo",
            "Inst foo [1.0] 2.0 [amd64]",
            "Inst foo [1.0 (2.0 x [amd64])",
            "Inst foo [1.0] (2.0 x amd64)",
            "Inst foo [1.0] (2.0 x [amd64]",
            "Inst foo [] (2.0 x [amd64])",
            "Inst  [1.0] (2.0 x [amd64])",
            "Remv ",
        ] {
            let text = format!("Reading package lists...\n{line}\n");
            match parse_simulation(&text) {
                Err(PluginError::Parse(msg)) => assert!(msg.contains("line 2"), "{msg}"),
                other => panic!("{line:?}: {other:?}"),
            }
        }
        assert!(parse_upgradable("0 upgraded, 0 newly installed\n")
            .unwrap()
            .is_empty());
    }
}
