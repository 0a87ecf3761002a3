-- 0006: the audit log's anchor. After every sync of the audit log (<state>/audit.jsonl) the
-- runner records the log's head here: the `seq` and `hash` of its last line on disk. Opening
-- the log and `patchwave audit verify` compare the file with it: a log that ends before
-- `seq` was cut, one whose line `seq` has another hash was rewritten, however well its own
-- hash chain verifies.
--
-- One row (id = 1). It only moves forward (a head with a higher seq), except when an
-- operator re-anchors the log (`patchwave audit reanchor`, itself written to the log).
-- `recorded_at` is INTEGER unix milliseconds (UTC).
CREATE TABLE audit_anchor (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    hash        TEXT NOT NULL CHECK (length(hash) = 64),
    recorded_at INTEGER NOT NULL
);
