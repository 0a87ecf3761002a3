//! The patchwave OS plugin for Debian, Ubuntu and their derivatives.
//!
//! Reads the package database with `dpkg-query`, finds upgrades with a simulated
//! `apt-get upgrade`, compares versions exactly as dpkg does, installs, downgrades,
//! removes and holds packages with `apt-get` and `apt-mark`, and verifies that changes
//! took. Every program it runs is declared in the manifest (see [`commands`]); it runs
//! nothing through a shell.
//!
//! Modules: [`version`] (dpkg version ordering), [`os_release`], [`dpkg`] (package
//! database), [`apt`] (simulation output), [`commands`] (commands and grants),
//! [`facts`] (read-only calls), [`transaction`] (apply, rollback and verify), [`host`]
//! (exec).

// Tests may unwrap and index; the plugin itself may not (see the crate's lints).
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod apt;
pub mod commands;
pub mod dpkg;
pub mod facts;
pub mod host;
pub mod os_release;
pub mod transaction;
pub mod version;

#[cfg(target_family = "wasm")]
use patchwave_plugin_sdk::export_plugin;
use patchwave_plugin_sdk::{
    ApplyReport, Change, Manifest, Ordering, OsFacts, PackageTable, Plugin, PluginError,
    RollbackStep, Transaction,
};

/// os-release `ID`s (and `ID_LIKE` entries) this plugin handles.
pub const OS_IDS: &[&str] = &["debian", "ubuntu"];
/// OSV ecosystems whose versions [`version`] orders.
pub const ECOSYSTEMS: &[&str] = &["Debian", "Ubuntu"];

/// The plugin, exported as the component's `os` interface.
pub struct Debian;

impl Plugin for Debian {
    fn manifest() -> Manifest {
        Manifest {
            name: "debian".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            os_ids: OS_IDS.iter().map(|s| s.to_string()).collect(),
            ecosystems: ECOSYSTEMS.iter().map(|s| s.to_string()).collect(),
            wants: commands::grants(),
        }
    }

    fn facts() -> Result<OsFacts, PluginError> {
        facts::facts(&mut host::Wasm)
    }

    fn inventory() -> Result<PackageTable, PluginError> {
        facts::inventory(&mut host::Wasm)
    }

    fn upgradable() -> Result<PackageTable, PluginError> {
        Ok(facts::upgradable(&mut host::Wasm)?.iter().collect())
    }

    fn compare_versions(pairs: Vec<(String, String)>) -> Vec<Result<Ordering, String>> {
        pairs
            .iter()
            .map(|(a, b)| {
                version::compare(a, b).map(|o| match o {
                    std::cmp::Ordering::Less => Ordering::Less,
                    std::cmp::Ordering::Equal => Ordering::Equal,
                    std::cmp::Ordering::Greater => Ordering::Greater,
                })
            })
            .collect()
    }

    fn plan_apply(changes: Vec<Change>) -> Result<Transaction, PluginError> {
        transaction::plan_apply(&mut host::Wasm, &changes)
    }

    fn plan_rollback(changes: Vec<Change>) -> Result<Vec<RollbackStep>, PluginError> {
        transaction::plan_rollback(&mut host::Wasm, &changes)
    }

    fn apply(changes: Vec<Change>) -> Result<ApplyReport, PluginError> {
        transaction::apply(&mut host::Wasm, &changes)
    }

    fn rollback(steps: Vec<RollbackStep>) -> Result<ApplyReport, PluginError> {
        transaction::rollback(&mut host::Wasm, &steps)
    }

    fn verify(changes: Vec<Change>) -> Result<ApplyReport, PluginError> {
        transaction::verify(&mut host::Wasm, &changes)
    }
}

// Exported only in the component: the export symbols are not valid native symbol names,
// and native builds exist only for the unit tests.
#[cfg(target_family = "wasm")]
export_plugin!(Debian);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_identity() {
        let m = Debian::manifest();
        assert_eq!(m.name, "debian");
        assert_eq!(m.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(m.os_ids, ["debian", "ubuntu"]);
        assert_eq!(m.ecosystems, ["Debian", "Ubuntu"]);
        assert_eq!(m.wants.len(), commands::ALL.len());
    }

    #[test]
    fn compare_versions_one_answer_per_pair() {
        let pairs = vec![
            ("1.0~rc1".to_string(), "1.0".to_string()),
            ("1:0.1".to_string(), "2.0".to_string()),
            ("1.0".to_string(), "1.0-0".to_string()),
            ("".to_string(), "1".to_string()),
            ("1.0".to_string(), "1:".to_string()),
        ];
        let got = Debian::compare_versions(pairs);
        assert_eq!(got[0], Ok(Ordering::Less));
        assert_eq!(got[1], Ok(Ordering::Greater));
        assert_eq!(got[2], Ok(Ordering::Equal));
        assert!(got[3].as_ref().is_err_and(|e| e.contains("''")));
        assert!(got[4].as_ref().is_err_and(|e| e.contains("'1:'")));
    }
}
