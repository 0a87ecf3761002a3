//! A scripted host for a plugin's native unit tests (feature `scripted`).
//!
//! It answers commands in order and decides each one with the host runtime's own grant
//! matcher against the grants it was given (normally the plugin's whole manifest), so a
//! test fails the moment the plugin builds a command its manifest does not cover.

use std::collections::VecDeque;

use crate::{decide, Command, ExecGrant, Host, Level, Output, PluginError};

/// One expected command (by its program and arguments, space-joined) and its answer.
pub type Step = (String, Result<Output, PluginError>);

/// A host that expects a fixed sequence of commands.
#[derive(Debug)]
pub struct Scripted {
    /// The grants every command is checked against, as declared and as granted.
    pub grants: Vec<ExecGrant>,
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
    /// A host that allows exactly what `grants` cover (pass the manifest's `wants`).
    pub fn new(grants: Vec<ExecGrant>) -> Self {
        Scripted {
            grants,
            script: VecDeque::new(),
            ran: Vec::new(),
            logs: Vec::new(),
        }
    }

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
        let decision = decide(&self.grants, &self.grants, cmd);
        assert!(decision.allowed(), "not granted ({decision:?}): {cmd:?}");
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
