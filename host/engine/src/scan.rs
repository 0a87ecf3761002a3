//! Scanning: facts, inventory and upgradable candidates of many hosts, into the store.
//!
//! Every host ends with exactly one recorded attempt: success, unreachable, or failed with
//! the exact error. One host's failure never stops or hides the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use patchwave_core::change::Reconciliation;
use patchwave_core::{HostId, PluginError, ScanStatus};
use patchwave_plugin_host::OsPlugin;
use patchwave_store::{ChangeId, HostRecord, ScanOutcome, ScanResult, Store, StoreError};
use patchwave_transport::Transport;
use tokio::sync::Semaphore;

use crate::config::HostConfig;
use crate::plugins::PluginSet;
use crate::watch::Watched;

/// One host to scan and how to reach it.
#[derive(Clone)]
pub struct HostTarget {
    /// The host's configuration.
    pub config: HostConfig,
    /// Its transport.
    pub transport: Arc<dyn Transport>,
}

impl HostTarget {
    /// The identity the store keeps for this host.
    pub fn record(&self) -> HostRecord {
        HostRecord {
            id: self.config.id.clone(),
            address: self.config.address(),
            port: self.config.port(),
            env: self.config.env,
            scope: self.config.scope.clone(),
            tags: self.config.tags.clone(),
            transport: self.config.transport.kind().to_string(),
        }
    }
}

/// Progress of a scan, reported as it happens.
#[derive(Clone, Debug)]
pub enum ScanEvent {
    /// A host's scan began.
    Started {
        /// Host.
        host: HostId,
    },
    /// A host's scan ended and was recorded.
    Finished {
        /// Host.
        host: HostId,
        /// How it ended.
        status: ScanStatus,
        /// Packages found, on success.
        packages: Option<usize>,
        /// Upgradable packages found, on success.
        upgradable: Option<usize>,
        /// Wall time for this host.
        took: Duration,
    },
}

/// The result of scanning one host.
#[derive(Clone, Debug)]
pub struct HostScan {
    /// Host.
    pub host: HostId,
    /// How it ended.
    pub status: ScanStatus,
    /// Packages found, on success.
    pub packages: Option<usize>,
    /// Upgradable packages, on success.
    pub upgradable: Option<usize>,
    /// Wall time.
    pub took: Duration,
}

/// The result of a whole scan.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    /// One entry per host, in the order given.
    pub hosts: Vec<HostScan>,
    /// Wall time of the whole scan.
    pub took: Duration,
}

impl ScanReport {
    /// Hosts scanned successfully.
    pub fn ok_count(&self) -> usize {
        self.hosts
            .iter()
            .filter(|h| h.status == ScanStatus::Ok)
            .count()
    }

    /// Hosts whose scan did not succeed.
    pub fn failed(&self) -> impl Iterator<Item = &HostScan> {
        self.hosts.iter().filter(|h| h.status != ScanStatus::Ok)
    }
}

/// Scans hosts with a bounded number in flight.
pub struct Scanner {
    plugins: Arc<PluginSet>,
    store: Arc<dyn Store>,
    concurrency: usize,
}

impl Scanner {
    /// A scanner over these plugins and store, `concurrency` hosts at a time.
    pub fn new(plugins: Arc<PluginSet>, store: Arc<dyn Store>, concurrency: usize) -> Self {
        Scanner {
            plugins,
            store,
            concurrency: concurrency.max(1),
        }
    }

    /// Scan every target; `progress` hears about each host as it starts and ends.
    ///
    /// Fails only when the store itself fails; every host problem is recorded per host.
    pub async fn scan(
        &self,
        targets: Vec<HostTarget>,
        progress: Arc<dyn Fn(ScanEvent) + Send + Sync>,
    ) -> Result<ScanReport, StoreError> {
        let started = Instant::now();
        let records: Vec<HostRecord> = targets.iter().map(HostTarget::record).collect();
        self.store.register_hosts(&records).await?;
        let gate = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let (gate, plugins, store, progress) = (
                gate.clone(),
                self.plugins.clone(),
                self.store.clone(),
                progress.clone(),
            );
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let host = target.config.id.clone();
                progress(ScanEvent::Started { host: host.clone() });
                let t0 = Instant::now();
                let recorded = scan_and_record(store.as_ref(), &plugins, &target, |_| ()).await;
                let recorded = recorded.map(|r| HostScan {
                    host: host.clone(),
                    status: r.status,
                    packages: r.packages,
                    upgradable: r.upgradable,
                    took: t0.elapsed(),
                });
                if let Ok(scan) = &recorded {
                    progress(ScanEvent::Finished {
                        host,
                        status: scan.status.clone(),
                        packages: scan.packages,
                        upgradable: scan.upgradable,
                        took: scan.took,
                    });
                }
                (index, recorded)
            });
        }
        let mut slots: Vec<Option<HostScan>> = Vec::new();
        let mut store_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, Ok(scan))) => {
                    if slots.len() <= index {
                        slots.resize(index + 1, None);
                    }
                    slots[index] = Some(scan);
                }
                Ok((_, Err(e))) => store_error = Some(e),
                Err(e) => tracing::error!(error = %e, "scan task failed"),
            }
        }
        if let Some(e) = store_error {
            return Err(e);
        }
        Ok(ScanReport {
            hosts: slots.into_iter().flatten().collect(),
            took: started.elapsed(),
        })
    }
}

/// What [`scan_and_record`] recorded for one host.
pub(crate) struct RecordedScan<T> {
    /// How the scan ended.
    pub status: ScanStatus,
    /// Packages found, on success.
    pub packages: Option<usize>,
    /// Upgradable packages found, on success.
    pub upgradable: Option<usize>,
    /// What the caller's `inspect` made of the result before it was stored.
    pub inspected: T,
}

/// Scan one host and record the attempt, settling its changes whose outcome was unknown
/// against the inventory read. `inspect` sees the result before it moves into the store
/// (the rollout executor verifies and reconciles from it). Fails only when the store fails.
pub(crate) async fn scan_and_record<T>(
    store: &dyn Store,
    plugins: &PluginSet,
    target: &HostTarget,
    inspect: impl FnOnce(&ScanResult) -> T,
) -> Result<RecordedScan<T>, StoreError> {
    let host = &target.config.id;
    let started_at = Utc::now();
    let result = scan_one(plugins, target).await;
    let outcome = ScanOutcome {
        started_at,
        finished_at: Utc::now(),
        result,
    };
    let inspected = inspect(&outcome.result);
    let (packages, upgradable) = match &outcome.result {
        ScanResult::Ok {
            packages,
            upgradable,
            ..
        } => (Some(packages.len()), Some(upgradable.len())),
        _ => (None, None),
    };
    let status = outcome.result.status();
    let finished_at = outcome.finished_at;
    // Judge unsettled changes against the inventory while it is borrowed here; the
    // settlements are written only once the scan itself is recorded.
    let settled = match &outcome.result {
        ScanResult::Ok { packages, .. } => judge_unsettled(store, host, packages).await?,
        _ => Vec::new(),
    };
    store.record_scan(host, outcome).await?;
    settle(store, host, &settled, finished_at).await?;
    Ok(RecordedScan {
        status,
        packages,
        upgradable,
        inspected,
    })
}

/// Judge the host's changes whose outcome was unknown against the inventory just read:
/// what is installed decides, never an assumption.
async fn judge_unsettled(
    store: &dyn Store,
    host: &HostId,
    inventory: &[patchwave_core::Installed],
) -> Result<Vec<(ChangeId, Reconciliation)>, StoreError> {
    Ok(store
        .unsettled_changes(host)
        .await?
        .into_iter()
        .map(|change| {
            (
                change.id,
                Reconciliation::judge(&change.expected, inventory),
            )
        })
        .collect())
}

/// Record the judgements made by [`judge_unsettled`].
async fn settle(
    store: &dyn Store,
    host: &HostId,
    settled: &[(ChangeId, Reconciliation)],
    at: chrono::DateTime<Utc>,
) -> Result<(), StoreError> {
    for &(id, how) in settled {
        tracing::info!(%host, change = %id, outcome = how.as_str(), "reconciled a change whose outcome was unknown");
        store.reconcile_change(id, how, at).await?;
    }
    Ok(())
}

/// Scan one host: choose its plugin, read facts, inventory and upgradable candidates.
async fn scan_one(plugins: &PluginSet, target: &HostTarget) -> ScanResult {
    let watched = Watched::new(target.transport.clone());
    let transport: Arc<dyn Transport> = watched.clone();
    let fail = |e: PluginError| {
        let error = e.to_string();
        if watched.lost_host() {
            ScanResult::Unreachable { error }
        } else {
            ScanResult::Failed { error }
        }
    };
    let (plugin, facts) = match choose_plugin(plugins, target, transport.clone()).await {
        Ok(found) => found,
        Err(e) => return fail(e),
    };
    let packages = match plugin.inventory(transport.clone()).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let upgradable = match plugin.upgradable(transport).await {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    ScanResult::Ok {
        plugin: plugin.name().to_string(),
        plugin_digest: plugin.digest().to_string(),
        facts,
        packages,
        upgradable,
    }
}

pub(crate) async fn choose_plugin(
    plugins: &PluginSet,
    target: &HostTarget,
    transport: Arc<dyn Transport>,
) -> Result<(Arc<dyn OsPlugin>, patchwave_core::OsFacts), PluginError> {
    if let Some(name) = &target.config.plugin {
        let plugin = plugins.get(name).ok_or_else(|| PluginError::Unsupported {
            message: format!("host names plugin `{name}`, which is not loaded"),
        })?;
        let facts = plugin.facts(transport).await?;
        return Ok((plugin.clone(), facts));
    }
    let mut declined = Vec::new();
    for plugin in plugins.iter() {
        match plugin.facts(transport.clone()).await {
            Ok(facts) => return Ok((plugin.clone(), facts)),
            Err(PluginError::Unsupported { message }) => {
                declined.push(format!("{}: {message}", plugin.name()))
            }
            Err(e) => return Err(e),
        }
    }
    Err(PluginError::Unsupported {
        message: format!("no plugin handles this host ({})", declined.join("; ")),
    })
}
