//! `patchwave rollout`: plan, start and drive staged rollouts of one pinned set of packages.
//!
//! Hosts come from the config (environment and scope decide canary and waves), what is
//! installed on them from the store (scan first). The policy is the config's `[rollout]`.
//! `tick` advances every unfinished rollout as far as it goes now, then exits: run it from
//! cron, a systemd timer or a CronJob.

use std::collections::BTreeMap;

use chrono::Utc;
use patchwave_advisory::Ecosystem;
use patchwave_core::{check_id, HostId, RollbackStep};
use patchwave_engine::app;
use patchwave_engine::planning::{PinSource, PlanRequest};
use patchwave_engine::rollout::TickReport;
use patchwave_engine::snapshot::RestoreWhen;
use patchwave_engine::Loaded;
use patchwave_rollout::{Force, Observation, PatchClass, Plan, Rollout};

use crate::exit::{ExitCode, Failure, NOT_FOUND, PARTIAL, USAGE};
use crate::setup::Context;
use crate::term::{errln, outln};

/// What to roll out and to which hosts.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// A package pinned to an exact version, `NAME=VERSION` (repeatable).
    #[arg(long = "pin", required_unless_present = "from_findings")]
    pub pins: Vec<String>,
    /// Pin, for the planned hosts, the fixed version of every open (not excluded) finding of
    /// this class or higher (`critical`, `high`, `moderate`, `low`): one version per package,
    /// the highest fix any of them needs. Findings without a fix are listed and left out.
    #[arg(long, conflicts_with = "pins")]
    pub from_findings: Option<String>,
    /// The OSV ecosystem of the pins, e.g. `Debian:12`; hosts of other ecosystems are left out.
    #[arg(long)]
    pub ecosystem: String,
    /// The patch class (critical and high must pass a canary). With --from-findings the
    /// default is the highest class among the findings pinned.
    #[arg(long)]
    pub class: Option<String>,
    /// With --from-findings: only hosts of this scope.
    #[arg(long, requires = "from_findings")]
    pub scope: Option<String>,
    /// Only these hosts (comma-separated ids); default: every configured host.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Go ahead despite a refused anti-pattern, with this reason (recorded and audited).
    #[arg(long)]
    pub force_reason: Option<String>,
    /// Who forces it (with --force-reason).
    #[arg(long, default_value = "operator")]
    pub by: String,
}

/// Rollout subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the stages, hosts per wave, windows and each host's changes (and so its rollback).
    Plan(PlanArgs),
    /// Plan, store and start a rollout, then tick it once.
    Start {
        #[command(flatten)]
        plan: PlanArgs,
        /// Rollout id (default: `ro-<manifest id>-<time>`).
        #[arg(long)]
        id: Option<String>,
        /// Store and start it but leave the first tick to the scheduler.
        #[arg(long)]
        no_tick: bool,
    },
    /// Advance rollouts as far as they go now (default: every unfinished one).
    Tick {
        /// Rollout ids.
        ids: Vec<String>,
    },
    /// Per stage and host: where the rollout is and what it waits for.
    Status {
        /// Rollout id.
        id: String,
        /// The stored state as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every rollout, newest first.
    List,
    /// Go on after an inconclusive health check.
    Approve {
        /// Rollout id.
        id: String,
        /// Who approves.
        #[arg(long, default_value = "operator")]
        by: String,
    },
    /// Start no further hosts (nothing is rolled back automatically).
    Abort {
        /// Rollout id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who aborts.
        #[arg(long, default_value = "operator")]
        by: String,
    },
    /// Roll back every host the rollout applied to.
    Rollback {
        /// Rollout id.
        id: String,
        /// Who asks.
        #[arg(long, default_value = "operator")]
        by: String,
    },
}

/// Run a rollout subcommand.
pub async fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Plan(args) => {
            let loaded = ctx.loaded().await?;
            let planned = build_plan(ctx, &loaded, &args).await?;
            let rollbacks = ctx
                .executor(&loaded)
                .await?
                .preview_rollbacks(&planned)
                .await;
            print_plan(&planned, &rollbacks)?;
            if let Some(s) = &ctx.config.snapshot {
                outln!(
                    "snapshots: `{}` before each apply; restored by `{}` {}",
                    s.take.join(" "),
                    s.restore.join(" "),
                    match s.on_rollback {
                        RestoreWhen::Fallback => "when a package rollback fails",
                        RestoreWhen::Always => "instead of the package rollback",
                    }
                )?;
            }
            Ok(())
        }
        Command::Start {
            plan: args,
            id,
            no_tick,
        } => {
            if let Some(id) = &id {
                check_id(id).map_err(|e| Failure::new(USAGE, format!("--id {e}")))?;
            }
            let loaded = ctx.loaded().await?;
            let planned = build_plan(ctx, &loaded, &args).await?;
            let now = Utc::now();
            let id = id.unwrap_or_else(|| {
                format!(
                    "ro-{}-{}",
                    planned.manifest().id(),
                    now.format("%Y%m%d%H%M%S")
                )
            });
            let exec = ctx.executor(&loaded).await?;
            let id = app::start(&exec, Rollout::new(&id, planned), &args.by, now)
                .await
                .map_err(Failure::op)?;
            outln!("rollout {id} created")?;
            if no_tick {
                return Ok(());
            }
            let report = exec.tick(&id, &Utc::now).await.map_err(Failure::op)?;
            print_tick(&id, &report)
        }
        Command::Tick { ids } => {
            let loaded = ctx.loaded().await?;
            let exec = ctx.executor(&loaded).await?;
            let reports = app::tick(&exec, loaded.store.as_ref(), ids).await?;
            // Every rollout is ticked; the exit code is the worst failure's (an unknown id
            // is exit 5, a rollout that could not be advanced 3).
            let mut worst: Option<u8> = None;
            for (id, report) in reports {
                match report {
                    Ok(report) => print_tick(&id, &report)?,
                    Err(e) => {
                        errln!("error: {e}");
                        let code = match e.exit_code() {
                            NOT_FOUND => NOT_FOUND,
                            _ => PARTIAL,
                        };
                        worst = worst.max(Some(code));
                    }
                }
            }
            match worst {
                Some(code) => Err(Failure::quiet(code)),
                None => Ok(()),
            }
        }
        Command::Status { id, json } => {
            let store = ctx.store().await?;
            let Some(record) = store.rollout(&id).await.map_err(Failure::op)? else {
                return Err(Failure::new(NOT_FOUND, format!("no rollout `{id}`")));
            };
            if json {
                return crate::term::json(&record.state);
            }
            let stored: patchwave_engine::rollout::StoredRollout =
                serde_json::from_value(record.state).map_err(Failure::op)?;
            outln!(
                "rollout {id}: {} (revision {})",
                record.status,
                record.revision
            )?;
            outln!("{}", stored.rollout.summary())?;
            for (stage, lines) in &stored.health {
                for line in lines {
                    outln!("health {stage}: {line}")?;
                }
            }
            if !record.inbox.is_empty() {
                outln!(
                    "{} operator commands wait for the next tick",
                    record.inbox.len()
                )?;
            }
            Ok(())
        }
        Command::List => {
            let store = ctx.store().await?;
            for r in store.rollouts().await.map_err(Failure::op)? {
                outln!(
                    "{}  {}  created {}  updated {}",
                    r.id,
                    r.status,
                    r.created_at.format("%Y-%m-%d %H:%M"),
                    r.updated_at.format("%Y-%m-%d %H:%M")
                )?;
            }
            Ok(())
        }
        Command::Approve { id, by } => post(ctx, &id, Observation::Approved { by }).await,
        Command::Abort { id, reason, by } => {
            post(ctx, &id, Observation::Abort { by, reason }).await
        }
        Command::Rollback { id, by } => post(ctx, &id, Observation::RollbackRequested { by }).await,
    }
}

async fn post(ctx: &Context, id: &str, observation: Observation) -> Result<(), Failure> {
    let store = ctx.store().await?;
    let audit = ctx.audit().await?;
    let seq = patchwave_engine::rollout::post(store.as_ref(), &audit, id, &observation, Utc::now())
        .await
        .map_err(Failure::from)?;
    outln!("{observation} posted to {id} (#{seq}); the next tick acts on it")?;
    Ok(())
}

/// The request `args` make.
fn plan_request(args: &PlanArgs) -> Result<PlanRequest, Failure> {
    let mut problems = Vec::new();
    let pins = match &args.from_findings {
        Some(min) => match min.parse() {
            Ok(min) => PinSource::Findings { min },
            Err(e) => {
                problems.push(format!("--from-findings {e}"));
                PinSource::Explicit(Vec::new())
            }
        },
        None => {
            let mut pins = Vec::new();
            for p in &args.pins {
                match p.split_once('=') {
                    Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                        pins.push((name.to_string(), version.to_string()))
                    }
                    _ => problems.push(format!("--pin {p}: expected NAME=VERSION")),
                }
            }
            PinSource::Explicit(pins)
        }
    };
    let class = match args.class.as_deref().map(str::parse::<PatchClass>) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            problems.push(format!("--class {e}"));
            None
        }
    };
    if !problems.is_empty() {
        return Err(Failure::new(USAGE, problems.join("\n")));
    }
    Ok(PlanRequest {
        pins,
        ecosystem: Ecosystem::parse(&args.ecosystem),
        class,
        scope: args.scope.clone(),
        hosts: args.hosts.iter().map(|h| HostId(h.clone())).collect(),
        force: args.force_reason.as_ref().map(|reason| Force {
            reason: reason.clone(),
            by: args.by.clone(),
        }),
    })
}

/// The plan for `args` from the config's hosts and the store's inventories (see
/// [`patchwave_engine::planning`]); what was left out is printed on stderr.
async fn build_plan(ctx: &Context, loaded: &Loaded, args: &PlanArgs) -> Result<Plan, Failure> {
    let request = plan_request(args)?;
    let planned = ctx.plan(loaded, &request, Utc::now()).await?;
    for line in &planned.not_pinned {
        errln!("not pinned: {line}");
    }
    for (host, why) in &planned.not_planned {
        errln!("not planned: {host}: {why}");
    }
    let plan = planned.outcome?;
    if !plan.manifest().dependencies().is_empty() {
        let on: Vec<&str> = planned.resolved_on.iter().map(|h| h.as_str()).collect();
        errln!("dependencies resolved on: {}", on.join(" "));
    }
    Ok(plan)
}

/// One rollback step in words.
fn step_words(step: &RollbackStep) -> String {
    match step {
        RollbackStep::Downgrade(c) => format!("downgrade {} to {}", c.name, c.to),
        RollbackStep::Uninstall { name } => format!("uninstall {name}"),
        RollbackStep::Hold(p) => format!("hold {} at {}", p.name, p.version),
        RollbackStep::Unhold { name } => format!("unhold {name}"),
        RollbackStep::RestoreSnapshot { id } => format!("restore snapshot {id}"),
    }
}

/// The plan, with each host's rollback as its plugin planned it (`rollbacks`).
fn print_plan(
    planned: &Plan,
    rollbacks: &BTreeMap<HostId, Result<Vec<RollbackStep>, String>>,
) -> Result<(), Failure> {
    let m = planned.manifest();
    outln!("manifest {} ({}, class {}):", m.id(), m.origin(), m.class())?;
    for p in m.packages() {
        outln!("  {} {} = {}", p.ecosystem, p.name, p.version)?;
    }
    for p in m.dependencies() {
        outln!(
            "  {} {} = {} (dependency, resolved at the canary)",
            p.ecosystem,
            p.name,
            p.version
        )?;
    }
    for stage in planned.stages() {
        outln!("{}: {} hosts", stage.id, stage.hosts.len())?;
        for h in &stage.hosts {
            let changes: Vec<String> = h
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {} -> {}",
                        c.name,
                        c.from.as_deref().unwrap_or("absent"),
                        c.to
                    )
                })
                .collect();
            let rollback = match rollbacks.get(&h.host) {
                Some(Ok(steps)) => steps.iter().map(step_words).collect::<Vec<_>>().join(", "),
                Some(Err(e)) => format!("unknown now ({e}); planned again before the apply"),
                None => "nothing to undo".to_string(),
            };
            outln!("  {}  {}; rollback: {rollback}", h.host, changes.join(", "))?;
        }
    }
    if !m.dependencies().is_empty() || planned.stages().len() > 1 {
        outln!(
            "every later host resolves its own transaction right before its apply; one that \
             leaves the manifest is refused, not patched differently"
        )?;
    }
    if !planned.up_to_date().is_empty() {
        let ids: Vec<&str> = planned.up_to_date().iter().map(|h| h.as_str()).collect();
        outln!("up to date: {}", ids.join(" "))?;
    }
    let policy = planned.policy();
    match &policy.window {
        Some(w) => outln!(
            "prod waves only in the window `{}` ({}) for {}",
            w.cron,
            w.tz,
            w.duration
        )?,
        None => outln!("prod waves at any time (no maintenance window configured)")?,
    }
    if let Some(f) = planned.forced() {
        let overridden: Vec<String> = f.overridden.iter().map(ToString::to_string).collect();
        outln!(
            "FORCED by {}: {} (overrides: {})",
            f.by,
            f.reason,
            overridden.join("; ")
        )?;
    }
    Ok(())
}

fn print_tick(id: &str, report: &TickReport) -> Result<(), Failure> {
    let status = report.rollout.status().word();
    match (&report.outcome, &report.waiting) {
        (Some(outcome), _) => outln!("{id}: {status}: finished: {outcome:?}"),
        (None, Some(w)) => outln!("{id}: {status}: waiting for {w}"),
        (None, None) => outln!("{id}: {status}"),
    }
}
