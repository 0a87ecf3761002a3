//! Rollouts: their state as JSON, optimistic revisions between runners, and the inbox of
//! operator observations consumed by the save that took them into account.

use super::fixtures::*;
use super::Backend;
use crate::StoreError;

/// A rollout round trips its state as json.
pub async fn a_rollout_round_trips_its_state_as_json(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let state = rollout_state("canary", &[]);
    store
        .create_rollout("r1", "pending", &state, t(0))
        .await
        .unwrap();
    assert_eq!(
        store.rollout("r1").await.unwrap(),
        Some(crate::RolloutRecord {
            id: "r1".into(),
            revision: 1,
            status: "pending".into(),
            state,
            inbox: vec![],
            created_at: t(0),
            updated_at: t(0),
        })
    );
    assert_eq!(store.rollout("r2").await.unwrap(), None);
}

/// Creating a rollout twice is refused and keeps the first.
pub async fn creating_a_rollout_twice_is_refused_and_keeps_the_first(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let first = rollout_state("canary", &[]);
    store
        .create_rollout("r1", "pending", &first, t(0))
        .await
        .unwrap();
    let err = store
        .create_rollout("r1", "running", &rollout_state("wave-1", &[]), t(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `r1` already exists"
    );
    let stored = store.rollout("r1").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.revision,
            stored.status.as_str(),
            stored.state,
            stored.created_at
        ),
        (1, "pending", first, t(0))
    );
}

/// Empty rollout ids and statuses are refused.
pub async fn empty_rollout_ids_and_statuses_are_refused(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let state = rollout_state("canary", &[]);
    let err = store
        .create_rollout("", "pending", &state, t(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: a rollout id is empty"
    );
    let err = store
        .create_rollout("r1", "", &state, t(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `r1` is saved with an empty status"
    );
    assert_eq!(store.rollouts().await.unwrap(), vec![]);
}

/// Saving with the loaded revision increments it.
pub async fn saving_with_the_loaded_revision_increments_it(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    store
        .create_rollout("r1", "pending", &rollout_state("canary", &[]), t(0))
        .await
        .unwrap();
    let canary_done = rollout_state("wave-1", &["canary"]);
    let revision = store
        .save_rollout("r1", 1, "running", &canary_done, None, t(10))
        .await
        .unwrap();
    assert_eq!(revision, 2);
    let wave_done = rollout_state("wave-2", &["canary", "wave-1"]);
    let revision = store
        .save_rollout("r1", 2, "waiting", &wave_done, None, t(20))
        .await
        .unwrap();
    assert_eq!(revision, 3);
    assert_eq!(
        store.rollout("r1").await.unwrap(),
        Some(crate::RolloutRecord {
            id: "r1".into(),
            revision: 3,
            status: "waiting".into(),
            state: wave_done,
            inbox: vec![],
            created_at: t(0),
            updated_at: t(20),
        })
    );
}

/// A stale revision conflicts and writes nothing.
pub async fn a_stale_revision_conflicts_and_writes_nothing(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    store
        .create_rollout("r1", "pending", &rollout_state("canary", &[]), t(0))
        .await
        .unwrap();
    let seq = store
        .post_rollout_observation("r1", &approve("canary"), t(1))
        .await
        .unwrap();
    store
        .save_rollout(
            "r1",
            1,
            "running",
            &rollout_state("canary", &[]),
            None,
            t(2),
        )
        .await
        .unwrap();
    let before = store.rollout("r1").await.unwrap().unwrap();
    assert_eq!(before.inbox, vec![(seq, approve("canary"))]);

    let err = store
        .save_rollout(
            "r1",
            1,
            "done",
            &rollout_state("done", &["canary"]),
            Some(seq),
            t(3),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Conflict { what, expected: 1, found: 2 } if what == "rollout r1"
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "rollout r1 was changed by another runner (expected revision 1, found 2)"
    );
    assert_eq!(store.rollout("r1").await.unwrap().unwrap(), before);
}

/// Two runners on one store cannot both save the same revision.
pub async fn two_runners_on_one_store_cannot_both_save_the_same_revision(backend: &dyn Backend) {
    let subject = backend.fresh().await;
    let first = &subject.store;
    let second = backend.another_runner(&subject).await;
    first
        .create_rollout("r1", "pending", &rollout_state("canary", &[]), t(0))
        .await
        .unwrap();
    let loaded_by_first = first.rollout("r1").await.unwrap().unwrap();
    let loaded_by_second = second.rollout("r1").await.unwrap().unwrap();
    assert_eq!(loaded_by_first, loaded_by_second);

    let winner = rollout_state("wave-1", &["canary"]);
    let revision = second
        .save_rollout(
            "r1",
            loaded_by_second.revision,
            "running",
            &winner,
            None,
            t(1),
        )
        .await
        .unwrap();
    assert_eq!(revision, 2);
    let err = first
        .save_rollout(
            "r1",
            loaded_by_first.revision,
            "failed",
            &rollout_state("canary", &[]),
            None,
            t(2),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let stored = first.rollout("r1").await.unwrap().unwrap();
    assert_eq!(
        (stored.revision, stored.status.as_str(), stored.state),
        (2, "running", winner)
    );
}

/// Saving consumes the inbox up to the given sequence.
pub async fn saving_consumes_the_inbox_up_to_the_given_sequence(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    for id in ["r1", "r2"] {
        store
            .create_rollout(id, "pending", &rollout_state("canary", &[]), t(0))
            .await
            .unwrap();
    }
    let start = serde_json::json!("start");
    let first = store
        .post_rollout_observation("r1", &start, t(1))
        .await
        .unwrap();
    let other = store
        .post_rollout_observation("r2", &start, t(2))
        .await
        .unwrap();
    let second = store
        .post_rollout_observation("r1", &approve("canary"), t(3))
        .await
        .unwrap();
    assert_eq!((first, other, second), (1, 2, 3));
    assert_eq!(
        store.rollout("r1").await.unwrap().unwrap().inbox,
        vec![(first, start.clone()), (second, approve("canary"))]
    );

    let revision = store
        .save_rollout(
            "r1",
            1,
            "running",
            &rollout_state("canary", &[]),
            Some(first),
            t(4),
        )
        .await
        .unwrap();
    assert_eq!(revision, 2);
    assert_eq!(
        store.rollout("r1").await.unwrap().unwrap().inbox,
        vec![(second, approve("canary"))]
    );
    // A save that consumed nothing leaves the inbox alone.
    store
        .save_rollout(
            "r1",
            2,
            "running",
            &rollout_state("canary", &[]),
            None,
            t(5),
        )
        .await
        .unwrap();
    assert_eq!(
        store.rollout("r1").await.unwrap().unwrap().inbox,
        vec![(second, approve("canary"))]
    );
    // Consuming up to r1's last sequence never touches r2's observation in between.
    store
        .save_rollout(
            "r1",
            3,
            "running",
            &rollout_state("wave-1", &["canary"]),
            Some(second),
            t(6),
        )
        .await
        .unwrap();
    assert_eq!(store.rollout("r1").await.unwrap().unwrap().inbox, vec![]);
    assert_eq!(
        store.rollout("r2").await.unwrap().unwrap().inbox,
        vec![(other, start)]
    );
}

/// Consuming a sequence of another rollout is refused and writes nothing.
pub async fn consuming_a_sequence_of_another_rollout_is_refused_and_writes_nothing(
    backend: &dyn Backend,
) {
    let store = backend.fresh().await.store;
    for id in ["r1", "r2"] {
        store
            .create_rollout(id, "pending", &rollout_state("canary", &[]), t(0))
            .await
            .unwrap();
    }
    let mine = store
        .post_rollout_observation("r1", &serde_json::json!("start"), t(1))
        .await
        .unwrap();
    let theirs = store
        .post_rollout_observation("r2", &serde_json::json!("abort"), t(2))
        .await
        .unwrap();
    let before = store.rollout("r1").await.unwrap().unwrap();
    for consumed in [theirs, theirs + 1, -1] {
        let err = store
            .save_rollout(
                "r1",
                1,
                "running",
                &rollout_state("wave-1", &["canary"]),
                Some(consumed),
                t(3),
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid input for the store: inbox sequence {consumed} is not an observation \
                 of rollout `r1`"
            )
        );
    }
    assert_eq!(store.rollout("r1").await.unwrap().unwrap(), before);
    assert_eq!(before.inbox, vec![(mine, serde_json::json!("start"))]);
}

/// Unknown rollouts are refused.
pub async fn unknown_rollouts_are_refused(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    let err = store
        .post_rollout_observation("ghost", &serde_json::json!("start"), t(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `ghost` does not exist"
    );
    let err = store
        .save_rollout(
            "ghost",
            1,
            "running",
            &rollout_state("canary", &[]),
            None,
            t(0),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid input for the store: rollout `ghost` does not exist"
    );
    assert_eq!(store.rollouts().await.unwrap(), vec![]);
}

/// Rollouts are listed newest first then by id.
pub async fn rollouts_are_listed_newest_first_then_by_id(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    assert_eq!(store.rollouts().await.unwrap(), vec![]);
    let state = rollout_state("canary", &[]);
    for (id, minute) in [("b", 10), ("old", 0), ("c", 10), ("a", 10)] {
        store
            .create_rollout(id, "pending", &state, t(minute))
            .await
            .unwrap();
    }
    // Saving changes `updated_at` and the status, not the order.
    store
        .save_rollout("old", 1, "running", &state, None, t(30))
        .await
        .unwrap();
    let row = |id: &str, status: &str, created: i64, updated: i64| crate::RolloutSummaryRow {
        id: id.into(),
        status: status.into(),
        created_at: t(created),
        updated_at: t(updated),
    };
    assert_eq!(
        store.rollouts().await.unwrap(),
        vec![
            row("a", "pending", 10, 10),
            row("b", "pending", 10, 10),
            row("c", "pending", 10, 10),
            row("old", "running", 0, 30),
        ]
    );
}
