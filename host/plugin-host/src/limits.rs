//! Per-call resource limits, applied in one place.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one plugin call may consume. Configurable per plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Time the guest may spend *computing* in one call, in milliseconds. Time spent waiting
    /// for `exec` on the target host does not count (that has its own per-command timeout).
    pub deadline_ms: u64,
    /// Linear memory the guest may grow to, in bytes.
    pub memory_bytes: u64,
    /// Default timeout for an `exec` that asks for none, in milliseconds.
    pub exec_timeout_ms: u64,
    /// Largest list a plugin may return (packages, outcomes, orderings).
    pub max_items: usize,
    /// Longest log message kept; longer ones are cut.
    pub max_log_message: usize,
    /// Log messages kept per call; the rest are counted and dropped.
    pub max_log_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline_ms: 10_000,
            memory_bytes: 256 << 20,
            exec_timeout_ms: 120_000,
            max_items: 500_000,
            max_log_message: 8 << 10,
            max_log_lines: 1_000,
        }
    }
}

impl Limits {
    /// The compute deadline.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// Problems with these limits (for config validation).
    pub fn problems(&self, max_memory: u64) -> Vec<String> {
        let mut out = Vec::new();
        if self.deadline_ms == 0 {
            out.push("deadline_ms must be greater than 0".into());
        }
        if self.memory_bytes < (1 << 20) {
            out.push(format!(
                "memory_bytes {} is below the 1 MiB a plugin needs to start",
                self.memory_bytes
            ));
        }
        if self.memory_bytes > max_memory {
            out.push(format!(
                "memory_bytes {} exceeds the runtime's maximum of {max_memory}",
                self.memory_bytes
            ));
        }
        if self.exec_timeout_ms == 0 {
            out.push("exec_timeout_ms must be greater than 0".into());
        }
        out
    }
}

/// Enforces the memory limit and remembers that it was hit, so the trap can be reported as
/// what it was.
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes exceeded (wanted {desired})",
                self.limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }

    fn tables(&self) -> usize {
        16
    }
}
