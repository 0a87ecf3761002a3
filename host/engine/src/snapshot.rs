//! Snapshot hooks: the operator's own commands that take a snapshot of a host before an
//! apply and restore it when a rollback needs it (a cloud volume snapshot, an LVM or btrfs
//! snapshot, a hypervisor checkpoint — patchwave does not know which).
//!
//! Configured under `[snapshot]`:
//!
//! ```toml
//! [snapshot]
//! take = ["/usr/local/sbin/snap", "take", "{host}", "{address}"]
//! restore = ["/usr/local/sbin/snap", "restore", "{host}", "{snapshot}"]
//! timeout = "10m"          # each run; default 10m
//! on_rollback = "fallback" # or "always"
//! ```
//!
//! The hooks run **on the runner**, not on the host and not inside a plugin, as an argv (no
//! shell), with an empty environment except `PATH`, `PATCHWAVE_HOST`, `PATCHWAVE_ADDRESS`
//! and, for `restore`, `PATCHWAVE_SNAPSHOT`. `take` prints the snapshot id as the last
//! non-empty line of its stdout. Every run is written to the audit log (`plugin` =
//! `snapshot-hook`), a `start` line before it runs and an `end` line with its status.
//!
//! When a hook is configured, an apply takes a snapshot after the plugin planned the
//! package rollback and before anything changes; if the snapshot fails, the apply does not
//! run. The id is recorded as the last step of the rollback plan (`restore-snapshot`). A
//! rollback runs the package steps first and restores the snapshot only if they fail
//! (`fallback`), or restores it instead of them (`always`). Whether a restore worked is
//! never taken from the hook's exit status: the host's inventory is read again and judged.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use patchwave_core::audit::{AuditEntry, AuditEnv};
use patchwave_core::HostId;
use patchwave_plugin_host::AuditLog;
use patchwave_transport::process::{self, Overflow, Process, ProcessError};
use serde::Deserialize;

use crate::change;
fn parse_duration(s: &str) -> Result<Duration, String> {
    patchwave_core::HumanDuration::parse(s)
        .map(patchwave_core::HumanDuration::to_std)
        .map_err(|e| e.to_string())
}

/// How long a hook may run unless `timeout` says otherwise.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(600);
/// The most of a hook's stdout or stderr that is read.
const OUTPUT_LIMIT: usize = 64 * 1024;
/// The longest snapshot id accepted.
const MAX_ID_LEN: usize = 256;
/// `PATH` given to hooks.
const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// When a rollback restores the snapshot taken before the apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreWhen {
    /// Only when the package rollback fails.
    #[default]
    Fallback,
    /// Instead of the package rollback.
    Always,
}

/// `[snapshot]` as written.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// The argv that takes a snapshot; `{host}` and `{address}` are replaced.
    pub take: Vec<String>,
    /// The argv that restores one; `{host}`, `{address}` and `{snapshot}` are replaced.
    pub restore: Vec<String>,
    /// How long each run may take, like `10m` (default 10m).
    pub timeout: Option<String>,
    /// When a rollback restores the snapshot.
    #[serde(default)]
    pub on_rollback: RestoreWhen,
}

impl SnapshotConfig {
    /// Every problem, each naming its field.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        check_argv(
            "snapshot.take",
            &self.take,
            &["host", "address"],
            &mut problems,
        );
        check_argv(
            "snapshot.restore",
            &self.restore,
            &["host", "address", "snapshot"],
            &mut problems,
        );
        if !self.restore.iter().any(|a| a.contains("{snapshot}")) {
            problems.push(
                "snapshot.restore: never passes `{snapshot}`, so it cannot know which \
                 snapshot to restore"
                    .into(),
            );
        }
        if let Some(t) = &self.timeout {
            match parse_duration(t) {
                Ok(d) if d.is_zero() => problems.push("snapshot.timeout: must be above 0".into()),
                Ok(_) => {}
                Err(e) => problems.push(format!("snapshot.timeout: {e}")),
            }
        }
        problems
    }
}

/// The program must be an absolute path (no `PATH` lookup decides what runs) and every
/// `{placeholder}` one of `allowed`.
fn check_argv(at: &str, argv: &[String], allowed: &[&str], problems: &mut Vec<String>) {
    let Some(program) = argv.first() else {
        problems.push(format!("{at}: empty; give the program and its arguments"));
        return;
    };
    if !program.starts_with('/') {
        problems.push(format!(
            "{at}: `{program}` is not an absolute path (hooks are not looked up in PATH)"
        ));
    }
    for (i, arg) in argv.iter().enumerate() {
        let mut rest = arg.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let name = &rest[open + 1..open + close];
            if !allowed.contains(&name) {
                problems.push(format!(
                    "{at}[{i}]: unknown placeholder `{{{name}}}` (known: {})",
                    allowed
                        .iter()
                        .map(|a| format!("{{{a}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            rest = &rest[open + close + 1..];
        }
    }
}

/// Why a hook did not give what was needed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("snapshot hook `{program}`: {detail}")]
pub struct HookError {
    /// The hook's program.
    pub program: String,
    /// What went wrong, with the tail of its stderr when it ran.
    pub detail: String,
}

/// The configured hooks, ready to run.
#[derive(Clone, Debug)]
pub struct SnapshotHooks {
    take: Vec<String>,
    restore: Vec<String>,
    timeout: Duration,
    when: RestoreWhen,
    audit: Arc<AuditLog>,
}

impl SnapshotHooks {
    /// Hooks from a validated config, auditing every run to `audit`.
    pub fn new(config: &SnapshotConfig, audit: Arc<AuditLog>) -> Result<SnapshotHooks, String> {
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let timeout = match &config.timeout {
            Some(t) => parse_duration(t)?,
            None => DEFAULT_HOOK_TIMEOUT,
        };
        Ok(SnapshotHooks {
            take: config.take.clone(),
            restore: config.restore.clone(),
            timeout,
            when: config.on_rollback,
            audit,
        })
    }

    /// When a rollback restores the snapshot.
    pub fn when(&self) -> RestoreWhen {
        self.when
    }

    /// Take a snapshot of `host` at `address`; returns its id.
    pub async fn take(&self, host: &HostId, address: &str) -> Result<String, HookError> {
        let stdout = self.run(&self.take, host, address, None).await?;
        let id = stdout
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_string();
        let bad = |detail: String| HookError {
            program: self.take[0].clone(),
            detail,
        };
        if id.is_empty() {
            return Err(bad("printed no snapshot id".into()));
        }
        check_snapshot_id(&id).map_err(|why| bad(format!("printed an unusable {why}")))?;
        Ok(id)
    }

    /// Restore snapshot `id` of `host` at `address`. Success means only that the hook
    /// exited 0; the caller reads the host to judge the result.
    pub async fn restore(&self, host: &HostId, address: &str, id: &str) -> Result<(), HookError> {
        check_snapshot_id(id).map_err(|why| HookError {
            program: self.restore[0].clone(),
            detail: format!("refused: {why}"),
        })?;
        self.run(&self.restore, host, address, Some(id))
            .await
            .map(drop)
    }

    async fn run(
        &self,
        template: &[String],
        host: &HostId,
        address: &str,
        snapshot: Option<&str>,
    ) -> Result<String, HookError> {
        let fail = |detail: String| HookError {
            program: template[0].clone(),
            detail,
        };
        check_address(address).map_err(|why| fail(format!("refused: {why}")))?;
        // One pass over each argument: a value put in for a placeholder is never read for
        // placeholders again.
        let argv: Vec<String> = template
            .iter()
            .map(|a| substitute(a, host.as_str(), address, snapshot))
            .collect();
        let mut env = vec![
            ("PATH", HOOK_PATH.to_string()),
            ("PATCHWAVE_HOST", host.to_string()),
            ("PATCHWAVE_ADDRESS", address.to_string()),
        ];
        if let Some(id) = snapshot {
            env.push(("PATCHWAVE_SNAPSHOT", id.to_string()));
        }
        // On disk before it runs: a hook whose run could not be audited does not run.
        let running = self
            .audit
            .start_command(audit_entry(host, &argv, &env))
            .await
            .map_err(|e| fail(format!("audit log unavailable, not run: {e}")))?;
        let result = self.spawn(&argv, &env).await;
        let ran = match &result {
            Ok((status, _, _)) => Ok(*status),
            Err(e) => Err(e.clone()),
        };
        self.audit
            .end_command(running, ran)
            .await
            .map_err(|e| fail(format!("audit log unavailable: {e}")))?;
        let (status, stdout, stderr) = result.map_err(&fail)?;
        if status != 0 {
            return Err(fail(format!(
                "exited with status {status}: {}",
                change::output_tail(&stderr)
            )));
        }
        Ok(stdout)
    }

    /// Run `argv` with exactly `env` through the one local process runner: both streams
    /// drained to the end (their last [`OUTPUT_LIMIT`] bytes kept), its whole process group
    /// killed at the timeout. Its exit status, stdout and stderr.
    async fn spawn(
        &self,
        argv: &[String],
        env: &[(&str, String)],
    ) -> Result<(i32, String, String), String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        let process = Process {
            program: &argv[0],
            args: &argv[1..],
            env: &env,
            stdin: None,
            timeout: self.timeout,
            cap: OUTPUT_LIMIT,
            overflow: Overflow::KeepTail,
        };
        match process::run(&process).await {
            Ok(done) => Ok((
                done.status,
                String::from_utf8_lossy(&done.stdout).into_owned(),
                String::from_utf8_lossy(&done.stderr).into_owned(),
            )),
            Err(ProcessError::Timeout(_)) => Err(format!(
                "did not finish within {}s; killed",
                self.timeout.as_secs()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `arg` with `{host}`, `{address}` and (when given) `{snapshot}` put in, in one pass.
fn substitute(arg: &str, host: &str, address: &str, snapshot: Option<&str>) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let value = [
            ("{host}", Some(host)),
            ("{address}", Some(address)),
            ("{snapshot}", snapshot),
        ]
        .into_iter()
        .find_map(|(name, value)| Some((name, value?)).filter(|_| tail.starts_with(name)));
        match value {
            Some((name, value)) => {
                out.push_str(value);
                rest = &tail[name.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A snapshot id a hook may be given as an argument: not empty, not read as an option, and
/// only characters no shell or option parser treats specially.
fn check_snapshot_id(id: &str) -> Result<(), String> {
    const ALLOWED: &str = "-_.:/@+=,~%";
    let shown = patchwave_core::text::escape_line(id);
    if id.is_empty() {
        return Err("empty snapshot id".into());
    }
    if id.starts_with('-') {
        return Err(format!(
            "snapshot id `{shown}` starts with `-` and would read as an option"
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "snapshot id of {} bytes is over the {MAX_ID_LEN} allowed",
            id.len()
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ALLOWED.contains(c))
    {
        return Err(format!(
            "snapshot id `{shown}` may only use letters, digits and `{ALLOWED}`"
        ));
    }
    Ok(())
}

/// A host address a hook may be given: not read as an option, no control characters.
fn check_address(address: &str) -> Result<(), String> {
    let shown = patchwave_core::text::escape_line(address);
    if address.starts_with('-') {
        return Err(format!(
            "address `{shown}` starts with `-` and would read as an option"
        ));
    }
    if address.chars().any(patchwave_core::text::is_unsafe) {
        return Err(format!("address `{shown}` holds control characters"));
    }
    Ok(())
}

/// The audit line of a hook run: `plugin` is `snapshot-hook`, the environment is logged with
/// its values.
fn audit_entry(host: &HostId, argv: &[String], env: &[(&str, String)]) -> AuditEntry {
    AuditEntry {
        time: Utc::now(),
        phase: None,
        plugin: "snapshot-hook".into(),
        plugin_digest: String::new(),
        host: host.to_string(),
        program: argv[0].clone(),
        args: argv[1..].to_vec(),
        env: env
            .iter()
            .map(|(name, value)| AuditEnv::new(name, value, false))
            .collect(),
        decision: "configured".into(),
        status: None,
        duration_ms: None,
        error: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(take: &[&str], restore: &[&str]) -> SnapshotConfig {
        SnapshotConfig {
            take: take.iter().map(|s| s.to_string()).collect(),
            restore: restore.iter().map(|s| s.to_string()).collect(),
            timeout: None,
            on_rollback: RestoreWhen::Fallback,
        }
    }

    fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn hooks(dir: &std::path::Path, cfg: &SnapshotConfig) -> SnapshotHooks {
        let audit = Arc::new(AuditLog::open(&dir.join("audit.jsonl")).unwrap());
        SnapshotHooks::new(cfg, audit).unwrap()
    }

    #[test]
    fn every_config_problem_is_named_at_once() {
        let mut cfg = config(&["snap", "{hots}"], &["/bin/restore", "{host}"]);
        cfg.timeout = Some("soon".into());
        let problems = cfg.validate();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("`snap` is not an absolute path"));
        assert!(problems[1].contains("snapshot.take[1]: unknown placeholder `{hots}`"));
        assert!(problems[2].contains("never passes `{snapshot}`"));
        assert!(problems[3].starts_with("snapshot.timeout:"));
        assert_eq!(
            config(&[], &["/r", "{snapshot}"]).validate(),
            vec!["snapshot.take: empty; give the program and its arguments".to_string()]
        );
        assert!(
            config(&["/t", "{host}", "{address}"], &["/r", "{snapshot}"])
                .validate()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn take_returns_the_last_line_and_both_runs_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let take = script(
            dir.path(),
            "take",
            "echo \"taking $1 at $2 ($PATCHWAVE_HOST, $PATCHWAVE_ADDRESS) HOME=$HOME\" >&2\n\
             echo progress\necho snap-$1\necho",
        );
        let log = dir.path().join("restored");
        let restore = script(
            dir.path(),
            "restore",
            &format!("echo \"$1 $2 $PATCHWAVE_SNAPSHOT\" > {}", log.display()),
        );
        let h = hooks(
            dir.path(),
            &config(
                &[&take, "{host}", "{address}"],
                &[&restore, "{host}", "{snapshot}"],
            ),
        );
        let host = HostId::from("h07");
        assert_eq!(h.take(&host, "10.0.0.7").await.unwrap(), "snap-h07");
        h.restore(&host, "10.0.0.7", "snap-h07").await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "h07 snap-h07 snap-h07\n"
        );
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(String, String, serde_json::Value)> = lines
            .iter()
            .map(|l| {
                (
                    l["phase"].as_str().unwrap().to_string(),
                    l["args"][0].as_str().unwrap().to_string(),
                    l["status"].clone(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("start".into(), "h07".into(), serde_json::Value::Null),
                ("end".into(), "h07".into(), serde_json::json!(0)),
                ("start".into(), "h07".into(), serde_json::Value::Null),
                ("end".into(), "h07".into(), serde_json::json!(0)),
            ]
        );
        assert_eq!(lines[0]["plugin"], "snapshot-hook");
        assert_eq!(lines[1]["args"][1], "10.0.0.7");
        // Ended runs say how long they took; the environment is logged with its values,
        // as exec requests are.
        assert!(lines[0]["duration_ms"].is_null());
        assert!(lines[1]["duration_ms"].is_u64());
        assert!(lines[3]["duration_ms"].is_u64());
        let env = |name: &str, value: &str| serde_json::json!({"name": name, "value": value});
        assert_eq!(
            lines[1]["env"],
            serde_json::json!([
                env("PATH", HOOK_PATH),
                env("PATCHWAVE_HOST", "h07"),
                env("PATCHWAVE_ADDRESS", "10.0.0.7"),
            ])
        );
        assert_eq!(
            lines[3]["env"],
            serde_json::json!([
                env("PATH", HOOK_PATH),
                env("PATCHWAVE_HOST", "h07"),
                env("PATCHWAVE_ADDRESS", "10.0.0.7"),
                env("PATCHWAVE_SNAPSHOT", "snap-h07"),
            ])
        );
    }

    #[tokio::test]
    async fn failures_name_the_hook_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let failing = script(dir.path(), "fail", "echo 'volume busy' >&2\nexit 3");
        let silent = script(dir.path(), "silent", "true");
        let slow = script(dir.path(), "slow", "sleep 5");
        let restore = ["/bin/true", "{snapshot}"];
        let host = HostId::from("h1");

        let h = hooks(dir.path(), &config(&[&failing], &restore));
        let e = h.take(&host, "a").await.unwrap_err();
        assert_eq!(e.program, failing);
        assert_eq!(e.detail, "exited with status 3: volume busy");

        let h = hooks(dir.path(), &config(&[&silent], &restore));
        assert_eq!(
            h.take(&host, "a").await.unwrap_err().detail,
            "printed no snapshot id"
        );

        let mut cfg = config(&[&slow], &restore);
        cfg.timeout = Some("1s".into());
        let h = hooks(dir.path(), &cfg);
        assert_eq!(
            h.take(&host, "a").await.unwrap_err().detail,
            "did not finish within 1s; killed"
        );

        let h = hooks(dir.path(), &config(&["/nonexistent/snap"], &restore));
        assert!(h
            .take(&host, "a")
            .await
            .unwrap_err()
            .detail
            .starts_with("could not start: "));
    }
    /// The audit `end` lines' statuses and errors, in order.
    fn ends(dir: &std::path::Path) -> Vec<(serde_json::Value, serde_json::Value)> {
        std::fs::read_to_string(dir.join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["phase"] == "end")
            .map(|l| (l["status"].clone(), l["error"].clone()))
            .collect()
    }

    /// Before, only 64 KiB of each stream was read before waiting for the hook, so a hook
    /// printing more blocked on a full pipe until its timeout killed it.
    #[tokio::test]
    async fn a_chatty_hook_is_drained_on_both_streams_and_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let chatty = script(
            dir.path(),
            "chatty",
            "head -c 1048576 /dev/zero | tr '\\0' x\nhead -c 1048576 /dev/zero | tr '\\0' y >&2\n\
             echo\necho snap-1",
        );
        let mut cfg = config(&[&chatty], &["/bin/true", "{snapshot}"]);
        cfg.timeout = Some("10m".into());
        let h = hooks(dir.path(), &cfg);
        assert_eq!(h.take(&HostId::from("h1"), "a").await.unwrap(), "snap-1");
        // It exited by itself (status 0), not by the timeout.
        assert_eq!(
            ends(dir.path()),
            vec![(serde_json::json!(0), serde_json::Value::Null)]
        );
    }

    /// Whether `pid` has exited (gone, or a zombie nobody reaped yet); waits up to 10 s for
    /// a SIGKILL to take effect.
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

    /// Before, a timeout killed the hook's own process only: a child it left behind, still
    /// holding the pipes, lived on (and kept the run waiting until the timeout).
    #[tokio::test]
    async fn a_timeout_kills_the_hooks_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let leaves = script(
            dir.path(),
            "leaves",
            &format!("sleep 300 &\necho $! > {}\nexit 0", pidfile.display()),
        );
        let mut cfg = config(&[&leaves], &["/bin/true", "{snapshot}"]);
        cfg.timeout = Some("1s".into());
        let h = hooks(dir.path(), &cfg);
        let e = h.take(&HostId::from("h1"), "a").await.unwrap_err();
        assert_eq!(e.detail, "did not finish within 1s; killed");
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(exited(pid), "the hook's child {pid} outlived the timeout");
    }

    /// Before, an id starting with `-` was passed to the restore hook, which read it as an
    /// option (`rm -rf`-style).
    #[tokio::test]
    async fn snapshot_ids_that_could_read_as_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("restore-ran");
        let restore = script(
            dir.path(),
            "restore",
            &format!("echo \"$@\" > {}", ran.display()),
        );
        let dash = script(dir.path(), "dash", "echo -rf");
        let h = hooks(dir.path(), &config(&[&dash], &[&restore, "{snapshot}"]));
        let host = HostId::from("h1");
        assert_eq!(
            h.take(&host, "a").await.unwrap_err().detail,
            "printed an unusable snapshot id `-rf` starts with `-` and would read as an option"
        );
        for (id, why) in [
            (
                "-rf",
                "snapshot id `-rf` starts with `-` and would read as an option",
            ),
            (
                "a b",
                "snapshot id `a b` may only use letters, digits and `-_.:/@+=,~%`",
            ),
            (
                "x\x1b[2J",
                "snapshot id `x\\x1b[2J` may only use letters, digits and `-_.:/@+=,~%`",
            ),
            ("", "empty snapshot id"),
        ] {
            let e = h.restore(&host, "a", id).await.unwrap_err();
            assert_eq!(e.program, restore);
            assert_eq!(e.detail, format!("refused: {why}"), "{id:?}");
        }
        assert!(!ran.exists(), "the restore hook ran");
        let e = h
            .restore(&host, "-oProxyCommand=x", "snap-1")
            .await
            .unwrap_err();
        assert!(
            e.detail.starts_with("refused: address `-oProxyCommand=x`"),
            "{e}"
        );
        assert!(!ran.exists(), "the restore hook ran");

        // Accepted ids reach the hook as they are, and a value is never expanded again.
        h.restore(&host, "{snapshot}", "vol/snap@2026-01-01:1")
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&ran).unwrap(),
            "vol/snap@2026-01-01:1\n"
        );
    }
}
