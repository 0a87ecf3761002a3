//! Turning flags and the config file into the things commands use.

use std::path::{Path, PathBuf};

use patchwave_engine::config::{Config, DefaultDirs};
use patchwave_engine::App;

use crate::exit::{Failure, USAGE};

/// Everything a command needs: the application built from the configuration (see
/// [`patchwave_engine::App`], which the commands reach through `Deref`) and where the
/// configuration came from.
pub struct Context {
    /// The composition root.
    pub app: App,
    /// Where the configuration came from (a path or `embedded defaults`).
    pub source: String,
}

impl std::ops::Deref for Context {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
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
            app: App::new(config),
            source,
        })
    }
}
