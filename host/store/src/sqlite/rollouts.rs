//! Rollouts in the SQLite store: each rollout's state as JSON with a revision for optimistic
//! concurrency, and its inbox of operator observations (the tables of migration 0004).
//!
//! Values are checked and serialized before the connection is taken ([`RolloutWrite::new`],
//! [`observation_json`]); the `*_tx` functions then run inside the caller's transaction, the
//! readers inside a read transaction so that a state and its inbox come from one save.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::from_ms;
use crate::error::StoreError;
use crate::model::{RolloutRecord, RolloutSummaryRow};
use crate::rules;

/// A rollout's state ready to be written by a create or a save.
pub(super) struct RolloutWrite {
    id: String,
    status: String,
    state: String,
    at: i64,
}

impl RolloutWrite {
    /// Serialize `state`, refusing an empty id or status ([`rules::check_rollout`]).
    pub(super) fn new(
        id: &str,
        status: &str,
        state: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        rules::check_rollout(id, status)?;
        Ok(RolloutWrite {
            id: id.to_string(),
            status: status.to_string(),
            state: to_json(state, || format!("the state of rollout `{id}`"))?,
            at: at.timestamp_millis(),
        })
    }
}

/// `observation` as the JSON text the inbox stores.
pub(super) fn observation_json(
    id: &str,
    observation: &serde_json::Value,
) -> Result<String, StoreError> {
    to_json(observation, || {
        format!("an observation posted to rollout `{id}`")
    })
}

fn to_json(value: &serde_json::Value, what: impl Fn() -> String) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidInput {
        what: format!("{} cannot be written as JSON: {e}", what()),
    })
}

/// The body of [`Store::create_rollout`](crate::Store::create_rollout): revision 1, created
/// and updated at the write's time.
pub(super) fn create_rollout_tx(
    tx: &Transaction<'_>,
    write: &RolloutWrite,
) -> Result<(), StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO rollouts (id, revision, status, state, created_at, updated_at)
             VALUES (?1, 1, ?2, ?3, ?4, ?4)
             ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![write.id, write.status, write.state, write.at])?;
    if inserted == 0 {
        return Err(StoreError::InvalidInput {
            what: format!("rollout `{}` already exists", write.id),
        });
    }
    Ok(())
}

/// The body of [`Store::save_rollout`](crate::Store::save_rollout). Returns the new
/// revision; on any error the caller's transaction is dropped, so nothing is written.
pub(super) fn save_rollout_tx(
    tx: &Transaction<'_>,
    write: &RolloutWrite,
    expected_revision: i64,
    consumed: Option<i64>,
) -> Result<i64, StoreError> {
    let found = stored_revision(tx, &write.id)?;
    rules::expect_revision(&write.id, expected_revision, found)?;
    tx.prepare_cached(
        "UPDATE rollouts SET revision = revision + 1, status = ?2, state = ?3, updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![write.id, write.status, write.state, write.at])?;
    if let Some(consumed) = consumed {
        consume_inbox(tx, &write.id, consumed)?;
    }
    Ok(found + 1)
}

/// Mark the observations of rollout `id` up to sequence `consumed` as consumed. `consumed`
/// must be an observation of this rollout: any other number is a caller's mistake (a
/// sequence read from another rollout, or made up) and is refused.
fn consume_inbox(tx: &Transaction<'_>, id: &str, consumed: i64) -> Result<(), StoreError> {
    let owner: Option<String> = tx
        .prepare_cached("SELECT rollout_id FROM rollout_inbox WHERE seq = ?1")?
        .query_row([consumed], |r| r.get(0))
        .optional()?;
    if owner.as_deref() != Some(id) {
        return Err(StoreError::InvalidInput {
            what: format!("inbox sequence {consumed} is not an observation of rollout `{id}`"),
        });
    }
    tx.prepare_cached(
        "UPDATE rollout_inbox SET consumed = 1
         WHERE rollout_id = ?1 AND consumed = 0 AND seq <= ?2",
    )?
    .execute(params![id, consumed])?;
    Ok(())
}

/// The body of [`Store::post_rollout_observation`](crate::Store::post_rollout_observation):
/// append `observation` (JSON text) to the inbox of rollout `id` and return its sequence.
pub(super) fn post_observation_tx(
    tx: &Transaction<'_>,
    id: &str,
    observation: &str,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    stored_revision(tx, id)?;
    tx.prepare_cached(
        "INSERT INTO rollout_inbox (rollout_id, posted_at, observation) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, at.timestamp_millis(), observation])?;
    Ok(tx.last_insert_rowid())
}

/// The revision of rollout `id`; [`StoreError::InvalidInput`] when it does not exist.
fn stored_revision(tx: &Transaction<'_>, id: &str) -> Result<i64, StoreError> {
    tx.prepare_cached("SELECT revision FROM rollouts WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::InvalidInput {
            what: format!("rollout `{id}` does not exist"),
        })
}

/// Rollout `id` with its unconsumed observations, oldest first.
pub(super) fn read_rollout(
    tx: &Transaction<'_>,
    id: &str,
) -> Result<Option<RolloutRecord>, StoreError> {
    let row = tx
        .prepare_cached(
            "SELECT revision, status, state, created_at, updated_at FROM rollouts WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    let Some((revision, status, state, created_at, updated_at)) = row else {
        return Ok(None);
    };
    Ok(Some(RolloutRecord {
        id: id.to_string(),
        revision,
        status,
        state: parse_json(&state, || format!("rollout `{id}`: stored state"))?,
        inbox: read_inbox(tx, id)?,
        created_at: from_ms(created_at, "rollouts.created_at")?,
        updated_at: from_ms(updated_at, "rollouts.updated_at")?,
    }))
}

fn read_inbox(tx: &Transaction<'_>, id: &str) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
    let raw = tx
        .prepare_cached(
            "SELECT seq, observation FROM rollout_inbox
             WHERE rollout_id = ?1 AND consumed = 0 ORDER BY seq",
        )?
        .query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    raw.into_iter()
        .map(|(seq, text)| {
            let observation = parse_json(&text, || {
                format!("rollout `{id}`: stored observation {seq}")
            })?;
            Ok((seq, observation))
        })
        .collect()
}

fn parse_json(text: &str, what: impl Fn() -> String) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::corrupt(format!("{} is not JSON: {e}", what())))
}

/// Every rollout, newest first (by creation time, then by id).
pub(super) fn read_rollouts(tx: &Transaction<'_>) -> Result<Vec<RolloutSummaryRow>, StoreError> {
    let raw = tx
        .prepare_cached(
            "SELECT id, status, created_at, updated_at FROM rollouts
             ORDER BY created_at DESC, id",
        )?
        .query_map([], RawSummary::read)?
        .collect::<Result<Vec<_>, _>>()?;
    raw.into_iter().map(RawSummary::into_row).collect()
}

/// A `rollouts` listing row as stored, before its times are checked.
struct RawSummary {
    id: String,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl RawSummary {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawSummary {
            id: r.get(0)?,
            status: r.get(1)?,
            created_at: r.get(2)?,
            updated_at: r.get(3)?,
        })
    }

    fn into_row(self) -> Result<RolloutSummaryRow, StoreError> {
        Ok(RolloutSummaryRow {
            created_at: from_ms(self.created_at, "rollouts.created_at")?,
            updated_at: from_ms(self.updated_at, "rollouts.updated_at")?,
            id: self.id,
            status: self.status,
        })
    }
}
