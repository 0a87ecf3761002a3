//! Exec grants: capabilities as data, matched exactly against each request.
//!
//! A plugin's manifest *declares* what it wants to run; the operator *grants* it; a request
//! is allowed only when both a declaration and a grant cover it. Nothing is allowed by
//! default.

use serde::{Deserialize, Serialize};

/// One program and argument shape.
///
/// `args` are matched one pattern per argument: a literal matches itself, `*` inside a
/// pattern matches any run of characters within that one argument, and a final `**`
/// matches any number (zero or more) of remaining arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecGrant {
    /// Program name or absolute path, matched literally.
    pub program: String,
    /// Argument patterns.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variable names that may be set.
    #[serde(default)]
    pub env: Vec<String>,
}

/// An exec request as the plugin made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment variable names being set.
    pub env: Vec<String>,
}

impl ExecGrant {
    /// Whether this grant covers the request.
    pub fn covers(&self, req: &ExecRequest) -> bool {
        self.program == req.program
            && args_match(&self.args, &req.args)
            && req
                .env
                .iter()
                .all(|name| self.env.iter().any(|g| g == name))
    }

    /// Problems with the grant's own shape (for config validation).
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
        if let Some(pos) = self.args.iter().position(|a| a == "**") {
            if pos + 1 != self.args.len() {
                out.push("`**` may only be the last argument pattern".to_string());
            }
        }
        out
    }
}

fn args_match(patterns: &[String], args: &[String]) -> bool {
    match (patterns.split_first(), args.split_first()) {
        (Some((p, _)), _) if p == "**" => true,
        (None, None) => true,
        (Some((p, prest)), Some((a, arest))) => glob(p, a) && args_match(prest, arest),
        _ => false,
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    if !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The outcome of checking one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum GrantDecision {
    /// Declared by the plugin and granted by the operator.
    Allowed,
    /// The plugin's manifest never declared this request.
    Undeclared,
    /// Declared, but the operator did not grant it.
    NotGranted,
}

impl GrantDecision {
    /// Decide a request against the plugin's declarations and the operator's grants.
    pub fn decide(declared: &[ExecGrant], granted: &[ExecGrant], req: &ExecRequest) -> Self {
        if !declared.iter().any(|g| g.covers(req)) {
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
            GrantDecision::Undeclared => "denied-undeclared",
            GrantDecision::NotGranted => "denied-not-granted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(program: &str, args: &[&str]) -> ExecGrant {
        ExecGrant {
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
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

    #[test]
    fn literal_args_match_exactly() {
        let grant = g("dpkg-query", &["-W", "-f=${Package}"]);
        assert!(grant.covers(&r("dpkg-query", &["-W", "-f=${Package}"])));
        assert!(!grant.covers(&r("dpkg-query", &["-W"])));
        assert!(!grant.covers(&r("dpkg-query", &["-W", "-f=${Package}", "x"])));
        assert!(!grant.covers(&r("dpkg", &["-W", "-f=${Package}"])));
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
    }

    #[test]
    fn env_must_be_granted() {
        let mut grant = g("apt-get", &["**"]);
        let mut req = r("apt-get", &["update"]);
        req.env = vec!["DEBIAN_FRONTEND".into()];
        assert!(!grant.covers(&req));
        grant.env = vec!["DEBIAN_FRONTEND".into()];
        assert!(grant.covers(&req));
    }

    #[test]
    fn glob_edge_cases() {
        assert!(glob("*", ""));
        assert!(glob("a*", "a"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXcYYb"));
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
    }

    #[test]
    fn grant_shape_problems() {
        assert!(g("dpkg-query", &["**"]).problems().is_empty());
        assert!(!g("sh -c", &[]).problems().is_empty());
        assert!(!g("x", &["**", "a"]).problems().is_empty());
    }
}
