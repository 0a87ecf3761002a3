//! How patchwave reaches a host: run one program with its arguments there, and read back
//! its status and output.
//!
//! Commands are never shell strings. Each transport decides how to carry program + argv
//! to the target (the local transport spawns it directly; remote transports quote each
//! argument) so that what the grant check matched is exactly what runs.

use std::time::Duration;

use async_trait::async_trait;
use patchwave_core::HostId;

pub mod known_hosts;
pub mod local;
pub mod process;
mod quote;
pub mod sim;
pub mod ssh;

pub use known_hosts::{AddMode, AddOutcome, HostKeyStatus, KnownHosts, KnownHostsError};
pub use local::LocalTransport;
pub use sim::{SimImage, SimKind, SimStats, SimTransport};
pub use ssh::{
    fetch_host_key, ClientKey, KeyError, KeySource, PresentedHostKey, PublicKey, SshContext,
    SshSettings, SshStats, SshTarget, SshTransport,
};

/// A program to run on the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Program name or path.
    pub program: String,
    /// Arguments, each passed as one argv element.
    pub args: Vec<String>,
    /// Environment variables to set for the program.
    pub env: Vec<(String, String)>,
    /// Bytes fed to standard input.
    pub stdin: Option<Vec<u8>>,
    /// Give up (and report [`TransportError::Timeout`]) after this long.
    pub timeout: Duration,
}

impl Command {
    /// A command with no environment, no stdin and the given timeout.
    pub fn new(program: &str, args: &[&str], timeout: Duration) -> Self {
        Command {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            stdin: None,
            timeout,
        }
    }
}

/// What a finished command left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Exit status; a command killed by signal N reports 128 + N.
    pub status: i32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// Why a command could not be run or finished. Each variant names the host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No route, no answer, connection reset: the host is not reachable now.
    #[error("{host}: unreachable: {detail}")]
    Unreachable {
        /// Host id.
        host: HostId,
        /// Details.
        detail: String,
    },
    /// The host answered but refused the connection.
    #[error("{host}: connection refused: {detail}")]
    Refused {
        /// Host id.
        host: HostId,
        /// Details.
        detail: String,
    },
    /// Authentication failed.
    #[error("{host}: authentication failed for user `{user}`: {detail}")]
    AuthFailed {
        /// Host id.
        host: HostId,
        /// User name.
        user: String,
        /// Details.
        detail: String,
    },
    /// The host presented a key nobody enrolled.
    #[error("{host}: unknown host key {fingerprint}; refusing to connect (enrol it with `patchwave hosts trust {host}`)")]
    UnknownHostKey {
        /// Host id.
        host: HostId,
        /// SHA-256 fingerprint presented.
        fingerprint: String,
    },
    /// The host presented a different key from the enrolled one.
    #[error(
        "{host}: HOST KEY MISMATCH: expected {expected}, got {presented}; refusing to connect"
    )]
    HostKeyMismatch {
        /// Host id.
        host: HostId,
        /// Enrolled fingerprint.
        expected: String,
        /// Presented fingerprint.
        presented: String,
    },
    /// Connecting or the command took too long.
    #[error("{host}: timed out after {after:?} {during}")]
    Timeout {
        /// Host id.
        host: HostId,
        /// The limit that ran out.
        after: Duration,
        /// What was going on.
        during: String,
    },
    /// The connection dropped while a command was running: its outcome is unknown.
    #[error("{host}: connection lost while running `{program}`; outcome unknown: {detail}")]
    Disconnected {
        /// Host id.
        host: HostId,
        /// The program in flight.
        program: String,
        /// Details.
        detail: String,
    },
    /// The command printed more than the transport accepts.
    #[error("{host}: `{program}` printed more than {limit} bytes; stopped")]
    OutputTooLarge {
        /// Host id.
        host: HostId,
        /// Program.
        program: String,
        /// The limit.
        limit: usize,
    },
    /// The program could not be started on the target.
    #[error("{host}: could not start `{program}`: {detail}")]
    Spawn {
        /// Host id.
        host: HostId,
        /// Program.
        program: String,
        /// Details.
        detail: String,
    },
    /// Configuration problem (bad key file, bad address, ...).
    #[error("{host}: {detail}")]
    Config {
        /// Host id.
        host: HostId,
        /// Details.
        detail: String,
    },
}

impl TransportError {
    /// True when the host itself could not be reached (as opposed to a command problem).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TransportError::Unreachable { .. }
                | TransportError::Refused { .. }
                | TransportError::Timeout { .. }
                | TransportError::Disconnected { .. }
        )
    }
}

/// A way to run commands on one host.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The host this transport reaches.
    fn host(&self) -> &HostId;

    /// Run one command to completion.
    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError>;
}

/// The time limit of a command whose own [`Command::timeout`] is zero.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Default cap on what one command may print (stdout and stderr together).
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024 * 1024;
