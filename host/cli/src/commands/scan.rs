//! `patchwave scan`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use patchwave_core::ScanStatus;
use patchwave_engine::config::{HostConfig, TransportSpec};
use patchwave_engine::{ScanEvent, Scanner};

use crate::exit::{Failure, NOT_FOUND, PARTIAL};
use crate::output::os_label;
use crate::setup::Context;
use crate::term::{errln, field, outln};

/// Scan arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hosts to scan, by id from the config (`localhost` is always available). Default: all.
    pub hosts: Vec<String>,
    /// Hosts scanned at once (default from the config), at least 1.
    #[arg(long, value_parser = at_least_one)]
    pub concurrency: Option<usize>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--concurrency`: a count of at least 1, as `scan.concurrency` must be.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (like scan.concurrency)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn localhost() -> HostConfig {
    HostConfig {
        id: "localhost".into(),
        transport: TransportSpec::Local,
        env: patchwave_core::Environment::NonProd,
        scope: "local".into(),
        tags: vec![],
        plugin: None,
    }
}

/// Pick the hosts named on the command line (all configured hosts by default).
fn select(ctx: &Context, names: &[String]) -> Result<Vec<HostConfig>, Failure> {
    if names.is_empty() {
        if ctx.config.hosts.is_empty() {
            return Ok(vec![localhost()]);
        }
        return Ok(ctx.config.hosts.clone());
    }
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match ctx.config.hosts.iter().find(|h| h.id.as_str() == name) {
            Some(h) => out.push(h.clone()),
            None if name == "localhost" => out.push(localhost()),
            None => unknown.push(name.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(Failure::new(
            NOT_FOUND,
            format!("not in the fleet ({}): {}", ctx.source, unknown.join(", ")),
        ));
    }
    Ok(out)
}

/// Run a scan and print progress and a summary.
pub async fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let hosts = select(ctx, &args.hosts)?;
    let store = ctx.store().await?;
    let runtime = ctx.runtime().await?;
    let plugins = Arc::new(ctx.plugins(&runtime).await?);
    let targets = ctx.targets_of(&hosts).await?;
    let total = targets.len();
    let done = Arc::new(AtomicUsize::new(0));
    let tty = std::io::stderr().is_terminal();
    let width = total.to_string().len();
    let progress: Arc<dyn Fn(ScanEvent) + Send + Sync> = Arc::new(move |event| {
        if let ScanEvent::Finished {
            host,
            status,
            packages,
            upgradable,
            took,
        } = event
        {
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            let what = match (&status, packages, upgradable) {
                (ScanStatus::Ok, Some(p), Some(u)) => format!("ok, {p} packages, {u} upgradable"),
                _ => format!("{}: {}", status.word(), field(status.error().unwrap_or(""))),
            };
            let line = format!(
                "[{n:>width$}/{total}] {host}: {what} ({:.1}s)",
                took.as_secs_f64()
            );
            if tty || total > 1 {
                errln!("{line}");
            }
        }
    });
    let concurrency = args.concurrency.unwrap_or(ctx.config.scan_concurrency);
    let report = Scanner::new(plugins, Arc::clone(&store), concurrency)
        .scan(targets, progress)
        .await
        .map_err(Failure::op)?;

    let failed: Vec<_> = report.failed().collect();
    if args.json {
        let hosts: Vec<serde_json::Value> = report
            .hosts
            .iter()
            .map(|h| {
                serde_json::json!({
                    "host": h.host,
                    "status": h.status.word(),
                    "error": h.status.error(),
                    "packages": h.packages,
                    "upgradable": h.upgradable,
                    "seconds": h.took.as_secs_f64(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "hosts": hosts,
            "ok": report.ok_count(),
            "failed": failed.len(),
            "seconds": report.took.as_secs_f64(),
        });
        crate::term::json(&doc)?;
    } else {
        outln!(
            "scanned {} host{} in {:.1}s: {} ok, {} failed",
            report.hosts.len(),
            if report.hosts.len() == 1 { "" } else { "s" },
            report.took.as_secs_f64(),
            report.ok_count(),
            failed.len()
        )?;
        for h in &report.hosts {
            match (&h.status, h.packages, h.upgradable) {
                (ScanStatus::Ok, Some(p), Some(u)) => {
                    let summary = store.host_summary(&h.host).await.map_err(Failure::op)?;
                    let os = os_label(summary.as_ref().and_then(|s| s.facts.as_ref()));
                    outln!("  {}: {os}: {p} packages installed, {u} upgradable", h.host)?;
                }
                (status, _, _) => outln!(
                    "  {}: {}: {}",
                    h.host,
                    status.word().to_uppercase(),
                    field(status.error().unwrap_or(""))
                )?,
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::quiet(PARTIAL))
    }
}
