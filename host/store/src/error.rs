//! Everything that can go wrong talking to the store, with enough identity to act on.

use std::path::PathBuf;

use patchwave_core::HostId;

/// A backend's own error (its driver's), kept as the source of a [`StoreError`] without
/// naming the backend's types.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors from any [`Store`](crate::Store) implementation.
///
/// Backend-neutral: a driver's error is carried boxed ([`BackendError`]) as the source of
/// [`StoreError::Open`], [`StoreError::Migration`] or [`StoreError::Backend`], so no backend's
/// types appear here and every backend reports the same variants with the same messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file or its directory could not be created, or is not private to the
    /// runner (a symbolic link, another user's, writable by others).
    #[error("store: {0}")]
    NotPrivate(#[source] patchwave_fs::FsError),
    /// The database could not be opened or configured.
    #[error("cannot open store {path}: {source}")]
    Open {
        /// Database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// Why (the driver's error).
        source: BackendError,
    },
    /// A schema migration failed; the database stays at the previous version.
    #[error("schema migration {version} ({name}) failed: {source}")]
    Migration {
        /// Version of the migration that failed.
        version: u32,
        /// Its name.
        name: &'static str,
        /// Why (the driver's error).
        source: BackendError,
    },
    /// The database was written by a newer patchwave; this binary would misread it.
    #[error(
        "store schema version {found} is newer than this binary supports ({supported}); \
         upgrade patchwave instead of opening this database with an older one"
    )]
    NewerSchema {
        /// Highest schema version recorded in the database.
        found: u32,
        /// Highest schema version this binary knows.
        supported: u32,
    },
    /// A query failed in the backend.
    #[error("store {operation} failed: {source}")]
    Backend {
        /// The store operation that ran it (`record_scan`, `host_summary`, ...).
        operation: &'static str,
        /// The driver's error.
        source: BackendError,
    },
    /// The database holds a value this binary cannot interpret.
    #[error("store holds an invalid value: {what}")]
    Corrupt {
        /// What was wrong, and where.
        what: String,
    },
    /// The operation names a host that was never registered (or has been removed).
    #[error("host `{host}` is not registered in the store")]
    UnknownHost {
        /// The host.
        host: HostId,
    },
    /// Another runner saved the record since it was loaded (optimistic concurrency).
    #[error("{what} was changed by another runner (expected revision {expected}, found {found})")]
    Conflict {
        /// What was being saved.
        what: String,
        /// The revision loaded.
        expected: i64,
        /// The revision found.
        found: i64,
    },
    /// A KEV or EPSS import was prepared against a stored feed that another import has
    /// replaced since (optimistic concurrency): nothing was written.
    #[error(
        "{feed} was changed by another import (expected {expected}, found {found}): not imported"
    )]
    FeedChanged {
        /// Which feed (`KEV catalogue`, `EPSS feed`).
        feed: String,
        /// The stored feed the import was prepared against.
        expected: String,
        /// The stored feed found.
        found: String,
    },
    /// The caller passed a value the store cannot hold.
    #[error("invalid input for the store: {what}")]
    InvalidInput {
        /// What was wrong.
        what: String,
    },
    /// The runtime shut down before the store's worker could finish.
    #[error("store {operation} was cancelled: the runtime is shutting down")]
    Cancelled {
        /// The store operation.
        operation: &'static str,
    },
}

/// Placeholder operation name for driver errors raised through `?` before
/// [`StoreError::during`] names the operation.
pub(crate) const UNNAMED: &str = "operation";

impl StoreError {
    /// A [`StoreError::Backend`]: the driver's `source` failed during `operation`.
    pub fn backend(operation: &'static str, source: impl Into<BackendError>) -> Self {
        StoreError::Backend {
            operation,
            source: source.into(),
        }
    }

    /// Name the operation of a driver error that was raised without one.
    pub(crate) fn during(self, operation: &'static str) -> Self {
        match self {
            StoreError::Backend {
                operation: UNNAMED,
                source,
            } => StoreError::Backend { operation, source },
            other => other,
        }
    }

    /// A [`StoreError::Corrupt`] from anything printable.
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into() }
    }
}
