//! patchwave's functional core: domain types and pure decisions.
//!
//! No IO, no async runtime, no wasmtime. Everything here is a value or a function of values,
//! so it is cheap to test exhaustively.

pub mod audit;
pub mod change;
pub mod class;
pub mod duration;
pub mod fleet;
pub mod grant;
pub mod id;
pub mod inventory;
pub mod plugin;
pub mod text;

pub use class::{PatchClass, UnknownClass};
pub use duration::{DurationError, HumanDuration};
pub use fleet::{Environment, HostId};
pub use grant::{EnvGrant, ExecGrant, ExecRequest, GrantDecision};
pub use id::{check_id, IdError};
pub use inventory::{Freshness, HostSummary, Installed, OsFacts, ScanStatus};
pub use plugin::{
    ApplyReport, Change, Manifest, PackageOutcome, Pin, PluginError, RollbackStep, Transaction,
};
