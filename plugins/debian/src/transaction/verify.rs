//! `verify`: did a change really take? Read-only.
//!
//! The inventory lists a package in any on-disk state (unpacked, half-configured, ...)
//! because such a version can carry vulnerabilities, so "the version is in the inventory"
//! does not mean "the change was applied". `verify` answers with the outcome `apply`
//! reports after it ran: ok only when dpkg has the package fully installed and configured
//! at the target version.
//!
//! An apply whose runner was killed can leave apt running on the host. Reading the
//! database then would catch it half-way, so `verify` first waits for dpkg's lock
//! ([`commands::APT_WAIT_IDLE`]). That command's exit status is otherwise ignored: it
//! also exits 100 on broken dependencies, and the database read that follows is what
//! reports those, package by package.

use patchwave_plugin_sdk::{
    output_tail, ApplyReport, Change, Command, CommandFailure, Level, Output, PluginError,
};

use super::{installed_outcome, read_back, validate_changes, Report};
use crate::commands;
use crate::dpkg::parse_records;
use crate::host::Host;

/// How much of apt's output a lock-timeout error carries.
const LOCK_ERROR_TAIL: usize = 1024;

/// Report, per change, whether its package is installed and fully configured at `to`
/// now, after waiting for any apt or dpkg run in progress. Changes nothing.
pub fn verify(host: &mut impl Host, changes: &[Change]) -> Result<ApplyReport, PluginError> {
    let targets = validate_changes(changes)?;
    let mut report = Report::default();
    if targets.is_empty() {
        return Ok(report.finish());
    }
    wait_for_package_manager(host, &mut report)?;
    let specs: Vec<&str> = targets.iter().map(|t| t.pkg.spec).collect();
    let text = read_back(host, &specs)?;
    let recs = parse_records(&text)?;
    for t in &targets {
        report.outcomes.push(installed_outcome(&t.pkg, t.to, &recs));
    }
    Ok(report.finish())
}

/// Wait until no apt or dpkg run holds dpkg's lock. Only a wait that ran out is an
/// error; any other failure of the check is noted and the database is read anyway.
fn wait_for_package_manager(host: &mut impl Host, report: &mut Report) -> Result<(), PluginError> {
    let cmd = commands::APT_WAIT_IDLE.command::<&str>(&[]);
    let out = host.exec(&cmd)?;
    if let Some(failure) = lock_timeout(&cmd, &out) {
        return Err(PluginError::CommandFailed(failure));
    }
    report.ran(&cmd, &out, false);
    if out.status != 0 {
        host.log(
            Level::Warn,
            &format!(
                "{} check exited with status {}; reading the package states anyway",
                cmd.program, out.status
            ),
        );
    }
    Ok(())
}

/// The failure to report when `out` says apt gave up waiting for dpkg's lock, else
/// `None`.
///
/// While it waits, apt prints `Waiting for cache lock: Could not get lock ...` lines even
/// when it gets the lock in the end, so only its closing error lines (`E: `) count:
/// "Unable to acquire the dpkg frontend lock (...), is another process using it?",
/// "Unable to lock the administration directory (...), is another process using it?",
/// or, from an apt that does not wait, "Could not get lock ...". "are you root?" is not a
/// busy package manager and is not matched.
fn lock_timeout(cmd: &Command, out: &Output) -> Option<CommandFailure> {
    if out.status == 0 {
        return None;
    }
    let held = |line: &str| {
        line.strip_prefix("E: ").is_some_and(|error| {
            error.ends_with("is another process using it?")
                || error.starts_with("Could not get lock")
        })
    };
    let said = [&out.stderr, &out.stdout];
    if !said
        .iter()
        .any(|bytes| String::from_utf8_lossy(bytes).lines().any(held))
    {
        return None;
    }
    Some(CommandFailure {
        program: cmd.program.clone(),
        status: out.status,
        output: format!(
            "the package manager stayed busy for {} s: another apt or dpkg run held its \
             lock the whole time; apt-get said:\n{}",
            commands::LOCK_WAIT_S,
            output_tail(out, LOCK_ERROR_TAIL)
        ),
    })
}
