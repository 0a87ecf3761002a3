//! Runs commands on this machine, directly (no shell).

use async_trait::async_trait;
use patchwave_core::HostId;

use crate::process::{self, Overflow, Process, ProcessError};
use crate::{
    Command, Output, Transport, TransportError, DEFAULT_COMMAND_TIMEOUT, DEFAULT_MAX_OUTPUT,
};

/// The machine patchwave runs on, as a target host.
#[derive(Clone, Debug)]
pub struct LocalTransport {
    host: HostId,
    max_output: usize,
}

impl LocalTransport {
    /// A local transport reporting itself as `host` (usually `localhost`).
    pub fn new(host: HostId) -> Self {
        LocalTransport {
            host,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }

    /// Change the cap on stdout + stderr per command.
    pub fn with_max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }
}

/// The environment every command gets: a fixed PATH and C locale, so output parses the same
/// everywhere, plus what the command sets itself. Nothing else leaks from the runner.
pub(crate) const BASE_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LC_ALL", "C"),
    ("LANG", "C"),
];

#[async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &HostId {
        &self.host
    }

    async fn exec(&self, cmd: &Command) -> Result<Output, TransportError> {
        let env: Vec<(String, String)> = BASE_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(cmd.env.iter().cloned())
            .collect();
        let timeout = if cmd.timeout.is_zero() {
            DEFAULT_COMMAND_TIMEOUT
        } else {
            cmd.timeout
        };
        let process = Process {
            program: &cmd.program,
            args: &cmd.args,
            env: &env,
            stdin: cmd.stdin.as_deref(),
            timeout,
            cap: self.max_output,
            overflow: Overflow::Fail,
        };
        let (host, program) = (self.host.clone(), cmd.program.clone());
        match process::run(&process).await {
            Ok(done) => Ok(Output {
                status: done.status,
                stdout: done.stdout,
                stderr: done.stderr,
            }),
            Err(ProcessError::Timeout(after)) => Err(TransportError::Timeout {
                host,
                after,
                during: format!("running `{program}`"),
            }),
            Err(ProcessError::OutputTooLarge { limit }) => Err(TransportError::OutputTooLarge {
                host,
                program,
                limit,
            }),
            Err(ProcessError::Spawn(e) | ProcessError::Io(e)) => Err(TransportError::Spawn {
                host,
                program,
                detail: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn local() -> LocalTransport {
        LocalTransport::new(HostId::from("localhost"))
    }

    #[tokio::test]
    async fn runs_argv_without_a_shell() {
        let out = local()
            .exec(&Command::new(
                "echo",
                &["a b", "$HOME", ";", "x"],
                Duration::from_secs(5),
            ))
            .await
            .unwrap();
        assert_eq!(out.status, 0);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b $HOME ; x\n");
    }

    #[tokio::test]
    async fn environment_is_only_what_was_asked() {
        let mut cmd = Command::new("env", &[], Duration::from_secs(5));
        cmd.env
            .push(("DEBIAN_FRONTEND".into(), "noninteractive".into()));
        let out = local().exec(&cmd).await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("DEBIAN_FRONTEND=noninteractive"));
        assert!(!text.contains("HOME="), "runner env leaked: {text}");
    }

    #[tokio::test]
    async fn status_stdin_and_stderr() {
        let mut cmd = Command::new(
            "sh",
            &["-c", "cat; echo oops >&2; exit 3"],
            Duration::from_secs(5),
        );
        cmd.stdin = Some(b"fed".to_vec());
        let out = local().exec(&cmd).await.unwrap();
        assert_eq!(out.status, 3);
        assert_eq!(out.stdout, b"fed");
        assert_eq!(out.stderr, b"oops\n");
    }

    #[tokio::test]
    async fn timeout_is_reported() {
        let err = local()
            .exec(&Command::new("sleep", &["5"], Duration::from_millis(200)))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn huge_output_is_cut_off() {
        let err = local()
            .with_max_output(1 << 20)
            .exec(&Command::new(
                "head",
                &["-c", "10000000", "/dev/zero"],
                Duration::from_secs(10),
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransportError::OutputTooLarge { limit, .. } if limit == 1 << 20),
            "{err}"
        );
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let err = local()
            .exec(&Command::new(
                "no-such-program-xyz",
                &[],
                Duration::from_secs(5),
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Spawn { .. }), "{err}");
    }

    /// Whether `pid` has exited (gone, or a zombie nobody reaped yet); waits up to 10 s
    /// for a SIGKILL to take effect.
    fn exited(pid: u32) -> bool {
        for _ in 0..200 {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                Ok(stat) => {
                    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                    if state.is_some_and(|s| s.starts_with('Z')) {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn pid_in(path: &std::path::Path) -> u32 {
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Ok(pid) = text.trim().parse() {
                    return pid;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} never got a pid", path.display());
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The child leaves a grandchild holding the pipes and exits at once.
        let script = format!("sleep 300 & echo $! > {}; exit 0", pidfile.display());
        let err = local()
            .exec(&Command::new(
                "sh",
                &["-c", &script],
                Duration::from_millis(500),
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
        let pid = pid_in(&pidfile);
        assert!(exited(pid), "grandchild {pid} outlived the timeout");
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let cmd = Command::new("sh", &["-c", &script], Duration::from_secs(600));
        let transport = local();
        let cancelled =
            tokio::time::timeout(Duration::from_millis(500), transport.exec(&cmd)).await;
        assert!(cancelled.is_err(), "the run ended by itself: {cancelled:?}");
        let pid = pid_in(&pidfile);
        assert!(exited(pid), "grandchild {pid} outlived the dropped run");
    }
}
