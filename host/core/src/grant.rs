//! Exec grants: capabilities as data, matched exactly against each request.
//!
//! The matcher is `patchwave-grant`, the one crate the host and the plugin SDK share, so
//! the check the runtime makes and the check a plugin's tests make cannot drift apart.
//! This module re-exports it for the host's crates.

pub use patchwave_grant::*;
