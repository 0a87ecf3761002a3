//! Turning flags and the config file into the things commands use.

use std::path::PathBuf;
use std::sync::Arc;

use patchwave_engine::config::{Config, HostConfig, TransportSpec};
use patchwave_engine::PluginSet;
use patchwave_plugin_host::{AuditLog, PluginRuntime, RuntimeOptions};
use patchwave_store::SqliteStore;
use patchwave_transport::{LocalTransport, Transport};

use crate::exit::{Failure, USAGE};

/// Everything a command needs, built lazily from the configuration.
pub struct Context {
    /// The validated configuration.
    pub config: Config,
    /// Where it came from (a path or `embedded defaults`).
    pub source: String,
}

impl Context {
    /// Load the configuration (file or embedded) and apply overrides.
    pub fn new(
        config: Option<PathBuf>,
        state_dir: Option<PathBuf>,
        plugin_dir: Option<PathBuf>,
    ) -> Result<Context, Failure> {
        let (mut config, source) = match config {
            Some(path) => (
                Config::load(&path).map_err(|e| Failure::new(USAGE, e))?,
                path.display().to_string(),
            ),
            None => {
                let cwd = std::env::current_dir().map_err(Failure::op)?;
                let c = Config::from_toml(crate::defaults::EMBEDDED, "embedded defaults", &cwd)
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
        Ok(Context { config, source })
    }

    /// Open the store.
    pub async fn store(&self) -> Result<Arc<SqliteStore>, Failure> {
        SqliteStore::open(&self.config.store_path)
            .map(Arc::new)
            .map_err(Failure::op)
    }

    /// Start the plugin runtime (compiled-plugin cache under the state directory).
    pub fn runtime(&self) -> Result<PluginRuntime, Failure> {
        let audit = AuditLog::open(&self.config.audit_log).map_err(Failure::op)?;
        let options = RuntimeOptions {
            cache_dir: Some(self.config.state_dir.join("cache")),
            ..RuntimeOptions::default()
        };
        PluginRuntime::new(options, Arc::new(audit)).map_err(Failure::op)
    }

    /// Load every plugin with its grants and limits.
    pub async fn plugins(&self, runtime: &PluginRuntime) -> Result<PluginSet, Failure> {
        PluginSet::load(runtime, &self.config)
            .await
            .map_err(Failure::op)
    }

    /// The transport for one host.
    pub fn transport(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, Failure> {
        match &host.transport {
            TransportSpec::Local => Ok(Arc::new(LocalTransport::new(host.id.clone()))),
            TransportSpec::Ssh { .. } => Err(Failure::op(format!(
                "{}: the SSH transport is not built into this binary yet",
                host.id
            ))),
        }
    }
}
