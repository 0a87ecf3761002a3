//! `patchwave audit`.

use std::path::PathBuf;

use patchwave_plugin_host::{AuditLog, AuditLogError};

use crate::exit::{Failure, AUDIT_BROKEN};
use crate::setup::Context;
use crate::term::outln;

/// Audit subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check the hash chain of the audit log; names the first broken line.
    Verify {
        /// The log to check (default: the configured one).
        #[arg(long)]
        log: Option<PathBuf>,
    },
}

/// Run an audit subcommand.
pub async fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Verify { log } => {
            let path = log.unwrap_or_else(|| ctx.config.audit_log.clone());
            match AuditLog::verify(&path) {
                Ok(lines) => {
                    outln!("{}: chain intact, {lines} lines", path.display())?;
                    Ok(())
                }
                Err(e @ AuditLogError::Broken { .. }) => Err(Failure::new(AUDIT_BROKEN, e)),
                Err(e) => Err(Failure::op(e)),
            }
        }
    }
}
