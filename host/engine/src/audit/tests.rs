//! The audit log anchored in a real SQLite store: what a cut, a rewrite, a crash and a
//! re-anchoring look like from both sides.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use patchwave_core::audit::{AuditEntry, LogFault, Notice};
use patchwave_store::SqliteStore;

use super::*;

struct Setup {
    _dir: tempfile::TempDir,
    log: PathBuf,
    db: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        Setup {
            log: dir.path().join("audit.jsonl"),
            db: dir.path().join("patchwave.db"),
            _dir: dir,
        }
    }

    fn store(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.db).unwrap())
    }

    /// Open the log anchored, write `n` lines, flush.
    async fn write(&self, n: usize) -> AuditHead {
        let log = open(&self.log, self.store()).await.unwrap();
        let mut head = log.head();
        for i in 0..n {
            head = log.append_async(&entry(i)).await.unwrap();
        }
        log.flush().await.unwrap();
        head
    }

    async fn anchor(&self) -> Option<AuditHead> {
        self.store().audit_anchor().await.unwrap()
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn keep(&self, lines: &[String]) {
        std::fs::write(
            &self.log,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
    }

    /// Another chain of `n` lines, written by the real writer beside the log; its lines.
    fn other_chain(&self, n: usize, first: usize) -> Vec<String> {
        let path = self.log.with_extension(format!("other{first}"));
        let log = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append(&entry(first + i)).unwrap();
        }
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    async fn open_fault(&self) -> LogFault {
        match open(&self.log, self.store()).await.unwrap_err() {
            AuditLogError::Broken { source, .. } => source,
            other => panic!("not refused as broken: {other}"),
        }
    }

    async fn verify_fault(&self) -> LogFault {
        let anchor = self.anchor().await;
        match AuditLog::verify(&self.log, anchor.as_ref()).unwrap_err() {
            AuditLogError::Broken { source, .. } => source,
            other => panic!("not refused as broken: {other}"),
        }
    }
}

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

#[tokio::test]
async fn every_sync_moves_the_anchor_to_the_logs_head() {
    let s = Setup::new();
    assert_eq!(s.anchor().await, None);
    let head = s.write(3).await;
    assert_eq!(head.seq, 3);
    assert_eq!(s.anchor().await, Some(head.clone()));
    // Reopening checks the head and goes on from it.
    let head = s.write(2).await;
    assert_eq!(head.seq, 5);
    assert_eq!(s.anchor().await, Some(head.clone()));
    let verified = AuditLog::verify(&s.log, Some(&head)).unwrap();
    assert_eq!((verified.lines(), verified.anchor), (5, Some(head)));
}

#[tokio::test]
async fn a_cut_tail_is_refused_on_opening_and_by_verify() {
    let s = Setup::new();
    let head = s.write(5).await;
    let lines = s.lines();
    s.keep(&lines[..3]);
    // The chain that is left verifies on its own: only the anchor knows.
    assert_eq!(AuditLog::verify(&s.log, None).unwrap().lines(), 3);
    let cut = LogFault::Cut {
        ends_at: 3,
        anchor: head,
    };
    assert_eq!(s.open_fault().await, cut);
    assert_eq!(s.verify_fault().await, cut);
    assert!(cut
        .to_string()
        .contains("ends at line 3 but the store recorded line 5"));
    // The same for a log deleted outright.
    std::fs::remove_file(&s.log).unwrap();
    assert!(matches!(
        s.verify_fault().await,
        LogFault::Cut { ends_at: 0, .. }
    ));
    assert!(matches!(
        s.open_fault().await,
        LogFault::Cut { ends_at: 0, .. }
    ));
}

#[tokio::test]
async fn a_log_rewritten_from_scratch_is_refused_however_well_it_verifies() {
    let s = Setup::new();
    let head = s.write(4).await;
    // A new chain written with the real writer, longer than the old one.
    s.keep(&s.other_chain(6, 100));
    assert_eq!(AuditLog::verify(&s.log, None).unwrap().lines(), 6);
    for fault in [s.open_fault().await, s.verify_fault().await] {
        let LogFault::Rewritten { anchor, found } = fault else {
            panic!("not detected as rewritten: {fault}")
        };
        assert_eq!(anchor, head);
        assert_ne!(found, head.hash);
    }
}

#[tokio::test]
async fn a_log_ahead_of_its_anchor_opens_and_brings_the_anchor_up() {
    let s = Setup::new();
    let anchored = s.write(3).await;
    // Lines written but never anchored: a crash between the sync and the anchor, or
    // another runner still at work.
    {
        let log = AuditLog::open(&s.log).unwrap();
        log.append(&entry(7)).unwrap();
        log.append(&entry(8)).unwrap();
    }
    assert_eq!(s.anchor().await, Some(anchored.clone()));
    assert!(AuditLog::verify(&s.log, Some(&anchored)).is_ok());
    let log = open(&s.log, s.store()).await.unwrap();
    assert_eq!(log.head().seq, 5);
    assert_eq!(s.anchor().await, Some(log.head()));
    drop(log);

    // Ahead, but the anchored line is not the one in the file: history was replaced.
    let lines = s.lines();
    s.keep(&s.other_chain(7, 200));
    assert!(matches!(s.open_fault().await, LogFault::Rewritten { .. }));
    // And lines after the anchored one must chain from it.
    let mut spliced = lines.clone();
    spliced.push(s.other_chain(6, 300)[5].clone());
    s.keep(&spliced);
    let LogFault::Chain(b) = s.open_fault().await else {
        panic!("splice not detected")
    };
    assert_eq!(b.line, 6);
}

#[tokio::test]
async fn a_torn_last_line_after_the_anchored_one_is_a_crash_and_work_goes_on() {
    let s = Setup::new();
    let anchored = s.write(3).await;
    let mut bytes = std::fs::read(&s.log).unwrap();
    bytes.extend_from_slice(b"{\"args\":[],\"decision\":\"al");
    std::fs::write(&s.log, &bytes).unwrap();
    let log = open(&s.log, s.store()).await.unwrap();
    assert_eq!(log.head().seq, 4, "the quarantine is line 4");
    assert_eq!(s.anchor().await, Some(log.head()));
    log.append_async(&entry(9)).await.unwrap();
    log.flush().await.unwrap();
    let verified = AuditLog::verify(&s.log, s.anchor().await.as_ref()).unwrap();
    assert_eq!(verified.lines(), 5);
    assert!(matches!(
        verified.notices[..],
        [Notice::Quarantined { line: 4, .. }]
    ));
    assert_eq!(anchored.seq, 3);
}

#[tokio::test]
async fn a_torn_line_where_the_anchor_saw_a_whole_one_is_a_cut() {
    let s = Setup::new();
    let head = s.write(3).await;
    // The anchored line 3 lost its second half: not a crash (it was synced before it was
    // anchored), so not quarantined.
    let bytes = std::fs::read(&s.log).unwrap();
    std::fs::write(&s.log, &bytes[..bytes.len() - 30]).unwrap();
    assert_eq!(
        s.open_fault().await,
        LogFault::Cut {
            ends_at: 2,
            anchor: head
        }
    );
    assert!(std::fs::read_dir(s.log.parent().unwrap())
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().contains(".torn-")));
}

#[tokio::test]
async fn reanchoring_accepts_the_log_as_it_is_and_says_so_in_it() {
    let s = Setup::new();
    let old = s.write(5).await;
    let lines = s.lines();
    s.keep(&lines[..2]);
    assert!(matches!(s.open_fault().await, LogFault::Cut { .. }));
    let done = reanchor(&s.log, s.store(), "alice", "restored from backup")
        .await
        .unwrap();
    assert_eq!(done.before, Some(old.clone()));
    assert_eq!(done.head.seq, 3);
    assert_eq!(s.anchor().await, Some(done.head.clone()));
    // The log opens again and verify tells what happened.
    s.write(1).await;
    let verified = AuditLog::verify(&s.log, s.anchor().await.as_ref()).unwrap();
    assert_eq!(verified.lines(), 4);
    let [Notice::Reanchored {
        line,
        by,
        reason,
        anchor,
        log_head,
    }] = &verified.notices[..]
    else {
        panic!("{:?}", verified.notices)
    };
    assert_eq!(
        (*line, by.as_str(), reason.as_str()),
        (3, "alice", "restored from backup")
    );
    assert_eq!(anchor.as_ref(), Some(&old));
    assert_eq!(log_head.seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_log_and_store_keep_one_chain_and_the_later_head() {
    let s = Setup::new();
    let a = Arc::new(open(&s.log, s.store()).await.unwrap());
    let b = Arc::new(open(&s.log, s.store()).await.unwrap());
    let tasks: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, log)| {
            tokio::spawn(async move {
                for n in 0..40 {
                    log.append_async(&entry(w * 100 + n)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    a.flush().await.unwrap();
    b.flush().await.unwrap();
    let verified = AuditLog::verify(&s.log, s.anchor().await.as_ref()).unwrap();
    assert_eq!(verified.lines(), 80);
    assert_eq!(s.anchor().await, Some(verified.head));
}
