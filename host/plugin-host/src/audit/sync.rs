//! Group commit: one thread syncs the log while writers keep writing; each writer waits for
//! the first sync that began after its line was written.

use std::fs::File;
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use patchwave_core::audit::AuditHead;
use tokio::sync::{watch, Notify};

use super::{lock, AuditLogError, AuditStats};

/// The sync state of one log, shared by its writers, its waiters and its syncer thread.
pub(super) struct Syncer {
    state: Mutex<SyncState>,
    /// Wakes the syncer thread: a line was written, or the log is closing.
    work: Condvar,
    /// Wakes blocked waiters after each sync (or failure).
    synced: Condvar,
    /// Wakes async waiters after each sync (or failure).
    synced_async: Notify,
    /// Every synced head, for the anchor.
    heads: watch::Sender<AuditHead>,
}

struct SyncState {
    /// The last line this process wrote.
    written: AuditHead,
    /// Lines up to this `seq` are on disk.
    synced: u64,
    /// The last head handed to the anchor.
    sent: u64,
    /// Why nothing more may be written.
    failed: Option<String>,
    closing: bool,
    lines: u64,
    syncs: u64,
    sync_time: Duration,
}

impl Syncer {
    pub(super) fn new() -> Syncer {
        Syncer {
            state: Mutex::new(SyncState {
                written: AuditHead::genesis(),
                synced: 0,
                sent: 0,
                failed: None,
                closing: false,
                lines: 0,
                syncs: 0,
                sync_time: Duration::ZERO,
            }),
            work: Condvar::new(),
            synced: Condvar::new(),
            synced_async: Notify::new(),
            heads: watch::Sender::new(AuditHead::genesis()),
        }
    }

    /// The heads synced from now on.
    pub(super) fn subscribe(&self) -> watch::Receiver<AuditHead> {
        self.heads.subscribe()
    }

    /// The `seq` of the last line this process wrote (0: none).
    pub(super) fn written(&self) -> u64 {
        lock(&self.state).written.seq
    }

    /// Line `head` was written: have it synced.
    pub(super) fn wrote(&self, head: &AuditHead) {
        let mut state = lock(&self.state);
        state.lines += 1;
        if head.seq > state.written.seq {
            state.written = head.clone();
        }
        self.work.notify_one();
    }

    /// Refuse to write once the log failed.
    pub(super) fn check_usable(&self, path: &Path) -> Result<(), AuditLogError> {
        match &lock(&self.state).failed {
            None => Ok(()),
            Some(reason) => Err(AuditLogError::Unavailable {
                path: path.to_path_buf(),
                reason: reason.clone(),
            }),
        }
    }

    /// Nothing more may be written (the first reason stays).
    pub(super) fn fail(&self, reason: String) {
        lock(&self.state).failed.get_or_insert(reason);
        self.synced.notify_all();
        self.synced_async.notify_waiters();
    }

    /// Block until line `seq` is on disk; the reason when it never will be.
    pub(super) fn wait(&self, seq: u64) -> Result<(), String> {
        let mut state = lock(&self.state);
        loop {
            if let Some(done) = state.outcome(seq) {
                return done;
            }
            state = self
                .synced
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Resolve once line `seq` is on disk; the reason when it never will be.
    pub(super) async fn wait_async(&self, seq: u64) -> Result<(), String> {
        loop {
            let synced = self.synced_async.notified();
            let mut synced = std::pin::pin!(synced);
            // Registered before looking, so a sync in between is not missed.
            synced.as_mut().enable();
            if let Some(done) = lock(&self.state).outcome(seq) {
                return done;
            }
            synced.await;
        }
    }

    /// The syncer thread is to sync what is pending and end.
    pub(super) fn close(&self) {
        lock(&self.state).closing = true;
        self.work.notify_one();
    }

    pub(super) fn stats(&self) -> AuditStats {
        let state = lock(&self.state);
        AuditStats {
            lines: state.lines,
            syncs: state.syncs,
            sync_time: state.sync_time,
            ..AuditStats::default()
        }
    }

    /// The syncer thread: sync whenever lines were written since the last sync, until the
    /// log is closed (and nothing is pending) or a sync fails.
    pub(super) fn run(&self, file: &File) {
        let mut state = lock(&self.state);
        loop {
            if state.failed.is_none() && state.written.seq > state.synced {
                let target = state.written.clone();
                drop(state);
                let started = Instant::now();
                let result = file.sync_data();
                let took = started.elapsed();
                state = lock(&self.state);
                state.syncs += 1;
                state.sync_time += took;
                match result {
                    Ok(()) => {
                        state.synced = state.synced.max(target.seq);
                        if target.seq > state.sent {
                            state.sent = target.seq;
                            self.heads.send_replace(target);
                        }
                    }
                    Err(e) => {
                        // After a failed fsync the kernel may have dropped the dirty pages;
                        // a retry could succeed without them ever reaching the disk.
                        tracing::error!(error = %e, "audit log: sync to disk failed");
                        state
                            .failed
                            .get_or_insert(format!("syncing it to disk failed: {e}"));
                    }
                }
                self.synced.notify_all();
                self.synced_async.notify_waiters();
            } else if state.closing || state.failed.is_some() {
                return;
            } else {
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

impl SyncState {
    /// `Some` once waiting for line `seq` is over: it is on disk, or never will be.
    fn outcome(&self, seq: u64) -> Option<Result<(), String>> {
        if self.synced >= seq {
            Some(Ok(()))
        } else {
            self.failed.clone().map(Err)
        }
    }
}
