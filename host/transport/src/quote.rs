//! Turning a [`Command`] into the single string an SSH `exec` request carries.
//!
//! SSH has no argv: the server hands one string to the remote user's login shell
//! (`$SHELL -c STRING`). So every word is single-quoted for a POSIX shell, and the
//! program is started through `env -i` with the same fixed environment the local
//! transport uses ([`BASE_ENV`]) plus the command's own variables. This requires the
//! remote user's login shell to be a POSIX shell (sh, dash, bash, ksh, zsh), which is
//! the case for `root` on every supported distribution.
//!
//! The program runs under coreutils `timeout -s KILL LIMIT`, so the host itself enforces
//! the command's time limit. The client cannot do it: closing the channel does not stop
//! the remote program, and OpenSSH refuses the SSH `signal` request for root logins
//! ("session signalling requires privilege separation"). With the limit enforced on the
//! host, a timed-out command is killed there as it is locally, even if the connection is
//! gone by then.

use std::time::Duration;

use crate::local::BASE_ENV;
use crate::Command;

/// Why a command cannot be expressed as a remote command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unquotable(pub(crate) String);

/// Quote one word for a POSIX shell: wrap it in single quotes, and spell each single
/// quote inside as `'\''` (close the quote, an escaped quote, reopen).
pub(crate) fn shell_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// True for names a POSIX shell and `env` accept as environment variable names.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// `limit` in seconds, as `timeout` reads it (millisecond precision, rounded up so the
/// host never kills before the client gives up; at least 1 ms, since 0 means no limit).
fn seconds(limit: Duration) -> String {
    let ms = limit.as_nanos().div_ceil(1_000_000).max(1);
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The remote command line for `cmd`, killed on the host after `limit`:
/// `exec env -i -- 'PATH=…' 'LC_ALL=C' 'LANG=C' 'K=V'… timeout -s KILL SECS 'program' 'arg'…`.
pub(crate) fn command_line(cmd: &Command, limit: Duration) -> Result<String, Unquotable> {
    if cmd.program.is_empty() {
        return Err(Unquotable("empty program name".into()));
    }
    // `env` takes any leading NAME=VALUE word as an assignment, so a program name
    // containing `=` would silently become a variable instead of running.
    if cmd.program.contains('=') {
        return Err(Unquotable(format!(
            "program name `{}` contains `=`, which `env` would read as a variable",
            cmd.program
        )));
    }
    let words = std::iter::once(&cmd.program).chain(&cmd.args);
    for (k, v) in &cmd.env {
        if !is_env_name(k) {
            return Err(Unquotable(format!(
                "environment variable name `{k}` is not [A-Za-z_][A-Za-z0-9_]*"
            )));
        }
        if v.contains('\0') {
            return Err(Unquotable(format!(
                "environment variable `{k}` contains a NUL byte"
            )));
        }
    }
    if let Some(w) = words.clone().find(|w| w.contains('\0')) {
        return Err(Unquotable(format!("argument {w:?} contains a NUL byte")));
    }

    let mut line = String::from("exec env -i --");
    let base = BASE_ENV.iter().map(|(k, v)| (*k, *v));
    let own = cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in base.chain(own) {
        line.push(' ');
        line.push_str(&shell_quote(&format!("{k}={v}")));
    }
    line.push_str(" timeout -s KILL ");
    line.push_str(&seconds(limit));
    for w in words {
        line.push(' ');
        line.push_str(&shell_quote(w));
    }
    Ok(line)
}

/// Recognise the program failing to start (coreutils `timeout: failed to run command
/// 'x': No such file or directory`, status 127; found but not executable: 126; or `env`
/// not finding `timeout` itself), so that a missing program is a
/// [`crate::TransportError::Spawn`] remotely as it is locally.
///
/// Only a single such line naming the program, with nothing on stdout, counts: a
/// program that ran and happened to exit 126/127 is reported as its own status.
pub(crate) fn spawn_failure(
    program: &str,
    status: i32,
    stdout: &[u8],
    stderr: &[u8],
) -> Option<String> {
    if !(status == 126 || status == 127) || !stdout.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(stderr).ok()?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    let ours = line.starts_with("timeout: failed to run command") && line.contains(program)
        || line.starts_with("env: ") && line.contains("timeout");
    if line.contains('\n') || !ours {
        return None;
    }
    Some(line.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn quotes_single_quotes_and_leaves_the_rest_literal() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME;`x`\"\\"), "'$HOME;`x`\"\\'");
        assert_eq!(shell_quote("''"), r"''\'''\'''");
    }

    #[test]
    fn env_names() {
        for ok in ["A", "_", "a_1", "DEBIAN_FRONTEND"] {
            assert!(is_env_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A=B", "A B", "É", "A;"] {
            assert!(!is_env_name(bad), "{bad}");
        }
    }

    #[test]
    fn line_has_fixed_env_then_command_env_then_argv() {
        let mut cmd = Command::new("printf", &["%s\n", "a'b"], Duration::ZERO);
        cmd.env
            .push(("DEBIAN_FRONTEND".into(), "noninteractive".into()));
        let line = command_line(&cmd, Duration::from_millis(1500)).unwrap();
        assert_eq!(
            line,
            "exec env -i -- 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
             'LC_ALL=C' 'LANG=C' 'DEBIAN_FRONTEND=noninteractive' timeout -s KILL 1.500 'printf' '%s\n' 'a'\\''b'"
        );
    }

    #[test]
    fn rejects_what_cannot_be_said() {
        let mut cmd = Command::new("true", &[], Duration::ZERO);
        cmd.env.push(("BAD NAME".into(), "x".into()));
        assert!(command_line(&cmd, Duration::from_secs(1)).is_err());
        assert!(command_line(
            &Command::new("", &[], Duration::ZERO),
            Duration::from_secs(1)
        )
        .is_err());
        assert!(command_line(
            &Command::new("A=B", &[], Duration::ZERO),
            Duration::from_secs(1)
        )
        .is_err());
        assert!(command_line(
            &Command::new("echo", &["a\0b"], Duration::ZERO),
            Duration::from_secs(1)
        )
        .is_err());
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(seconds(Duration::from_secs(600)), "600.000");
        assert_eq!(seconds(Duration::from_micros(1)), "0.001");
        assert_eq!(seconds(Duration::from_nanos(1_500_000_001)), "1.501");
        assert_eq!(seconds(Duration::ZERO), "0.001");
    }

    #[test]
    fn spawn_failure_is_only_the_wrappers_own_message() {
        let msg =
            "timeout: failed to run command \u{2018}nope\u{2019}: No such file or directory\n"
                .as_bytes();
        assert!(spawn_failure("nope", 127, b"", msg).is_some());
        assert!(spawn_failure("nope", 1, b"", msg).is_none());
        assert!(spawn_failure("nope", 127, b"out", msg).is_none());
        assert!(spawn_failure("nope", 127, b"", b"nope: file missing\n").is_none());
        assert!(spawn_failure("other", 127, b"", msg).is_none());
        assert!(spawn_failure(
            "x",
            127,
            b"",
            b"env: 'timeout': No such file or directory\n"
        )
        .is_some());
    }
}
