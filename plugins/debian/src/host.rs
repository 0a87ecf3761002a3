//! The plugin's only reach into the world: running commands on the target host.
//!
//! Everything that executes goes through the SDK's [`Host`] trait, so the flows in this
//! crate can be tested natively against the SDK's scripted host; [`Wasm`] is the real one.

pub use patchwave_plugin_sdk::{run_ok, stdout_text, Host, Wasm};

/// A scripted host for native tests: answers commands in order and checks each one
/// against this plugin's manifest with the host runtime's own matcher.
#[cfg(test)]
pub mod fake {
    pub use patchwave_plugin_sdk::scripted::{out, Scripted};

    /// A scripted host allowing exactly what this plugin's manifest declares.
    pub fn scripted() -> Scripted {
        Scripted::new(crate::commands::grants())
    }
}
