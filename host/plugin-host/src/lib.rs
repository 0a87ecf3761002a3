//! The sandboxed plugin runtime: the only crate of patchwave that knows wasmtime.
//!
//! * One [`PluginRuntime`] per process: one `Engine`, one epoch ticker, one `Linker`, one
//!   on-disk cache of precompiled components keyed by wasm digest and engine settings.
//! * A [`LoadedPlugin`] holds an `InstancePre`; every call gets a fresh `Store` with an
//!   epoch deadline and a memory limit, so a trap only ever costs that one call.
//! * Plugins have no ambient authority: no preopened directories, no environment, no
//!   sockets; stdout/stderr go to bounded buffers and then to `tracing`. Their only reach is
//!   `host.exec`, checked against the plugin's declared and the operator's granted
//!   [`ExecGrant`](patchwave_core::ExecGrant)s *first*, then written to the [`AuditLog`].

mod audit;
mod bindings;
mod cache;
mod contract;
mod limits;
mod plugin;
mod runtime;
mod state;

pub use audit::{
    AnchorError, AuditAnchor, AuditLog, AuditLogError, AuditStats, Reanchored, RunningCommand,
};
pub use cache::CacheError;
pub use contract::OsPlugin;
pub use limits::Limits;
pub use plugin::{LoadedPlugin, PluginGrants};
pub use runtime::{LoadError, PluginRuntime, RuntimeOptions};
