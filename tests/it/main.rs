//! One integration-test binary for the workspace.
//!
//! Everything here drives real parts: real wasm components built from `plugins/`, this
//! machine's real dpkg, the real `patchwave` binary, and (when `PATCHWAVE_FLEET` points at a
//! running `tests/fleet`) real Debian hosts over real sshd.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

mod cli;
mod debian_local;
mod findings;
mod fleet;
mod rollouts;
mod sandbox;
mod sweep;
mod trust;
