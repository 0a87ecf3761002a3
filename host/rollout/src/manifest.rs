//! The release manifest: the one pinned set of packages a rollout moves through the fleet.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::problems::{ok_or_problems, Problems};

/// How many hex digits of the SHA-256 make a manifest id.
pub const MANIFEST_ID_HEX_LEN: usize = 12;

pub use patchwave_core::PatchClass;

/// One package pinned at an exact version within an OSV ecosystem, e.g. `Debian:12`,
/// `acme-web`, `1.0-2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedPackage {
    /// OSV ecosystem, e.g. `Debian:12`.
    pub ecosystem: String,
    /// Package name.
    pub name: String,
    /// The exact version every host gets.
    pub version: String,
}

impl PinnedPackage {
    /// A pin of `name` at `version` in `ecosystem`.
    pub fn new(ecosystem: &str, name: &str, version: &str) -> PinnedPackage {
        PinnedPackage {
            ecosystem: ecosystem.to_string(),
            name: name.to_string(),
            version: version.to_string(),
        }
    }
}

impl fmt::Display for PinnedPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.ecosystem, self.name, self.version)
    }
}

/// What is wrong with a manifest's input.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ManifestError {
    /// No packages at all.
    #[error("the manifest pins no packages")]
    Empty,
    /// The origin text is blank.
    #[error("the manifest has no origin: say where the set came from, e.g. `explicit` or `findings: critical,high`")]
    BlankOrigin,
    /// A field of a package is blank or holds a control character.
    #[error("package #{index}: `{field}` is blank or holds a control character: {value:?}")]
    BadField {
        /// Position of the package in the input, from 0.
        index: usize,
        /// `ecosystem`, `name` or `version`.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// The same package is pinned at two or more versions.
    #[error("conflicting pins for {ecosystem} {name}: versions {}", versions.join(" and "))]
    ConflictingPins {
        /// Ecosystem of the package.
        ecosystem: String,
        /// Package name.
        name: String,
        /// Every version asked for, sorted.
        versions: Vec<String>,
    },
    /// A stored manifest's id does not match its packages.
    #[error("manifest id `{stored}` does not match its packages (they hash to `{derived}`)")]
    IdMismatch {
        /// The id that was stored.
        stored: String,
        /// The id derived from the packages.
        derived: String,
    },
}

/// All problems of one manifest input.
pub type ManifestErrors = Problems<ManifestError>;

/// The exact set of package versions one rollout installs: sorted, deduplicated, at most one
/// version per (ecosystem, name), identified by a hash of its content. The canary and every
/// wave get exactly this set — never "latest".
///
/// The set is the packages asked for ([`ReleaseManifest::packages`]) plus the
/// [`dependencies`](ReleaseManifest::dependencies) the package manager resolved for them at
/// the canary (a new version that needs a newer library upgrades the library too). Every
/// later host installs exactly those versions: a host whose own resolution differs is
/// refused, and a rollback reverses every package of the set the apply changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredManifest")]
pub struct ReleaseManifest {
    id: String,
    packages: Vec<PinnedPackage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<PinnedPackage>,
    origin: String,
    class: PatchClass,
}

/// A manifest as stored: checked again (and its id recomputed) when read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredManifest {
    id: String,
    packages: Vec<PinnedPackage>,
    #[serde(default)]
    dependencies: Vec<PinnedPackage>,
    origin: String,
    class: PatchClass,
}

impl TryFrom<StoredManifest> for ReleaseManifest {
    type Error = ManifestErrors;

    fn try_from(stored: StoredManifest) -> Result<Self, Self::Error> {
        let manifest = ReleaseManifest::new(stored.packages, &stored.origin, stored.class)?
            .with_dependencies(stored.dependencies)?;
        if manifest.id != stored.id {
            return Err(Problems::one(ManifestError::IdMismatch {
                stored: stored.id,
                derived: manifest.id,
            }));
        }
        Ok(manifest)
    }
}

impl ReleaseManifest {
    /// Builds the manifest: checks every package, sorts and deduplicates them, refuses two
    /// versions of the same (ecosystem, name) and derives the id. `origin` says where the set
    /// came from (`explicit`, `findings: critical,high`); `class` is the most urgent class of
    /// the patches it carries.
    pub fn new(
        packages: Vec<PinnedPackage>,
        origin: &str,
        class: PatchClass,
    ) -> Result<ReleaseManifest, ManifestErrors> {
        let mut problems = Vec::new();
        if packages.is_empty() {
            problems.push(ManifestError::Empty);
        }
        if origin.trim().is_empty() {
            problems.push(ManifestError::BlankOrigin);
        }
        for (index, package) in packages.iter().enumerate() {
            problems.extend(field_problems(index, package));
        }
        let mut packages = packages;
        packages.sort();
        packages.dedup();
        problems.extend(conflicts(&packages));
        let id = content_id(&packages, &[]);
        ok_or_problems(
            ReleaseManifest {
                id,
                packages,
                dependencies: Vec::new(),
                origin: origin.trim().to_string(),
                class,
            },
            problems,
        )
    }

    /// The manifest with `dependencies` (what the package manager resolved for the packages
    /// at the canary) added to its set, replacing any dependencies it had. A dependency is
    /// checked like a package (it is numbered after the packages in errors); one that is also
    /// a package at the same version is dropped, one at another version conflicts. The id
    /// covers the dependencies too.
    pub fn with_dependencies(
        self,
        dependencies: Vec<PinnedPackage>,
    ) -> Result<ReleaseManifest, ManifestErrors> {
        let mut problems = Vec::new();
        let offset = self.packages.len();
        for (index, package) in dependencies.iter().enumerate() {
            problems.extend(field_problems(offset + index, package));
        }
        let mut dependencies: Vec<PinnedPackage> = dependencies
            .into_iter()
            .filter(|d| !self.packages.contains(d))
            .collect();
        dependencies.sort();
        dependencies.dedup();
        let mut all: Vec<PinnedPackage> =
            self.packages.iter().chain(&dependencies).cloned().collect();
        all.sort();
        problems.extend(conflicts(&all));
        let id = content_id(&self.packages, &dependencies);
        ok_or_problems(
            ReleaseManifest {
                id,
                dependencies,
                ..self
            },
            problems,
        )
    }

    /// The content-derived id: the first 12 hex digits of the SHA-256 of [`Self::canonical`].
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pinned packages, sorted by ecosystem, name and version.
    pub fn packages(&self) -> &[PinnedPackage] {
        &self.packages
    }

    /// What the package manager resolved for [`Self::packages`] at the canary, which every
    /// host installs with them (empty when nothing else moves), sorted.
    pub fn dependencies(&self) -> &[PinnedPackage] {
        &self.dependencies
    }

    /// Where the set came from, e.g. `explicit` or `findings: critical,high`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The most urgent class among the patches.
    pub fn class(&self) -> PatchClass {
        self.class
    }

    /// The canonical text the id is derived from: one line per package,
    /// `ecosystem TAB name TAB version LF`, in sorted order, then one per dependency, the same
    /// line after `dependency TAB`.
    pub fn canonical(&self) -> String {
        canonical(&self.packages, &self.dependencies)
    }

    /// Whether the set (a package or a dependency) holds package `name` at exactly `version`
    /// (in any ecosystem).
    pub fn pins(&self, name: &str, version: &str) -> bool {
        self.packages
            .iter()
            .chain(&self.dependencies)
            .any(|p| p.name == name && p.version == version)
    }
}

fn field_problems(index: usize, package: &PinnedPackage) -> Vec<ManifestError> {
    [
        ("ecosystem", &package.ecosystem),
        ("name", &package.name),
        ("version", &package.version),
    ]
    .into_iter()
    .filter(|(_, value)| value.trim().is_empty() || value.chars().any(char::is_control))
    .map(|(field, value)| ManifestError::BadField {
        index,
        field,
        value: value.clone(),
    })
    .collect()
}

/// Conflicts in sorted, deduplicated packages: runs of the same (ecosystem, name).
fn conflicts(sorted: &[PinnedPackage]) -> Vec<ManifestError> {
    sorted
        .chunk_by(|a, b| a.ecosystem == b.ecosystem && a.name == b.name)
        .filter(|run| run.len() > 1)
        .map(|run| ManifestError::ConflictingPins {
            ecosystem: run[0].ecosystem.clone(),
            name: run[0].name.clone(),
            versions: run.iter().map(|p| p.version.clone()).collect(),
        })
        .collect()
}

/// One line per package; dependencies follow, marked, so a manifest without any keeps the id
/// it always had.
fn canonical(packages: &[PinnedPackage], dependencies: &[PinnedPackage]) -> String {
    let line = |p: &PinnedPackage| format!("{}\t{}\t{}\n", p.ecosystem, p.name, p.version);
    packages
        .iter()
        .map(line)
        .chain(
            dependencies
                .iter()
                .map(|d| format!("dependency\t{}", line(d))),
        )
        .collect()
}

fn content_id(packages: &[PinnedPackage], dependencies: &[PinnedPackage]) -> String {
    let digest = Sha256::digest(canonical(packages, dependencies).as_bytes());
    let mut id = hex::encode(digest);
    id.truncate(MANIFEST_ID_HEX_LEN);
    id
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn pin(eco: &str, name: &str, version: &str) -> PinnedPackage {
        PinnedPackage::new(eco, name, version)
    }

    #[test]
    fn sorted_deduplicated_and_hashed() {
        let m = ReleaseManifest::new(
            vec![
                pin("Debian:12", "openssl", "3.0.15-1~deb12u1"),
                pin("Debian:12", "acme-web", "1.0-2"),
                pin("Debian:12", "openssl", "3.0.15-1~deb12u1"),
            ],
            "findings: critical,high",
            PatchClass::Critical,
        )
        .unwrap();
        assert_eq!(
            m.packages(),
            &[
                pin("Debian:12", "acme-web", "1.0-2"),
                pin("Debian:12", "openssl", "3.0.15-1~deb12u1"),
            ]
        );
        assert_eq!(
            m.canonical(),
            "Debian:12\tacme-web\t1.0-2\nDebian:12\topenssl\t3.0.15-1~deb12u1\n"
        );
        // printf 'Debian:12\tacme-web\t1.0-2\nDebian:12\topenssl\t3.0.15-1~deb12u1\n' | sha256sum
        assert_eq!(m.id(), "8ab331bbf438");
        assert_eq!(m.origin(), "findings: critical,high");
        assert_eq!(m.class(), PatchClass::Critical);
        assert!(m.pins("openssl", "3.0.15-1~deb12u1"));
        assert!(!m.pins("openssl", "3.0.16-1"));
    }

    #[test]
    fn the_id_depends_on_content_only() {
        let a = ReleaseManifest::new(
            vec![pin("Debian:12", "b", "2"), pin("Debian:12", "a", "1")],
            "explicit",
            PatchClass::Low,
        )
        .unwrap();
        let b = ReleaseManifest::new(
            vec![pin("Debian:12", "a", "1"), pin("Debian:12", "b", "2")],
            "findings: low",
            PatchClass::Moderate,
        )
        .unwrap();
        let c = ReleaseManifest::new(
            vec![pin("Debian:12", "a", "1"), pin("Debian:12", "b", "3")],
            "explicit",
            PatchClass::Low,
        )
        .unwrap();
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.id().len(), MANIFEST_ID_HEX_LEN);
    }

    #[test]
    fn conflicting_pins_are_refused_naming_both_versions() {
        let err = ReleaseManifest::new(
            vec![
                pin("Debian:12", "acme-web", "1.0-3"),
                pin("Debian:12", "acme-web", "1.0-2"),
                pin("Ubuntu:22.04", "acme-web", "2.0"),
            ],
            "explicit",
            PatchClass::High,
        )
        .unwrap_err();
        assert_eq!(
            err.as_slice(),
            &[ManifestError::ConflictingPins {
                ecosystem: "Debian:12".into(),
                name: "acme-web".into(),
                versions: vec!["1.0-2".into(), "1.0-3".into()],
            }]
        );
        assert_eq!(
            err.to_string(),
            "1 problem: conflicting pins for Debian:12 acme-web: versions 1.0-2 and 1.0-3"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = ReleaseManifest::new(
            vec![pin("Debian:12", " ", "1"), pin("Debian:12", "x", "1\n")],
            "",
            PatchClass::Low,
        )
        .unwrap_err();
        assert_eq!(
            err.into_vec(),
            vec![
                ManifestError::BlankOrigin,
                ManifestError::BadField {
                    index: 0,
                    field: "name",
                    value: " ".into()
                },
                ManifestError::BadField {
                    index: 1,
                    field: "version",
                    value: "1\n".into()
                },
            ]
        );
        assert_eq!(
            ReleaseManifest::new(vec![], "explicit", PatchClass::Low)
                .unwrap_err()
                .into_vec(),
            vec![ManifestError::Empty]
        );
    }

    #[test]
    fn dependencies_join_the_set_and_its_id() {
        let m = ReleaseManifest::new(
            vec![pin("Debian:12", "acme-api", "1.0-2")],
            "explicit",
            PatchClass::High,
        )
        .unwrap();
        let plain_id = m.id().to_string();
        let with = m
            .clone()
            .with_dependencies(vec![
                pin("Debian:12", "acme-lib", "2.1-1"),
                pin("Debian:12", "acme-extra", "1.0-1"),
                // The package itself, resolved too: not a dependency.
                pin("Debian:12", "acme-api", "1.0-2"),
            ])
            .unwrap();
        assert_eq!(with.packages(), m.packages());
        assert_eq!(
            with.dependencies(),
            &[
                pin("Debian:12", "acme-extra", "1.0-1"),
                pin("Debian:12", "acme-lib", "2.1-1"),
            ]
        );
        assert_eq!(
            with.canonical(),
            "Debian:12\tacme-api\t1.0-2\n\
             dependency\tDebian:12\tacme-extra\t1.0-1\n\
             dependency\tDebian:12\tacme-lib\t2.1-1\n"
        );
        assert_ne!(with.id(), plain_id);
        assert!(with.pins("acme-lib", "2.1-1"));
        assert!(!with.pins("acme-lib", "2.0-1"));
        assert!(!m.pins("acme-lib", "2.1-1"));
        // Stored and read back with its dependencies; a tampered dependency is refused.
        let json = serde_json::to_string(&with).unwrap();
        assert_eq!(
            serde_json::from_str::<ReleaseManifest>(&json).unwrap(),
            with
        );
        assert!(serde_json::from_str::<ReleaseManifest>(&json.replace("2.1-1", "2.2-1")).is_err());
        // Without dependencies nothing changes, the stored form included.
        assert!(!serde_json::to_string(&m).unwrap().contains("dependencies"));
        assert_eq!(m.clone().with_dependencies(vec![]).unwrap(), m);

        let err = m
            .with_dependencies(vec![
                pin("Debian:12", "acme-api", "1.0-3"),
                pin("Debian:12", "x", ""),
            ])
            .unwrap_err();
        assert_eq!(
            err.into_vec(),
            vec![
                ManifestError::BadField {
                    index: 2,
                    field: "version",
                    value: "".into()
                },
                ManifestError::ConflictingPins {
                    ecosystem: "Debian:12".into(),
                    name: "acme-api".into(),
                    versions: vec!["1.0-2".into(), "1.0-3".into()],
                },
            ]
        );
    }

    #[test]
    fn a_stored_manifest_is_checked_when_read_back() {
        let m = ReleaseManifest::new(
            vec![pin("Debian:12", "a", "1")],
            "explicit",
            PatchClass::Low,
        )
        .unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: ReleaseManifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let tampered = json.replace("\"1\"", "\"2\"");
        let err = serde_json::from_str::<ReleaseManifest>(&tampered).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "1 problem: manifest id `{}` does not match its packages (they hash to `{}`)",
                m.id(),
                ReleaseManifest::new(
                    vec![pin("Debian:12", "a", "2")],
                    "explicit",
                    PatchClass::Low
                )
                .unwrap()
                .id()
            )
        );
    }
}
