//! `patchwave hosts`: answered from the store alone.

use chrono::Utc;
use patchwave_core::{Freshness, HostId, HostSummary};
use patchwave_store::Store;

use patchwave_engine::config::TransportSpec;
use patchwave_transport::{fetch_host_key, AddMode, AddOutcome, KnownHosts};

use crate::exit::{Failure, NOT_FOUND, USAGE};
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
    /// Enrol an SSH host's key: connect, show its fingerprint, record it in known_hosts.
    ///
    /// Nothing is trusted implicitly anywhere else: scans refuse unknown and changed keys.
    Trust {
        /// Host id from the config.
        host: String,
        /// Only enrol if the presented key has this fingerprint (`SHA256:...`), checked
        /// against what you got out of band (e.g. the host's console).
        #[arg(long)]
        expect_fingerprint: Option<String>,
        /// Replace a different key already enrolled for the host (after a legitimate re-key).
        #[arg(long)]
        replace: bool,
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
    if let Command::Trust {
        host,
        expect_fingerprint,
        replace,
    } = command
    {
        return trust(ctx, &host, expect_fingerprint, replace).await;
    }
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
                Freshness::Changed => format!(
                    "  (a change started {} after the last successful scan: scan it to read \
                     what is installed now)",
                    when(s.last_change_at, now)
                ),
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
        Command::Trust { .. } => Ok(()),
    }
}

async fn trust(
    ctx: &Context,
    host: &str,
    expect: Option<String>,
    replace: bool,
) -> Result<(), Failure> {
    let config = ctx
        .config
        .hosts
        .iter()
        .find(|h| h.id.as_str() == host)
        .ok_or_else(|| Failure::new(NOT_FOUND, format!("no host `{host}` in {}", ctx.source)))?;
    let TransportSpec::Ssh {
        address,
        port,
        known_hosts,
        ..
    } = &config.transport
    else {
        return Err(Failure::new(
            USAGE,
            format!("`{host}` is not reached over SSH"),
        ));
    };
    let presented = fetch_host_key(address, *port, ctx.config.ssh.connect_timeout)
        .await
        .map_err(Failure::op)?;
    println!(
        "{host} ({address}:{port}) presents {} {}",
        presented.key.algorithm(),
        presented.fingerprint
    );
    if let Some(want) = expect {
        if want != presented.fingerprint {
            return Err(Failure::new(
                USAGE,
                format!(
                    "fingerprint {} is not the expected {want}; nothing recorded",
                    presented.fingerprint
                ),
            ));
        }
    }
    let file = KnownHosts::load(known_hosts.clone()).map_err(Failure::op)?;
    let mode = if replace {
        AddMode::Replace
    } else {
        AddMode::RefuseIfDifferent
    };
    match file
        .add(address, *port, &presented.key, mode)
        .map_err(Failure::op)?
    {
        AddOutcome::Added => println!("recorded in {}", known_hosts.display()),
        AddOutcome::AlreadyTrusted => println!("already trusted in {}", known_hosts.display()),
        AddOutcome::Replaced { previous } => println!(
            "recorded in {}, replacing {}",
            known_hosts.display(),
            previous.join(", ")
        ),
    }
    Ok(())
}
