//! The dpkg package database, read through `dpkg-query`.
//!
//! Every query uses one format (see [`SHOW_FORMAT`]): one line per package instance,
//! five tab-separated fields `db:Status-Abbrev`, `Package`, `Version`, `Architecture`,
//! `source:Package`. The same parser serves the full inventory and the read-back of
//! named packages after an apply or rollback.

use std::fmt;

use patchwave_plugin_sdk::{Installed, PluginError};

/// The `dpkg-query --showformat` argument used for every query. The escapes are expanded
/// by dpkg-query itself, so the argv holds no control characters.
pub const SHOW_FORMAT: &str =
    "--showformat=${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t${source:Package}\\n";

/// A package's `db:Status-Abbrev`: desired action, current status, error flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// `u`nknown, `i`nstall, `h`old, `r`emove or `p`urge.
    pub want: u8,
    /// `n`ot-installed, `c`onfig-files, `H`alf-installed, `U`npacked,
    /// half-con`F`igured, triggers-a`W`aited, `t`riggers-pending or `i`nstalled.
    pub current: u8,
    /// `R` when dpkg requires a reinstallation, else a space.
    pub flag: u8,
}

impl Status {
    /// Parse the three-character abbreviation; `None` for anything dpkg does not print.
    pub fn parse(abbrev: &str) -> Option<Status> {
        let &[want, current, flag] = abbrev.as_bytes() else {
            return None;
        };
        let valid = b"uihrp".contains(&want)
            && b"ncHUFWti".contains(&current)
            && (flag == b' ' || flag == b'R');
        valid.then_some(Status {
            want,
            current,
            flag,
        })
    }

    /// The status of a package dpkg has never heard of (`dpkg-query` prints nothing).
    pub const UNKNOWN: Status = Status {
        want: b'u',
        current: b'n',
        flag: b' ',
    };

    /// A version of the package is on disk: installed, or on its way in or out
    /// (unpacked, half-installed, half-configured, awaiting or pending triggers).
    /// Not-installed and config-files-only packages are not.
    pub fn is_present(self) -> bool {
        !matches!(self.current, b'n' | b'c')
    }

    /// Fully installed and configured, with no reinstallation required.
    pub fn is_installed_ok(self) -> bool {
        self.current == b'i' && self.flag == b' '
    }

    /// Not installed, or only its configuration files remain.
    pub fn is_absent(self) -> bool {
        !self.is_present()
    }

    /// Half-way through an operation: dpkg was interrupted or a maintainer script failed.
    pub fn is_interrupted(self) -> bool {
        matches!(self.current, b'H' | b'U' | b'F' | b'W' | b't') || self.flag == b'R'
    }

    /// The selection is `hold` (what `apt-mark hold` sets and `apt-mark showhold` lists).
    pub fn is_held(self) -> bool {
        self.want == b'h'
    }
}

impl fmt::Display for Status {
    /// The abbreviation without its trailing blank, e.g. `ii`, `iF`, `iHR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = [self.want, self.current, self.flag];
        let shown = if self.flag == b' ' {
            &chars[..2]
        } else {
            &chars[..]
        };
        f.write_str(std::str::from_utf8(shown).map_err(|_| fmt::Error)?)
    }
}

/// One line of `dpkg-query` output, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The package's state.
    pub status: Status,
    /// Binary package name, without an architecture qualifier.
    pub name: &'a str,
    /// The version dpkg records (empty for packages it only knows by name).
    pub version: &'a str,
    /// Architecture, e.g. `amd64` or `all` (empty for packages it only knows by name).
    pub arch: &'a str,
    /// Source package name (dpkg defaults it to the binary name).
    pub source: &'a str,
}

impl<'a> Record<'a> {
    /// Parse one line; `number` (1-based) only names the line in the error.
    pub fn parse(line: &'a str, number: usize) -> Result<Self, PluginError> {
        let bad = |why: &str| {
            PluginError::Parse(format!("dpkg-query output line {number}: {why}: {line:?}"))
        };
        let mut fields = line.split('\t');
        let (Some(status), Some(name), Some(version), Some(arch), Some(source), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(bad("expected 5 tab-separated fields"));
        };
        let status = Status::parse(status).ok_or_else(|| bad("unknown package status"))?;
        if name.is_empty() {
            return Err(bad("empty package name"));
        }
        if status.is_present() && (version.is_empty() || arch.is_empty()) {
            return Err(bad("installed package without version or architecture"));
        }
        Ok(Record {
            status,
            name,
            version,
            arch,
            source,
        })
    }

    /// The package as an inventory entry.
    pub fn to_installed(&self) -> Installed {
        Installed {
            name: self.name.to_string(),
            version: self.version.to_string(),
            arch: self.arch.to_string(),
            source: (!self.source.is_empty()).then(|| self.source.to_string()),
        }
    }
}

/// Parse `dpkg-query` output into records, failing on the first malformed line.
pub fn parse_records(text: &str) -> Result<Vec<Record<'_>>, PluginError> {
    text.split_terminator('\n')
        .enumerate()
        .map(|(i, line)| Record::parse(line, i + 1))
        .collect()
}

/// The inventory: every package instance with a version on disk.
///
/// Semantics: a package is listed when the current-status character of its
/// `db:Status-Abbrev` (the second one) is anything but `n` (not-installed) and `c`
/// (config-files), i.e. `i`, and also the in-between states `U`, `F`, `H`, `W`, `t`,
/// because a version of the package is present on disk and may carry vulnerabilities.
/// The desired-action character (`i`, `h`, `r`, ...) and the reinstreq flag do not
/// matter. Plain `dpkg-query -W` differs only in also listing `rc` packages (removed,
/// configuration files left), which have no installed code and are left out here.
/// Multi-arch instances (`libc6:amd64`, `libc6:i386`) are separate entries.
pub fn parse_inventory(text: &str) -> Result<Vec<Installed>, PluginError> {
    let mut out = Vec::with_capacity(text.len() / 64);
    for (i, line) in text.split_terminator('\n').enumerate() {
        let rec = Record::parse(line, i + 1)?;
        if rec.status.is_present() {
            out.push(rec.to_installed());
        }
    }
    Ok(out)
}

/// A package as the caller names it: `name` or `name:arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageRef<'a> {
    /// The spelling the caller used, passed on to apt and dpkg as is.
    pub spec: &'a str,
    /// The package name.
    pub name: &'a str,
    /// The architecture qualifier, if any.
    pub arch: Option<&'a str>,
}

impl<'a> PackageRef<'a> {
    /// Validate a package name (Debian policy: `[a-z0-9][a-z0-9+.-]+`), optionally
    /// qualified with `:arch` (`[a-z0-9][a-z0-9-]*`).
    pub fn parse(spec: &'a str) -> Result<Self, PluginError> {
        let (name, arch) = match spec.split_once(':') {
            Some((name, arch)) => (name, Some(arch)),
            None => (spec, None),
        };
        let name_ok = name.len() >= 2
            && name.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || (i > 0 && matches!(b, b'+' | b'.' | b'-'))
            });
        let arch_ok = arch.is_none_or(|a| {
            a.bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b == b'-'))
                && !a.is_empty()
        });
        if !name_ok || !arch_ok {
            return Err(PluginError::InvalidInput(format!(
                "invalid package name {spec:?}: expected [a-z0-9][a-z0-9+.-]+ with an optional :arch"
            )));
        }
        Ok(PackageRef { spec, name, arch })
    }

    /// The records (of a read-back) that are this package.
    pub fn matching<'r>(
        &self,
        records: &'r [Record<'r>],
    ) -> impl Iterator<Item = &'r Record<'r>> + use<'r, '_> {
        records
            .iter()
            .filter(move |r| r.name == self.name && self.arch.is_none_or(|a| a == r.arch))
    }

    /// What the package database says about this package: the first present instance
    /// that fails `good`, else the first present instance, else the first record (e.g.
    /// `rc`), else [`Status::UNKNOWN`]. Several instances only occur for a multi-arch
    /// package named without a qualifier.
    pub fn state_in<'r>(
        &self,
        records: &'r [Record<'r>],
        good: impl Fn(&Record<'_>) -> bool,
    ) -> (Status, Option<&'r str>) {
        let mut first = None;
        let mut first_present = None;
        for rec in self.matching(records) {
            first.get_or_insert(rec);
            if rec.status.is_present() {
                if !good(rec) {
                    return (rec.status, Some(rec.version));
                }
                first_present.get_or_insert(rec);
            }
        }
        match (first_present, first) {
            (Some(rec), _) => (rec.status, Some(rec.version)),
            (None, Some(rec)) => (rec.status, None),
            (None, None) => (Status::UNKNOWN, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_abbreviations() {
        let ii = Status::parse("ii ").unwrap();
        assert!(ii.is_present() && ii.is_installed_ok() && !ii.is_held() && !ii.is_interrupted());
        assert_eq!(ii.to_string(), "ii");
        let hi = Status::parse("hi ").unwrap();
        assert!(hi.is_held() && hi.is_installed_ok());
        let rc = Status::parse("rc ").unwrap();
        assert!(rc.is_absent() && !rc.is_present());
        let ihr = Status::parse("iHR").unwrap();
        assert!(ihr.is_present() && !ihr.is_installed_ok() && ihr.is_interrupted());
        assert_eq!(ihr.to_string(), "iHR");
        let iir = Status::parse("iiR").unwrap();
        assert!(!iir.is_installed_ok() && iir.is_interrupted());
        for s in ["iU ", "iF ", "iW ", "it "] {
            let st = Status::parse(s).unwrap();
            assert!(
                st.is_present() && st.is_interrupted() && !st.is_installed_ok(),
                "{s}"
            );
        }
        for bad in ["", "ii", "ii  ", "xi ", "ix ", "iiX", "ïi"] {
            assert_eq!(Status::parse(bad), None, "{bad:?}");
        }
    }

    /// `dpkg-query` output from a synthetic status database covering every state
    /// (made with `--admindir`, see `tests/data/README.md`).
    #[test]
    fn inventory_keeps_present_packages_only() {
        let text = include_str!("../tests/data/dpkg-query-states.txt");
        let inv = parse_inventory(text).unwrap();
        let names: Vec<(&str, &str)> = inv
            .iter()
            .map(|p| (p.name.as_str(), p.arch.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("alpha", "amd64"),
                ("delta", "amd64"),
                ("eta", "all"),
                ("gamma", "amd64"),
                ("theta", "all"),
                ("zeta", "amd64"),
                ("zeta", "i386"),
            ]
        );
        let gamma = &inv[3];
        assert_eq!(gamma.version, "1.5-1+b1");
        assert_eq!(gamma.source.as_deref(), Some("gsrc"));
        assert_eq!(inv[5].version, "4:1.2~rc1");
    }

    /// The whole package database of the machine the plugin was written on.
    #[test]
    fn inventory_of_a_real_machine() {
        let text = include_str!("../tests/data/dpkg-query-debian12.txt");
        let inv = parse_inventory(text).unwrap();
        assert_eq!(inv.len(), text.lines().count());
        let bash = inv.iter().find(|p| p.name == "bash").unwrap();
        assert_eq!(
            (
                bash.version.as_str(),
                bash.arch.as_str(),
                bash.source.as_deref()
            ),
            ("5.2.15-2+b8", "amd64", Some("bash"))
        );
        let ssl = inv.iter().find(|p| p.name == "libssl3").unwrap();
        assert_eq!(ssl.source.as_deref(), Some("openssl"));
        assert!(inv
            .iter()
            .all(|p| !p.name.is_empty() && !p.version.is_empty()));
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let cases = [
            "ii \tfoo\t1.0\tamd64\n",
            "ii \tfoo\t1.0\tamd64\tfoo\textra\n",
            "zz \tfoo\t1.0\tamd64\tfoo\n",
            "ii \t\t1.0\tamd64\tfoo\n",
            "ii \tfoo\t\tamd64\tfoo\n",
            "\n",
        ];
        for case in cases {
            let text = format!("ii \tok\t1\tall\tok\n{case}");
            match parse_inventory(&text) {
                Err(PluginError::Parse(msg)) => assert!(msg.contains("line 2"), "{msg}"),
                other => panic!("{case:?}: {other:?}"),
            }
        }
        assert!(parse_inventory("").unwrap().is_empty());
        // A package dpkg only knows by name has no version: fine outside the inventory.
        assert!(parse_inventory("un \tfoo\t\t\tfoo\n").unwrap().is_empty());
    }

    #[test]
    fn package_refs() {
        for ok in [
            "libc6",
            "g++",
            "libstdc++6",
            "0ad",
            "python3.11",
            "zeta:i386",
            "x1:arm-64",
        ] {
            assert!(PackageRef::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "-x",
            "+x",
            "Foo",
            "foo bar",
            "foo=1",
            "foo/bookworm",
            "foo:",
            "foo:-x",
            "foo:a:b",
            "foo*",
            "../x",
            "foo\n",
            "ünï",
        ] {
            assert!(
                matches!(PackageRef::parse(bad), Err(PluginError::InvalidInput(_))),
                "{bad:?}"
            );
        }
        let r = PackageRef::parse("zeta:i386").unwrap();
        assert_eq!(
            (r.name, r.arch, r.spec),
            ("zeta", Some("i386"), "zeta:i386")
        );
    }

    #[test]
    fn read_back_picks_the_worst_instance() {
        let text =
            "iU \tzeta\t2.0\tamd64\tz\nii \tzeta\t2.0\ti386\tz\nrc \tgone\t1.0\tamd64\tgone\n";
        let recs = parse_records(text).unwrap();
        let ok = |r: &Record<'_>| r.status.is_installed_ok() && r.version == "2.0";
        let zeta = PackageRef::parse("zeta").unwrap();
        let (st, found) = zeta.state_in(&recs, ok);
        assert_eq!((st.to_string().as_str(), found), ("iU", Some("2.0")));
        let zeta386 = PackageRef::parse("zeta:i386").unwrap();
        let (st, found) = zeta386.state_in(&recs, ok);
        assert_eq!((st.to_string().as_str(), found), ("ii", Some("2.0")));
        let gone = PackageRef::parse("gone").unwrap();
        let (st, found) = gone.state_in(&recs, ok);
        assert_eq!((st.to_string().as_str(), found), ("rc", None));
        let never = PackageRef::parse("never").unwrap();
        assert_eq!(never.state_in(&recs, ok), (Status::UNKNOWN, None));
    }
}
