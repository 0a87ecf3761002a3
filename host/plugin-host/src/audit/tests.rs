//! The audit log file against real files: reopening, torn last lines, several writers,
//! a file cut while open. (Anchored opening is tested in the engine, against the store.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use chrono::Utc;
use patchwave_core::audit::{AuditEntry, Notice, TornTailEvent};
use sha2::{Digest, Sha256};

use super::*;

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

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn quarantined(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".torn-"))
        .collect();
    files.sort();
    files
}

#[test]
fn chain_continues_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    {
        let log = AuditLog::open(&path).unwrap();
        log.append(&entry(1)).unwrap();
        log.append(&entry(2)).unwrap();
        assert_eq!(log.head().seq, 2);
    }
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().seq, 2);
    log.append(&entry(3)).unwrap();
    let verified = AuditLog::verify(&path, None).unwrap();
    assert_eq!(verified.lines(), 3);
    assert_eq!(verified.head, log.head());
    let stats = log.stats();
    assert_eq!(stats.lines, 1);
    assert!(stats.syncs >= 1, "{stats:?}");
}

/// A closed log of three good lines.
fn three_lines() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for n in 0..3 {
        log.append(&entry(n)).unwrap();
    }
    (dir, path)
}

/// Three good lines and then `torn` (what a crash while writing a fourth left behind).
fn log_with_torn_tail(torn: &[u8]) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let (dir, path) = three_lines();
    let good = std::fs::read(&path).unwrap();
    let mut bytes = good.clone();
    bytes.extend_from_slice(torn);
    std::fs::write(&path, &bytes).unwrap();
    (dir, path, good)
}

#[test]
fn a_torn_last_line_is_quarantined_recorded_and_the_chain_goes_on() {
    // Half of a real line, without its newline: a write cut off by a crash.
    let (line, _) = audit::chain_line(&entry(9), &AuditHead::genesis()).unwrap();
    let torn = &line.as_bytes()[..line.len() / 2];
    let (dir, path, good) = log_with_torn_tail(torn);
    // Before any repair, verify reports it without calling the log broken.
    let before = AuditLog::verify(&path, None).unwrap();
    assert_eq!(before.lines(), 3);
    assert_eq!(
        before.torn.map(|t| (t.line, t.bytes)),
        Some((4, torn.len() as u64))
    );

    let log = AuditLog::open(&path).unwrap();
    let files = quarantined(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("audit.jsonl.torn-4-"), "{name}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), torn);
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The log is its good lines plus one chained line recording the quarantine.
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(&good));
    let all = lines(&path);
    assert_eq!(all.len(), 4);
    let event: TornTailEvent = serde_json::from_value(all[3].clone()).unwrap();
    assert_eq!(event.event, "audit-torn-tail");
    assert_eq!(event.file, name);
    assert_eq!(event.bytes, torn.len() as u64);
    assert_eq!(event.sha256, hex::encode(Sha256::digest(torn)));
    assert_eq!(all[3]["seq"], 4);

    // Work goes on, and verify says what happened.
    log.append(&entry(5)).unwrap();
    let verified = AuditLog::verify(&path, None).unwrap();
    assert_eq!((verified.lines(), verified.torn), (5, None));
    assert!(matches!(
        &verified.notices[..],
        [Notice::Quarantined { line: 4, file, bytes, .. }] if *file == name && *bytes == torn.len() as u64
    ));
}

#[test]
fn an_unreadable_last_line_is_torn_too_and_a_file_of_only_garbage_restarts_the_chain() {
    let (dir, path, _) = log_with_torn_tail(b"\0\0\0\0\xff\n");
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().seq, 4);
    let files = quarantined(dir.path());
    assert_eq!(std::fs::read(&files[0]).unwrap(), b"\0\0\0\0\xff\n");
    assert_eq!(AuditLog::verify(&path, None).unwrap().lines(), 4);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, b"{\"time\":\"20").unwrap();
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().seq, 1);
    assert_eq!(lines(&path)[0]["event"], "audit-torn-tail");
    assert_eq!(AuditLog::verify(&path, None).unwrap().lines(), 1);
}

#[test]
fn an_edited_last_line_refuses_to_open_and_names_the_line() {
    let (dir, path) = three_lines();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("prog2", "prog7")).unwrap();
    let err = AuditLog::open(&path).unwrap_err();
    assert!(
        matches!(&err, AuditLogError::Broken { source: LogFault::Chain(b), .. } if b.line == 3),
        "{err}"
    );
    assert!(err.to_string().contains("edited"), "{err}");
    assert!(quarantined(dir.path()).is_empty());
}

#[test]
fn two_writers_on_one_file_keep_one_chain() {
    // Two opens of one file behave as two processes do: each its own open file and lock.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let a = Arc::new(AuditLog::open(&path).unwrap());
    let b = Arc::new(AuditLog::open(&path).unwrap());
    let writers: Vec<_> = [a.clone(), b.clone(), a, b]
        .into_iter()
        .enumerate()
        .map(|(w, log)| {
            std::thread::spawn(move || {
                for n in 0..50 {
                    log.append(&entry(w * 100 + n)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let verified = AuditLog::verify(&path, None).unwrap();
    assert_eq!(verified.lines(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_async_writers_share_syncs_and_every_line_is_chained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = Arc::new(AuditLog::open(&path).unwrap());
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for n in 0..20 {
                    let running = log.start_command(entry(t * 100 + n)).await.unwrap();
                    log.end_command(running, Ok(0)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    log.flush().await.unwrap();
    let stats = log.stats();
    assert_eq!(stats.lines, 1280);
    assert!(stats.syncs >= 1 && stats.syncs <= 1280, "{stats:?}");
    let verified = AuditLog::verify(&path, None).unwrap();
    assert_eq!(verified.lines(), 1280);
}

#[tokio::test]
async fn start_end_and_refused_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let running = log.start_command(entry(1)).await.unwrap();
    log.end_command(running, Err("connection lost".into()))
        .await
        .unwrap();
    log.refuse_command(entry(2)).await.unwrap();
    let all = lines(&path);
    assert_eq!(all[0]["phase"], "start");
    assert!(all[0]["status"].is_null() && all[0]["duration_ms"].is_null());
    assert_eq!(all[1]["phase"], "end");
    assert_eq!(all[1]["error"], "connection lost");
    assert!(all[1]["status"].is_null() && all[1]["duration_ms"].is_u64());
    assert!(all[2].get("phase").is_none());
    assert_eq!(all[2]["program"], "prog2");
    assert!(all[2]["status"].is_null());
}

#[test]
fn a_file_cut_while_open_makes_the_log_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for n in 0..3 {
        log.append(&entry(n)).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(&path, format!("{first}\n")).unwrap();
    let err = log.append(&entry(4)).unwrap_err();
    assert!(
        matches!(&err, AuditLogError::Unavailable { reason, .. } if reason.contains("cut")),
        "{err}"
    );
    // And stays so: nothing more is written by this process.
    assert!(log.append(&entry(5)).is_err());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{first}\n")
    );
}

#[test]
fn an_entry_with_a_chain_field_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let err = log
        .append(&serde_json::json!({ "event": "x", "seq": 1 }))
        .unwrap_err();
    assert!(matches!(err, AuditLogError::Entry(_)), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    assert_eq!(log.head(), AuditHead::genesis());
}

#[test]
fn a_missing_log_is_empty_without_an_anchor_and_cut_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    assert!(matches!(
        AuditLog::verify(&path, None),
        Err(AuditLogError::Io { .. })
    ));
    let anchor = AuditHead {
        seq: 3,
        hash: "a".repeat(64),
    };
    let err = AuditLog::verify(&path, Some(&anchor)).unwrap_err();
    assert!(
        matches!(
            &err,
            AuditLogError::Broken {
                source: LogFault::Cut { ends_at: 0, .. },
                ..
            }
        ),
        "{err}"
    );
}
