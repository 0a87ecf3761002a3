-- 0007: a rollback names the apply it undoes, by id, so the journal says which change put a
-- host back (and an auditor can follow an apply to its undoing) without comparing requests.
-- Only a rollback has one; the store refuses a link to another host's change or to a
-- change that is not an apply.

ALTER TABLE host_changes ADD COLUMN undoes INTEGER REFERENCES host_changes (id);

CREATE INDEX host_changes_by_undoes ON host_changes (undoes) WHERE undoes IS NOT NULL;
