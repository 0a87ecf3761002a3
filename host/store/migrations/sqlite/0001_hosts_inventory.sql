-- 0001: hosts, content-addressed inventories, per-host snapshots, scan history.
--
-- Timestamps are INTEGER unix milliseconds (UTC). Booleans are INTEGER 0/1.

-- A host: identity from the fleet config, and the summary `hosts show` prints, kept up to
-- date by every scan so that reading it is one primary-key lookup.
CREATE TABLE hosts (
    id                   TEXT PRIMARY KEY NOT NULL,
    address              TEXT NOT NULL,
    port                 INTEGER CHECK (port BETWEEN 0 AND 65535),
    env                  TEXT NOT NULL CHECK (env IN ('prod', 'non-prod')),
    scope                TEXT NOT NULL,
    transport            TEXT NOT NULL,
    -- Facts from the last successful scan (all NULL before it).
    os_id                TEXT,
    os_version_id        TEXT,
    os_codename          TEXT,
    os_pretty_name       TEXT,
    kernel               TEXT,
    os_arch              TEXT,
    reboot_required      INTEGER CHECK (reboot_required IN (0, 1)),
    package_count        INTEGER CHECK (package_count >= 0),
    upgradable_count     INTEGER CHECK (upgradable_count >= 0),
    -- inventory_digest of host_upgradable, so an unchanged list is not rewritten.
    upgradable_digest    TEXT,
    plugin               TEXT,
    plugin_digest        TEXT,
    -- The latest snapshot (NULL before the first successful scan).
    snapshot_id          INTEGER REFERENCES host_snapshots (id) ON DELETE SET NULL,
    last_attempt_at      INTEGER,
    last_status          TEXT CHECK (last_status IN ('ok', 'unreachable', 'failed')),
    last_error           TEXT,
    last_success_at      INTEGER,
    inventory_changed_at INTEGER
);

CREATE INDEX hosts_by_snapshot ON hosts (snapshot_id);

-- Tags are a set per host; indexed by tag for "every host tagged X".
CREATE TABLE host_tags (
    host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    tag     TEXT NOT NULL,
    PRIMARY KEY (host_id, tag)
) WITHOUT ROWID;

CREATE INDEX host_tags_by_tag ON host_tags (tag, host_id);

-- A package list, stored once however many hosts (or how many times one host) have it:
-- hosts built from one image share it. Keyed by patchwave_core::inventory::inventory_digest.
CREATE TABLE inventories (
    id            INTEGER PRIMARY KEY,
    digest        TEXT NOT NULL UNIQUE,
    package_count INTEGER NOT NULL CHECK (package_count >= 0)
);

-- The packages of an inventory; `ord` is the position in package_order (name, arch, version,
-- source), so reading an inventory back is one clustered range scan, and duplicates survive.
CREATE TABLE inventory_packages (
    inventory_id INTEGER NOT NULL REFERENCES inventories (id) ON DELETE CASCADE,
    ord          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    arch         TEXT NOT NULL,
    source       TEXT,
    PRIMARY KEY (inventory_id, ord)
) WITHOUT ROWID;

-- "Who has package X": name -> inventories -> snapshots -> hosts whose latest it is.
CREATE INDEX inventory_packages_by_name ON inventory_packages (name, inventory_id);

-- A period during which a host had one inventory: from the scan that first found it to the
-- last scan that found it again.
CREATE TABLE host_snapshots (
    id           INTEGER PRIMARY KEY,
    host_id      TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    inventory_id INTEGER NOT NULL REFERENCES inventories (id),
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    CHECK (last_seen >= first_seen)
);

CREATE INDEX host_snapshots_by_host ON host_snapshots (host_id, first_seen);
CREATE INDEX host_snapshots_by_inventory ON host_snapshots (inventory_id);

-- Packages with a newer candidate at the host's last successful scan (current state only).
CREATE TABLE host_upgradable (
    host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    ord     INTEGER NOT NULL,
    name    TEXT NOT NULL,
    version TEXT NOT NULL,
    arch    TEXT NOT NULL,
    source  TEXT,
    PRIMARY KEY (host_id, ord)
) WITHOUT ROWID;

-- Every scan attempt, successful or not.
CREATE TABLE scan_attempts (
    id            INTEGER PRIMARY KEY,
    host_id       TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('ok', 'unreachable', 'failed')),
    error         TEXT,
    plugin        TEXT,
    plugin_digest TEXT,
    snapshot_id   INTEGER REFERENCES host_snapshots (id) ON DELETE SET NULL
);

CREATE INDEX scan_attempts_by_host ON scan_attempts (host_id, finished_at, id);
CREATE INDEX scan_attempts_by_snapshot ON scan_attempts (snapshot_id);
