//! `patchwave plugin`.

use std::path::PathBuf;

use patchwave_engine::PluginSet;
use patchwave_plugin_host::LoadedPlugin;

use crate::exit::{Failure, NOT_FOUND, USAGE};
use crate::setup::Context;
use crate::term::outln;

/// Plugin subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List loaded plugins with their digests and grants.
    List,
    /// Show one plugin's manifest, what it declares, what the operator grants, and its limits.
    Inspect {
        /// Plugin name, or a path to a `.wasm` file.
        plugin: String,
    },
    /// Compare two versions with a plugin's ordering; prints exactly `<`, `=` or `>`.
    Compare {
        /// Plugin name.
        plugin: String,
        /// First version.
        a: String,
        /// Second version.
        b: String,
    },
}

async fn one(ctx: &Context, name: &str) -> Result<LoadedPlugin, Failure> {
    let runtime = ctx.runtime().await?;
    let path = if name.ends_with(".wasm") || name.contains('/') {
        PathBuf::from(name)
    } else {
        PluginSet::path_for(&ctx.config, name)
    };
    if !path.exists() {
        return Err(Failure::new(
            NOT_FOUND,
            format!("no plugin `{name}` (looked for {})", path.display()),
        ));
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let settings = ctx.config.plugin(&stem);
    let grants = settings.grants.to_plugin_grants();
    runtime
        .load(&path, grants, settings.limits)
        .await
        .map_err(Failure::op)
}

/// Run a plugin subcommand.
pub async fn run(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::List => {
            let runtime = ctx.runtime().await?;
            let set = ctx.plugins(&runtime).await?;
            outln!(
                "{:<12} {:<10} {:<16} {:<8} DIGEST",
                "NAME",
                "VERSION",
                "OS",
                "GRANTS"
            )?;
            for p in set.iter() {
                let m = p.manifest();
                let granted = p.granted().iter().filter(|g| m.wants.contains(g)).count();
                outln!(
                    "{:<12} {:<10} {:<16} {:<8} {}",
                    m.name,
                    m.version,
                    m.os_ids.join(","),
                    format!("{granted}/{}", m.wants.len()),
                    &p.digest()[..16]
                )?;
            }
            Ok(())
        }
        Command::Inspect { plugin } => {
            let p = one(ctx, &plugin).await?;
            let m = p.manifest();
            outln!("name:        {}", m.name)?;
            outln!("version:     {}", m.version)?;
            outln!("digest:      sha256:{}", p.digest())?;
            outln!("os ids:      {}", m.os_ids.join(", "))?;
            outln!("ecosystems:  {}", m.ecosystems.join(", "))?;
            let l = p.limits();
            outln!(
                "limits:      deadline {} ms compute per call, memory {} MiB, exec timeout {} ms",
                l.deadline_ms,
                l.memory_bytes >> 20,
                l.exec_timeout_ms
            )?;
            outln!("declares ({}):", m.wants.len())?;
            for g in &m.wants {
                let granted = p.granted().iter().any(|x| x == g);
                outln!("  [{}] {}", if granted { "granted" } else { "DENIED " }, g)?;
            }
            let extra: Vec<_> = p
                .granted()
                .iter()
                .filter(|g| !m.wants.contains(g))
                .collect();
            if !extra.is_empty() {
                outln!("operator grants not matching a declaration exactly (only the overlap can ever be used):")?;
                for g in extra {
                    outln!("  {}", g)?;
                }
            }
            Ok(())
        }
        Command::Compare { plugin, a, b } => {
            let p = one(ctx, &plugin).await?;
            let answers = p
                .compare_versions(&[(a.clone(), b.clone())])
                .await
                .map_err(Failure::op)?;
            match answers.into_iter().next() {
                Some(Ok(o)) => {
                    outln!(
                        "{}",
                        match o {
                            std::cmp::Ordering::Less => "<",
                            std::cmp::Ordering::Equal => "=",
                            std::cmp::Ordering::Greater => ">",
                        }
                    )?;
                    Ok(())
                }
                Some(Err(e)) => Err(Failure::new(USAGE, format!("invalid version: {e}"))),
                None => Err(Failure::op("plugin gave no answer")),
            }
        }
    }
}
