//! `DELETE /oauth20/access-tokens` (API.md §4): logout when the newest token is deleted,
//! rotation otherwise.

use reqwest::Method;
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::token::TokenKind;

use crate::helpers::*;

#[tokio::test]
async fn delete_answers_the_session_as_it_was_and_the_token_is_refused_afterwards() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let before = app.get_session(&access).await;
    let deleted = app.delete_session(&access).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.header("cache-control"), Some("no-store"));
    assert_eq!(deleted.body["sessionId"], before.body["sessionId"]);
    assert_eq!(deleted.body["accessToken"], access.as_str());
    assert_eq!(deleted.body.as_object().map(|o| o.len()), Some(15));
    assert_eq!(app.get_session(&access).await.status, 401);
    let again = app.delete_session(&access).await;
    assert_eq!(again.status, 401);
    assert_eq!(again.dr_code(), Some("invalid_token"));
}

#[tokio::test]
async fn every_alias_path_and_the_query_string_can_delete() {
    let app = spawn_app().await;
    for path in [
        "/oauth20/access-tokens",
        "/oauth20/access-tokens.json",
        "/oauth20/access-token",
        "/oauth20/access-token.json",
    ] {
        let (access, _) = app.anonymous_tokens().await;
        assert_eq!(
            app.bearer(Method::DELETE, path, &access).await.status,
            200,
            "{path}"
        );
        assert_eq!(app.get_session(&access).await.status, 401, "{path}");
    }
    let (access, _) = app.anonymous_tokens().await;
    let by_query = app
        .request(
            app.http
                .delete(app.url(&format!("/oauth20/access-tokens?token={access}"))),
        )
        .await;
    assert_eq!(by_query.status, 200);
    assert_eq!(app.get_session(&access).await.status, 401);
}

#[tokio::test]
async fn deleting_the_newest_token_ends_the_whole_session_including_its_refresh_token() {
    let app = spawn_app().await;
    let (access, refresh) = app.anonymous_tokens().await;
    let (other, _) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&access).await.status, 200);
    let row = app
        .store
        .lookup_token(&hash_of(&refresh))
        .await
        .unwrap_or_else(|e| panic!("lookup: {e}"))
        .unwrap_or_else(|| panic!("the refresh token row exists"));
    assert!(row.session.revoked_at.is_some(), "the session ended");
    assert_eq!(
        app.get_session(&other).await.status,
        200,
        "other sessions live on"
    );
}

/// A session with two access tokens, as a refresh leaves it: the older one and the newest.
async fn session_with_two_access_tokens(app: &TestApp) -> (String, String) {
    let older = app
        .keys
        .mint(TokenKind::Access)
        .unwrap_or_else(|e| panic!("{e}"));
    let newest = app
        .keys
        .mint(TokenKind::Access)
        .unwrap_or_else(|e| panic!("{e}"));
    let now = app.clock_now();
    let session = SessionRecord {
        id: "0123456789abcdef0123456789abcdef".to_owned(),
        client_id: app.client.id.clone(),
        user_id: Some("fedcba9876543210fedcba9876543210".to_owned()),
        external_reference_id: None,
        authenticated: false,
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "127.0.0.1".to_owned(),
        session_tag: "00112233445566778899aabbccddeeff".to_owned(),
        created_at: now,
        last_accessed: now,
        expires_at: now.plus_seconds(86_400),
        newest_access: newest.hash,
        revoked_at: None,
    };
    let token = |hash| TokenRecord {
        hash,
        kind: TokenKind::Access,
        session_id: session.id.clone(),
        client_id: app.client.id.clone(),
        issued_at: now,
        expires_at: now.plus_seconds(3600),
        revoked_at: None,
        consumed_at: None,
    };
    app.store
        .insert_session(&session, &[token(older.hash), token(newest.hash)])
        .await
        .unwrap_or_else(|e| panic!("insert: {e}"));
    (
        older.token.expose().to_owned(),
        newest.token.expose().to_owned(),
    )
}

#[tokio::test]
async fn deleting_an_older_token_of_a_refreshed_session_revokes_only_that_token() {
    let app = spawn_app().await;
    let (older, newest) = session_with_two_access_tokens(&app).await;
    assert_eq!(app.delete_session(&older).await.status, 200);
    assert_eq!(app.get_session(&older).await.status, 401);
    assert_eq!(
        app.get_session(&newest).await.status,
        200,
        "rotation keeps the newest"
    );
    assert_eq!(app.delete_session(&newest).await.status, 200);
    assert_eq!(
        app.get_session(&newest).await.status,
        401,
        "then logout ends it"
    );
}

#[tokio::test]
async fn deleting_the_newest_token_of_a_refreshed_session_logs_out_every_token() {
    let app = spawn_app().await;
    let (older, newest) = session_with_two_access_tokens(&app).await;
    assert_eq!(app.delete_session(&newest).await.status, 200);
    assert_eq!(app.get_session(&older).await.status, 401);
    assert_eq!(app.get_session(&newest).await.status, 401);
}

#[tokio::test]
async fn concurrent_deletes_of_one_token_succeed_exactly_once() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = app
            .http
            .delete(app.url("/oauth20/access-tokens"))
            .bearer_auth(&access);
        attempts.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    }
    let mut statuses = Vec::new();
    while let Some(done) = attempts.join_next().await {
        statuses.push(
            done.unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401, 401, 401, 401, 401, 401, 401]);
}
