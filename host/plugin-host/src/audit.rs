//! The append-only, hash-chained audit log of every exec request a plugin made (and of the
//! operator acts and snapshot hooks that share its chain).
//!
//! The chain itself (canonical lines, `seq`, `prev`, `hash`, byte-for-byte verification) is
//! [`patchwave_core::audit`]. This module is the file:
//!
//! - **Durable before it counts.** Every line is on disk (`fdatasync`) before the call that
//!   wrote it returns: a command's `start` line before the command is sent, its `end` line
//!   before the result goes back to the plugin, an operator event before the act is stored.
//!   Concurrent writers share syncs (group commit): one thread syncs the file while others
//!   keep writing, and each writer waits for the first sync that began after its line was
//!   written. A failed sync makes the log unavailable for this process: nothing more is
//!   written and no command runs.
//! - **Anchored.** Opened with an [`AuditAnchor`] (the store), the log compares its head
//!   with the anchor on opening (a file that ends before the anchored line was cut; one whose
//!   line at the anchored `seq` has another hash was rewritten: both refuse to open), and
//!   records its head there after every sync, in the background. The anchor can lag the file
//!   by the syncs still being recorded; [`AuditLog::flush`] waits for it to catch up.
//! - **Crash-tolerant.** A last line without its newline, or not JSON, is what a crash while
//!   writing leaves. Opening the log moves those bytes to a quarantine file beside it
//!   (`audit.jsonl.torn-<seq>-<unix time>`, 0600), cuts the log back to its last whole line and
//!   writes a chained `audit-torn-tail` line naming the file, its length and SHA-256; then
//!   work goes on. Any other broken last line refuses to open.
//! - **Shared between processes.** Every write holds an exclusive `flock` on the file and
//!   first checks whether another process appended (or left a torn line) since, continuing
//!   the chain from the file's real end. A file that shrinks below what this process wrote
//!   was cut while open: the log becomes unavailable.

mod sync;
mod tail;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use patchwave_core::audit::{
    self, AuditEntry, AuditHead, LogFault, ReanchorEvent, TornTailEvent, Verified, Verifier,
    REANCHOR_EVENT, TORN_TAIL_EVENT,
};
use serde::Serialize;
use tokio::sync::{watch, Notify};

use self::sync::Syncer;
use self::tail::{FileLock, TailScan};

/// Errors opening, writing or verifying the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    /// The file could not be opened, read, written or synced.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log's path.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// An entry could not be serialized.
    #[error("audit entry: {0}")]
    Entry(#[from] audit::AuditError),
    /// The chain is broken, or disagrees with its anchor (cut or rewritten).
    #[error("audit log {path}: {source}")]
    Broken {
        /// The log's path.
        path: PathBuf,
        /// What is wrong, and where.
        source: LogFault,
    },
    /// The log cannot be written any more by this process (a sync failed, a failed write
    /// could not be undone, or the file was cut while open).
    #[error("audit log {path} is unavailable: {reason}")]
    Unavailable {
        /// The log's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The anchor could not be read or recorded.
    #[error("audit log {path}: anchor: {source}")]
    Anchor {
        /// The log's path.
        path: PathBuf,
        /// The anchor's error.
        source: AnchorError,
    },
}

/// Why an [`AuditAnchor`] could not read or record a head.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AnchorError(pub Box<dyn std::error::Error + Send + Sync>);

/// Where the log's head is kept apart from the file (the store), so that a log cut short or
/// rewritten is noticed however well its own chain verifies.
#[async_trait]
pub trait AuditAnchor: Send + Sync {
    /// The head last recorded; `None` when nothing was.
    async fn read(&self) -> Result<Option<AuditHead>, AnchorError>;
    /// Record `head` if it is past the recorded one: the anchor only moves forward (another
    /// process sharing the log may have recorded a later line first).
    async fn advance(&self, head: &AuditHead) -> Result<(), AnchorError>;
    /// Record `head` whatever was recorded before (an operator re-anchoring the log).
    async fn reset(&self, head: &AuditHead) -> Result<(), AnchorError>;
}

/// What a log did since it was opened: for benchmarks and diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Lines written.
    pub lines: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// Wall time spent in them.
    pub sync_time: Duration,
    /// Heads recorded in the anchor.
    pub anchor_records: u64,
    /// Wall time spent recording them.
    pub anchor_time: Duration,
}

/// A command whose `start` line is on disk. Hand it back to [`AuditLog::end_command`] with
/// how the command ended.
#[derive(Debug)]
#[must_use = "a started command needs its `end` line"]
pub struct RunningCommand {
    entry: AuditEntry,
    started: Instant,
}

/// What `patchwave audit reanchor` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reanchored {
    /// What the anchor held before.
    pub before: Option<AuditHead>,
    /// The line recording the re-anchoring, which is the anchor now.
    pub head: AuditHead,
}

/// An open audit log; see the module documentation.
pub struct AuditLog {
    shared: Arc<Shared>,
    syncer: Option<std::thread::JoinHandle<()>>,
    anchoring: Option<Arc<Anchoring>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.shared.path)
            .field("anchored", &self.anchoring.is_some())
            .finish_non_exhaustive()
    }
}

/// What the writers, the syncer thread and the waiters share.
struct Shared {
    path: PathBuf,
    tail: Mutex<Tail>,
    /// The same open file as `tail.file`, for the `flock` taken around each write.
    lock_file: File,
    sync: Syncer,
}

/// The end of the file as this process knows it.
struct Tail {
    file: File,
    head: AuditHead,
    /// The file's length after the last line this process wrote or read; `None` before the
    /// first look at the file.
    len: Option<u64>,
}

/// The background recording of synced heads in the anchor.
struct Anchoring {
    progress: Mutex<AnchorProgress>,
    changed: Notify,
}

#[derive(Default)]
struct AnchorProgress {
    recorded: u64,
    failed: Option<(u64, String)>,
    records: u64,
    time: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Open (creating it and its directory if needed) the log file for reading and appending.
/// Every opening of the log goes through here.
/// The log file, private (0700 directory, 0600 file), never through a link
/// ([`patchwave_fs::open_private`]).
fn open_file(path: &Path) -> std::io::Result<File> {
    patchwave_fs::open_private(path, patchwave_fs::Access::Append).map_err(Into::into)
}

impl AuditLog {
    /// Open (or create) the log at `path` without an anchor, continuing the chain from its
    /// last line (after moving a torn last line aside). Without an anchor a cut tail or a
    /// rewritten file cannot be noticed: patchwave's commands open it with
    /// [`AuditLog::open_anchored`].
    pub fn open(path: &Path) -> Result<AuditLog, AuditLogError> {
        let log = AuditLog::start(path)?;
        if let Some(event) = log.catch_up(None)? {
            log.wait_durable(event.seq)?;
        }
        Ok(log)
    }

    /// Open (or create) the log at `path` and check it against `anchor`: a log that ends
    /// before the anchored line ([`LogFault::Cut`]) or has another line there
    /// ([`LogFault::Rewritten`]) is refused, so is a broken last line. A torn last line is
    /// moved aside first. From then on every synced head is recorded in `anchor`.
    ///
    /// Must be called within a tokio runtime: the recording runs as a task on it.
    pub async fn open_anchored(
        path: &Path,
        anchor: Arc<dyn AuditAnchor>,
    ) -> Result<AuditLog, AuditLogError> {
        let mut log = AuditLog::start(path)?;
        // The anchor first: every line it names was on disk before it was recorded, so the
        // file read after it holds that line unless the file was cut.
        let anchored = anchor.read().await.map_err(|e| log.anchor_error(e))?;
        if let Some(event) = log.catch_up(anchored.as_ref())? {
            log.durable(event.seq).await?;
        }
        let head = log.head();
        let behind = anchored.as_ref().is_none_or(|a| a.seq < head.seq);
        if head.seq > 0 && behind {
            anchor
                .advance(&head)
                .await
                .map_err(|e| log.anchor_error(e))?;
        }
        let anchoring = Arc::new(Anchoring {
            progress: Mutex::new(AnchorProgress {
                recorded: head.seq,
                ..AnchorProgress::default()
            }),
            changed: Notify::new(),
        });
        drop(tokio::spawn(record_heads(
            anchor,
            log.shared.sync.subscribe(),
            anchoring.clone(),
            log.shared.path.clone(),
        )));
        log.anchoring = Some(anchoring);
        Ok(log)
    }

    /// Open the file and start its syncer thread; the tail is read by the first
    /// [`AuditLog::catch_up`].
    fn start(path: &Path) -> Result<AuditLog, AuditLogError> {
        let io = |source| AuditLogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = open_file(path).map_err(io)?;
        let lock_file = file.try_clone().map_err(io)?;
        let sync_file = file.try_clone().map_err(io)?;
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            tail: Mutex::new(Tail {
                file,
                head: AuditHead::genesis(),
                len: None,
            }),
            lock_file,
            sync: Syncer::new(),
        });
        let syncer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("patchwave-audit-sync".into())
                .spawn(move || shared.sync.run(&sync_file))
                .map_err(io)?
        };
        Ok(AuditLog {
            shared,
            syncer: Some(syncer),
            anchoring: None,
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The log's last line as this process last saw it.
    pub fn head(&self) -> AuditHead {
        lock(&self.shared.tail).head.clone()
    }

    /// Append one entry to the chain; returns once it is on disk (blocking the thread
    /// meanwhile; async code can use [`AuditLog::append_async`]).
    pub fn append<T: Serialize>(&self, entry: &T) -> Result<(), AuditLogError> {
        let head = self.write(entry)?;
        self.wait_durable(head.seq)
    }

    /// Append one entry to the chain; resolves once it is on disk, with the line's head.
    pub async fn append_async<T: Serialize>(&self, entry: &T) -> Result<AuditHead, AuditLogError> {
        let head = self.write(entry)?;
        self.durable(head.seq).await?;
        Ok(head)
    }

    /// Audit a command about to run: `entry` (the request: who asks to run what where, and
    /// the decision) as its `start` line, on disk when this returns. Run the command only if
    /// it succeeded, then call [`AuditLog::end_command`].
    pub async fn start_command(&self, entry: AuditEntry) -> Result<RunningCommand, AuditLogError> {
        let entry = entry.started(Utc::now());
        self.append_async(&entry).await?;
        Ok(RunningCommand {
            entry,
            started: Instant::now(),
        })
    }

    /// Audit how a started command ended: its exit status, or why it could not run or
    /// finish, and how long it ran (since its `start` line was on disk), as its `end` line.
    pub async fn end_command(
        &self,
        command: RunningCommand,
        ran: Result<i32, String>,
    ) -> Result<(), AuditLogError> {
        let took = command.started.elapsed();
        let entry = command.entry.ended(Utc::now(), ran, took);
        self.append_async(&entry).await.map(drop)
    }

    /// Audit a request that was refused: one line without a phase.
    pub async fn refuse_command(&self, entry: AuditEntry) -> Result<(), AuditLogError> {
        self.append_async(&entry.refused(Utc::now()))
            .await
            .map(drop)
    }

    /// Wait until every line this process wrote is on disk and, for an anchored log, its
    /// head is recorded in the anchor. Call it before the process exits.
    pub async fn flush(&self) -> Result<(), AuditLogError> {
        let written = self.shared.sync.written();
        self.durable(written).await?;
        let Some(anchoring) = &self.anchoring else {
            return Ok(());
        };
        loop {
            let changed = anchoring.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            {
                let progress = lock(&anchoring.progress);
                if progress.recorded >= written {
                    return Ok(());
                }
                if let Some((_, e)) = progress.failed.as_ref().filter(|(s, _)| *s >= written) {
                    return Err(self.anchor_error(AnchorError(e.clone().into())));
                }
            }
            changed.await;
        }
    }

    /// What the log did since it was opened.
    pub fn stats(&self) -> AuditStats {
        let mut stats = self.shared.sync.stats();
        if let Some(anchoring) = &self.anchoring {
            let progress = lock(&anchoring.progress);
            stats.anchor_records = progress.records;
            stats.anchor_time = progress.time;
        }
        stats
    }

    /// Check the whole log at `path`, byte for byte, against `anchor` when one is given
    /// (read the anchor *before* calling this, so every line it names is in the file).
    /// A missing file is an empty log: fine without an anchor, cut with one.
    pub fn verify(path: &Path, anchor: Option<&AuditHead>) -> Result<Verified, AuditLogError> {
        let io = |source| AuditLogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let broken = |source| AuditLogError::Broken {
            path: path.to_path_buf(),
            source,
        };
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && anchor.is_some() => {
                return audit::verify(b"", anchor).map_err(broken)
            }
            Err(e) => return Err(io(e)),
        };
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut verifier = Verifier::new(anchor.cloned());
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(io)? == 0 {
                return verifier.finish(b"").map_err(broken);
            }
            if line.pop_if(|b| *b == b'\n').is_none() {
                return verifier.finish(&line).map_err(broken);
            }
            verifier.push(&line).map_err(broken)?;
        }
    }

    /// Accept the log at `path` as it is, for a log its anchor refuses (cut or rewritten,
    /// e.g. after restoring it from a backup or rotating it): write a chained
    /// `audit-reanchored` line recording `by`, `reason`, what the anchor held and where the
    /// log ended, and set the anchor to that line.
    pub async fn reanchor(
        path: &Path,
        anchor: Arc<dyn AuditAnchor>,
        by: &str,
        reason: &str,
    ) -> Result<Reanchored, AuditLogError> {
        let log = AuditLog::open(path)?;
        let before = anchor.read().await.map_err(|e| log.anchor_error(e))?;
        let event = ReanchorEvent {
            time: Utc::now(),
            event: REANCHOR_EVENT.into(),
            by: by.to_string(),
            reason: reason.to_string(),
            anchor: before.clone(),
            log_head: log.head(),
        };
        let head = log.append_async(&event).await?;
        anchor.reset(&head).await.map_err(|e| log.anchor_error(e))?;
        tracing::warn!(path = %path.display(), %by, %reason, "audit log re-anchored at {head}");
        Ok(Reanchored { before, head })
    }

    /// Write one line after the file's real end (under the file lock), without waiting for
    /// it to be synced.
    fn write<T: Serialize>(&self, entry: &T) -> Result<AuditHead, AuditLogError> {
        let mut tail = lock(&self.shared.tail);
        let _locked = FileLock::exclusive(&self.shared.lock_file).map_err(|e| self.io(e))?;
        self.catch_up_locked(&mut tail, None)?;
        self.write_locked(&mut tail, entry)
    }

    /// Bring `tail` up to the file's end under the file lock; see
    /// [`AuditLog::catch_up_locked`].
    fn catch_up(&self, anchor: Option<&AuditHead>) -> Result<Option<AuditHead>, AuditLogError> {
        let mut tail = lock(&self.shared.tail);
        let _locked = FileLock::exclusive(&self.shared.lock_file).map_err(|e| self.io(e))?;
        self.catch_up_locked(&mut tail, anchor)
    }

    /// Bring `tail` up to the file's end when the file is not as this process left it
    /// (another process appended, or this is the first look): read its last line, check it
    /// against `anchor`, and move a torn last line aside. Returns the head of the
    /// `audit-torn-tail` line it wrote, if it did (not yet synced).
    fn catch_up_locked(
        &self,
        tail: &mut Tail,
        anchor: Option<&AuditHead>,
    ) -> Result<Option<AuditHead>, AuditLogError> {
        self.shared.sync.check_usable(&self.shared.path)?;
        let len = tail.file.metadata().map_err(|e| self.io(e))?.len();
        match tail.len {
            Some(known) if known == len && anchor.is_none() => return Ok(None),
            Some(known) if len < known => {
                let reason =
                    format!("the file shrank from {known} to {len} bytes while open: it was cut");
                self.shared.sync.fail(reason.clone());
                return Err(self.unavailable(reason));
            }
            _ => {}
        }
        let scan = TailScan::read(&tail.file, len).map_err(|e| e.into_error(&self.shared.path))?;
        if let Some(anchor) = anchor {
            tail::check_anchor(&tail.file, &scan, anchor, &self.shared.path)?;
        }
        tail.head = scan.head.clone();
        let Some(torn) = scan.torn else {
            tail.len = Some(len);
            return Ok(None);
        };
        let seq = scan.head.seq + 1;
        let (file, sha256) =
            tail::quarantine(&tail.file, &torn, &self.shared.path, seq).map_err(|e| self.io(e))?;
        tail.file.set_len(torn.start).map_err(|e| self.io(e))?;
        tail.len = Some(torn.start);
        tracing::warn!(
            path = %self.shared.path.display(),
            quarantine = %file,
            bytes = torn.len,
            "audit log: a torn last line (a write cut off by a crash) was moved aside"
        );
        let event = TornTailEvent {
            time: Utc::now(),
            event: TORN_TAIL_EVENT.into(),
            file,
            bytes: torn.len,
            sha256,
        };
        self.write_locked(tail, &event).map(Some)
    }

    /// Write one line at the end of `tail` (the file lock held, `tail` up to date).
    fn write_locked<T: Serialize>(
        &self,
        tail: &mut Tail,
        entry: &T,
    ) -> Result<AuditHead, AuditLogError> {
        self.shared.sync.check_usable(&self.shared.path)?;
        let (mut line, head) = audit::chain_line(entry, &tail.head)?;
        line.push('\n');
        let before = tail.len.unwrap_or(0);
        if let Err(e) = std::io::Write::write_all(&mut tail.file, line.as_bytes()) {
            // A partial line would glue itself to the next one: cut it off again.
            if let Err(undo) = tail.file.set_len(before) {
                self.shared.sync.fail(format!(
                    "a failed write ({e}) left a partial line that could not be removed ({undo})"
                ));
            }
            return Err(self.io(e));
        }
        tail.len = Some(before + line.len() as u64);
        tail.head = head.clone();
        self.shared.sync.wrote(&head);
        Ok(head)
    }

    /// Block until line `seq` is on disk.
    fn wait_durable(&self, seq: u64) -> Result<(), AuditLogError> {
        self.shared
            .sync
            .wait(seq)
            .map_err(|reason| self.unavailable(reason))
    }

    /// Resolve once line `seq` is on disk.
    async fn durable(&self, seq: u64) -> Result<(), AuditLogError> {
        self.shared
            .sync
            .wait_async(seq)
            .await
            .map_err(|reason| self.unavailable(reason))
    }

    fn io(&self, source: std::io::Error) -> AuditLogError {
        AuditLogError::Io {
            path: self.shared.path.clone(),
            source,
        }
    }

    fn unavailable(&self, reason: String) -> AuditLogError {
        AuditLogError::Unavailable {
            path: self.shared.path.clone(),
            reason,
        }
    }

    fn anchor_error(&self, source: AnchorError) -> AuditLogError {
        AuditLogError::Anchor {
            path: self.shared.path.clone(),
            source,
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // The syncer syncs what is still pending, then ends.
        self.shared.sync.close();
        if let Some(syncer) = self.syncer.take() {
            if syncer.join().is_err() {
                tracing::error!(path = %self.shared.path.display(), "audit log syncer panicked");
            }
        }
    }
}

/// Record every synced head in the anchor, the latest first when several are waiting, until
/// the log is closed.
async fn record_heads(
    anchor: Arc<dyn AuditAnchor>,
    mut heads: watch::Receiver<AuditHead>,
    anchoring: Arc<Anchoring>,
    path: PathBuf,
) {
    while heads.changed().await.is_ok() {
        let head = heads.borrow_and_update().clone();
        let started = Instant::now();
        let result = anchor.advance(&head).await;
        {
            let mut progress = lock(&anchoring.progress);
            progress.records += 1;
            progress.time += started.elapsed();
            match result {
                Ok(()) => progress.recorded = progress.recorded.max(head.seq),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "audit log: could not record {head} in the anchor");
                    progress.failed = Some((head.seq, e.to_string()));
                }
            }
        }
        anchoring.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests;
