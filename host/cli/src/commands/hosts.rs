//! `patchwave hosts`: answered from the store alone.

use std::borrow::Cow;
use std::io::IsTerminal;

use chrono::Utc;
use patchwave_core::{Freshness, HostId, HostSummary, HumanDuration};

use patchwave_engine::config::TransportSpec;
use patchwave_transport::{fetch_host_key, AddMode, AddOutcome, KnownHosts, KnownHostsError};

use crate::exit::{Failure, NOT_FOUND, USAGE};
use crate::output::{age, os_label, patch_level, when};
use crate::setup::Context;
use crate::term::{errln, field, json as json_out, outln};

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
    /// The change journal of one host, newest first: every apply and rollback, how it
    /// ended, the rollout that made it and, for a rollback, the apply it undid.
    Changes {
        /// Host id.
        host: String,
        /// At most this many changes.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// JSON on stdout (the requests and rollback plans as recorded).
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
        /// The new key's fingerprint must be confirmed: with --expect-fingerprint, or by
        /// answering `yes` at a terminal that shows the enrolled and the presented one.
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
                json_out(&serde_json::Value::Array(all))?;
                return Ok(());
            }
            outln!(
                "{:<16} {:<8} {:<10} {:<32} {:>6} {:>5} {:<12} {:>8} {:<8}",
                "HOST",
                "ENV",
                "SCOPE",
                "OS",
                "PKGS",
                "UPG",
                "LAST-SCAN",
                "AGE",
                "DATA"
            )?;
            for s in &hosts {
                let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                outln!(
                    "{:<16} {:<8} {:<10} {:<32} {:>6} {:>5} {:<12} {:>8} {:<8}",
                    field(s.id.as_str()),
                    s.env.as_str(),
                    field(&s.scope),
                    os_label(s.facts.as_ref()),
                    count(s.package_count),
                    count(s.upgradable_count),
                    s.last_status
                        .as_ref()
                        .map(|st| st.word())
                        .unwrap_or("never"),
                    age(s.last_success_at, now),
                    s.freshness(now, max_age).word(),
                )?;
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
                json_out(&doc)?;
                return Ok(());
            }
            outln!("host:          {}", field(s.id.as_str()))?;
            outln!("address:       {}", field(&s.address))?;
            outln!("env / scope:   {} / {}", s.env.as_str(), field(&s.scope))?;
            outln!("os:            {}", os_label(s.facts.as_ref()))?;
            if let Some(f) = &s.facts {
                outln!("kernel:        {} ({})", field(&f.kernel), field(&f.arch))?;
            }
            outln!(
                "packages:      {}",
                s.package_count
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "unknown".into())
            )?;
            outln!("patch level:   {}", patch_level(&s))?;
            outln!("last scan:     {}", when(s.last_attempt_at, now))?;
            if let Some(st) = &s.last_status {
                match st.error() {
                    None => outln!("  result:      ok")?,
                    Some(e) => outln!("  result:      {}: {}", st.word().to_uppercase(), field(e))?,
                }
            }
            outln!("last success:  {}", when(s.last_success_at, now))?;
            outln!(
                "inventory:     changed {}",
                when(s.inventory_changed_at, now)
            )?;
            let note = match freshness {
                Freshness::Fresh => String::new(),
                Freshness::Stale => format!(
                    "  (older than {} or the last scan failed: do not trust it as current)",
                    HumanDuration::from_millis(
                        u64::try_from(max_age.num_milliseconds()).unwrap_or_default()
                    )
                ),
                Freshness::Unknown => "  (never scanned successfully)".into(),
                Freshness::Changed => format!(
                    "  (a change started {} after the last successful scan: scan it to read \
                     what is installed now)",
                    when(s.last_change_at, now)
                ),
            };
            outln!("data:          {}{note}", freshness.word())?;
            if let Some(inv) = inventory {
                outln!()?;
                for p in inv.packages {
                    outln!(
                        "{}\t{}\t{}",
                        field(&p.name),
                        field(&p.version),
                        field(&p.arch)
                    )?;
                }
            }
            Ok(())
        }
        Command::Changes { host, limit, json } => {
            let id = HostId(host.clone());
            if store.host(&id).await.map_err(Failure::op)?.is_none() {
                return Err(Failure::new(
                    NOT_FOUND,
                    format!("no host `{host}` in the store"),
                ));
            }
            let changes = store.changes(&id, limit).await.map_err(Failure::op)?;
            if json {
                let all: Vec<_> = changes.iter().map(change_json).collect();
                json_out(&serde_json::Value::Array(all))?;
                return Ok(());
            }
            outln!(
                "{:>6} {:<8} {:<19} {:<11} {:<12} {:>6} {:<16}",
                "ID",
                "KIND",
                "STARTED",
                "OUTCOME",
                "SETTLED",
                "UNDOES",
                "ROLLOUT"
            )?;
            for c in &changes {
                outln!(
                    "{:>6} {:<8} {:<19} {:<11} {:<12} {:>6} {:<16}",
                    c.id,
                    c.kind.as_str(),
                    c.started_at.format("%Y-%m-%d %H:%M:%S"),
                    c.outcome.as_str(),
                    c.reconciled.map_or("-", |r| r.as_str()),
                    c.undoes.map_or_else(|| "-".to_string(), |u| u.to_string()),
                    c.rollout.as_deref().map_or(Cow::Borrowed("-"), field),
                )?;
            }
            Ok(())
        }
        Command::Trust { .. } => Ok(()),
    }
}

/// One journal entry as JSON; the request and rollback plan (JSON the engine wrote) as
/// values when they parse, as text otherwise.
fn change_json(c: &patchwave_store::ChangeRecord) -> serde_json::Value {
    let value = |text: &str| {
        serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.into()))
    };
    serde_json::json!({
        "id": c.id.0,
        "host": c.host.as_str(),
        "kind": c.kind,
        "plugin": c.plugin,
        "request": value(&c.request),
        "expected": c.expected,
        "rollback_plan": c.rollback_plan.as_deref().map(value),
        "started_at": c.started_at,
        "finished_at": c.finished_at,
        "outcome": c.outcome,
        "detail": c.detail,
        "reconciled": c.reconciled,
        "reconciled_at": c.reconciled_at,
        "rollout": c.rollout,
        "undoes": c.undoes.map(|u| u.0),
    })
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
    outln!(
        "{host} ({address}:{port}) presents {} {}",
        presented.key.algorithm(),
        presented.fingerprint
    )?;
    if let Some(want) = &expect {
        if *want != presented.fingerprint {
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
    let enrolled = match file.add(address, *port, &presented.key, AddMode::RefuseIfDifferent) {
        Ok(outcome) => return report(&outcome, known_hosts),
        Err(KnownHostsError::Conflict { existing, .. }) if replace => existing,
        Err(e) => return Err(Failure::op(e)),
    };
    // A changed key is replaced only when its fingerprint was checked: given with
    // --expect-fingerprint (compared above), or confirmed by the operator at a terminal.
    if expect.is_none() {
        confirm_replace(host, &enrolled, &presented.fingerprint)?;
    }
    let outcome = file
        .add(address, *port, &presented.key, AddMode::Replace)
        .map_err(Failure::op)?;
    report(&outcome, known_hosts)
}

fn report(outcome: &AddOutcome, known_hosts: &std::path::Path) -> Result<(), Failure> {
    match outcome {
        AddOutcome::Added => outln!("recorded in {}", known_hosts.display()),
        AddOutcome::AlreadyTrusted => outln!("already trusted in {}", known_hosts.display()),
        AddOutcome::Replaced { previous } => outln!(
            "recorded in {}, replacing {}",
            known_hosts.display(),
            previous.join(", ")
        ),
    }
}

/// Ask at the terminal whether `enrolled` may be replaced by `presented`. Without a
/// terminal on stdin and stderr there is no one to ask: refuse, naming the command that
/// replaces it once the new fingerprint has been checked out of band.
fn confirm_replace(host: &str, enrolled: &str, presented: &str) -> Result<(), Failure> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        let mut argv: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        argv.push("--expect-fingerprint".into());
        argv.push(presented.to_string());
        let command: Vec<String> = argv.iter().map(|a| shell_word(a)).collect();
        return Err(Failure::new(
            USAGE,
            format!(
                "{host}: enrolled key {enrolled} differs from the presented {presented}; not \
                 replacing it unconfirmed (no terminal to ask). Check {presented} out of band \
                 (e.g. `ssh-keygen -lf` of the host key on its console), then run:\n  {}",
                command.join(" ")
            ),
        ));
    }
    errln!(
        "{host}: the enrolled key differs from the one presented now.\n  enrolled:  {enrolled}\n  \
         presented: {presented}\nReplace it only if you checked {presented} out of band \
         (e.g. on the host's console).\nType `yes` to replace the enrolled key:"
    );
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::op(format!("reading the answer: {e}")))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure::new(USAGE, "not confirmed; nothing recorded"))
    }
}

/// `word` as one POSIX shell word: as it is when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
