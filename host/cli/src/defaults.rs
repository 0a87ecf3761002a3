//! The configuration used when no `--config` is given.

/// Embedded defaults: the local machine only, state and plugins in the runner's default
/// directories (`DefaultDirs`: `/var/lib/patchwave` and `/usr/lib/patchwave/plugins` for
/// root, XDG directories under `$HOME` for anyone else; never the working directory), and
/// the Debian plugin granted only what a *scan* needs (reading
/// os-release, uname, the reboot flag, the dpkg database and a dry-run of `apt-get upgrade`).
/// Applying or rolling back packages needs a config file that grants it.
pub const EMBEDDED: &str = include_str!("../../../deploy/config/embedded.toml");
