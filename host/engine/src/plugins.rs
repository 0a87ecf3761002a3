//! The plugins of one run, loaded once and shared by every host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use patchwave_plugin_host::{LoadError, LoadedPlugin, OsPlugin, PluginRuntime};

use crate::config::Config;

/// Loaded plugins by name (cheap to clone: the plugins are shared).
#[derive(Clone, Debug, Default)]
pub struct PluginSet {
    plugins: BTreeMap<String, Arc<dyn OsPlugin>>,
}

/// Errors loading the plugin set.
#[derive(Debug, thiserror::Error)]
pub enum PluginSetError {
    /// The plugin directory could not be listed.
    #[error("plugin directory {dir}: {source}")]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plugin directory could be changed by someone other than root and the runner.
    #[error("plugin directory {dir}: plugins are not loaded from it: {source}")]
    UntrustedDir {
        /// The directory.
        dir: PathBuf,
        /// Who owns it or who can write to it.
        source: patchwave_fs::FsError,
    },
    /// No plugin was found at all.
    #[error("no plugins found in {dir} (install <name>.wasm there, or name the directory with --plugin-dir or plugins.dir; `make plugins` builds into build/plugins)")]
    Empty {
        /// Where we looked.
        dir: PathBuf,
    },
    /// Loading failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A file's name and its manifest disagree.
    #[error("plugin file {path} is named `{file}` but its manifest says `{manifest}`")]
    NameMismatch {
        /// File.
        path: PathBuf,
        /// File stem.
        file: String,
        /// Manifest name.
        manifest: String,
    },
}

impl PluginSet {
    /// Load every `<name>.wasm` in the plugin directory and every plugin with an explicit
    /// path, each with its operator grants and limits. The directory and every plugin file
    /// must be owned by root or the runner and writable by neither group nor others.
    pub async fn load(
        runtime: &PluginRuntime,
        config: &Config,
    ) -> Result<PluginSet, PluginSetError> {
        let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
        // Whoever can add a file to the directory could have it loaded with the grants of
        // the plugin of that name.
        match patchwave_fs::check_trusted_dir(&config.plugin_dir) {
            Err(patchwave_fs::FsError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PluginSetError::UntrustedDir {
                    dir: config.plugin_dir.clone(),
                    source,
                })
            }
            Ok(()) => {}
        }
        match std::fs::read_dir(&config.plugin_dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|e| e == "wasm") {
                        if let Some(stem) = path.file_stem() {
                            files.insert(stem.to_string_lossy().into_owned(), path);
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(PluginSetError::Dir {
                    dir: config.plugin_dir.clone(),
                    source,
                })
            }
        }
        for (name, p) in &config.plugins {
            if let Some(path) = &p.path {
                files.insert(name.clone(), path.clone());
            }
        }
        if files.is_empty() {
            return Err(PluginSetError::Empty {
                dir: config.plugin_dir.clone(),
            });
        }
        let mut set = PluginSet::default();
        for (name, path) in files {
            let settings = config.plugin(&name);
            let plugin = runtime
                .load(
                    &path,
                    settings.grants.to_plugin_grants(),
                    settings.limits.clone(),
                )
                .await?;
            if plugin.name() != name {
                return Err(PluginSetError::NameMismatch {
                    path,
                    file: name,
                    manifest: plugin.name().to_string(),
                });
            }
            set.plugins.insert(name, Arc::new(plugin));
        }
        Ok(set)
    }

    /// A set made of already-loaded plugins.
    pub fn from_plugins(plugins: impl IntoIterator<Item = LoadedPlugin>) -> PluginSet {
        PluginSet {
            plugins: plugins
                .into_iter()
                .map(|p| (p.name().to_string(), Arc::new(p) as Arc<dyn OsPlugin>))
                .collect(),
        }
    }

    /// One plugin by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn OsPlugin>> {
        self.plugins.get(name)
    }

    /// All plugins, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn OsPlugin>> {
        self.plugins.values()
    }

    /// Where a plugin named `name` would be found.
    pub fn path_for(config: &Config, name: &str) -> PathBuf {
        config
            .plugin(name)
            .path
            .unwrap_or_else(|| config.plugin_dir.join(format!("{name}.wasm")))
    }

    /// Whether a path looks like a plugin file.
    pub fn is_plugin_file(path: &Path) -> bool {
        path.extension().is_some_and(|e| e == "wasm")
    }
}
