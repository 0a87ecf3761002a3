-- 0002: every package change made to a host, written before it is attempted and again when
-- its outcome is known. An outcome the runner could not know ('unknown', or 'in-progress' left
-- by a runner that died) is settled by the next successful inventory ('reconciled').

CREATE TABLE host_changes (
    id            INTEGER PRIMARY KEY,
    host_id       TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('apply', 'rollback')),
    plugin        TEXT NOT NULL,
    -- JSON: the changes or rollback steps as requested.
    request       TEXT NOT NULL,
    -- JSON: [{name, version|null}], what the host has if the change took.
    expected      TEXT NOT NULL,
    -- JSON: the rollback steps planned before an apply (NULL for rollbacks).
    rollback_plan TEXT,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    outcome       TEXT NOT NULL
                  CHECK (outcome IN ('in-progress', 'applied', 'failed', 'unknown')),
    -- The apply report (JSON) or the error that ended it.
    detail        TEXT,
    reconciled_at INTEGER,
    reconciled    TEXT CHECK (reconciled IN ('took', 'did-not-take', 'partial'))
);

CREATE INDEX host_changes_by_host ON host_changes (host_id, id);
CREATE INDEX host_changes_unsettled ON host_changes (host_id)
    WHERE outcome IN ('in-progress', 'unknown') AND reconciled_at IS NULL;
