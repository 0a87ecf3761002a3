//! Reading the end of the log file: its last whole line, a torn line after it, the lines
//! back to the anchored one; moving a torn line to a quarantine file; the file lock.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use chrono::Utc;
use patchwave_core::audit::{self, AuditHead, ChainBreak, LineFault, LogFault, Verifier};
use sha2::{Digest, Sha256};

use super::{AuditLog, AuditLogError};

/// Bytes read at a time when looking backwards.
const CHUNK: usize = 64 * 1024;

/// At most this much of the file is walked back to find the anchored line; further back
/// the whole file is verified instead.
const MAX_WALK_BACK: u64 = 64 << 20;

/// An exclusive `flock` on the log, released on drop: writers in other processes wait.
pub(super) struct FileLock<'f>(&'f File);

impl<'f> FileLock<'f> {
    pub(super) fn exclusive(file: &'f File) -> io::Result<FileLock<'f>> {
        file.lock()?;
        Ok(FileLock(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.unlock() {
            tracing::error!(error = %e, "audit log: could not release the file lock");
        }
    }
}

/// Bytes at the end of the file that are not a whole line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Torn {
    /// Where they start (just after the last whole line).
    pub(super) start: u64,
    /// How many.
    pub(super) len: u64,
}

/// The end of the file: its last whole line and what follows it.
#[derive(Debug)]
pub(super) struct TailScan {
    /// The last whole line's head (genesis for a file without one).
    pub(super) head: AuditHead,
    /// Where the whole lines end.
    pub(super) end: u64,
    /// A torn line after them.
    pub(super) torn: Option<Torn>,
}

/// Why the end of the file could not be read as a log's end.
pub(super) enum ScanError {
    Io(io::Error),
    Broken(ChainBreak),
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

impl ScanError {
    pub(super) fn into_error(self, path: &Path) -> AuditLogError {
        match self {
            ScanError::Io(source) => AuditLogError::Io {
                path: path.to_path_buf(),
                source,
            },
            ScanError::Broken(b) => AuditLogError::Broken {
                path: path.to_path_buf(),
                source: LogFault::Chain(b),
            },
        }
    }
}

impl TailScan {
    /// Read the end of `file` (`len` bytes long). Bytes after the last newline are torn; so
    /// is a last line that is not UTF-8 or not JSON (and then the line before it must be
    /// whole). The last whole line must be a good chained line on its own.
    pub(super) fn read(file: &File, len: u64) -> Result<TailScan, ScanError> {
        let mut torn = None;
        let mut end = match rfind_newline(file, len)? {
            Some(p) if p + 1 == len => len,
            Some(p) => {
                torn = Some(Torn {
                    start: p + 1,
                    len: len - p - 1,
                });
                p + 1
            }
            None if len == 0 => 0,
            None => {
                torn = Some(Torn { start: 0, len });
                0
            }
        };
        loop {
            if end == 0 {
                return Ok(TailScan {
                    head: AuditHead::genesis(),
                    end,
                    torn,
                });
            }
            let start = rfind_newline(file, end - 1)?.map_or(0, |q| q + 1);
            let bytes = read_range(file, start, end - 1)?;
            match audit::read_line(&bytes) {
                Ok(line) => {
                    let seq = match line.seq {
                        Some(seq) => seq,
                        // A log from before sequence numbers: its line count.
                        None => count_lines(file, end)?,
                    };
                    return Ok(TailScan {
                        head: AuditHead {
                            seq,
                            hash: line.hash,
                        },
                        end,
                        torn,
                    });
                }
                Err(LineFault::Unreadable(_)) if torn.is_none() => {
                    torn = Some(Torn {
                        start,
                        len: end - start,
                    });
                    end = start;
                }
                Err(LineFault::Unreadable(reason) | LineFault::Broken(reason)) => {
                    return Err(ScanError::Broken(ChainBreak {
                        line: count_lines(file, start)? + 1,
                        reason,
                    }))
                }
            }
        }
    }
}

/// Check the file's end (`scan`) against `anchor`: it must reach the anchored line, and that
/// line must have the anchored hash. When the file is ahead of the anchor, the lines after
/// the anchored one are verified too (walking back to it, or verifying the whole file when
/// it is far back).
pub(super) fn check_anchor(
    file: &File,
    scan: &TailScan,
    anchor: &AuditHead,
    path: &Path,
) -> Result<(), AuditLogError> {
    let broken = |source| AuditLogError::Broken {
        path: path.to_path_buf(),
        source,
    };
    let head = &scan.head;
    if head.seq < anchor.seq {
        return Err(broken(LogFault::Cut {
            ends_at: head.seq,
            anchor: anchor.clone(),
        }));
    }
    if head.seq == anchor.seq {
        return match head.hash == anchor.hash {
            true => Ok(()),
            false => Err(broken(LogFault::Rewritten {
                anchor: anchor.clone(),
                found: head.hash.clone(),
            })),
        };
    }
    let io = |source| AuditLogError::Io {
        path: path.to_path_buf(),
        source,
    };
    match lines_after(file, scan.end, anchor).map_err(io)? {
        WalkBack::Found(lines) => {
            let mut verifier = Verifier::after(anchor.clone(), None);
            for line in lines.iter().rev() {
                verifier.push(line).map_err(broken)?;
            }
            verifier.finish(b"").map(drop).map_err(broken)
        }
        WalkBack::Differs(found) => Err(broken(LogFault::Rewritten {
            anchor: anchor.clone(),
            found,
        })),
        WalkBack::GaveUp => AuditLog::verify(path, Some(anchor)).map(drop),
    }
}

enum WalkBack {
    /// The lines after the anchored one (which has the anchored hash), last first.
    Found(Vec<Vec<u8>>),
    /// The line with the anchored `seq` has this hash instead.
    Differs(String),
    /// Not found within reach, or the lines on the way are not what they should be: the
    /// whole file's verification decides.
    GaveUp,
}

/// Walk back from `end` to the line whose `seq` is the anchor's.
fn lines_after(file: &File, end: u64, anchor: &AuditHead) -> io::Result<WalkBack> {
    let mut lines = Vec::new();
    let mut hi = end;
    while hi > 0 && end - hi <= MAX_WALK_BACK {
        let start = rfind_newline(file, hi - 1)?.map_or(0, |q| q + 1);
        let bytes = read_range(file, start, hi - 1)?;
        let Ok(line) = audit::read_line(&bytes) else {
            return Ok(WalkBack::GaveUp);
        };
        match line.seq {
            Some(seq) if seq == anchor.seq && line.hash == anchor.hash => {
                return Ok(WalkBack::Found(lines))
            }
            Some(seq) if seq == anchor.seq => return Ok(WalkBack::Differs(line.hash)),
            Some(seq) if seq > anchor.seq => lines.push(bytes),
            _ => return Ok(WalkBack::GaveUp),
        }
        hi = start;
    }
    Ok(WalkBack::GaveUp)
}

/// Copy the torn bytes to a new private file beside the log, named after the `seq` the line
/// would have had and the time, and make it durable. Returns its name and the bytes'
/// SHA-256.
pub(super) fn quarantine(
    file: &File,
    torn: &Torn,
    log: &Path,
    seq: u64,
) -> io::Result<(String, String)> {
    let dir = log
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = log.file_name().map_or_else(
        || "audit.jsonl".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let stem = format!("{base}.torn-{seq}-{}", Utc::now().timestamp());
    let mut attempt = 0;
    let (name, mut out) = loop {
        let name = match attempt {
            0 => stem.clone(),
            n => format!("{stem}-{n}"),
        };
        match create_private(&dir.join(&name)) {
            Ok(out) => break (name, out),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0; CHUNK];
    let mut at = torn.start;
    let end = torn.start + torn.len;
    while at < end {
        let n = usize::try_from(end - at).map_or(CHUNK, |left| left.min(CHUNK));
        file.read_exact_at(&mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    out.sync_all()?;
    // The new name must be on disk before the bytes leave the log.
    File::open(dir)?.sync_all()?;
    Ok((name, hex::encode(hasher.finalize())))
}

/// A new file only this user can read, never an existing file or a symlink.
fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// The offset of the last newline before `before`.
fn rfind_newline(file: &File, before: u64) -> io::Result<Option<u64>> {
    let mut buf = vec![0; CHUNK];
    let mut hi = before;
    while hi > 0 {
        let lo = hi.saturating_sub(CHUNK as u64);
        let n = (hi - lo) as usize;
        file.read_exact_at(&mut buf[..n], lo)?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

/// The bytes from `start` to `end`.
fn read_range(file: &File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(end - start).map_err(io::Error::other)?;
    let mut bytes = vec![0; len];
    file.read_exact_at(&mut bytes, start)?;
    Ok(bytes)
}

/// Newlines before `end`: the number of whole lines there.
fn count_lines(file: &File, end: u64) -> io::Result<u64> {
    let mut buf = vec![0; CHUNK];
    let mut at = 0;
    let mut lines = 0;
    while at < end {
        let n = usize::try_from(end - at).map_or(CHUNK, |left| left.min(CHUNK));
        file.read_exact_at(&mut buf[..n], at)?;
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        at += n as u64;
    }
    Ok(lines)
}
