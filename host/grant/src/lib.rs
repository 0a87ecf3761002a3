//! Exec grants: capabilities as data, matched exactly against each request.
//!
//! A plugin's manifest *declares* what it wants to run; the operator *grants* it; a request
//! is allowed only when both a declaration and a grant cover it. Nothing is allowed by
//! default.
//!
//! This crate is the one matcher: the host runtime decides every `exec` with it, and the
//! plugin SDK's scripted test host checks a plugin's commands with it, so the two can never
//! disagree. It has no dependencies and builds for `wasm32-wasip2` as well as the host.
//!
//! The grant language (see `docs/PLUGINS.md`):
//! - `program` is matched literally.
//! - `args` are matched one pattern per argument. A literal matches itself; `*` matches any
//!   run of characters within that one argument; a class (`<package>`, `<version>`, see
//!   [`Class`]) matches one value of that kind; a final `**` matches zero or more
//!   remaining arguments, each of which must match the grant's `each` pattern when it has
//!   one.
//! - `env` names each variable the command may set and the values it may take (a literal,
//!   or a `*` pattern that only matches plain characters). Names the host owns or that
//!   make programs load code are refused ([`env::REFUSED`]).

use std::fmt;

pub mod env;
mod pattern;

pub use pattern::{Class, Pattern};

/// One environment variable a grant lets a command set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvGrant {
    /// The variable's name.
    pub name: String,
    /// The values it may take: a literal, or a pattern where `*` matches a run of plain
    /// characters (see [`env::value_matches`]).
    pub value: String,
    /// The audit log records the SHA-256 of the value instead of the value.
    pub secret: bool,
}

impl EnvGrant {
    /// A variable with a literal value (or value pattern), not secret.
    pub fn new(name: &str, value: &str) -> EnvGrant {
        EnvGrant {
            name: name.to_string(),
            value: value.to_string(),
            secret: false,
        }
    }

    /// Whether setting `name` to `value` is covered.
    pub fn covers(&self, name: &str, value: &str) -> bool {
        self.name == name && env::value_matches(&self.value, value)
    }
}

/// One program and argument shape, with the environment it may be given.
#[derive(Clone, Debug, Eq)]
pub struct ExecGrant {
    /// Program name or absolute path, matched literally.
    pub program: String,
    /// Argument patterns, one per argument; a final `**` takes the rest.
    pub args: Vec<String>,
    /// The pattern every argument taken by a final `**` must match (`None`: any).
    pub each: Option<String>,
    /// The variables the command may set. Order does not matter.
    pub env: Vec<EnvGrant>,
}

/// Two grants are the same when they allow the same: `env` order does not count.
impl PartialEq for ExecGrant {
    fn eq(&self, other: &Self) -> bool {
        let sorted = |env: &[EnvGrant]| {
            let mut env = env.to_vec();
            env.sort();
            env
        };
        self.program == other.program
            && self.args == other.args
            && self.each == other.each
            && sorted(&self.env) == sorted(&other.env)
    }
}

/// An exec request as the plugin made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    /// Program.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment variables being set, name and value, in the order given.
    pub env: Vec<(String, String)>,
}

fn arg_matches(pattern: &str, arg: &str) -> bool {
    Pattern::parse(pattern).is_ok_and(|p| p.matches(arg))
}

impl ExecGrant {
    /// Whether this grant covers the request: program, every argument and every variable
    /// with its value. A grant with a malformed pattern covers nothing.
    pub fn covers(&self, req: &ExecRequest) -> bool {
        self.program == req.program
            && self.args_cover(&req.args)
            && req
                .env
                .iter()
                .all(|(name, value)| self.env.iter().any(|g| g.covers(name, value)))
    }

    fn args_cover(&self, args: &[String]) -> bool {
        let (fixed, rest_allowed) = match self.args.split_last() {
            Some((last, init)) if last == "**" => (init, true),
            _ => (&self.args[..], false),
        };
        if args.len() < fixed.len() || (!rest_allowed && args.len() != fixed.len()) {
            return false;
        }
        let (head, rest) = args.split_at(fixed.len());
        fixed.iter().zip(head).all(|(p, a)| arg_matches(p, a))
            && match &self.each {
                None => true,
                Some(each) => match Pattern::parse(each) {
                    Ok(each) => rest.iter().all(|a| each.matches(a)),
                    Err(_) => false,
                },
            }
    }

    /// Whether this grant marks the variable `name` secret.
    pub fn secret(&self, name: &str) -> bool {
        self.env.iter().any(|g| g.secret && g.name == name)
    }

    /// Problems with the grant's own shape (for config and manifest validation), each a
    /// sentence naming the part that is wrong.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.program.is_empty() {
            out.push("program is empty".to_string());
        }
        if self.program.contains(char::is_whitespace) {
            out.push(format!(
                "program `{}` contains whitespace: grants name one program, never a shell line",
                self.program
            ));
        }
        let last = self.args.len().saturating_sub(1);
        for (i, arg) in self.args.iter().enumerate() {
            if arg == "**" {
                if i != last {
                    out.push("`**` may only be the last argument pattern".to_string());
                }
            } else if let Err(e) = Pattern::parse(arg) {
                out.push(format!("args[{i}] `{arg}`: {e}"));
            }
        }
        if let Some(each) = &self.each {
            if self.args.last().map(String::as_str) != Some("**") {
                out.push(format!(
                    "each `{each}` applies to the arguments a final `**` takes, and args has no \
                     final `**`"
                ));
            }
            if each == "**" {
                out.push("each is one argument's pattern: `**` means nothing there".to_string());
            } else if let Err(e) = Pattern::parse(each) {
                out.push(format!("each `{each}`: {e}"));
            }
        }
        for (i, g) in self.env.iter().enumerate() {
            out.extend(env::name_problem(&g.name));
            out.extend(env::value_problem(&g.value).map(|p| format!("env `{}`: {p}", g.name)));
            if self.env[..i].iter().any(|h| h.name == g.name) {
                out.push(format!("env `{}` is named more than once", g.name));
            }
        }
        out
    }
}

impl fmt::Display for ExecGrant {
    /// `program arg…` then, when present, `(each P)` and `(env NAME=VALUE, …)`; a secret
    /// value prints as `<secret>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        if let Some(each) = &self.each {
            write!(f, "   (each {each})")?;
        }
        if !self.env.is_empty() {
            let env: Vec<String> = self
                .env
                .iter()
                .map(|g| match g.secret {
                    true => format!("{}=<secret>", g.name),
                    false => format!("{}={}", g.name, g.value),
                })
                .collect();
            write!(f, "   (env {})", env.join(", "))?;
        }
        Ok(())
    }
}

/// Why a request is refused whatever the grants say, or `None`: an env name that is
/// malformed or refused ([`env::name_problem`]), or a variable set twice.
pub fn request_problem(req: &ExecRequest) -> Option<String> {
    req.env.iter().enumerate().find_map(|(i, (name, _))| {
        env::name_problem(name).or_else(|| {
            req.env[..i]
                .iter()
                .any(|(n, _)| n == name)
                .then(|| format!("env `{name}` is set more than once"))
        })
    })
}

/// The outcome of checking one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantDecision {
    /// Declared by the plugin and granted by the operator.
    Allowed,
    /// The request is one the host never runs, whatever is granted (the reason).
    Forbidden(String),
    /// The plugin's manifest never declared this request.
    Undeclared,
    /// Declared, but the operator did not grant it.
    NotGranted,
}

impl GrantDecision {
    /// Decide a request against the plugin's declarations and the operator's grants.
    pub fn decide(declared: &[ExecGrant], granted: &[ExecGrant], req: &ExecRequest) -> Self {
        if let Some(why) = request_problem(req) {
            GrantDecision::Forbidden(why)
        } else if !declared.iter().any(|g| g.covers(req)) {
            GrantDecision::Undeclared
        } else if !granted.iter().any(|g| g.covers(req)) {
            GrantDecision::NotGranted
        } else {
            GrantDecision::Allowed
        }
    }

    /// True when allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, GrantDecision::Allowed)
    }

    /// The word written to the audit log.
    pub fn word(&self) -> &'static str {
        match self {
            GrantDecision::Allowed => "allowed",
            GrantDecision::Forbidden(_) => "denied-forbidden",
            GrantDecision::Undeclared => "denied-undeclared",
            GrantDecision::NotGranted => "denied-not-granted",
        }
    }

    /// Why the request was denied, worded to follow "the request is" (`None` if allowed).
    pub fn reason(&self) -> Option<String> {
        match self {
            GrantDecision::Allowed => None,
            GrantDecision::Forbidden(why) => Some(format!("forbidden: {why}")),
            GrantDecision::Undeclared => Some("not declared in the plugin's manifest".into()),
            GrantDecision::NotGranted => Some("not granted to this plugin by the operator".into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn g(program: &str, args: &[&str]) -> ExecGrant {
        ExecGrant {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            each: None,
            env: vec![],
        }
    }

    fn r(program: &str, args: &[&str]) -> ExecRequest {
        ExecRequest {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![],
        }
    }

    fn with_env(mut req: ExecRequest, env: &[(&str, &str)]) -> ExecRequest {
        req.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        req
    }

    #[test]
    fn literal_args_match_exactly() {
        let grant = g("dpkg-query", &["-W", "-f=${Package}"]);
        assert!(grant.covers(&r("dpkg-query", &["-W", "-f=${Package}"])));
        assert!(!grant.covers(&r("dpkg-query", &["-W"])));
        assert!(!grant.covers(&r("dpkg-query", &["-W", "-f=${Package}", "x"])));
        assert!(!grant.covers(&r("dpkg", &["-W", "-f=${Package}"])));
        assert!(!grant.covers(&r("/usr/bin/dpkg-query", &["-W", "-f=${Package}"])));
        assert!(g("true", &[]).covers(&r("true", &[])));
        assert!(!g("true", &[]).covers(&r("true", &[""])));
    }

    #[test]
    fn star_stays_inside_one_argument() {
        let grant = g("apt-get", &["install", "*=*"]);
        assert!(grant.covers(&r("apt-get", &["install", "acme=1.0-2"])));
        assert!(!grant.covers(&r("apt-get", &["install", "acme"])));
        assert!(!grant.covers(&r("apt-get", &["install", "a=1", "b=2"])));
    }

    #[test]
    fn double_star_takes_the_rest() {
        let grant = g("apt-mark", &["hold", "**"]);
        assert!(grant.covers(&r("apt-mark", &["hold"])));
        assert!(grant.covers(&r("apt-mark", &["hold", "a", "b"])));
        assert!(!grant.covers(&r("apt-mark", &["unhold", "a"])));
        assert!(g("x", &["**"]).covers(&r("x", &[])));
    }

    #[test]
    fn each_checks_every_tail_argument() {
        let mut grant = g("apt-get", &["install", "--", "**"]);
        grant.each = Some("<package>=<version>".into());
        let req = |tail: &[&str]| {
            let args: Vec<&str> = ["install", "--"].iter().chain(tail).copied().collect();
            r("apt-get", &args)
        };
        assert!(grant.covers(&req(&[])));
        assert!(grant.covers(&req(&["libssl3=3.0.22-1~deb12u2"])));
        assert!(grant.covers(&req(&["a1=1", "zlib1g:i386=1:1.3"])));
        for bad in [
            "/tmp/x.deb",
            "./x.deb",
            "openssh-server-",
            "openssh-server",
            "acme=1.0-",
            "-oAPT::Get::Fix-Broken=1",
            "les.=1",
        ] {
            // `les.` is a well-formed name: apt's regex fallback is shut off by the
            // plugin's own `APT::Cmd::Pattern-Only`, not here.
            let expect = bad == "les.=1";
            assert_eq!(grant.covers(&req(&["a1=1", bad])), expect, "{bad}");
        }
        let mut remove = g("apt-get", &["remove", "--", "**"]);
        remove.each = Some("<package>".into());
        assert!(remove.covers(&r("apt-get", &["remove", "--", "acme", "b2:amd64"])));
        assert!(!remove.covers(&r("apt-get", &["remove", "--", "openssh-server-"])));
        assert!(!remove.covers(&r("apt-get", &["remove", "--", "acme+"])));
        assert!(!remove.covers(&r("apt-get", &["remove", "--", "/tmp/x.deb"])));
        // The fixed part is not subject to `each`.
        assert!(!remove.covers(&r("apt-get", &["remove", "acme"])));
    }

    #[test]
    fn env_names_and_values_must_be_granted() {
        let mut grant = g("apt-get", &["**"]);
        let req = with_env(
            r("apt-get", &["update"]),
            &[("DEBIAN_FRONTEND", "noninteractive")],
        );
        assert!(!grant.covers(&req));
        grant.env = vec![EnvGrant::new("DEBIAN_FRONTEND", "noninteractive")];
        assert!(grant.covers(&req));
        assert!(
            grant.covers(&r("apt-get", &["update"])),
            "setting nothing is fine"
        );
        let evil = with_env(
            r("apt-get", &["update"]),
            &[("DEBIAN_FRONTEND", "readline; system('id')")],
        );
        assert!(!grant.covers(&evil));
        grant.env[0].value = "*".into();
        assert!(
            !grant.covers(&evil),
            "`*` never matches `;`, quotes or blanks"
        );
        assert!(grant.covers(&with_env(
            r("apt-get", &["update"]),
            &[("DEBIAN_FRONTEND", "Readline")]
        )));
        let other = with_env(r("apt-get", &["update"]), &[("OTHER", "x")]);
        assert!(!grant.covers(&other));
    }

    #[test]
    fn requests_setting_refused_names_are_forbidden_whatever_is_granted() {
        let all = vec![g("echo", &["**"])];
        for (name, why) in [
            ("PATH", "PATH"),
            ("LD_PRELOAD", "LD_PRELOAD"),
            ("A=B", "not a variable name"),
            ("", "not a variable name"),
        ] {
            let req = with_env(r("echo", &[]), &[(name, "/tmp/x")]);
            match GrantDecision::decide(&all, &all, &req) {
                GrantDecision::Forbidden(m) => assert!(m.contains(why), "{name}: {m}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut twice = g("echo", &["**"]);
        twice.env = vec![EnvGrant::new("X", "*")];
        let req = with_env(r("echo", &[]), &[("X", "1"), ("X", "2")]);
        assert!(matches!(
            GrantDecision::decide(&[twice.clone()], &[twice], &req),
            GrantDecision::Forbidden(m) if m.contains("more than once")
        ));
    }

    #[test]
    fn both_declaration_and_grant_are_needed() {
        let declared = vec![g("dpkg-query", &["**"]), g("apt-get", &["**"])];
        let granted = vec![g("dpkg-query", &["**"])];
        assert_eq!(
            GrantDecision::decide(&declared, &granted, &r("dpkg-query", &["-W"])),
            GrantDecision::Allowed
        );
        assert_eq!(
            GrantDecision::decide(&declared, &granted, &r("apt-get", &["install"])),
            GrantDecision::NotGranted
        );
        assert_eq!(
            GrantDecision::decide(&declared, &declared, &r("rm", &["-rf", "/"])),
            GrantDecision::Undeclared
        );
        // An operator grant does not widen what the plugin declared.
        assert_eq!(
            GrantDecision::decide(&[], &granted, &r("dpkg-query", &["-W"])),
            GrantDecision::Undeclared
        );
        // A declaration of any value does not widen an operator's literal.
        let mut declared = g("apt-get", &["**"]);
        declared.env = vec![EnvGrant::new("DEBIAN_FRONTEND", "*")];
        let mut granted = declared.clone();
        granted.env = vec![EnvGrant::new("DEBIAN_FRONTEND", "noninteractive")];
        let req = with_env(r("apt-get", &[]), &[("DEBIAN_FRONTEND", "Readline")]);
        assert_eq!(
            GrantDecision::decide(&[declared], &[granted], &req),
            GrantDecision::NotGranted
        );
    }

    #[test]
    fn grant_shape_problems() {
        assert!(g("dpkg-query", &["**"]).problems().is_empty());
        assert!(!g("sh -c", &[]).problems().is_empty());
        assert!(!g("", &[]).problems().is_empty());
        let problems = g("x", &["**", "a"]).problems();
        assert_eq!(problems, vec!["`**` may only be the last argument pattern"]);
        assert_eq!(
            g("x", &["<pkg>"]).problems(),
            vec!["args[0] `<pkg>`: unknown class `<pkg>` (known: <package>, <version>)"]
        );
        let mut each = g("x", &["--"]);
        each.each = Some("<package>".into());
        assert!(
            each.problems()[0].contains("no final `**`"),
            "{:?}",
            each.problems()
        );
        each.args.push("**".into());
        assert!(each.problems().is_empty());
        each.each = Some("**".into());
        assert!(each.problems()[0].contains("means nothing"));
        each.each = Some("<package".into());
        assert!(each.problems()[0].contains("closing"));

        let mut env = g("x", &[]);
        env.env = ["PATH", "LD_PRELOAD", "A=B", "", "OK", "OK"]
            .iter()
            .map(|n| EnvGrant::new(n, "1"))
            .collect();
        let problems = env.problems();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        for (p, needle) in problems.iter().zip([
            "`PATH`",
            "`LD_PRELOAD`",
            "\"A=B\"",
            "\"\"",
            "`OK` is named more than once",
        ]) {
            assert!(p.contains(needle), "{p}");
        }
        env.env = vec![EnvGrant::new("X", "a;*")];
        assert!(env.problems()[0].contains("plain characters"));
    }

    #[test]
    fn grants_are_equal_whatever_their_env_order() {
        let mut a = g("x", &[]);
        a.env = vec![EnvGrant::new("A", "1"), EnvGrant::new("B", "2")];
        let mut b = a.clone();
        b.env.reverse();
        assert_eq!(a, b);
        b.env[0].value = "3".into();
        assert_ne!(a, b);
        let mut c = a.clone();
        c.each = Some("<package>".into());
        assert_ne!(a, c);
    }

    #[test]
    fn display_names_everything_but_secrets() {
        let mut grant = g("apt-get", &["remove", "--", "**"]);
        grant.each = Some("<package>".into());
        grant.env = vec![
            EnvGrant::new("DEBIAN_FRONTEND", "noninteractive"),
            EnvGrant {
                secret: true,
                ..EnvGrant::new("TOKEN", "*")
            },
        ];
        assert_eq!(
            grant.to_string(),
            "apt-get remove -- **   (each <package>)   (env DEBIAN_FRONTEND=noninteractive, TOKEN=<secret>)"
        );
        assert!(grant.secret("TOKEN"));
        assert!(!grant.secret("DEBIAN_FRONTEND"));
    }
}
