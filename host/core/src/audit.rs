//! The audit log's hash chain: every line carries the hash of the one before it.
//!
//! A line is a JSON object. Its `hash` is SHA-256 over the previous line's hash, a newline,
//! and the line's own JSON without the `hash` field (keys sorted, compact). Editing,
//! removing or reordering a line breaks the chain at that line or the next one, and
//! [`verify`] names it. (Cutting lines off the *end* is not detectable from the file alone.)

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Which line of an allowed command this is: an allowed command is logged before it runs
/// (`start`) and again with its result (`end`), so a runner killed while a command runs still
/// leaves the request in the log. A denied request is one line without a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditPhase {
    /// Written before the command is sent to the host; the command runs only if this line
    /// was written.
    Start,
    /// Written after the command ended (or failed to run), with its status or error.
    End,
}

/// One exec request as audited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the request was decided (`start`) or ended (`end`).
    pub time: DateTime<Utc>,
    /// `start` or `end` for an allowed command; absent for a denied one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AuditPhase>,
    /// Plugin name.
    pub plugin: String,
    /// SHA-256 of the plugin's wasm.
    pub plugin_digest: String,
    /// Target host id.
    pub host: String,
    /// Program requested.
    pub program: String,
    /// Arguments requested.
    pub args: Vec<String>,
    /// Environment variables requested, in the order given, with their values (or the
    /// values' SHA-256 where a grant marks the variable secret).
    pub env: Vec<AuditEnv>,
    /// `allowed`, `denied-undeclared`, `denied-not-granted`.
    pub decision: String,
    /// Exit status when the command ran.
    pub status: Option<i32>,
    /// Wall time of the command in milliseconds when it ran.
    pub duration_ms: Option<u64>,
    /// Transport error when it could not run.
    pub error: Option<String>,
}

/// One environment variable of an exec request, as audited: `{"name": …, "value": …}`, or
/// `{"name": …, "sha256": …}` for a variable a grant marks secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEnv {
    /// The variable's name, as the plugin sent it.
    pub name: String,
    /// Its value, or the value's hash.
    #[serde(flatten)]
    pub value: AuditEnvValue,
}

/// What the audit line says about an environment variable's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditEnvValue {
    /// The value in full.
    Value(String),
    /// The hex SHA-256 of the value, for a variable a grant marks secret.
    Sha256(String),
}

impl AuditEnv {
    /// The audited form of `name=value`; `secret` records the value's SHA-256 instead.
    pub fn new(name: &str, value: &str, secret: bool) -> AuditEnv {
        let value = if secret {
            AuditEnvValue::Sha256(hex::encode(Sha256::digest(value.as_bytes())))
        } else {
            AuditEnvValue::Value(value.to_string())
        };
        AuditEnv {
            name: name.to_string(),
            value,
        }
    }
}

/// An operator's act on a rollout, in the same chain as the exec requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorEvent {
    /// When it was recorded.
    pub time: DateTime<Utc>,
    /// What happened: `rollout-created`, `rollout-forced`, `rollout-approved`,
    /// `rollout-aborted`, `rollout-rollback-requested`.
    pub event: String,
    /// The rollout.
    pub rollout: String,
    /// Who (as given to the command).
    pub by: String,
    /// The particulars (a forced plan's reason and the refusals it overrode, an abort's
    /// reason, the manifest's digest).
    pub detail: Value,
}

/// Errors building a chained line.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The entry did not serialize to a JSON object.
    #[error("audit entry is not a JSON object")]
    NotAnObject,
    /// Serialization failed.
    #[error("audit entry could not be serialized: {0}")]
    Json(#[from] serde_json::Error),
}

fn chain_hash(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Serialize `entry` as the next line after a line whose hash is `prev`.
/// Returns the line (without newline) and its hash.
///
/// The body (the entry plus `prev`) is serialized once: the hash is taken over it and the
/// line is the same text with `hash` appended as the last key. Where `hash` sits does not
/// matter to [`verify`], which parses the line, removes `hash` and serializes the rest.
pub fn chain_line<T: Serialize>(entry: &T, prev: &str) -> Result<(String, String), AuditError> {
    let mut value = serde_json::to_value(entry)?;
    let map = value.as_object_mut().ok_or(AuditError::NotAnObject)?;
    map.insert("prev".into(), Value::String(prev.to_string()));
    let mut line = value.to_string();
    let hash = chain_hash(prev, &line);
    // `line` is a JSON object with at least `prev` in it: it ends with `}`.
    line.pop();
    line.push_str(",\"hash\":\"");
    line.push_str(&hash);
    line.push_str("\"}");
    Ok((line, hash))
}

/// The hash recorded on a line, if it has one (used to continue a chain after restart).
pub fn line_hash(line: &str) -> Option<String> {
    let v: Value = serde_json::from_str(line).ok()?;
    v.get("hash")?.as_str().map(str::to_string)
}

/// Where and why the chain broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at line {line}: {reason}")]
pub struct ChainBreak {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// Check a whole log. Returns the number of lines when the chain is intact.
pub fn verify<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<usize, ChainBreak> {
    let mut prev = GENESIS.to_string();
    let mut count = 0;
    for (i, line) in lines.into_iter().enumerate() {
        let n = i + 1;
        let broken = |reason: String| ChainBreak { line: n, reason };
        let mut value: Value =
            serde_json::from_str(line).map_err(|e| broken(format!("not JSON ({e})")))?;
        let map = value
            .as_object_mut()
            .ok_or_else(|| broken("not a JSON object".into()))?;
        let stated = match map.remove("hash") {
            Some(Value::String(h)) => h,
            _ => return Err(broken("no `hash` field".into())),
        };
        match map.get("prev") {
            Some(Value::String(p)) if *p == prev => {}
            Some(Value::String(_)) => {
                return Err(broken(
                    "`prev` does not match the previous line's hash (a line was removed, \
                     inserted or reordered before this one)"
                        .into(),
                ))
            }
            _ => return Err(broken("no `prev` field".into())),
        }
        let actual = chain_hash(&prev, &value.to_string());
        if actual != stated {
            return Err(broken(
                "content does not match its hash (the line was edited)".into(),
            ));
        }
        prev = stated;
        count = n;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(program: &str) -> AuditEntry {
        AuditEntry {
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            phase: Some(AuditPhase::End),
            plugin: "debian".into(),
            plugin_digest: "ab".into(),
            host: "h1".into(),
            program: program.into(),
            args: vec!["-W".into()],
            env: vec![],
            decision: "allowed".into(),
            status: Some(0),
            duration_ms: Some(3),
            error: None,
        }
    }

    fn log(n: usize) -> Vec<String> {
        let mut prev = GENESIS.to_string();
        (0..n)
            .map(|i| {
                let (line, hash) = chain_line(&entry(&format!("p{i}")), &prev).unwrap();
                prev = hash;
                line
            })
            .collect()
    }

    #[test]
    fn env_is_recorded_as_name_and_value_or_its_hash() {
        let mut e = entry("apt-get");
        e.env = vec![
            AuditEnv::new("DEBIAN_FRONTEND", "noninteractive", false),
            AuditEnv::new("TOKEN", "s3cret", true),
        ];
        let (line, _) = chain_line(&e, GENESIS).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["env"],
            serde_json::json!([
                {"name": "DEBIAN_FRONTEND", "value": "noninteractive"},
                // sha256("s3cret")
                {"name": "TOKEN", "sha256": "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0"},
            ])
        );
        assert!(!line.contains("s3cret"));
        let back: AuditEntry = serde_json::from_str(&line).unwrap();
        assert_eq!(back.env, e.env);
    }

    #[test]
    fn intact_chain_verifies() {
        let lines = log(5);
        assert_eq!(verify(lines.iter().map(String::as_str)), Ok(5));
        assert_eq!(line_hash(&lines[4]).map(|h| h.len()), Some(64));
    }

    #[test]
    fn edited_line_is_named() {
        let mut lines = log(5);
        lines[2] = lines[2].replace("p2", "p9");
        let err = verify(lines.iter().map(String::as_str)).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("edited"), "{err}");
    }

    #[test]
    fn removed_line_breaks_the_next() {
        let mut lines = log(5);
        lines.remove(1);
        let err = verify(lines.iter().map(String::as_str)).unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn rehashed_edit_still_breaks_the_chain() {
        let mut lines = log(4);
        // An attacker edits line 2 and recomputes its hash: line 3 then no longer links.
        let prev = line_hash(&lines[0]).unwrap();
        let (forged, _) = chain_line(&entry("evil"), &prev).unwrap();
        lines[1] = forged;
        let err = verify(lines.iter().map(String::as_str)).unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn garbage_line_is_named() {
        let mut lines = log(3);
        lines[0] = "{not json".into();
        assert_eq!(
            verify(lines.iter().map(String::as_str)).unwrap_err().line,
            1
        );
    }
}
