//! Turning flags and the config file into the things commands use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use patchwave_engine::config::{Config, DefaultDirs, HostConfig};
use patchwave_engine::transports::TransportRegistry;
use patchwave_engine::PluginSet;
use patchwave_plugin_host::{AuditLog, PluginRuntime, RuntimeOptions};
use patchwave_store::Store;
use patchwave_transport::Transport;

use crate::exit::{Failure, USAGE};

/// Everything a command needs, built lazily from the configuration.
pub struct Context {
    /// The validated configuration.
    pub config: Config,
    /// Where it came from (a path or `embedded defaults`).
    pub source: String,
    /// One factory per `transport = "…"` word (the SSH one shares a context per client
    /// key and known_hosts pair), built from the configuration.
    transports: TransportRegistry,
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
            transports: TransportRegistry::builtin(&config.ssh),
            config,
            source,
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
                    .map_err(Failure::from)
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

    /// The transport for one host, from the factory its `transport = "…"` names. A
    /// transport that cannot be built (an unreadable key file) is a usage error (exit 2).
    pub async fn transport(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, Failure> {
        self.transports
            .build(host)
            .await
            .map_err(|e| Failure::new(USAGE, e))
    }
}
