//! The rollout executor: the imperative shell around `patchwave_rollout::decide`.
//!
//! One [`Executor::tick`] loads a rollout, feeds `decide` the operator observations posted
//! since the last save, **saves the next state before acting** (that is where intents such
//! as "applying on h03" are recorded), executes the host actions (apply, verify,
//! reconcile, rollback, health), feeds their outcomes back and repeats, until the rollout
//! waits (soak, window, approval) or is finished. A runner killed anywhere leaves a saved
//! state whose in-flight hosts `decide` reconciles by re-inventory on the next tick, never
//! applying twice. Saves carry the revision that was loaded, so two runners never both
//! advance one rollout.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchwave_core::audit::OperatorEvent;
use patchwave_core::change::{ChangeKind, Expected, Reconciliation};
use patchwave_core::{
    ApplyReport, Change, HostId, Installed, PluginError, RollbackStep, Transaction,
};
use patchwave_plugin_host::{AuditLog, OsPlugin};
use patchwave_rollout::{
    decide, Action, Observation, Outcome, ReleaseManifest, Rollout, StageId, Verdict,
};
use patchwave_store::{ChangeId, ScanResult, Store, StoreError};
use patchwave_transport::Transport;
use serde::{Deserialize, Serialize};

use crate::change::{self, ChangeError, ChangeResult, Snapshot, Undoing};
use crate::plugins::PluginSet;
use crate::scan::{choose_plugin, scan_and_record, HostTarget};
use crate::snapshot::{RestoreWhen, SnapshotHooks};
use crate::watch::Watched;

/// Decisions one tick may take before it gives up (a rollout that never waits or finishes
/// would be a bug in `decide`; the state saved so far is kept).
const MAX_STEPS: usize = 10_000;

/// What gates a stage on health: the engine's health sources.
#[async_trait]
pub trait HealthGate: Send + Sync {
    /// Record the sources' values before `stage` starts.
    async fn capture_baseline(&self, stage: &StageId) -> serde_json::Value;
    /// The combined verdict for the patched `hosts` (id, address), against `baseline`,
    /// with one line per source for the record.
    async fn check(
        &self,
        baseline: Option<&serde_json::Value>,
        hosts: &[(HostId, String)],
    ) -> (Verdict, Vec<String>);
}

/// No health sources configured: every check is a go (the gate still requires every host
/// verified and the failure budgets kept).
pub struct NoHealthSources;

#[async_trait]
impl HealthGate for NoHealthSources {
    async fn capture_baseline(&self, _stage: &StageId) -> serde_json::Value {
        serde_json::Value::Null
    }

    async fn check(
        &self,
        _baseline: Option<&serde_json::Value>,
        _hosts: &[(HostId, String)],
    ) -> (Verdict, Vec<String>) {
        (Verdict::Go, vec!["no health sources configured".into()])
    }
}

#[async_trait]
impl HealthGate for crate::health::HealthSources {
    async fn capture_baseline(&self, _stage: &StageId) -> serde_json::Value {
        let baseline = crate::health::HealthSources::capture_baseline(self).await;
        serde_json::to_value(&baseline).unwrap_or(serde_json::Value::Null)
    }

    async fn check(
        &self,
        baseline: Option<&serde_json::Value>,
        hosts: &[(HostId, String)],
    ) -> (Verdict, Vec<String>) {
        let baseline: Option<crate::health::Baseline> =
            baseline.and_then(|b| serde_json::from_value(b.clone()).ok());
        let report = crate::health::HealthSources::check(self, baseline.as_ref(), hosts).await;
        let lines = report.lines();
        (report.verdict, lines)
    }
}

/// What the store keeps for a rollout: the pure state plus what only the engine knows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredRollout {
    /// The state `decide` works on.
    pub rollout: Rollout,
    /// Health baselines captured before each stage, by stage name.
    #[serde(default)]
    pub baselines: BTreeMap<String, serde_json::Value>,
    /// The last health report lines, by stage name.
    #[serde(default)]
    pub health: BTreeMap<String, Vec<String>>,
}

/// Why a tick failed. The state saved before the failure stands.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// No rollout with this id.
    #[error("no rollout `{0}`")]
    NotFound(String),
    /// A new rollout's id breaks the id rule ([`patchwave_core::id`]); nothing was stored.
    #[error("rollout id {0}")]
    InvalidId(patchwave_core::IdError),
    /// The store failed or another runner advanced the rollout.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log refused the record of an operator's act; the act was not done.
    #[error("not done: the audit log could not record it: {0}")]
    Audit(String),
    /// The stored state could not be read.
    #[error("rollout `{id}`: stored state unreadable: {detail}")]
    Corrupt {
        /// The rollout.
        id: String,
        /// Why.
        detail: String,
    },
    /// `decide` never reached a wait or the end.
    #[error("rollout `{0}` made {MAX_STEPS} decisions in one tick without waiting or finishing")]
    NoProgress(String),
}

/// How a tick ended.
#[derive(Debug)]
pub struct TickReport {
    /// The state saved last.
    pub rollout: Rollout,
    /// Decisions taken (each one saved).
    pub decisions: usize,
    /// What the rollout waits for now (`None` when finished).
    pub waiting: Option<String>,
    /// How it ended, when it did.
    pub outcome: Option<Outcome>,
}

/// Runs rollouts against the fleet.
pub struct Executor {
    store: Arc<dyn Store>,
    plugins: Arc<PluginSet>,
    targets: HashMap<HostId, HostTarget>,
    health: Arc<dyn HealthGate>,
    concurrency: usize,
    audit: Arc<AuditLog>,
    snapshot: Option<Arc<SnapshotHooks>>,
    /// The plugin chosen for each host (by its facts) the first time a step needed it.
    chosen: Arc<Chosen>,
}

/// Plugins chosen per host, so a host's facts are read once per executor, not per step.
type Chosen = std::sync::Mutex<HashMap<HostId, Arc<dyn OsPlugin>>>;

fn corrupt(id: &str, e: impl std::fmt::Display) -> RolloutError {
    RolloutError::Corrupt {
        id: id.to_string(),
        detail: e.to_string(),
    }
}

/// Write an operator's act on a rollout to the audit log. It is written before the act is
/// stored, so an act the log could not take is not done.
fn audit_event(
    audit: &AuditLog,
    event: &str,
    rollout: &str,
    by: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), RolloutError> {
    audit
        .append(&OperatorEvent {
            time: now,
            event: event.to_string(),
            rollout: rollout.to_string(),
            by: by.to_string(),
            detail,
        })
        .map_err(|e| RolloutError::Audit(e.to_string()))
}

/// Audit an operator observation posted to rollout `id` (`Start` is audited by
/// [`Executor::create`] as `rollout-created`; host and health observations are not
/// operator acts and are not written).
pub fn audit_operator(
    audit: &AuditLog,
    id: &str,
    observation: &Observation,
    now: DateTime<Utc>,
) -> Result<(), RolloutError> {
    match observation {
        Observation::Approved { by } => audit_event(
            audit,
            "rollout-approved",
            id,
            by,
            serde_json::json!({}),
            now,
        ),
        Observation::Abort { by, reason } => audit_event(
            audit,
            "rollout-aborted",
            id,
            by,
            serde_json::json!({ "reason": reason }),
            now,
        ),
        Observation::RollbackRequested { by } => audit_event(
            audit,
            "rollout-rollback-requested",
            id,
            by,
            serde_json::json!({}),
            now,
        ),
        _ => Ok(()),
    }
}

/// Post an operator's act (`Approved`, `Abort`, `RollbackRequested`, ...) to rollout `id`'s
/// inbox for its next tick, audited first (an act the log cannot record is not posted).
/// Needs no plugins or hosts, so a command that only posts opens only the store and the log.
/// Returns the inbox sequence number.
pub async fn post(
    store: &dyn Store,
    audit: &AuditLog,
    id: &str,
    observation: &Observation,
    now: DateTime<Utc>,
) -> Result<i64, RolloutError> {
    if store.rollout(id).await?.is_none() {
        return Err(RolloutError::NotFound(id.to_string()));
    }
    audit_operator(audit, id, observation, now)?;
    let value = serde_json::to_value(observation).map_err(|e| corrupt(id, e))?;
    Ok(store.post_rollout_observation(id, &value, now).await?)
}

/// The ids of every rollout that is not final, in the order the store lists them: what a
/// tick without ids advances. Decided from the status word stored with each save
/// ([`patchwave_rollout::Status::word`]), so a tick does not read every rollout's state.
pub async fn unfinished(store: &dyn Store) -> Result<Vec<String>, RolloutError> {
    Ok(store
        .rollouts()
        .await?
        .into_iter()
        .filter(|r| !patchwave_rollout::Status::word_is_final(&r.status))
        .map(|r| r.id)
        .collect())
}

impl Executor {
    /// An executor over these hosts (by id), plugins and store, running at most
    /// `concurrency` host steps at once, auditing operator acts to `audit` (the plugins'
    /// audit log).
    pub fn new(
        store: Arc<dyn Store>,
        plugins: Arc<PluginSet>,
        targets: Vec<HostTarget>,
        health: Arc<dyn HealthGate>,
        concurrency: usize,
        audit: Arc<AuditLog>,
    ) -> Executor {
        Executor {
            store,
            plugins,
            targets: targets
                .into_iter()
                .map(|t| (t.config.id.clone(), t))
                .collect(),
            health,
            concurrency: concurrency.max(1),
            audit,
            snapshot: None,
            chosen: Arc::default(),
        }
    }

    /// Take a snapshot with these hooks before every apply, and restore it when a rollback
    /// needs it (see [`crate::snapshot`]).
    pub fn with_snapshots(mut self, hooks: Arc<SnapshotHooks>) -> Executor {
        self.snapshot = Some(hooks);
        self
    }

    /// Store a new rollout (status `planned`; it starts with a `Start` observation); its id
    /// must follow the id rule ([`patchwave_core::id`]). The
    /// audit log gets `rollout-created` (manifest, pins, hosts per stage) and, for a plan
    /// forced past refused anti-patterns, `rollout-forced` with the reason and every refusal
    /// overridden, before the rollout is stored.
    pub async fn create(
        &self,
        rollout: Rollout,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RolloutError> {
        let id = rollout.id().to_string();
        patchwave_core::check_id(&id).map_err(RolloutError::InvalidId)?;
        let plan = rollout.plan();
        let stages: Vec<serde_json::Value> = plan
            .stages()
            .iter()
            .map(|s| serde_json::json!({ "stage": s.id.to_string(), "hosts": s.hosts.len() }))
            .collect();
        let manifest = serde_json::to_value(plan.manifest()).map_err(|e| corrupt(&id, e))?;
        audit_event(
            &self.audit,
            "rollout-created",
            &id,
            by,
            serde_json::json!({ "manifest": manifest, "stages": stages }),
            now,
        )?;
        if let Some(forced) = plan.forced() {
            audit_event(
                &self.audit,
                "rollout-forced",
                &id,
                &forced.by,
                serde_json::json!({
                    "reason": forced.reason,
                    "overridden": forced.overridden.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
                now,
            )?;
        }
        let stored = StoredRollout {
            rollout,
            baselines: BTreeMap::new(),
            health: BTreeMap::new(),
        };
        let state = serde_json::to_value(&stored).map_err(|e| corrupt(&id, e))?;
        self.store
            .create_rollout(&id, stored.rollout.status().word(), &state, now)
            .await?;
        Ok(())
    }

    /// Post an operator observation (audited first, see [`audit_operator`]); the next tick
    /// acts on it.
    pub async fn post(
        &self,
        id: &str,
        observation: &Observation,
        now: DateTime<Utc>,
    ) -> Result<i64, RolloutError> {
        post(self.store.as_ref(), &self.audit, id, observation, now).await
    }

    /// What a host step on `target` works with, for rollout `rollout` (`None` when no
    /// rollout is running yet, as for a preview).
    fn step_context(&self, target: HostTarget, rollout: Option<Arc<RolloutRef>>) -> StepContext {
        StepContext {
            store: self.store.clone(),
            plugins: self.plugins.clone(),
            chosen: self.chosen.clone(),
            target,
            snapshot: self.snapshot.clone(),
            rollout,
        }
    }

    /// Ask each planned host's plugin how it would undo its changes (`plan-rollback`, which
    /// reads the host and changes nothing), at most `concurrency` hosts at once. The plan
    /// recorded at apply time is made the same way, just before the apply.
    pub async fn preview_rollbacks(
        &self,
        plan: &patchwave_rollout::Plan,
    ) -> BTreeMap<HostId, Result<Vec<RollbackStep>, String>> {
        let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        let mut out = BTreeMap::new();
        for stage in plan.stages() {
            for planned in &stage.hosts {
                if planned.changes.is_empty() {
                    continue;
                }
                let Some(target) = self.targets.get(&planned.host).cloned() else {
                    out.insert(
                        planned.host.clone(),
                        Err("not in the configuration".to_string()),
                    );
                    continue;
                };
                let (ctx, gate) = (self.step_context(target, None), gate.clone());
                let changes = planned.changes.clone();
                tasks.spawn(async move {
                    let _slot = gate.acquire_owned().await;
                    let host = ctx.target.config.id.clone();
                    let transport = ctx.target.transport.clone();
                    let steps = match ctx.plugin(transport.clone()).await {
                        Ok(plugin) => plugin.plan_rollback(transport, &changes).await,
                        Err(e) => Err(e),
                    };
                    (host, steps.map_err(|e| e.to_string()))
                });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok((host, steps)) = joined {
                out.insert(host, steps);
            }
        }
        out
    }

    /// Load a rollout's stored state.
    pub async fn load(&self, id: &str) -> Result<StoredRollout, RolloutError> {
        let record = self
            .store
            .rollout(id)
            .await?
            .ok_or_else(|| RolloutError::NotFound(id.to_string()))?;
        serde_json::from_value(record.state).map_err(|e| corrupt(id, e))
    }

    /// Advance a rollout as far as it goes now (see the module documentation). `clock`
    /// gives the time of each decision.
    pub async fn tick(
        &self,
        id: &str,
        clock: &(dyn Fn() -> DateTime<Utc> + Sync),
    ) -> Result<TickReport, RolloutError> {
        let record = self
            .store
            .rollout(id)
            .await?
            .ok_or_else(|| RolloutError::NotFound(id.to_string()))?;
        let mut stored: StoredRollout =
            serde_json::from_value(record.state).map_err(|e| corrupt(id, e))?;
        let mut revision = record.revision;
        let mut consumed = record.inbox.last().map(|(seq, _)| *seq);
        let mut observations = Vec::new();
        for (seq, value) in record.inbox {
            match serde_json::from_value::<Observation>(value) {
                Ok(o) => observations.push(o),
                Err(e) => {
                    tracing::warn!(rollout = id, seq, error = %e, "ignoring an unreadable operator observation")
                }
            }
        }
        for decisions in 1..=MAX_STEPS {
            let now = clock();
            let decision = decide(&stored.rollout, now, &observations);
            stored.rollout = decision.state;
            let state = serde_json::to_value(&stored).map_err(|e| corrupt(id, e))?;
            revision = self
                .store
                .save_rollout(
                    id,
                    revision,
                    stored.rollout.status().word(),
                    &state,
                    consumed.take(),
                    now,
                )
                .await?;
            let mut waiting = None;
            let mut outcome = None;
            let mut work = Vec::new();
            for action in decision.actions {
                match action {
                    Action::WaitUntil { at, reason } => {
                        waiting = Some(format!(
                            "{reason} until {}",
                            at.format("%Y-%m-%d %H:%M:%S UTC")
                        ))
                    }
                    Action::AwaitApproval { reason } => {
                        waiting = Some(format!("approval: {reason}"))
                    }
                    Action::Finished { outcome: o } => outcome = Some(o),
                    other => work.push(other),
                }
            }
            if work.is_empty() {
                return Ok(TickReport {
                    rollout: stored.rollout,
                    decisions,
                    waiting,
                    outcome,
                });
            }
            observations = self.execute(&mut stored, work).await?;
        }
        Err(RolloutError::NoProgress(id.to_string()))
    }

    /// Execute host actions, `concurrency` at a time; health actions run after them.
    async fn execute(
        &self,
        stored: &mut StoredRollout,
        actions: Vec<Action>,
    ) -> Result<Vec<Observation>, RolloutError> {
        let mut out = Vec::new();
        let mut host_steps = Vec::new();
        for action in actions {
            match action {
                Action::CaptureBaseline { stage } => {
                    let baseline = self.health.capture_baseline(&stage).await;
                    stored.baselines.insert(stage.to_string(), baseline);
                    out.push(Observation::BaselineCaptured { stage });
                }
                Action::CheckHealth {
                    stage,
                    check,
                    hosts,
                } => {
                    let addressed: Vec<(HostId, String)> = hosts
                        .iter()
                        .map(|h| {
                            let address = self
                                .targets
                                .get(h)
                                .map(|t| t.config.address())
                                .unwrap_or_default();
                            (h.clone(), address)
                        })
                        .collect();
                    let baseline = stored.baselines.get(&stage.to_string());
                    let (verdict, lines) = self.health.check(baseline, &addressed).await;
                    stored.health.insert(stage.to_string(), lines);
                    out.push(Observation::Health {
                        stage,
                        check,
                        verdict,
                    });
                }
                other => host_steps.push(other),
            }
        }
        let plan = Arc::new(stored.rollout.plan().clone());
        let rollout = Arc::new(RolloutRef {
            id: stored.rollout.id().to_string(),
            manifest: plan.manifest().clone(),
        });
        let gate = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for action in host_steps {
            let host = match &action {
                Action::Apply { host, .. }
                | Action::Verify { host }
                | Action::Reconcile { host, .. }
                | Action::Rollback { host } => host.clone(),
                _ => continue,
            };
            let Some(target) = self.targets.get(&host).cloned() else {
                out.push(Observation::HostLost {
                    host,
                    reason: "not in the configuration any more".into(),
                });
                continue;
            };
            let wanted: Vec<Change> = plan
                .changes_for(&host)
                .map(<[Change]>::to_vec)
                .unwrap_or_default();
            let (ctx, gate) = (
                self.step_context(target, Some(rollout.clone())),
                gate.clone(),
            );
            tasks.spawn(async move {
                let _slot = gate.acquire_owned().await;
                ctx.step(action, &wanted).await
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(observation)) => out.push(observation),
                Ok(Err(e)) => return Err(e),
                Err(e) => {
                    return Err(RolloutError::Corrupt {
                        id: stored.rollout.id().to_string(),
                        detail: format!("a host step panicked: {e}"),
                    })
                }
            }
        }
        Ok(out)
    }
}

/// The rollout a host step belongs to.
struct RolloutRef {
    /// Its id, recorded with every change it makes.
    id: String,
    /// The set every host installs (pins and the dependencies resolved at the canary).
    manifest: ReleaseManifest,
}

/// What one host step works with: the executor's shared handles and the host's target.
struct StepContext {
    store: Arc<dyn Store>,
    plugins: Arc<PluginSet>,
    chosen: Arc<Chosen>,
    target: HostTarget,
    snapshot: Option<Arc<SnapshotHooks>>,
    rollout: Option<Arc<RolloutRef>>,
}

/// What a re-inventory made of a host, before its scan was stored.
enum Reread<T> {
    /// The inventory was read; `T` is what the step made of it.
    Read(T),
    /// The host could not be reached.
    Lost(String),
    /// The host answered but the inventory could not be read.
    Failed(String),
}

impl StepContext {
    /// One host action, turned into its observation. Store failures abort the tick (the
    /// saved state still says what was in flight); everything about the host becomes an
    /// observation.
    async fn step(&self, action: Action, planned: &[Change]) -> Result<Observation, RolloutError> {
        let host = self.target.config.id.clone();
        if let Action::Apply { changes, .. } = &action {
            return self.apply(changes).await;
        }
        if let Action::Rollback { .. } = &action {
            return self.rollback().await;
        }
        // What the rollout really applied on this host (the transaction resolved there, its
        // dependencies included), else what the plan says.
        let applied = self.applied().await?;
        let wanted = match &applied {
            Some(record) => serde_json::from_str::<Vec<Change>>(&record.request)
                .map_err(|e| corrupt(&self.rollout_id(), format!("change {}: {e}", record.id)))?,
            None => planned.to_vec(),
        };
        let wanted = wanted.as_slice();
        match action {
            Action::Verify { .. } => {
                // Only the pinned packages are read back. The host's full inventory in the
                // store is refreshed by its next scan, not here: a full re-scan per host
                // (three more plugin calls and a new inventory snapshot) was 85 % of the
                // executor's CPU (`cargo bench -p patchwave-engine --bench rollout`).
                Ok(match self.check(wanted).await {
                    Ok(report) => Observation::Verified {
                        host,
                        ok: report.ok,
                        detail: describe(&report),
                    },
                    Err((true, reason)) => Observation::HostLost { host, reason },
                    Err((false, e)) => Observation::Verified {
                        host,
                        ok: false,
                        detail: format!("verify failed: {e}"),
                    },
                })
            }
            Action::Reconcile { step, .. } => {
                // The plugin's verify first waits for a package operation still running on
                // the host (possibly the interrupted step itself), so the inventory read
                // next is the settled one.
                if let Err((true, reason)) = self.check(wanted).await {
                    return Ok(Observation::HostLost { host, reason });
                }
                Ok(
                    match self.reread(|packages| took(step, wanted, packages)).await? {
                        Reread::Read(took) => Observation::Reconciled { host, took },
                        Reread::Lost(e) | Reread::Failed(e) => Observation::HostLost {
                            host,
                            reason: format!("re-inventory failed: {e}"),
                        },
                    },
                )
            }
            _ => Ok(Observation::HostLost {
                host,
                reason: "not a host action".into(),
            }),
        }
    }

    /// The plugin's read-only verify of `wanted`: each package installed and fully
    /// configured at its pin (exit codes are not trusted; the package database decides).
    /// The error says whether the host was lost, and why.
    async fn check(&self, wanted: &[Change]) -> Result<ApplyReport, (bool, String)> {
        let watched = Watched::new(self.target.transport.clone());
        let transport: Arc<dyn Transport> = watched.clone();
        let failed = |e: PluginError| (watched.lost_host(), e.to_string());
        let plugin = self.plugin(transport.clone()).await.map_err(failed)?;
        plugin.verify(transport, wanted).await.map_err(failed)
    }

    /// Re-inventory the host as a full scan, recorded in the store (so the inventory, and
    /// any change whose outcome was unknown, is current once the step is done), and judge
    /// the packages read with `judge`.
    async fn reread<T>(
        &self,
        judge: impl FnOnce(&[Installed]) -> T,
    ) -> Result<Reread<T>, RolloutError> {
        let recorded = scan_and_record(
            self.store.as_ref(),
            &self.plugins,
            &self.target,
            |result| match result {
                ScanResult::Ok { packages, .. } => Reread::Read(judge(packages)),
                ScanResult::Unreachable { error } => Reread::Lost(error.clone()),
                ScanResult::Failed { error } => Reread::Failed(error.clone()),
            },
        )
        .await?;
        Ok(recorded.inspected)
    }

    /// The host's plugin: the one that scanned it last (a rollout is planned from that
    /// scan's inventory) when it is still loaded and the host names no other; otherwise the
    /// one its facts choose. Remembered for the executor's life.
    async fn plugin(
        &self,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<dyn OsPlugin>, PluginError> {
        let host = &self.target.config.id;
        let known = self
            .chosen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(host)
            .cloned();
        if let Some(plugin) = known {
            return Ok(plugin);
        }
        let scanned_by = match self.store.host_summary(host).await {
            Ok(summary) => summary.and_then(|s| s.plugin),
            Err(e) => {
                tracing::warn!(%host, error = %e, "could not read which plugin scanned the host; asking its facts");
                None
            }
        };
        let named = self.target.config.plugin.as_ref();
        let plugin = match scanned_by
            .filter(|p| named.is_none_or(|n| n == p))
            .and_then(|p| self.plugins.get(&p).cloned())
        {
            Some(plugin) => plugin,
            None => {
                choose_plugin(&self.plugins, &self.target, transport)
                    .await?
                    .0
            }
        };
        self.chosen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.clone(), plugin.clone());
        Ok(plugin)
    }

    /// The rollout's id (empty outside a rollout).
    fn rollout_id(&self) -> String {
        self.rollout
            .as_ref()
            .map(|r| r.id.clone())
            .unwrap_or_default()
    }

    /// The rollout's latest recorded apply on this host, if it made one.
    async fn applied(&self) -> Result<Option<patchwave_store::ChangeRecord>, RolloutError> {
        let Some(rollout) = &self.rollout else {
            return Ok(None);
        };
        Ok(self
            .store
            .rollout_changes(&rollout.id, &self.target.config.id)
            .await?
            .into_iter()
            .find(|c| c.kind == ChangeKind::Apply))
    }

    /// Resolve the host's whole transaction now (`plan-apply`), refuse it when it leaves the
    /// rollout's manifest (another version, a package the canary did not resolve, a
    /// removal), else apply exactly it through the change journal.
    async fn apply(&self, changes: &[Change]) -> Result<Observation, RolloutError> {
        let host = &self.target.config.id;
        let watched = Watched::new(self.target.transport.clone());
        let transport: Arc<dyn Transport> = watched.clone();
        let plugin = match self.plugin(transport.clone()).await {
            Ok(plugin) => plugin,
            Err(e) => return Ok(not_started(host, &watched, e, applied)),
        };
        let resolved = match plugin.plan_apply(transport.clone(), changes).await {
            Ok(tx) => tx,
            Err(e) => return Ok(not_started(host, &watched, e, applied)),
        };
        if let Some(rollout) = &self.rollout {
            if let Some(why) = outside_manifest(&resolved, &rollout.manifest) {
                return Ok(Observation::Applied {
                    host: host.clone(),
                    ok: false,
                    detail: format!("refused, nothing applied: {why}"),
                });
            }
        }
        if resolved.changes.is_empty() {
            return Ok(Observation::Applied {
                host: host.clone(),
                ok: true,
                detail: "nothing to apply: already at the manifest's versions".into(),
            });
        }
        let address = self.target.config.address();
        let snapshot = self.snapshot.as_deref().map(|hooks| Snapshot {
            hooks,
            address: &address,
        });
        let rollout = self.rollout.as_ref().map(|r| r.id.as_str());
        let result = change::apply_with(
            self.store.as_ref(),
            plugin.as_ref(),
            transport,
            &resolved.changes,
            snapshot,
            rollout,
        )
        .await;
        observe(host, result, "applied", applied)
    }

    /// Roll back the rollout's latest recorded apply on this host with the plan recorded
    /// before it: every package that apply changed, dependencies included.
    async fn rollback(&self) -> Result<Observation, RolloutError> {
        let host = &self.target.config.id;
        let applied = self.applied().await?;
        let recorded: Option<(ChangeId, Vec<RollbackStep>)> = applied.as_ref().and_then(|c| {
            let plan = c.rollback_plan.as_deref()?;
            Some((c.id, serde_json::from_str(plan).ok()?))
        });
        let Some((apply, steps)) = recorded else {
            return Ok(Observation::RolledBack {
                host: host.clone(),
                ok: false,
                detail: "no recorded apply of this rollout with a rollback plan on this host"
                    .into(),
            });
        };
        let undoing = Undoing {
            apply,
            rollout: self.rollout.as_ref().map(|r| r.id.as_str()),
        };
        let watched = Watched::new(self.target.transport.clone());
        let transport: Arc<dyn Transport> = watched.clone();
        let plugin = match self.plugin(transport.clone()).await {
            Ok(plugin) => plugin,
            Err(e) => return Ok(not_started(host, &watched, e, rolled_back)),
        };
        let (package_steps, snapshot_id) = split_snapshot(steps);
        let address = self.target.config.address();
        let hook = self.snapshot.as_deref().map(|hooks| Snapshot {
            hooks,
            address: &address,
        });
        let expected = change::expected_after(&package_steps);
        if let (Some(s), Some(id)) = (hook, &snapshot_id) {
            if s.hooks.when() == RestoreWhen::Always || package_steps.is_empty() {
                let result = change::restore_snapshot(
                    self.store.as_ref(),
                    plugin.as_ref(),
                    transport,
                    s,
                    id,
                    expected,
                    undoing,
                )
                .await;
                return observe(host, result, "restored the snapshot", rolled_back);
            }
        }
        let result = change::rollback_with(
            self.store.as_ref(),
            plugin.as_ref(),
            transport.clone(),
            &package_steps,
            undoing,
        )
        .await;
        let failed = matches!(
            &result,
            Ok(r) if matches!(r.result, ChangeResult::Failed(_) | ChangeResult::Error(_))
        );
        match (failed, hook, &snapshot_id) {
            (true, Some(s), Some(id)) => {
                tracing::warn!(%host, snapshot = %id, "package rollback failed; restoring the snapshot");
                let result = change::restore_snapshot(
                    self.store.as_ref(),
                    plugin.as_ref(),
                    transport,
                    s,
                    id,
                    expected,
                    undoing,
                )
                .await;
                observe(
                    host,
                    result,
                    "the package rollback failed; restored the snapshot",
                    rolled_back,
                )
            }
            (true, None, Some(id)) => {
                Ok(match observe(host, result, "rolled back", rolled_back)? {
                    Observation::RolledBack { host, ok, detail } => Observation::RolledBack {
                        host,
                        ok,
                        detail: format!(
                            "{detail}; snapshot {id} was taken before the apply but no [snapshot] \
                         restore hook is configured now"
                        ),
                    },
                    other => other,
                })
            }
            _ => observe(host, result, "rolled back", rolled_back),
        }
    }
}

/// Why a host's resolved transaction may not be applied in a rollout of `manifest`: it
/// would remove packages, or install a package or version the manifest does not hold (the
/// host resolves differently from the canary). `None` when it stays inside the manifest.
fn outside_manifest(tx: &Transaction, manifest: &ReleaseManifest) -> Option<String> {
    let mut why = Vec::new();
    if !tx.removals.is_empty() {
        let removed: Vec<String> = tx
            .removals
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect();
        why.push(format!("it would remove {}", removed.join(", ")));
    }
    let outside: Vec<String> = tx
        .changes
        .iter()
        .filter(|c| !manifest.pins(&c.name, &c.to))
        .map(|c| format!("{} {}", c.name, c.to))
        .collect();
    if !outside.is_empty() {
        why.push(format!(
            "it resolves to {}, which the manifest {} (resolved at the canary) does not hold",
            outside.join(", "),
            manifest.id()
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The package steps of a recorded rollback plan, and the snapshot it ends with, if any.
fn split_snapshot(steps: Vec<RollbackStep>) -> (Vec<RollbackStep>, Option<String>) {
    let mut snapshot = None;
    let packages = steps
        .into_iter()
        .filter_map(|s| match s {
            RollbackStep::RestoreSnapshot { id } => {
                snapshot = Some(id);
                None
            }
            other => Some(other),
        })
        .collect();
    (packages, snapshot)
}

fn applied(host: HostId, ok: bool, detail: String) -> Observation {
    Observation::Applied { host, ok, detail }
}

fn rolled_back(host: HostId, ok: bool, detail: String) -> Observation {
    Observation::RolledBack { host, ok, detail }
}

/// A step that could not start because its plugin could not be chosen: `HostLost` when the
/// host went away, else the step failed with the plugin's words.
fn not_started(
    host: &HostId,
    watched: &Watched,
    e: PluginError,
    make: fn(HostId, bool, String) -> Observation,
) -> Observation {
    if watched.lost_host() {
        Observation::HostLost {
            host: host.clone(),
            reason: e.to_string(),
        }
    } else {
        make(host.clone(), false, e.to_string())
    }
}

/// The observation for a recorded change: `make(host, ok, detail)` for what the plugin
/// reported, `HostLost` when the host went away mid-change. Store failures end the tick.
fn observe(
    host: &HostId,
    result: Result<change::Recorded, ChangeError>,
    done: &str,
    make: fn(HostId, bool, String) -> Observation,
) -> Result<Observation, RolloutError> {
    let host = host.clone();
    Ok(match result {
        Ok(recorded) => match recorded.result {
            ChangeResult::Applied(_) => make(host, true, done.to_string()),
            ChangeResult::Failed(report) => make(
                host,
                false,
                format!(
                    "status {}: {}",
                    report.status,
                    change::output_tail(&report.output)
                ),
            ),
            ChangeResult::Error(e) => make(host, false, e.to_string()),
            ChangeResult::Unknown(e) => Observation::HostLost {
                host,
                reason: e.to_string(),
            },
        },
        Err(ChangeError::NoRollbackPlan(e)) => {
            make(host, false, format!("not run: no rollback plan: {e}"))
        }
        Err(ChangeError::NoSnapshot(e)) => make(host, false, format!("not run: {e}")),
        Err(ChangeError::Store(e)) => return Err(e.into()),
    })
}

/// A verify report in words: the count when every package is as pinned, else each package
/// that is not, with what was found and its state.
fn describe(report: &ApplyReport) -> String {
    if report.ok {
        return format!(
            "{} packages installed and configured at their pinned versions",
            report.outcomes.len()
        );
    }
    let wrong: Vec<String> = report
        .outcomes
        .iter()
        .filter(|o| !o.ok)
        .map(|o| {
            format!(
                "{} wanted {} found {} ({})",
                o.name,
                o.wanted.as_deref().unwrap_or("absent"),
                o.found.as_deref().unwrap_or("nothing"),
                o.state
            )
        })
        .collect();
    if wrong.is_empty() {
        format!("not verified: {}", change::output_tail(&report.output))
    } else {
        wrong.join("; ")
    }
}

/// Whether an interrupted step took, from the inventory, by the one reconciliation rule
/// ([`Reconciliation::judge`]): an apply took unless no package is at its pin (a partial
/// apply counts, so it is verified and rolled back rather than applied over); a rollback
/// took unless no package is back at its previous version (or gone, when it was new).
fn took(step: ChangeKind, wanted: &[Change], inventory: &[Installed]) -> bool {
    let expected = match step {
        ChangeKind::Apply => Expected::after_apply(wanted),
        ChangeKind::Rollback => Expected::before_apply(wanted),
    };
    Reconciliation::judge(&expected, inventory) != Reconciliation::DidNotTake
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchwave_core::PackageOutcome;

    fn pkg(name: &str, version: &str) -> Installed {
        Installed {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source: None,
        }
    }

    fn change(name: &str, from: Option<&str>, to: &str) -> Change {
        Change {
            name: name.into(),
            from: from.map(str::to_string),
            to: to.into(),
        }
    }

    fn outcome(name: &str, found: Option<&str>, state: &str, ok: bool) -> PackageOutcome {
        PackageOutcome {
            name: name.into(),
            wanted: Some("1.0-2".into()),
            found: found.map(str::to_string),
            state: state.into(),
            ok,
        }
    }

    #[test]
    fn a_verify_report_names_each_package_not_as_pinned() {
        let report = |outcomes: Vec<PackageOutcome>| ApplyReport {
            ok: outcomes.iter().all(|o| o.ok),
            outcomes,
            status: 0,
            output: String::new(),
        };
        assert_eq!(
            describe(&report(vec![outcome(
                "acme-web",
                Some("1.0-2"),
                "ii ",
                true
            )])),
            "1 packages installed and configured at their pinned versions"
        );
        assert_eq!(
            describe(&report(vec![
                outcome("acme-web", Some("1.0-2"), "iF ", false),
                outcome("acme-lib", Some("1.0-2"), "ii ", true),
                outcome("acme-new", None, "un ", false),
            ])),
            "acme-web wanted 1.0-2 found 1.0-2 (iF ); acme-new wanted 1.0-2 found nothing (un )"
        );
    }

    #[test]
    fn a_transaction_outside_the_manifest_is_refused_naming_why() {
        use patchwave_rollout::{PatchClass, PinnedPackage};
        let manifest = ReleaseManifest::new(
            vec![PinnedPackage::new("Debian:12", "acme-api", "1.0-2")],
            "explicit",
            PatchClass::High,
        )
        .unwrap()
        .with_dependencies(vec![PinnedPackage::new("Debian:12", "acme-lib", "2.1-1")])
        .unwrap();
        let tx = |changes: Vec<Change>, removals: Vec<patchwave_core::Pin>| Transaction {
            changes,
            removals,
        };
        // The canary's transaction, or part of it (a host that already has the library).
        let whole = tx(
            vec![
                change("acme-api", Some("1.0-1"), "1.0-2"),
                change("acme-lib", Some("2.0-1"), "2.1-1"),
            ],
            vec![],
        );
        assert_eq!(outside_manifest(&whole, &manifest), None);
        let part = tx(vec![change("acme-api", Some("1.0-1"), "1.0-2")], vec![]);
        assert_eq!(outside_manifest(&part, &manifest), None);
        // Another version of a dependency, a package the canary did not resolve, a removal.
        let other = tx(
            vec![
                change("acme-api", Some("1.0-1"), "1.0-2"),
                change("acme-lib", Some("2.0-1"), "2.2-1"),
                change("acme-new", None, "1.0-1"),
            ],
            vec![patchwave_core::Pin {
                name: "acme-old".into(),
                version: "0.9".into(),
            }],
        );
        assert_eq!(
            outside_manifest(&other, &manifest).as_deref(),
            Some(
                format!(
                    "it would remove acme-old 0.9; it resolves to acme-lib 2.2-1, acme-new 1.0-1, \
                     which the manifest {} (resolved at the canary) does not hold",
                    manifest.id()
                )
                .as_str()
            )
        );
    }

    #[test]
    fn an_interrupted_step_took_when_the_inventory_shows_it() {
        let wanted = [
            change("acme-web", Some("1.0-1"), "1.0-2"),
            change("acme-new", None, "1.0-1"),
        ];
        let before = [pkg("acme-web", "1.0-1")];
        let partial = [pkg("acme-web", "1.0-2")];
        assert!(!took(ChangeKind::Apply, &wanted, &before));
        assert!(took(ChangeKind::Apply, &wanted, &partial));
        assert!(took(ChangeKind::Rollback, &wanted, &before));
        assert!(!took(
            ChangeKind::Rollback,
            &wanted,
            &[pkg("acme-web", "1.0-2"), pkg("acme-new", "1.0-1")]
        ));
    }
}
