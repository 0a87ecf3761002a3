//! The vulnerability feeds: OSV advisories (newest `modified` wins), the KEV catalogue with
//! its tombstones and the EPSS scores, each replaced as its [`FeedWrite`](crate::FeedWrite)
//! says and refused when prepared against another stored feed.

use chrono::Duration;
use patchwave_advisory::{EpssFeed, EpssRow, FeedStamp, KevCatalog, KevTombstone, Prune};

use super::fixtures::*;
use super::Backend;
use crate::{AdvisoryImport, EpssImport, EpssView, KevImport, KevView, StoreError};

/// Advisories round trip sorted by id.
pub async fn advisories_round_trip_sorted_by_id(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let (openssh, libxml2) = (usn(USN_6859), usn(USN_6658));
    let import = store
        .import_advisories(&[openssh.clone(), libxml2.clone()])
        .await
        .unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 2,
            updated: 0,
            unchanged: 0
        }
    );
    assert_eq!(
        store.advisories().await.unwrap(),
        vec![libxml2.clone(), openssh.clone()]
    );
    // Microseconds of `published` survive: the record is kept as JSON.
    let stored = store.advisory("USN-6859-1").await.unwrap().unwrap();
    assert_eq!(stored, openssh);
    assert_eq!(stored.published, Some(utc("2024-07-01T09:06:31.434165Z")));
    assert_eq!(store.advisory("USN-0000-1").await.unwrap(), None);
}

/// Newer modified wins and an older one never rolls back.
pub async fn newer_modified_wins_and_an_older_one_never_rolls_back(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let (openssh, libxml2, glibc) = (usn(USN_6859), usn(USN_6658), usn(USN_6409));
    store
        .import_advisories(&[openssh.clone(), libxml2.clone()])
        .await
        .unwrap();

    let mut newer = openssh.clone();
    newer.modified = openssh.modified + Duration::days(1);
    newer.summary = Some("openssh regression fixed".into());
    newer.affected.truncate(1);
    newer.source = source("ubuntu-usn", "mirror-2");
    let mut older = libxml2.clone();
    older.modified = libxml2.modified - Duration::days(1);
    older.summary = Some("an old copy".into());
    let import = store
        .import_advisories(&[newer.clone(), older, glibc.clone()])
        .await
        .unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 1,
            updated: 1,
            unchanged: 1
        }
    );
    assert_eq!(
        store.advisories().await.unwrap(),
        vec![glibc.clone(), libxml2.clone(), newer.clone()]
    );
    // Same `modified`, other content: the stored record stays.
    let mut same = newer.clone();
    same.summary = Some("same time, other words".into());
    let import = store.import_advisories(&[same]).await.unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 0,
            updated: 0,
            unchanged: 1
        }
    );
    assert_eq!(store.advisory("USN-6859-1").await.unwrap(), Some(newer));
}

/// One id twice in a batch keeps the newest.
pub async fn one_id_twice_in_a_batch_keeps_the_newest(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let old = usn(USN_6658);
    let mut new = old.clone();
    new.modified = old.modified + Duration::hours(1);
    new.summary = Some("second revision".into());
    let import = store
        .import_advisories(&[old.clone(), new.clone()])
        .await
        .unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 1,
            updated: 1,
            unchanged: 0
        }
    );
    let other = backend.fresh().await.store;
    let import = other.import_advisories(&[new.clone(), old]).await.unwrap();
    assert_eq!(
        import,
        AdvisoryImport {
            inserted: 1,
            updated: 0,
            unchanged: 1
        }
    );
    assert_eq!(store.advisories().await.unwrap(), vec![new.clone()]);
    assert_eq!(other.advisories().await.unwrap(), vec![new]);
}

/// An advisory without an id is refused and nothing is written.
pub async fn an_advisory_without_an_id_is_refused_and_nothing_is_written(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let mut nameless = usn(USN_6658);
    nameless.id = String::new();
    let err = store
        .import_advisories(&[usn(USN_6859), nameless])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid input for the store: an advisory from ubuntu-usn/osv has an empty id"
    );
    assert!(store.advisories().await.unwrap().is_empty());
}

/// Kev replacement keeps tombstones.
pub async fn kev_replacement_keeps_tombstones(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let first = kev_catalog(KEV_0314);
    let second = kev_catalog(KEV_0320);
    assert_eq!(
        cve_ids(&first),
        [
            "CVE-2021-44228",
            "CVE-2024-32002",
            "CVE-2023-5678",
            "CVE-2024-0727"
        ]
    );
    assert_eq!(
        cve_ids(&second),
        [
            "CVE-2021-44228",
            "CVE-2024-32002",
            "CVE-2024-0727",
            "CVE-2025-24813"
        ]
    );
    let src = source("cisa-kev", "kev/catalog.json");

    let import = import_kev(&*store, &first, &src).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 4,
            kept: 0,
            removed: vec![],
            kept_unlisted: vec![]
        }
    );
    let view = store.kev().await.unwrap();
    // Kept to the millisecond: `.7305Z` reads back as `.730Z`.
    let first_ms = KevCatalog {
        date_released: utc("2025-03-14T16:01:59.730Z"),
        ..first.clone()
    };
    assert_eq!(
        view,
        KevView {
            catalog: Some(first_ms),
            source: Some(src.clone()),
            tombstones: vec![]
        }
    );

    // CVE-2023-5678 leaves, CVE-2025-24813 arrives.
    let gone = KevTombstone {
        cve_id: "CVE-2023-5678".into(),
        removed_at: utc("2025-03-20T17:30:00Z"),
    };
    let import = import_kev(&*store, &second, &src).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 1,
            kept: 3,
            removed: vec![gone.clone()],
            kept_unlisted: vec![]
        }
    );
    let after_second = KevView {
        catalog: Some(second.clone()),
        source: Some(src.clone()),
        tombstones: vec![gone.clone()],
    };
    assert_eq!(store.kev().await.unwrap(), after_second);

    // The same catalogue again changes nothing.
    let import = import_kev(&*store, &second, &src).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 0,
            kept: 4,
            removed: vec![],
            kept_unlisted: vec![]
        }
    );
    assert_eq!(store.kev().await.unwrap(), after_second);

    // CVE-2023-5678 comes back; CVE-2025-24813 leaves.
    let third = KevCatalog {
        catalog_version: "2025.03.27".into(),
        date_released: utc("2025-03-27T15:00:00Z"),
        entries: first.entries.clone(),
    };
    let import = import_kev(&*store, &third, &src).await.unwrap();
    let left = KevTombstone {
        cve_id: "CVE-2025-24813".into(),
        removed_at: utc("2025-03-27T15:00:00Z"),
    };
    assert_eq!(
        import,
        KevImport {
            added: 1,
            kept: 3,
            removed: vec![left.clone()],
            kept_unlisted: vec![]
        }
    );
    assert_eq!(
        store.kev().await.unwrap(),
        KevView {
            catalog: Some(third),
            source: Some(src),
            tombstones: vec![left]
        }
    );
}

/// A kev write prepared against another stored catalogue changes nothing.
pub async fn a_kev_write_prepared_against_another_stored_catalogue_changes_nothing(
    backend: &dyn Backend,
) {
    let store = backend.fresh().await.store;
    let src = source("cisa-kev", "kev/catalog.json");
    // Prepared while nothing was stored ...
    let prepared = kev_write(&*store, Prune::Absent).await;
    assert_eq!(prepared.expected, None);
    // ... and another import lands first.
    import_kev(&*store, &kev_catalog(KEV_0320), &src)
        .await
        .unwrap();
    let before = store.kev().await.unwrap();
    assert_eq!(
        store.kev_stamp().await.unwrap(),
        Some(FeedStamp {
            date: utc("2025-03-20T17:30:00Z"),
            entries: 4
        })
    );
    let old_mirror = source("cisa-kev", "mirror/old.json");
    let err = store
        .import_kev(&kev_catalog(KEV_0314), &old_mirror, &prepared)
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::FeedChanged { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "KEV catalogue was changed by another import (expected nothing stored, found \
         2025-03-20T17:30:00Z with 4 entries): not imported"
    );
    assert_eq!(store.kev().await.unwrap(), before);
}

/// A kev catalogue listing a cve twice is refused.
pub async fn a_kev_catalogue_listing_a_cve_twice_is_refused(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let mut catalog = kev_catalog(KEV_0320);
    catalog.entries.push(catalog.entries[1].clone());
    let err = import_kev(&*store, &catalog, &source("cisa-kev", "kev.json"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: KEV catalogue 2025.03.20 lists CVE-2024-32002 twice"
    );
    assert_eq!(store.kev().await.unwrap().catalog, None);
}

/// A kev write keeps live what its prune keeps.
pub async fn a_kev_write_keeps_live_what_its_prune_keeps(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let src = source("cisa-kev", "kev/catalog.json");
    import_kev(&*store, &kev_catalog(KEV_0320), &src)
        .await
        .unwrap();
    let stored = kev_catalog(KEV_0320);
    // A newer catalogue listing only CVE-2021-44228 and CVE-2024-0727.
    let newer = KevCatalog {
        catalog_version: "2025.03.27".into(),
        date_released: utc("2025-03-27T15:00:00Z"),
        entries: vec![stored.entries[0].clone(), stored.entries[2].clone()],
    };

    // CVE-2024-32002 was rejected from it: it stays live, in its stored form, after the
    // listed entries; CVE-2025-24813 goes.
    let keep = Prune::AbsentExcept(["CVE-2024-32002".to_string()].into());
    let write = kev_write(&*store, keep).await;
    let import = store.import_kev(&newer, &src, &write).await.unwrap();
    let gone = KevTombstone {
        cve_id: "CVE-2025-24813".into(),
        removed_at: utc("2025-03-27T15:00:00Z"),
    };
    assert_eq!(
        import,
        KevImport {
            added: 0,
            kept: 2,
            removed: vec![gone.clone()],
            kept_unlisted: vec!["CVE-2024-32002".into()]
        }
    );
    let view = store.kev().await.unwrap();
    let live = view.catalog.unwrap();
    assert_eq!(
        cve_ids(&live),
        ["CVE-2021-44228", "CVE-2024-0727", "CVE-2024-32002"]
    );
    assert_eq!(live.entries[2], stored.entries[1]);
    assert_eq!(view.tombstones, std::slice::from_ref(&gone));

    // A record without an id was rejected: nothing is tombstoned.
    let only_one = KevCatalog {
        catalog_version: "2025.03.28".into(),
        date_released: utc("2025-03-28T15:00:00Z"),
        entries: vec![stored.entries[0].clone()],
    };
    let write = kev_write(&*store, Prune::Nothing).await;
    let import = store.import_kev(&only_one, &src, &write).await.unwrap();
    assert_eq!(
        import,
        KevImport {
            added: 0,
            kept: 1,
            removed: vec![],
            kept_unlisted: vec!["CVE-2024-0727".into(), "CVE-2024-32002".into()]
        }
    );
    let view = store.kev().await.unwrap();
    assert_eq!(
        cve_ids(&view.catalog.unwrap()),
        ["CVE-2021-44228", "CVE-2024-0727", "CVE-2024-32002"]
    );
    assert_eq!(view.tombstones, [gone]);
}

/// An epss write keeps the scores its prune keeps.
pub async fn an_epss_write_keeps_the_scores_its_prune_keeps(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let src = source("first-epss", "epss_scores-2025-03-15.csv");
    let first = epss_feed();
    import_epss(&*store, &first, &src).await.unwrap();
    let later = |rows: Vec<EpssRow>| EpssFeed {
        model_version: "v2025.03.14".into(),
        score_date: utc("2025-03-16T12:55:00Z"),
        rows,
    };
    let rescored = EpssRow {
        cve: "CVE-2024-6387".into(),
        epss: 0.95,
        percentile: 0.9999,
    };

    // CVE-2024-32002's row was rejected: its stored score stays, after the feed's rows.
    let keep = Prune::AbsentExcept(["CVE-2024-32002".to_string()].into());
    let write = epss_write(&*store, keep).await;
    let feed = later(vec![rescored.clone()]);
    let import = store.import_epss(&feed, &src, &write).await.unwrap();
    assert_eq!(
        import,
        EpssImport {
            written: 1,
            removed: 2,
            kept_unlisted: 1
        }
    );
    let rows = store.epss().await.unwrap().unwrap().feed.rows;
    assert_eq!(rows, [rescored.clone(), first.rows[1].clone()]);

    // A row without an id was rejected: no score is deleted.
    let import_all = epss_write(&*store, Prune::Nothing).await;
    let newest = EpssRow {
        cve: "CVE-2025-0001".into(),
        epss: 0.5,
        percentile: 0.5,
    };
    let feed = later(vec![newest.clone()]);
    let import = store.import_epss(&feed, &src, &import_all).await.unwrap();
    assert_eq!(
        import,
        EpssImport {
            written: 1,
            removed: 0,
            kept_unlisted: 2
        }
    );
    let rows = store.epss().await.unwrap().unwrap().feed.rows;
    assert_eq!(rows, [newest, rescored, first.rows[1].clone()]);
}

/// Epss is replaced whole and a stale write is refused.
pub async fn epss_is_replaced_whole_and_a_stale_write_is_refused(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let first = epss_feed();
    let cves: Vec<&str> = first.rows.iter().map(|r| r.cve.as_str()).collect();
    assert_eq!(
        cves,
        [
            "CVE-1999-0001",
            "CVE-2024-32002",
            "CVE-2023-5678",
            "CVE-2024-6387"
        ]
    );
    let src = source("first-epss", "epss_scores-2025-03-15.csv");
    assert_eq!(
        import_epss(&*store, &first, &src).await.unwrap(),
        EpssImport {
            written: 4,
            removed: 0,
            kept_unlisted: 0
        }
    );
    assert_eq!(
        store.epss().await.unwrap(),
        Some(EpssView {
            feed: first.clone(),
            source: src.clone()
        })
    );

    let second = EpssFeed {
        model_version: "v2025.03.14".into(),
        score_date: utc("2025-03-16T12:55:00Z"),
        rows: vec![
            EpssRow {
                cve: "CVE-2024-6387".into(),
                epss: 0.91,
                percentile: 0.9991,
            },
            EpssRow {
                cve: "CVE-2024-0727".into(),
                epss: 0.0,
                percentile: 1.0,
            },
        ],
    };
    let src2 = source("first-epss", "epss_scores-2025-03-16.csv");
    let prepared = epss_write(&*store, Prune::Absent).await;
    assert_eq!(
        import_epss(&*store, &second, &src2).await.unwrap(),
        EpssImport {
            written: 2,
            removed: 3,
            kept_unlisted: 0
        }
    );
    let after_second = Some(EpssView {
        feed: second.clone(),
        source: src2.clone(),
    });
    assert_eq!(store.epss().await.unwrap(), after_second);
    assert_eq!(store.epss_stamp().await.unwrap().unwrap().entries, 2);

    // A write prepared before the second feed landed is refused.
    let err = store
        .import_epss(&first, &src, &prepared)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "EPSS feed was changed by another import (expected 2025-03-15T12:55:00Z with 4 \
         entries, found 2025-03-16T12:55:00Z with 2 entries): not imported"
    );
    assert!(matches!(err, StoreError::FeedChanged { .. }), "{err}");
    assert_eq!(store.epss().await.unwrap(), after_second);

    // The same day again is accepted.
    assert_eq!(
        import_epss(&*store, &second, &src2).await.unwrap().written,
        2
    );
    assert_eq!(store.epss().await.unwrap(), after_second);
}

/// Epss values the store cannot hold are refused.
pub async fn epss_values_the_store_cannot_hold_are_refused(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let src = source("first-epss", "e.csv");
    let mut nan = epss_feed();
    nan.rows[2].epss = f64::NAN;
    assert_eq!(
        import_epss(&*store, &nan, &src)
            .await
            .unwrap_err()
            .to_string(),
        "invalid input for the store: EPSS score of CVE-2023-5678 is NaN, not a probability \
         in [0, 1]"
    );
    let mut twice = epss_feed();
    twice.rows.push(twice.rows[0].clone());
    assert_eq!(
        import_epss(&*store, &twice, &src)
            .await
            .unwrap_err()
            .to_string(),
        "invalid input for the store: EPSS feed v2025.03.14 scores CVE-1999-0001 twice"
    );
    assert_eq!(store.epss().await.unwrap(), None);
}
