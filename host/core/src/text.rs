//! Text that came from somewhere else (a host, a plugin, a feed) made safe to print.
//!
//! A host controls its os-release, its package names and versions and the output of every
//! command it runs; a plugin controls its manifest and its errors; a feed controls its
//! advisories. Printed raw, such text can carry terminal escape sequences (ESC, OSC, CSI)
//! that rewrite the screen, retitle the window, hide lines with CR, or reorder what follows
//! with Unicode bidirectional overrides. Stored values stay exactly as they arrived; they
//! are escaped where they are shown, so every character stays visible as what it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` can change how a terminal shows other text: a C0 control (including tab,
/// line feed and carriage return), DEL, a C1 control (U+0080 to U+009F, e.g. the one-byte
/// CSI U+009B), or a Unicode bidirectional mark, embedding, override or isolate, or a
/// line or paragraph separator.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` for one line of output: every [`is_unsafe`] character is written as an escape
/// (`\t`, `\n`, `\r`, `\x1b` for the other ASCII controls, `\u{9b}` beyond ASCII), so a
/// value can neither move the cursor nor start a new line. Text without such characters is
/// returned as it is.
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// Like [`escape_line`], but tab and line feed stay as they are: for multi-line output
/// (a table, an error with its details) whose values were not escaped one by one.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escape(text, |c| matches!(c, '\n' | '\t'))
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe(c) || keep(c) {
            out.push(c);
            continue;
        }
        // Writing to a String cannot fail.
        let _ = match c {
            '\t' => out.write_str("\\t"),
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            c if c.is_ascii() => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_not_obeyed() {
        // OSC 0 (set the window title), a CSI sequence, CR, the one-byte C1 CSI, DEL, NUL.
        let hostile = "Debian\x1b]0;pwned\x07 12\x1b[2J\rfake\u{9b}31m\x7f\0";
        assert_eq!(
            escape_line(hostile),
            "Debian\\x1b]0;pwned\\x07 12\\x1b[2J\\rfake\\u{9b}31m\\x7f\\x00"
        );
        assert_eq!(
            escape_text("a\tb\nc\x1b[1m"),
            "a\tb\nc\\x1b[1m",
            "tab and newline stay in multi-line text"
        );
        assert_eq!(escape_line("a\tb\nc"), "a\\tb\\nc");
        // Bidirectional overrides reorder what follows them ("Trojan Source").
        assert_eq!(
            escape_line("evil\u{202e}gpj.exe\u{2066}"),
            "evil\\u{202e}gpj.exe\\u{2066}"
        );
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        for text in [
            "Debian GNU/Linux 12 (bookworm)",
            "Ubuntu 22.04.4 LTS",
            "µ ü 日本",
            "",
        ] {
            assert!(matches!(escape_line(text), Cow::Borrowed(t) if t == text));
            assert!(matches!(escape_text(text), Cow::Borrowed(t) if t == text));
        }
    }
}
