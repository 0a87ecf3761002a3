//! The one way patchwave runs a process on this machine: the local transport's commands and
//! the operator's snapshot hooks both go through [`run`].
//!
//! - argv, never a shell line; the environment is exactly what the caller gives (cleared
//!   first); stdin is the given bytes or `/dev/null`;
//! - stdout and stderr are drained **concurrently** to the end, so a process that fills one
//!   pipe while the other is read never blocks; what is kept is bounded ([`Overflow`]);
//! - the process leads a **process group** of its own; a timeout, or dropping the run's
//!   future, kills the whole group, so a child it left behind holding the pipes dies too;
//! - a process killed by signal N reports status 128 + N, as a shell does.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// What to do when a stream passes the output cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// The run fails with [`ProcessError::OutputTooLarge`] (a transport: never hand a plugin
    /// half an inventory).
    Fail,
    /// Keep reading to the end, keeping the last `cap` bytes of each stream (a hook whose
    /// last line is what matters).
    KeepTail,
}

/// One process to run.
#[derive(Clone, Debug)]
pub struct Process<'a> {
    /// Program: a path, or a name looked up in the given `PATH`.
    pub program: &'a str,
    /// Arguments, each one argv element.
    pub args: &'a [String],
    /// The whole environment of the process.
    pub env: &'a [(String, String)],
    /// Bytes fed to stdin (`None`: `/dev/null`).
    pub stdin: Option<&'a [u8]>,
    /// Kill the process group after this long.
    pub timeout: Duration,
    /// The most output kept: stdout and stderr together with [`Overflow::Fail`], each
    /// stream's tail with [`Overflow::KeepTail`].
    pub cap: usize,
    /// What passing `cap` means.
    pub overflow: Overflow,
}

/// How a finished process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Exit status; 128 + N when killed by signal N.
    pub status: i32,
    /// Standard output (its tail with [`Overflow::KeepTail`]).
    pub stdout: Vec<u8>,
    /// Standard error (its tail with [`Overflow::KeepTail`]).
    pub stderr: Vec<u8>,
}

/// Why a process gave no [`Finished`].
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// It could not be started.
    #[error("could not start: {0}")]
    Spawn(std::io::Error),
    /// Reading its output or waiting for it failed.
    #[error("{0}")]
    Io(std::io::Error),
    /// It printed more than the cap ([`Overflow::Fail`]); its group was killed.
    #[error("printed more than {limit} bytes; stopped")]
    OutputTooLarge {
        /// The cap.
        limit: usize,
    },
    /// It did not finish in time; its group was killed.
    #[error("did not finish within {0:?}; killed")]
    Timeout(Duration),
}

/// Kills a process group when dropped, unless disarmed: a timeout, an error or a dropped
/// future all end the whole group.
struct GroupGuard(Option<rustix::process::Pid>);

impl GroupGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // The leader is not reaped before this runs (tokio reaps it only once `wait`
            // returned, and then the guard is disarmed), so the group id is still ours.
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

/// Read `r` to its end, keeping at most `cap` bytes: the first ones (`tail` false, reporting
/// whether more came) or the last ones (`tail` true).
async fn drain<R: AsyncRead + Unpin>(
    mut r: R,
    cap: usize,
    tail: bool,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut over = false;
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok((buf, over));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > cap {
            over = true;
            if !tail {
                return Ok((buf, true));
            }
            let cut = buf.len() - cap;
            buf.drain(..cut);
        }
    }
}

/// Run `p` to its end (see the module documentation).
pub async fn run(p: &Process<'_>) -> Result<Finished, ProcessError> {
    let mut cmd = tokio::process::Command::new(p.program);
    cmd.args(p.args)
        .env_clear()
        .envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(match p.stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(ProcessError::Spawn)?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw),
    );
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), p.stdin) {
        // Fed concurrently, so a program that writes before it reads cannot deadlock.
        let data = data.to_vec();
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
        });
    }
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(ProcessError::Io(std::io::Error::other(
            "no stdout or stderr pipe",
        )));
    };
    let tail = p.overflow == Overflow::KeepTail;
    let work = async {
        let (out, err) = tokio::join!(drain(out, p.cap, tail), drain(err, p.cap, tail));
        let (out, err) = (
            out.map_err(ProcessError::Io)?,
            err.map_err(ProcessError::Io)?,
        );
        if !tail && (out.1 || err.1 || out.0.len() + err.0.len() > p.cap) {
            return Err(ProcessError::OutputTooLarge { limit: p.cap });
        }
        let status = child.wait().await.map_err(ProcessError::Io)?;
        Ok((status, out.0, err.0))
    };
    let (status, stdout, stderr) = match tokio::time::timeout(p.timeout, work).await {
        Ok(done) => done?,
        Err(_) => return Err(ProcessError::Timeout(p.timeout)),
    };
    // It exited and was reaped by `wait`: whatever it left running detached itself and is
    // not ours to kill (the pipes are closed, or the reads would not have ended).
    guard.disarm();
    Ok(Finished {
        status: exit_code(status),
        stdout,
        stderr,
    })
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sh(script: &str, cap: usize, overflow: Overflow) -> Process<'static> {
        let args: &'static [String] = Box::leak(Box::new(["-c".to_string(), script.to_string()]));
        let env: &'static [(String, String)] = Box::leak(Box::new([(
            "PATH".to_string(),
            "/usr/bin:/bin".to_string(),
        )]));
        Process {
            program: "/bin/sh",
            args,
            env,
            stdin: None,
            timeout: Duration::from_secs(30),
            cap,
            overflow,
        }
    }

    #[tokio::test]
    async fn both_streams_are_drained_and_their_tails_kept() {
        // 1 MiB on each stream; a run that read one stream after the other would block.
        let p = sh(
            "head -c 1048576 /dev/zero | tr '\\0' x; head -c 1048576 /dev/zero | tr '\\0' y >&2; \
             echo; echo last",
            64 * 1024,
            Overflow::KeepTail,
        );
        let done = run(&p).await.unwrap();
        assert_eq!(done.status, 0);
        assert_eq!(done.stdout.len(), 64 * 1024);
        assert!(done.stdout.ends_with(b"\nlast\n"));
        assert_eq!(done.stderr.len(), 64 * 1024);
        assert!(done.stderr.iter().all(|b| *b == b'y'));
    }

    #[tokio::test]
    async fn over_the_cap_fails_when_asked_to() {
        let p = sh("head -c 200000 /dev/zero", 100_000, Overflow::Fail);
        assert!(matches!(
            run(&p).await,
            Err(ProcessError::OutputTooLarge { limit: 100_000 })
        ));
    }

    #[tokio::test]
    async fn a_signal_is_128_plus_its_number() {
        let done = run(&sh("kill -TERM $$", 1024, Overflow::Fail))
            .await
            .unwrap();
        assert_eq!(done.status, 128 + 15);
    }
}
