//! Per-call store data and the host side of the `host` interface.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use patchwave_core::audit::{AuditEntry, AuditEnv};
use patchwave_core::{ExecGrant, ExecRequest, GrantDecision};
use patchwave_transport::{Command, Transport};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::audit::{AuditLog, AuditLogError};
use crate::bindings::{host, types};
use crate::limits::{Limits, MemoryLimiter};

/// What stays the same for every call of one loaded plugin.
#[derive(Debug)]
pub(crate) struct PluginIdentity {
    pub(crate) name: String,
    pub(crate) digest: String,
    pub(crate) declared: Vec<ExecGrant>,
    pub(crate) granted: Vec<ExecGrant>,
    pub(crate) limits: Limits,
    pub(crate) audit: Arc<AuditLog>,
}

/// The data of one `Store`: one call of one plugin against one target host.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) plugin: Arc<PluginIdentity>,
    target: Arc<dyn Transport>,
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
    /// When the call started; compute time = elapsed - time waiting on `exec`.
    pub(crate) started: Instant,
    pub(crate) waiting: Duration,
    pub(crate) deadline_hit: bool,
    log_lines: usize,
    pub(crate) log_dropped: usize,
}

const PIPE_CAPACITY: usize = 256 << 10;

impl CallState {
    pub(crate) fn new(plugin: Arc<PluginIdentity>, target: Arc<dyn Transport>) -> Self {
        let stdout = MemoryOutputPipe::new(PIPE_CAPACITY);
        let stderr = MemoryOutputPipe::new(PIPE_CAPACITY);
        // No preopens, no env, no args, no sockets, no name lookup: nothing ambient.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limit = usize::try_from(plugin.limits.memory_bytes).unwrap_or(usize::MAX);
        CallState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter { limit, hit: false },
            plugin,
            target,
            stdout,
            stderr,
            started: Instant::now(),
            waiting: Duration::ZERO,
            deadline_hit: false,
            log_lines: 0,
            log_dropped: 0,
        }
    }

    /// Compute time used so far.
    pub(crate) fn compute_used(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.waiting)
    }

    /// The audit line of `req` as decided, before it is marked started, ended or refused.
    fn audit_entry(&self, req: &ExecRequest, decision: &GrantDecision) -> AuditEntry {
        AuditEntry {
            time: Utc::now(),
            phase: None,
            plugin: self.plugin.name.clone(),
            plugin_digest: self.plugin.digest.clone(),
            host: self.target.host().to_string(),
            program: req.program.clone(),
            args: req.args.clone(),
            env: req
                .env
                .iter()
                .map(|(name, value)| AuditEnv::new(name, value, self.plugin.secret(name)))
                .collect(),
            decision: decision.word().to_string(),
            status: None,
            duration_ms: None,
            error: None,
        }
    }
}

impl PluginIdentity {
    /// Whether any of the plugin's declarations or the operator's grants marks the
    /// variable `name` secret: then its value is audited as a hash, whichever grant (if
    /// any) covered the request.
    fn secret(&self, name: &str) -> bool {
        self.declared
            .iter()
            .chain(&self.granted)
            .any(|g| g.secret(name))
    }

    /// `NAME=value` for each variable, `NAME=<secret>` for secret ones: for messages.
    fn env_shown(&self, env: &[(String, String)]) -> Vec<String> {
        env.iter()
            .map(|(name, value)| match self.secret(name) {
                true => format!("{name}=<secret>"),
                false => format!("{name}={value}"),
            })
            .collect()
    }
}

/// What a plugin is told when its request could not be audited.
fn unaudited(plugin: &str, e: AuditLogError) -> String {
    tracing::error!(%plugin, error = %e, "audit log write failed");
    format!("audit log unavailable: {e}")
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for CallState {}

impl host::Host for CallState {
    async fn exec(&mut self, cmd: host::Command) -> Result<host::Output, host::ExecError> {
        // The grant check is the first thing that happens to a request.
        let req = ExecRequest {
            program: cmd.program.clone(),
            args: cmd.args.clone(),
            env: cmd.env.clone(),
        };
        let decision = GrantDecision::decide(&self.plugin.declared, &self.plugin.granted, &req);
        let entry = self.audit_entry(&req, &decision);
        // Time spent waiting for the audit log (its lines are synced to disk) and for the
        // command is not the plugin's compute time.
        let waited = Instant::now();
        if let Some(why) = decision.reason() {
            let audited = self.plugin.audit.refuse_command(entry).await;
            self.waiting += waited.elapsed();
            audited.map_err(|e| host::ExecError::Denied(unaudited(&self.plugin.name, e)))?;
            let env = self.plugin.env_shown(&req.env);
            tracing::warn!(plugin = %self.plugin.name, host = %self.target.host(), program = %req.program, args = ?req.args, env = ?env, "exec denied: {why}");
            let with_env = match env.is_empty() {
                true => String::new(),
                false => format!(" and environment {env:?}"),
            };
            return Err(host::ExecError::Denied(format!(
                "`{}` with arguments {:?}{with_env} is {why}",
                req.program, req.args
            )));
        }
        let timeout_ms = match cmd.timeout_ms {
            0 => self.plugin.limits.exec_timeout_ms,
            ms => u64::from(ms),
        };
        let command = Command {
            program: cmd.program,
            args: cmd.args,
            env: cmd.env,
            stdin: cmd.stdin,
            timeout: Duration::from_millis(timeout_ms),
        };
        // Logged (and on disk) before it runs: a command whose request could not be logged
        // never runs.
        let running = match self.plugin.audit.start_command(entry).await {
            Ok(running) => running,
            Err(e) => {
                self.waiting += waited.elapsed();
                return Err(host::ExecError::Failed(unaudited(&self.plugin.name, e)));
            }
        };
        let result = self.target.exec(&command).await;
        let ran = match &result {
            Ok(out) => Ok(out.status),
            Err(e) => Err(e.to_string()),
        };
        let audited = self.plugin.audit.end_command(running, ran).await;
        self.waiting += waited.elapsed();
        audited.map_err(|e| host::ExecError::Failed(unaudited(&self.plugin.name, e)))?;
        match result {
            Ok(out) => Ok(host::Output {
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            }),
            Err(e) => Err(host::ExecError::Failed(e.to_string())),
        }
    }

    fn log(&mut self, level: host::Level, message: String) {
        if self.log_lines >= self.plugin.limits.max_log_lines {
            self.log_dropped += 1;
            return;
        }
        self.log_lines += 1;
        let max = self.plugin.limits.max_log_message;
        let mut message = message;
        if message.len() > max {
            let mut cut = max;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            let total = message.len();
            message.truncate(cut);
            message.push_str(&format!("... [{total} bytes, cut]"));
        }
        let (plugin, host) = (&self.plugin.name, self.target.host());
        match level {
            host::Level::Trace => tracing::trace!(%plugin, %host, "{message}"),
            host::Level::Debug => tracing::debug!(%plugin, %host, "{message}"),
            host::Level::Info => tracing::info!(%plugin, %host, "{message}"),
            host::Level::Warn => tracing::warn!(%plugin, %host, "{message}"),
            host::Level::Error => tracing::error!(%plugin, %host, "{message}"),
        }
    }
}
