//! Every byte the CLI prints goes through here.
//!
//! - **Controls are escaped.** Host, plugin and feed text can carry terminal escape
//!   sequences; nothing printed keeps a raw C0 control other than line feed and tab, DEL, a
//!   C1 control or a bidirectional override ([`patchwave_core::text`]). Values that must
//!   stay on one line (an OS name in a table row) are escaped with [`field`] as well.
//!   JSON keeps its own escapes and stays valid JSON ([`json`]).
//! - **A closed stdout ends the command quietly.** `patchwave hosts show h --packages |
//!   head` closes the pipe early; the next write fails with `EPIPE`, and the command stops
//!   with exit status [`BROKEN_PIPE`] instead of panicking inside `println!`.

use std::borrow::Cow;
use std::io::Write;

use patchwave_core::text::{escape_line, escape_text, is_unsafe};

use crate::exit::{Failure, BROKEN_PIPE};

/// One line (or several) on stdout, controls escaped; a closed stdout is
/// [`Failure`] with [`BROKEN_PIPE`].
macro_rules! outln {
    () => {
        $crate::term::stdout("")
    };
    ($($arg:tt)*) => {
        $crate::term::stdout(&format!($($arg)*))
    };
}

/// One line (or several) on stderr, controls escaped. Errors writing to stderr are
/// ignored: there is nowhere left to report them.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::term::stderr(&format!($($arg)*))
    };
}

pub(crate) use {errln, outln};

/// A value shown inside one line: every control escaped, line feed and tab included.
pub fn field(text: &str) -> Cow<'_, str> {
    escape_line(text)
}

/// Write `line` and a line feed to stdout.
pub fn stdout(line: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let text = escape_text(line);
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::quiet(BROKEN_PIPE)),
        Err(e) => Err(Failure::op(format!("writing to stdout: {e}"))),
    }
}

/// Write `line` and a line feed to stderr.
pub fn stderr(line: &str) {
    let mut err = std::io::stderr().lock();
    let text = escape_text(line);
    let _ = err
        .write_all(text.as_bytes())
        .and_then(|()| err.write_all(b"\n"));
}

/// `value` as pretty JSON on stdout. serde_json escapes C0 controls in strings; the C1
/// controls, DEL and bidirectional overrides it leaves raw are written as `\uXXXX` too,
/// which is the same JSON value.
pub fn json(value: &serde_json::Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(Failure::op)?;
    stdout(&json_escaped(&text))
}

/// JSON text with every [`is_unsafe`] character left in it written as a `\uXXXX` escape.
/// Outside strings JSON is ASCII without controls other than whitespace, so only string
/// contents change.
fn json_escaped(text: &str) -> Cow<'_, str> {
    let unsafe_here = |c: char| is_unsafe(c) && !matches!(c, '\n' | ' ' | '\t' | '\r');
    if !text.chars().any(unsafe_here) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_here(c) {
            // Every such character is in the Basic Multilingual Plane: one \u escape.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_stays_json_with_every_control_escaped() {
        let value = serde_json::json!({
            "pretty_name": "Debian\u{1b}]0;x\u{7}\u{9b}2J\u{7f}\u{202e}",
        });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = json_escaped(&text);
        assert!(!safe.chars().any(is_unsafe_in_output), "{safe}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value,
            "the same JSON value"
        );
        assert!(
            safe.contains(r"\u009b") && safe.contains(r"\u001b"),
            "{safe}"
        );
    }

    fn is_unsafe_in_output(c: char) -> bool {
        is_unsafe(c) && c != '\n'
    }
}
