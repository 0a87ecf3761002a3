//! Failures with the exit code they map to, and the one place where an error type is
//! given its exit code (README, "Exit codes").

use std::fmt::Display;

use patchwave_core::audit::LogFault;
use patchwave_engine::planning::PlanningError;
use patchwave_engine::rollout::RolloutError;
use patchwave_engine::AppError;
use patchwave_plugin_host::AuditLogError;
use patchwave_store::StoreError;

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

/// The exit code an error stands for. Each error type the commands pass up is mapped here
/// and only here, so the same error exits the same way from every command.
pub trait ExitCode: Display {
    /// Its exit code.
    fn exit_code(&self) -> u8;
}

impl ExitCode for RolloutError {
    fn exit_code(&self) -> u8 {
        match self {
            RolloutError::NotFound(_) => NOT_FOUND,
            RolloutError::InvalidId(_) => USAGE,
            RolloutError::Store(e) => e.exit_code(),
            RolloutError::Audit(_) | RolloutError::Corrupt { .. } | RolloutError::NoProgress(_) => {
                OPERATIONAL
            }
        }
    }
}

impl ExitCode for PlanningError {
    fn exit_code(&self) -> u8 {
        match self {
            PlanningError::Invalid(_) | PlanningError::Resolution(_) => USAGE,
            PlanningError::NothingToPin(_) => NOT_FOUND,
            PlanningError::Store(e) => e.exit_code(),
            PlanningError::Plugin(_) => OPERATIONAL,
        }
    }
}

impl ExitCode for StoreError {
    fn exit_code(&self) -> u8 {
        OPERATIONAL
    }
}

impl ExitCode for AuditLogError {
    fn exit_code(&self) -> u8 {
        match self {
            AuditLogError::Broken { .. } => AUDIT_BROKEN,
            _ => OPERATIONAL,
        }
    }
}

impl ExitCode for AppError {
    fn exit_code(&self) -> u8 {
        match self {
            AppError::Transport(_) | AppError::Health(_) | AppError::Snapshot(_) => USAGE,
            AppError::Audit(e) => e.exit_code(),
            AppError::Store(e) => e.exit_code(),
            AppError::StateDir(_) | AppError::Runtime(_) | AppError::Plugins(_) => OPERATIONAL,
        }
    }
}

/// An audit log failure keeps its hint.
impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        match e {
            AppError::Audit(e) => Failure::from(e),
            e => Failure::new(e.exit_code(), e),
        }
    }
}

macro_rules! failure_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                Failure::new(e.exit_code(), e)
            }
        }
    )*};
}
failure_from!(RolloutError, PlanningError, StoreError);

/// A broken log (exit 4) comes with what to do about it.
impl From<AuditLogError> for Failure {
    fn from(e: AuditLogError) -> Failure {
        let hint = match &e {
            AuditLogError::Broken {
                source: LogFault::Cut { .. } | LogFault::Rewritten { .. },
                ..
            } => {
                "`patchwave audit verify` shows the log; when it is as it should be (restored \
                 from a backup, rotated), `patchwave audit reanchor --by WHO --reason WHY` \
                 accepts it and records that in it"
            }
            AuditLogError::Broken {
                source: LogFault::Chain(_),
                ..
            } => "`patchwave audit verify` names every problem it finds first",
            _ => return Failure::new(e.exit_code(), e),
        };
        Failure::new(e.exit_code(), format!("{e}\n{hint}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's list of exit codes is the set this module defines.
    #[test]
    fn the_documented_exit_codes_are_the_defined_ones() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("Exit codes:")
            .expect("README lists the exit codes");
        let list = &readme[start..start + readme[start..].find("\n\n").unwrap()];
        let mut documented: Vec<u8> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|w| w.parse().ok())
            .collect();
        documented.sort_unstable();
        assert_eq!(
            documented,
            [
                0,
                OPERATIONAL,
                USAGE,
                PARTIAL,
                AUDIT_BROKEN,
                NOT_FOUND,
                BROKEN_PIPE
            ],
            "{list}"
        );
    }

    #[test]
    fn errors_exit_by_their_type() {
        assert_eq!(
            Failure::from(RolloutError::NotFound("r".into())).code,
            NOT_FOUND
        );
        assert_eq!(
            Failure::from(PlanningError::NothingToPin("n".into())).code,
            NOT_FOUND
        );
        assert_eq!(
            Failure::from(PlanningError::Invalid("i".into())).code,
            USAGE
        );
        assert_eq!(
            Failure::from(PlanningError::Plugin("p".into())).code,
            OPERATIONAL
        );
        assert_eq!(
            Failure::from(RolloutError::Store(StoreError::Corrupt {
                what: "x".into()
            }))
            .code,
            OPERATIONAL
        );
    }
}
