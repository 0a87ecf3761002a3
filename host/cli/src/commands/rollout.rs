//! `patchwave rollout`: plan, start and drive staged rollouts of one pinned set of packages.
//!
//! Hosts come from the config (environment and scope decide canary and waves), what is
//! installed on them from the store (scan first). The policy is the config's `[rollout]`.
//! `tick` advances every unfinished rollout as far as it goes now, then exits: run it from
//! cron, a systemd timer or a CronJob.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use patchwave_advisory::{ecosystems_for_host, Class, Ecosystem, FixedIn};
use patchwave_core::{Change, HostId, RollbackStep};
use patchwave_engine::findings::{PluginOracle, VersionOracle};
use patchwave_engine::health::HealthSources;
use patchwave_engine::rollout::{
    audit_operator, Executor, HealthGate, NoHealthSources, TickReport,
};
use patchwave_engine::snapshot::{RestoreWhen, SnapshotHooks};
use patchwave_engine::{HostTarget, PluginSet};
use patchwave_plugin_host::PluginRuntime;
use patchwave_rollout::{
    plan, Force, Observation, PatchClass, PinnedPackage, Plan, ReleaseManifest, Rollout, Target,
};
use patchwave_store::{SqliteStore, Store};

use crate::exit::{Failure, NOT_FOUND, PARTIAL, USAGE};
use crate::setup::Context;

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
            let loaded = Loaded::open(ctx).await?;
            let planned = build_plan(ctx, &loaded, &args).await?;
            let rollbacks = executor(ctx, &loaded)?.preview_rollbacks(&planned).await;
            print_plan(&planned, &rollbacks);
            if let Some(s) = &ctx.config.snapshot {
                println!(
                    "snapshots: `{}` before each apply; restored by `{}` {}",
                    s.take.join(" "),
                    s.restore.join(" "),
                    match s.on_rollback {
                        RestoreWhen::Fallback => "when a package rollback fails",
                        RestoreWhen::Always => "instead of the package rollback",
                    }
                );
            }
            Ok(())
        }
        Command::Start {
            plan: args,
            id,
            no_tick,
        } => {
            let loaded = Loaded::open(ctx).await?;
            let planned = build_plan(ctx, &loaded, &args).await?;
            let now = Utc::now();
            let id = id.unwrap_or_else(|| {
                format!(
                    "ro-{}-{}",
                    planned.manifest().id(),
                    now.format("%Y%m%d%H%M%S")
                )
            });
            let exec = executor(ctx, &loaded)?;
            exec.create(Rollout::new(&id, planned), &args.by, now)
                .await
                .map_err(Failure::op)?;
            exec.post(
                &id,
                &Observation::Start {
                    by: args.by.clone(),
                },
                now,
            )
            .await
            .map_err(Failure::op)?;
            println!("rollout {id} created");
            if no_tick {
                return Ok(());
            }
            let report = exec.tick(&id, &Utc::now).await.map_err(Failure::op)?;
            print_tick(&id, &report);
            Ok(())
        }
        Command::Tick { ids } => {
            let exec = executor(ctx, &Loaded::open(ctx).await?)?;
            let ids = if ids.is_empty() {
                unfinished(ctx).await?
            } else {
                ids
            };
            let mut failed = 0;
            for id in ids {
                match exec.tick(&id, &Utc::now).await {
                    Ok(report) => print_tick(&id, &report),
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: {e}");
                    }
                }
            }
            if failed > 0 {
                return Err(Failure::quiet(PARTIAL));
            }
            Ok(())
        }
        Command::Status { id, json } => {
            let store = ctx.store().await?;
            let Some(record) = store.rollout(&id).await.map_err(Failure::op)? else {
                return Err(Failure::new(NOT_FOUND, format!("no rollout `{id}`")));
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&record.state).map_err(Failure::op)?
                );
                return Ok(());
            }
            let stored: patchwave_engine::rollout::StoredRollout =
                serde_json::from_value(record.state).map_err(Failure::op)?;
            println!(
                "rollout {id}: {} (revision {})",
                record.status, record.revision
            );
            println!("{}", stored.rollout.summary());
            for (stage, lines) in &stored.health {
                for line in lines {
                    println!("health {stage}: {line}");
                }
            }
            if !record.inbox.is_empty() {
                println!(
                    "{} operator commands wait for the next tick",
                    record.inbox.len()
                );
            }
            Ok(())
        }
        Command::List => {
            let store = ctx.store().await?;
            for r in store.rollouts().await.map_err(Failure::op)? {
                println!(
                    "{}  {}  created {}  updated {}",
                    r.id,
                    r.status,
                    r.created_at.format("%Y-%m-%d %H:%M"),
                    r.updated_at.format("%Y-%m-%d %H:%M")
                );
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
    if store.rollout(id).await.map_err(Failure::op)?.is_none() {
        return Err(Failure::new(NOT_FOUND, format!("no rollout `{id}`")));
    }
    let audit = ctx.audit().await?;
    let now = Utc::now();
    audit_operator(&audit, id, &observation, now).map_err(Failure::op)?;
    let value = serde_json::to_value(&observation).map_err(Failure::op)?;
    let seq = store
        .post_rollout_observation(id, &value, now)
        .await
        .map_err(Failure::op)?;
    println!("{observation} posted to {id} (#{seq}); the next tick acts on it");
    Ok(())
}

async fn unfinished(ctx: &Context) -> Result<Vec<String>, Failure> {
    let store = ctx.store().await?;
    let mut out = Vec::new();
    for r in store.rollouts().await.map_err(Failure::op)? {
        let Some(record) = store.rollout(&r.id).await.map_err(Failure::op)? else {
            continue;
        };
        let stored: patchwave_engine::rollout::StoredRollout =
            serde_json::from_value(record.state).map_err(Failure::op)?;
        if !stored.rollout.status().is_final() {
            out.push(r.id);
        }
    }
    Ok(out)
}

/// What the rollout commands that plan or act share, opened once per command: the store,
/// the plugin runtime (and so the audit log) and the loaded plugins.
struct Loaded {
    store: Arc<SqliteStore>,
    runtime: PluginRuntime,
    plugins: Arc<PluginSet>,
}

impl Loaded {
    async fn open(ctx: &Context) -> Result<Loaded, Failure> {
        let store = ctx.store().await?;
        let runtime = ctx.runtime().await?;
        let plugins = Arc::new(ctx.plugins(&runtime).await?);
        Ok(Loaded {
            store,
            runtime,
            plugins,
        })
    }
}

fn executor(ctx: &Context, loaded: &Loaded) -> Result<Executor, Failure> {
    let audit = loaded.runtime.audit();
    let mut targets = Vec::new();
    for host in &ctx.config.hosts {
        targets.push(HostTarget {
            config: host.clone(),
            transport: ctx.transport(host)?,
        });
    }
    let health: Arc<dyn HealthGate> = if ctx.config.health.sources.is_empty() {
        Arc::new(NoHealthSources)
    } else {
        Arc::new(
            HealthSources::new(&ctx.config.health, &ctx.config.base_dir)
                .map_err(|e| Failure::new(USAGE, e))?,
        )
    };
    let exec = Executor::new(
        loaded.store.clone(),
        loaded.plugins.clone(),
        targets,
        health,
        ctx.config.scan_concurrency,
        audit.clone(),
    );
    Ok(match &ctx.config.snapshot {
        Some(cfg) => exec.with_snapshots(Arc::new(
            SnapshotHooks::new(cfg, audit.clone()).map_err(|e| Failure::new(USAGE, e))?,
        )),
        None => exec,
    })
}

/// The manifest of `--pin`s and `--class` (default high).
fn explicit_manifest(args: &PlanArgs) -> Result<ReleaseManifest, Failure> {
    let mut pins = Vec::new();
    let mut problems = Vec::new();
    for p in &args.pins {
        match p.split_once('=') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                pins.push(PinnedPackage::new(&args.ecosystem, name, version))
            }
            _ => problems.push(format!("--pin {p}: expected NAME=VERSION")),
        }
    }
    let class = parse_class(args.class.as_deref().unwrap_or("high"))?;
    if !problems.is_empty() {
        return Err(Failure::new(USAGE, problems.join("\n")));
    }
    ReleaseManifest::new(pins, "explicit", class).map_err(|e| Failure::new(USAGE, e))
}

/// The manifest that fixes every open finding of class `min` or higher on `hosts`: per
/// package, the highest fixed version any finding needs (ordered by the plugin). Findings
/// without a usable fix are printed and left out; so are excluded ones.
async fn manifest_from_findings(
    ctx: &Context,
    loaded: &Loaded,
    oracle: &PluginOracle,
    ecosystem: &Ecosystem,
    hosts: &[HostId],
    min: Class,
    class: Option<&str>,
) -> Result<ReleaseManifest, Failure> {
    let now = Utc::now();
    let assessed =
        super::findings::assess_fleet(ctx, loaded.store.as_ref(), &loaded.plugins).await?;
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let mut highest: Option<Class> = None;
    let mut unfixable = Vec::new();
    for f in assessed.findings(now) {
        if f.class() < min || f.is_excluded(now) || !hosts.contains(&f.host) {
            continue;
        }
        let fix = match f.fixed_in() {
            FixedIn::Version(v) => v.clone(),
            FixedIn::NoFixYet => {
                unfixable.push(format!("{} {}: no fix yet", f.host, f.package));
                continue;
            }
            FixedIn::Unknown(why) => {
                unfixable.push(format!("{} {}: {why}", f.host, f.package));
                continue;
            }
        };
        highest = highest.max(Some(f.class()));
        match wanted.get(&f.package) {
            None => {
                wanted.insert(f.package.clone(), fix);
            }
            Some(have) if *have == fix => {}
            Some(have) => {
                let answer = oracle
                    .compare(ecosystem, &[(have.clone(), fix.clone())])
                    .await
                    .map_err(Failure::op)?;
                match answer.first() {
                    Some(Ok(std::cmp::Ordering::Less)) => {
                        wanted.insert(f.package.clone(), fix);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(Failure::new(USAGE, format!("{}: {e}", f.package))),
                    None => return Err(Failure::op("plugin gave no answer")),
                }
            }
        }
    }
    for u in &unfixable {
        eprintln!("not pinned: {u}");
    }
    let Some(highest) = highest else {
        return Err(Failure::new(
            NOT_FOUND,
            format!("no open {min} or higher finding with a fix on the planned hosts"),
        ));
    };
    let class = parse_class(class.unwrap_or(highest.as_str()))?;
    let pins = wanted
        .into_iter()
        .map(|(name, version)| PinnedPackage::new(&ecosystem.to_string(), &name, &version))
        .collect();
    ReleaseManifest::new(pins, &format!("findings: {min} and higher"), class)
        .map_err(|e| Failure::new(USAGE, e))
}

fn parse_class(s: &str) -> Result<PatchClass, Failure> {
    match s {
        "critical" => Ok(PatchClass::Critical),
        "high" => Ok(PatchClass::High),
        "moderate" => Ok(PatchClass::Moderate),
        "low" => Ok(PatchClass::Low),
        _ => Err(Failure::new(
            USAGE,
            format!("--class {s}: expected critical, high, moderate or low"),
        )),
    }
}

/// The plan for `args` from the config's hosts and the store's inventories; hosts whose
/// installed version is already at or above the pin are up to date.
async fn build_plan(ctx: &Context, loaded: &Loaded, args: &PlanArgs) -> Result<Plan, Failure> {
    let ecosystem = Ecosystem::parse(&args.ecosystem);
    let store = &loaded.store;
    let oracle = PluginOracle::new(&loaded.plugins);
    let mut eligible = Vec::new();
    let mut skipped = Vec::new();
    for host in &ctx.config.hosts {
        if !args.hosts.is_empty() && !args.hosts.iter().any(|h| h.as_str() == host.id.as_str()) {
            continue;
        }
        if args.scope.as_ref().is_some_and(|s| *s != host.scope) {
            continue;
        }
        let summary = store.host_summary(&host.id).await.map_err(Failure::op)?;
        let facts = summary.as_ref().and_then(|s| s.facts.clone());
        let Some(facts) = facts else {
            skipped.push(format!("{}: never scanned", host.id));
            continue;
        };
        if !ecosystems_for_host(
            &facts.id,
            &facts.version_id,
            ctx.config.advisories.ubuntu_pro,
        )
        .contains(&ecosystem)
        {
            continue;
        }
        eligible.push(host);
    }
    for s in &skipped {
        eprintln!("not planned: {s}");
    }
    let manifest = match &args.from_findings {
        Some(min) => {
            let min = Class::parse(min).ok_or_else(|| {
                Failure::new(
                    USAGE,
                    format!("--from-findings {min}: expected critical, high, moderate or low"),
                )
            })?;
            let hosts: Vec<HostId> = eligible.iter().map(|h| h.id.clone()).collect();
            manifest_from_findings(
                ctx,
                loaded,
                &oracle,
                &ecosystem,
                &hosts,
                min,
                args.class.as_deref(),
            )
            .await?
        }
        None => explicit_manifest(args)?,
    };
    let mut targets = Vec::new();
    for host in eligible {
        let inventory = store.inventory(&host.id).await.map_err(Failure::op)?;
        let packages = inventory.map(|i| i.packages).unwrap_or_default();
        let mut changes = Vec::new();
        for pin in manifest.packages() {
            let Some(installed) = packages.iter().find(|p| p.name == pin.name) else {
                continue;
            };
            if installed.version == pin.version {
                continue;
            }
            let answer = oracle
                .compare(
                    &ecosystem,
                    &[(installed.version.clone(), pin.version.clone())],
                )
                .await
                .map_err(Failure::op)?;
            match answer.first() {
                Some(Ok(std::cmp::Ordering::Less)) => changes.push(Change {
                    name: pin.name.clone(),
                    from: Some(installed.version.clone()),
                    to: pin.version.clone(),
                }),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Failure::new(USAGE, format!("{}: {e}", pin.name))),
                None => return Err(Failure::op("plugin gave no answer")),
            }
        }
        targets.push(Target {
            host: host.id.clone(),
            environment: host.env,
            scope: host.scope.clone(),
            changes,
        });
    }
    let force = args.force_reason.as_ref().map(|reason| Force {
        reason: reason.clone(),
        by: args.by.clone(),
    });
    plan(&manifest, &targets, &ctx.config.rollout, force).map_err(|e| Failure::new(USAGE, e))
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
fn print_plan(planned: &Plan, rollbacks: &BTreeMap<HostId, Result<Vec<RollbackStep>, String>>) {
    let m = planned.manifest();
    println!("manifest {} ({}, class {}):", m.id(), m.origin(), m.class());
    for p in m.packages() {
        println!("  {} {} = {}", p.ecosystem, p.name, p.version);
    }
    for stage in planned.stages() {
        println!("{}: {} hosts", stage.id, stage.hosts.len());
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
            println!("  {}  {}; rollback: {rollback}", h.host, changes.join(", "));
        }
    }
    if !planned.up_to_date().is_empty() {
        let ids: Vec<&str> = planned.up_to_date().iter().map(|h| h.as_str()).collect();
        println!("up to date: {}", ids.join(" "));
    }
    let policy = planned.policy();
    match &policy.window {
        Some(w) => println!(
            "prod waves only in the window `{}` ({}) for {}",
            w.cron, w.tz, w.duration
        ),
        None => println!("prod waves at any time (no maintenance window configured)"),
    }
    if let Some(f) = planned.forced() {
        let overridden: Vec<String> = f.overridden.iter().map(ToString::to_string).collect();
        println!(
            "FORCED by {}: {} (overrides: {})",
            f.by,
            f.reason,
            overridden.join("; ")
        );
    }
}

fn print_tick(id: &str, report: &TickReport) {
    let status = patchwave_engine::rollout::status_word(&report.rollout);
    match (&report.outcome, &report.waiting) {
        (Some(outcome), _) => println!("{id}: {status}: finished: {outcome:?}"),
        (None, Some(w)) => println!("{id}: {status}: waiting for {w}"),
        (None, None) => println!("{id}: {status}"),
    }
}
