//! `patchwave audit`.

use std::path::{Path, PathBuf};

use patchwave_core::audit::Verified;
use patchwave_plugin_host::AuditLog;

use crate::exit::{Failure, USAGE};
use crate::setup::Context;
use crate::term::outln;

/// Audit subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check the audit log byte for byte: its hash chain, and (for the configured log) that
    /// it still reaches the head the store recorded. Names the first broken line.
    Verify {
        /// The log to check (default: the configured one).
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Accept the configured log as it is when its anchor in the store refuses it (cut or
    /// rewritten: after restoring it from a backup, or rotating it), and record that in it.
    Reanchor {
        /// Who accepts it.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// Run an audit subcommand.
pub async fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Verify { log } => {
            let configured = &ctx.config.audit_log;
            let path = log.unwrap_or_else(|| configured.clone());
            let compared = same_file(&path, configured);
            // The anchor before the file: every line it names was on disk before it was
            // recorded.
            let anchor = match compared {
                true => ctx
                    .store()
                    .await?
                    .audit_anchor()
                    .await
                    .map_err(Failure::op)?,
                false => None,
            };
            let verified = AuditLog::verify(&path, anchor.as_ref()).map_err(Failure::from)?;
            let text = report(&path, &verified, compared.then_some(configured));
            outln!("{}", text.trim_end_matches('\n'))
        }
        Command::Reanchor { by, reason } => {
            if by.trim().is_empty() || reason.trim().is_empty() {
                return Err(Failure::new(
                    USAGE,
                    "`--by` and `--reason` must say who accepts the log and why",
                ));
            }
            let store = ctx.store().await?;
            let path = &ctx.config.audit_log;
            let done = patchwave_engine::audit::reanchor(path, store, &by, &reason)
                .await
                .map_err(Failure::from)?;
            let before = done
                .before
                .map_or_else(|| "nothing".to_string(), |h| h.to_string());
            outln!(
                "{}: re-anchored at {} (the store had recorded {before})",
                path.display(),
                done.head
            )
        }
    }
}

/// Whether `a` and `b` name the same file (or, when either is missing, the same path).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What `audit verify` prints for a log that verified; `configured` is the configured log
/// when it was compared with the store's anchor.
fn report(path: &Path, v: &Verified, configured: Option<&PathBuf>) -> String {
    let mut out = format!("{}: chain intact, {} lines\n", path.display(), v.lines());
    match (&v.anchor, configured) {
        (Some(anchor), _) => {
            out.push_str(&format!("anchored: the store recorded {anchor}"));
            match v.lines() - anchor.seq {
                0 => out.push('\n'),
                n => out.push_str(&format!(
                    "; {n} line(s) after it not anchored yet (a runner at work, or one that \
                     stopped before recording them)\n"
                )),
            }
        }
        (None, Some(_)) => out.push_str(
            "not anchored: the store has no record of this log's head, so a cut tail or a \
             rewritten log cannot be noticed\n",
        ),
        (None, None) => {
            out.push_str("not compared with the store's anchor: not the configured log\n")
        }
    }
    if v.legacy > 0 {
        out.push_str(&format!(
            "lines 1-{} were written before lines had sequence numbers\n",
            v.legacy
        ));
    }
    for notice in &v.notices {
        out.push_str(&format!("notice: {notice}\n"));
    }
    if let Some(torn) = &v.torn {
        out.push_str(&format!(
            "notice: the last line ({}) is torn: {} bytes that are not a whole line, as a \
             crash while writing leaves them; the next command that opens the log moves them \
             to a quarantine file and records that\n",
            torn.line, torn.bytes
        ));
    }
    out
}
