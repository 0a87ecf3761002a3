//! The audit log's hash chain: every line carries its sequence number and the hash of the
//! line before it.
//!
//! **A line** is one JSON object in *canonical form*: compact, keys sorted by their UTF-8
//! bytes (recursively), strings escaped the way `serde_json` writes them, and `hash` as the
//! very last key. Every line has `seq` (1 for the first line, one more for each line after)
//! and `prev` (the previous line's `hash`, [`GENESIS`] for the first line). The *body* of a
//! line is the line without its `,"hash":"…"` ending (closed again by `}`), and
//! `hash` = SHA-256 of the previous line's hash, a newline, and the body's bytes.
//!
//! **Verifying is byte for byte** ([`Verifier`], [`verify`]): each line must be valid UTF-8,
//! parse, and serialize back to exactly its own bytes. So whitespace, reordered keys,
//! escapes the writer would not produce and duplicate keys (a parser keeps one of the two
//! values, so the line re-serializes without the other) are all refused, and the hash is
//! checked over the bytes that are on disk. Editing, removing, inserting or reordering a line
//! breaks the chain at that line or the next one, and the break names the line.
//!
//! **The head** ([`AuditHead`]: the last line's `seq` and `hash`) is what an *anchor* kept
//! outside the file records (the store, after every append). Checked against an anchor, a
//! log that ends before the anchored line was cut ([`LogFault::Cut`]); one whose line at the
//! anchored `seq` has another hash was rewritten ([`LogFault::Rewritten`]), however well its
//! own chain verifies.
//!
//! **The last line** of a log may be *torn*: a write cut off by a crash leaves bytes without
//! their newline, or bytes that are not JSON. [`Verifier::finish`] reports such a line as
//! [`TornLine`], not as a break; the log that finds one on opening moves it to a quarantine
//! file and records that in the chain ([`TornTailEvent`]).
//!
//! Lines written before sequence numbers existed have no `seq`; they are accepted as a
//! leading run of the log only (their hash was already taken over exactly their bytes).

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `event` of the line a log writes when it quarantined a torn last line.
pub const TORN_TAIL_EVENT: &str = "audit-torn-tail";

/// The `event` of the line `patchwave audit reanchor` writes.
pub const REANCHOR_EVENT: &str = "audit-reanchored";

/// Keys the chain itself sets on every line; an entry may not carry them.
const RESERVED: [&str; 3] = ["hash", "prev", "seq"];

/// Where a chain ends: the last line's sequence number and hash. An empty log's head is
/// [`AuditHead::genesis`] (`seq` 0, hash [`GENESIS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The line's `seq`: its 1-based position in the log.
    pub seq: u64,
    /// The line's `hash`, 64 lowercase hex digits.
    pub hash: String,
}

impl AuditHead {
    /// The head of an empty log.
    pub fn genesis() -> AuditHead {
        AuditHead {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

impl fmt::Display for AuditHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} (hash {})", self.seq, self.hash)
    }
}

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

impl AuditEntry {
    /// This request as its `start` line at `now`: no result yet.
    pub fn started(mut self, now: DateTime<Utc>) -> AuditEntry {
        self.time = now;
        self.phase = Some(AuditPhase::Start);
        self.status = None;
        self.duration_ms = None;
        self.error = None;
        self
    }

    /// This request as its `end` line at `now`: how it ended (its exit status, or why it
    /// could not run or finish) and how long it took.
    pub fn ended(
        mut self,
        now: DateTime<Utc>,
        ran: Result<i32, String>,
        took: std::time::Duration,
    ) -> AuditEntry {
        self.time = now;
        self.phase = Some(AuditPhase::End);
        self.duration_ms = Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
        (self.status, self.error) = match ran {
            Ok(status) => (Some(status), None),
            Err(e) => (None, Some(e)),
        };
        self
    }

    /// This request as a refused one at `now`: one line, no phase, no result.
    pub fn refused(mut self, now: DateTime<Utc>) -> AuditEntry {
        self.time = now;
        self.phase = None;
        self.status = None;
        self.duration_ms = None;
        self.error = None;
        self
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

/// The line a log writes after moving a torn last line (a crash's cut-off write) aside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TornTailEvent {
    /// When it was moved.
    pub time: DateTime<Utc>,
    /// Always [`TORN_TAIL_EVENT`].
    pub event: String,
    /// The quarantine file's name, beside the log.
    pub file: String,
    /// How many bytes were moved.
    pub bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: String,
}

/// The line `patchwave audit reanchor` writes: an operator accepted the log as it is, and
/// the anchor was set to this line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReanchorEvent {
    /// When.
    pub time: DateTime<Utc>,
    /// Always [`REANCHOR_EVENT`].
    pub event: String,
    /// Who (as given to the command).
    pub by: String,
    /// Why (as given to the command).
    pub reason: String,
    /// What the anchor held before (`None`: nothing).
    pub anchor: Option<AuditHead>,
    /// Where the log ended before this line.
    pub log_head: AuditHead,
}

/// Errors building a chained line.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The entry did not serialize to a JSON object.
    #[error("audit entry is not a JSON object")]
    NotAnObject,
    /// The entry has a field the chain sets itself.
    #[error("audit entry has a field `{0}`, which the hash chain sets itself")]
    ReservedField(&'static str),
    /// Serialization failed.
    #[error("audit entry could not be serialized: {0}")]
    Json(#[from] serde_json::Error),
}

fn chain_hash(prev: &str, body: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    for part in body {
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// The canonical text of a JSON value: compact, object keys in sorted order.
///
/// `serde_json` keeps object keys in a sorted map (its `preserve_order` feature is not used
/// anywhere in the workspace; a unit test fails if it ever is), so its compact output is
/// the canonical form.
fn canonical<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(value)
}

/// The length of `,"hash":"` + the hash + `"}`: what [`seal`] puts in place of the body's
/// closing brace.
fn seal_len(hash: &str) -> usize {
    ",\"hash\":\"\"}".len() + hash.len()
}

/// `body` (a canonical JSON object) closed with `hash` as its last key.
fn seal(mut body: String, hash: &str) -> String {
    // `body` is a JSON object with at least `prev` in it: it ends with `}`.
    body.pop();
    body.push_str(",\"hash\":\"");
    body.push_str(hash);
    body.push_str("\"}");
    body
}

/// Serialize `entry` as the line after `after` (the log's head). Returns the line (without
/// newline) and the new head.
///
/// The body (the entry plus `prev` and `seq`) is serialized once, canonically: the hash is
/// taken over those bytes and the line is the same text with `hash` appended as the last
/// key, which is exactly what [`Verifier`] requires of it.
pub fn chain_line<T: Serialize>(
    entry: &T,
    after: &AuditHead,
) -> Result<(String, AuditHead), AuditError> {
    let mut value = serde_json::to_value(entry)?;
    let map = value.as_object_mut().ok_or(AuditError::NotAnObject)?;
    if let Some(key) = RESERVED.into_iter().find(|k| map.contains_key(*k)) {
        return Err(AuditError::ReservedField(key));
    }
    let seq = after.seq + 1;
    map.insert("prev".into(), Value::String(after.hash.clone()));
    map.insert("seq".into(), Value::from(seq));
    let body = canonical(&value)?;
    let hash = chain_hash(&after.hash, &[body.as_bytes()]);
    Ok((seal(body, &hash), AuditHead { seq, hash }))
}

/// One line, checked on its own: canonical, its hash right for its `prev` and body. Whether
/// it links to the line before it is [`Verifier`]'s part.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainedLine {
    /// `seq`; `None` for a line written before sequence numbers existed.
    pub seq: Option<u64>,
    /// `prev`.
    pub prev: String,
    /// `hash`.
    pub hash: String,
    /// Every other field (`prev` and `seq` included, `hash` not).
    pub fields: Map<String, Value>,
}

/// Why one line is not a chained audit line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    /// Not UTF-8, or not JSON: what a write cut off by a crash leaves behind when it is the
    /// last line.
    #[error("{0}")]
    Unreadable(String),
    /// JSON, but not a canonical chained audit line, or its content does not match its hash.
    #[error("{0}")]
    Broken(String),
}

/// Check one line (without its newline) on its own; see [`ChainedLine`].
pub fn read_line(bytes: &[u8]) -> Result<ChainedLine, LineFault> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        LineFault::Unreadable(format!(
            "not UTF-8 (invalid byte at offset {} of the line)",
            e.valid_up_to()
        ))
    })?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| LineFault::Unreadable(format!("not JSON ({e})")))?;
    let broken = |reason: String| LineFault::Broken(reason);
    let Value::Object(mut fields) = value else {
        return Err(broken("not a JSON object".into()));
    };
    let hash = match fields.remove("hash") {
        Some(Value::String(h)) => h,
        _ => return Err(broken("no `hash` field".into())),
    };
    let prev = match fields.get("prev") {
        Some(Value::String(p)) => p.clone(),
        _ => return Err(broken("no `prev` field".into())),
    };
    let seq = match fields.get("seq") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|s| *s >= 1)
                .ok_or_else(|| broken(format!("`seq` is {v}, not a line number")))?,
        ),
    };
    let body = canonical(&fields).map_err(|e| broken(format!("cannot be serialized ({e})")))?;
    let sealed = seal(body, &hash);
    if sealed != text {
        return Err(broken(non_canonical(text, &sealed)));
    }
    // The body is the line up to its `,"hash":"…"` ending, closed by `}`.
    let open_body = &text.as_bytes()[..text.len() - seal_len(&hash)];
    if chain_hash(&prev, &[open_body, b"}"]) != hash {
        return Err(broken(
            "content does not match its hash (the line was edited)".into(),
        ));
    }
    Ok(ChainedLine {
        seq,
        prev,
        hash,
        fields,
    })
}

/// Why `text` is not the canonical `canonical`: a duplicate key if it has one (a parser
/// keeps only one of the values, so readers may disagree about what the line says), else
/// where the two first differ.
fn non_canonical(text: &str, canonical: &str) -> String {
    if let Err(e) = serde_json::from_str::<NoDuplicateKeys>(text) {
        return format!("{e}; a line must be in canonical form");
    }
    let at = text
        .bytes()
        .zip(canonical.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(text.len().min(canonical.len()));
    format!(
        "not in canonical form (compact JSON, keys sorted, `hash` last): it differs at byte \
         {at} from the line the writer would produce"
    )
}

/// A JSON document whose objects have no key twice (deserializing it fails otherwise).
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(self)
    }
}

/// Where and why the chain broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at line {line}: {reason}")]
pub struct ChainBreak {
    /// 1-based line number.
    pub line: u64,
    /// What was wrong.
    pub reason: String,
}

/// What is wrong with a log: a broken chain, or a chain that disagrees with its anchor.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogFault {
    /// A line is not a chained audit line, or does not link to the one before it.
    #[error(transparent)]
    Chain(#[from] ChainBreak),
    /// The log ends before the line the anchor recorded: lines were cut off its end.
    #[error(
        "audit log cut: the log ends at line {ends_at} but the store recorded line {} (hash {})",
        anchor.seq,
        anchor.hash
    )]
    Cut {
        /// The log's last line.
        ends_at: u64,
        /// What the anchor recorded.
        anchor: AuditHead,
    },
    /// The log's line at the anchored `seq` has another hash: the log was rewritten.
    #[error(
        "audit log rewritten: line {} has hash {found} but the store recorded hash {} for it",
        anchor.seq,
        anchor.hash
    )]
    Rewritten {
        /// What the anchor recorded.
        anchor: AuditHead,
        /// The hash the log has at that line.
        found: String,
    },
}

/// A last line that is not (yet) a whole line: what a crash while writing it leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornLine {
    /// Its line number.
    pub line: u64,
    /// Its length in bytes (with its newline, if it has one).
    pub bytes: u64,
}

/// Something recorded in the chain that a reader of the log should be told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A torn last line was moved to a quarantine file ([`TornTailEvent`]).
    Quarantined {
        /// The line recording it.
        line: u64,
        /// The quarantine file's name.
        file: String,
        /// Bytes moved.
        bytes: u64,
        /// Their SHA-256.
        sha256: String,
    },
    /// An operator re-anchored the log ([`ReanchorEvent`]).
    Reanchored {
        /// The line recording it.
        line: u64,
        /// Who.
        by: String,
        /// Why.
        reason: String,
        /// What the anchor held before.
        anchor: Option<AuditHead>,
        /// Where the log ended before.
        log_head: AuditHead,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Quarantined {
                line,
                file,
                bytes,
                sha256,
            } => write!(
                f,
                "line {line}: a torn last line (a write cut off by a crash) was moved to \
                 {file} ({bytes} bytes, sha256 {sha256})"
            ),
            Notice::Reanchored {
                line,
                by,
                reason,
                anchor,
                log_head,
            } => {
                let had = anchor
                    .as_ref()
                    .map_or_else(|| "nothing".to_string(), AuditHead::to_string);
                write!(
                    f,
                    "line {line}: re-anchored by {by} ({reason}); the store had recorded \
                     {had}, the log ended at line {}",
                    log_head.seq
                )
            }
        }
    }
}

/// A log that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Its last whole line (the genesis head for an empty log).
    pub head: AuditHead,
    /// Lines at its start written before sequence numbers existed.
    pub legacy: u64,
    /// The anchor it was checked against, if one was given.
    pub anchor: Option<AuditHead>,
    /// Quarantines and re-anchorings recorded in it, in order.
    pub notices: Vec<Notice>,
    /// A torn last line still in the file (not part of the chain).
    pub torn: Option<TornLine>,
}

impl Verified {
    /// Whole lines in the chain.
    pub fn lines(&self) -> u64 {
        self.head.seq
    }
}

/// Checks a log line by line, byte for byte, optionally against an anchor; see the module
/// documentation. Feed it every line without its newline ([`Verifier::push`]), then what
/// follows the last newline ([`Verifier::finish`]).
#[derive(Debug)]
pub struct Verifier {
    head: AuditHead,
    anchor: Option<AuditHead>,
    legacy: u64,
    seq_seen: bool,
    notices: Vec<Notice>,
    /// An unreadable line: torn if it turns out to be the last one, a break otherwise.
    pending: Option<(ChainBreak, u64)>,
}

impl Verifier {
    /// A verifier for a whole log.
    pub fn new(anchor: Option<AuditHead>) -> Verifier {
        Verifier {
            head: AuditHead::genesis(),
            anchor,
            legacy: 0,
            seq_seen: false,
            notices: Vec::new(),
            pending: None,
        }
    }

    /// A verifier for the lines after `head` (a line with a `seq`, known to be good).
    pub fn after(head: AuditHead, anchor: Option<AuditHead>) -> Verifier {
        Verifier {
            head,
            seq_seen: true,
            ..Verifier::new(anchor)
        }
    }

    /// Check the next line (without its newline).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), LogFault> {
        if let Some((broken, _)) = self.pending.take() {
            return Err(broken.into());
        }
        let n = self.head.seq + 1;
        let broken = |reason: String| LogFault::Chain(ChainBreak { line: n, reason });
        let line = match read_line(bytes) {
            Ok(line) => line,
            Err(LineFault::Unreadable(reason)) => {
                self.pending = Some((ChainBreak { line: n, reason }, bytes.len() as u64 + 1));
                return Ok(());
            }
            Err(LineFault::Broken(reason)) => return Err(broken(reason)),
        };
        if line.prev != self.head.hash {
            return Err(broken(
                "`prev` does not match the previous line's hash (a line was removed, \
                 inserted or reordered before this one)"
                    .into(),
            ));
        }
        match line.seq {
            Some(seq) if seq == n => self.seq_seen = true,
            Some(seq) => {
                return Err(broken(format!(
                    "`seq` is {seq} but this is line {n} (a line was removed, inserted or \
                     reordered before this one)"
                )))
            }
            None if self.seq_seen => {
                return Err(broken(
                    "no `seq` field (only the lines at the start of a log written before \
                     sequence numbers existed may lack it)"
                        .into(),
                ))
            }
            None => self.legacy += 1,
        }
        if let Some(anchor) = self.anchor.as_ref().filter(|a| a.seq == n) {
            if anchor.hash != line.hash {
                return Err(LogFault::Rewritten {
                    anchor: anchor.clone(),
                    found: line.hash,
                });
            }
        }
        if let Some(notice) = notice(n, &line.fields) {
            self.notices.push(notice);
        }
        self.head = AuditHead {
            seq: n,
            hash: line.hash,
        };
        Ok(())
    }

    /// The end of the log: `rest` is what follows its last newline (empty when it ends with
    /// one, the whole file when it has none).
    pub fn finish(mut self, rest: &[u8]) -> Result<Verified, LogFault> {
        let torn = match (self.pending.take(), rest.is_empty()) {
            (Some((broken, _)), false) => return Err(broken.into()),
            (Some((broken, bytes)), true) => Some(TornLine {
                line: broken.line,
                bytes,
            }),
            (None, false) => Some(TornLine {
                line: self.head.seq + 1,
                bytes: rest.len() as u64,
            }),
            (None, true) => None,
        };
        if let Some(anchor) = self.anchor.as_ref().filter(|a| a.seq > self.head.seq) {
            return Err(LogFault::Cut {
                ends_at: self.head.seq,
                anchor: anchor.clone(),
            });
        }
        Ok(Verified {
            head: self.head,
            legacy: self.legacy,
            anchor: self.anchor,
            notices: self.notices,
            torn,
        })
    }
}

/// The notice a line records, if it is a quarantine or a re-anchoring.
fn notice(line: u64, fields: &Map<String, Value>) -> Option<Notice> {
    let event = fields.get("event")?.as_str()?;
    let value = || Value::Object(fields.clone());
    match event {
        TORN_TAIL_EVENT => {
            let e: TornTailEvent = serde_json::from_value(value()).ok()?;
            Some(Notice::Quarantined {
                line,
                file: e.file,
                bytes: e.bytes,
                sha256: e.sha256,
            })
        }
        REANCHOR_EVENT => {
            let e: ReanchorEvent = serde_json::from_value(value()).ok()?;
            Some(Notice::Reanchored {
                line,
                by: e.by,
                reason: e.reason,
                anchor: e.anchor,
                log_head: e.log_head,
            })
        }
        _ => None,
    }
}

/// Check a whole log held in memory against `anchor` (if any).
pub fn verify(log: &[u8], anchor: Option<&AuditHead>) -> Result<Verified, LogFault> {
    let mut verifier = Verifier::new(anchor.cloned());
    let mut rest = log;
    while let Some(end) = rest.iter().position(|b| *b == b'\n') {
        verifier.push(&rest[..end])?;
        rest = &rest[end + 1..];
    }
    verifier.finish(rest)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
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
        let mut head = AuditHead::genesis();
        (0..n)
            .map(|i| {
                let (line, next) = chain_line(&entry(&format!("p{i}")), &head).unwrap();
                head = next;
                line
            })
            .collect()
    }

    fn file(lines: &[String]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect()
    }

    fn broken_at(lines: &[String]) -> ChainBreak {
        match verify(&file(lines), None).unwrap_err() {
            LogFault::Chain(b) => b,
            other => panic!("not a chain break: {other}"),
        }
    }

    #[test]
    fn env_is_recorded_as_name_and_value_or_its_hash() {
        let mut e = entry("apt-get");
        e.env = vec![
            AuditEnv::new("DEBIAN_FRONTEND", "noninteractive", false),
            AuditEnv::new("TOKEN", "s3cret", true),
        ];
        let (line, _) = chain_line(&e, &AuditHead::genesis()).unwrap();
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
    fn intact_chain_verifies_and_names_its_head() {
        let lines = log(5);
        let v = verify(&file(&lines), None).unwrap();
        assert_eq!(v.lines(), 5);
        assert_eq!(v.head, read_head(&lines[4]));
        assert_eq!((v.legacy, v.torn, v.notices.len()), (0, None, 0));
        assert!(lines[0].contains("\"seq\":1,") && lines[4].contains("\"seq\":5,"));
        assert_eq!(verify(b"", None).unwrap().head, AuditHead::genesis());
    }

    fn read_head(line: &str) -> AuditHead {
        let l = read_line(line.as_bytes()).unwrap();
        AuditHead {
            seq: l.seq.unwrap(),
            hash: l.hash,
        }
    }

    #[test]
    fn a_line_is_canonical_with_sorted_keys_seq_prev_and_hash_last() {
        let (line, head) = chain_line(&entry("dpkg-query"), &AuditHead::genesis()).unwrap();
        let body = format!(
            "{{\"args\":[\"-W\"],\"decision\":\"allowed\",\"duration_ms\":3,\"env\":[],\
             \"error\":null,\"host\":\"h1\",\"phase\":\"end\",\"plugin\":\"debian\",\
             \"plugin_digest\":\"ab\",\"prev\":\"{GENESIS}\",\"program\":\"dpkg-query\",\
             \"seq\":1,\"status\":0,\"time\":\"2023-11-14T22:13:20Z\"}}"
        );
        let hash = hex::encode(Sha256::digest(format!("{GENESIS}\n{body}")));
        assert_eq!(
            line,
            format!("{},\"hash\":\"{hash}\"}}", &body[..body.len() - 1])
        );
        assert_eq!(head, AuditHead { seq: 1, hash });
        // The guard the canonical form rests on: serde_json's map is sorted (its
        // `preserve_order` feature would keep insertion order and make every line that a
        // reader reordered look canonical).
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":3}}"#).unwrap();
        assert_eq!(canonical(&v).unwrap(), r#"{"a":{"c":3,"d":2},"b":1}"#);
    }

    #[test]
    fn floats_in_an_event_survive_the_byte_for_byte_check() {
        // Operator events carry free-form JSON: a float must read back to the same text, or
        // a genuine line would fail as non-canonical.
        let mut head = AuditHead::genesis();
        let mut lines = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            let f = if f.is_finite() { f } else { 0.1 + 0.2 };
            let event = OperatorEvent {
                time: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
                event: "e".into(),
                rollout: "r".into(),
                by: "b".into(),
                detail: serde_json::json!({ "f": f, "g": 1.0 / 3.0, "h": -0.0, "i": 1e300 }),
            };
            let (line, next) = chain_line(&event, &head).unwrap();
            head = next;
            lines.push(line);
        }
        assert_eq!(verify(&file(&lines), None).unwrap().lines(), 2_000);
    }

    #[test]
    fn entries_may_not_set_the_chain_fields() {
        for key in ["hash", "prev", "seq"] {
            let err = chain_line(&serde_json::json!({ key: "x" }), &AuditHead::genesis());
            assert!(matches!(err, Err(AuditError::ReservedField(k)) if k == key));
        }
        assert!(matches!(
            chain_line(&"text", &AuditHead::genesis()),
            Err(AuditError::NotAnObject)
        ));
    }

    #[test]
    fn edited_line_is_named() {
        let mut lines = log(5);
        lines[2] = lines[2].replace("p2", "p9");
        let err = broken_at(&lines);
        assert_eq!(err.line, 3);
        assert!(err.reason.contains("edited"), "{err}");
    }

    #[test]
    fn removed_line_breaks_the_next() {
        let mut lines = log(5);
        lines.remove(1);
        let err = broken_at(&lines);
        assert_eq!(err.line, 2);
    }

    #[test]
    fn rehashed_edit_still_breaks_the_chain() {
        let mut lines = log(4);
        // An attacker edits line 2 and recomputes its hash: line 3 then no longer links.
        let (forged, _) = chain_line(&entry("evil"), &read_head(&lines[0])).unwrap();
        lines[1] = forged;
        let err = broken_at(&lines);
        assert_eq!(err.line, 3);
    }

    #[test]
    fn garbage_line_is_named() {
        let mut lines = log(3);
        lines[0] = "{not json".into();
        let err = broken_at(&lines);
        assert_eq!(err.line, 1);
        assert!(err.reason.contains("not JSON"), "{err}");
    }

    #[test]
    fn added_whitespace_is_refused_although_the_json_is_the_same() {
        for (from, to) in [(",\"", ", \""), ("\":", "\": "), ("}", "} ")] {
            let mut lines = log(4);
            lines[1] = lines[1].replacen(from, to, 1);
            let err = broken_at(&lines);
            assert_eq!(err.line, 2, "{from:?}");
            assert!(err.reason.contains("canonical form"), "{err}");
        }
        let mut lines = log(2);
        lines[0].push('\r');
        assert_eq!(broken_at(&lines).line, 1);
    }

    #[test]
    fn a_prepended_duplicate_key_is_refused_and_named() {
        // A reader that takes the first `program` would see FORGED; serde_json keeps the
        // last, so the hash over the re-serialized line would still check out.
        let mut lines = log(3);
        lines[1] = format!("{{\"program\":\"FORGED\",{}", &lines[1][1..]);
        let err = broken_at(&lines);
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("duplicate key `program`"), "{err}");
    }

    #[test]
    fn reordered_keys_and_foreign_escapes_are_refused() {
        let mut lines = log(2);
        // Swap the first two keys.
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        let map = v.as_object().unwrap();
        let mut keys: Vec<&String> = map.keys().filter(|k| *k != "hash").collect();
        keys.swap(0, 1);
        let body: Vec<String> = keys
            .iter()
            .map(|k| format!("{}:{}", Value::String((*k).clone()), map[*k]))
            .collect();
        lines[0] = format!("{{{},\"hash\":{}}}", body.join(","), map["hash"]);
        assert!(broken_at(&lines).reason.contains("canonical form"));
        // `\u0064` is `d`: the same string, other bytes.
        let mut lines = log(2);
        lines[0] = lines[0].replacen("\"debian\"", "\"\\u0064ebian\"", 1);
        assert!(broken_at(&lines).reason.contains("canonical form"));
    }

    #[test]
    fn a_non_utf8_byte_names_its_line() {
        let mut bytes = Vec::new();
        for (i, line) in log(3).iter().enumerate() {
            let mut l = line.clone().into_bytes();
            if i == 1 {
                l[10] = 0xff;
            }
            bytes.extend(l);
            bytes.push(b'\n');
        }
        let Err(LogFault::Chain(err)) = verify(&bytes, None) else {
            panic!("not refused")
        };
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("not UTF-8"), "{err}");
    }

    #[test]
    fn a_torn_last_line_is_reported_not_broken() {
        let lines = log(3);
        let whole = file(&lines);
        // Cut in the middle of line 3: no newline at the end.
        let cut = &whole[..whole.len() - 20];
        let v = verify(cut, None).unwrap();
        assert_eq!(v.lines(), 2);
        assert_eq!(v.head, read_head(&lines[1]));
        let torn = v.torn.unwrap();
        assert_eq!(torn.line, 3);
        assert_eq!(torn.bytes, lines[2].len() as u64 + 1 - 20);
        // Garbage with a newline as the last line: torn too.
        let mut garbage = file(&lines[..2]);
        garbage.extend(b"\0\0\0\n");
        assert_eq!(
            verify(&garbage, None).unwrap().torn,
            Some(TornLine { line: 3, bytes: 4 })
        );
        // The same garbage anywhere but last is a break.
        garbage.extend(b"\0\0");
        assert!(matches!(
            verify(&garbage, None),
            Err(LogFault::Chain(ChainBreak { line: 3, .. }))
        ));
        // A readable last line that is wrong is not torn: it was edited.
        let mut edited = lines.clone();
        edited[2] = edited[2].replace("p2", "p9");
        assert_eq!(broken_at(&edited).line, 3);
    }

    #[test]
    fn seq_must_count_the_lines() {
        let lines = log(3);
        // A forged line 2 that links by `prev` but claims seq 7.
        let l1 = read_head(&lines[0]);
        let (mut forged, _) = chain_line(&entry("x"), &AuditHead { seq: 6, ..l1 }).unwrap();
        let err = broken_at(&[lines[0].clone(), forged.clone()]);
        assert!(
            err.reason.contains("`seq` is 7 but this is line 2"),
            "{err}"
        );
        forged = forged.replace("\"seq\":7", "\"seq\":\"7\"");
        assert!(broken_at(&[lines[0].clone(), forged])
            .reason
            .contains("not a line number"));
    }

    /// A line as the writer before sequence numbers made it: the same, without `seq`.
    fn legacy_line(program: &str, prev: &str) -> (String, String) {
        let mut value = serde_json::to_value(entry(program)).unwrap();
        let map = value.as_object_mut().unwrap();
        map.insert("prev".into(), Value::String(prev.to_string()));
        let body = value.to_string();
        let hash = chain_hash(prev, &[body.as_bytes()]);
        (seal(body, &hash), hash)
    }

    #[test]
    fn lines_from_before_seq_are_accepted_only_at_the_start() {
        let (a, ha) = legacy_line("a", GENESIS);
        let (b, hb) = legacy_line("b", &ha);
        let (c_line, hc) = chain_line(&entry("c"), &AuditHead { seq: 2, hash: hb }).unwrap();
        let v = verify(&file(&[a.clone(), b.clone(), c_line.clone()]), None).unwrap();
        assert_eq!((v.lines(), v.legacy), (3, 2));
        assert_eq!(v.head, hc);
        // After a line with `seq`, a line without one is refused.
        let (d, _) = legacy_line("d", &hc.hash);
        let err = broken_at(&[a, b, c_line, d]);
        assert_eq!(err.line, 4);
        assert!(err.reason.contains("no `seq`"), "{err}");
    }

    #[test]
    fn an_anchor_detects_a_cut_tail_and_a_rewrite() {
        let lines = log(5);
        let head = read_head(&lines[4]);
        let whole = file(&lines);
        assert_eq!(
            verify(&whole, Some(&head)).unwrap().anchor,
            Some(head.clone())
        );
        // Anchored at line 3, the log is two lines ahead: fine.
        assert!(verify(&whole, Some(&read_head(&lines[2]))).is_ok());
        // Cut to three lines: the chain itself is intact.
        let cut = file(&lines[..3]);
        assert_eq!(verify(&cut, None).unwrap().lines(), 3);
        assert_eq!(
            verify(&cut, Some(&head)),
            Err(LogFault::Cut {
                ends_at: 3,
                anchor: head.clone()
            })
        );
        let message = verify(&cut, Some(&head)).unwrap_err().to_string();
        assert!(
            message.contains("ends at line 3 but the store recorded line 5"),
            "{message}"
        );
        // Everything rewritten from scratch: a chain that verifies on its own.
        let mut forged = AuditHead::genesis();
        let rewritten: Vec<String> = (0..6)
            .map(|i| {
                let (l, h) = chain_line(&entry(&format!("q{i}")), &forged).unwrap();
                forged = h;
                l
            })
            .collect();
        let rewritten = file(&rewritten);
        assert!(verify(&rewritten, None).is_ok());
        let Err(LogFault::Rewritten { anchor, found }) = verify(&rewritten, Some(&head)) else {
            panic!("rewrite not detected")
        };
        assert_eq!(anchor, head);
        assert_ne!(found, head.hash);
        // A torn last line does not count as the anchored line.
        let torn = &whole[..whole.len() - 5];
        assert!(matches!(
            verify(torn, Some(&head)),
            Err(LogFault::Cut { ends_at: 4, .. })
        ));
    }

    #[test]
    fn quarantines_and_reanchorings_in_the_chain_are_noticed() {
        let lines = log(2);
        let h2 = read_head(&lines[1]);
        let torn = TornTailEvent {
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            event: TORN_TAIL_EVENT.into(),
            file: "audit.jsonl.torn-3-1700000000".into(),
            bytes: 57,
            sha256: "ab".repeat(32),
        };
        let (l3, h3) = chain_line(&torn, &h2).unwrap();
        let re = ReanchorEvent {
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            event: REANCHOR_EVENT.into(),
            by: "alice".into(),
            reason: "restored from backup".into(),
            anchor: Some(AuditHead {
                seq: 9,
                hash: "cd".repeat(32),
            }),
            log_head: h3.clone(),
        };
        let (l4, _) = chain_line(&re, &h3).unwrap();
        let v = verify(&file(&[lines[0].clone(), lines[1].clone(), l3, l4]), None).unwrap();
        assert_eq!(v.notices.len(), 2);
        let text: Vec<String> = v.notices.iter().map(Notice::to_string).collect();
        assert!(
            text[0].starts_with("line 3: a torn last line")
                && text[0].contains("audit.jsonl.torn-3-1700000000 (57 bytes"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("line 4: re-anchored by alice (restored from backup)")
                && text[1].contains("recorded line 9"),
            "{text:?}"
        );
    }

    #[test]
    fn start_end_and_refused_lines_carry_exactly_their_parts() {
        let now = DateTime::from_timestamp(1_700_000_100, 0).unwrap_or_default();
        let start = entry("p").started(now);
        assert_eq!(start.phase, Some(AuditPhase::Start));
        assert_eq!(
            (start.status, start.duration_ms, &start.error),
            (None, None, &None)
        );
        let end = start.clone().ended(
            now,
            Err("lost".into()),
            std::time::Duration::from_millis(1500),
        );
        assert_eq!(end.phase, Some(AuditPhase::End));
        assert_eq!((end.status, end.duration_ms), (None, Some(1500)));
        assert_eq!(end.error.as_deref(), Some("lost"));
        let ok = start.ended(now, Ok(3), std::time::Duration::ZERO);
        assert_eq!((ok.status, ok.error), (Some(3), None));
        let refused = entry("p").refused(now);
        assert_eq!((refused.phase, refused.status), (None, None));
        assert_eq!(refused.time, now);
    }
}
