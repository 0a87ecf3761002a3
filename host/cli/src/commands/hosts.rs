//! `patchwave hosts`: answered from the store alone.

use chrono::Utc;
use patchwave_core::{Freshness, HostId, HostSummary};
use patchwave_store::Store;

use crate::exit::{Failure, NOT_FOUND};
use crate::output::{age, os_label, patch_level, when};
use crate::setup::Context;

/// Hosts subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every known host: OS, packages, patch level, last scan and freshness.
    List {
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// What is on one host, from the store (instant; never contacts the host).
    Show {
        /// Host id.
        host: String,
        /// Also list every installed package.
        #[arg(long)]
        packages: bool,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn summary_json(s: &HostSummary, freshness: Freshness) -> serde_json::Value {
    serde_json::json!({
        "summary": s,
        "freshness": freshness,
    })
}

/// Run a hosts subcommand.
pub async fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    let store = ctx.store().await?;
    let now = Utc::now();
    let max_age = ctx.config.stale_after;
    match command {
        Command::List { json } => {
            let hosts = store.list_hosts().await.map_err(Failure::op)?;
            if json {
                let all: Vec<_> = hosts
                    .iter()
                    .map(|s| summary_json(s, s.freshness(now, max_age)))
                    .collect();
                println!("{:#}", serde_json::Value::Array(all));
                return Ok(());
            }
            println!(
                "{:<16} {:<8} {:<10} {:<32} {:>6} {:>5} {:<12} {:>8} {:<8}",
                "HOST", "ENV", "SCOPE", "OS", "PKGS", "UPG", "LAST-SCAN", "AGE", "DATA"
            );
            for s in &hosts {
                let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<16} {:<8} {:<10} {:<32} {:>6} {:>5} {:<12} {:>8} {:<8}",
                    s.id.as_str(),
                    s.env.as_str(),
                    s.scope,
                    os_label(s.facts.as_ref()),
                    count(s.package_count),
                    count(s.upgradable_count),
                    s.last_status
                        .as_ref()
                        .map(|st| st.word())
                        .unwrap_or("never"),
                    age(s.last_success_at, now),
                    s.freshness(now, max_age).word(),
                );
            }
            Ok(())
        }
        Command::Show {
            host,
            packages,
            json,
        } => {
            let id = HostId(host.clone());
            let s = store
                .host_summary(&id)
                .await
                .map_err(Failure::op)?
                .ok_or_else(|| Failure::new(NOT_FOUND, format!("no host `{host}` in the store")))?;
            let freshness = s.freshness(now, max_age);
            let inventory = if packages {
                store.inventory(&id).await.map_err(Failure::op)?
            } else {
                None
            };
            if json {
                let mut doc = summary_json(&s, freshness);
                if let Some(inv) = &inventory {
                    doc["packages"] = serde_json::to_value(&inv.packages).map_err(Failure::op)?;
                }
                println!("{doc:#}");
                return Ok(());
            }
            println!("host:          {}", s.id);
            println!("address:       {}", s.address);
            println!("env / scope:   {} / {}", s.env.as_str(), s.scope);
            println!("os:            {}", os_label(s.facts.as_ref()));
            if let Some(f) = &s.facts {
                println!("kernel:        {} ({})", f.kernel, f.arch);
            }
            println!(
                "packages:      {}",
                s.package_count
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "unknown".into())
            );
            println!("patch level:   {}", patch_level(&s));
            println!("last scan:     {}", when(s.last_attempt_at, now));
            if let Some(st) = &s.last_status {
                match st.error() {
                    None => println!("  result:      ok"),
                    Some(e) => println!("  result:      {}: {e}", st.word().to_uppercase()),
                }
            }
            println!("last success:  {}", when(s.last_success_at, now));
            println!(
                "inventory:     changed {}",
                when(s.inventory_changed_at, now)
            );
            let note = match freshness {
                Freshness::Fresh => String::new(),
                Freshness::Stale => format!(
                    "  (older than {}h or the last scan failed: do not trust it as current)",
                    max_age.num_hours()
                ),
                Freshness::Unknown => "  (never scanned successfully)".into(),
            };
            println!("data:          {}{note}", freshness.word());
            if let Some(inv) = inventory {
                println!();
                for p in inv.packages {
                    println!("{}\t{}\t{}", p.name, p.version, p.arch);
                }
            }
            Ok(())
        }
    }
}
