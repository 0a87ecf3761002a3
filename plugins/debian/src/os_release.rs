//! `os-release(5)` parsing.
//!
//! The file is a list of shell-style `KEY=value` assignments: values may be unquoted,
//! single-quoted (literal) or double-quoted (where `\` escapes `$`, `"`, `\`, `` ` `` and a
//! newline), and parts may be concatenated (`A="x"'y'z`). Lines starting with `#` and blank
//! lines are comments. As systemd does, lines that are not valid assignments are skipped
//! rather than failing the whole file; a later assignment of the same key wins.

/// The fields of os-release this plugin uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`, lower-case; `linux` when absent (the os-release default).
    pub id: String,
    /// `ID_LIKE`, split on whitespace.
    pub id_like: Vec<String>,
    /// `VERSION_ID`; empty when absent (Debian testing and unstable have none).
    pub version_id: String,
    /// `VERSION_CODENAME`, or Ubuntu's `UBUNTU_CODENAME` when that is the only one.
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// Pick the known fields out of an os-release file.
    pub fn parse(text: &str) -> Self {
        let mut rel = OsRelease {
            id: "linux".to_string(),
            ..OsRelease::default()
        };
        let mut ubuntu_codename = None;
        for (key, value) in assignments(text) {
            match key {
                "ID" => rel.id = value,
                "ID_LIKE" => rel.id_like = value.split_whitespace().map(str::to_string).collect(),
                "VERSION_ID" => rel.version_id = value,
                "VERSION_CODENAME" => rel.codename = non_empty(value),
                "UBUNTU_CODENAME" => ubuntu_codename = non_empty(value),
                "PRETTY_NAME" => rel.pretty_name = non_empty(value),
                _ => {}
            }
        }
        if rel.codename.is_none() {
            rel.codename = ubuntu_codename;
        }
        rel
    }

    /// `true` when `ID` or an `ID_LIKE` entry is one of `ids` (ASCII case-insensitive).
    pub fn is_like_any(&self, ids: &[&str]) -> bool {
        std::iter::once(&self.id)
            .chain(&self.id_like)
            .any(|id| ids.iter().any(|want| id.eq_ignore_ascii_case(want)))
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Every valid `KEY=value` assignment in order, with the value unquoted.
pub fn assignments(text: &str) -> impl Iterator<Item = (&str, String)> {
    text.lines().filter_map(|line| {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let (key, raw) = line.split_once('=')?;
        if !is_key(key) {
            return None;
        }
        Some((key, unquote(raw)?))
    })
}

/// A shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The value of one assignment, as a POSIX shell would read it (without expansions);
/// `None` for an unterminated quote or trailing text that is not a comment.
fn unquote(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    c => out.push(c),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        c @ ('$' | '"' | '\\' | '`') => out.push(c),
                        '\n' => {}
                        c => {
                            out.push('\\');
                            out.push(c);
                        }
                    },
                    c => out.push(c),
                }
            },
            '\\' => out.push(chars.next()?),
            c if c.is_whitespace() => {
                // End of the word: only a comment may follow.
                let rest = chars.as_str().trim_start();
                return (rest.is_empty() || rest.starts_with('#')).then_some(out);
            }
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_bookworm() {
        let rel = OsRelease::parse(include_str!("../tests/data/os-release-debian12"));
        assert_eq!(rel.id, "debian");
        assert!(rel.id_like.is_empty());
        assert_eq!(rel.version_id, "12");
        assert_eq!(rel.codename.as_deref(), Some("bookworm"));
        assert_eq!(
            rel.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert!(rel.is_like_any(&["debian", "ubuntu"]));
    }

    #[test]
    fn ubuntu_and_derivatives() {
        let text = "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n\
                    PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nUBUNTU_CODENAME=jammy\n";
        let rel = OsRelease::parse(text);
        assert_eq!(rel.id, "ubuntu");
        assert_eq!(rel.id_like, ["debian"]);
        assert_eq!(rel.version_id, "22.04");
        assert_eq!(rel.codename.as_deref(), Some("jammy"));

        let mint = OsRelease::parse("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n");
        assert!(mint.is_like_any(&["debian", "ubuntu"]));
        let rocky = OsRelease::parse("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n");
        assert!(!rocky.is_like_any(&["debian", "ubuntu"]));
    }

    #[test]
    fn sid_has_no_version_id() {
        let rel = OsRelease::parse("PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nID=debian\n");
        assert_eq!(rel.version_id, "");
        assert_eq!(rel.codename, None);
        assert_eq!(OsRelease::parse("").id, "linux");
    }

    #[test]
    fn quoting_and_escapes() {
        let text = r#"
# a comment
  # an indented comment
A="double \"quoted\" \$HOME \\ \` \n"
B='single "quoted" \n $x'
C=plain\ word
D="con"'cat'enated
E=value # trailing comment
F=
G=""
not a line
H = spaced
lower_case=ok
9BAD=no
I="unterminated
J=two words
K='x'#y
"#;
        let got: Vec<(&str, String)> = assignments(text).collect();
        let want: Vec<(&str, String)> = vec![
            ("A", r#"double "quoted" $HOME \ ` \n"#.to_string()),
            ("B", r#"single "quoted" \n $x"#.to_string()),
            ("C", "plain word".to_string()),
            ("D", "concatenated".to_string()),
            ("E", "value".to_string()),
            ("F", String::new()),
            ("G", String::new()),
            ("lower_case", "ok".to_string()),
            ("K", "x#y".to_string()),
        ];
        assert_eq!(got, want);
    }

    /// The plugin reports what the host wrote, terminal controls included: the runtime
    /// escapes them wherever it prints them, and the store keeps the original.
    #[test]
    fn control_characters_are_reported_as_they_are() {
        let text =
            "PRETTY_NAME=\"Debian\x1b]0;owned\x07 12\x1b[2J\u{9b}31m\u{202e}x\"\nID=debian\n";
        let rel = OsRelease::parse(text);
        assert_eq!(
            rel.pretty_name.as_deref(),
            Some("Debian\x1b]0;owned\x07 12\x1b[2J\u{9b}31m\u{202e}x")
        );
        assert_eq!(rel.id, "debian");
    }

    #[test]
    fn last_assignment_wins() {
        let rel = OsRelease::parse("ID=fedora\nID=\"debian\"\r\n");
        assert_eq!(rel.id, "debian");
    }
}
