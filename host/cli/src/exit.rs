//! Failures with the exit code they map to.

use std::fmt::Display;

/// Operational failure.
pub const OPERATIONAL: u8 = 1;
/// Usage or configuration error.
pub const USAGE: u8 = 2;
/// Some hosts failed.
pub const PARTIAL: u8 = 3;
/// Audit log broken, cut or rewritten.
pub const AUDIT_BROKEN: u8 = 4;
/// Not found.
pub const NOT_FOUND: u8 = 5;
/// stdout was closed before the output was written (`| head`): 128 + SIGPIPE, what a
/// shell reports for a program that a broken pipe killed.
pub const BROKEN_PIPE: u8 = 141;

/// An error on its way out of `main`.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What to print (may be several lines); empty when the command already printed it.
    pub message: String,
}

impl Failure {
    /// A failure with a message.
    pub fn new(code: u8, message: impl Display) -> Self {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    /// A failure whose details were already printed.
    pub fn quiet(code: u8) -> Self {
        Failure {
            code,
            message: String::new(),
        }
    }

    /// An operational failure.
    pub fn op(message: impl Display) -> Self {
        Failure::new(OPERATIONAL, message)
    }

    /// Print to stderr, controls escaped (messages often quote what a host printed).
    pub fn print(&self) {
        if !self.message.is_empty() {
            crate::term::stderr(&format!("error: {}", self.message.trim_end()));
        }
    }
}
