//! The plugin contract as plain Rust values (the WIT types, without wasmtime).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::grant::ExecGrant;

/// Who a plugin is and what it asks to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Plugin name, e.g. `debian`.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// os-release ids it handles.
    pub os_ids: Vec<String>,
    /// OSV ecosystems whose versions it compares.
    pub ecosystems: Vec<String>,
    /// Programs it declares it will run.
    pub wants: Vec<ExecGrant>,
}

/// One package change to an exact version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Package name.
    pub name: String,
    /// Installed version before the change (`None` = not installed).
    pub from: Option<String>,
    /// Exact target version.
    pub to: String,
}

/// A hold at an exact version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Package name.
    pub name: String,
    /// Version held.
    pub version: String,
}

/// What an apply would do on a host, from the package manager's simulation: every package it
/// would install, upgrade or downgrade (dependencies included) and every package it would
/// remove.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Packages that would be installed or move to another version, each with its version now
    /// (`None` = not installed) and the exact version it would get.
    pub changes: Vec<Change>,
    /// Packages that would be removed, at the version installed now.
    pub removals: Vec<Pin>,
}

/// One step of a recorded rollback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum RollbackStep {
    /// Reinstall an older version.
    Downgrade(Change),
    /// Remove a package the deploy added.
    Uninstall {
        /// Package name.
        name: String,
    },
    /// Hold at a version.
    Hold(Pin),
    /// Release a hold.
    Unhold {
        /// Package name.
        name: String,
    },
    /// Restore a snapshot by id.
    RestoreSnapshot {
        /// Snapshot id.
        id: String,
    },
}

/// What happened to one package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageOutcome {
    /// Package name.
    pub name: String,
    /// Version aimed at.
    pub wanted: Option<String>,
    /// Version read back afterwards.
    pub found: Option<String>,
    /// Package database state afterwards (dpkg: `ii`, `iF`, ...).
    pub state: String,
    /// The step took.
    pub ok: bool,
}

/// Result of an apply or a rollback, with the state read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Package manager succeeded and every outcome is ok.
    pub ok: bool,
    /// Per package.
    pub outcomes: Vec<PackageOutcome>,
    /// Package manager exit status.
    pub status: i32,
    /// Tail of its output.
    pub output: String,
}

/// Everything that can go wrong calling a plugin, with enough identity to act on.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PluginError {
    /// The plugin does not handle this host or request.
    #[error("unsupported: {message}")]
    Unsupported {
        /// Why.
        message: String,
    },
    /// A command on the target failed.
    #[error("`{program}` exited with status {status}: {output}")]
    CommandFailed {
        /// Program that failed.
        program: String,
        /// Its exit status.
        status: i32,
        /// Tail of its output.
        output: String,
    },
    /// Output could not be parsed.
    #[error("could not parse command output: {message}")]
    Parse {
        /// Details.
        message: String,
    },
    /// An exec was refused by the grant check.
    #[error("exec denied: {message}")]
    Denied {
        /// What was refused.
        message: String,
    },
    /// The transport could not run a command (the host may be unreachable).
    #[error("exec failed: {message}")]
    Exec {
        /// Transport's words.
        message: String,
    },
    /// The caller's input was rejected by the plugin.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// Details.
        message: String,
    },
    /// The plugin ran past its time limit and was interrupted.
    #[error(
        "plugin `{plugin}` ran past its {limit_ms} ms deadline in `{function}` and was stopped"
    )]
    Deadline {
        /// Plugin name.
        plugin: String,
        /// Export being called.
        function: String,
        /// The deadline.
        limit_ms: u64,
    },
    /// The plugin tried to grow memory past its limit and was stopped.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit_bytes} bytes in `{function}`")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// Export being called.
        function: String,
        /// The limit.
        limit_bytes: u64,
    },
    /// The plugin trapped (panic, unreachable, bad memory access).
    #[error("plugin `{plugin}` crashed in `{function}`: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// Export being called.
        function: String,
        /// Panic message when the guest printed one, else the trap.
        message: String,
    },
    /// The plugin returned more than the host accepts.
    #[error("plugin `{plugin}` returned too much from `{function}`: {detail}")]
    ResultTooLarge {
        /// Plugin name.
        plugin: String,
        /// Export being called.
        function: String,
        /// What was over.
        detail: String,
    },
    /// The plugin returned a value that breaks the contract (e.g. a package table whose
    /// offsets are out of order).
    #[error("plugin `{plugin}` returned a malformed result from `{function}`: {detail}")]
    Malformed {
        /// Plugin name.
        plugin: String,
        /// Export being called.
        function: String,
        /// What was wrong.
        detail: String,
    },
    /// The runtime itself failed (instantiation, ...).
    #[error("plugin runtime: {message}")]
    Runtime {
        /// Details.
        message: String,
    },
}

impl PluginError {
    /// True when the error means the target host could not be reached, as opposed to a
    /// plugin or package problem.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PluginError::Exec { .. })
    }
}
