//! The one list of the behaviour suite's checks (`tessera_core::suite`), shared by every
//! backend's test file, so each backend runs every check; a test below fails when a check
//! is added to the suite but not to this list.

/// Calls `$callback!` with the name of every check in `tessera_core::suite`.
macro_rules! for_each_suite_check {
    ($callback:ident) => {
        $callback! {
            clients_round_trip,
            resource_server_flag_round_trips,
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
            exchange_refresh_rotates_then_detects_reuse,
            exchange_refresh_refuses_without_writing,
            exchange_refresh_is_all_or_nothing,
            log_out_ends_the_token_or_its_whole_session,
            log_out_refuses_without_writing,
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
            sweep_sessions_deletes_only_dead_sessions,
            delete_revoked_sessions_deletes_only_revoked_sessions,
            sweep_tokens_deletes_only_dead_tokens,
            migration_exports_what_should_move_in_key_order,
            migration_imports_rows_as_they_are_once,
        }
    };
}

/// The listed names, as strings.
macro_rules! names {
    ($($check:ident),+ $(,)?) => {
        &[$(stringify!($check)),+]
    };
}

const LISTED: &[&str] = for_each_suite_check!(names);

/// Every `pub async fn` of the suite's source files but `run_all`.
fn checks_in_the_suite() -> std::io::Result<Vec<String>> {
    let core = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tessera-core/src");
    let mut files = vec![core.join("suite.rs")];
    for entry in std::fs::read_dir(core.join("suite"))? {
        files.push(entry?.path());
    }
    let mut checks = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)?;
        for rest in text.split("pub async fn ").skip(1) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name != "run_all" {
                checks.push(name);
            }
        }
    }
    Ok(checks)
}

#[test]
fn every_check_of_the_suite_is_listed() -> std::io::Result<()> {
    let missing: Vec<String> = checks_in_the_suite()?
        .into_iter()
        .filter(|check| !LISTED.contains(&check.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "add these checks to tests/suite_checks/mod.rs: {missing:?}"
    );
    Ok(())
}
