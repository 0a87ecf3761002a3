//! The configuration used when no `--config` is given.

/// Embedded defaults: the local machine only, state in `./.patchwave`, plugins from
/// `./build/plugins`, and the Debian plugin granted only what a *scan* needs (reading
/// os-release, uname, the reboot flag, the dpkg database and a dry-run of `apt-get upgrade`).
/// Applying or rolling back packages needs a config file that grants it.
pub const EMBEDDED: &str = include_str!("../../../deploy/config/embedded.toml");
