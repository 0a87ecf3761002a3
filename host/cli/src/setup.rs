//! Turning flags and the config file into the things commands use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use patchwave_core::audit::LogFault;
use patchwave_engine::config::{Config, DefaultDirs, HostConfig, KeyRef, TransportSpec};
use patchwave_engine::PluginSet;
use patchwave_plugin_host::{AuditLog, AuditLogError, PluginRuntime, RuntimeOptions};
use patchwave_store::Store;
use patchwave_transport::{
    ClientKey, KeySource, KnownHosts, LocalTransport, SshContext, SshSettings, SshTarget, Transport,
};

use crate::exit::{Failure, AUDIT_BROKEN, USAGE};

/// Everything a command needs, built lazily from the configuration.
pub struct Context {
    /// The validated configuration.
    pub config: Config,
    /// Where it came from (a path or `embedded defaults`).
    pub source: String,
    /// One SSH context per (client key, known_hosts) pair, shared by the hosts that use it.
    ssh: Mutex<HashMap<(PathBuf, PathBuf), Arc<SshContext>>>,
    /// The store, opened once per command.
    store: tokio::sync::OnceCell<Arc<dyn Store>>,
    /// The audit log, opened (and checked against its anchor in the store) once per command.
    audit: tokio::sync::OnceCell<Arc<AuditLog>>,
}

impl Context {
    /// Load the configuration (file or embedded) and apply overrides.
    pub fn new(
        config: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        plugin_dir: Option<PathBuf>,
    ) -> Result<Context, Failure> {
        // The flags count as defaults too, so a missing default (no HOME) is no problem
        // when a flag names the directory; they also override the file below.
        let mut defaults = DefaultDirs::for_runner();
        if let Some(dir) = &state_dir {
            defaults.state_dir = Ok(dir.clone());
        }
        if let Some(dir) = &plugin_dir {
            defaults.plugin_dir = Ok(dir.clone());
        }
        let (mut config, source) = match config {
            Some(path) => (
                Config::load_with(&path, &defaults).map_err(|e| Failure::new(USAGE, e))?,
                path.display().to_string(),
            ),
            None => {
                // The embedded defaults name no path, so nothing comes from the working
                // directory; `/` is only the base a relative path would have.
                let c = Config::from_toml_with(
                    crate::defaults::EMBEDDED,
                    "embedded defaults",
                    Path::new("/"),
                    &defaults,
                )
                .map_err(|e| Failure::new(USAGE, e))?;
                (c, "embedded defaults".to_string())
            }
        };
        if let Some(dir) = state_dir {
            config.store_path = dir.join("patchwave.db");
            config.audit_log = dir.join("audit.jsonl");
            config.state_dir = dir;
        }
        if let Some(dir) = plugin_dir {
            config.plugin_dir = dir;
        }
        Ok(Context {
            config,
            source,
            ssh: Mutex::new(HashMap::new()),
            store: tokio::sync::OnceCell::new(),
            audit: tokio::sync::OnceCell::new(),
        })
    }

    /// The store (opened, and migrated, on first use).
    pub async fn store(&self) -> Result<Arc<dyn Store>, Failure> {
        self.store
            .get_or_try_init(|| async {
                self.private_state_dir()?;
                patchwave_store::open(&self.config.store_path).map_err(Failure::op)
            })
            .await
            .cloned()
    }

    /// Make the state directory private to the runner (or refuse it, naming why).
    fn private_state_dir(&self) -> Result<(), Failure> {
        patchwave_fs::PrivateDir::ensure(&self.config.state_dir)
            .map(drop)
            .map_err(|e| Failure::op(format!("state directory: {e}")))
    }

    /// The audit log, anchored in the store (opened on first use). A log its anchor
    /// refuses, or whose last line is broken, is exit 4.
    pub async fn audit(&self) -> Result<Arc<AuditLog>, Failure> {
        self.audit
            .get_or_try_init(|| async {
                let store = self.store().await?;
                patchwave_engine::audit::open(&self.config.audit_log, store)
                    .await
                    .map(Arc::new)
                    .map_err(audit_failure)
            })
            .await
            .cloned()
    }

    /// Finish the command: wait until the audit log's lines are on disk and its head is
    /// recorded in the store. A failure is reported; it does not change the exit code (every
    /// line was on disk before the act it records went ahead).
    pub async fn close(&self) {
        if let Some(audit) = self.audit.get() {
            if let Err(e) = audit.flush().await {
                tracing::error!(error = %e, "audit log: its head is not recorded in the store");
            }
        }
    }

    /// Start the plugin runtime (compiled-plugin cache under the state directory, which is
    /// made private to the runner first, or refused).
    pub async fn runtime(&self) -> Result<PluginRuntime, Failure> {
        self.private_state_dir()?;
        let audit = self.audit().await?;
        let options = RuntimeOptions {
            cache_dir: Some(self.config.state_dir.join("cache")),
            ..RuntimeOptions::default()
        };
        PluginRuntime::new(options, audit).map_err(Failure::op)
    }

    /// Load every plugin with its grants and limits.
    pub async fn plugins(&self, runtime: &PluginRuntime) -> Result<PluginSet, Failure> {
        PluginSet::load(runtime, &self.config)
            .await
            .map_err(Failure::op)
    }

    /// The SSH settings shared by every host of this run.
    pub fn ssh_settings(&self) -> SshSettings {
        let ssh = &self.config.ssh;
        SshSettings {
            connect_timeout: ssh.connect_timeout,
            keepalive_interval: ssh.keepalive,
            command_timeout: ssh.command_timeout,
            max_concurrent: ssh.max_sessions,
            ..SshSettings::default()
        }
    }

    fn ssh_context(&self, key: &KeyRef, known_hosts: &Path) -> Result<Arc<SshContext>, Failure> {
        let KeyRef::File(key_path) = key;
        let slot = (key_path.clone(), known_hosts.to_path_buf());
        let mut cache = self.ssh.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ctx) = cache.get(&slot) {
            return Ok(ctx.clone());
        }
        let client_key = ClientKey::load(&KeySource::File(key_path.clone()))
            .map_err(|e| Failure::new(USAGE, format!("client key {}: {e}", key_path.display())))?;
        let known = KnownHosts::load(known_hosts.to_path_buf())
            .map_err(|e| Failure::new(USAGE, format!("known_hosts: {e}")))?;
        let ctx = SshContext::new(client_key, Arc::new(known), self.ssh_settings());
        cache.insert(slot, ctx.clone());
        Ok(ctx)
    }

    /// The transport for one host.
    pub fn transport(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, Failure> {
        match &host.transport {
            TransportSpec::Local => Ok(Arc::new(LocalTransport::new(host.id.clone()))),
            TransportSpec::Ssh {
                address,
                port,
                user,
                key,
                known_hosts,
            } => {
                let ctx = self.ssh_context(key, known_hosts)?;
                Ok(Arc::new(ctx.transport(SshTarget {
                    host: host.id.clone(),
                    address: address.clone(),
                    port: *port,
                    user: user.clone(),
                })))
            }
        }
    }
}

/// The failure an audit log error is: exit 4 when the log is broken, cut or rewritten (with
/// what to do about it), exit 1 otherwise.
pub fn audit_failure(e: AuditLogError) -> Failure {
    let AuditLogError::Broken { source, .. } = &e else {
        return Failure::op(e);
    };
    let hint = match source {
        LogFault::Cut { .. } | LogFault::Rewritten { .. } => {
            "`patchwave audit verify` shows the log; when it is as it should be (restored \
             from a backup, rotated), `patchwave audit reanchor --by WHO --reason WHY` \
             accepts it and records that in it"
        }
        LogFault::Chain(_) => "`patchwave audit verify` names every problem it finds first",
    };
    Failure::new(AUDIT_BROKEN, format!("{e}\n{hint}"))
}
