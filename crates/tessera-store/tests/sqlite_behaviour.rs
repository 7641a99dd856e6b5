//! The storage behaviour suite (`tessera_core::suite`) against SQLite: one test per check,
//! each on its own fresh database file, and the whole suite once more on a single store.

use std::error::Error;
use std::sync::Arc;

use tempfile::TempDir;
use tessera_core::Store;
use tessera_store::StoreOptions;

type TestResult = Result<(), Box<dyn Error>>;

async fn fresh_store(dir: &TempDir) -> Result<Arc<dyn Store>, Box<dyn Error>> {
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    Ok(tessera_store::open(&url, &StoreOptions::default()).await?)
}

macro_rules! suite_tests {
    ($($check:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $check() -> TestResult {
            let dir = TempDir::new()?;
            let store = fresh_store(&dir).await?;
            tessera_core::suite::$check(store.as_ref()).await?;
            store.close().await;
            Ok(())
        }
    )+};
}

suite_tests!(
    clients_round_trip,
    duplicate_client_id_conflicts,
    client_secret_and_disabled_updates,
    shoppers_round_trip,
    duplicate_shopper_external_reference_conflicts,
    duplicate_shopper_username_conflicts,
    duplicate_shopper_id_conflicts,
    shoppers_are_found_by_username,
    session_and_tokens_round_trip,
    insert_session_is_all_or_nothing,
    unknown_hash_is_not_found,
    end_session_if_newest_ends_once,
    end_session_if_newest_needs_the_newest_token,
    revoke_token_revokes_once,
    touch_session_only_moves_forward,
    revoke_session_revokes_once,
    rotate_refresh_rotates_once,
    rotate_refresh_refuses_dead_tokens,
    rotate_refresh_is_all_or_nothing,
    session_tokens_round_trip,
    insert_bound_session_binds_once,
    add_session_tokens_needs_a_live_session,
    upgrade_session_upgrades_anonymous_sessions_once,
    expired_session_tokens_are_deleted,
    shopper_watermarks_are_read_with_lookups_and_only_move_forward,
    client_watermarks_are_read_with_lookups_and_only_move_forward,
    tidy_up_marks_covered_sessions_in_batches,
    session_by_id_reads_a_session_with_its_client,
    shopper_sessions_lists_sessions_that_may_be_live,
    set_session_cart_sets_and_clears,
    delete_expired_tokens_deletes_only_expired_access_tokens,
    delete_dead_sessions_deletes_sessions_with_their_tokens,
);

#[tokio::test]
async fn the_whole_suite_passes_on_one_store() -> TestResult {
    let dir = TempDir::new()?;
    let store = fresh_store(&dir).await?;
    tessera_core::suite::run_all(store.as_ref()).await?;
    store.close().await;
    Ok(())
}
