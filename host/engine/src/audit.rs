//! The audit log anchored in the store: after every sync of `<state>/audit.jsonl` its head
//! (the last line's `seq` and `hash`) is recorded in the store (migration 0005), and opening
//! the log or `patchwave audit verify` compares the file with it, so a log cut short or
//! rewritten from scratch is noticed however well its own chain verifies.
//!
//! What the anchor protects against: someone (or something: a restore, a disk) changing the
//! log without changing the store the same way. Whoever can write both (with the default
//! SQLite store, the whole state directory) can rewrite both; a store kept elsewhere (a
//! PostgreSQL server) makes the anchor stronger than the file's permissions.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use patchwave_core::audit::AuditHead;
use patchwave_plugin_host::{AnchorError, AuditAnchor, AuditLog, AuditLogError, Reanchored};
use patchwave_store::Store;

/// An [`AuditAnchor`] kept in a [`Store`].
#[derive(Clone)]
pub struct StoreAnchor {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for StoreAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreAnchor")
    }
}

impl StoreAnchor {
    /// The anchor in `store`.
    pub fn new(store: Arc<dyn Store>) -> StoreAnchor {
        StoreAnchor { store }
    }
}

fn anchor_error(e: patchwave_store::StoreError) -> AnchorError {
    AnchorError(Box::new(e))
}

#[async_trait]
impl AuditAnchor for StoreAnchor {
    async fn read(&self) -> Result<Option<AuditHead>, AnchorError> {
        self.store.audit_anchor().await.map_err(anchor_error)
    }

    async fn advance(&self, head: &AuditHead) -> Result<(), AnchorError> {
        self.store
            .advance_audit_anchor(head, Utc::now())
            .await
            .map(drop)
            .map_err(anchor_error)
    }

    async fn reset(&self, head: &AuditHead) -> Result<(), AnchorError> {
        self.store
            .reset_audit_anchor(head, Utc::now())
            .await
            .map_err(anchor_error)
    }
}

/// Open the audit log at `path` anchored in `store` (see [`AuditLog::open_anchored`]).
pub async fn open(path: &Path, store: Arc<dyn Store>) -> Result<AuditLog, AuditLogError> {
    AuditLog::open_anchored(path, Arc::new(StoreAnchor::new(store))).await
}

/// Accept the log at `path` as it is and anchor it there in `store` (see
/// [`AuditLog::reanchor`]).
pub async fn reanchor(
    path: &Path,
    store: Arc<dyn Store>,
    by: &str,
    reason: &str,
) -> Result<Reanchored, AuditLogError> {
    AuditLog::reanchor(path, Arc::new(StoreAnchor::new(store)), by, reason).await
}

#[cfg(test)]
mod tests;
