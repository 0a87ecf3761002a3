//! The store conformance suite: one set of cases, written against the [`Store`] trait, that
//! every backend must pass (enabled by the `conformance` feature).
//!
//! A backend implements [`Backend`] (how to get a fresh, empty store, and how a second
//! runner opens the same one) and runs every case as its own test with
//! [`store_conformance_tests!`](crate::store_conformance_tests):
//!
//! ```ignore
//! mod conformance {
//!     patchwave_store::store_conformance_tests!(super::MyBackend::new());
//! }
//! ```
//!
//! The cases check what the trait promises: recorded scans and staleness, superseded
//! attempts, shared inventories and removal, the change journal, advisories, the KEV and EPSS
//! feeds and their optimistic writes, rollouts with optimistic revisions and their inbox, and
//! the audit anchor, with the exact errors and messages callers depend on. How a backend lays
//! its tables out (rows counted, migrations, file permissions) is its own tests' business.
//!
//! Cases panic on the first failed assertion, like any test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;

use crate::Store;

pub mod audit;
pub mod feeds;
pub mod fixtures;
pub mod hosts;
pub mod rollouts;

/// A store under test.
pub struct Subject {
    /// The store, empty and migrated.
    pub store: Arc<dyn Store>,
    /// Where its data is, in the backend's own terms (a file path, a database name), for
    /// [`Backend::another_runner`].
    pub location: String,
}

/// How the suite gets stores of the backend under test.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A new, empty, migrated store that shares nothing with any other.
    async fn fresh(&self) -> Subject;

    /// A second handle on `subject`'s data, opened as another runner (another process) would
    /// open it: with its own connections, so optimistic concurrency is between real writers.
    async fn another_runner(&self, subject: &Subject) -> Arc<dyn Store>;
}

/// One `#[tokio::test]` per conformance case, each named after its case, running it on the
/// [`Backend`] that `$backend` (evaluated afresh for every test) makes. Invoke it in a module
/// of its own; the invoking crate needs `tokio` with its `macros` and `rt-multi-thread`
/// features.
#[macro_export]
macro_rules! store_conformance_tests {
    ($backend:expr) => {
        $crate::store_conformance_tests!(@cases $backend;
            hosts::successful_scan_fills_the_summary,
            hosts::never_scanned_host_is_unknown,
            hosts::same_inventory_twice_is_one_snapshot_seen_again,
            hosts::changed_inventory_starts_a_new_snapshot,
            hosts::failure_after_success_keeps_inventory_and_goes_stale,
            hosts::changes_are_found_by_their_rollout,
            hosts::a_rollback_names_the_apply_it_undoes,
            hosts::a_change_after_the_last_scan_shows_as_changed_until_the_next_scan,
            hosts::late_report_of_an_older_attempt_changes_only_history,
            hosts::reregistering_updates_identity_and_keeps_history,
            hosts::hosts_share_inventories_and_removal_frees_only_unshared_ones,
            hosts::a_removed_host_registered_again_starts_from_nothing,
            hosts::large_inventory_round_trips_exactly,
            hosts::concurrent_scans_all_land,
            hosts::an_unregistered_host_is_refused,
            hosts::fleet_hosts_show_identity_facts_and_shared_inventories,
            hosts::inventory_packages_come_back_in_package_order,
            feeds::advisories_round_trip_sorted_by_id,
            feeds::newer_modified_wins_and_an_older_one_never_rolls_back,
            feeds::one_id_twice_in_a_batch_keeps_the_newest,
            feeds::an_advisory_without_an_id_is_refused_and_nothing_is_written,
            feeds::kev_replacement_keeps_tombstones,
            feeds::a_kev_write_prepared_against_another_stored_catalogue_changes_nothing,
            feeds::a_kev_catalogue_listing_a_cve_twice_is_refused,
            feeds::a_kev_write_keeps_live_what_its_prune_keeps,
            feeds::an_epss_write_keeps_the_scores_its_prune_keeps,
            feeds::epss_is_replaced_whole_and_a_stale_write_is_refused,
            feeds::epss_values_the_store_cannot_hold_are_refused,
            rollouts::a_rollout_round_trips_its_state_as_json,
            rollouts::creating_a_rollout_twice_is_refused_and_keeps_the_first,
            rollouts::empty_rollout_ids_and_statuses_are_refused,
            rollouts::saving_with_the_loaded_revision_increments_it,
            rollouts::a_stale_revision_conflicts_and_writes_nothing,
            rollouts::two_runners_on_one_store_cannot_both_save_the_same_revision,
            rollouts::saving_consumes_the_inbox_up_to_the_given_sequence,
            rollouts::consuming_a_sequence_of_another_rollout_is_refused_and_writes_nothing,
            rollouts::unknown_rollouts_are_refused,
            rollouts::rollouts_are_listed_newest_first_then_by_id,
            audit::the_audit_anchor_starts_empty_and_only_moves_forward,
            audit::two_runners_on_one_store_keep_the_later_audit_head,
            audit::an_audit_head_no_line_can_have_is_refused,
        );
    };
    (@cases $backend:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::conformance::$module::$case(&$backend).await;
            }
        )*
    };
}
