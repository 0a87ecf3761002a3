//! The append-only, hash-chained audit log of every exec request a plugin made.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use patchwave_core::audit::{self, ChainBreak, GENESIS};
use serde::Serialize;

/// Errors opening, writing or verifying the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    /// The file could not be opened or read.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log's path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The last line has no hash to chain from.
    #[error(
        "audit log {path}: last line is not a chained audit line; run `patchwave audit verify`"
    )]
    BadTail {
        /// The log's path.
        path: PathBuf,
    },
    /// An entry could not be serialized.
    #[error("audit entry: {0}")]
    Entry(#[from] audit::AuditError),
    /// The chain is broken.
    #[error("audit log {path}: {source}")]
    Broken {
        /// The log's path.
        path: PathBuf,
        /// Where it broke.
        source: ChainBreak,
    },
}

/// An open audit log. Appends are serialized; each line is written with one `write` call
/// and flushed before the exec it describes is reported back to the plugin.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    inner: Mutex<Tail>,
}

#[derive(Debug)]
struct Tail {
    file: File,
    last_hash: String,
}

impl AuditLog {
    /// Open (or create) the log at `path`, continuing the chain from its last line. The
    /// log and its directory are made private to the runner ([`patchwave_fs::open_private`]).
    pub fn open(path: &Path) -> Result<AuditLog, AuditLogError> {
        let io = |source| AuditLogError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Private (0700 directory, 0600 file), never through a link.
        let mut file = patchwave_fs::open_private(path, patchwave_fs::Access::Append)
            .map_err(|e| io(e.into()))?;
        let last_hash = match last_line(&mut file).map_err(io)? {
            None => GENESIS.to_string(),
            Some(line) => audit::line_hash(&line).ok_or_else(|| AuditLogError::BadTail {
                path: path.to_path_buf(),
            })?,
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            inner: Mutex::new(Tail { file, last_hash }),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry to the chain.
    pub fn append<T: Serialize>(&self, entry: &T) -> Result<(), AuditLogError> {
        let mut tail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (mut line, hash) = audit::chain_line(entry, &tail.last_hash)?;
        line.push('\n');
        tail.file
            .write_all(line.as_bytes())
            .and_then(|()| tail.file.flush())
            .map_err(|source| AuditLogError::Io {
                path: self.path.clone(),
                source,
            })?;
        tail.last_hash = hash;
        Ok(())
    }

    /// Check the whole chain of the log at `path`; returns the number of lines.
    pub fn verify(path: &Path) -> Result<usize, AuditLogError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuditLogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        audit::verify(text.lines()).map_err(|source| AuditLogError::Broken {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The last non-empty line of a file, reading only its tail.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let trimmed = text.trim_end_matches('\n');
        match trimmed.rfind('\n') {
            Some(i) => return Ok(Some(trimmed[i + 1..].to_string())),
            None if start == 0 => {
                return Ok((!trimmed.is_empty()).then(|| trimmed.to_string()));
            }
            None => window *= 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use patchwave_core::audit::AuditEntry;

    fn entry(n: usize) -> AuditEntry {
        AuditEntry {
            time: Utc::now(),
            phase: None,
            plugin: "p".into(),
            plugin_digest: "d".into(),
            host: "h".into(),
            program: format!("prog{n}"),
            args: vec![],
            env: vec![],
            decision: "allowed".into(),
            status: Some(0),
            duration_ms: Some(1),
            error: None,
        }
    }

    #[test]
    fn chain_continues_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        {
            let log = AuditLog::open(&path).unwrap();
            log.append(&entry(1)).unwrap();
            log.append(&entry(2)).unwrap();
        }
        let log = AuditLog::open(&path).unwrap();
        log.append(&entry(3)).unwrap();
        assert_eq!(AuditLog::verify(&path).unwrap(), 3);
    }
}
