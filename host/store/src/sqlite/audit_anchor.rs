//! The audit log's anchor in the SQLite store: one row holding the log's head (the table of
//! migration 0005).

use chrono::{DateTime, Utc};
use patchwave_core::audit::AuditHead;
use rusqlite::{params, Connection, OptionalExtension};

use super::from_ms;
use crate::error::StoreError;
use crate::rules;

/// A head ready to be written: its `seq` as SQLite holds it, its hash checked.
pub(super) struct AnchorWrite {
    seq: i64,
    hash: String,
    at: i64,
}

impl AnchorWrite {
    /// Refuse a head no audit log line can have ([`rules::check_audit_head`]).
    pub(super) fn new(head: &AuditHead, at: DateTime<Utc>) -> Result<Self, StoreError> {
        let seq = rules::check_audit_head(head)?;
        Ok(AnchorWrite {
            seq,
            hash: head.hash.clone(),
            at: at.timestamp_millis(),
        })
    }
}

/// The recorded head, if any.
pub(super) fn read(conn: &Connection) -> Result<Option<AuditHead>, StoreError> {
    let row = conn
        .prepare_cached("SELECT seq, hash, recorded_at FROM audit_anchor WHERE id = 1")?
        .query_row([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((seq, hash, at)) = row else {
        return Ok(None);
    };
    from_ms(at, "audit_anchor.recorded_at")?;
    let seq =
        u64::try_from(seq).map_err(|_| StoreError::corrupt(format!("audit_anchor.seq = {seq}")))?;
    Ok(Some(AuditHead { seq, hash }))
}

/// Record `write` if it is past the recorded head (or nothing is recorded); whether it was.
pub(super) fn advance(conn: &Connection, write: &AnchorWrite) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO audit_anchor (id, seq, hash, recorded_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE
                 SET seq = excluded.seq, hash = excluded.hash, recorded_at = excluded.recorded_at
                 WHERE excluded.seq > audit_anchor.seq",
        )?
        .execute(params![write.seq, write.hash, write.at])?;
    Ok(changed == 1)
}

/// Record `write` whatever was recorded before.
pub(super) fn reset(conn: &Connection, write: &AnchorWrite) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_anchor (id, seq, hash, recorded_at) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE
             SET seq = excluded.seq, hash = excluded.hash, recorded_at = excluded.recorded_at",
    )?
    .execute(params![write.seq, write.hash, write.at])?;
    Ok(())
}
