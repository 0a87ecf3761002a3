//! The audit log's anchor: it starts empty, only moves forward, and an operator may reset it.

use patchwave_core::audit::AuditHead;

use super::fixtures::*;
use super::Backend;
use crate::StoreError;

/// The audit anchor starts empty and only moves forward.
pub async fn the_audit_anchor_starts_empty_and_only_moves_forward(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    assert_eq!(store.audit_anchor().await.unwrap(), None);
    assert!(store
        .advance_audit_anchor(&head(3, 'a'), t(0))
        .await
        .unwrap());
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(3, 'a')));
    // The same line again, or an earlier one (a runner whose later line was recorded
    // first), changes nothing.
    assert!(!store
        .advance_audit_anchor(&head(3, 'b'), t(1))
        .await
        .unwrap());
    assert!(!store
        .advance_audit_anchor(&head(2, 'c'), t(1))
        .await
        .unwrap());
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(3, 'a')));
    assert!(store
        .advance_audit_anchor(&head(9, 'd'), t(2))
        .await
        .unwrap());
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(9, 'd')));
    // An operator re-anchoring moves it anywhere, also back.
    store.reset_audit_anchor(&head(4, 'e'), t(3)).await.unwrap();
    assert_eq!(store.audit_anchor().await.unwrap(), Some(head(4, 'e')));
}

/// Two runners on one store keep the later audit head.
pub async fn two_runners_on_one_store_keep_the_later_audit_head(backend: &dyn Backend) {
    let subject = backend.fresh().await;
    let a = &subject.store;
    let b = backend.another_runner(&subject).await;
    assert!(a.advance_audit_anchor(&head(10, 'a'), t(0)).await.unwrap());
    assert!(!b.advance_audit_anchor(&head(8, 'b'), t(1)).await.unwrap());
    assert!(b.advance_audit_anchor(&head(11, 'b'), t(1)).await.unwrap());
    assert_eq!(a.audit_anchor().await.unwrap(), Some(head(11, 'b')));
}

/// An audit head no line can have is refused.
pub async fn an_audit_head_no_line_can_have_is_refused(backend: &dyn Backend) {
    let store = backend.fresh().await.store;
    for bad in [
        head(0, 'a'),
        AuditHead {
            seq: 1,
            hash: "A".repeat(64),
        },
        AuditHead {
            seq: 1,
            hash: "a".repeat(63),
        },
        AuditHead {
            seq: u64::MAX,
            hash: "a".repeat(64),
        },
    ] {
        let err = store.advance_audit_anchor(&bad, t(0)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
        let err = store.reset_audit_anchor(&bad, t(0)).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidInput { .. }), "{err}");
    }
    assert_eq!(store.audit_anchor().await.unwrap(), None);
}
