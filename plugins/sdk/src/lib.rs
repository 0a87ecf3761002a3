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
    ApplyReport, Change, CommandFailure, EnvGrant, ExecGrant, OsFacts, PackageOutcome,
    PackageTable, Pin, PluginError, PluginManifest as Manifest, RollbackStep, Transaction,
};
/// The host's own grant matcher (see [`decide`]) and its argument classes (`<package>`,
/// `<version>`), for validating input exactly as the host will check it.
pub use patchwave_grant::{Class, GrantDecision};

mod table;
pub use table::{Installed, PackageTableBuilder, TextSpans};
mod target;
pub use target::{run_ok, stdout_text, Host, Wasm};
#[cfg(feature = "scripted")]
pub mod scripted;

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

/// An [`ExecGrant`] for `program` with these argument patterns and literal env values
/// (`each`: none, so a final `**` takes any arguments; see [`grant_each`]).
pub fn grant(program: &str, args: &[&str], env: &[(&str, &str)]) -> ExecGrant {
    ExecGrant {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        each: None,
        env: env
            .iter()
            .map(|(name, value)| EnvGrant {
                name: name.to_string(),
                value: value.to_string(),
                secret: false,
            })
            .collect(),
    }
}

/// An [`ExecGrant`] whose final `**` takes only arguments matching `each` (for example
/// `<package>=<version>`).
pub fn grant_each(program: &str, args: &[&str], each: &str, env: &[(&str, &str)]) -> ExecGrant {
    ExecGrant {
        each: Some(each.to_string()),
        ..grant(program, args, env)
    }
}

/// The matcher's form of a manifest grant.
pub fn rules(grant: &ExecGrant) -> patchwave_grant::ExecGrant {
    patchwave_grant::ExecGrant {
        program: grant.program.clone(),
        args: grant.args.clone(),
        each: grant.each.clone(),
        env: grant
            .env
            .iter()
            .map(|e| patchwave_grant::EnvGrant {
                name: e.name.clone(),
                value: e.value.clone(),
                secret: e.secret,
            })
            .collect(),
    }
}

/// What the host runtime decides for `cmd`, given these declarations and operator grants:
/// the same function the runtime calls, for a plugin's own tests.
pub fn decide(declared: &[ExecGrant], granted: &[ExecGrant], cmd: &Command) -> GrantDecision {
    let declared: Vec<_> = declared.iter().map(rules).collect();
    let granted: Vec<_> = granted.iter().map(rules).collect();
    let req = patchwave_grant::ExecRequest {
        program: cmd.program.clone(),
        args: cmd.args.clone(),
        env: cmd.env.clone(),
    };
    GrantDecision::decide(&declared, &granted, &req)
}

/// Whether a manifest declaring `grants`, granted all of them, may run `cmd`.
pub fn covered(grants: &[ExecGrant], cmd: &Command) -> bool {
    decide(grants, grants, cmd).allowed()
}
