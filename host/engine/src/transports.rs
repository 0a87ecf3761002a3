//! Building a host's transport from its configuration: one [`TransportFactory`] per
//! `transport = "…"` word, kept in a [`TransportRegistry`].
//!
//! Building is async, so a backend may do network work before its first command (an
//! SDK client's credential chain, decrypting a key with a KMS); a factory may also share
//! state between the hosts it builds for (SSH shares one [`SshContext`] per key and
//! known_hosts file). Which fields a transport takes is checked with the rest of the
//! configuration (`config::transport_kinds`); what can only be found out by building
//! (an unreadable key file) is a [`TransportBuildError`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use patchwave_core::HostId;
use patchwave_transport::{
    ClientKey, KeyError, KeySource, KnownHosts, KnownHostsError, LocalTransport, SimImage,
    SimStats, SimTransport, SshContext, SshTarget, Transport,
};

use crate::config::{self, HostConfig, KeyRef, SimSpec, TransportSpec};

/// Why a host's transport could not be built. Each is a configuration problem on the
/// runner (the host was not contacted).
#[derive(Debug, thiserror::Error)]
pub enum TransportBuildError {
    /// No factory is registered for the word the host names.
    #[error("{host}: no transport `{kind}` is registered (registered: {registered})")]
    Unregistered {
        /// Host id.
        host: HostId,
        /// The `transport = "…"` word.
        kind: String,
        /// The words that are.
        registered: String,
    },
    /// The factory registered for the word does not build this kind of spec.
    #[error("{host}: the `{factory}` transport cannot build a `{kind}` host")]
    WrongSpec {
        /// Host id.
        host: HostId,
        /// The factory's word.
        factory: &'static str,
        /// The host's word.
        kind: &'static str,
    },
    /// The SSH client key could not be loaded.
    #[error("client key {}: {source}", path.display())]
    ClientKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: KeyError,
    },
    /// The known_hosts file could not be loaded.
    #[error("known_hosts: {0}")]
    KnownHosts(#[from] KnownHostsError),
}

/// Builds the transport of hosts that name one `transport = "…"` word.
#[async_trait]
pub trait TransportFactory: Send + Sync {
    /// The word this factory is registered under.
    fn kind(&self) -> &'static str;

    /// The transport for `host`, whose spec is of this factory's kind.
    async fn build(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, TransportBuildError>;
}

/// The factories, by word.
#[derive(Default)]
pub struct TransportRegistry {
    factories: BTreeMap<&'static str, Arc<dyn TransportFactory>>,
}

impl TransportRegistry {
    /// A registry with nothing in it.
    pub fn new() -> TransportRegistry {
        TransportRegistry::default()
    }

    /// Every transport the configuration accepts: `local`, `ssh` (with `config`'s `[ssh]`
    /// settings) and `sim`.
    pub fn builtin(ssh: &config::SshSettings) -> TransportRegistry {
        let mut registry = TransportRegistry::new();
        registry.register(Arc::new(LocalFactory));
        registry.register(Arc::new(SshFactory::new(ssh)));
        registry.register(Arc::new(SimFactory::default()));
        registry
    }

    /// Register `factory` under its word, replacing any factory registered there.
    pub fn register(&mut self, factory: Arc<dyn TransportFactory>) {
        self.factories.insert(factory.kind(), factory);
    }

    /// The registered words, sorted.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }

    /// The transport for `host`, from the factory registered under its word.
    pub async fn build(
        &self,
        host: &HostConfig,
    ) -> Result<Arc<dyn Transport>, TransportBuildError> {
        let kind = host.transport.kind();
        match self.factories.get(kind) {
            Some(factory) => factory.build(host).await,
            None => Err(TransportBuildError::Unregistered {
                host: host.id.clone(),
                kind: kind.to_string(),
                registered: self.kinds().collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

fn wrong_spec(factory: &'static str, host: &HostConfig) -> TransportBuildError {
    TransportBuildError::WrongSpec {
        host: host.id.clone(),
        factory,
        kind: host.transport.kind(),
    }
}

/// `transport = "local"`: this machine.
pub struct LocalFactory;

#[async_trait]
impl TransportFactory for LocalFactory {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn build(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, TransportBuildError> {
        match &host.transport {
            TransportSpec::Local => Ok(Arc::new(LocalTransport::new(host.id.clone()))),
            _ => Err(wrong_spec(self.kind(), host)),
        }
    }
}

/// `transport = "ssh"`: one [`SshContext`] per (client key, known_hosts) pair, shared by
/// the hosts that use it, so `[ssh] max_sessions` bounds each pair.
pub struct SshFactory {
    settings: patchwave_transport::SshSettings,
    contexts: tokio::sync::Mutex<HashMap<(PathBuf, PathBuf), Arc<SshContext>>>,
}

impl SshFactory {
    /// A factory applying the `[ssh]` settings to every context it makes.
    pub fn new(ssh: &config::SshSettings) -> SshFactory {
        SshFactory {
            settings: patchwave_transport::SshSettings {
                connect_timeout: ssh.connect_timeout,
                keepalive_interval: ssh.keepalive,
                command_timeout: ssh.command_timeout,
                max_concurrent: ssh.max_sessions,
                ..patchwave_transport::SshSettings::default()
            },
            contexts: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The context for one key and known_hosts file (loaded on first use).
    async fn context(
        &self,
        key: &KeyRef,
        known_hosts: &std::path::Path,
    ) -> Result<Arc<SshContext>, TransportBuildError> {
        let KeyRef::File(key_path) = key;
        let slot = (key_path.clone(), known_hosts.to_path_buf());
        // Held while loading, so hosts sharing a pair load its files once.
        let mut contexts = self.contexts.lock().await;
        if let Some(ctx) = contexts.get(&slot) {
            return Ok(ctx.clone());
        }
        let client_key = ClientKey::load(&KeySource::File(key_path.clone())).map_err(|source| {
            TransportBuildError::ClientKey {
                path: key_path.clone(),
                source,
            }
        })?;
        let known = KnownHosts::load(known_hosts.to_path_buf())?;
        let ctx = SshContext::new(client_key, Arc::new(known), self.settings.clone());
        contexts.insert(slot, ctx.clone());
        Ok(ctx)
    }
}

#[async_trait]
impl TransportFactory for SshFactory {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    async fn build(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, TransportBuildError> {
        let TransportSpec::Ssh {
            address,
            port,
            user,
            key,
            known_hosts,
        } = &host.transport
        else {
            return Err(wrong_spec(self.kind(), host));
        };
        let ctx = self.context(key, known_hosts).await?;
        Ok(Arc::new(ctx.transport(SshTarget {
            host: host.id.clone(),
            address: address.clone(),
            port: *port,
            user: user.clone(),
        })))
    }
}

/// `transport = "sim"`: a simulated Debian host per [`SimSpec`]; every host it builds
/// counts into the same [`SimStats`].
#[derive(Default)]
pub struct SimFactory {
    stats: Arc<SimStats>,
}

impl SimFactory {
    /// The counters of every host built so far.
    pub fn stats(&self) -> &Arc<SimStats> {
        &self.stats
    }
}

/// The image a [`SimSpec`] describes.
pub fn sim_image(spec: &SimSpec) -> SimImage {
    let mut image = SimImage::debian12(spec.packages);
    for (name, version) in &spec.installed {
        image = image.with_installed(name, version);
    }
    for (name, versions) in &spec.archive {
        let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
        image = image.with_archive(name, &versions);
    }
    match spec.image {
        Some(number) => image.rebuilt(number),
        None => image,
    }
}

#[async_trait]
impl TransportFactory for SimFactory {
    fn kind(&self) -> &'static str {
        "sim"
    }

    async fn build(&self, host: &HostConfig) -> Result<Arc<dyn Transport>, TransportBuildError> {
        match &host.transport {
            TransportSpec::Sim(spec) => Ok(Arc::new(SimTransport::new(
                host.id.clone(),
                sim_image(spec),
                self.stats.clone(),
            ))),
            _ => Err(wrong_spec(self.kind(), host)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use patchwave_transport::Command;

    use super::*;
    use crate::Config;

    fn config(text: &str) -> Config {
        Config::from_toml(text, "t", Path::new("/etc/pw")).unwrap()
    }

    #[test]
    fn every_word_the_config_accepts_has_a_factory() {
        let c = config("");
        let registry = TransportRegistry::builtin(&c.ssh);
        let mut words: Vec<&str> = config::transport_kinds().collect();
        words.sort();
        assert_eq!(registry.kinds().collect::<Vec<_>>(), words);
    }

    #[tokio::test]
    async fn a_sim_host_is_built_from_its_spec() {
        let c = config(
            "[[hosts]]\nid = \"s1\"\ntransport = \"sim\"\n\
             sim = { packages = 10, installed = { acme-web = \"1.0-1\" }, \
             archive = { acme-web = [\"1.0-1\", \"1.0-2\"] } }\n",
        );
        let registry = TransportRegistry::builtin(&c.ssh);
        let t = registry.build(&c.hosts[0]).await.unwrap();
        assert_eq!(t.host().as_str(), "s1");
        let out = t
            .exec(&Command::new(
                "apt-get",
                &["-s", "upgrade"],
                Duration::from_secs(1),
            ))
            .await
            .unwrap();
        let out = String::from_utf8(out.stdout).unwrap();
        assert!(out.contains("Inst acme-web [1.0-1] (1.0-2"), "{out}");
        let all = t
            .exec(&Command::new(
                "dpkg-query",
                &["-W", patchwave_transport::sim::SHOW_FORMAT],
                Duration::from_secs(1),
            ))
            .await
            .unwrap();
        assert_eq!(all.stdout.iter().filter(|b| **b == b'\n').count(), 11);
    }

    #[tokio::test]
    async fn ssh_setup_failures_name_the_file_and_an_unregistered_word_the_host() {
        let c = config(
            "[[hosts]]\nid = \"h1\"\naddress = \"10.0.0.1\"\nkey = \"file:/nonexistent/id\"\n",
        );
        let registry = TransportRegistry::builtin(&c.ssh);
        let err = registry.build(&c.hosts[0]).await.err().unwrap();
        assert!(
            err.to_string().starts_with("client key /nonexistent/id: "),
            "{err}"
        );

        let mut only_local = TransportRegistry::new();
        only_local.register(Arc::new(LocalFactory));
        let err = only_local.build(&c.hosts[0]).await.err().unwrap();
        assert_eq!(
            err.to_string(),
            "h1: no transport `ssh` is registered (registered: local)"
        );
    }
}
