//! patchwave's imperative shell: the one place that loads configuration, talks to hosts
//! through transports and plugins, and writes what it learned to the store.

pub mod app;
pub mod audit;
pub mod change;
pub mod config;
pub mod findings;
pub mod health;
mod http;
pub mod ingest;
pub mod planning;
pub mod plugins;
pub mod rollout;
pub mod scan;
pub mod snapshot;
pub mod transports;
pub mod watch;

pub use app::{App, AppError, Loaded};
pub use config::{Config, ConfigErrors};
pub use plugins::PluginSet;
pub use scan::{HostTarget, ScanEvent, ScanReport, Scanner};
