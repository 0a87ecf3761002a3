//! Applying and rolling back package changes on one host, recorded before and after.
//!
//! An apply is refused unless the plugin can plan its rollback first; the plan is stored with
//! the change. If the host is lost while the change runs, the outcome is recorded as
//! `unknown` — the next successful scan settles it from the real inventory.

use std::sync::Arc;

use chrono::Utc;
use patchwave_core::change::{ChangeKind, ChangeOutcome, Expected, Reconciliation};
use patchwave_core::{ApplyReport, Change, PluginError, RollbackStep};
use patchwave_plugin_host::OsPlugin;
use patchwave_store::{ChangeId, NewChange, Store, StoreError};
use patchwave_transport::Transport;

use crate::snapshot::{HookError, SnapshotHooks};
use crate::watch::Watched;

/// How a recorded change ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeResult {
    /// The wanted state was read back.
    Applied(ApplyReport),
    /// It ran and the state read back is not the wanted one (the report says how).
    Failed(ApplyReport),
    /// It could not run, or the plugin failed before reporting.
    Error(PluginError),
    /// The host was lost mid-change: it may or may not have taken. Settled by the next scan.
    Unknown(PluginError),
}

impl ChangeResult {
    fn outcome(&self) -> ChangeOutcome {
        match self {
            ChangeResult::Applied(_) => ChangeOutcome::Applied,
            ChangeResult::Failed(_) | ChangeResult::Error(_) => ChangeOutcome::Failed,
            ChangeResult::Unknown(_) => ChangeOutcome::Unknown,
        }
    }

    fn detail(&self) -> String {
        match self {
            ChangeResult::Applied(r) | ChangeResult::Failed(r) => {
                serde_json::to_string(r).unwrap_or_else(|e| format!("unserializable report: {e}"))
            }
            ChangeResult::Error(e) | ChangeResult::Unknown(e) => e.to_string(),
        }
    }
}

/// A recorded change: its id, and how it ended.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The change's id in the store.
    pub id: ChangeId,
    /// How it ended.
    pub result: ChangeResult,
    /// For applies: the rollback planned (and stored) before applying.
    pub rollback_plan: Vec<RollbackStep>,
}

/// Errors that stop a change from being attempted at all.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The store failed; nothing was attempted after the failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No rollback could be planned, so the change was not applied.
    #[error("refusing to apply without a rollback plan: {0}")]
    NoRollbackPlan(PluginError),
    /// The configured snapshot could not be taken, so the change was not applied.
    #[error("refusing to apply without the configured snapshot: {0}")]
    NoSnapshot(HookError),
}

/// The snapshot hooks and the address they are given for one host.
#[derive(Clone, Copy)]
pub struct Snapshot<'a> {
    /// The configured hooks.
    pub hooks: &'a SnapshotHooks,
    /// The host's address, for `{address}`.
    pub address: &'a str,
}

async fn run_recorded(
    store: &dyn Store,
    new: NewChange,
    attempt: impl std::future::Future<Output = (Result<ApplyReport, PluginError>, bool)>,
) -> Result<(ChangeId, ChangeResult), StoreError> {
    let id = store.begin_change(&new).await?;
    let (result, lost) = attempt.await;
    let result = match result {
        Ok(report) if report.ok => ChangeResult::Applied(report),
        Ok(report) => ChangeResult::Failed(report),
        Err(e) if lost => ChangeResult::Unknown(e),
        Err(e) => ChangeResult::Error(e),
    };
    store
        .finish_change(id, result.outcome(), &result.detail(), Utc::now())
        .await?;
    Ok((id, result))
}

/// Plan the rollback, record the change, apply it, record how it ended.
pub async fn apply(
    store: &dyn Store,
    plugin: &dyn OsPlugin,
    transport: Arc<dyn Transport>,
    changes: &[Change],
) -> Result<Recorded, ChangeError> {
    apply_with(store, plugin, transport, changes, None, None).await
}

/// [`apply`], taking a snapshot with the configured hook (when given) after the plugin
/// planned the package rollback and before anything changes; its id becomes the plan's
/// last step. No snapshot, no apply. The change is recorded as made by `rollout`, if given.
pub async fn apply_with(
    store: &dyn Store,
    plugin: &dyn OsPlugin,
    transport: Arc<dyn Transport>,
    changes: &[Change],
    snapshot: Option<Snapshot<'_>>,
    rollout: Option<&str>,
) -> Result<Recorded, ChangeError> {
    let host = transport.host().clone();
    let mut plan = plugin
        .plan_rollback(transport.clone(), changes)
        .await
        .map_err(ChangeError::NoRollbackPlan)?;
    if let Some(s) = snapshot {
        let id = s
            .hooks
            .take(&host, s.address)
            .await
            .map_err(ChangeError::NoSnapshot)?;
        plan.push(RollbackStep::RestoreSnapshot { id });
    }
    let new = NewChange {
        host,
        kind: ChangeKind::Apply,
        plugin: plugin.name().to_string(),
        request: serde_json::to_string(changes).unwrap_or_default(),
        expected: Expected::after_apply(changes),
        rollback_plan: Some(serde_json::to_string(&plan).unwrap_or_default()),
        rollout: rollout.map(str::to_string),
        undoes: None,
        started_at: Utc::now(),
    };
    let watched = Watched::new(transport);
    let attempt = async {
        let r = plugin.apply(watched.clone(), changes).await;
        (r, watched.lost_host())
    };
    let (id, result) = run_recorded(store, new, attempt).await?;
    Ok(Recorded {
        id,
        result,
        rollback_plan: plan,
    })
}

/// Undo the recorded apply `applied`: record and carry out the rollback steps planned
/// before it, the rollback naming the apply by id.
pub async fn rollback(
    store: &dyn Store,
    plugin: &dyn OsPlugin,
    transport: Arc<dyn Transport>,
    applied: &Recorded,
) -> Result<Recorded, ChangeError> {
    let undoing = Undoing {
        apply: applied.id,
        rollout: None,
    };
    rollback_with(store, plugin, transport, &applied.rollback_plan, undoing).await
}

/// The apply a rollback undoes (a change of the same host, named by the rollback's record),
/// and the rollout that makes the rollback, if one does.
#[derive(Clone, Copy, Debug)]
pub struct Undoing<'a> {
    /// The recorded apply.
    pub apply: ChangeId,
    /// The rollout, recorded with the rollback.
    pub rollout: Option<&'a str>,
}

/// Record and carry out `steps`, undoing [`Undoing::apply`].
pub async fn rollback_with(
    store: &dyn Store,
    plugin: &dyn OsPlugin,
    transport: Arc<dyn Transport>,
    steps: &[RollbackStep],
    undoing: Undoing<'_>,
) -> Result<Recorded, ChangeError> {
    let expected = expected_after(steps);
    let new = NewChange {
        host: transport.host().clone(),
        kind: ChangeKind::Rollback,
        plugin: plugin.name().to_string(),
        request: serde_json::to_string(steps).unwrap_or_default(),
        expected,
        rollback_plan: None,
        rollout: undoing.rollout.map(str::to_string),
        undoes: Some(undoing.apply),
        started_at: Utc::now(),
    };
    let watched = Watched::new(transport);
    let attempt = async {
        let r = plugin.rollback(watched.clone(), steps).await;
        (r, watched.lost_host())
    };
    let (id, result) = run_recorded(store, new, attempt).await?;
    Ok(Recorded {
        id,
        result,
        rollback_plan: Vec::new(),
    })
}

/// What the host holds once `steps` are undone: each downgrade's version, each uninstalled
/// package gone.
pub fn expected_after(steps: &[RollbackStep]) -> Vec<Expected> {
    steps
        .iter()
        .filter_map(|s| match s {
            RollbackStep::Downgrade(c) => Some(Expected {
                name: c.name.clone(),
                version: Some(c.to.clone()),
            }),
            RollbackStep::Uninstall { name } => Some(Expected {
                name: name.clone(),
                version: None,
            }),
            _ => None,
        })
        .collect()
}

/// Record and carry out a snapshot restore with the operator's hook, then judge it from the
/// host's inventory read afterwards against `expected` (the hook's exit status only says
/// it ran): every package as expected is a success. Recorded as undoing [`Undoing::apply`].
pub async fn restore_snapshot(
    store: &dyn Store,
    plugin: &dyn OsPlugin,
    transport: Arc<dyn Transport>,
    snapshot: Snapshot<'_>,
    id: &str,
    expected: Vec<Expected>,
    undoing: Undoing<'_>,
) -> Result<Recorded, ChangeError> {
    let host = transport.host().clone();
    let steps = [RollbackStep::RestoreSnapshot { id: id.to_string() }];
    let new = NewChange {
        host: host.clone(),
        kind: ChangeKind::Rollback,
        plugin: "snapshot-hook".to_string(),
        request: serde_json::to_string(&steps).unwrap_or_default(),
        expected: expected.clone(),
        rollback_plan: None,
        rollout: undoing.rollout.map(str::to_string),
        undoes: Some(undoing.apply),
        started_at: Utc::now(),
    };
    let watched = Watched::new(transport);
    let attempt = async {
        if let Err(e) = snapshot.hooks.restore(&host, snapshot.address, id).await {
            return (
                Err(PluginError::Exec {
                    message: e.to_string(),
                }),
                false,
            );
        }
        let judged = match plugin.inventory(watched.clone()).await {
            Ok(inventory) => Reconciliation::judge(&expected, &inventory),
            Err(e) => return (Err(e), watched.lost_host()),
        };
        let ok = judged == Reconciliation::Took;
        let report = ApplyReport {
            ok,
            outcomes: Vec::new(),
            status: 0,
            output: format!(
                "restored snapshot {id}; the inventory read afterwards: {}",
                judged.as_str()
            ),
        };
        (Ok(report), false)
    };
    let (id, result) = run_recorded(store, new, attempt).await?;
    Ok(Recorded {
        id,
        result,
        rollback_plan: Vec::new(),
    })
}

/// The last three lines of a command's output, joined by ` | `, for one-line reports.
pub(crate) fn output_tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().rev().take(3).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}
