//! One module per top-level command.

pub mod advisories;
pub mod audit;
pub mod cvss;
pub mod findings;
pub mod hosts;
pub mod plugin;
pub mod rollout;
pub mod scan;
