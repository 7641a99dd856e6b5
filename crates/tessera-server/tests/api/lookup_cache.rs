//! The lookup cache (RELIABILITY P5): a token looked up once is answered from memory, and
//! every revocation, by this node or by another process on the same SQLite file, is obeyed
//! by the very next lookup.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use reqwest::Method;
use tessera_core::admin::{Admin, NewClient};
use tessera_core::client::{Grant, GrantSet};
use tessera_core::session_admin::SessionOwner;
use tessera_core::store::Store;
use tessera_store::StoreOptions;

use crate::helpers::*;
use crate::token_endpoint::urlencode;

/// Whether this app's store caches lookups: SQLite does, PostgreSQL stays strict.
pub(crate) fn caches_lookups(app: &TestApp) -> bool {
    app.store.change_signal().is_some()
}

/// A second store on the app's SQLite file, standing for another process.
async fn another_process(app: &TestApp) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> {
    let url = format!("sqlite://{}", app.database.display());
    Ok(tessera_store::open(&url, &StoreOptions::default()).await?)
}

/// Looks `access` up twice and, where lookups are cached, checks that the second answer
/// came from the cache: what follows then tests a cached token.
async fn cache(app: &TestApp, access: &str) {
    assert_eq!(app.get_session(access).await.status, 200, "first lookup");
    let before = app.lookups.load(Ordering::SeqCst);
    assert_eq!(app.get_session(access).await.status, 200, "second lookup");
    if caches_lookups(app) {
        assert_eq!(
            app.lookups.load(Ordering::SeqCst),
            before,
            "the second lookup must come from the cache"
        );
    }
}

fn assert_refused(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.text);
    assert_eq!(answer.dr_code(), Some("invalid_token"), "{what}");
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Answer {
    app.token(&format!(
        "grant_type=refresh_token&refresh_token={}",
        urlencode(refresh_token)
    ))
    .await
}

/// Rotates `refresh_token`: the new (access, refresh) pair of the same session.
async fn rotate(app: &TestApp, refresh_token: &str) -> (String, String) {
    let answer = refresh(app, refresh_token).await;
    assert_eq!(answer.status, 200, "refresh: {}", answer.text);
    (answer.str("access_token"), answer.str("refresh_token"))
}

#[tokio::test]
async fn a_second_lookup_of_a_live_token_does_not_reach_the_store() {
    let app = spawn_app().await;
    if !caches_lookups(&app) {
        return;
    }
    let (access, _) = app.anonymous_tokens().await;
    let before = app.lookups.load(Ordering::SeqCst);
    let first = app.get_session(&access).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(app.lookups.load(Ordering::SeqCst), before + 1);
    for _ in 0..3 {
        let again = app.get_session(&access).await;
        assert_eq!(again.body, first.body);
    }
    assert_eq!(
        app.introspect(&app.client, &access).await.body["active"],
        true
    );
    assert_eq!(app.lookups.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn without_entries_every_lookup_reaches_the_store() {
    let app = spawn_app_with_config(tessera_core::ServiceConfig {
        lookup_cache_entries: 0,
        ..service_config()
    })
    .await;
    let (access, _) = app.anonymous_tokens().await;
    let before = app.lookups.load(Ordering::SeqCst);
    assert_eq!(app.get_session(&access).await.status, 200);
    assert_eq!(app.get_session(&access).await.status, 200);
    assert_eq!(app.lookups.load(Ordering::SeqCst), before + 2);
}

#[tokio::test]
async fn a_cached_token_is_refused_right_after_its_logout() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    cache(&app, &access).await;
    assert_eq!(
        app.introspect(&app.client, &access).await.body["active"],
        true
    );
    assert_eq!(app.delete_session(&access).await.status, 200);
    assert_refused(&app.get_session(&access).await, "after its logout");
    assert_eq!(
        app.introspect(&app.client, &access).await.body,
        serde_json::json!({"active": false})
    );
    assert_eq!(
        refresh(&app, &refresh_token).await.error_code(),
        Some("invalid_grant")
    );
}

#[tokio::test]
async fn a_cached_token_is_refused_after_the_logout_of_another_token_of_its_session() {
    let app = spawn_app().await;
    let (older, refresh_token) = app.anonymous_tokens().await;
    cache(&app, &older).await;
    let (newest, _) = rotate(&app, &refresh_token).await;
    cache(&app, &newest).await;
    // The older token still works until the session ends.
    assert_eq!(app.get_session(&older).await.status, 200);
    assert_eq!(app.delete_session(&newest).await.status, 200);
    assert_refused(&app.get_session(&older).await, "the older token");
    assert_refused(&app.get_session(&newest).await, "the logged-out token");
}

#[tokio::test]
async fn a_cached_older_token_is_refused_after_its_own_revocation_and_the_newest_works() {
    let app = spawn_app().await;
    let (older, refresh_token) = app.anonymous_tokens().await;
    cache(&app, &older).await;
    let (newest, _) = rotate(&app, &refresh_token).await;
    cache(&app, &newest).await;
    // Not the newest: only this token dies (API.md §4).
    assert_eq!(app.delete_session(&older).await.status, 200);
    assert_refused(&app.get_session(&older).await, "the revoked older token");
    assert_eq!(app.get_session(&newest).await.status, 200);
}

#[tokio::test]
async fn a_cached_token_is_refused_after_rfc7009_revocation() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    cache(&app, &access).await;
    assert_eq!(app.revoke(&app.client, &access).await.status, 200);
    assert_refused(&app.get_session(&access).await, "revoked access token");

    // Revoking the refresh token ends every access token of its session.
    let (access, refresh_token) = app.anonymous_tokens().await;
    cache(&app, &access).await;
    assert_eq!(app.revoke(&app.client, &refresh_token).await.status, 200);
    assert_refused(&app.get_session(&access).await, "its refresh token revoked");
}

#[tokio::test]
async fn a_cached_token_is_refused_after_its_refresh_token_is_reused() {
    let app = spawn_app().await;
    let (older, refresh_token) = app.anonymous_tokens().await;
    let (newest, _) = rotate(&app, &refresh_token).await;
    cache(&app, &older).await;
    cache(&app, &newest).await;
    // Reuse of a consumed refresh token ends the whole session.
    assert_eq!(
        refresh(&app, &refresh_token).await.error_code(),
        Some("invalid_grant")
    );
    assert_refused(&app.get_session(&older).await, "older token after reuse");
    assert_refused(&app.get_session(&newest).await, "newest token after reuse");
}

#[tokio::test]
async fn cached_tokens_are_refused_after_a_shoppers_logout_everywhere() {
    let app = spawn_app().await;
    let ann = app.shopper("ext-ann").await;
    let grant = app
        .token("grant_type=client_credentials&dr_external_reference_id=ext-ann")
        .await;
    assert_eq!(grant.status, 200, "{}", grant.text);
    let access = grant.str("access_token");
    let (bystander, _) = app.anonymous_tokens().await;
    cache(&app, &access).await;
    cache(&app, &bystander).await;

    let revoked = app
        .request(
            app.http
                .request(
                    Method::POST,
                    format!(
                        "{}/admin/v1/shoppers/{ann}/sessions/revoke",
                        app.admin_address
                    ),
                )
                .bearer_auth(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_refused(&app.get_session(&access).await, "after logout everywhere");
    assert_eq!(app.get_session(&bystander).await.status, 200);
}

#[tokio::test]
async fn cached_tokens_are_refused_once_their_client_is_disabled() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    cache(&app, &access).await;
    assert!(
        app.admin
            .disable_client(&app.client.id)
            .await
            .is_ok_and(|found| found)
    );
    assert_refused(&app.get_session(&access).await, "disabled client");
}

#[tokio::test]
async fn a_write_by_another_process_is_seen_by_the_next_lookup() -> TestResult {
    let app = spawn_app().await;
    if !caches_lookups(&app) {
        return Ok(());
    }
    let other = another_process(&app).await?;
    let now = app.clock_now();

    let (ended, _) = app.anonymous_tokens().await;
    let (bystander, _) = app.anonymous_tokens().await;
    cache(&app, &ended).await;
    cache(&app, &bystander).await;
    let session_id = app.get_session(&ended).await.str("sessionId");
    assert!(other.revoke_session(&session_id, now).await?);
    app.foreign_writes.fetch_add(1, Ordering::SeqCst);
    assert_refused(&app.get_session(&ended).await, "session ended elsewhere");
    assert_eq!(app.get_session(&bystander).await.status, 200);

    let (watermarked, _) = app.anonymous_tokens().await;
    cache(&app, &watermarked).await;
    let owner = SessionOwner::Client(app.client.id.clone());
    assert!(other.revoke_sessions_before(&owner, now).await?);
    app.foreign_writes.fetch_add(1, Ordering::SeqCst);
    assert_refused(
        &app.get_session(&watermarked).await,
        "watermark set elsewhere",
    );
    other.close().await;
    Ok(())
}

/// An introspection or a revocation reads the cache twice (the client, then the token),
/// and asks once whether another process wrote, before the first read: a write
/// acknowledged elsewhere before the request is still seen.
#[tokio::test]
async fn introspection_and_revocation_ask_once_about_other_processes_writes() -> TestResult {
    let app = spawn_app().await;
    if !caches_lookups(&app) {
        return Ok(());
    }
    let other = another_process(&app).await?;
    let (access, _) = app.anonymous_tokens().await;
    let (revoked, _) = app.anonymous_tokens().await;
    for token in [&access, &revoked] {
        assert_eq!(
            app.introspect(&app.client, token).await.body["active"],
            true
        );
    }
    let looks = |app: &TestApp| app.change_looks.load(Ordering::SeqCst);

    let before = looks(&app);
    assert_eq!(
        app.introspect(&app.client, &access).await.body["active"],
        true
    );
    assert_eq!(looks(&app) - before, 1, "one look per introspection");

    // Revoked by another process: the introspection's one look sees it.
    let session_id = app.get_session(&revoked).await.str("sessionId");
    assert!(other.revoke_session(&session_id, app.clock_now()).await?);
    app.foreign_writes.fetch_add(1, Ordering::SeqCst);
    let before = looks(&app);
    assert_eq!(
        app.introspect(&app.client, &revoked).await.body["active"],
        false
    );
    assert_eq!(looks(&app) - before, 1, "one look per introspection");

    let before = looks(&app);
    assert_eq!(app.revoke(&app.client, &access).await.status, 200);
    assert_eq!(looks(&app) - before, 1, "one look per revocation");
    assert_refused(&app.get_session(&access).await, "revoked access token");

    // Outside those two, every cached read looks: a lookup is one read and one look.
    let (lookup, _) = app.anonymous_tokens().await;
    cache(&app, &lookup).await;
    let before = looks(&app);
    assert_eq!(app.get_session(&lookup).await.status, 200);
    assert_eq!(looks(&app) - before, 1, "one look per session lookup");
    other.close().await;
    Ok(())
}

/// Many lookups of one token while it is revoked: none that starts after the revocation
/// was answered may succeed, whichever way it is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lookup_started_after_a_revocation_succeeds() {
    const READERS: usize = 8;
    const LOOKUPS_BEFORE: usize = 40;
    const LOOKUPS_AFTER_PER_READER: usize = 15;
    let app = Arc::new(spawn_app().await);
    for logout in [true, false] {
        let (older, refresh_token) = app.anonymous_tokens().await;
        let (newest, _) = rotate(&app, &refresh_token).await;
        // A logout ends the session by its newest token; otherwise the older token is
        // revoked alone.
        let target = if logout {
            newest.clone()
        } else {
            older.clone()
        };
        cache(&app, &target).await;

        let revoked = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let mut readers = Vec::new();
        for _ in 0..READERS {
            let (app, target) = (Arc::clone(&app), target.clone());
            let (revoked, started) = (Arc::clone(&revoked), Arc::clone(&started));
            readers.push(tokio::spawn(async move {
                let mut after = 0;
                let mut violations = Vec::new();
                while after < LOOKUPS_AFTER_PER_READER {
                    let started_after = revoked.load(Ordering::SeqCst);
                    started.fetch_add(1, Ordering::SeqCst);
                    let answer = app.get_session(&target).await;
                    if started_after {
                        after += 1;
                        if answer.status != 401 {
                            violations.push(answer.status);
                        }
                    } else {
                        assert!(
                            answer.status == 200 || answer.status == 401,
                            "{}",
                            answer.text
                        );
                    }
                }
                violations
            }));
        }
        while started.load(Ordering::SeqCst) < LOOKUPS_BEFORE {
            tokio::task::yield_now().await;
        }
        assert_eq!(app.delete_session(&target).await.status, 200);
        revoked.store(true, Ordering::SeqCst);
        for reader in readers {
            let violations = reader.await.unwrap_or_else(|e| panic!("reader: {e}"));
            assert!(
                violations.is_empty(),
                "lookups started after the revocation answered {violations:?} (logout: {logout})"
            );
        }
        let other = if logout { &older } else { &newest };
        let expected = if logout { 401 } else { 200 };
        assert_eq!(app.get_session(other).await.status, expected);
    }
}

#[tokio::test]
async fn a_read_that_a_revocation_overtakes_is_never_served_afterwards() -> TestResult {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let session_id = app.get_session(&access).await.str("sessionId");
    let app = Arc::new(app);
    // Another process's write empties the cache, so the next lookup reads the store.
    app.foreign_writes.fetch_add(1, Ordering::SeqCst);
    let gate = app.lookup_gate.write().await;
    let before = app.lookups.load(Ordering::SeqCst);
    let stale_read = tokio::spawn({
        let (app, access) = (Arc::clone(&app), access.clone());
        async move { app.get_session(&access).await.status }
    });
    // The lookup has read the live session from the store and now waits with it.
    while app.lookups.load(Ordering::SeqCst) == before {
        tokio::task::yield_now().await;
    }
    assert!(app.session_admin.revoke_session(&session_id).await?);
    drop(gate);
    // It started before the revocation was answered: either answer is allowed for it.
    let status = stale_read.await?;
    assert!(status == 200 || status == 401, "{status}");
    assert_refused(&app.get_session(&access).await, "after the revocation");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lookups_of_a_session_due_a_last_accessed_write_start_only_one() {
    let app = Arc::new(spawn_app().await);
    let (access, _) = app.anonymous_tokens().await;
    cache(&app, &access).await;
    app.clock.advance_seconds(61);
    let due = app.clock_now().to_iso8601();
    let concurrent: Vec<_> = (0..16)
        .map(|_| {
            let (app, access) = (Arc::clone(&app), access.clone());
            tokio::spawn(async move { app.get_session(&access).await.status })
        })
        .collect();
    for lookup in concurrent {
        assert_eq!(lookup.await.unwrap_or_else(|e| panic!("lookup: {e}")), 200);
    }
    // The write lands off the request path; then lookups show it.
    let mut seen = String::new();
    for _ in 0..200 {
        seen = app.get_session(&access).await.str("lastAccessed");
        if seen == due {
            break;
        }
    }
    assert_eq!(seen, due);
    assert_eq!(app.touches.load(Ordering::SeqCst), 1);
}

/// Client authentication reads the client through the cache: a secret rotated or a client
/// disabled by this node or by another process, and a client created after its id was
/// tried, are all seen by the very next request.
#[tokio::test]
async fn client_changes_here_and_elsewhere_are_seen_by_the_next_authentication() -> TestResult {
    let app = spawn_app().await;
    if !caches_lookups(&app) {
        return Ok(());
    }
    let other_store = another_process(&app).await?;
    let other = Admin::new(Arc::clone(&other_store), Arc::new(app.clock.clone()));
    let anonymous = "grant_type=password";

    // Rotated here.
    let client = app.client_with(&[Grant::Anonymous]).await;
    for _ in 0..2 {
        assert_eq!(
            app.token_with(Some(&client.basic()), anonymous)
                .await
                .status,
            200
        );
    }
    let rotated = app
        .admin
        .rotate_client_secret(&client.id)
        .await?
        .ok_or("no such client")?;
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        401
    );
    let client = Credentials {
        secret: rotated.expose().to_owned(),
        ..client
    };
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        200
    );

    // Rotated, then disabled, by another process.
    let rotated = other
        .rotate_client_secret(&client.id)
        .await?
        .ok_or("no such client")?;
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        401
    );
    let client = Credentials {
        secret: rotated.expose().to_owned(),
        ..client
    };
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        200
    );
    assert!(other.disable_client(&client.id).await?);
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        401
    );

    // An unknown id is remembered as absent, and forgotten when a client takes it.
    let mut new = NewClient::named("late");
    new.grants = GrantSet::from_grants([Grant::Anonymous]);
    for admin in [&app.admin, &other] {
        let (record, secret) = admin.create_client(new.clone()).await?;
        let late = Credentials {
            id: record.id,
            secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
        };
        assert_eq!(
            app.token_with(Some(&late.basic()), anonymous).await.status,
            200
        );
    }
    other_store.close().await;
    Ok(())
}

/// The partner-shopper grant reads a shopper from the store once, not once per grant:
/// shopper rows never change. An unknown reference is not remembered, so a shopper
/// created after a refused grant is found by the next one; another process's write
/// empties the cache like any other.
#[tokio::test]
async fn a_partner_shopper_is_read_from_the_store_once() {
    let app = spawn_app().await;
    if !caches_lookups(&app) {
        return;
    }
    let grant = "grant_type=client_credentials&dr_external_reference_id=partner-42";
    let reads = || app.shopper_reads.load(Ordering::SeqCst);
    assert_eq!(app.token(grant).await.status, 400, "unknown reference");
    let user_id = app.shopper("partner-42").await;

    let before = reads();
    let first = app.token(grant).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(reads(), before + 1, "the first grant reads the store");
    let second = app.token(grant).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(
        reads(),
        before + 1,
        "the second grant must come from the cache"
    );
    for answer in [first, second] {
        let session = app.get_session(&answer.str("access_token")).await;
        assert_eq!(session.str("userId"), user_id);
    }

    app.foreign_writes.fetch_add(1, Ordering::SeqCst);
    assert_eq!(app.token(grant).await.status, 200);
    assert_eq!(reads(), before + 2, "after another process wrote");
}

/// Starts a token request whose client read has reached the store and now waits at the
/// client gate, which the caller holds; the request's status once the gate opens.
async fn client_read_held(
    app: &Arc<TestApp>,
) -> (
    tokio::sync::RwLockWriteGuard<'_, ()>,
    tokio::task::JoinHandle<u16>,
) {
    // Another process's write empties the cache, so the next authentication reads the
    // store.
    app.foreign_writes.fetch_add(1, Ordering::SeqCst);
    let gate = app.client_gate.write().await;
    let before = app.client_reads.load(Ordering::SeqCst);
    let request = tokio::spawn({
        let app = Arc::clone(app);
        async move { app.token("grant_type=password").await.status }
    });
    while app.client_reads.load(Ordering::SeqCst) == before {
        tokio::task::yield_now().await;
    }
    (gate, request)
}

/// A client read that a write to some session overtook is still remembered: session and
/// token writes never change a client, and under a steady stream of them a cache that
/// forgot every overtaken read would send every authentication to the store.
#[tokio::test]
async fn a_client_read_that_a_session_write_overtakes_is_still_remembered() -> TestResult {
    let app = Arc::new(spawn_app().await);
    if !caches_lookups(&app) {
        return Ok(());
    }
    let (access, _) = app.anonymous_tokens().await;
    let session_id = app.get_session(&access).await.str("sessionId");
    let (gate, request) = client_read_held(&app).await;
    assert!(app.session_admin.revoke_session(&session_id).await?);
    drop(gate);
    assert_eq!(request.await?, 200);

    let before = app.client_reads.load(Ordering::SeqCst);
    assert_eq!(app.token("grant_type=password").await.status, 200);
    assert_eq!(
        app.client_reads.load(Ordering::SeqCst),
        before,
        "the next authentication must come from the cache"
    );
    Ok(())
}

/// A client read that the client's own change overtook is never served afterwards.
#[tokio::test]
async fn a_client_read_that_its_disabling_overtakes_is_never_served_afterwards() -> TestResult {
    let app = Arc::new(spawn_app().await);
    if !caches_lookups(&app) {
        return Ok(());
    }
    let (gate, request) = client_read_held(&app).await;
    assert!(app.admin.disable_client(&app.client.id).await?);
    drop(gate);
    // It started before the client was disabled: either answer is allowed for it.
    let status = request.await?;
    assert!(status == 200 || status == 401, "{status}");
    assert_eq!(app.token("grant_type=password").await.status, 401);
    Ok(())
}

#[tokio::test]
async fn every_failed_client_authentication_reads_the_store_once_known_client_or_not() {
    let app = spawn_app().await;
    if !caches_lookups(&app) {
        return;
    }
    let anonymous = "grant_type=password";
    let reads = || app.client_reads.load(Ordering::SeqCst);
    let client = app.client_with(&[Grant::Anonymous]).await;
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        200
    );
    let before = reads();
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        200
    );
    assert_eq!(
        reads(),
        before,
        "a right secret is checked against the cache"
    );

    // A wrong secret for a cached client costs the store read an unknown id costs, so
    // the two take alike (RELIABILITY P13).
    let wrong = Credentials {
        secret: format!("{}x", client.secret),
        ..client.clone()
    };
    let before = reads();
    assert_eq!(
        app.token_with(Some(&wrong.basic()), anonymous).await.status,
        401
    );
    assert_eq!(reads(), before + 1, "a wrong secret for a known client");
    let unknown = Credentials {
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        ..wrong.clone()
    };
    for attempt in ["first", "remembered as absent"] {
        let before = reads();
        assert_eq!(
            app.token_with(Some(&unknown.basic()), anonymous)
                .await
                .status,
            401
        );
        assert_eq!(reads(), before + 1, "an unknown id, {attempt}");
    }
    assert_eq!(
        app.token_with(Some(&client.basic()), anonymous)
            .await
            .status,
        200
    );
}
