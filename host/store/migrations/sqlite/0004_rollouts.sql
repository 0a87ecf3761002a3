-- 0004: staged rollouts. The state machine lives in patchwave-rollout; the store keeps its
-- state as JSON together with an inbox of operator commands, so a runner that restarts (or
-- another runner) picks a rollout up where it was left.
--
-- Timestamps are INTEGER unix milliseconds (UTC).

-- One row per rollout. `state` is the patchwave_rollout::Rollout as JSON; `status` repeats
-- its status word so listings need not parse it. `revision` starts at 1 and is incremented
-- by every save: a runner saves only if the revision is still the one it loaded (optimistic
-- concurrency between runners).
CREATE TABLE rollouts (
    id         TEXT PRIMARY KEY NOT NULL,
    revision   INTEGER NOT NULL CHECK (revision >= 1),
    status     TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Operator observations (start, approve, abort, rollback) posted to a rollout, as JSON, in
-- posting order. A save marks the ones its state took into account as consumed; they are
-- kept for the record. AUTOINCREMENT: a sequence number is never reused, not even after a
-- cascade, so a runner's "consumed up to `seq`" always means the observations it saw.
CREATE TABLE rollout_inbox (
    rollout_id  TEXT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    posted_at   INTEGER NOT NULL,
    observation TEXT NOT NULL,
    consumed    INTEGER NOT NULL DEFAULT 0 CHECK (consumed IN (0, 1))
);

-- A rollout's unconsumed observations, oldest first (and the cascade).
CREATE INDEX rollout_inbox_pending ON rollout_inbox (rollout_id, consumed, seq);
