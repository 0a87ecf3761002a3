//! Environment variables: which names a grant may never name, and how values are matched.
//!
//! The host refuses a name here at config load, at manifest load and again at request
//! time. The list cannot be complete (any program may read any variable), which is why a
//! grant names each variable's *value* too: the list catches names that are always wrong
//! to hand to a plugin, the value pattern keeps the rest to what the operator read.

/// Names and name prefixes (ending in `*`) the host refuses, with the reason.
pub const REFUSED: &[(&str, &str)] = &[
    // The host's own fixed environment.
    (
        "PATH",
        "the host fixes it, so a plugin cannot choose which program runs",
    ),
    (
        "LC_*",
        "the host fixes the locale (LC_ALL=C) so output parses the same everywhere",
    ),
    (
        "LANG",
        "the host fixes the locale (LANG=C) so output parses the same everywhere",
    ),
    (
        "LANGUAGE",
        "the host fixes the locale so output parses the same everywhere",
    ),
    // The dynamic loader and glibc: the variables glibc itself drops for setuid programs.
    (
        "LD_*",
        "the dynamic loader reads it to load code or change how it loads",
    ),
    (
        "GCONV_PATH",
        "glibc loads character-set converters (code) from it",
    ),
    ("GETCONF_DIR", "glibc reads program configuration from it"),
    (
        "GLIBC_TUNABLES",
        "it changes glibc's behaviour (and had exploitable parsing bugs)",
    ),
    ("HOSTALIASES", "glibc reads host name aliases from it"),
    ("LOCALDOMAIN", "glibc's resolver reads it"),
    ("LOCPATH", "glibc loads locale data from it"),
    ("MALLOC_*", "it changes glibc's allocator"),
    ("NIS_PATH", "glibc reads it"),
    (
        "NLSPATH",
        "programs load message catalogues (format strings) from it",
    ),
    (
        "RESOLV_HOST_CONF",
        "glibc's resolver reads configuration from it",
    ),
    ("RES_OPTIONS", "glibc's resolver reads it"),
    (
        "TMPDIR",
        "programs create their temporary files where it says",
    ),
    ("TZDIR", "glibc loads time zone data from it"),
    // Shells.
    (
        "BASH_*",
        "bash reads startup files, functions or options from it",
    ),
    ("ENV", "POSIX shells run the file it names at startup"),
    (
        "SHELLOPTS",
        "it turns on bash options in every bash started below",
    ),
    (
        "BASHOPTS",
        "it turns on bash options in every bash started below",
    ),
    ("IFS", "it changes how shell scripts split words"),
    (
        "PS4",
        "bash expands it (command substitution included) when tracing",
    ),
    ("PROMPT_COMMAND", "bash runs it"),
    ("CDPATH", "it changes where shell scripts `cd` to"),
    ("GLOBIGNORE", "it changes how shell scripts expand globs"),
    ("SHELL", "programs run it to start a shell"),
    ("HOME", "programs read their configuration files from it"),
    ("ZDOTDIR", "zsh reads startup files from it"),
    ("XDG_CONFIG_*", "programs read their configuration from it"),
    // Interpreters that maintainer scripts and package tools run.
    (
        "PERL*",
        "perl (debconf, most maintainer helpers) reads options or modules from it",
    ),
    (
        "PYTHON*",
        "python reads startup code, modules or options from it",
    ),
    ("RUBY*", "ruby reads options or libraries from it"),
    ("NODE_*", "node reads options or modules from it"),
    ("LUA_*", "lua runs or loads code from it"),
    ("TCLLIBPATH", "tcl loads libraries from it"),
    ("CLASSPATH", "java loads classes from it"),
    (
        "JAVA_TOOL_OPTIONS",
        "java reads options (agents: code) from it",
    ),
    ("_JAVA_OPTIONS", "java reads options (agents: code) from it"),
    (
        "JDK_JAVA_OPTIONS",
        "java reads options (agents: code) from it",
    ),
    // Package tools' own configuration.
    (
        "APT_CONFIG",
        "apt reads a configuration file (hooks: commands) from it",
    ),
    (
        "DPKG_*",
        "dpkg reads forced actions, paths or hooks from it",
    ),
    (
        "DEBCONF_*",
        "debconf reads its configuration, database or frontend from it",
    ),
    (
        "OPENSSL_*",
        "openssl reads configuration or engines (code) from it",
    ),
    // Programs that other programs run on your behalf.
    ("PAGER", "programs run it"),
    ("EDITOR", "programs run it"),
    ("VISUAL", "programs run it"),
    ("BROWSER", "programs run it"),
    ("MANPAGER", "programs run it"),
    ("LESSOPEN", "less runs it"),
    ("LESSCLOSE", "less runs it"),
    (
        "SYSTEMD_*",
        "systemd tools run pagers or editors, or change behaviour, from it",
    ),
    ("SSH_ASKPASS", "ssh runs it"),
    ("SUDO_ASKPASS", "sudo runs it"),
    ("GIT_*", "git runs commands or reads configuration from it"),
];

/// Why `name` can never be an environment variable a plugin sets, or `None` when it can.
pub fn name_problem(name: &str) -> Option<String> {
    let well_formed = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Some(format!(
            "env name {name:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"
        ));
    }
    REFUSED
        .iter()
        .find(|(pattern, _)| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pattern,
        })
        .map(|(pattern, why)| {
            let what = if pattern.ends_with('*') {
                format!("names matching `{pattern}`")
            } else {
                "it".to_string()
            };
            format!("env `{name}` is refused: {why}; the host never lets a plugin set {what}")
        })
}

/// Whether `c` may be part of what `*` matches in an env value.
pub fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '.' | ',' | ':' | '/' | '=' | '@' | '%' | '+' | '-')
}

/// Problems with one env value pattern.
pub(crate) fn value_problem(pattern: &str) -> Option<String> {
    (pattern.contains('*') && !pattern.chars().all(|c| c == '*' || plain(c))).then(|| {
        format!(
            "value pattern {pattern:?} has `*` and characters outside letters, digits and \
             `_.,:/=@%+-`: write a literal value, or a pattern of plain characters"
        )
    })
}

/// Whether `value` is allowed by `pattern`: a literal matches itself exactly; a pattern
/// with `*` matches only a value made of plain characters (letters, digits, `_.,:/=@%+-`),
/// so no value it admits carries quotes, `;`, `$`, whitespace or anything else a program
/// might evaluate.
pub fn value_matches(pattern: &str, value: &str) -> bool {
    if pattern.contains('*') {
        value.chars().all(plain) && crate::pattern::glob(pattern, value)
    } else {
        pattern == value
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_refused_names() {
        for (name, why) in [
            ("", "not a variable name"),
            ("A=B", "not a variable name"),
            ("1X", "not a variable name"),
            ("A B", "not a variable name"),
            ("BASH_FUNC_x%%", "not a variable name"),
            ("PATH", "the host fixes it"),
            ("LC_ALL", "names matching `LC_*`"),
            ("LANG", "locale"),
            ("LD_PRELOAD", "dynamic loader"),
            ("LD_LIBRARY_PATH", "dynamic loader"),
            ("GCONV_PATH", "converters"),
            ("GLIBC_TUNABLES", "glibc"),
            ("BASH_ENV", "bash"),
            ("ENV", "startup"),
            ("IFS", "split"),
            ("SHELLOPTS", "bash options"),
            ("PERL5OPT", "perl"),
            ("PERL5LIB", "perl"),
            ("PERLLIB", "perl"),
            ("PYTHONPATH", "python"),
            ("PYTHONSTARTUP", "python"),
            ("NODE_OPTIONS", "node"),
            ("APT_CONFIG", "apt"),
            ("DPKG_FORCE", "dpkg"),
            ("DEBCONF_SYSTEMRC", "debconf"),
            ("HOME", "configuration"),
        ] {
            let got = name_problem(name).unwrap_or_default();
            assert!(got.contains(why), "{name:?}: {got:?}");
        }
        for ok in [
            "DEBIAN_FRONTEND",
            "APT_LISTCHANGES_FRONTEND",
            "DEBIAN_PRIORITY",
            "NEEDRESTART_MODE",
            "_X1",
            "LDX",
        ] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn values() {
        assert!(value_matches("noninteractive", "noninteractive"));
        assert!(!value_matches("noninteractive", "Noninteractive"));
        assert!(!value_matches("noninteractive", "noninteractive "));
        assert!(value_matches("*", "Readline"));
        assert!(value_matches("*", ""));
        assert!(!value_matches("*", "readline; system('id')"));
        assert!(!value_matches("*", "a b"));
        assert!(!value_matches("*", "$(id)"));
        assert!(!value_matches("*", "a\nb"));
        assert!(value_matches("http://*:3128", "http://proxy.internal:3128"));
        assert!(!value_matches("http://*:3128", "http://x;y:3128"));
        // A literal is the operator's exact choice, whatever it contains.
        assert!(value_matches("a b", "a b"));
        assert_eq!(value_problem("a b"), None);
        assert!(value_problem("* x").is_some());
        assert_eq!(value_problem("http://*"), None);
    }
}
