//! One argument's pattern: literal text, `*`, and typed holes (`<package>`, `<version>`).
//!
//! A pattern uses either `*` or holes, never both, and a hole is always followed by the
//! end of the pattern or by literal text that starts with a character the hole never
//! contains. So where a hole ends is never a guess: matching is one pass over the argument,
//! whatever a plugin sends.

use std::fmt;

/// A typed hole: a run of characters that must be one value of a known kind.
///
/// The classes are explicit and few. Their charsets are Debian policy's; a class for
/// another ecosystem's names (rpm) is added beside them when a plugin needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// `<package>`: a package name as Debian policy spells it, `[a-z0-9][a-z0-9+.-]+`,
    /// optionally qualified with `:arch` (`[a-z0-9][a-z0-9-]*`, not ending in `-`). Never
    /// a name ending in a file extension apt or dpkg reads as a file (`.deb`, `.udeb`,
    /// `.ddeb`, `.dsc`, `.changes`).
    Package,
    /// `<version>`: a version as dpkg spells it: a digit first, then letters, digits and
    /// `.+~:-`.
    Version,
}

/// File extensions a [`Class::Package`] value may not end with.
const FILE_SUFFIXES: &[&str] = &[".deb", ".udeb", ".ddeb", ".dsc", ".changes"];

impl Class {
    /// Every class, in the order the documentation lists them.
    pub const ALL: &'static [Class] = &[Class::Package, Class::Version];

    /// The name written between `<` and `>`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Package => "package",
            Class::Version => "version",
        }
    }

    fn from_name(name: &str) -> Option<Class> {
        Class::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Whether `c` can occur anywhere in a value of this class.
    pub fn allows_char(self, c: char) -> bool {
        match self {
            Class::Package => {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '-' | ':')
            }
            Class::Version => c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | ':' | '-'),
        }
    }

    /// Whether `value` is one value of this class. `ends_argument`: the value is the end of
    /// the argument, where apt reads a trailing `+` as "install" and `-` as "remove"
    /// (`openssh-server-` removes sshd), so neither may end it.
    pub fn accepts(self, value: &str, ends_argument: bool) -> bool {
        if ends_argument && value.ends_with(['+', '-']) {
            return false;
        }
        match self {
            Class::Package => package_ok(value),
            Class::Version => {
                value.starts_with(|c: char| c.is_ascii_digit())
                    && value.chars().all(|c| self.allows_char(c))
            }
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.name())
    }
}

fn package_ok(value: &str) -> bool {
    let (name, arch) = match value.split_once(':') {
        Some((name, arch)) => (name, Some(arch)),
        None => (value, None),
    };
    let name_ok = name.len() >= 2
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && matches!(b, b'+' | b'.' | b'-'))
        })
        && !FILE_SUFFIXES.iter().any(|s| name.ends_with(s));
    let arch_ok = arch.is_none_or(|a| {
        !a.is_empty()
            && !a.ends_with('-')
            && a.bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b == b'-'))
    });
    name_ok && arch_ok
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Hole(Class),
}

/// A parsed argument pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// Literal text and `*` (any run of characters within the argument).
    Glob(String),
    /// Literal text and holes.
    Holes(Vec<Piece>),
}

impl Pattern {
    /// Parse one argument's pattern, or say what is wrong with it.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if !text.contains(['<', '>']) {
            return Ok(Pattern {
                kind: Kind::Glob(text.to_string()),
            });
        }
        if text.contains('*') {
            return Err("a pattern uses `*` or `<…>` classes, not both".to_string());
        }
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['<', '>']) {
                Some(0) if rest.starts_with('>') => {
                    return Err("`>` without a `<` before it".to_string());
                }
                Some(0) => {
                    let Some(close) = rest.find('>') else {
                        return Err("`<` without a closing `>`".to_string());
                    };
                    let name = rest.get(1..close).unwrap_or_default();
                    if name.contains('<') {
                        return Err("`<` inside a `<…>` class".to_string());
                    }
                    let Some(class) = Class::from_name(name) else {
                        return Err(format!(
                            "unknown class `<{name}>` (known: {})",
                            Class::ALL
                                .iter()
                                .map(Class::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    };
                    if let Some(Piece::Hole(before)) = pieces.last() {
                        return Err(format!(
                            "`{before}` is followed by `{class}`: put literal text between them"
                        ));
                    }
                    pieces.push(Piece::Hole(class));
                    rest = rest.get(close + 1..).unwrap_or_default();
                }
                Some(at) => {
                    let (text, after) = rest.split_at(at);
                    pieces.push(Piece::Text(text.to_string()));
                    rest = after;
                }
                None => {
                    pieces.push(Piece::Text(rest.to_string()));
                    rest = "";
                }
            }
        }
        for pair in pieces.windows(2) {
            if let [Piece::Hole(class), Piece::Text(text)] = pair {
                if text.chars().next().is_some_and(|c| class.allows_char(c)) {
                    return Err(format!(
                        "`{class}` is followed by `{text}`, whose first character can be part \
                         of a {}: where the class ends would be a guess",
                        class.name()
                    ));
                }
            }
        }
        Ok(Pattern {
            kind: Kind::Holes(pieces),
        })
    }

    /// Whether `arg` matches. One pass for holes; `*` patterns are matched leftmost.
    pub fn matches(&self, arg: &str) -> bool {
        match &self.kind {
            Kind::Glob(pattern) => glob(pattern, arg),
            Kind::Holes(pieces) => holes_match(pieces, arg),
        }
    }

    /// Whether the pattern matches exactly one text: no `*` and no class.
    pub fn is_literal(&self) -> bool {
        match &self.kind {
            Kind::Glob(pattern) => !pattern.contains('*'),
            Kind::Holes(_) => false,
        }
    }
}

fn holes_match(pieces: &[Piece], arg: &str) -> bool {
    let mut rest = arg;
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(text) => match rest.strip_prefix(text.as_str()) {
                Some(after) => rest = after,
                None => return false,
            },
            Piece::Hole(class) => {
                // The next piece starts with a character the class never contains (checked
                // at parse), so the longest run is the only possible split.
                let end = rest
                    .find(|c: char| !class.allows_char(c))
                    .unwrap_or(rest.len());
                let (value, after) = rest.split_at(end);
                if !class.accepts(value, i + 1 == pieces.len()) {
                    return false;
                }
                rest = after;
            }
        }
    }
    rest.is_empty()
}

/// `*` matches any run of characters (including none); everything else is literal.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mids: Vec<&str> = parts.collect();
    let Some((last, mids)) = mids.split_last() else {
        // No `*` at all.
        return rest.is_empty();
    };
    if rest.len() < last.len() || !rest.ends_with(last) {
        return false;
    }
    rest = &rest[..rest.len() - last.len()];
    for mid in mids {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn m(pattern: &str, arg: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(arg)
    }

    #[test]
    fn literals_match_only_themselves() {
        assert!(m("-W", "-W"));
        assert!(!m("-W", "-w"));
        assert!(!m("-W", "-W "));
        assert!(!m("-W", ""));
        assert!(m("", ""));
        assert!(!m("", "x"));
        assert!(Pattern::parse("--showformat=${Package}\\t")
            .unwrap()
            .is_literal());
    }

    #[test]
    fn star_stays_inside_one_argument() {
        assert!(m("*", ""));
        assert!(m("*", "anything at all; even this"));
        assert!(m("a*", "a"));
        assert!(m("*=*", "acme=1.0-2"));
        assert!(!m("*=*", "acme"));
        assert!(!m("ab*ba", "aba"));
        assert!(m("ab*ba", "abba"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXcYYb"));
        assert!(m("**", "x"), "a `**` inside one argument is just `*`");
        assert!(m("é*é", "éxé"));
        assert!(!m("é*é", "é"));
    }

    #[test]
    fn package_class() {
        for good in [
            "libssl3",
            "zlib1g:i386",
            "libstdc++6",
            "python3.11",
            "g++:amd64",
            "0ad",
            "a-b",
        ] {
            assert!(m("<package>", good), "{good}");
        }
        for bad in [
            "",
            "a",
            "-oAPT::Get::Fix-Broken=1",
            "--purge",
            "/tmp/x.deb",
            "./x.deb",
            "../x",
            ".",
            "x.deb",
            "x.udeb",
            "x.ddeb",
            "x.dsc",
            "x.changes",
            "openssh-server-",
            "openssh-server+",
            "g++",
            "Libssl3",
            "lib ssl",
            "acme=1.0",
            "acme/bookworm",
            "acme:",
            "acme:amd64-",
            "acme:-x",
            "acme:a:b",
            "acme^",
            "?installed",
            "~nacme",
            "lib*",
            "les.\n",
        ] {
            assert!(!m("<package>", bad), "{bad:?}");
        }
    }

    #[test]
    fn version_class_and_package_equals_version() {
        let p = "<package>=<version>";
        for good in [
            "libssl3=3.0.22-1~deb12u2",
            "zlib1g:i386=1:1.2.13.dfsg-1",
            "g++=4:12.2.0-3",
            "acme=1.0~rc1+b2",
        ] {
            assert!(m(p, good), "{good}");
        }
        for bad in [
            "acme",
            "acme=",
            "=1.0",
            "acme=1.0-",
            "acme=1.0+",
            "openssh-server=1:9.2p1-2-",
            "acme=v1.0",
            "acme=1.0/bookworm",
            "acme=1.0 x",
            "acme==1.0",
            "/tmp/x.deb=1.0",
            "-oX=1",
            "acme=1.0=2",
        ] {
            assert!(!m(p, bad), "{bad:?}");
        }
        // A name may end in `+` where the argument does not end there.
        assert!(m("<package>=<version>", "g++=1"));
        assert!(!m("<version>", "1.0-"));
        assert!(m("<version>", "1:2.0~rc1-3"));
    }

    #[test]
    fn malformed_patterns_are_refused_with_the_reason() {
        for (pattern, why) in [
            ("<pkg>", "unknown class `<pkg>`"),
            ("<package", "without a closing `>`"),
            ("x<package", "without a closing `>`"),
            ("a>b", "`>` without a `<`"),
            ("<package>*", "not both"),
            ("<package><version>", "put literal text between them"),
            (
                "<package>:<version>",
                "where the class ends would be a guess",
            ),
            ("<package>-x", "where the class ends would be a guess"),
            ("<<package>>", "`<` inside"),
        ] {
            let err = Pattern::parse(pattern).unwrap_err();
            assert!(err.contains(why), "{pattern}: {err}");
        }
        assert!(Pattern::parse("--set=<package>").is_ok());
        assert!(m("--set=<package>", "--set=acme"));
        assert!(!m("--set=<package>", "--set=acme-"));
    }

    /// Every text of up to `len` characters over `alphabet`.
    fn texts(alphabet: &[char], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// The obvious exponential reference: `*` tries every split.
    fn glob_reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| glob_reference(rest, &t[i..])),
            Some((c, rest)) => t.first() == Some(c) && glob_reference(rest, &t[1..]),
        }
    }

    /// The obvious reference for holes: every split of the argument is tried.
    fn holes_reference(pieces: &[Piece], arg: &str) -> bool {
        match pieces.split_first() {
            None => arg.is_empty(),
            Some((Piece::Text(t), rest)) => arg
                .strip_prefix(t.as_str())
                .is_some_and(|a| holes_reference(rest, a)),
            Some((Piece::Hole(c), rest)) => (0..=arg.len()).any(|i| {
                let (value, after) = arg.split_at(i);
                value.chars().all(|ch| c.allows_char(ch))
                    && c.accepts(value, rest.is_empty())
                    && holes_reference(rest, after)
            }),
        }
    }

    #[test]
    fn glob_agrees_with_the_reference_on_every_small_case() {
        let patterns = texts(&['a', 'b', '*'], 5);
        let inputs = texts(&['a', 'b'], 6);
        for p in &patterns {
            let pc: Vec<char> = p.chars().collect();
            for t in &inputs {
                let tc: Vec<char> = t.chars().collect();
                assert_eq!(glob(p, t), glob_reference(&pc, &tc), "{p:?} vs {t:?}");
            }
        }
    }

    #[test]
    fn holes_agree_with_the_reference_on_every_small_case() {
        let inputs = texts(&['a', '1', '=', '-', '+', ':', '.', '/'], 5);
        for pattern in [
            "<package>",
            "<version>",
            "<package>=<version>",
            "<package>=1",
            "a<package>",
            "--set=<package>",
            "<version>/a",
        ] {
            let Pattern {
                kind: Kind::Holes(pieces),
            } = Pattern::parse(pattern).unwrap()
            else {
                panic!("{pattern} has holes");
            };
            for arg in &inputs {
                assert_eq!(
                    holes_match(&pieces, arg),
                    holes_reference(&pieces, arg),
                    "{pattern} vs {arg:?}"
                );
            }
        }
    }

    #[test]
    fn a_long_hostile_argument_is_one_pass() {
        // Nothing a plugin sends makes matching quadratic: the hole stops at the first
        // character it cannot hold.
        let long = "a".repeat(1 << 20) + "=";
        assert!(!m("<package>=<version>", &long));
        let stars = "*a*a*a*a*a*a*a*a*b";
        assert!(!m(stars, &"a".repeat(1 << 16)));
    }
}
