-- 0005: a change made by a rollout names the rollout, so the rollout finds what it really
-- applied on a host (the whole transaction its package manager resolved, dependencies
-- included) and rolls back exactly that, never an older apply of the same packages.

ALTER TABLE host_changes ADD COLUMN rollout TEXT;

CREATE INDEX host_changes_by_rollout ON host_changes (rollout, host_id, id)
    WHERE rollout IS NOT NULL;
