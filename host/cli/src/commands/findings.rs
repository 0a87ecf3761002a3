//! `patchwave findings`: what is vulnerable where, how badly, and by when it must be fixed.
//!
//! Computed from the store (inventories, advisories, KEV, EPSS) with the config's
//! `[classify]` policy; the plugins order versions. No host is contacted.

use chrono::{DateTime, Utc};
use patchwave_advisory::{Finding, FixedIn, PatchClass};
use patchwave_core::HostId;
use patchwave_engine::findings::{self, FleetFindings};
use patchwave_engine::PluginSet;

use patchwave_store::Store;

use crate::exit::{Failure, NOT_FOUND, USAGE};
use crate::setup::Context;
use crate::term::{errln, field, outln};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document: findings, unassessed hosts, undecidable ranges.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// `findings` arguments.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Subcommand (`explain`); without one, list findings.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only hosts of this scope.
    #[arg(long)]
    pub scope: Option<String>,
    /// Only these classes (repeatable): critical, high, moderate, low.
    #[arg(long)]
    pub class: Vec<String>,
    /// Only findings past their due date (excluded findings are never overdue).
    #[arg(long)]
    pub overdue: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// Findings subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Why a package on a host is a finding: which advisory, which range, which rule chose
    /// the class, the SLA clock and any exclusion.
    Explain {
        /// Host id.
        host: String,
        /// Installed package (binary) or source package name.
        package: String,
    },
}

/// Run `findings`.
pub async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let classes: Vec<PatchClass> = args
        .class
        .iter()
        .map(|c| {
            c.parse::<PatchClass>()
                .map_err(|e| Failure::new(USAGE, format!("--class {e}")))
        })
        .collect::<Result<_, _>>()?;
    let now = Utc::now();
    let assessed = compute(ctx).await?;
    for u in &assessed.unassessed {
        errln!("not assessed: {}: {}", u.host, u.reason);
    }
    for (what, why) in &assessed.unordered {
        errln!("warning: {what} versions could not be ordered: {why}");
    }
    if !assessed.errors.is_empty() {
        errln!(
            "warning: {} advisory ranges could not be decided (first: {})",
            assessed.errors.len(),
            assessed.errors[0]
        );
    }
    if let Some(Command::Explain { host, package }) = args.command {
        return explain(&assessed, &HostId::from(host.as_str()), &package, now);
    }
    let mut list = match &args.host {
        Some(h) => assessed.for_host(&HostId::from(h.as_str()), now),
        None => assessed.findings(now),
    };
    list.retain(|f| {
        args.scope
            .as_ref()
            .is_none_or(|s| f.scope.as_ref() == Some(s))
            && (classes.is_empty() || classes.contains(&f.class()))
            && (!args.overdue || f.overdue(now))
    });
    match args.format {
        Format::Table => print_table(&list, now)?,
        Format::Csv => print_csv(&list, now)?,
        Format::Json => {
            let doc = serde_json::json!({
                "generated_at": now,
                "findings": list.iter().map(|f| finding_json(f, now)).collect::<Vec<_>>(),
                "unassessed": assessed.unassessed.iter().map(|u| serde_json::json!({
                    "host": u.host, "reason": u.reason,
                })).collect::<Vec<_>>(),
                "undecided_ranges": assessed.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            crate::term::json(&doc)?;
        }
    }
    Ok(())
}

async fn compute(ctx: &Context) -> Result<FleetFindings, Failure> {
    let store = ctx.store().await?;
    let runtime = ctx.runtime().await?;
    let plugins = ctx.plugins(&runtime).await?;
    assess_fleet(ctx, store.as_ref(), &plugins).await
}

/// The findings of every host in `store`, versions ordered by `plugins`.
async fn assess_fleet(
    ctx: &Context,
    store: &dyn Store,
    plugins: &PluginSet,
) -> Result<FleetFindings, Failure> {
    findings::assess_fleet(
        store,
        plugins,
        ctx.config.policy.clone(),
        ctx.config.advisories.ubuntu_pro,
    )
    .await
    .map_err(Failure::op)
}

fn fixed(f: &Finding) -> String {
    match f.fixed_in() {
        FixedIn::Version(v) => v.clone(),
        FixedIn::NoFixYet => "(no fix yet)".into(),
        FixedIn::Unknown(_) => "(unknown)".into(),
    }
}

fn due(f: &Finding) -> String {
    f.due_at()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "-".into())
}

fn row(f: &Finding, now: DateTime<Utc>) -> [String; 9] {
    [
        f.host.to_string(),
        f.scope.clone().unwrap_or_default(),
        f.package.clone(),
        f.installed_version.clone(),
        fixed(f),
        f.class().to_string(),
        due(f),
        f.status(now).to_string(),
        f.advisory_ids().join(" "),
    ]
}

const HEADER: [&str; 9] = [
    "HOST",
    "SCOPE",
    "PACKAGE",
    "INSTALLED",
    "FIXED-IN",
    "CLASS",
    "DUE",
    "STATUS",
    "ADVISORIES",
];

fn print_table(list: &[Finding], now: DateTime<Utc>) -> Result<(), Failure> {
    // Package names and versions come from hosts, advisory ids from feeds: one line each.
    let rows: Vec<[String; 9]> = list
        .iter()
        .map(|f| row(f, now).map(|cell| field(&cell).into_owned()))
        .collect();
    let mut widths = HEADER.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", padded.join("  ").trim_end())
    };
    line(HEADER.to_vec())?;
    for r in &rows {
        line(r.iter().map(String::as_str).collect())?;
    }
    outln!("{} findings", rows.len())
}

/// One CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn print_csv(list: &[Finding], now: DateTime<Utc>) -> Result<(), Failure> {
    let header = HEADER.map(|h| h.to_lowercase().replace('-', "_"));
    outln!("{}", header.join(","))?;
    for f in list {
        let cells: Vec<String> = row(f, now).iter().map(|c| csv_field(c)).collect();
        outln!("{}", cells.join(","))?;
    }
    Ok(())
}

fn finding_json(f: &Finding, now: DateTime<Utc>) -> serde_json::Value {
    let v = &f.vulnerability;
    serde_json::json!({
        "host": f.host,
        "scope": f.scope,
        "package": f.package,
        "installed_version": f.installed_version,
        "source_package": f.source_package,
        "fixed_in": v.fixed_in,
        "class": f.class().as_str(),
        "rule": f.rule().to_string(),
        "disclosed_at": f.disclosed_at(),
        "due_at": f.due_at(),
        "status": f.status(now).word(),
        "advisories": f.advisory_ids(),
        "cves": f.cve_ids(),
        "exclusion": f.exclusion,
    })
}

fn explain(
    assessed: &FleetFindings,
    host: &HostId,
    package: &str,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    if let Some(u) = assessed.unassessed.iter().find(|u| &u.host == host) {
        return Err(Failure::new(
            NOT_FOUND,
            format!("{host} is not assessed: {}", u.reason),
        ));
    }
    let Some(cohort) = assessed
        .cohorts
        .iter()
        .find(|c| c.hosts.iter().any(|h| &h.id == host))
    else {
        return Err(Failure::new(
            NOT_FOUND,
            format!("no host {host} in the store"),
        ));
    };
    let found: Vec<Finding> = assessed
        .for_host(host, now)
        .into_iter()
        .filter(|f| f.package == package || f.source_package.as_deref() == Some(package))
        .collect();
    if found.is_empty() {
        let ecosystems: Vec<String> = cohort.ecosystems.iter().map(ToString::to_string).collect();
        outln!(
            "{host}: {package}: no finding (no stored advisory for {} affects the installed version)",
            ecosystems.join(", ")
        )?;
        return Ok(());
    }
    for f in &found {
        let v = &f.vulnerability;
        let verdict = &v.verdict;
        outln!(
            "{host}: {} {} (source {})",
            f.package,
            f.installed_version,
            f.source_package.as_deref().unwrap_or("-")
        )?;
        outln!("  matched:")?;
        for m in &v.matches {
            outln!("    {}", m.explain(&f.installed_version))?;
        }
        outln!("  fixed in: {}", fixed(f))?;
        outln!("  class: {} — rule {}", verdict.class, verdict.rule)?;
        let opt = |c: Option<PatchClass>| c.map_or("-".to_string(), |c| c.to_string());
        outln!(
            "    cvss class {}, vendor class {}",
            opt(verdict.cvss_class),
            opt(verdict.vendor_class)
        )?;
        outln!(
            "  disclosed {}; clock started {}; due {}; status {}",
            verdict.disclosed_at.format("%Y-%m-%d"),
            verdict.clock_start.format("%Y-%m-%d"),
            due(f),
            f.status(now)
        )?;
        for e in &f.exclusion.applied {
            outln!(
                "  excluded until {} by {}: {}",
                e.expires.format("%Y-%m-%d"),
                e.owner,
                e.reason
            )?;
        }
        for e in &f.exclusion.expired {
            outln!(
                "  EXPIRED exclusion ({} by {}, {}) is ignored",
                e.expires.format("%Y-%m-%d"),
                e.owner,
                e.reason
            )?;
        }
        for n in &verdict.notes {
            outln!("  note: {n}")?;
        }
    }
    Ok(())
}
