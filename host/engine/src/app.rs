//! The application layer: one composition root built from the configuration, and the use
//! cases every entry point shares.
//!
//! [`App`] opens what a use case needs on first use — the store (`Arc<dyn Store>`), the
//! audit log anchored in it, the plugin runtime and plugins (through the
//! [`OsPlugin`](patchwave_plugin_host::OsPlugin) contract), a transport per host from the
//! registry of async factories, the health gate and the snapshot hooks — so a command that
//! only reads the store never loads a plugin. The CLI parses arguments and renders what
//! these functions return; a daemon, a Lambda handler or the weekly report call the same
//! functions.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchwave_plugin_host::{AuditLog, AuditLogError, LoadError, PluginRuntime, RuntimeOptions};
use patchwave_rollout::{Observation, Rollout};
use patchwave_store::{Store, StoreError};
use patchwave_transport::Transport;

use crate::config::{Config, HostConfig};
use crate::health::{HealthError, HealthSources};
use crate::planning::{PlanRequest, Planned, Planner};
use crate::plugins::{PluginSet, PluginSetError};
use crate::rollout::{Executor, HealthGate, NoHealthSources, RolloutError, TickReport};
use crate::scan::HostTarget;
use crate::snapshot::SnapshotHooks;
use crate::transports::{TransportBuildError, TransportRegistry};

/// Why a part of the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The state directory is not private to the runner (or cannot be made).
    #[error("state directory: {0}")]
    StateDir(#[from] patchwave_fs::FsError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit log could not be opened, or its anchor refuses it.
    #[error(transparent)]
    Audit(#[from] AuditLogError),
    /// The plugin runtime could not start.
    #[error(transparent)]
    Runtime(#[from] LoadError),
    /// The plugins could not be loaded.
    #[error(transparent)]
    Plugins(#[from] PluginSetError),
    /// A host's transport could not be built (an unreadable key file, ...).
    #[error(transparent)]
    Transport(#[from] TransportBuildError),
    /// The health sources are misconfigured.
    #[error(transparent)]
    Health(#[from] HealthError),
    /// The snapshot hooks are misconfigured.
    #[error("{0}")]
    Snapshot(String),
}

/// The composition root: the configuration and everything built from it, lazily.
pub struct App {
    /// The validated configuration.
    pub config: Config,
    transports: TransportRegistry,
    store: tokio::sync::OnceCell<Arc<dyn Store>>,
    audit: tokio::sync::OnceCell<Arc<AuditLog>>,
    targets: tokio::sync::OnceCell<Vec<HostTarget>>,
}

/// What the use cases that plan or act share, opened once: the store, the plugin runtime
/// (and so the audit log) and the loaded plugins.
pub struct Loaded {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The plugin runtime.
    pub runtime: PluginRuntime,
    /// Every configured plugin, loaded.
    pub plugins: Arc<PluginSet>,
}

impl App {
    /// The application for `config`, with the built-in transports registered.
    pub fn new(config: Config) -> App {
        App {
            transports: TransportRegistry::builtin(&config.ssh),
            config,
            store: tokio::sync::OnceCell::new(),
            audit: tokio::sync::OnceCell::new(),
            targets: tokio::sync::OnceCell::new(),
        }
    }

    /// Make the state directory private to the runner (or refuse it, naming why).
    fn private_state_dir(&self) -> Result<(), AppError> {
        patchwave_fs::PrivateDir::ensure(&self.config.state_dir)?;
        Ok(())
    }

    /// The store (opened, and migrated, on first use).
    pub async fn store(&self) -> Result<Arc<dyn Store>, AppError> {
        self.store
            .get_or_try_init(|| async {
                self.private_state_dir()?;
                Ok(patchwave_store::open(&self.config.store_path)?)
            })
            .await
            .cloned()
    }

    /// The audit log, anchored in the store (opened on first use).
    pub async fn audit(&self) -> Result<Arc<AuditLog>, AppError> {
        self.audit
            .get_or_try_init(|| async {
                let store = self.store().await?;
                Ok(Arc::new(
                    crate::audit::open(&self.config.audit_log, store).await?,
                ))
            })
            .await
            .cloned()
    }

    /// Finish: wait until the audit log's lines are on disk and its head is recorded in the
    /// store. A failure is logged; every line was on disk before the act it records.
    pub async fn close(&self) {
        if let Some(audit) = self.audit.get() {
            if let Err(e) = audit.flush().await {
                tracing::error!(error = %e, "audit log: its head is not recorded in the store");
            }
        }
    }

    /// Start the plugin runtime (compiled-plugin cache under the state directory, which is
    /// made private to the runner first, or refused).
    pub async fn runtime(&self) -> Result<PluginRuntime, AppError> {
        self.private_state_dir()?;
        let audit = self.audit().await?;
        let options = RuntimeOptions {
            cache_dir: Some(self.config.state_dir.join("cache")),
            ..RuntimeOptions::default()
        };
        Ok(PluginRuntime::new(options, audit)?)
    }

    /// Load every plugin with its grants and limits.
    pub async fn plugins(&self, runtime: &PluginRuntime) -> Result<PluginSet, AppError> {
        Ok(PluginSet::load(runtime, &self.config).await?)
    }

    /// The store, the runtime and the plugins.
    pub async fn loaded(&self) -> Result<Loaded, AppError> {
        let store = self.store().await?;
        let runtime = self.runtime().await?;
        let plugins = Arc::new(self.plugins(&runtime).await?);
        Ok(Loaded {
            store,
            runtime,
            plugins,
        })
    }

    /// The transport for one host, from the factory its `transport = "…"` names.
    pub async fn transport(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, AppError> {
        Ok(self.transports.build(host).await?)
    }

    /// These hosts with their transports.
    pub async fn targets_of(&self, hosts: &[HostConfig]) -> Result<Vec<HostTarget>, AppError> {
        let mut targets = Vec::with_capacity(hosts.len());
        for host in hosts {
            targets.push(HostTarget {
                config: host.clone(),
                transport: self.transport(host).await?,
            });
        }
        Ok(targets)
    }

    /// Every configured host with its transport, built once per `App` (planning and the
    /// executor of one command share them).
    pub async fn targets(&self) -> Result<Vec<HostTarget>, AppError> {
        self.targets
            .get_or_try_init(|| self.targets_of(&self.config.hosts))
            .await
            .cloned()
    }

    /// The health gate of `[health]`: no sources, or the configured ones.
    pub fn health(&self) -> Result<Arc<dyn HealthGate>, AppError> {
        if self.config.health.sources.is_empty() {
            return Ok(Arc::new(NoHealthSources));
        }
        Ok(Arc::new(HealthSources::new(
            &self.config.health,
            &self.config.base_dir,
        )?))
    }

    /// The rollout executor over every configured host, with the health gate and the
    /// snapshot hooks of the configuration.
    pub async fn executor(&self, loaded: &Loaded) -> Result<Executor, AppError> {
        let audit = loaded.runtime.audit();
        let exec = Executor::new(
            loaded.store.clone(),
            loaded.plugins.clone(),
            self.targets().await?,
            self.health()?,
            self.config.scan_concurrency,
            audit.clone(),
        );
        Ok(match &self.config.snapshot {
            Some(cfg) => exec.with_snapshots(Arc::new(
                SnapshotHooks::new(cfg, audit.clone()).map_err(AppError::Snapshot)?,
            )),
            None => exec,
        })
    }

    /// Plan `request` over the configured hosts from what the store knows of them (see
    /// [`crate::planning`]).
    pub async fn plan(
        &self,
        loaded: &Loaded,
        request: &PlanRequest,
        now: DateTime<Utc>,
    ) -> Result<Planned, AppError> {
        let targets = self.targets().await?;
        let planner = Planner {
            store: loaded.store.as_ref(),
            plugins: &loaded.plugins,
            hosts: &targets,
            rollout_policy: &self.config.rollout,
            classify: &self.config.policy,
            ubuntu_pro: self.config.advisories.ubuntu_pro,
            concurrency: self.config.scan_concurrency,
        };
        Ok(planner.plan(request, now).await)
    }
}

/// Store `rollout` and post its `Start` by `by`: it runs from the next tick.
pub async fn start(
    exec: &Executor,
    rollout: Rollout,
    by: &str,
    now: DateTime<Utc>,
) -> Result<String, RolloutError> {
    let id = rollout.id().to_string();
    exec.create(rollout, by, now).await?;
    exec.post(&id, &Observation::Start { by: by.to_string() }, now)
        .await?;
    Ok(id)
}

/// Tick each of `ids` (every unfinished rollout when empty) as far as it goes now, in
/// order; one rollout's failure does not stop the others.
pub async fn tick(
    exec: &Executor,
    store: &dyn Store,
    ids: Vec<String>,
) -> Result<Vec<(String, Result<TickReport, RolloutError>)>, RolloutError> {
    let ids = if ids.is_empty() {
        crate::rollout::unfinished(store).await?
    } else {
        ids
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let report = exec.tick(&id, &Utc::now).await;
        out.push((id, report));
    }
    Ok(out)
}
