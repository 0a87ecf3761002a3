//! Runs commands on a remote host over SSH (the `russh` client).
//!
//! One [`SshContext`] per run holds what all hosts share: the client key, the enrolled
//! host keys, the global bound on concurrent commands and the timeouts. One
//! [`SshTransport`] per host keeps a single authenticated connection and opens one
//! session channel per command on it.
//!
//! Guarantees:
//! - Nothing is sent to a host whose key is not enrolled, or differs from the enrolled
//!   one: the check happens during key exchange, before authentication.
//! - A command is started at most once. If the connection is found dead before a command
//!   was sent, the transport reconnects and sends it; if it dies after, the result is
//!   [`TransportError::Disconnected`] (the command may or may not have run) and the
//!   command is never re-sent.
//! - The remote process sees the same environment as with the local transport: a fixed
//!   `PATH`, `LC_ALL=C`, `LANG=C` and the command's own variables (see `quote.rs`).
//!   This needs a POSIX login shell for the remote user.
//! - A command's time limit is its own, capped by [`SshSettings::command_timeout`] when
//!   that is set.
//! - The host enforces the command timeout itself (`timeout -s KILL`, see `quote.rs`), so
//!   a command that timed out is killed there even if the connection is gone.

mod key;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use patchwave_core::HostId;
use russh::client::{self, AuthResult, Handle};
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, Preferred, Sig};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;

pub use key::{ClientKey, KeyError, KeySource};
pub use russh::keys::PublicKey;

use crate::known_hosts::{fingerprint, HostKeyStatus, KnownHosts};
use crate::quote::{command_line, spawn_failure};
use crate::{
    Command, Output, Transport, TransportError, DEFAULT_COMMAND_TIMEOUT, DEFAULT_MAX_OUTPUT,
};

/// Where one host is and whom to log in as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// The host's id in the inventory (used in errors and logs).
    pub host: HostId,
    /// DNS name or IP address to connect to; also the name looked up in known_hosts.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// Remote user.
    pub user: String,
}

/// Knobs shared by every host of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSettings {
    /// Limit for TCP connect + key exchange + authentication.
    pub connect_timeout: Duration,
    /// Send a keepalive after this long without hearing from the server.
    pub keepalive_interval: Duration,
    /// Give the connection up after this many unanswered keepalives in a row.
    pub keepalive_max: usize,
    /// Upper bound on every command's time limit: a command runs for the shorter of its
    /// own [`Command::timeout`] and this. `None`: no bound beyond the command's own.
    pub command_timeout: Option<Duration>,
    /// Cap on stdout + stderr of one command.
    pub max_output: usize,
    /// Commands (and connection attempts) in flight at once, across all hosts.
    pub max_concurrent: usize,
    /// Commands in flight at once on one host's connection. OpenSSH's sshd refuses more
    /// than `MaxSessions` (default 10) channels per connection.
    pub max_sessions_per_host: usize,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
            command_timeout: None,
            max_output: DEFAULT_MAX_OUTPUT,
            max_concurrent: 32,
            max_sessions_per_host: 8,
        }
    }
}

impl SshSettings {
    /// The time limit `cmd` runs under: its own ([`DEFAULT_COMMAND_TIMEOUT`] when that is
    /// zero, as locally), capped by [`SshSettings::command_timeout`].
    pub fn limit_for(&self, cmd: &Command) -> Duration {
        let own = if cmd.timeout.is_zero() {
            DEFAULT_COMMAND_TIMEOUT
        } else {
            cmd.timeout
        };
        self.command_timeout.map_or(own, |cap| own.min(cap))
    }
}

/// Counters, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SshStats {
    /// SSH connections established (authenticated).
    pub connections_opened: u64,
    /// Commands sent to a host.
    pub commands_started: u64,
    /// Most commands that were ever in flight at once.
    pub peak_in_flight: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections_opened: AtomicU64,
    commands_started: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

/// What every host of a run shares; build one, wrap it in an `Arc`, and make one
/// [`SshTransport`] per host from it.
#[derive(Debug)]
pub struct SshContext {
    key: ClientKey,
    known_hosts: Arc<KnownHosts>,
    settings: SshSettings,
    slots: Semaphore,
    counters: Counters,
}

impl SshContext {
    /// A context authenticating with `key` and trusting only the keys in `known_hosts`.
    /// `max_concurrent` and `max_sessions_per_host` below 1 are taken as 1.
    pub fn new(key: ClientKey, known_hosts: Arc<KnownHosts>, settings: SshSettings) -> Arc<Self> {
        let slots = Semaphore::new(settings.max_concurrent.max(1));
        Arc::new(SshContext {
            key,
            known_hosts,
            settings,
            slots,
            counters: Counters::default(),
        })
    }

    /// The settings this context was built with.
    pub fn settings(&self) -> &SshSettings {
        &self.settings
    }

    /// The enrolled host keys.
    pub fn known_hosts(&self) -> &Arc<KnownHosts> {
        &self.known_hosts
    }

    /// Counters over all hosts.
    pub fn stats(&self) -> SshStats {
        SshStats {
            connections_opened: self.counters.connections_opened.load(Ordering::Relaxed),
            commands_started: self.counters.commands_started.load(Ordering::Relaxed),
            peak_in_flight: self.counters.peak_in_flight.load(Ordering::Relaxed),
        }
    }

    /// The transport for one host.
    pub fn transport(self: &Arc<Self>, target: SshTarget) -> SshTransport {
        SshTransport::new(target, Arc::clone(self))
    }

    /// russh client configuration for a host whose enrolled keys are of `enrolled` types:
    /// ask for those types first, so a server with several host keys presents the one we
    /// know rather than one we would have to call unknown.
    fn client_config(&self, enrolled: &[Algorithm]) -> Arc<client::Config> {
        let defaults = Preferred::default();
        let rsa = |a: &Algorithm| matches!(a, Algorithm::Rsa { .. });
        let known = |a: &Algorithm| enrolled.iter().any(|e| e == a || (rsa(e) && rsa(a)));
        let mut keys: Vec<Algorithm> = defaults.key.iter().filter(|a| known(a)).cloned().collect();
        keys.extend(defaults.key.iter().filter(|a| !known(a)).cloned());
        Arc::new(client::Config {
            keepalive_interval: Some(self.settings.keepalive_interval),
            keepalive_max: self.settings.keepalive_max,
            inactivity_timeout: None,
            nodelay: true,
            preferred: Preferred {
                key: keys.into(),
                ..defaults
            },
            ..Default::default()
        })
    }
}

/// A host key as presented by a server, for enrolment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedHostKey {
    /// The key.
    pub key: PublicKey,
    /// Its `SHA256:…` fingerprint.
    pub fingerprint: String,
}

/// Connect to `address:port`, take the host key the server presents, and hang up before
/// authenticating. For `patchwave hosts trust`: show the fingerprint to the operator, then
/// [`KnownHosts::add`] it. Nothing is trusted by this call.
pub async fn fetch_host_key(
    address: &str,
    port: u16,
    connect_timeout: Duration,
) -> Result<PresentedHostKey, TransportError> {
    let host = HostId::from(address);
    let span = tracing::info_span!("ssh.fetch_host_key", %host, port);
    async {
        let run = async {
            let socket = tcp_connect(&host, address, port).await?;
            let config = Arc::new(client::Config::default());
            let handler = ClientHandler {
                check: HostKeyCheck::Capture,
            };
            match client::connect_stream(config, socket, handler).await {
                Err(HandlerError::Captured(key)) => Ok(PresentedHostKey {
                    fingerprint: fingerprint(&key),
                    key,
                }),
                Err(e) => Err(handshake_error(&host, e)),
                Ok(_) => Err(TransportError::Unreachable {
                    host: host.clone(),
                    detail: "server completed key exchange without presenting a host key".into(),
                }),
            }
        };
        tokio::time::timeout(connect_timeout, run)
            .await
            .unwrap_or_else(|_| {
                Err(TransportError::Timeout {
                    host: host.clone(),
                    after: connect_timeout,
                    during: "connecting".into(),
                })
            })
    }
    .instrument(span)
    .await
}

enum HostKeyCheck {
    Verify {
        known_hosts: Arc<KnownHosts>,
        address: String,
        port: u16,
    },
    Capture,
}

struct ClientHandler {
    check: HostKeyCheck,
}

/// How the handler stops a handshake, so the caller can tell why.
#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    HostKey(HostKeyStatus),
    Captured(PublicKey),
    Certificate,
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // Certificates are never asked for (no certificate algorithms are offered).
            PublicKeyOrCertificate::Certificate(_) => return Err(HandlerError::Certificate),
        };
        match &self.check {
            HostKeyCheck::Capture => Err(HandlerError::Captured(key.clone())),
            HostKeyCheck::Verify {
                known_hosts,
                address,
                port,
            } => match known_hosts.verify(address, *port, key) {
                HostKeyStatus::Trusted => Ok(true),
                refused => Err(HandlerError::HostKey(refused)),
            },
        }
    }
}

fn handshake_error(host: &HostId, e: HandlerError) -> TransportError {
    let host = host.clone();
    match e {
        HandlerError::HostKey(HostKeyStatus::Unknown { fingerprint }) => {
            TransportError::UnknownHostKey { host, fingerprint }
        }
        HandlerError::HostKey(HostKeyStatus::Mismatch {
            expected,
            presented,
        }) => TransportError::HostKeyMismatch {
            host,
            expected,
            presented,
        },
        HandlerError::HostKey(HostKeyStatus::Revoked { fingerprint }) => {
            TransportError::HostKeyMismatch {
                host,
                expected: "none (the presented key is @revoked in known_hosts)".into(),
                presented: fingerprint,
            }
        }
        HandlerError::HostKey(HostKeyStatus::Trusted) | HandlerError::Captured(_) => {
            TransportError::Unreachable {
                host,
                detail: "handshake stopped unexpectedly".into(),
            }
        }
        HandlerError::Certificate => TransportError::Unreachable {
            host,
            detail: "server presented a host certificate, which is not supported".into(),
        },
        HandlerError::Ssh(e) => TransportError::Unreachable {
            host,
            detail: format!("SSH handshake failed: {e}"),
        },
    }
}

async fn tcp_connect(host: &HostId, address: &str, port: u16) -> Result<TcpStream, TransportError> {
    let addrs: Vec<_> = tokio::net::lookup_host((address, port))
        .await
        .map_err(|e| TransportError::Unreachable {
            host: host.clone(),
            detail: format!("cannot resolve {address}: {e}"),
        })?
        .collect();
    let mut last: Option<std::io::Error> = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                if let Err(e) = s.set_nodelay(true) {
                    tracing::debug!("set_nodelay failed: {e}");
                }
                return Ok(s);
            }
            Err(e) => {
                tracing::debug!(%addr, "TCP connect failed: {e}");
                last = Some(e);
            }
        }
    }
    Err(match last {
        None => TransportError::Unreachable {
            host: host.clone(),
            detail: format!("{address} resolves to no address"),
        },
        Some(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => TransportError::Refused {
            host: host.clone(),
            detail: format!("{address}:{port}: {e}"),
        },
        Some(e) => TransportError::Unreachable {
            host: host.clone(),
            detail: format!("{address}:{port}: {e}"),
        },
    })
}

/// Linux signal numbers for the names SSH `exit-signal` carries (RFC 4254 §6.10 names,
/// without the `SIG` prefix).
fn signal_number(sig: &Sig) -> Option<i32> {
    let name = match sig {
        Sig::ABRT => return Some(6),
        Sig::ALRM => return Some(14),
        Sig::FPE => return Some(8),
        Sig::HUP => return Some(1),
        Sig::ILL => return Some(4),
        Sig::INT => return Some(2),
        Sig::KILL => return Some(9),
        Sig::PIPE => return Some(13),
        Sig::QUIT => return Some(3),
        Sig::SEGV => return Some(11),
        Sig::TERM => return Some(15),
        Sig::USR1 => return Some(10),
        Sig::Custom(name) => name.strip_prefix("SIG").unwrap_or(name),
    };
    Some(match name {
        "TRAP" => 5,
        "BUS" => 7,
        "USR2" => 12,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return None,
    })
}

struct Connection {
    handle: Handle<ClientHandler>,
}

#[derive(Default)]
struct ConnectionSlot {
    live: Option<Arc<Connection>>,
    /// The last failed attempt, handed to callers that were already waiting for it, so a
    /// dead host costs one connect timeout, not one per queued command.
    last_failure: Option<(Instant, TransportError)>,
}

/// Runs commands on one host over SSH; see the module documentation.
pub struct SshTransport {
    target: SshTarget,
    ctx: Arc<SshContext>,
    conn: Mutex<ConnectionSlot>,
    sessions: Semaphore,
    connections_opened: AtomicU64,
}

impl std::fmt::Debug for SshTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport")
            .field("target", &self.target)
            .field("connections_opened", &self.connections_opened())
            .finish_non_exhaustive()
    }
}

impl SshTransport {
    /// A transport for `target`, sharing `ctx` with the other hosts of the run. Does not
    /// connect: the first command does.
    pub fn new(target: SshTarget, ctx: Arc<SshContext>) -> Self {
        let sessions = Semaphore::new(ctx.settings.max_sessions_per_host.max(1));
        SshTransport {
            target,
            ctx,
            conn: Mutex::new(ConnectionSlot::default()),
            sessions,
            connections_opened: AtomicU64::new(0),
        }
    }

    /// Where this transport connects.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// How many SSH connections this transport has established so far.
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// Close the connection, if any, politely. The next command reconnects.
    pub async fn disconnect(&self) {
        let live = self.conn.lock().await.live.take();
        if let Some(c) = live {
            let _ = c
                .handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await;
        }
    }

    /// The live connection, or a new one. `true` when it was just made.
    async fn connection(&self) -> Result<(Arc<Connection>, bool), TransportError> {
        let asked = Instant::now();
        let mut slot = self.conn.lock().await;
        if let Some(c) = &slot.live {
            if !c.handle.is_closed() {
                return Ok((Arc::clone(c), false));
            }
            tracing::debug!("connection closed since the last command; reconnecting");
            slot.live = None;
        }
        if let Some((at, err)) = &slot.last_failure {
            if *at >= asked {
                return Err(err.clone());
            }
        }
        match self.connect().await {
            Ok(c) => {
                let c = Arc::new(c);
                slot.live = Some(Arc::clone(&c));
                slot.last_failure = None;
                Ok((c, true))
            }
            Err(e) => {
                slot.last_failure = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// Forget `dead` (if it is still the current connection).
    async fn discard(&self, dead: &Arc<Connection>) {
        let mut slot = self.conn.lock().await;
        if slot.live.as_ref().is_some_and(|c| Arc::ptr_eq(c, dead)) {
            slot.live = None;
        }
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let limit = self.ctx.settings.connect_timeout;
        let started = Instant::now();
        let result = tokio::time::timeout(limit, self.connect_unbounded()).await;
        match result {
            Err(_) => Err(TransportError::Timeout {
                host: self.target.host.clone(),
                after: limit,
                during: "connecting".into(),
            }),
            Ok(Err(e)) => {
                tracing::info!(error = %e, "connection failed");
                Err(e)
            }
            Ok(Ok(c)) => {
                self.connections_opened.fetch_add(1, Ordering::Relaxed);
                self.ctx
                    .counters
                    .connections_opened
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "connected"
                );
                Ok(c)
            }
        }
    }

    async fn connect_unbounded(&self) -> Result<Connection, TransportError> {
        let t = &self.target;
        let host = &t.host;
        if t.address.is_empty() || t.user.is_empty() {
            return Err(TransportError::Config {
                host: host.clone(),
                detail: "SSH target needs an address and a user".into(),
            });
        }
        let socket = tcp_connect(host, &t.address, t.port).await?;
        let known_hosts = Arc::clone(&self.ctx.known_hosts);
        let config = self
            .ctx
            .client_config(&known_hosts.enrolled_algorithms(&t.address, t.port));
        let handler = ClientHandler {
            check: HostKeyCheck::Verify {
                known_hosts,
                address: t.address.clone(),
                port: t.port,
            },
        };
        let mut handle = client::connect_stream(config, socket, handler)
            .await
            .map_err(|e| handshake_error(host, e))?;

        let lost = |e: russh::Error| TransportError::Unreachable {
            host: host.clone(),
            detail: format!("connection lost while authenticating: {e}"),
        };
        let private = self.ctx.key.private();
        let hash = if private.algorithm().is_rsa() {
            // `None` from the server means it did not say (no ext-info): assume SHA-512.
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(lost)?
                .unwrap_or(Some(HashAlg::Sha512))
        } else {
            None
        };
        let auth = handle
            .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(private, hash))
            .await
            .map_err(lost)?;
        match auth {
            AuthResult::Success => Ok(Connection { handle }),
            AuthResult::Failure {
                remaining_methods,
                partial_success,
            } => Err(TransportError::AuthFailed {
                host: host.clone(),
                user: t.user.clone(),
                detail: format!(
                    "server rejected key {} ({}){}; it offers: {:?}",
                    self.ctx.key.fingerprint(),
                    self.ctx.key.public_key().algorithm(),
                    if partial_success {
                        " as only partial authentication"
                    } else {
                        ""
                    },
                    remaining_methods
                ),
            }),
        }
    }

    async fn exec_inner(&self, cmd: &Command) -> Result<Output, TransportError> {
        let host = &self.target.host;
        let limit = self.ctx.settings.limit_for(cmd);
        let line = command_line(cmd, limit).map_err(|e| TransportError::Spawn {
            host: host.clone(),
            program: cmd.program.clone(),
            detail: e.0,
        })?;
        // Per-host first, so commands queued for one busy host do not hold global slots.
        let _session = self
            .sessions
            .acquire()
            .await
            .map_err(|_| self.closed_error())?;
        let _slot = self
            .ctx
            .slots
            .acquire()
            .await
            .map_err(|_| self.closed_error())?;
        let counters = &self.ctx.counters;
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        let _in_flight = InFlight(&counters.in_flight);

        let (mut conn, fresh) = self.connection().await?;
        // The command timeout starts once connected: connecting has its own limit.
        let deadline = Instant::now() + limit;
        let channel = match self.open_session(&conn, deadline, limit).await? {
            Ok(ch) => ch,
            Err(e) if !fresh && !matches!(e, russh::Error::ChannelOpenFailure(_)) => {
                // The reused connection died while idle; nothing was sent yet, so a new
                // connection may carry the command.
                tracing::debug!("reused connection is gone ({e}); reconnecting");
                self.discard(&conn).await;
                conn = self.connection().await?.0;
                match self.open_session(&conn, deadline, limit).await? {
                    Ok(ch) => ch,
                    Err(e) => return Err(self.channel_open_error(&conn, cmd, e).await),
                }
            }
            Err(e) => return Err(self.channel_open_error(&conn, cmd, e).await),
        };
        counters.commands_started.fetch_add(1, Ordering::Relaxed);
        let result = self.run(channel, line, cmd, deadline, limit).await;
        if matches!(result, Err(TransportError::Disconnected { .. })) {
            self.discard(&conn).await;
        }
        result
    }

    /// Open a session channel; the outer error is running out of time.
    async fn open_session(
        &self,
        conn: &Connection,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Result<russh::Channel<client::Msg>, russh::Error>, TransportError> {
        tokio::time::timeout_at(deadline, conn.handle.channel_open_session())
            .await
            .map_err(|_| TransportError::Timeout {
                host: self.target.host.clone(),
                after: limit,
                during: "opening a session".into(),
            })
    }

    async fn channel_open_error(
        &self,
        conn: &Arc<Connection>,
        cmd: &Command,
        e: russh::Error,
    ) -> TransportError {
        let host = self.target.host.clone();
        if let russh::Error::ChannelOpenFailure(reason) = e {
            return TransportError::Spawn {
                host,
                program: cmd.program.clone(),
                detail: format!("server refused a session channel: {reason:?}"),
            };
        }
        self.discard(conn).await;
        TransportError::Unreachable {
            host,
            detail: format!("connection lost before the command was sent: {e}"),
        }
    }

    fn closed_error(&self) -> TransportError {
        TransportError::Config {
            host: self.target.host.clone(),
            detail: "SSH transport is shut down".into(),
        }
    }

    async fn run(
        &self,
        channel: russh::Channel<client::Msg>,
        line: String,
        cmd: &Command,
        deadline: Instant,
        limit: Duration,
    ) -> Result<Output, TransportError> {
        let host = &self.target.host;
        let cap = self.ctx.settings.max_output;
        let (mut reader, writer) = channel.split();
        let writer = Arc::new(writer);
        let lost = |detail: String| TransportError::Disconnected {
            host: host.clone(),
            program: cmd.program.clone(),
            detail,
        };
        writer
            .exec(true, line.into_bytes())
            .await
            .map_err(|e| lost(format!("sending the command: {e}")))?;

        // Feed stdin while reading output, so neither side can stall the other on a full
        // window; then EOF (also when there is no stdin, like the local /dev/null).
        let feeder = {
            let writer = Arc::clone(&writer);
            let data = cmd.stdin.clone();
            tokio::spawn(async move {
                if let Some(data) = data {
                    if !data.is_empty() && writer.data_bytes(data).await.is_err() {
                        return;
                    }
                }
                let _ = writer.eof().await;
            })
        };
        let _abort_feeder = AbortOnDrop(feeder);
        // If the caller drops this future mid-command, still stop the remote program.
        let mut cancel_guard = StopOnDrop(Some(Arc::clone(&writer)));

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut status: Option<i32> = None;
        loop {
            let msg = tokio::select! {
                msg = reader.wait() => msg,
                () = tokio::time::sleep_until(deadline) => {
                    cancel_guard.disarm();
                    stop(&writer).await;
                    return Err(TransportError::Timeout {
                        host: host.clone(),
                        after: limit,
                        during: format!("running `{}`", cmd.program),
                    });
                }
            };
            let (to_stderr, data) = match msg {
                Some(ChannelMsg::Data { data }) => (false, data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => (true, data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    status = Some(i32::try_from(exit_status).unwrap_or(-1));
                    continue;
                }
                Some(ChannelMsg::ExitSignal {
                    signal_name,
                    core_dumped,
                    ..
                }) => {
                    let n = signal_number(&signal_name);
                    if n.is_none() {
                        tracing::warn!(signal = ?signal_name, "unknown exit signal; reporting status 255");
                    }
                    tracing::debug!(signal = ?signal_name, core_dumped, "killed by signal");
                    status = Some(n.map_or(255, |n| 128 + n));
                    continue;
                }
                Some(ChannelMsg::Failure) => {
                    cancel_guard.disarm();
                    stop(&writer).await;
                    return Err(TransportError::Spawn {
                        host: host.clone(),
                        program: cmd.program.clone(),
                        detail: "server refused the exec request".into(),
                    });
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => continue,
            };
            if stdout.len() + stderr.len() + data.len() > cap {
                cancel_guard.disarm();
                stop(&writer).await;
                return Err(TransportError::OutputTooLarge {
                    host: host.clone(),
                    program: cmd.program.clone(),
                    limit: cap,
                });
            }
            if to_stderr {
                stderr.extend_from_slice(&data);
            } else {
                stdout.extend_from_slice(&data);
            }
        }

        cancel_guard.disarm();
        let Some(status) = status else {
            return Err(lost("channel closed without an exit status".into()));
        };
        tracing::debug!(
            status,
            stdout_bytes = stdout.len(),
            stderr_bytes = stderr.len(),
            "finished"
        );
        if let Some(detail) = spawn_failure(&cmd.program, status, &stdout, &stderr) {
            return Err(TransportError::Spawn {
                host: host.clone(),
                program: cmd.program.clone(),
                detail,
            });
        }
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// Stop the remote program, as the local transport's kill-on-drop does, and close the channel.
async fn stop(writer: &russh::ChannelWriteHalf<client::Msg>) {
    let _ = writer.signal(Sig::KILL).await;
    let _ = writer.close().await;
}

/// Stops the remote program when dropped while armed (the exec future was cancelled).
struct StopOnDrop(Option<Arc<russh::ChannelWriteHalf<client::Msg>>>);

impl StopOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let (Some(writer), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move { stop(&writer).await });
        }
    }
}

struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &HostId {
        &self.target.host
    }

    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        let span = tracing::info_span!(
            "ssh.exec",
            host = %self.target.host,
            program = %cmd.program,
        );
        self.exec_inner(cmd).instrument(span).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_linux_numbers() {
        assert_eq!(signal_number(&Sig::TERM), Some(15));
        assert_eq!(signal_number(&Sig::KILL), Some(9));
        assert_eq!(signal_number(&Sig::Custom("USR2".into())), Some(12));
        assert_eq!(signal_number(&Sig::Custom("SIGBUS".into())), Some(7));
        assert_eq!(signal_number(&Sig::Custom("NOPE".into())), None);
    }

    #[test]
    fn enrolled_key_types_are_asked_for_first() {
        let dir = tempfile::tempdir().unwrap();
        let kh = Arc::new(KnownHosts::load(dir.path().join("kh")).unwrap());
        let key = ClientKey::load(&KeySource::Inline(zeroize::Zeroizing::new(
            key::TEST_KEY.to_string(),
        )))
        .unwrap();
        let ctx = SshContext::new(key, kh, SshSettings::default());
        let rsa = Algorithm::Rsa { hash: None };
        let config = ctx.client_config(std::slice::from_ref(&rsa));
        assert!(matches!(config.preferred.key[0], Algorithm::Rsa { .. }));
        let config = ctx.client_config(&[]);
        assert_eq!(config.preferred.key[0], Algorithm::Ed25519);
        assert_eq!(config.keepalive_interval, Some(Duration::from_secs(15)));
    }

    #[test]
    fn command_timeout_caps_every_command_and_zero_means_the_default() {
        let cmd = |ms| Command::new("true", &[], Duration::from_millis(ms));
        let free = SshSettings::default();
        assert_eq!(free.limit_for(&cmd(1_500)), Duration::from_millis(1_500));
        assert_eq!(free.limit_for(&cmd(0)), DEFAULT_COMMAND_TIMEOUT);
        let capped = SshSettings {
            command_timeout: Some(Duration::from_secs(60)),
            ..SshSettings::default()
        };
        assert_eq!(capped.limit_for(&cmd(420_000)), Duration::from_secs(60));
        assert_eq!(capped.limit_for(&cmd(1_500)), Duration::from_millis(1_500));
        assert_eq!(capped.limit_for(&cmd(0)), Duration::from_secs(60));
    }
}
