//! `apply`, `plan-rollback` and `rollback`: the calls that change packages; and
//! `verify` ([`verify()`]), which reads back what they left with the same outcomes.
//!
//! Whatever apt reports, the truth is read back from the dpkg database afterwards and
//! each package gets an outcome from that state. A plugin error is returned only when
//! nothing could be run or read (denied or failed exec, unreadable database); a failed
//! apt run is a report with `ok = false`.
//!
//! Semantics chosen here:
//!
//! * **plan-apply** is apt's own simulation of the apply (`apt-get -s install` with the
//!   apply's options): every package apt would install, upgrade or downgrade to satisfy the
//!   changes, dependencies included, and every package it would remove.
//! * **apply** installs exactly the changes it is given and nothing else: the same
//!   simulation runs first, and an apt run that would also install, upgrade, downgrade or
//!   remove a package not among the changes (or give one another version) is refused before
//!   it starts. A rollout therefore passes the whole transaction resolved at its canary, and a
//!   host whose resolution differs is refused, not patched differently. It never moves a held
//!   package (no `--allow-change-held-packages`): an operator's hold wins, and the report
//!   says apt refused. It never removes packages (`--no-remove`).
//! * **plan-rollback** plans from the package database, not from the caller's `from`,
//!   because it runs before the apply: each package goes back to the version installed
//!   now (a downgrade, then a hold at that version so the next patch run does not bring
//!   the bad version back), and a package not installed now is uninstalled. A pre-existing
//!   hold is thereby kept. Order: all downgrades, then all removals, then all holds.
//! * **rollback** runs each run of consecutive downgrades as one apt transaction (so
//!   dependent packages move together), likewise removals, and may move held packages.
//!   Each apt run is simulated first and refused if it would remove a package the
//!   rollback does not uninstall or install one it does not downgrade. A hold is only
//!   placed when the package is at the pinned version, so a failed downgrade never pins
//!   the bad version. If any package is half-way through an operation, `dpkg
//!   --configure -a` runs first (its failure does not stop the rollback: installing the
//!   previous version replaces a package whose configuration keeps failing).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use patchwave_plugin_sdk::{
    output_tail, ApplyReport, Change, Class, Command, Level, Output, PackageOutcome, Pin,
    PluginError, RollbackStep, Transaction,
};

use crate::apt::parse_simulation;
use crate::commands::{self, Spec};
use crate::dpkg::{parse_records, PackageRef, Record};
use crate::host::{stdout_text, Host};
use crate::version::{self, Version};

/// The report `status` when the plugin refused to start an apt run (safety check).
pub const REFUSED_STATUS: i32 = -1;
/// How much of each command's output goes into a report.
const SECTION_TAIL: usize = 4096;
/// The most output a report carries (the end is kept).
const OUTPUT_MAX: usize = 16 * 1024;

/// A version as it may be passed to apt in `name=version`.
fn check_version(v: &str) -> Result<(), PluginError> {
    if v.starts_with([' ', '\t']) || v.ends_with([' ', '\t']) {
        return Err(PluginError::InvalidInput(format!(
            "version {v:?} has surrounding blanks"
        )));
    }
    Version::parse(v).map_err(|e| PluginError::InvalidInput(version::bad_syntax(v, e)))?;
    // What the host checks the version of a `<package>=<version>` argument against.
    if !Class::Version.accepts(v, true) {
        return Err(PluginError::InvalidInput(format!(
            "version {v:?} does not start with a digit or ends in `+` or `-`, which apt reads \
             as \"install\" or \"remove\" at the end of an argument"
        )));
    }
    Ok(())
}

/// A validated change.
struct Target<'a> {
    pkg: PackageRef<'a>,
    to: &'a str,
}

fn validate_changes(changes: &[Change]) -> Result<Vec<Target<'_>>, PluginError> {
    let mut seen = HashSet::new();
    changes
        .iter()
        .map(|c| {
            let pkg = PackageRef::parse(&c.name)?;
            check_version(&c.to)?;
            if let Some(from) = &c.from {
                check_version(from)?;
            }
            if !seen.insert(pkg.spec) {
                return Err(PluginError::InvalidInput(format!(
                    "package {} appears more than once",
                    pkg.spec
                )));
            }
            Ok(Target { pkg, to: &c.to })
        })
        .collect()
}

/// Collects what happened into an [`ApplyReport`].
#[derive(Debug, Default)]
struct Report {
    status: i32,
    output: String,
    outcomes: Vec<PackageOutcome>,
}

impl Report {
    /// Record a command's run; `counts` = its exit status is the report's status.
    fn ran(&mut self, cmd: &Command, out: &Output, counts: bool) {
        if counts && self.status == 0 {
            self.status = out.status;
        }
        self.section(cmd);
        self.output.push_str(&output_tail(out, SECTION_TAIL));
        if !self.output.ends_with('\n') {
            self.output.push('\n');
        }
        self.output
            .push_str(&format!("[exit status {}]\n", out.status));
    }

    /// Record that the plugin did not run `cmd`, and why.
    fn refused(&mut self, cmd: &Command, why: &str) {
        if self.status == 0 {
            self.status = REFUSED_STATUS;
        }
        self.section(cmd);
        self.note(why);
    }

    fn section(&mut self, cmd: &Command) {
        self.output.push_str("$ ");
        self.output.push_str(&cmd.program);
        for arg in &cmd.args {
            self.output.push(' ');
            self.output.push_str(arg);
        }
        self.output.push('\n');
    }

    fn note(&mut self, text: &str) {
        self.output.push_str("patchwave: ");
        self.output.push_str(text);
        self.output.push('\n');
    }

    fn finish(self) -> ApplyReport {
        let mut output = self.output;
        if output.len() > OUTPUT_MAX {
            let mut start = output.len() - OUTPUT_MAX;
            while !output.is_char_boundary(start) {
                start += 1;
            }
            output = format!("...{}", output.get(start..).unwrap_or_default());
        }
        ApplyReport {
            ok: self.status == 0 && self.outcomes.iter().all(|o| o.ok),
            outcomes: self.outcomes,
            status: self.status,
            output,
        }
    }
}

/// Read the named packages back from the dpkg database (`dpkg-query` exits 1 when some
/// are unknown to it; they simply have no line).
fn read_back<S: AsRef<str>>(host: &mut impl Host, specs: &[S]) -> Result<String, PluginError> {
    let cmd = commands::DPKG_QUERY.command(specs);
    let out = host.exec(&cmd)?;
    match out.status {
        0 | 1 => Ok(stdout_text(out)),
        _ => Err(PluginError::CommandFailed(patchwave_plugin_sdk::failure(
            &cmd, &out,
        ))),
    }
}

fn outcome(
    pkg: &PackageRef<'_>,
    wanted: Option<&str>,
    state: (crate::dpkg::Status, Option<&str>),
    ok: bool,
) -> PackageOutcome {
    PackageOutcome {
        name: pkg.spec.to_string(),
        wanted: wanted.map(str::to_string),
        found: state.1.map(str::to_string),
        state: state.0.to_string(),
        ok,
    }
}

/// `pkg` should be fully installed at `wanted`.
fn installed_outcome(pkg: &PackageRef<'_>, wanted: &str, recs: &[Record<'_>]) -> PackageOutcome {
    let good = |r: &Record<'_>| r.status.is_installed_ok() && version::same(r.version, wanted);
    let (status, found) = pkg.state_in(recs, good);
    let ok = status.is_installed_ok() && found.is_some_and(|f| version::same(f, wanted));
    outcome(pkg, Some(wanted), (status, found), ok)
}

/// `pkg` should be gone (configuration files may remain).
fn removed_outcome(pkg: &PackageRef<'_>, recs: &[Record<'_>]) -> PackageOutcome {
    let (status, found) = pkg.state_in(recs, |_| false);
    outcome(pkg, None, (status, found), status.is_absent())
}

/// `pkg` should be held at `version`.
fn held_outcome(pkg: &PackageRef<'_>, version: &str, recs: &[Record<'_>]) -> PackageOutcome {
    let good = |r: &Record<'_>| r.status.is_held() && version::same(r.version, version);
    let (status, found) = pkg.state_in(recs, good);
    let ok =
        status.is_held() && status.is_present() && found.is_some_and(|f| version::same(f, version));
    outcome(pkg, None, (status, found), ok)
}

/// `pkg` should not be held.
fn unheld_outcome(pkg: &PackageRef<'_>, recs: &[Record<'_>]) -> PackageOutcome {
    let (status, found) = pkg.state_in(recs, |r| !r.status.is_held());
    outcome(pkg, None, (status, found), !status.is_held())
}

/// `name=version` for each target, as apt takes it.
fn install_args(targets: &[Target<'_>]) -> Vec<String> {
    targets
        .iter()
        .map(|t| format!("{}={}", t.pkg.spec, t.to))
        .collect()
}

/// What applying `changes` would do now: apt's simulation of the same install.
pub fn plan_apply(host: &mut impl Host, changes: &[Change]) -> Result<Transaction, PluginError> {
    let targets = validate_changes(changes)?;
    if targets.is_empty() {
        return Ok(Transaction {
            changes: Vec::new(),
            removals: Vec::new(),
        });
    }
    let cmd = commands::APT_SIMULATE_INSTALL.command(&install_args(&targets));
    let out = host.exec(&cmd)?;
    if out.status != 0 {
        return Err(PluginError::CommandFailed(patchwave_plugin_sdk::failure(
            &cmd, &out,
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let sim = parse_simulation(&text)?;
    let removals = sim
        .removals
        .iter()
        .zip(&sim.removed_versions)
        .map(|(name, version)| match version {
            Some(v) => Ok(Pin {
                name: (*name).to_string(),
                version: (*v).to_string(),
            }),
            None => Err(PluginError::Parse(format!(
                "apt-get -s would remove {name} but printed no version for it"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Transaction {
        changes: sim
            .installs
            .iter()
            .map(|i| Change {
                name: i.spec.to_string(),
                from: i.old.map(str::to_string),
                to: i.new.to_string(),
            })
            .collect(),
        removals,
    })
}

/// Install exactly these versions (refusing an apt run that would touch anything else) and
/// report the state each package ends in.
pub fn apply(host: &mut impl Host, changes: &[Change]) -> Result<ApplyReport, PluginError> {
    let targets = validate_changes(changes)?;
    let mut report = Report::default();
    if targets.is_empty() {
        return Ok(report.finish());
    }
    let args = install_args(&targets);
    host.log(
        Level::Info,
        &format!("installing {} package version(s)", args.len()),
    );
    let may_install: HashMap<&str, &str> = targets.iter().map(|t| (t.pkg.name, t.to)).collect();
    let guard = Guard {
        may_install: &may_install,
        may_remove: &HashSet::new(),
    };
    guard.run(
        host,
        &mut report,
        &commands::APT_SIMULATE_INSTALL,
        &commands::APT_INSTALL,
        &args,
    )?;

    let specs: Vec<&str> = targets.iter().map(|t| t.pkg.spec).collect();
    let text = read_back(host, &specs).inspect_err(|e| lost_state(host, &report, e))?;
    let recs = parse_records(&text).inspect_err(|e| lost_state(host, &report, e))?;
    for t in &targets {
        report.outcomes.push(installed_outcome(&t.pkg, t.to, &recs));
    }
    Ok(report.finish())
}

/// apt ran but the state cannot be read back: keep apt's output in the log at least.
fn lost_state(host: &mut impl Host, report: &Report, err: &PluginError) {
    host.log(
        Level::Error,
        &format!(
            "package states could not be read back after apt ran ({err:?}); apt said:\n{}",
            report.output
        ),
    );
}

/// Plan the steps that undo `changes`, from the package database as it is now.
pub fn plan_rollback(
    host: &mut impl Host,
    changes: &[Change],
) -> Result<Vec<RollbackStep>, PluginError> {
    let targets = validate_changes(changes)?;
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let specs: Vec<&str> = targets.iter().map(|t| t.pkg.spec).collect();
    let text = read_back(host, &specs)?;
    let recs = parse_records(&text)?;

    let mut downgrades = Vec::new();
    let mut removals = Vec::new();
    let mut holds = Vec::new();
    for (t, change) in targets.iter().zip(changes) {
        let (status, current) = t.pkg.state_in(&recs, |_| true);
        let claimed = change.from.as_deref();
        let agrees = match (current, claimed) {
            (Some(a), Some(b)) => version::same(a, b),
            (None, None) => true,
            _ => false,
        };
        if !agrees {
            host.log(
                Level::Warn,
                &format!(
                    "{}: the change says it is installed at {}, dpkg says {}; planning from dpkg",
                    t.pkg.spec,
                    claimed.unwrap_or("(none)"),
                    current.unwrap_or("(none)"),
                ),
            );
        }
        match current {
            Some(v) if version::same(v, t.to) => {
                host.log(
                    Level::Debug,
                    &format!("{} is already at {v}: nothing to undo", t.pkg.spec),
                );
            }
            Some(v) => {
                if status.is_held() {
                    host.log(
                        Level::Info,
                        &format!("{} is held now; the rollback keeps it held", t.pkg.spec),
                    );
                }
                downgrades.push(RollbackStep::Downgrade(Change {
                    name: t.pkg.spec.to_string(),
                    from: Some(t.to.to_string()),
                    to: v.to_string(),
                }));
                holds.push(RollbackStep::Hold(Pin {
                    name: t.pkg.spec.to_string(),
                    version: v.to_string(),
                }));
            }
            None => removals.push(RollbackStep::Uninstall(t.pkg.spec.to_string())),
        }
    }
    downgrades.extend(removals);
    downgrades.extend(holds);
    Ok(downgrades)
}

/// A validated rollback step.
enum Step<'a> {
    Install(PackageRef<'a>, &'a str),
    Remove(PackageRef<'a>),
    Hold(PackageRef<'a>, &'a str),
    Unhold(PackageRef<'a>),
}

impl<'a> Step<'a> {
    /// Steps of the same kind that follow each other run together.
    fn kind(&self) -> u8 {
        match self {
            Step::Install(..) => 0,
            Step::Remove(_) => 1,
            Step::Hold(..) | Step::Unhold(_) => 2,
        }
    }

    fn pkg(&self) -> PackageRef<'a> {
        match self {
            Step::Install(p, _) | Step::Remove(p) | Step::Hold(p, _) | Step::Unhold(p) => *p,
        }
    }
}

fn validate_steps(steps: &[RollbackStep]) -> Result<Vec<Step<'_>>, PluginError> {
    let mut moved = HashSet::new();
    let mut out = Vec::with_capacity(steps.len());
    for step in steps {
        let step = match step {
            RollbackStep::Downgrade(c) => {
                check_version(&c.to)?;
                if let Some(from) = &c.from {
                    check_version(from)?;
                }
                Step::Install(PackageRef::parse(&c.name)?, &c.to)
            }
            RollbackStep::Uninstall(name) => Step::Remove(PackageRef::parse(name)?),
            RollbackStep::Hold(pin) => {
                check_version(&pin.version)?;
                Step::Hold(PackageRef::parse(&pin.name)?, &pin.version)
            }
            RollbackStep::Unhold(name) => Step::Unhold(PackageRef::parse(name)?),
            RollbackStep::RestoreSnapshot(id) => {
                return Err(PluginError::Unsupported(format!(
                    "restore-snapshot {id:?}: the debian plugin takes no snapshots"
                )))
            }
        };
        if step.kind() != 2 && !moved.insert(step.pkg().name) {
            return Err(PluginError::InvalidInput(format!(
                "package {} is downgraded or uninstalled more than once",
                step.pkg().spec
            )));
        }
        out.push(step);
    }
    Ok(out)
}

/// Carry out rollback steps in order and report the state each package ends in.
pub fn rollback(host: &mut impl Host, steps: &[RollbackStep]) -> Result<ApplyReport, PluginError> {
    let steps = validate_steps(steps)?;
    let mut report = Report::default();
    if steps.is_empty() {
        return Ok(report.finish());
    }
    host.log(
        Level::Info,
        &format!("rolling back: {} step(s)", steps.len()),
    );
    let may_remove: HashSet<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Remove(p) => Some(p.name),
            _ => None,
        })
        .collect();
    if steps.iter().any(|s| s.kind() != 2) {
        repair_interrupted(host, &mut report)?;
    }

    let mut rest = &steps[..];
    while let Some(first) = rest.first() {
        let len = rest.iter().take_while(|s| s.kind() == first.kind()).count();
        let (group, tail) = rest.split_at(len);
        rest = tail;
        match first.kind() {
            0 => {
                let args: Vec<String> = group
                    .iter()
                    .filter_map(|s| match s {
                        Step::Install(p, v) => Some(format!("{}={v}", p.spec)),
                        _ => None,
                    })
                    .collect();
                let may_install: HashMap<&str, &str> = group
                    .iter()
                    .filter_map(|s| match s {
                        Step::Install(p, v) => Some((p.name, *v)),
                        _ => None,
                    })
                    .collect();
                let guard = Guard {
                    may_install: &may_install,
                    may_remove: &may_remove,
                };
                guard.run(
                    host,
                    &mut report,
                    &commands::APT_SIMULATE_ROLLBACK_INSTALL,
                    &commands::APT_ROLLBACK_INSTALL,
                    &args,
                )?;
            }
            1 => {
                let args: Vec<&str> = group.iter().map(|s| s.pkg().spec).collect();
                let guard = Guard {
                    may_install: &HashMap::new(),
                    may_remove: &may_remove,
                };
                guard.run(
                    host,
                    &mut report,
                    &commands::APT_SIMULATE_REMOVE,
                    &commands::APT_REMOVE,
                    &args,
                )?;
            }
            _ => mark(host, &mut report, group)?,
        }
        let specs: Vec<&str> = group.iter().map(|s| s.pkg().spec).collect();
        let text = read_back(host, &specs).inspect_err(|e| lost_state(host, &report, e))?;
        let recs = parse_records(&text).inspect_err(|e| lost_state(host, &report, e))?;
        for step in group {
            report.outcomes.push(match step {
                Step::Install(p, v) => installed_outcome(p, v, &recs),
                Step::Remove(p) => removed_outcome(p, &recs),
                Step::Hold(p, v) => held_outcome(p, v, &recs),
                Step::Unhold(p) => unheld_outcome(p, &recs),
            });
        }
    }
    let report = report.finish();
    if !report.ok {
        host.log(Level::Warn, "rollback did not complete cleanly");
    }
    Ok(report)
}

/// When any package is half-way through an operation, let dpkg finish what it can.
fn repair_interrupted(host: &mut impl Host, report: &mut Report) -> Result<(), PluginError> {
    let cmd = commands::DPKG_QUERY_ALL.command::<&str>(&[]);
    let out = host.exec(&cmd)?;
    if out.status != 0 {
        return Err(PluginError::CommandFailed(patchwave_plugin_sdk::failure(
            &cmd, &out,
        )));
    }
    let text = stdout_text(out);
    let recs = parse_records(&text)?;
    let pending: Vec<String> = recs
        .iter()
        .filter(|r| r.status.is_interrupted())
        .map(|r| format!("{} ({})", r.name, r.status))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let why = format!(
        "packages left half-way: {}; running dpkg --configure -a first",
        pending.join(", ")
    );
    host.log(Level::Warn, &why);
    report.note(&why);
    let cmd = commands::DPKG_CONFIGURE_PENDING.command::<&str>(&[]);
    let out = host.exec(&cmd)?;
    report.ran(&cmd, &out, false);
    Ok(())
}

/// Checks an apt run's simulation before the real run.
struct Guard<'s> {
    /// Base names the run may install, upgrade or downgrade, each to exactly this version.
    may_install: &'s HashMap<&'s str, &'s str>,
    /// Base names the run may remove.
    may_remove: &'s HashSet<&'s str>,
}

impl Guard<'_> {
    /// Simulate with `sim`, then run `real` with the same arguments only if the
    /// simulation succeeds, has something to do and touches nothing unexpected.
    fn run<S: AsRef<str>>(
        &self,
        host: &mut impl Host,
        report: &mut Report,
        sim: &Spec,
        real: &Spec,
        args: &[S],
    ) -> Result<(), PluginError> {
        let sim_cmd = sim.command(args);
        let sim_out = host.exec(&sim_cmd)?;
        let real_cmd = real.command(args);
        if sim_out.status != 0 {
            report.ran(&sim_cmd, &sim_out, true);
            host.log(
                Level::Warn,
                &format!("apt-get simulation exited with status {}", sim_out.status),
            );
            return Ok(());
        }
        let text: Cow<'_, str> = String::from_utf8_lossy(&sim_out.stdout);
        let plan = match parse_simulation(&text) {
            Ok(plan) => plan,
            Err(e) => {
                report.ran(&sim_cmd, &sim_out, false);
                report.refused(&real_cmd, &format!("not run: {e:?}"));
                return Ok(());
            }
        };
        let extra_removals: Vec<&str> = plan
            .removals
            .iter()
            .copied()
            .filter(|r| !self.may_remove.contains(r.split(':').next().unwrap_or(r)))
            .collect();
        let extra_installs: Vec<String> = plan
            .installs
            .iter()
            .filter(|i| {
                !self
                    .may_install
                    .get(i.name)
                    .is_some_and(|v| version::same(v, i.new))
            })
            .map(|i| format!("{}={}", i.spec, i.new))
            .collect();
        if !extra_removals.is_empty() || !extra_installs.is_empty() {
            let why = format!(
                "not run: apt would also remove [{}] and install or change [{}]",
                extra_removals.join(" "),
                extra_installs.join(" ")
            );
            host.log(Level::Warn, &why);
            report.ran(&sim_cmd, &sim_out, false);
            report.refused(&real_cmd, &why);
            return Ok(());
        }
        if plan.is_empty() {
            report.section(&real_cmd);
            report.note("not run: nothing to do");
            return Ok(());
        }
        let out = host.exec(&real_cmd)?;
        report.ran(&real_cmd, &out, true);
        if out.status != 0 {
            host.log(
                Level::Warn,
                &format!("{} exited with status {}", real_cmd.program, out.status),
            );
        }
        Ok(())
    }
}

/// Holds and unholds, each checked against the database first.
fn mark(host: &mut impl Host, report: &mut Report, group: &[Step<'_>]) -> Result<(), PluginError> {
    let specs: Vec<&str> = group.iter().map(|s| s.pkg().spec).collect();
    let text = read_back(host, &specs)?;
    let recs = parse_records(&text)?;
    for step in group {
        let (spec, cmd) = match step {
            Step::Hold(p, version) => {
                let (status, found) = p.state_in(&recs, |r| version::same(r.version, version));
                let cmd = commands::APT_MARK_HOLD.command(&[p.spec]);
                if !status.is_present() || !found.is_some_and(|f| version::same(f, version)) {
                    let why = format!(
                        "not holding {}: it is at {} ({status}), not {version}",
                        p.spec,
                        found.unwrap_or("no version"),
                    );
                    host.log(Level::Warn, &why);
                    report.section(&cmd);
                    report.note(&why);
                    continue;
                }
                (p.spec, cmd)
            }
            Step::Unhold(p) => (p.spec, commands::APT_MARK_UNHOLD.command(&[p.spec])),
            Step::Install(..) | Step::Remove(_) => continue,
        };
        let out = host.exec(&cmd)?;
        report.ran(&cmd, &out, true);
        if out.status != 0 {
            host.log(
                Level::Warn,
                &format!("apt-mark for {spec} exited with status {}", out.status),
            );
        }
    }
    Ok(())
}

mod verify;
pub use verify::verify;

#[cfg(test)]
mod tests;
