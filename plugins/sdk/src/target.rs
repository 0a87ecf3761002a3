//! A plugin's only reach into the world, behind a trait: running commands on the target
//! host and logging.
//!
//! Route every exec through [`Host`] so a plugin's flows can be tested natively against
//! [`scripted::Scripted`](crate::scripted) (feature `scripted`); [`Wasm`] is the real one.

use crate::{Command, Level, Output, PluginError};

/// Runs commands on the target host and logs.
pub trait Host {
    /// Run a command; a denied or failed exec is an error, a non-zero exit is not.
    fn exec(&mut self, cmd: &Command) -> Result<Output, PluginError>;
    /// Log a line through the host.
    fn log(&mut self, level: Level, message: &str);
}

/// The host runtime, through the component's `host` import.
#[derive(Debug, Default)]
pub struct Wasm;

impl Host for Wasm {
    fn exec(&mut self, cmd: &Command) -> Result<Output, PluginError> {
        crate::exec(cmd)
    }

    fn log(&mut self, level: Level, message: &str) {
        crate::log(level, message);
    }
}

/// Run a command that must exit 0; returns its stdout as text.
pub fn run_ok(host: &mut impl Host, cmd: &Command) -> Result<String, PluginError> {
    let out = host.exec(cmd)?;
    if out.status != 0 {
        return Err(PluginError::CommandFailed(crate::failure(cmd, &out)));
    }
    Ok(stdout_text(out))
}

/// A command's stdout as text (invalid UTF-8 replaced, no copy when valid).
pub fn stdout_text(out: Output) -> String {
    match String::from_utf8(out.stdout) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
