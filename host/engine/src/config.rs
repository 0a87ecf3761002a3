//! The operator's configuration: one TOML file, checked whole.
//!
//! Raw structs mirror the file with `deny_unknown_fields`; [`Config::from_toml`] compiles
//! them into a validated [`Config`] and reports *every* problem at once, each naming where
//! it is (`hosts[3].env`, `plugins.debian.grants[0]`, ...).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use patchwave_core::{check_id, EnvGrant, Environment, ExecGrant, HostId, HumanDuration};
use patchwave_plugin_host::Limits;
use serde::Deserialize;

/// Every problem found in a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The file (or `<embedded>`).
    pub source_name: String,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} problem{} in the configuration:",
            self.source_name,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    scan: RawScan,
    #[serde(default)]
    ssh: RawSsh,
    #[serde(default)]
    plugins: RawPlugins,
    #[serde(default)]
    defaults: RawHost,
    #[serde(default)]
    hosts: Vec<RawHost>,
    /// Classification policy (`patchwave_advisory::PolicyConfig`), checked as a whole.
    #[serde(default)]
    classify: Option<toml::Value>,
    /// Rollout policy (`patchwave_rollout::Policy`), checked as a whole.
    #[serde(default)]
    rollout: Option<toml::Value>,
    /// Health sources gating rollout stages.
    #[serde(default)]
    health: crate::health::HealthConfig,
    #[serde(default)]
    advisories: RawAdvisories,
    /// Snapshot hooks run around applies and rollbacks.
    #[serde(default)]
    snapshot: Option<crate::snapshot::SnapshotConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdvisories {
    #[serde(default)]
    osv: Vec<String>,
    kev: Option<String>,
    epss: Option<String>,
    ubuntu_pro: Option<bool>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    dir: Option<PathBuf>,
    store: Option<PathBuf>,
    audit_log: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScan {
    concurrency: Option<usize>,
    stale_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    connect_timeout: Option<String>,
    command_timeout: Option<String>,
    keepalive: Option<String>,
    max_sessions: Option<usize>,
}

// No `deny_unknown_fields` here: serde cannot combine it with `flatten`. Every other key is
// kept as a value and compiled by `compile_plugin`, which names a misspelt key and its table.
#[derive(Debug, Default, Deserialize)]
struct RawPlugins {
    dir: Option<PathBuf>,
    #[serde(flatten)]
    each: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    path: Option<PathBuf>,
    /// `"manifest"`, `"none"` or a list of grant tables, compiled by `compile_grants`.
    grants: Option<toml::Value>,
    deadline_ms: Option<u64>,
    memory_mb: Option<u64>,
    exec_timeout_ms: Option<u64>,
}

/// One `{ program, args, each, env }` of a grants list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    each: Option<String>,
    /// `{ NAME = "value", ... }`, compiled by `compile_env`.
    env: Option<toml::Value>,
}

/// The long form of one env value: `NAME = { value = "…", secret = true }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvValue {
    value: String,
    #[serde(default)]
    secret: bool,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    id: Option<String>,
    address: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    key: Option<String>,
    known_hosts: Option<PathBuf>,
    transport: Option<String>,
    env: Option<String>,
    scope: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    plugin: Option<String>,
    /// The simulated host's image (`transport = "sim"` only).
    sim: Option<RawSim>,
}

/// `sim = { packages, image, installed, archive }` of a simulated host.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSim {
    packages: Option<usize>,
    image: Option<usize>,
    #[serde(default)]
    installed: BTreeMap<String, String>,
    #[serde(default)]
    archive: BTreeMap<String, Vec<String>>,
}

/// How a host is reached: the settings of the transport its `transport = "…"` names, each
/// compiled by that transport's own function (see [`transport_kinds`]) and built by the
/// factory registered under the same word (`crate::transports`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportSpec {
    /// This machine, directly.
    Local,
    /// SSH with key authentication and a known_hosts file.
    Ssh {
        /// Address to connect to.
        address: String,
        /// Port.
        port: u16,
        /// Login user.
        user: String,
        /// Key reference (`file:/path`).
        key: KeyRef,
        /// known_hosts file the host key must be in.
        known_hosts: PathBuf,
    },
    /// A simulated Debian host (`patchwave_transport::sim`), for benches and demos.
    Sim(SimSpec),
}

impl TransportSpec {
    /// The word stored with the host, as the config names it: `local`, `ssh`, `sim`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Local => "local",
            TransportSpec::Ssh { .. } => "ssh",
            TransportSpec::Sim(_) => "sim",
        }
    }
}

/// The image a simulated host starts from: `sim = { … }` of a `transport = "sim"` host.
/// The same spec always gives the same database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimSpec {
    /// How many packages of the real Debian 12 list it has installed (default 300).
    pub packages: usize,
    /// Rebuilt as this image number (every tenth package at `VERSION+imgN`), so hosts of
    /// different numbers have different inventories; `None`: the list as it is.
    pub image: Option<usize>,
    /// Packages installed at these versions, on top of the list.
    pub installed: BTreeMap<String, String>,
    /// Versions the host's archive offers per package, oldest first.
    pub archive: BTreeMap<String, Vec<String>>,
}

/// Where a private key comes from. Never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// A key file on the runner (`file:/path`).
    File(PathBuf),
}

impl KeyRef {
    fn parse(s: &str) -> Result<KeyRef, String> {
        match s.split_once(':') {
            Some(("file", path)) if !path.is_empty() => Ok(KeyRef::File(PathBuf::from(path))),
            _ => Err(format!(
                "`{s}` is not a key reference; use `file:/path/to/key`"
            )),
        }
    }
}

/// One host of the fleet, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// Stable id.
    pub id: HostId,
    /// How it is reached.
    pub transport: TransportSpec,
    /// prod / non-prod.
    pub env: Environment,
    /// Reporting scope.
    pub scope: String,
    /// Free tags.
    pub tags: Vec<String>,
    /// Plugin to use (else chosen by trying each plugin's `facts`).
    pub plugin: Option<String>,
}

impl HostConfig {
    /// The address shown and stored for the host.
    pub fn address(&self) -> String {
        match &self.transport {
            TransportSpec::Local => "localhost".into(),
            TransportSpec::Ssh { address, .. } => address.clone(),
            TransportSpec::Sim(_) => "sim".into(),
        }
    }

    /// The port, for transports that use one.
    pub fn port(&self) -> Option<u16> {
        match &self.transport {
            TransportSpec::Local | TransportSpec::Sim(_) => None,
            TransportSpec::Ssh { port, .. } => Some(*port),
        }
    }
}

/// Grants given to one plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantsConfig {
    /// Nothing (the default: deny).
    None,
    /// What its manifest declares.
    Manifest,
    /// Exactly these.
    List(Vec<ExecGrant>),
}

impl GrantsConfig {
    /// What the plugin runtime is told to grant.
    pub fn to_plugin_grants(&self) -> patchwave_plugin_host::PluginGrants {
        use patchwave_plugin_host::PluginGrants;
        match self {
            GrantsConfig::None => PluginGrants::List(Vec::new()),
            GrantsConfig::Manifest => PluginGrants::Manifest,
            GrantsConfig::List(list) => PluginGrants::List(list.clone()),
        }
    }
}

/// One plugin's operator settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginConfig {
    /// Explicit path to its `.wasm` (else `<plugins.dir>/<name>.wasm` or the build output name).
    pub path: Option<PathBuf>,
    /// What it may run.
    pub grants: GrantsConfig,
    /// Its limits.
    pub limits: Limits,
}

/// SSH settings shared by all hosts of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSettings {
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Upper bound on every command's time limit over SSH (`None`: each command's own).
    pub command_timeout: Option<Duration>,
    /// Keepalive interval.
    pub keepalive: Duration,
    /// Concurrent SSH sessions across all hosts.
    pub max_sessions: usize,
}

/// Where advisories come from when `advisories import` is given none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdvisorySources {
    /// OSV files, directories or URLs.
    pub osv: Vec<String>,
    /// The CISA KEV catalogue (file or URL).
    pub kev: Option<String>,
    /// The EPSS scores CSV (file or URL).
    pub epss: Option<String>,
    /// Ubuntu hosts are attached to Ubuntu Pro (ESM records apply to them).
    pub ubuntu_pro: bool,
    /// A PEM file of extra CA certificates trusted for `https` feeds besides the Mozilla
    /// roots (`ca_file`, relative to the configuration's directory; checked when the
    /// configuration is loaded).
    pub ca_file: Option<PathBuf>,
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Directory for the store, audit log and compiled-plugin cache.
    pub state_dir: PathBuf,
    /// SQLite store path.
    pub store_path: PathBuf,
    /// Audit log path.
    pub audit_log: PathBuf,
    /// Hosts scanned at once.
    pub scan_concurrency: usize,
    /// Inventory older than this reads as stale.
    pub stale_after: chrono::Duration,
    /// SSH settings.
    pub ssh: SshSettings,
    /// Where plugins are looked for.
    pub plugin_dir: PathBuf,
    /// Per-plugin settings, by plugin name.
    pub plugins: BTreeMap<String, PluginConfig>,
    /// The fleet.
    pub hosts: Vec<HostConfig>,
    /// How findings are classified and when they are due (`[classify]`).
    pub policy: patchwave_advisory::Policy,
    /// Advisory feeds (`[advisories]`).
    pub advisories: AdvisorySources,
    /// How rollouts are staged and gated (`[rollout]`).
    pub rollout: patchwave_rollout::Policy,
    /// Health sources that gate rollout stages (`[health]`).
    pub health: crate::health::HealthConfig,
    /// Snapshot hooks (`[snapshot]`), when configured.
    pub snapshot: Option<crate::snapshot::SnapshotConfig>,
    /// Directory relative paths in the config are taken from.
    pub base_dir: PathBuf,
}

/// Where state and plugins are when neither the config nor a flag says. Never the working
/// directory: root running patchwave in a folder another user controls must not load that
/// user's plugins or state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultDirs {
    /// The state directory (store, audit log, compiled-plugin cache), or why there is none.
    pub state_dir: Result<PathBuf, String>,
    /// The plugin directory, or why there is none.
    pub plugin_dir: Result<PathBuf, String>,
}

impl DefaultDirs {
    /// The defaults for the user patchwave runs as (its effective uid and environment).
    pub fn for_runner() -> DefaultDirs {
        DefaultDirs::resolve(patchwave_fs::runner_uid(), |name| std::env::var_os(name))
    }

    /// The defaults for `uid`, reading `HOME`, `XDG_STATE_HOME` and `XDG_DATA_HOME` from
    /// `env`:
    /// * root: `/var/lib/patchwave` and `/usr/lib/patchwave/plugins`, whatever the
    ///   environment says (`sudo` may keep another user's `HOME`);
    /// * anyone else: `$XDG_STATE_HOME/patchwave` (default `~/.local/state/patchwave`) and
    ///   `$XDG_DATA_HOME/patchwave/plugins` (default `~/.local/share/patchwave/plugins`).
    ///   Relative values are ignored, as the XDG base directory spec says; without an
    ///   absolute `HOME` there is no default.
    pub fn resolve(uid: u32, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> DefaultDirs {
        if uid == 0 {
            return DefaultDirs {
                state_dir: Ok(PathBuf::from("/var/lib/patchwave")),
                plugin_dir: Ok(PathBuf::from("/usr/lib/patchwave/plugins")),
            };
        }
        let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
        let base = |xdg: &str, under_home: &str| {
            absolute(xdg)
                .or_else(|| absolute("HOME").map(|home| home.join(under_home)))
                .ok_or_else(|| {
                    format!("neither {xdg} nor HOME is an absolute path, so there is no default")
                })
        };
        DefaultDirs {
            state_dir: base("XDG_STATE_HOME", ".local/state").map(|d| d.join("patchwave")),
            plugin_dir: base("XDG_DATA_HOME", ".local/share")
                .map(|d| d.join("patchwave").join("plugins")),
        }
    }
}

impl Config {
    /// Read and validate a config file, with the runner's [`DefaultDirs`].
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::load_with(path, &DefaultDirs::for_runner())
    }

    /// Read and validate a config file; `defaults` fill in what it does not set.
    pub fn load_with(path: &Path, defaults: &DefaultDirs) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            source_name: path.display().to_string(),
            problems: vec![format!("cannot read: {e}")],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml_with(&text, &path.display().to_string(), base, defaults)
    }

    /// Validate config text, with the runner's [`DefaultDirs`]. Relative paths are taken
    /// from `base`.
    pub fn from_toml(text: &str, source_name: &str, base: &Path) -> Result<Config, ConfigErrors> {
        Config::from_toml_with(text, source_name, base, &DefaultDirs::for_runner())
    }

    /// Validate config text. Relative paths are taken from `base`; `defaults` fill in the
    /// state and plugin directories when the text does not set them.
    pub fn from_toml_with(
        text: &str,
        source_name: &str,
        base: &Path,
        defaults: &DefaultDirs,
    ) -> Result<Config, ConfigErrors> {
        let fail = |problems| ConfigErrors {
            source_name: source_name.to_string(),
            problems,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| fail(vec![e.to_string()]))?;
        let mut problems = Vec::new();
        let config = compile(raw, base, defaults, &mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// A configuration with no hosts and the given state directory (for ad-hoc scans).
    pub fn embedded(state_dir: &Path) -> Config {
        let mut problems = Vec::new();
        let raw = RawConfig {
            state: RawState {
                dir: Some(state_dir.to_path_buf()),
                ..RawState::default()
            },
            ..RawConfig::default()
        };
        compile(
            raw,
            Path::new("."),
            &DefaultDirs::for_runner(),
            &mut problems,
        )
    }

    /// The config of one plugin (deny-all defaults when the file does not mention it).
    pub fn plugin(&self, name: &str) -> PluginConfig {
        self.plugins.get(name).cloned().unwrap_or(PluginConfig {
            path: None,
            grants: GrantsConfig::None,
            limits: Limits::default(),
        })
    }
}

/// `path` made absolute from `base` (an absolute one as it is).
fn from_base(base: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

/// A configured directory made absolute from `base`, or the default (a problem when there
/// is none).
fn dir_or_default(
    field: &str,
    value: Option<PathBuf>,
    base: &Path,
    default: &Result<PathBuf, String>,
    problems: &mut Vec<String>,
) -> PathBuf {
    match (value, default) {
        (Some(p), _) if p.is_absolute() => p,
        (Some(p), _) => base.join(p),
        (None, Ok(d)) => d.clone(),
        (None, Err(why)) => {
            problems.push(format!("{field}: not set, and {why}"));
            PathBuf::new()
        }
    }
}

fn compile(
    raw: RawConfig,
    base: &Path,
    defaults: &DefaultDirs,
    problems: &mut Vec<String>,
) -> Config {
    // Section by section, each pushing its own problems, so every one is reported at once.
    let state = compile_state(raw.state, base, defaults, problems);
    let (scan_concurrency, stale_after) = compile_scan(raw.scan, problems);
    let ssh = compile_ssh_settings(raw.ssh, problems);
    let (plugin_dir, plugins) = compile_plugins(raw.plugins, base, defaults, problems);
    let hosts = compile_hosts(raw.defaults, raw.hosts, &state.dir, base, problems);
    let policy = match raw.classify {
        None => patchwave_advisory::Policy::default(),
        Some(value) => compile_policy(value, problems),
    };
    let advisories = compile_advisories(raw.advisories, base, problems);
    let rollout = match raw.rollout {
        None => patchwave_rollout::Policy::default(),
        Some(value) => compile_rollout_policy(value, problems),
    };
    problems.extend(raw.health.validate());
    if let Some(snapshot) = &raw.snapshot {
        problems.extend(snapshot.validate());
    }

    Config {
        policy,
        advisories,
        rollout,
        health: raw.health,
        snapshot: raw.snapshot,
        base_dir: base.to_path_buf(),
        state_dir: state.dir,
        store_path: state.store,
        audit_log: state.audit_log,
        scan_concurrency,
        stale_after: chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::hours(26)),
        ssh,
        plugin_dir,
        plugins,
        hosts,
    }
}

/// `[state]`, compiled: where the store and the audit log are.
struct StatePaths {
    dir: PathBuf,
    store: PathBuf,
    audit_log: PathBuf,
}

/// `[state]`: `dir` (else the runner's default), `store` and `audit_log` (else in `dir`).
fn compile_state(
    raw: RawState,
    base: &Path,
    defaults: &DefaultDirs,
    problems: &mut Vec<String>,
) -> StatePaths {
    let dir = dir_or_default("state.dir", raw.dir, base, &defaults.state_dir, problems);
    StatePaths {
        store: raw
            .store
            .map(|p| from_base(base, p))
            .unwrap_or_else(|| dir.join("patchwave.db")),
        audit_log: raw
            .audit_log
            .map(|p| from_base(base, p))
            .unwrap_or_else(|| dir.join("audit.jsonl")),
        dir,
    }
}

/// `field = "…"` in the one duration grammar, or `default`; a bad value is a problem naming
/// `field` (and `default` stands in, unused, so the rest can still be checked).
fn duration(
    field: &str,
    value: Option<String>,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    match value {
        None => default,
        Some(v) => HumanDuration::parse(&v)
            .map(HumanDuration::to_std)
            .unwrap_or_else(|e| {
                problems.push(format!("{field}: {e}"));
                default
            }),
    }
}

/// `[scan]`: `concurrency` (default 10, at least 1) and `stale_after` (default 26h).
fn compile_scan(raw: RawScan, problems: &mut Vec<String>) -> (usize, Duration) {
    let stale_after = duration(
        "scan.stale_after",
        raw.stale_after,
        Duration::from_secs(26 * 3600),
        problems,
    );
    let concurrency = raw.concurrency.unwrap_or(10);
    if concurrency == 0 {
        problems.push("scan.concurrency must be at least 1".into());
    }
    (concurrency, stale_after)
}

/// `[ssh]`: timeouts, keepalive and sessions per connection.
fn compile_ssh_settings(raw: RawSsh, problems: &mut Vec<String>) -> SshSettings {
    let ssh = SshSettings {
        connect_timeout: duration(
            "ssh.connect_timeout",
            raw.connect_timeout,
            Duration::from_secs(10),
            problems,
        ),
        // On a bad value the problem is reported; the stand-in is never used.
        command_timeout: raw.command_timeout.map(|v| {
            duration(
                "ssh.command_timeout",
                Some(v),
                Duration::from_secs(600),
                problems,
            )
        }),
        keepalive: duration(
            "ssh.keepalive",
            raw.keepalive,
            Duration::from_secs(15),
            problems,
        ),
        max_sessions: raw.max_sessions.unwrap_or(16),
    };
    if ssh.command_timeout.is_some_and(|t| t.is_zero()) {
        problems.push("ssh.command_timeout must be longer than 0".into());
    }
    if ssh.max_sessions == 0 {
        problems.push("ssh.max_sessions must be at least 1".into());
    }
    ssh
}

/// `[plugins]`: the plugin directory and each `[plugins.NAME]` table.
fn compile_plugins(
    raw: RawPlugins,
    base: &Path,
    defaults: &DefaultDirs,
    problems: &mut Vec<String>,
) -> (PathBuf, BTreeMap<String, PluginConfig>) {
    let dir = dir_or_default("plugins.dir", raw.dir, base, &defaults.plugin_dir, problems);
    let mut plugins = BTreeMap::new();
    for (name, value) in raw.each {
        if let Some(p) = compile_plugin(&name, value, problems) {
            let path = p.path.clone().map(|p| from_base(base, p));
            plugins.insert(name, PluginConfig { path, ..p });
        }
    }
    (dir, plugins)
}

/// `[defaults]` and every `[[hosts]]` entry; a host with any problem is left out (its
/// problems are reported with the others).
fn compile_hosts(
    defaults: RawHost,
    raw: Vec<RawHost>,
    state_dir: &Path,
    base: &Path,
    problems: &mut Vec<String>,
) -> Vec<HostConfig> {
    if defaults.id.is_some() || defaults.address.is_some() {
        problems.push("defaults: `id` and `address` belong to each [[hosts]] entry".into());
    }
    let mut seen = BTreeSet::new();
    let mut hosts = Vec::new();
    for (i, h) in raw.into_iter().enumerate() {
        let at = match &h.id {
            Some(id) => format!("hosts[{i}] ({id})"),
            None => format!("hosts[{i}]"),
        };
        let fields = HostFields {
            at: &at,
            host: &h,
            defaults: &defaults,
            state_dir,
            base,
        };
        let before = problems.len();
        let host = compile_host(&fields, &mut seen, problems);
        if problems.len() == before {
            hosts.push(host);
        }
    }
    hosts
}

/// One `[[hosts]]` entry over `[defaults]`: id (unique, by the id rule), env, scope, tags,
/// plugin, and the settings of the transport it names, compiled by that transport.
fn compile_host(
    f: &HostFields<'_>,
    seen: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> HostConfig {
    let (at, h, d) = (f.at, f.host, f.defaults);
    let id = match &h.id {
        Some(id) => {
            if let Err(e) = check_id(id) {
                problems.push(format!("{at}.id: {e}"));
            }
            id.clone()
        }
        None => {
            problems.push(format!("{at}: missing `id`"));
            String::new()
        }
    };
    if !id.is_empty() && !seen.insert(id.clone()) {
        problems.push(format!("{at}.id: `{id}` is used by more than one host"));
    }
    let env_word = h
        .env
        .clone()
        .or(d.env.clone())
        .unwrap_or_else(|| "prod".into());
    let env = Environment::parse(&env_word).unwrap_or_else(|| {
        problems.push(format!(
            "{at}.env: `{env_word}` is not `prod` or `non-prod`"
        ));
        Environment::Prod
    });
    let kind = h
        .transport
        .clone()
        .or(d.transport.clone())
        .unwrap_or_else(|| {
            if id == "localhost" {
                "local".into()
            } else {
                "ssh".into()
            }
        });
    let transport = match TRANSPORTS.iter().find(|(word, _)| *word == kind) {
        Some((_, compile)) => compile(f, problems),
        None => {
            let known: Vec<String> = transport_kinds().map(|k| format!("`{k}`")).collect();
            problems.push(format!(
                "{at}.transport: `{kind}` is not one of {}",
                known.join(", ")
            ));
            TransportSpec::Local
        }
    };
    if h.sim.is_some() && kind != "sim" {
        problems.push(format!(
            "{at}.sim: only a host with transport = \"sim\" takes it"
        ));
    }
    let mut tags: Vec<String> = d.tags.iter().chain(h.tags.iter()).cloned().collect();
    tags.sort();
    tags.dedup();
    HostConfig {
        id: HostId(id),
        transport,
        env,
        scope: h
            .scope
            .clone()
            .or(d.scope.clone())
            .unwrap_or_else(|| "default".into()),
        tags,
        plugin: h.plugin.clone().or(d.plugin.clone()),
    }
}

/// `[advisories]`: the feed locations (read as written) and the optional `ca_file`.
fn compile_advisories(
    raw: RawAdvisories,
    base: &Path,
    problems: &mut Vec<String>,
) -> AdvisorySources {
    AdvisorySources {
        osv: raw.osv,
        kev: raw.kev,
        epss: raw.epss,
        ubuntu_pro: raw.ubuntu_pro.unwrap_or(false),
        ca_file: raw
            .ca_file
            .and_then(|path| compile_ca_file("advisories.ca_file", path, base, problems)),
    }
}

/// What a transport's compile function reads: one `[[hosts]]` entry, `[defaults]`, and
/// where relative paths and default files are.
struct HostFields<'a> {
    /// `hosts[N] (id)`, for problems.
    at: &'a str,
    host: &'a RawHost,
    defaults: &'a RawHost,
    state_dir: &'a Path,
    base: &'a Path,
}

/// Turns one host's fields into its transport's settings, pushing every problem.
type CompileTransport = fn(&HostFields<'_>, &mut Vec<String>) -> TransportSpec;

/// Every transport a host may name with `transport = "…"`, with the function that checks
/// its own fields. `crate::transports::TransportRegistry::builtin` registers a factory for
/// each of these words.
const TRANSPORTS: [(&str, CompileTransport); 3] = [
    ("local", compile_local),
    ("ssh", compile_ssh),
    ("sim", compile_sim),
];

/// The words `transport = "…"` accepts.
pub fn transport_kinds() -> impl Iterator<Item = &'static str> {
    TRANSPORTS.iter().map(|(word, _)| *word)
}

/// `transport = "local"`: no fields of its own (SSH fields given anyway are ignored, as
/// they always were).
fn compile_local(_: &HostFields<'_>, _: &mut Vec<String>) -> TransportSpec {
    TransportSpec::Local
}

/// `transport = "ssh"`: `address` (required), `port`, `user`, `key` (required, here or
/// in `[defaults]`), `known_hosts`.
fn compile_ssh(f: &HostFields<'_>, problems: &mut Vec<String>) -> TransportSpec {
    let (at, h, d) = (f.at, f.host, f.defaults);
    let address = h.address.clone().unwrap_or_else(|| {
        problems.push(format!("{at}: missing `address`"));
        String::new()
    });
    let user = h
        .user
        .clone()
        .or(d.user.clone())
        .unwrap_or_else(|| "root".into());
    let key = match h.key.clone().or(d.key.clone()) {
        Some(k) => KeyRef::parse(&k).unwrap_or_else(|e| {
            problems.push(format!("{at}.key: {e}"));
            KeyRef::File(PathBuf::new())
        }),
        None => {
            problems.push(format!("{at}: missing `key` (here or in [defaults])"));
            KeyRef::File(PathBuf::new())
        }
    };
    let known_hosts = h
        .known_hosts
        .clone()
        .or(d.known_hosts.clone())
        .map(|p| from_base(f.base, p))
        .unwrap_or_else(|| f.state_dir.join("known_hosts"));
    TransportSpec::Ssh {
        address,
        port: h.port.or(d.port).unwrap_or(22),
        user,
        key,
        known_hosts,
    }
}

/// `transport = "sim"`: `sim = { packages, image, installed, archive }`, all optional.
/// SSH's fields on the host itself are refused (`[defaults]` may hold them for the
/// fleet's SSH hosts).
fn compile_sim(f: &HostFields<'_>, problems: &mut Vec<String>) -> TransportSpec {
    let (at, h) = (f.at, f.host);
    let ssh_fields = [
        ("address", h.address.is_some()),
        ("port", h.port.is_some()),
        ("user", h.user.is_some()),
        ("key", h.key.is_some()),
        ("known_hosts", h.known_hosts.is_some()),
    ];
    for (name, given) in ssh_fields {
        if given {
            problems.push(format!(
                "{at}.{name}: a simulated host has no `{name}` (it is a field of transport \"ssh\")"
            ));
        }
    }
    let raw = h.sim.clone().or(f.defaults.sim.clone()).unwrap_or_default();
    let available = patchwave_transport::sim::debian12_package_count();
    let packages = raw.packages.unwrap_or(300);
    if packages > available {
        problems.push(format!(
            "{at}.sim.packages: {packages} is more than the {available} of the Debian 12 list"
        ));
    }
    for (name, versions) in &raw.archive {
        if versions.is_empty() {
            problems.push(format!(
                "{at}.sim.archive.{name}: give at least one version"
            ));
        }
    }
    TransportSpec::Sim(SimSpec {
        packages,
        image: raw.image,
        installed: raw.installed,
        archive: raw.archive,
    })
}

/// `[plugins.NAME]` (its path as written); `None`, with a problem naming the table and
/// the key, when it is not a table of known keys.
fn compile_plugin(
    name: &str,
    value: toml::Value,
    problems: &mut Vec<String>,
) -> Option<PluginConfig> {
    let at = format!("plugins.{name}");
    if !value.is_table() {
        problems.push(format!(
            "plugins: unknown key `{name}` ({} {value}): [plugins] takes `dir` and one \
             [plugins.NAME] table per plugin",
            value.type_str()
        ));
        return None;
    }
    let p: RawPlugin = match value.try_into() {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("{at}: {}", e.to_string().trim()));
            return None;
        }
    };
    let grants = match p.grants {
        None => GrantsConfig::None,
        Some(grants) => compile_grants(&format!("{at}.grants"), grants, problems),
    };
    let mut limits = Limits::default();
    if let Some(ms) = p.deadline_ms {
        limits.deadline_ms = ms;
    }
    if let Some(mb) = p.memory_mb {
        limits.memory_bytes = mb.saturating_mul(1 << 20);
    }
    if let Some(ms) = p.exec_timeout_ms {
        limits.exec_timeout_ms = ms;
    }
    for problem in
        limits.problems(patchwave_plugin_host::RuntimeOptions::default().max_memory_bytes)
    {
        problems.push(format!("{at}: {problem}"));
    }
    Some(PluginConfig {
        path: p.path,
        grants,
        limits,
    })
}

/// A plugin's `grants`: `"manifest"`, `"none"` or a list of `{ program, args, each, env }`.
fn compile_grants(at: &str, value: toml::Value, problems: &mut Vec<String>) -> GrantsConfig {
    let list = match value {
        toml::Value::String(w) if w == "manifest" => return GrantsConfig::Manifest,
        toml::Value::String(w) if w == "none" => return GrantsConfig::None,
        toml::Value::Array(list) => list,
        other => {
            problems.push(format!(
                "{at}: `{other}` is not `manifest`, `none` or a list of {{ program, args, each, env }}"
            ));
            return GrantsConfig::None;
        }
    };
    let mut grants = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        let at = format!("{at}[{i}]");
        let raw: RawGrant = match item.try_into() {
            Ok(raw) => raw,
            Err(e) => {
                problems.push(format!("{at}: {}", e.to_string().trim()));
                continue;
            }
        };
        let grant = ExecGrant {
            program: raw.program,
            args: raw.args,
            each: raw.each,
            env: match raw.env {
                None => Vec::new(),
                Some(env) => compile_env(&format!("{at}.env"), env, problems),
            },
        };
        for problem in grant.problems() {
            problems.push(format!("{at}: {problem}"));
        }
        grants.push(grant);
    }
    GrantsConfig::List(grants)
}

/// A grant's `env`: `{ NAME = "value or pattern", NAME = { value = "…", secret = true } }`.
fn compile_env(at: &str, value: toml::Value, problems: &mut Vec<String>) -> Vec<EnvGrant> {
    let table = match value {
        toml::Value::Table(table) => table,
        toml::Value::Array(names) => {
            let names: Vec<String> = names
                .iter()
                .map(|n| match n.as_str() {
                    Some(name) => format!("{name} = \"…\""),
                    None => format!("{n} = \"…\""),
                })
                .collect();
            problems.push(format!(
                "{at}: a list of names is no longer accepted: give each variable the value it \
                 may take, e.g. env = {{ {} }}",
                names.join(", ")
            ));
            return Vec::new();
        }
        other => {
            problems.push(format!(
                "{at}: `{other}` is not a table of NAME = \"value\" (e.g. env = {{ \
                 DEBIAN_FRONTEND = \"noninteractive\" }})"
            ));
            return Vec::new();
        }
    };
    let mut env = Vec::new();
    for (name, value) in table {
        let (value, secret) = match value {
            toml::Value::String(value) => (value, false),
            value @ toml::Value::Table(_) => match value.try_into::<RawEnvValue>() {
                Ok(raw) => (raw.value, raw.secret),
                Err(e) => {
                    problems.push(format!("{at}.{name}: {}", e.to_string().trim()));
                    continue;
                }
            },
            other => {
                problems.push(format!(
                    "{at}.{name}: `{other}` is not a value (a string) or {{ value = \"…\", \
                     secret = true }}"
                ));
                continue;
            }
        };
        env.push(EnvGrant {
            name,
            value,
            secret,
        });
    }
    env
}

/// A CA file made absolute from `base`, or `None` with a problem when it is empty or holds
/// no usable PEM certificate.
fn compile_ca_file(
    at: &str,
    path: PathBuf,
    base: &Path,
    problems: &mut Vec<String>,
) -> Option<PathBuf> {
    if path.as_os_str().is_empty() {
        problems.push(format!("{at}: must not be empty"));
        return None;
    }
    let path = base.join(path);
    match crate::http::roots_with_ca_file(&path) {
        Ok(_) => Some(path),
        Err(reason) => {
            problems.push(format!("{at} {}: {reason}", path.display()));
            None
        }
    }
}

/// `[rollout]` as a rollout policy; every problem lands in `problems`.
fn compile_rollout_policy(
    value: toml::Value,
    problems: &mut Vec<String>,
) -> patchwave_rollout::Policy {
    let policy: patchwave_rollout::Policy = match value.try_into() {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("rollout: {}", e.to_string().trim()));
            return patchwave_rollout::Policy::default();
        }
    };
    match policy.validate() {
        Ok(()) => policy,
        Err(errors) => {
            problems.extend(errors.as_slice().iter().map(|p| format!("rollout.{p}")));
            patchwave_rollout::Policy::default()
        }
    }
}

/// `[classify]` as a classification policy; every problem lands in `problems`.
fn compile_policy(value: toml::Value, problems: &mut Vec<String>) -> patchwave_advisory::Policy {
    let raw: patchwave_advisory::PolicyConfig = match value.try_into() {
        Ok(raw) => raw,
        Err(e) => {
            problems.push(format!("classify: {}", e.to_string().trim()));
            return patchwave_advisory::Policy::default();
        }
    };
    raw.compile().unwrap_or_else(|errors| {
        problems.extend(errors.0.iter().map(|p| format!("classify.{p}")));
        patchwave_advisory::Policy::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `err` names every one of `needles` and has exactly that many problems.
    fn assert_problems(err: &ConfigErrors, needles: &[&str]) {
        let all = err.to_string();
        for needle in needles {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert_eq!(err.problems.len(), needles.len(), "{all}");
    }

    /// The documented example is a working config, every section of it.
    #[test]
    fn the_example_config_compiles_with_every_section() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = Config::from_toml(&text, "example.toml", Path::new("/etc/patchwave")).unwrap();
        assert_eq!(c.hosts.len(), 4);
        assert_eq!(c.health.sources.len(), 3);
        assert_eq!(c.rollout.waves, vec![5, 25, 50, 100]);
        assert!(c.rollout.window.is_some());
        assert_eq!(c.policy.exclusions.len(), 1);
        assert_eq!(c.advisories.osv.len(), 1);
        assert!(c.snapshot.is_none());
    }

    #[test]
    fn fleet_file_compiles() {
        let text = r#"
            [scan]
            concurrency = 5
            stale_after = "2d"

            [plugins.debian]
            grants = "manifest"
            deadline_ms = 5000

            [defaults]
            user = "root"
            key = "file:/keys/id"
            known_hosts = "/keys/known_hosts"

            [[hosts]]
            id = "h01"
            address = "10.77.0.2"
            env = "non-prod"
            scope = "web"
            tags = ["fleet-test"]

            [[hosts]]
            id = "localhost"
        "#;
        let defaults = DefaultDirs::resolve(0, |_| None);
        let c = Config::from_toml_with(text, "t", Path::new("/etc/pw"), &defaults).unwrap();
        assert_eq!(c.scan_concurrency, 5);
        assert_eq!(c.stale_after, chrono::Duration::days(2));
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(c.hosts[0].env, Environment::NonProd);
        assert_eq!(c.hosts[1].transport, TransportSpec::Local);
        assert_eq!(c.plugin("debian").grants, GrantsConfig::Manifest);
        assert_eq!(c.plugin("debian").limits.deadline_ms, 5000);
        assert_eq!(c.plugin("other").grants, GrantsConfig::None);
        // Directories the file does not set are the runner's defaults, not places next to
        // the file (or in the working directory).
        assert_eq!(
            c.store_path,
            PathBuf::from("/var/lib/patchwave/patchwave.db")
        );
        assert_eq!(c.plugin_dir, PathBuf::from("/usr/lib/patchwave/plugins"));
        match &c.hosts[0].transport {
            TransportSpec::Ssh {
                port, user, key, ..
            } => {
                assert_eq!(*port, 22);
                assert_eq!(user, "root");
                assert_eq!(key, &KeyRef::File("/keys/id".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn default_dirs_are_system_paths_for_root_and_xdg_paths_for_others() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        // Root ignores HOME and XDG (sudo may pass another user's).
        let root =
            DefaultDirs::resolve(0, env(&[("HOME", "/home/alice"), ("XDG_STATE_HOME", "/x")]));
        assert_eq!(root.state_dir, Ok(PathBuf::from("/var/lib/patchwave")));
        assert_eq!(
            root.plugin_dir,
            Ok(PathBuf::from("/usr/lib/patchwave/plugins"))
        );

        let user = DefaultDirs::resolve(1000, env(&[("HOME", "/home/bob")]));
        assert_eq!(
            user.state_dir,
            Ok(PathBuf::from("/home/bob/.local/state/patchwave"))
        );
        assert_eq!(
            user.plugin_dir,
            Ok(PathBuf::from("/home/bob/.local/share/patchwave/plugins"))
        );
        let xdg = DefaultDirs::resolve(
            1000,
            env(&[
                ("HOME", "/home/bob"),
                ("XDG_STATE_HOME", "/st"),
                ("XDG_DATA_HOME", "/da"),
            ]),
        );
        assert_eq!(xdg.state_dir, Ok(PathBuf::from("/st/patchwave")));
        assert_eq!(xdg.plugin_dir, Ok(PathBuf::from("/da/patchwave/plugins")));
        // Relative values would mean the working directory: ignored, and without an
        // absolute HOME there is no default at all.
        let relative = DefaultDirs::resolve(
            1000,
            env(&[
                ("HOME", "."),
                ("XDG_STATE_HOME", "state"),
                ("XDG_DATA_HOME", ""),
            ]),
        );
        assert!(relative.state_dir.is_err() && relative.plugin_dir.is_err());
        let err = Config::from_toml_with("", "t", Path::new("/etc/pw"), &relative).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].starts_with("state.dir: not set"), "{err}");
        assert!(err.problems[1].starts_with("plugins.dir: not set"), "{err}");
        // What the file sets wins, relative to the file's directory.
        let c = Config::from_toml_with(
            "[state]\ndir = \"st\"\n[plugins]\ndir = \"/p\"\n",
            "t",
            Path::new("/etc/pw"),
            &relative,
        )
        .unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/etc/pw/st"));
        assert_eq!(c.plugin_dir, PathBuf::from("/p"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [scan]
            stale_after = "soon"

            [plugins.debian]
            grants = [{ program = "sh -c", args = ["**", "x"] }]

            [[hosts]]
            id = "a"
            env = "staging"
            key = "/no/scheme"
            address = "x"

            [[hosts]]
            id = "a"
            transport = "telnet"

            [[hosts]]
            address = "y"
        "#;
        let err = Config::from_toml(text, "bad.toml", Path::new(".")).unwrap_err();
        assert_problems(
            &err,
            &[
                "scan.stale_after",
                "plugins.debian.grants[0]: program `sh -c`",
                "`**` may only be the last",
                "hosts[0] (a).env: `staging`",
                "hosts[0] (a).key",
                "hosts[1] (a).id: `a` is used by more than one host",
                "hosts[1] (a).transport: `telnet`",
                "hosts[2]: missing `id`",
                "hosts[2]: missing `key`",
            ],
        );
    }

    #[test]
    fn a_misspelt_key_in_plugins_or_a_grant_is_named_with_its_table() {
        let text = r#"
            [plugins]
            dri = "/usr/lib/patchwave/plugins"

            [plugins.debian]
            grant = "manifest"

            [plugins.other]
            grants = [
              { program = "cat", arg = ["/etc/os-release"] },
              { args = ["-r"] },
              { program = "apt-get", args = ["install", "--", "**"], each = "<package>=<version>", env = { DEBIAN_FRONTEND = { value = "noninteractive", secrte = true } } },
            ]
        "#;
        let err = Config::from_toml(text, "t", Path::new(".")).unwrap_err();
        assert!(!err.to_string().contains("untagged"), "{err}");
        assert_problems(
            &err,
            &[
                "plugins: unknown key `dri` (string \"/usr/lib/patchwave/plugins\")",
                "plugins.debian: unknown field `grant`",
                "plugins.other.grants[0]: unknown field `arg`",
                "plugins.other.grants[1]: missing field `program`",
                "plugins.other.grants[2].env.DEBIAN_FRONTEND: unknown field `secrte`",
            ],
        );
    }

    #[test]
    fn env_grants_carry_values_and_refuse_names_the_host_owns() {
        let text = r#"
            [plugins.debian]
            grants = [
              { program = "apt-get", args = ["remove", "--", "**"], each = "<package>", env = { DEBIAN_FRONTEND = "noninteractive", APT_LISTCHANGES_FRONTEND = "none", TOKEN = { value = "*", secret = true } } },
            ]
        "#;
        let c = Config::from_toml(text, "t", Path::new(".")).unwrap();
        let GrantsConfig::List(list) = c.plugin("debian").grants else {
            panic!("a list");
        };
        let want = ExecGrant {
            program: "apt-get".into(),
            args: vec!["remove".into(), "--".into(), "**".into()],
            each: Some("<package>".into()),
            env: vec![
                EnvGrant::new("DEBIAN_FRONTEND", "noninteractive"),
                EnvGrant::new("APT_LISTCHANGES_FRONTEND", "none"),
                EnvGrant {
                    secret: true,
                    ..EnvGrant::new("TOKEN", "*")
                },
            ],
        };
        assert_eq!(list, vec![want]);

        let text = r#"
            [plugins.debian]
            grants = [
              { program = "x", env = { PATH = "/tmp", LD_PRELOAD = "/tmp/x.so", "A=B" = "c", "" = "d", OK = "a;*" } },
              { program = "apt-get", args = ["install"], env = ["DEBIAN_FRONTEND", "APT_LISTCHANGES_FRONTEND"] },
              { program = "y", args = ["<pkg>", "--"], each = "<package>" },
            ]
        "#;
        let err = Config::from_toml(text, "t", Path::new(".")).unwrap_err();
        assert_problems(
            &err,
            &[
                "plugins.debian.grants[0]: env name \"\" is not a variable name",
                "plugins.debian.grants[0]: env name \"A=B\" is not a variable name",
                "plugins.debian.grants[0]: env `LD_PRELOAD` is refused",
                "plugins.debian.grants[0]: env `OK`: value pattern \"a;*\"",
                "plugins.debian.grants[0]: env `PATH` is refused",
                "plugins.debian.grants[1].env: a list of names is no longer accepted: give each \
             variable the value it may take, e.g. env = { DEBIAN_FRONTEND = \"…\", \
             APT_LISTCHANGES_FRONTEND = \"…\" }",
                "plugins.debian.grants[2]: args[0] `<pkg>`: unknown class `<pkg>`",
                "plugins.debian.grants[2]: each `<package>` applies to the arguments a final `**` \
             takes, and args has no final `**`",
            ],
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = Config::from_toml(
            "[[hosts]]\nid = \"a\"\nadress = \"x\"\n",
            "t",
            Path::new("."),
        )
        .unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
    }

    #[test]
    fn advisories_ca_file_is_checked_with_every_other_problem() {
        let text = "[scan]\nconcurrency = 0\n[advisories]\nca_file = \"certs/nope.pem\"\n";
        let err = Config::from_toml(text, "t", Path::new("/nonexistent-pw")).unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                "scan.concurrency must be at least 1".to_string(),
                "advisories.ca_file /nonexistent-pw/certs/nope.pem: I/O error: No such file or \
                 directory (os error 2)"
                    .to_string(),
            ]
        );
        let err =
            Config::from_toml("[advisories]\nca_file = \"\"\n", "t", Path::new(".")).unwrap_err();
        assert_eq!(err.problems, vec!["advisories.ca_file: must not be empty"]);

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.pem"), "no certificate here\n").unwrap();
        let err = Config::from_toml("[advisories]\nca_file = \"empty.pem\"\n", "t", dir.path())
            .unwrap_err();
        assert_eq!(
            err.problems,
            vec![format!(
                "advisories.ca_file {}: holds no PEM certificate",
                dir.path().join("empty.pem").display()
            )]
        );
        let none = Config::from_toml("", "t", dir.path()).unwrap();
        assert_eq!(none.advisories.ca_file, None);
    }

    /// One grammar for every duration key (the rollout's and the engine's accept the same
    /// spellings), overflow-checked, and every error names the key and the value.
    #[test]
    fn durations_share_one_checked_grammar_and_errors_name_the_key() {
        let text = "[scan]\nstale_after = \"1w\"\n[ssh]\nconnect_timeout = \"250ms\"\n\
                    command_timeout = \"1h30m\"\n[rollout]\nsoak = \"1500ms\"\n";
        let c = Config::from_toml(text, "t", Path::new(".")).unwrap();
        assert_eq!(c.stale_after, chrono::Duration::weeks(1));
        assert_eq!(c.ssh.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.ssh.command_timeout, Some(Duration::from_secs(5400)));
        assert_eq!(c.rollout.soak.as_millis(), 1500);

        // This overflowed u64 (a panic in a debug build, a silent wrap in a release build).
        let text = "[scan]\nstale_after = \"307445734561825861m\"\n[ssh]\nkeepalive = \"15\"\n";
        let err = Config::from_toml(text, "t", Path::new(".")).unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                "scan.stale_after: duration `307445734561825861m` is longer than the maximum \
                 of 3650d"
                    .to_string(),
                "ssh.keepalive: duration `15`: the number `15` has no unit (ms, s, m, h, d or w)"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn command_timeout_is_unset_by_default_and_never_zero() {
        let c = Config::from_toml("", "t", Path::new(".")).unwrap();
        assert_eq!(c.ssh.command_timeout, None);
        let err = Config::from_toml("[ssh]\ncommand_timeout = \"0s\"\n", "t", Path::new("."))
            .unwrap_err();
        assert_eq!(
            err.problems,
            vec!["ssh.command_timeout must be longer than 0"]
        );
        let err = Config::from_toml("[ssh]\ncommand_timeout = \"soon\"\n", "t", Path::new("."))
            .unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert!(
            err.problems[0].starts_with("ssh.command_timeout: "),
            "{err}"
        );
    }

    /// `address` is SSH's: a local or simulated host needs none, a simulated one takes
    /// none, and `sim` belongs to simulated hosts.
    #[test]
    fn each_transport_checks_its_own_fields() {
        let text = r#"
            [defaults]
            key = "file:/keys/id"

            [[hosts]]
            id = "s1"
            transport = "sim"
            sim = { packages = 12, image = 3, installed = { acme-web = "1.0-1" }, archive = { acme-web = ["1.0-1", "1.0-2"] } }

            [[hosts]]
            id = "s2"
            transport = "sim"

            [[hosts]]
            id = "l1"
            transport = "local"
        "#;
        let c = Config::from_toml(text, "t", Path::new(".")).unwrap();
        let TransportSpec::Sim(spec) = &c.hosts[0].transport else {
            panic!("{:?}", c.hosts[0]);
        };
        assert_eq!(spec.packages, 12);
        assert_eq!(spec.image, Some(3));
        assert_eq!(spec.installed["acme-web"], "1.0-1");
        assert_eq!(spec.archive["acme-web"], vec!["1.0-1", "1.0-2"]);
        assert_eq!(c.hosts[0].address(), "sim");
        assert_eq!(c.hosts[0].port(), None);
        assert_eq!(c.hosts[0].transport.kind(), "sim");
        assert_eq!(
            c.hosts[1].transport,
            TransportSpec::Sim(SimSpec {
                packages: 300,
                ..SimSpec::default()
            })
        );
        assert_eq!(c.hosts[2].transport, TransportSpec::Local);

        let text = r#"
            [[hosts]]
            id = "s1"
            transport = "sim"
            address = "10.0.0.1"
            key = "file:/k"
            sim = { packages = 100000, archive = { x = [] } }

            [[hosts]]
            id = "h1"
            key = "file:/k"
            sim = { packages = 1 }

        "#;
        let err = Config::from_toml(text, "t", Path::new(".")).unwrap_err();
        assert_problems(
            &err,
            &[
                "hosts[0] (s1).address: a simulated host has no `address`",
                "hosts[0] (s1).key: a simulated host has no `key`",
                "hosts[0] (s1).sim.packages: 100000 is more than the",
                "hosts[0] (s1).sim.archive.x: give at least one version",
                "hosts[1] (h1): missing `address`",
                "hosts[1] (h1).sim: only a host with transport = \"sim\" takes it",
            ],
        );
        // A misspelt key of `sim` is refused by the parser, as every unknown key is.
        let text = "[[hosts]]\nid = \"s2\"\ntransport = \"sim\"\nsim = { pakages = 1 }\n";
        let err = Config::from_toml(text, "t", Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("pakages"), "{err}");
    }

    #[test]
    fn host_ids_follow_the_shared_id_rule() {
        let text = "[[hosts]]\nid = \"-rf\"\ntransport = \"local\"\n\
                    [[hosts]]\nid = \"../x\"\ntransport = \"local\"\n";
        let err = Config::from_toml(text, "t", Path::new(".")).unwrap_err();
        assert_eq!(
            err.problems,
            vec![
                "hosts[0] (-rf).id: `-rf` must not start with `-` or `.`".to_string(),
                "hosts[1] (../x).id: `../x` may only use letters, digits, `-`, `_` and `.`"
                    .to_string(),
            ]
        );
    }
}
