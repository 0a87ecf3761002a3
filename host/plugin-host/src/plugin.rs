//! A loaded plugin and the typed calls into it.

use std::path::Path;
use std::sync::Arc;

use patchwave_core::{
    ApplyReport, Change, EnvGrant, ExecGrant, Installed, Manifest, OsFacts, PackageOutcome, Pin,
    PluginError, RollbackStep, Transaction,
};
use patchwave_transport::{Command, Output, Transport, TransportError};
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::audit::AuditLog;
use crate::bindings::{types, OsPlugin, OsPluginPre};
use crate::limits::Limits;
use crate::runtime::{LoadError, EPOCH_TICK};
use crate::state::{CallState, PluginIdentity};

/// What the operator grants a plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginGrants {
    /// Everything the plugin's manifest declares (an explicit operator choice).
    Manifest,
    /// Exactly these (still intersected with what the manifest declares).
    List(Vec<ExecGrant>),
}

/// A compiled, linked plugin ready to be called many times, concurrently.
pub struct LoadedPlugin {
    pre: OsPluginPre<CallState>,
    identity: Arc<PluginIdentity>,
    manifest: Manifest,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.identity.name)
            .field("digest", &self.identity.digest)
            .finish()
    }
}

/// Stands in for a target while the manifest is read: it refuses every command.
struct NoTarget(patchwave_core::HostId);

#[async_trait::async_trait]
impl Transport for NoTarget {
    fn host(&self) -> &patchwave_core::HostId {
        &self.0
    }
    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        Err(TransportError::Config {
            host: self.0.clone(),
            detail: format!("`{}`: no target host while reading a manifest", cmd.program),
        })
    }
}

impl LoadedPlugin {
    pub(crate) async fn new(
        path: &Path,
        pre: OsPluginPre<CallState>,
        digest: String,
        grants: PluginGrants,
        limits: Limits,
        audit: Arc<AuditLog>,
    ) -> Result<Self, LoadError> {
        let name_hint = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Read the manifest with no grants at all.
        let probe = Arc::new(PluginIdentity {
            name: name_hint,
            digest: digest.clone(),
            declared: Vec::new(),
            granted: Vec::new(),
            limits: limits.clone(),
            audit: audit.clone(),
        });
        let mut plugin = LoadedPlugin {
            pre,
            identity: probe,
            manifest: Manifest {
                name: String::new(),
                version: String::new(),
                os_ids: vec![],
                ecosystems: vec![],
                wants: vec![],
            },
        };
        let target: Arc<dyn Transport> = Arc::new(NoTarget("(manifest)".into()));
        let (mut store, inst) =
            plugin
                .instantiate(target)
                .await
                .map_err(|source| LoadError::Manifest {
                    path: path.to_path_buf(),
                    source,
                })?;
        let raw = inst.patchwave_plugin_os().call_manifest(&mut store).await;
        let manifest = plugin
            .finish(&mut store, "manifest", raw)
            .map_err(|source| LoadError::Manifest {
                path: path.to_path_buf(),
                source,
            })?;
        let manifest = manifest_from(manifest);
        let mut problems: Vec<String> = Vec::new();
        if manifest.name.is_empty() {
            problems.push("manifest has an empty name".into());
        }
        for g in &manifest.wants {
            for p in g.problems() {
                problems.push(format!("manifest wants `{}`: {p}", g.program));
            }
        }
        let granted = match grants {
            PluginGrants::Manifest => manifest.wants.clone(),
            PluginGrants::List(list) => {
                for g in &list {
                    for p in g.problems() {
                        problems.push(format!("grant `{}`: {p}", g.program));
                    }
                }
                list
            }
        };
        if !problems.is_empty() {
            return Err(LoadError::Config {
                path: path.to_path_buf(),
                message: problems.join("; "),
            });
        }
        plugin.identity = Arc::new(PluginIdentity {
            name: manifest.name.clone(),
            digest,
            declared: manifest.wants.clone(),
            granted,
            limits,
            audit,
        });
        plugin.manifest = manifest;
        Ok(plugin)
    }

    /// The plugin's manifest, read at load.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the plugin's wasm.
    pub fn digest(&self) -> &str {
        &self.identity.digest
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// The grants in force (declared ∩ granted decides each request).
    pub fn granted(&self) -> &[ExecGrant] {
        &self.identity.granted
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &Limits {
        &self.identity.limits
    }

    /// A fresh store and instance for one call against `target`.
    async fn instantiate(
        &self,
        target: Arc<dyn Transport>,
    ) -> Result<(Store<CallState>, OsPlugin), PluginError> {
        let state = CallState::new(self.identity.clone(), target);
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        let deadline = self.identity.limits.deadline();
        let ticks = |left: std::time::Duration| {
            (left.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
        };
        store.set_epoch_deadline(ticks(deadline));
        // Only time spent computing counts: time parked in `exec` is given back.
        store.epoch_deadline_callback(move |mut ctx| {
            let used = ctx.data().compute_used();
            if used >= deadline {
                ctx.data_mut().deadline_hit = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Continue(ticks(deadline - used)))
            }
        });
        let inst =
            self.pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| PluginError::Runtime {
                    message: format!("instantiating `{}`: {e:#}", self.identity.name),
                })?;
        Ok((store, inst))
    }

    /// Create a fresh store and instance, then drop both without calling the guest: the
    /// fixed cost every call pays. Only for `benches/plugin.rs`; not part of the API.
    #[doc(hidden)]
    pub async fn bench_instantiate(&self) -> Result<(), PluginError> {
        let target: Arc<dyn Transport> = Arc::new(NoTarget("(bench)".into()));
        let (_store, _instance) = self.instantiate(target).await?;
        Ok(())
    }

    /// Turn a call's wasmtime result into a typed one, reporting what the guest printed.
    fn finish<R>(
        &self,
        store: &mut Store<CallState>,
        function: &str,
        result: wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let state = store.data();
        let stdout = state.stdout.contents();
        let stderr = state.stderr.contents();
        let plugin = self.identity.name.clone();
        if !stdout.is_empty() {
            tracing::debug!(%plugin, function, stdout = %String::from_utf8_lossy(&stdout), "plugin stdout");
        }
        if state.log_dropped > 0 {
            tracing::warn!(%plugin, function, dropped = state.log_dropped, "plugin log lines over the limit were dropped");
        }
        let err = match result {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let function = function.to_string();
        if state.deadline_hit || matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            return Err(PluginError::Deadline {
                plugin,
                function,
                limit_ms: self.identity.limits.deadline_ms,
            });
        }
        if state.limiter.hit {
            return Err(PluginError::MemoryLimit {
                plugin,
                function,
                limit_bytes: self.identity.limits.memory_bytes,
            });
        }
        let stderr = String::from_utf8_lossy(&stderr);
        let message = match stderr.find("panicked at") {
            Some(i) => stderr[i..].trim().to_string(),
            None if !stderr.trim().is_empty() => format!("{err:#}; stderr: {}", stderr.trim()),
            None => format!("{err:#}"),
        };
        tracing::warn!(%plugin, %function, %message, "plugin trapped");
        Err(PluginError::Trap {
            plugin,
            function,
            message,
        })
    }

    fn check_len(&self, function: &str, what: &str, len: usize) -> Result<(), PluginError> {
        let max = self.identity.limits.max_items;
        if len > max {
            return Err(PluginError::ResultTooLarge {
                plugin: self.identity.name.clone(),
                function: function.to_string(),
                detail: format!("{len} {what}, more than the limit of {max}"),
            });
        }
        Ok(())
    }

    /// Facts about the target's OS.
    pub async fn facts(&self, target: Arc<dyn Transport>) -> Result<OsFacts, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let raw = inst.patchwave_plugin_os().call_facts(&mut store).await;
        let facts = self.finish(&mut store, "facts", raw)?.map_err(error_from)?;
        Ok(OsFacts {
            id: facts.id,
            version_id: facts.version_id,
            codename: facts.codename,
            pretty_name: facts.pretty_name,
            kernel: facts.kernel,
            arch: facts.arch,
            reboot_required: facts.reboot_required,
        })
    }

    /// Every installed package on the target.
    pub async fn inventory(
        &self,
        target: Arc<dyn Transport>,
    ) -> Result<Vec<Installed>, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let raw = inst.patchwave_plugin_os().call_inventory(&mut store).await;
        let table = self
            .finish(&mut store, "inventory", raw)?
            .map_err(error_from)?;
        self.check_len("inventory", "packages", table.spans.len() / 8)?;
        unpack_table(&table).map_err(|detail| PluginError::Malformed {
            plugin: self.identity.name.clone(),
            function: "inventory".to_string(),
            detail,
        })
    }

    /// Packages with a newer candidate (held packages excluded).
    pub async fn upgradable(
        &self,
        target: Arc<dyn Transport>,
    ) -> Result<Vec<Installed>, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let raw = inst.patchwave_plugin_os().call_upgradable(&mut store).await;
        let table = self
            .finish(&mut store, "upgradable", raw)?
            .map_err(error_from)?;
        self.check_len("upgradable", "packages", table.spans.len() / 8)?;
        unpack_table(&table).map_err(|detail| PluginError::Malformed {
            plugin: self.identity.name.clone(),
            function: "upgradable".to_string(),
            detail,
        })
    }

    /// Compare version pairs in the plugin's ecosystem; one answer per pair.
    pub async fn compare_versions(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Result<std::cmp::Ordering, String>>, PluginError> {
        let target: Arc<dyn Transport> = Arc::new(NoTarget("(compare)".into()));
        let (mut store, inst) = self.instantiate(target).await?;
        let raw = inst
            .patchwave_plugin_os()
            .call_compare_versions(&mut store, pairs)
            .await;
        let list = self.finish(&mut store, "compare-versions", raw)?;
        if list.len() != pairs.len() {
            return Err(PluginError::Runtime {
                message: format!(
                    "`{}` answered {} comparisons for {} pairs",
                    self.identity.name,
                    list.len(),
                    pairs.len()
                ),
            });
        }
        Ok(list
            .into_iter()
            .map(|r| {
                r.map(|o| match o {
                    types::Ordering::Less => std::cmp::Ordering::Less,
                    types::Ordering::Equal => std::cmp::Ordering::Equal,
                    types::Ordering::Greater => std::cmp::Ordering::Greater,
                })
            })
            .collect())
    }

    /// What applying `changes` would do on the target now, from the package manager's own
    /// simulation (read-only): every package it would install, upgrade, downgrade or remove.
    pub async fn plan_apply(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<Transaction, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let changes: Vec<types::Change> = changes.iter().map(change_to).collect();
        let raw = inst
            .patchwave_plugin_os()
            .call_plan_apply(&mut store, &changes)
            .await;
        let tx = self
            .finish(&mut store, "plan-apply", raw)?
            .map_err(error_from)?;
        self.check_len(
            "plan-apply",
            "packages",
            tx.changes.len().saturating_add(tx.removals.len()),
        )?;
        Ok(Transaction {
            changes: tx.changes.into_iter().map(change_from).collect(),
            removals: tx
                .removals
                .into_iter()
                .map(|p| Pin {
                    name: p.name,
                    version: p.version,
                })
                .collect(),
        })
    }

    /// Steps that would undo `changes`, decided before applying them.
    pub async fn plan_rollback(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<Vec<RollbackStep>, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let changes: Vec<types::Change> = changes.iter().map(change_to).collect();
        let raw = inst
            .patchwave_plugin_os()
            .call_plan_rollback(&mut store, &changes)
            .await;
        let steps = self
            .finish(&mut store, "plan-rollback", raw)?
            .map_err(error_from)?;
        self.check_len("plan-rollback", "steps", steps.len())?;
        Ok(steps.into_iter().map(step_from).collect())
    }

    /// Install exact versions; the report carries the state read back afterwards.
    pub async fn apply(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<ApplyReport, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let changes: Vec<types::Change> = changes.iter().map(change_to).collect();
        let raw = inst
            .patchwave_plugin_os()
            .call_apply(&mut store, &changes)
            .await;
        let report = self.finish(&mut store, "apply", raw)?.map_err(error_from)?;
        self.check_len("apply", "outcomes", report.outcomes.len())?;
        Ok(report_from(report))
    }

    /// Carry out rollback steps.
    pub async fn rollback(
        &self,
        target: Arc<dyn Transport>,
        steps: &[RollbackStep],
    ) -> Result<ApplyReport, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let steps: Vec<types::RollbackStep> = steps.iter().map(step_to).collect();
        let raw = inst
            .patchwave_plugin_os()
            .call_rollback(&mut store, &steps)
            .await;
        let report = self
            .finish(&mut store, "rollback", raw)?
            .map_err(error_from)?;
        self.check_len("rollback", "outcomes", report.outcomes.len())?;
        Ok(report_from(report))
    }

    /// Read-only check that `changes` really took: per change, the state the package
    /// database holds now (`ok` when the package is installed and fully configured at
    /// `to`). The plugin first waits, bounded, for a package operation still running on
    /// the target to finish.
    pub async fn verify(
        &self,
        target: Arc<dyn Transport>,
        changes: &[Change],
    ) -> Result<ApplyReport, PluginError> {
        let (mut store, inst) = self.instantiate(target).await?;
        let changes: Vec<types::Change> = changes.iter().map(change_to).collect();
        let raw = inst
            .patchwave_plugin_os()
            .call_verify(&mut store, &changes)
            .await;
        let report = self
            .finish(&mut store, "verify", raw)?
            .map_err(error_from)?;
        self.check_len("verify", "outcomes", report.outcomes.len())?;
        Ok(report_from(report))
    }
}

fn manifest_from(m: types::PluginManifest) -> Manifest {
    Manifest {
        name: m.name,
        version: m.version,
        os_ids: m.os_ids,
        ecosystems: m.ecosystems,
        wants: m
            .wants
            .into_iter()
            .map(|g| ExecGrant {
                program: g.program,
                args: g.args,
                each: g.each,
                env: g
                    .env
                    .into_iter()
                    .map(|e| EnvGrant {
                        name: e.name,
                        value: e.value,
                        secret: e.secret,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Read a packed `package-table` (see `wit/plugin.wit`): eight byte offsets per package,
/// start and end of its name, version, architecture and source, into one text. A span must
/// not be reversed, run past the text or cut a character; names, versions and architectures
/// must not be empty.
fn unpack_table(table: &types::PackageTable) -> Result<Vec<Installed>, String> {
    let (text, spans) = (table.text.as_str(), table.spans.as_slice());
    if !spans.len().is_multiple_of(8) {
        return Err(format!(
            "package table has {} offsets, not eight per package",
            spans.len()
        ));
    }
    let field = |i: usize, what: &str, s: &[u32]| {
        let (start, end) = (s[0] as usize, s[1] as usize);
        text.get(start..end).ok_or_else(|| {
            format!(
                "package {i}: {what} span {start}..{end} is reversed, past the text ({} bytes) \
                 or cuts a character",
                text.len()
            )
        })
    };
    let mut out = Vec::with_capacity(spans.len() / 8);
    for (i, s) in spans.chunks_exact(8).enumerate() {
        let name = field(i, "name", &s[0..2])?;
        let version = field(i, "version", &s[2..4])?;
        let arch = field(i, "architecture", &s[4..6])?;
        let source = field(i, "source", &s[6..8])?;
        if name.is_empty() || version.is_empty() || arch.is_empty() {
            return Err(format!(
                "package {i} ({name:?}) has an empty name, version or architecture"
            ));
        }
        out.push(Installed {
            name: name.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
            source: (!source.is_empty()).then(|| source.to_string()),
        });
    }
    Ok(out)
}

fn change_to(c: &Change) -> types::Change {
    types::Change {
        name: c.name.clone(),
        from: c.from.clone(),
        to: c.to.clone(),
    }
}

fn change_from(c: types::Change) -> Change {
    Change {
        name: c.name,
        from: c.from,
        to: c.to,
    }
}

fn step_from(s: types::RollbackStep) -> RollbackStep {
    match s {
        types::RollbackStep::Downgrade(c) => RollbackStep::Downgrade(change_from(c)),
        types::RollbackStep::Uninstall(name) => RollbackStep::Uninstall { name },
        types::RollbackStep::Hold(p) => RollbackStep::Hold(Pin {
            name: p.name,
            version: p.version,
        }),
        types::RollbackStep::Unhold(name) => RollbackStep::Unhold { name },
        types::RollbackStep::RestoreSnapshot(id) => RollbackStep::RestoreSnapshot { id },
    }
}

fn step_to(s: &RollbackStep) -> types::RollbackStep {
    match s {
        RollbackStep::Downgrade(c) => types::RollbackStep::Downgrade(change_to(c)),
        RollbackStep::Uninstall { name } => types::RollbackStep::Uninstall(name.clone()),
        RollbackStep::Hold(p) => types::RollbackStep::Hold(types::Pin {
            name: p.name.clone(),
            version: p.version.clone(),
        }),
        RollbackStep::Unhold { name } => types::RollbackStep::Unhold(name.clone()),
        RollbackStep::RestoreSnapshot { id } => types::RollbackStep::RestoreSnapshot(id.clone()),
    }
}

fn report_from(r: types::ApplyReport) -> ApplyReport {
    ApplyReport {
        ok: r.ok,
        outcomes: r
            .outcomes
            .into_iter()
            .map(|o| PackageOutcome {
                name: o.name,
                wanted: o.wanted,
                found: o.found,
                state: o.state,
                ok: o.ok,
            })
            .collect(),
        status: r.status,
        output: r.output,
    }
}

fn error_from(e: types::PluginError) -> PluginError {
    match e {
        types::PluginError::Unsupported(message) => PluginError::Unsupported { message },
        types::PluginError::CommandFailed(f) => PluginError::CommandFailed {
            program: f.program,
            status: f.status,
            output: f.output,
        },
        types::PluginError::Parse(message) => PluginError::Parse { message },
        types::PluginError::Denied(message) => PluginError::Denied { message },
        types::PluginError::Exec(message) => PluginError::Exec { message },
        types::PluginError::InvalidInput(message) => PluginError::InvalidInput { message },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(text: &str, spans: &[u32]) -> types::PackageTable {
        types::PackageTable {
            text: text.to_string(),
            spans: spans.to_vec(),
        }
    }

    #[test]
    fn package_tables_unpack_field_by_field() {
        // Fields cut out of a line of text, in any order, plus an empty source span.
        let t = table(
            "ii libc6 2.36-9 amd64 glibc|zé 1 all",
            &[3, 8, 9, 15, 16, 21, 22, 27, 28, 31, 32, 33, 34, 37, 0, 0],
        );
        assert_eq!(
            unpack_table(&t).unwrap(),
            vec![
                Installed {
                    name: "libc6".into(),
                    version: "2.36-9".into(),
                    arch: "amd64".into(),
                    source: Some("glibc".into()),
                },
                Installed {
                    name: "zé".into(),
                    version: "1".into(),
                    arch: "all".into(),
                    source: None,
                },
            ]
        );
        assert_eq!(unpack_table(&table("", &[])).unwrap(), vec![]);
    }

    #[test]
    fn malformed_package_tables_are_refused_with_the_reason() {
        let cases: &[(&str, &[u32], &str)] = &[
            ("abc", &[0, 1, 1, 2, 2, 3], "not eight per package"),
            (
                "abcd",
                &[2, 1, 1, 2, 2, 3, 0, 0],
                "name span 2..1 is reversed",
            ),
            ("abcd", &[0, 1, 1, 2, 2, 9, 0, 0], "architecture span 2..9"),
            ("éabc", &[0, 1, 2, 3, 3, 4, 0, 0], "name span 0..1"),
            (
                "bcd",
                &[0, 0, 1, 2, 2, 3, 0, 0],
                "empty name, version or architecture",
            ),
        ];
        for (text, spans, why) in cases {
            let err = unpack_table(&table(text, spans)).unwrap_err();
            assert!(err.contains(why), "{text:?} {spans:?}: {err}");
        }
    }
}
