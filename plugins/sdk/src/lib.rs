//! Guest-side SDK for patchwave OS plugins.
//!
//! This crate owns the only `wit_bindgen::generate!` for the `patchwave:plugin` contract.
//! A plugin implements [`Plugin`] and calls [`export_plugin!`] once:
//!
//! ```ignore
//! struct Debian;
//! impl patchwave_plugin_sdk::Plugin for Debian { /* ... */ }
//! patchwave_plugin_sdk::export_plugin!(Debian);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "os-plugin",
        pub_export_macro: true,
        export_macro_name: "__export_os_plugin",
        default_bindings_module: "patchwave_plugin_sdk::bindings",
    });
}

pub use bindings::exports::patchwave::plugin::os::Guest as Plugin;
pub use bindings::patchwave::plugin::host::{self, Command, ExecError, Level, Output};
pub use bindings::patchwave::plugin::types::Ordering;
pub use bindings::patchwave::plugin::types::{
    ApplyReport, Change, CommandFailure, ExecGrant, OsFacts, PackageOutcome, PackageTable, Pin,
    PluginError, PluginManifest as Manifest, RollbackStep, Transaction,
};

mod table;
pub use table::{Installed, PackageTableBuilder, TextSpans};

/// Export a type implementing [`Plugin`] as this component's `os` interface.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ident) => {
        $crate::bindings::__export_os_plugin!($ty with_types_in $crate::bindings);
    };
}

/// Build a command with no environment, no stdin and the host's default timeout.
pub fn command(program: &str, args: &[&str]) -> Command {
    Command {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        stdin: None,
        timeout_ms: 0,
    }
}

/// Run a command on the target host; a denied or failed exec becomes a [`PluginError`].
pub fn exec(cmd: &Command) -> Result<Output, PluginError> {
    host::exec(cmd).map_err(|e| match e {
        ExecError::Denied(m) => PluginError::Denied(m),
        ExecError::Failed(m) => PluginError::Exec(m),
    })
}

/// Run a command and require exit status 0; returns stdout as UTF-8 (lossy).
pub fn exec_ok(cmd: &Command) -> Result<String, PluginError> {
    let out = exec(cmd)?;
    if out.status != 0 {
        return Err(PluginError::CommandFailed(failure(cmd, &out)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Describe a failed command: program, status and the tail of its output.
pub fn failure(cmd: &Command, out: &Output) -> CommandFailure {
    CommandFailure {
        program: cmd.program.clone(),
        status: out.status,
        output: output_tail(out, 4096),
    }
}

/// The last `max` bytes of stdout followed by stderr, as text.
pub fn output_tail(out: &Output, max: usize) -> String {
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.stderr.is_empty() {
        if !all.is_empty() && !all.ends_with('\n') {
            all.push('\n');
        }
        all.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    if all.len() <= max {
        return all;
    }
    let mut start = all.len() - max;
    while !all.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &all[start..])
}

/// Log through the host (attributed to this plugin and target host).
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Shorthand for an [`ExecGrant`] literal.
pub fn grant(program: &str, args: &[&str], env: &[&str]) -> ExecGrant {
    ExecGrant {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env.iter().map(|a| a.to_string()).collect(),
    }
}
