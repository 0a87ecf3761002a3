//! The plugin contract as the engine sees it: one trait with the functions of the WIT
//! world's `os` interface, so the engine's use cases depend on the contract and not on
//! how a plugin runs. [`LoadedPlugin`] (a sandboxed wasm component) is the implementation;
//! a vendor conformance kit drives any `dyn OsPlugin` the same way.

use std::cmp::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use patchwave_core::{
    ApplyReport, Change, ExecGrant, Installed, Manifest, OsFacts, PluginError, RollbackStep,
    Transaction,
};
use patchwave_transport::Transport;

use crate::{Limits, LoadedPlugin};

/// An OS plugin: reads a host's package database and changes it, through `target`.
/// Each call is independent (a fresh instance for a wasm plugin).
#[async_trait]
pub trait OsPlugin: Send + Sync + std::fmt::Debug {
    /// The plugin's name (its manifest's).
    fn name(&self) -> &str;
    /// The manifest read at load: OS ids, ecosystems, the commands it wants.
    fn manifest(&self) -> &Manifest;
    /// SHA-256 of what runs (the wasm file), recorded with every scan.
    fn digest(&self) -> &str;
    /// The grants in force (declared ∩ granted decides each request).
    fn granted(&self) -> &[ExecGrant];
    /// The limits every call runs under.
    fn limits(&self) -> &Limits;

    /// The host's OS, or `unsupported` for an OS the plugin does not handle.
    async fn facts(&self, target: Arc<dyn Transport>) -> Result<OsFacts, PluginError>;
    /// Every installed package.
    async fn inventory(&self, target: Arc<dyn Transport>) -> Result<Vec<Installed>, PluginError>;
    /// Packages with a newer candidate, carrying the candidate version.
    async fn upgradable(&self, target: Arc<dyn Transport>) -> Result<Vec<Installed>, PluginError>;
    /// Version order for each pair, in one call; a bad version fails only its own pair.
    async fn compare_versions(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Result<Ordering, String>>, PluginError>;
    /// What installing exactly `changes` would do (read-only simulation).
    async fn plan_apply(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<Transaction, PluginError>;
    /// How `changes` would be undone (reads the host, changes nothing).
    async fn plan_rollback(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<Vec<RollbackStep>, PluginError>;
    /// Install exactly `changes`; the state read back is in the report.
    async fn apply(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<ApplyReport, PluginError>;
    /// Carry out rollback `steps`.
    async fn rollback(
        &self,
        target: Arc<dyn Transport>,
        steps: &[RollbackStep],
    ) -> Result<ApplyReport, PluginError>;
    /// Read back, per change, what the package database holds now (read-only).
    async fn verify(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<ApplyReport, PluginError>;
}

#[async_trait]
impl OsPlugin for LoadedPlugin {
    fn name(&self) -> &str {
        LoadedPlugin::name(self)
    }
    fn manifest(&self) -> &Manifest {
        LoadedPlugin::manifest(self)
    }
    fn digest(&self) -> &str {
        LoadedPlugin::digest(self)
    }
    fn granted(&self) -> &[ExecGrant] {
        LoadedPlugin::granted(self)
    }
    fn limits(&self) -> &Limits {
        LoadedPlugin::limits(self)
    }
    async fn facts(&self, target: Arc<dyn Transport>) -> Result<OsFacts, PluginError> {
        LoadedPlugin::facts(self, target).await
    }
    async fn inventory(&self, target: Arc<dyn Transport>) -> Result<Vec<Installed>, PluginError> {
        LoadedPlugin::inventory(self, target).await
    }
    async fn upgradable(&self, target: Arc<dyn Transport>) -> Result<Vec<Installed>, PluginError> {
        LoadedPlugin::upgradable(self, target).await
    }
    async fn compare_versions(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Result<Ordering, String>>, PluginError> {
        LoadedPlugin::compare_versions(self, pairs).await
    }
    async fn plan_apply(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<Transaction, PluginError> {
        LoadedPlugin::plan_apply(self, target, changes).await
    }
    async fn plan_rollback(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<Vec<RollbackStep>, PluginError> {
        LoadedPlugin::plan_rollback(self, target, changes).await
    }
    async fn apply(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<ApplyReport, PluginError> {
        LoadedPlugin::apply(self, target, changes).await
    }
    async fn rollback(
        &self,
        target: Arc<dyn Transport>,
        steps: &[RollbackStep],
    ) -> Result<ApplyReport, PluginError> {
        LoadedPlugin::rollback(self, target, steps).await
    }
    async fn verify(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<ApplyReport, PluginError> {
        LoadedPlugin::verify(self, target, changes).await
    }
}
