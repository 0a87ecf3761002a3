//! OSV ecosystem names for the operating systems patchwave manages, and which of them apply
//! to a host.
//!
//! Names follow the OSV schema's list of ecosystems. They parse without error: a name this
//! module does not know is kept verbatim as [`Ecosystem::Other`], and records for it are
//! stored but never matched.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One OSV ecosystem, scoped to a release where the name says so.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Ecosystem {
    /// `Debian:<release>`, e.g. `Debian:12`.
    Debian {
        /// The release number (`12`), or the series name for releases without one (`sid`).
        release: String,
    },
    /// `Ubuntu:<yy.mm>[:LTS]`, `Ubuntu:Pro:<yy.mm>:LTS` or `Ubuntu:Pro:<variant>:<yy.mm>:LTS`.
    Ubuntu {
        /// The release, `yy.mm` (`22.04`).
        release: String,
        /// The name ends in `:LTS`.
        lts: bool,
        /// Which archive: the standard one, Ubuntu Pro (ESM), or a Pro variant.
        channel: UbuntuChannel,
    },
    /// `Red Hat:<cpe>`: the rest of the name is a product stream, kept verbatim
    /// (`enterprise_linux:9::baseos`).
    RedHat {
        /// Everything after `Red Hat:`.
        stream: String,
    },
    /// `Rocky Linux:<major>`.
    RockyLinux {
        /// The major release (`9`).
        release: String,
    },
    /// `AlmaLinux:<major>`.
    AlmaLinux {
        /// The major release (`9`).
        release: String,
    },
    /// Any other name, verbatim. Kept in the store; skipped by matching.
    Other(String),
}

/// The archive an `Ubuntu` ecosystem names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UbuntuChannel {
    /// The standard archive: `Ubuntu:22.04:LTS`, `Ubuntu:24.10`.
    Standard,
    /// Ubuntu Pro (Expanded Security Maintenance): `Ubuntu:Pro:18.04:LTS`.
    Pro,
    /// A Pro variant, kept as written: `Realtime` in `Ubuntu:Pro:Realtime:24.04:LTS`,
    /// `FIPS` or `FIPS-updates` and so on.
    ProVariant(String),
}

/// Whose version ordering an ecosystem's versions follow: which plugin compares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionFamily {
    /// dpkg ordering (Debian, Ubuntu).
    Dpkg,
    /// rpm ordering (Red Hat, Rocky Linux, AlmaLinux).
    Rpm,
    /// Unknown: the ecosystem is not matched.
    Unknown,
}

/// Which package name an ecosystem's records use, and so which name of an installed
/// package to look up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageNaming {
    /// Records name SOURCE packages (Debian, Ubuntu, Rocky Linux, AlmaLinux, as the OSV
    /// schema defines those ecosystems). An installed binary is looked up by its source
    /// package name, falling back to the binary name when the source is unknown.
    Source,
    /// Records name binary RPMs (Red Hat: its converter writes one affected entry per binary
    /// RPM, e.g. `git-lfs` and `git-lfs-debuginfo`). An installed package is looked up by its
    /// own name.
    Binary,
}

impl Ecosystem {
    /// Parse an OSV ecosystem name. Never fails: an unknown or malformed name is
    /// [`Ecosystem::Other`], kept verbatim.
    pub fn parse(name: &str) -> Ecosystem {
        parse_known(name).unwrap_or_else(|| Ecosystem::Other(name.to_string()))
    }

    /// `false` for [`Ecosystem::Other`]: records for it are kept but never matched.
    pub fn is_known(&self) -> bool {
        !matches!(self, Ecosystem::Other(_))
    }

    /// Whose version ordering applies, so the caller can send each pair to the right plugin.
    pub fn version_family(&self) -> VersionFamily {
        match self {
            Ecosystem::Debian { .. } | Ecosystem::Ubuntu { .. } => VersionFamily::Dpkg,
            Ecosystem::RedHat { .. }
            | Ecosystem::RockyLinux { .. }
            | Ecosystem::AlmaLinux { .. } => VersionFamily::Rpm,
            Ecosystem::Other(_) => VersionFamily::Unknown,
        }
    }

    /// Which name of an installed package this ecosystem's records use.
    pub fn package_naming(&self) -> PackageNaming {
        match self {
            Ecosystem::RedHat { .. } | Ecosystem::Other(_) => PackageNaming::Binary,
            Ecosystem::Debian { .. }
            | Ecosystem::Ubuntu { .. }
            | Ecosystem::RockyLinux { .. }
            | Ecosystem::AlmaLinux { .. } => PackageNaming::Source,
        }
    }
}

/// The ecosystems whose records apply to a host, from its os-release `ID` and `VERSION_ID`
/// and whether it is attached to Ubuntu Pro.
///
/// - `debian` `12` (or `12.4`) → `Debian:12`.
/// - `ubuntu` `22.04` → `Ubuntu:22.04:LTS`, plus `Ubuntu:Pro:22.04:LTS` with Pro. LTS means
///   `YY.04` with an even `YY`. Pro applies to LTS releases only, so `ubuntu` `24.10` →
///   `Ubuntu:24.10` with or without Pro. Pro *variants* (`Ubuntu:Pro:Realtime:…`,
///   `Ubuntu:Pro:FIPS…`) are not implied by a Pro attachment: a caller that knows a variant
///   is enabled adds its ecosystem itself.
/// - `rocky` `9.3` → `Rocky Linux:9`; `almalinux` `9.4` → `AlmaLinux:9`.
/// - Anything else (including `rhel`, whose ecosystems are per product stream such as
///   `Red Hat:enterprise_linux:9::baseos` and cannot be derived from os-release alone) →
///   none.
pub fn ecosystems_for_host(os_id: &str, version_id: &str, ubuntu_pro: bool) -> Vec<Ecosystem> {
    match os_id.trim() {
        "debian" => major(version_id)
            .map(|release| vec![Ecosystem::Debian { release }])
            .unwrap_or_default(),
        "ubuntu" => ubuntu_for_host(version_id.trim(), ubuntu_pro),
        "rocky" => major(version_id)
            .map(|release| vec![Ecosystem::RockyLinux { release }])
            .unwrap_or_default(),
        "almalinux" => major(version_id)
            .map(|release| vec![Ecosystem::AlmaLinux { release }])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn ubuntu_for_host(version_id: &str, pro: bool) -> Vec<Ecosystem> {
    if !is_ubuntu_release(version_id) {
        return Vec::new();
    }
    let release = version_id.to_string();
    if !is_lts_release(version_id) {
        return vec![ubuntu(&release, false, UbuntuChannel::Standard)];
    }
    let mut out = vec![ubuntu(&release, true, UbuntuChannel::Standard)];
    if pro {
        out.push(ubuntu(&release, true, UbuntuChannel::Pro));
    }
    out
}

fn ubuntu(release: &str, lts: bool, channel: UbuntuChannel) -> Ecosystem {
    Ecosystem::Ubuntu {
        release: release.to_string(),
        lts,
        channel,
    }
}

/// The major release: the digits before the first `.` (`9.3` → `9`).
fn major(version_id: &str) -> Option<String> {
    let major = version_id.trim().split('.').next()?;
    is_number(major).then(|| major.to_string())
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `yy.mm`: two digits, a dot, two digits.
fn is_ubuntu_release(s: &str) -> bool {
    matches!(s.split_once('.'), Some((yy, mm)) if yy.len() == 2 && mm.len() == 2 && is_number(yy) && is_number(mm))
}

/// An LTS release is `YY.04` with an even `YY`.
fn is_lts_release(release: &str) -> bool {
    match release.split_once('.') {
        Some((yy, "04")) => yy.parse::<u8>().is_ok_and(|y| y % 2 == 0),
        _ => false,
    }
}

fn parse_known(name: &str) -> Option<Ecosystem> {
    let (family, rest) = name.split_once(':')?;
    match family {
        "Debian" => parse_release_token(rest).map(|release| Ecosystem::Debian { release }),
        "Ubuntu" => parse_ubuntu(rest),
        "Red Hat" => (!rest.is_empty()).then(|| Ecosystem::RedHat {
            stream: rest.to_string(),
        }),
        "Rocky Linux" => is_number(rest).then(|| Ecosystem::RockyLinux {
            release: rest.to_string(),
        }),
        "AlmaLinux" => is_number(rest).then(|| Ecosystem::AlmaLinux {
            release: rest.to_string(),
        }),
        _ => None,
    }
}

/// A Debian release: a number (`12`) or a series name (`sid`), with no further colon.
fn parse_release_token(rest: &str) -> Option<String> {
    let ok = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| rest.to_string())
}

fn parse_ubuntu(rest: &str) -> Option<Ecosystem> {
    let parts: Vec<&str> = rest.split(':').collect();
    let (release, lts, channel) = match parts.as_slice() {
        [release] => (*release, false, UbuntuChannel::Standard),
        [release, "LTS"] => (*release, true, UbuntuChannel::Standard),
        ["Pro", release, "LTS"] => (*release, true, UbuntuChannel::Pro),
        ["Pro", variant, release, "LTS"] if !variant.is_empty() => (
            *release,
            true,
            UbuntuChannel::ProVariant(variant.to_string()),
        ),
        _ => return None,
    };
    is_ubuntu_release(release).then(|| ubuntu(release, lts, channel))
}

impl fmt::Display for Ecosystem {
    /// The OSV name, exactly as parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ecosystem::Debian { release } => write!(f, "Debian:{release}"),
            Ecosystem::Ubuntu {
                release,
                lts,
                channel,
            } => {
                f.write_str("Ubuntu:")?;
                match channel {
                    UbuntuChannel::Standard => {}
                    UbuntuChannel::Pro => f.write_str("Pro:")?,
                    UbuntuChannel::ProVariant(v) => write!(f, "Pro:{v}:")?,
                }
                f.write_str(release)?;
                if *lts {
                    f.write_str(":LTS")?;
                }
                Ok(())
            }
            Ecosystem::RedHat { stream } => write!(f, "Red Hat:{stream}"),
            Ecosystem::RockyLinux { release } => write!(f, "Rocky Linux:{release}"),
            Ecosystem::AlmaLinux { release } => write!(f, "AlmaLinux:{release}"),
            Ecosystem::Other(name) => f.write_str(name),
        }
    }
}

impl From<String> for Ecosystem {
    fn from(name: String) -> Ecosystem {
        parse_known(&name).unwrap_or(Ecosystem::Other(name))
    }
}

impl From<&str> for Ecosystem {
    fn from(name: &str) -> Ecosystem {
        Ecosystem::parse(name)
    }
}

impl From<Ecosystem> for String {
    fn from(e: Ecosystem) -> String {
        e.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn eco(s: &str) -> Ecosystem {
        Ecosystem::parse(s)
    }

    #[test]
    fn every_documented_form_parses_and_displays_back_verbatim() {
        let cases = [
            (
                "Debian:12",
                Ecosystem::Debian {
                    release: "12".into(),
                },
            ),
            (
                "Debian:sid",
                Ecosystem::Debian {
                    release: "sid".into(),
                },
            ),
            (
                "Ubuntu:24.10",
                ubuntu("24.10", false, UbuntuChannel::Standard),
            ),
            (
                "Ubuntu:22.04:LTS",
                ubuntu("22.04", true, UbuntuChannel::Standard),
            ),
            (
                "Ubuntu:Pro:18.04:LTS",
                ubuntu("18.04", true, UbuntuChannel::Pro),
            ),
            (
                "Ubuntu:Pro:Realtime:24.04:LTS",
                ubuntu("24.04", true, UbuntuChannel::ProVariant("Realtime".into())),
            ),
            (
                "Ubuntu:Pro:FIPS-updates:22.04:LTS",
                ubuntu(
                    "22.04",
                    true,
                    UbuntuChannel::ProVariant("FIPS-updates".into()),
                ),
            ),
            (
                "Red Hat:enterprise_linux:9::baseos",
                Ecosystem::RedHat {
                    stream: "enterprise_linux:9::baseos".into(),
                },
            ),
            (
                "Rocky Linux:9",
                Ecosystem::RockyLinux {
                    release: "9".into(),
                },
            ),
            (
                "AlmaLinux:8",
                Ecosystem::AlmaLinux {
                    release: "8".into(),
                },
            ),
        ];
        for (name, want) in cases {
            let got = eco(name);
            assert_eq!(got, want, "{name}");
            assert_eq!(got.to_string(), name);
            assert!(got.is_known(), "{name}");
        }
    }

    #[test]
    fn unknown_or_malformed_names_are_other_and_kept_verbatim() {
        for name in [
            "npm",
            "Debian",
            "Debian:",
            "Debian:12:extra",
            "Ubuntu:22.4",
            "Ubuntu:22.04:lts",
            "Ubuntu:Pro:25.04",
            "Ubuntu:Pro::22.04:LTS",
            "Red Hat:",
            "Rocky Linux:9.3",
            "AlmaLinux",
            "Alpine:v3.19",
        ] {
            let got = eco(name);
            assert_eq!(got, Ecosystem::Other(name.to_string()), "{name}");
            assert_eq!(got.to_string(), name);
            assert!(!got.is_known());
        }
    }

    #[test]
    fn serde_uses_the_osv_name() {
        let e = eco("Ubuntu:Pro:22.04:LTS");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            "\"Ubuntu:Pro:22.04:LTS\""
        );
        let back: Ecosystem = serde_json::from_str("\"Ubuntu:Pro:22.04:LTS\"").unwrap();
        assert_eq!(back, e);
        let other: Ecosystem = serde_json::from_str("\"PyPI\"").unwrap();
        assert_eq!(other, Ecosystem::Other("PyPI".into()));
    }

    #[test]
    fn host_facts_map_to_the_ecosystems_that_apply() {
        let names = |id: &str, v: &str, pro: bool| -> Vec<String> {
            ecosystems_for_host(id, v, pro)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(names("debian", "12", false), ["Debian:12"]);
        assert_eq!(names("debian", "12.4", true), ["Debian:12"]);
        assert_eq!(names("ubuntu", "22.04", false), ["Ubuntu:22.04:LTS"]);
        assert_eq!(
            names("ubuntu", "22.04", true),
            ["Ubuntu:22.04:LTS", "Ubuntu:Pro:22.04:LTS"]
        );
        assert_eq!(names("ubuntu", "24.10", false), ["Ubuntu:24.10"]);
        assert_eq!(names("ubuntu", "24.10", true), ["Ubuntu:24.10"]);
        assert_eq!(names("ubuntu", "23.04", true), ["Ubuntu:23.04"]);
        assert_eq!(names("rocky", "9.3", false), ["Rocky Linux:9"]);
        assert_eq!(names("almalinux", "9.4", false), ["AlmaLinux:9"]);
        assert!(names("rhel", "9.4", false).is_empty());
        assert!(names("debian", "", false).is_empty());
        assert!(names("ubuntu", "22", true).is_empty());
        assert!(names("arch", "rolling", false).is_empty());
    }

    #[test]
    fn families_and_naming() {
        assert_eq!(eco("Debian:12").version_family(), VersionFamily::Dpkg);
        assert_eq!(
            eco("Ubuntu:Pro:18.04:LTS").version_family(),
            VersionFamily::Dpkg
        );
        assert_eq!(eco("AlmaLinux:9").version_family(), VersionFamily::Rpm);
        assert_eq!(eco("npm").version_family(), VersionFamily::Unknown);
        assert_eq!(eco("Ubuntu:24.10").package_naming(), PackageNaming::Source);
        assert_eq!(eco("Rocky Linux:9").package_naming(), PackageNaming::Source);
        assert_eq!(
            eco("Red Hat:enterprise_linux:9::appstream").package_naming(),
            PackageNaming::Binary
        );
    }
}
