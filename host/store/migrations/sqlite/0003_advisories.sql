-- 0003: what is known to be vulnerable: OSV advisories, the CISA KEV catalogue (with
-- tombstones for entries that left it) and the EPSS scores.
--
-- Timestamps are INTEGER unix milliseconds (UTC). Records are kept as the JSON of their
-- patchwave_advisory type; the columns beside them are what queries select on.

-- One advisory per id, the record with the newest `modified` kept. `body` is the
-- patchwave_advisory::Advisory as JSON (its `source` included); `source_location` and
-- `fetched_at` repeat the source so an import can be traced without parsing bodies.
CREATE TABLE advisories (
    id              TEXT PRIMARY KEY NOT NULL,
    modified        INTEGER NOT NULL,
    published       INTEGER,
    withdrawn       INTEGER,
    source_location TEXT NOT NULL,
    fetched_at      INTEGER NOT NULL,
    body            TEXT NOT NULL
);

-- "Which advisories name package X in ecosystem Y": one row per distinct (ecosystem, package)
-- of an advisory's affected list, rebuilt whenever the advisory is replaced.
CREATE TABLE advisory_packages (
    ecosystem   TEXT NOT NULL,
    package     TEXT NOT NULL,
    advisory_id TEXT NOT NULL REFERENCES advisories (id) ON DELETE CASCADE,
    PRIMARY KEY (ecosystem, package, advisory_id)
) WITHOUT ROWID;

-- The rebuild (and the cascade) find an advisory's rows by id.
CREATE INDEX advisory_packages_by_advisory ON advisory_packages (advisory_id);

-- Every CVE ever in the KEV catalogue. A live entry has its position in the current
-- catalogue (`ord`); one that left it is a tombstone: `removed_at` is the release date of the
-- first catalogue without it, and the row is never deleted. `body` is the
-- patchwave_advisory::KevEntry as JSON, as last seen; `first_seen` the release date of the
-- first catalogue that had it.
CREATE TABLE kev_entries (
    cve_id     TEXT PRIMARY KEY NOT NULL,
    body       TEXT NOT NULL,
    ord        INTEGER,
    first_seen INTEGER NOT NULL,
    removed_at INTEGER,
    CHECK ((ord IS NULL) = (removed_at IS NOT NULL))
);

-- The live entries in catalogue order.
CREATE INDEX kev_entries_live ON kev_entries (ord) WHERE ord IS NOT NULL;

-- The header of the live KEV catalogue and where it was read (one row, after the first
-- import).
CREATE TABLE kev_catalog (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    catalog_version TEXT NOT NULL,
    date_released   INTEGER NOT NULL,
    source_kind     TEXT NOT NULL,
    source_location TEXT NOT NULL,
    fetched_at      INTEGER NOT NULL
);

-- The scores of the current EPSS feed, replaced whole by each import; `ord` is the row's
-- position in the feed.
CREATE TABLE epss_scores (
    cve        TEXT PRIMARY KEY NOT NULL,
    ord        INTEGER NOT NULL,
    epss       REAL NOT NULL CHECK (epss BETWEEN 0 AND 1),
    percentile REAL NOT NULL CHECK (percentile BETWEEN 0 AND 1)
) WITHOUT ROWID;

-- The header of the current EPSS feed and where it was read (one row, after the first
-- import).
CREATE TABLE epss_feed (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    model_version   TEXT NOT NULL,
    score_date      INTEGER NOT NULL,
    source_kind     TEXT NOT NULL,
    source_location TEXT NOT NULL,
    fetched_at      INTEGER NOT NULL
);
