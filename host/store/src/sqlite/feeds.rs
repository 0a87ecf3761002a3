//! The vulnerability feeds in the SQLite store: OSV advisories, the CISA KEV catalogue with
//! its tombstones, and the EPSS scores (the tables of migration 0003).
//!
//! Input is checked and advisories are serialized before the connection is taken; the
//! `*_tx` functions then run inside the caller's transaction, the readers inside a read
//! transaction so that a header and its rows always come from one import.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use patchwave_advisory::{
    Advisory, EpssFeed, EpssRow, FeedStamp, KevCatalog, KevEntry, KevTombstone, Source,
};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{count_to_sql, from_ms};
use crate::error::StoreError;
use crate::model::{AdvisoryImport, EpssImport, EpssView, FeedWrite, KevImport, KevView};
use crate::rules;

/// One advisory ready to be written: its JSON and the columns kept beside it.
pub(super) struct AdvisoryRow {
    id: String,
    /// `modified`, to the millisecond as stored.
    modified: i64,
    modified_at: DateTime<Utc>,
    published: Option<i64>,
    withdrawn: Option<i64>,
    source_location: String,
    fetched_at: i64,
    body: String,
    /// Distinct (ecosystem, package) pairs of its affected list.
    packages: BTreeSet<(String, String)>,
}

impl AdvisoryRow {
    /// Serialize `advisory`, refusing one without an id.
    pub(super) fn new(advisory: &Advisory) -> Result<Self, StoreError> {
        rules::check_advisory(advisory)?;
        let body = serde_json::to_string(advisory).map_err(|e| StoreError::InvalidInput {
            what: format!("advisory `{}` cannot be written as JSON: {e}", advisory.id),
        })?;
        Ok(AdvisoryRow {
            id: advisory.id.clone(),
            modified: advisory.modified.timestamp_millis(),
            modified_at: advisory.modified,
            published: advisory.published.map(|t| t.timestamp_millis()),
            withdrawn: advisory.withdrawn.map(|t| t.timestamp_millis()),
            source_location: advisory.source.location.clone(),
            fetched_at: advisory.source.fetched_at.timestamp_millis(),
            body,
            packages: advisory
                .affected
                .iter()
                .map(|a| (a.ecosystem.to_string(), a.package.clone()))
                .collect(),
        })
    }
}

/// What importing one advisory did.
enum Upsert {
    Inserted,
    Updated,
    Unchanged,
}

/// The body of [`Store::import_advisories`](crate::Store::import_advisories).
pub(super) fn import_advisories_tx(
    tx: &Transaction<'_>,
    rows: &[AdvisoryRow],
) -> Result<AdvisoryImport, StoreError> {
    let mut import = AdvisoryImport::default();
    for row in rows {
        match upsert_advisory(tx, row)? {
            Upsert::Inserted => import.inserted += 1,
            Upsert::Updated => import.updated += 1,
            Upsert::Unchanged => import.unchanged += 1,
        }
    }
    Ok(import)
}

/// Store `row` unless the stored record with its id is as new or newer.
fn upsert_advisory(tx: &Transaction<'_>, row: &AdvisoryRow) -> Result<Upsert, StoreError> {
    let stored: Option<i64> = tx
        .prepare_cached("SELECT modified FROM advisories WHERE id = ?1")?
        .query_row([&row.id], |r| r.get(0))
        .optional()?;
    let stored = stored
        .map(|ms| from_ms(ms, "advisories.modified"))
        .transpose()?;
    let effect = match stored {
        None => {
            tx.prepare_cached(
                "INSERT INTO advisories
                     (id, modified, published, withdrawn, source_location, fetched_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                row.id,
                row.modified,
                row.published,
                row.withdrawn,
                row.source_location,
                row.fetched_at,
                row.body
            ])?;
            Upsert::Inserted
        }
        Some(stored) if rules::advisory_replaces(stored, row.modified_at) => {
            tx.prepare_cached(
                "UPDATE advisories SET modified = ?2, published = ?3, withdrawn = ?4,
                     source_location = ?5, fetched_at = ?6, body = ?7
                 WHERE id = ?1",
            )?
            .execute(params![
                row.id,
                row.modified,
                row.published,
                row.withdrawn,
                row.source_location,
                row.fetched_at,
                row.body
            ])?;
            tx.prepare_cached("DELETE FROM advisory_packages WHERE advisory_id = ?1")?
                .execute([&row.id])?;
            Upsert::Updated
        }
        Some(_) => return Ok(Upsert::Unchanged),
    };
    let mut insert = tx.prepare_cached(
        "INSERT INTO advisory_packages (ecosystem, package, advisory_id) VALUES (?1, ?2, ?3)",
    )?;
    for (ecosystem, package) in &row.packages {
        insert.execute(params![ecosystem, package, row.id])?;
    }
    Ok(effect)
}

/// Every stored advisory, sorted by id.
pub(super) fn read_advisories(tx: &Transaction<'_>) -> Result<Vec<Advisory>, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT id, body FROM advisories ORDER BY id")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let body: String = row.get(1)?;
        out.push(parse_advisory(&id, &body)?);
    }
    Ok(out)
}

/// The stored advisory `id`.
pub(super) fn read_advisory(
    tx: &Transaction<'_>,
    id: &str,
) -> Result<Option<Advisory>, StoreError> {
    let body: Option<String> = tx
        .prepare_cached("SELECT body FROM advisories WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    body.map(|body| parse_advisory(id, &body)).transpose()
}

fn parse_advisory(id: &str, body: &str) -> Result<Advisory, StoreError> {
    let advisory: Advisory = serde_json::from_str(body).map_err(|e| {
        StoreError::corrupt(format!(
            "advisory `{id}`: stored JSON is not an advisory: {e}"
        ))
    })?;
    if advisory.id != id {
        return Err(StoreError::corrupt(format!(
            "advisory `{id}`: stored JSON is advisory `{}`",
            advisory.id
        )));
    }
    Ok(advisory)
}

/// The stored KEV stamp: the release date and the number of live entries.
pub(super) fn kev_stamp(tx: &Transaction<'_>) -> Result<Option<FeedStamp>, StoreError> {
    feed_stamp(
        tx,
        "SELECT date_released FROM kev_catalog WHERE id = 1",
        "SELECT COUNT(*) FROM kev_entries WHERE ord IS NOT NULL",
        "kev_catalog.date_released",
    )
}

/// The stored EPSS stamp: the score date and the number of scores.
pub(super) fn epss_stamp(tx: &Transaction<'_>) -> Result<Option<FeedStamp>, StoreError> {
    feed_stamp(
        tx,
        "SELECT score_date FROM epss_feed WHERE id = 1",
        "SELECT COUNT(*) FROM epss_scores",
        "epss_feed.score_date",
    )
}

fn feed_stamp(
    tx: &Transaction<'_>,
    date_sql: &str,
    count_sql: &str,
    column: &str,
) -> Result<Option<FeedStamp>, StoreError> {
    let date: Option<i64> = tx
        .prepare_cached(date_sql)?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(date) = date else {
        return Ok(None);
    };
    let entries: i64 = tx.prepare_cached(count_sql)?.query_row([], |r| r.get(0))?;
    Ok(Some(FeedStamp {
        date: from_ms(date, column)?,
        entries: usize::try_from(entries)
            .map_err(|_| StoreError::corrupt(format!("{column}: {entries} entries")))?,
    }))
}

/// The body of [`Store::import_kev`](crate::Store::import_kev); `catalog` passed
/// [`rules::check_kev`], and which entries become tombstones is [`rules::plan_kev`]'s.
pub(super) fn import_kev_tx(
    tx: &Transaction<'_>,
    catalog: &KevCatalog,
    source: &Source,
    write: &FeedWrite,
) -> Result<KevImport, StoreError> {
    rules::expect_stamp("KEV catalogue", write, kev_stamp(tx)?)?;
    let released = catalog.date_released.timestamp_millis();

    // Every CVE the store knows, live (true) or tombstoned (false).
    let known: HashMap<String, bool> = tx
        .prepare_cached("SELECT cve_id, removed_at IS NULL FROM kev_entries")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let import = rules::plan_kev(&known, catalog, &write.prune);
    let mut bury =
        tx.prepare_cached("UPDATE kev_entries SET ord = NULL, removed_at = ?2 WHERE cve_id = ?1")?;
    for tombstone in &import.removed {
        bury.execute(params![tombstone.cve_id, released])?;
    }
    for (ord, entry) in catalog.entries.iter().enumerate() {
        write_kev_entry(tx, entry, ord, released)?;
    }
    // Entries kept live without being listed follow the catalogue's, in CVE order.
    let mut place = tx.prepare_cached("UPDATE kev_entries SET ord = ?2 WHERE cve_id = ?1")?;
    for (i, id) in import.kept_unlisted.iter().enumerate() {
        place.execute(params![id, count_to_sql(catalog.entries.len() + i)])?;
    }
    tx.prepare_cached(
        "INSERT INTO kev_catalog
             (id, catalog_version, date_released, source_kind, source_location, fetched_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET
             catalog_version = excluded.catalog_version,
             date_released = excluded.date_released, source_kind = excluded.source_kind,
             source_location = excluded.source_location, fetched_at = excluded.fetched_at",
    )?
    .execute(params![
        catalog.catalog_version,
        released,
        source.kind,
        source.location,
        source.fetched_at.timestamp_millis()
    ])?;
    Ok(import)
}

/// Make `entry` live at position `ord`: new, refreshed, or back from its tombstone (which is
/// cleared). `first_seen` is only written for a CVE never seen before.
fn write_kev_entry(
    tx: &Transaction<'_>,
    entry: &KevEntry,
    ord: usize,
    released: i64,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(entry).map_err(|e| StoreError::InvalidInput {
        what: format!("KEV entry {} cannot be written as JSON: {e}", entry.cve_id),
    })?;
    // The WHERE clause skips the write for an entry that did not change, so a daily import
    // rewrites only what moved.
    tx.prepare_cached(
        "INSERT INTO kev_entries (cve_id, body, ord, first_seen, removed_at)
         VALUES (?1, ?2, ?3, ?4, NULL)
         ON CONFLICT (cve_id) DO UPDATE SET
             body = excluded.body, ord = excluded.ord, removed_at = NULL
         WHERE body IS NOT excluded.body OR ord IS NOT excluded.ord
            OR removed_at IS NOT NULL",
    )?
    .execute(params![entry.cve_id, body, count_to_sql(ord), released])?;
    Ok(())
}

/// The live catalogue, where it was read, and every tombstone.
pub(super) fn read_kev(tx: &Transaction<'_>) -> Result<KevView, StoreError> {
    let header = read_feed_header(tx, "kev_catalog", "catalog_version", "date_released")?;
    let tombstones = read_kev_tombstones(tx)?;
    let Some(header) = header else {
        return Ok(KevView {
            catalog: None,
            source: None,
            tombstones,
        });
    };
    let catalog = KevCatalog {
        catalog_version: header.label,
        date_released: header.date,
        entries: read_kev_entries(tx)?,
    };
    Ok(KevView {
        catalog: Some(catalog),
        source: Some(header.source),
        tombstones,
    })
}

/// The one-row header of a feed table (`kev_catalog`, `epss_feed`): the feed's version
/// label, its date and where it was read.
struct FeedHeader {
    label: String,
    date: DateTime<Utc>,
    source: Source,
}

/// Read `table`'s header row (`id = 1`), whose version label and date are in
/// `label_column` and `date_column`.
fn read_feed_header(
    tx: &Transaction<'_>,
    table: &str,
    label_column: &str,
    date_column: &str,
) -> Result<Option<FeedHeader>, StoreError> {
    let sql = format!(
        "SELECT {label_column}, {date_column}, source_kind, source_location, fetched_at
         FROM {table} WHERE id = 1"
    );
    let row = tx
        .prepare_cached(&sql)?
        .query_row([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .optional()?;
    row.map(|(label, date, kind, location, fetched_at)| {
        Ok(FeedHeader {
            label,
            date: from_ms(date, &format!("{table}.{date_column}"))?,
            source: Source {
                kind,
                location,
                fetched_at: from_ms(fetched_at, &format!("{table}.fetched_at"))?,
            },
        })
    })
    .transpose()
}

fn read_kev_entries(tx: &Transaction<'_>) -> Result<Vec<KevEntry>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT cve_id, body FROM kev_entries WHERE ord IS NOT NULL ORDER BY ord",
    )?;
    let mut rows = stmt.query([])?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        let cve_id: String = row.get(0)?;
        let body: String = row.get(1)?;
        let entry: KevEntry = serde_json::from_str(&body).map_err(|e| {
            StoreError::corrupt(format!(
                "KEV entry {cve_id}: stored JSON is not an entry: {e}"
            ))
        })?;
        if entry.cve_id != cve_id {
            return Err(StoreError::corrupt(format!(
                "KEV entry {cve_id}: stored JSON is the entry of {}",
                entry.cve_id
            )));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn read_kev_tombstones(tx: &Transaction<'_>) -> Result<Vec<KevTombstone>, StoreError> {
    let raw = tx
        .prepare_cached(
            "SELECT cve_id, removed_at FROM kev_entries
             WHERE removed_at IS NOT NULL ORDER BY cve_id",
        )?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    raw.into_iter()
        .map(|(cve_id, removed_at)| {
            Ok(KevTombstone {
                cve_id,
                removed_at: from_ms(removed_at, "kev_entries.removed_at")?,
            })
        })
        .collect()
}

/// The body of [`Store::import_epss`](crate::Store::import_epss); `feed` passed
/// [`rules::check_epss`], and which stored scores stay is [`rules::epss_kept`]'s.
pub(super) fn import_epss_tx(
    tx: &Transaction<'_>,
    feed: &EpssFeed,
    source: &Source,
    write: &FeedWrite,
) -> Result<EpssImport, StoreError> {
    rules::expect_stamp("EPSS feed", write, epss_stamp(tx)?)?;
    let score_date = feed.score_date.timestamp_millis();
    let stored: Vec<String> = tx
        .prepare_cached("SELECT cve FROM epss_scores ORDER BY ord")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let (keep, removed) = rules::epss_kept(&stored, feed, &write.prune);
    // The stored scores that stay although the feed does not list them, in stored order.
    let mut read =
        tx.prepare_cached("SELECT cve, epss, percentile FROM epss_scores WHERE cve = ?1")?;
    let mut kept = Vec::new();
    for cve in keep {
        kept.push(read.query_row([cve], read_epss_row)?);
    }
    tx.prepare_cached("DELETE FROM epss_scores")?.execute([])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO epss_scores (cve, ord, epss, percentile) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (ord, row) in feed.rows.iter().chain(&kept).enumerate() {
        insert.execute(params![
            row.cve,
            count_to_sql(ord),
            row.epss,
            row.percentile
        ])?;
    }
    tx.prepare_cached(
        "INSERT INTO epss_feed
             (id, model_version, score_date, source_kind, source_location, fetched_at)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET
             model_version = excluded.model_version, score_date = excluded.score_date,
             source_kind = excluded.source_kind, source_location = excluded.source_location,
             fetched_at = excluded.fetched_at",
    )?
    .execute(params![
        feed.model_version,
        score_date,
        source.kind,
        source.location,
        source.fetched_at.timestamp_millis()
    ])?;
    Ok(EpssImport {
        written: feed.rows.len(),
        removed,
        kept_unlisted: kept.len(),
    })
}

fn read_epss_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EpssRow> {
    Ok(EpssRow {
        cve: r.get(0)?,
        epss: r.get(1)?,
        percentile: r.get(2)?,
    })
}

/// The current EPSS feed and where it was read.
pub(super) fn read_epss(tx: &Transaction<'_>) -> Result<Option<EpssView>, StoreError> {
    let Some(header) = read_feed_header(tx, "epss_feed", "model_version", "score_date")? else {
        return Ok(None);
    };
    let rows = tx
        .prepare_cached("SELECT cve, epss, percentile FROM epss_scores ORDER BY ord")?
        .query_map([], read_epss_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(EpssView {
        feed: EpssFeed {
            model_version: header.label,
            score_date: header.date,
            rows,
        },
        source: header.source,
    }))
}
