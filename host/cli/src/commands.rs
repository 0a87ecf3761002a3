//! One module per top-level command.

pub mod audit;
pub mod cvss;
pub mod hosts;
pub mod plugin;
pub mod scan;
