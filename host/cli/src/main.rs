//! `patchwave`: the command-line entry point.
//!
//! Exit codes a script can rely on:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | done |
//! | 1 | operational failure (store, plugin runtime, IO) |
//! | 2 | usage or configuration error |
//! | 3 | scan finished, but at least one host failed (each is recorded) |
//! | 4 | audit log broken, cut or rewritten (`audit verify`, or any command opening it) |
//! | 5 | not found (unknown host, unknown plugin) |
//! | 141 | stdout was closed early (e.g. piped into `head`); the command stopped quietly |

mod commands;
mod defaults;
mod exit;
mod output;
mod setup;
mod term;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Failure;

/// patchwave: routine, staged, verified patching.
#[derive(Debug, Parser)]
#[command(name = "patchwave", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML). Without one, embedded defaults are used: local scans only,
    /// state in /var/lib/patchwave and plugins from /usr/lib/patchwave/plugins as root,
    /// else in ~/.local/state/patchwave and ~/.local/share/patchwave/plugins (XDG).
    #[arg(long, short = 'c', global = true, env = "PATCHWAVE_CONFIG")]
    config: Option<PathBuf>,

    /// Override the state directory (store, audit log, compiled-plugin cache).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,

    /// Override where plugins are loaded from.
    #[arg(long, global = true, env = "PATCHWAVE_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,

    /// Log filter for diagnostics on stderr (e.g. `info`, `patchwave=debug`).
    #[arg(long, global = true, env = "PATCHWAVE_LOG", default_value = "warn")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Scan hosts: facts, installed packages and upgradable candidates, into the store.
    Scan(commands::scan::Args),
    /// Read host records from the store (never touches the hosts).
    Hosts {
        #[command(subcommand)]
        command: commands::hosts::Command,
    },
    /// Inspect plugins.
    Plugin {
        #[command(subcommand)]
        command: commands::plugin::Command,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: commands::audit::Command,
    },
    /// Import advisory feeds (OSV, CISA KEV, EPSS) into the store.
    Advisories {
        #[command(subcommand)]
        command: commands::advisories::Command,
    },
    /// Staged rollouts: canary, soak, waves, gates, rollback.
    Rollout {
        #[command(subcommand)]
        command: commands::rollout::Command,
    },
    /// Findings: vulnerable packages per host, classified, with SLA due dates.
    Findings(commands::findings::Args),
    /// Print the base score and severity of a CVSS v3.0, v3.1 or v4.0 vector, e.g.
    /// `9.8 Critical`. Needs no configuration or store.
    Cvss {
        /// The vector, e.g. `CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H`.
        vector: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            term::stderr(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(exit::OPERATIONAL);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    // Commands that need no configuration, store or plugins.
    if let Command::Cvss { vector } = &cli.command {
        return commands::cvss::run(vector);
    }
    let ctx = setup::Context::new(cli.config, cli.state_dir, cli.plugin_dir)?;
    let result = match cli.command {
        Command::Scan(args) => commands::scan::run(&ctx, args).await,
        Command::Hosts { command } => commands::hosts::run(&ctx, command).await,
        Command::Plugin { command } => commands::plugin::run(&ctx, command).await,
        Command::Audit { command } => commands::audit::run(&ctx, command).await,
        Command::Advisories { command } => commands::advisories::run(&ctx, command).await,
        Command::Findings(args) => commands::findings::run(&ctx, args).await,
        Command::Rollout { command } => commands::rollout::run(&ctx, command).await,
        Command::Cvss { vector } => commands::cvss::run(&vector),
    };
    ctx.close().await;
    result
}
