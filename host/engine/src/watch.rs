//! A transport wrapper that remembers whether the host itself was lost during a call.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use patchwave_core::HostId;
use patchwave_transport::{Command, Output, Transport, TransportError};

/// Wraps a transport to notice when the host became unreachable (or the connection dropped
/// mid-command) while a plugin was using it, so the caller can tell "the host is gone" from
/// "the plugin or package failed".
pub struct Watched {
    inner: Arc<dyn Transport>,
    lost: AtomicBool,
}

impl Watched {
    /// Watch `inner`.
    pub fn new(inner: Arc<dyn Transport>) -> Arc<Watched> {
        Arc::new(Watched {
            inner,
            lost: AtomicBool::new(false),
        })
    }

    /// Whether any command failed because the host could not be reached or was lost.
    pub fn lost_host(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Transport for Watched {
    fn host(&self) -> &HostId {
        self.inner.host()
    }

    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        let result = self.inner.exec(cmd).await;
        if let Err(e) = &result {
            if e.is_unreachable() {
                self.lost.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}
