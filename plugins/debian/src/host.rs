//! The plugin's only reach into the world: running commands on the target host.
//!
//! Everything that executes goes through [`Host`], so the flows in this crate can be
//! tested natively against a scripted host; [`Wasm`] is the real one.

use patchwave_plugin_sdk::{Command, Level, Output, PluginError};

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
        patchwave_plugin_sdk::exec(cmd)
    }

    fn log(&mut self, level: Level, message: &str) {
        patchwave_plugin_sdk::log(level, message);
    }
}

/// Run a command that must exit 0; returns its stdout as text.
pub fn run_ok(host: &mut impl Host, cmd: &Command) -> Result<String, PluginError> {
    let out = host.exec(cmd)?;
    if out.status != 0 {
        return Err(PluginError::CommandFailed(patchwave_plugin_sdk::failure(
            cmd, &out,
        )));
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

/// A scripted host for native tests: answers commands in order and checks each one
/// against the manifest's grants, as the real host would.
#[cfg(test)]
pub mod fake {
    use std::collections::VecDeque;

    use patchwave_plugin_sdk::{Command, Level, Output, PluginError};

    use super::Host;
    use crate::commands::{grants, matching::covered};

    /// One expected command (by its program and arguments, space-joined) and its answer.
    pub type Step = (String, Result<Output, PluginError>);

    /// A host that expects a fixed sequence of commands.
    #[derive(Debug, Default)]
    pub struct Scripted {
        /// What is still expected.
        pub script: VecDeque<Step>,
        /// Every command run, space-joined.
        pub ran: Vec<String>,
        /// Every log line.
        pub logs: Vec<(Level, String)>,
    }

    /// An output with this status and stdout.
    pub fn out(status: i32, stdout: &str) -> Result<Output, PluginError> {
        Ok(Output {
            status,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        })
    }

    impl Scripted {
        /// Expect `line` (program and arguments joined by spaces) next, answering `answer`.
        pub fn expect(mut self, line: &str, answer: Result<Output, PluginError>) -> Self {
            self.script.push_back((line.to_string(), answer));
            self
        }

        /// Assert every expected command ran.
        pub fn done(&self) {
            assert!(self.script.is_empty(), "not run: {:?}", self.script);
        }
    }

    impl Host for Scripted {
        fn exec(&mut self, cmd: &Command) -> Result<Output, PluginError> {
            assert!(covered(&grants(), cmd), "not granted: {cmd:?}");
            let line = std::iter::once(cmd.program.as_str())
                .chain(cmd.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            self.ran.push(line.clone());
            let Some((want, answer)) = self.script.pop_front() else {
                panic!("unexpected command: {line}");
            };
            assert_eq!(line, want, "unexpected command");
            answer
        }

        fn log(&mut self, level: Level, message: &str) {
            self.logs.push((level, message.to_string()));
        }
    }
}
