//! `POST /oauth20/revoke` (RFC 7009, API.md §6): access tokens revoked as by `DELETE`,
//! refresh tokens ending their session, 200 for anything that needs nothing done, another
//! client's token refused and left valid, and failing closed.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tessera_core::client::Grant;
use tessera_core::token::TokenKind;
use tessera_store::StoreOptions;

use crate::helpers::*;
use crate::introspection::assert_oauth_error_503;
use crate::standards_helpers::*;
use crate::token_endpoint::urlencode;

/// The success of RFC 7009 §2.2: 200 and an empty body.
fn assert_revoked(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 200, "{case}: {}", answer.text);
    assert_eq!(answer.text, "", "{case}");
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Answer {
    app.token(&format!(
        "grant_type=refresh_token&refresh_token={}",
        urlencode(refresh_token)
    ))
    .await
}

#[tokio::test]
async fn revoking_the_newest_access_token_ends_the_whole_session() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    let (bystander, _) = app.anonymous_tokens().await;
    assert_revoked(&app.revoke(&app.client, &access).await, "newest access");

    assert_eq!(
        app.get_session(&access).await.dr_code(),
        Some("invalid_token")
    );
    assert_eq!(
        refresh(&app, &refresh_token).await.error_code(),
        Some("invalid_grant")
    );
    assert_inactive(&app.introspect(&app.client, &access).await, "revoked");
    assert_inactive(
        &app.introspect(&app.client, &refresh_token).await,
        "its refresh",
    );
    assert_eq!(app.get_session(&bystander).await.status, 200);
    // Already revoked: nothing to do, still 200.
    assert_revoked(&app.revoke(&app.client, &access).await, "twice");
}

#[tokio::test]
async fn revoking_an_older_access_token_revokes_only_that_token() {
    let app = spawn_app().await;
    let (old_access, old_refresh) = app.anonymous_tokens().await;
    let rotated = refresh(&app, &old_refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_revoked(&app.revoke(&app.client, &old_access).await, "older access");

    assert_eq!(app.get_session(&old_access).await.status, 401);
    assert_eq!(
        app.get_session(&rotated.str("access_token")).await.status,
        200
    );
    assert_eq!(
        refresh(&app, &rotated.str("refresh_token")).await.status,
        200
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_session() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    assert_revoked(&app.revoke(&app.client, &refresh_token).await, "refresh");
    assert_eq!(app.get_session(&access).await.status, 401);
    assert_eq!(
        refresh(&app, &refresh_token).await.error_code(),
        Some("invalid_grant")
    );
    assert_revoked(&app.revoke(&app.client, &refresh_token).await, "twice");
}

#[tokio::test]
async fn revoking_a_consumed_refresh_token_still_ends_the_session() {
    let app = spawn_app().await;
    let (_, old_refresh) = app.anonymous_tokens().await;
    let rotated = refresh(&app, &old_refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_revoked(&app.revoke(&app.client, &old_refresh).await, "consumed");
    assert_eq!(
        app.get_session(&rotated.str("access_token")).await.status,
        401
    );
    assert_eq!(
        refresh(&app, &rotated.str("refresh_token"))
            .await
            .error_code(),
        Some("invalid_grant")
    );
}

#[tokio::test]
async fn tokens_of_every_grant_can_be_revoked_by_their_client() {
    let app = spawn_app().await;
    let client_token = app.token("grant_type=client_credentials").await;
    let access = client_token.str("access_token");
    assert_revoked(&app.revoke(&app.client, &access).await, "client token");
    assert_eq!(app.get_session(&access).await.status, 401);

    app.shopper("ext-revoke").await;
    let partner = app
        .token("grant_type=client_credentials&dr_external_reference_id=ext-revoke")
        .await;
    assert_eq!(partner.status, 200, "{}", partner.text);
    assert_revoked(
        &app.revoke(&app.client, &partner.str("refresh_token")).await,
        "partner shopper refresh",
    );
    assert_eq!(
        app.get_session(&partner.str("access_token")).await.status,
        401
    );

    // A public client authenticates with its id alone.
    let body_id = format!("client_id={}", app.public_client_id);
    let issued = app
        .token_with(None, &format!("grant_type=password&{body_id}"))
        .await;
    let access = issued.str("access_token");
    assert_revoked(
        &app.revoke_form(None, &format!("{body_id}&token={access}"))
            .await,
        "public client",
    );
    assert_eq!(app.get_session(&access).await.status, 401);
}

#[tokio::test]
async fn unknown_invalid_expired_and_revoked_tokens_answer_200_and_change_nothing() {
    let app = spawn_app().await;
    let (live, live_refresh) = app.anonymous_tokens().await;
    let (logged_out, logged_out_refresh) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&logged_out).await.status, 200);

    let lookups = app.lookups.load(Ordering::SeqCst);
    for (case, token) in [
        ("garbage", "not a token".to_owned()),
        ("a fabricated token", format!("tsa_k1_{}", "A".repeat(64))),
        ("truncated", live[..live.len() - 1].to_owned()),
        ("extended", format!("{live}x")),
        (
            "the access prefix swapped",
            live.replacen("tsa_", "tsr_", 1),
        ),
    ] {
        assert_revoked(&app.revoke(&app.client, &token).await, case);
    }
    assert_eq!(
        app.lookups.load(Ordering::SeqCst),
        lookups,
        "MAC failures must not reach the store"
    );
    for (case, token) in [
        (
            "an access token never issued",
            app.unissued(TokenKind::Access),
        ),
        (
            "a refresh token never issued",
            app.unissued(TokenKind::Refresh),
        ),
        ("an access token after logout", logged_out),
        ("a refresh token after logout", logged_out_refresh),
    ] {
        assert_revoked(&app.revoke(&app.client, &token).await, case);
    }
    assert_eq!(app.get_session(&live).await.status, 200);

    // Expired: nothing left to revoke; the session lives on through its refresh token.
    app.clock.advance_seconds(3600);
    assert_revoked(
        &app.revoke(&app.client, &live).await,
        "an expired access token",
    );
    assert_eq!(refresh(&app, &live_refresh).await.status, 200);
}

#[tokio::test]
async fn token_type_hint_is_ignored_whatever_its_value() {
    let app = spawn_app().await;
    let basic = app.client.basic();
    for hint in ["access_token", "refresh_token", "id_token", "REFRESH_TOKEN"] {
        // A refresh token named an access token (or anything else) is still found.
        let (access, refresh_token) = app.anonymous_tokens().await;
        let answer = app
            .revoke_form(
                Some(&basic),
                &format!("token={refresh_token}&token_type_hint={hint}"),
            )
            .await;
        assert_revoked(&answer, hint);
        assert_eq!(app.get_session(&access).await.status, 401, "{hint}");

        let (access, _) = app.anonymous_tokens().await;
        let answer = app
            .revoke_form(
                Some(&basic),
                &format!("token_type_hint={hint}&token={access}"),
            )
            .await;
        assert_revoked(&answer, hint);
        assert_eq!(app.get_session(&access).await.status, 401, "{hint}");
    }
}

#[tokio::test]
async fn another_clients_token_is_refused_and_stays_valid() {
    let app = spawn_app().await;
    let other = app.client_with(&[Grant::Anonymous]).await;
    let server = app.resource_server(&[]).await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    for (case, who) in [("another client", &other), ("a resource server", &server)] {
        for token in [&access, &refresh_token] {
            let answer = app.revoke(who, token).await;
            assert_oauth_error(&answer, 400, "unauthorized_client", case);
        }
    }
    // Both tokens still work: the session details, then a rotation.
    assert_eq!(app.get_session(&access).await.status, 200);
    assert_eq!(refresh(&app, &refresh_token).await.status, 200);

    // The same answer for another client's dead token: it tells nothing about its state.
    let (dead, _) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&dead).await.status, 200);
    let answer = app.revoke(&other, &dead).await;
    assert_oauth_error(
        &answer,
        400,
        "unauthorized_client",
        "a dead token of another",
    );
}

#[tokio::test]
async fn revocation_needs_client_authentication_and_leaves_the_token_alone_without_it() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let token = format!("token={access}");
    let wrong = Credentials {
        id: app.client.id.clone(),
        secret: "tcs_wrong".to_owned(),
    };
    for (case, authorization, form) in [
        ("no credentials", None, token.clone()),
        ("a wrong secret", Some(wrong.basic()), token.clone()),
        (
            "the token as bearer",
            Some(format!("Bearer {access}")),
            token.clone(),
        ),
        (
            "a confidential client without its secret",
            None,
            format!("client_id={}&{token}", app.client.id),
        ),
    ] {
        let answer = app.revoke_form(authorization.as_deref(), &form).await;
        assert_oauth_error(&answer, 401, "invalid_client", case);
    }
    assert_eq!(app.get_session(&access).await.status, 200);

    let missing = app.revoke_form(Some(&app.client.basic()), "").await;
    assert_oauth_error(&missing, 400, "invalid_request", "no token");
}

#[tokio::test]
async fn a_revocation_the_store_cannot_write_is_503_and_the_token_keeps_working() -> TestResult {
    let app = spawn_app_with(StoreOptions {
        busy_timeout: Duration::from_millis(200),
        ..StoreOptions::default()
    })
    .await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    let mut holder =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", app.database.display()))?
            .connect()
            .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await?;

    for token in [&access, &refresh_token] {
        let answer = app.revoke(&app.client, token).await;
        assert_oauth_error_503(&answer);
    }
    // What needs no write is answered as usual: nothing to revoke.
    assert_revoked(
        &app.revoke(&app.client, "garbage").await,
        "garbage under the lock",
    );
    assert_revoked(
        &app.revoke(&app.client, &app.unissued(TokenKind::Access))
            .await,
        "an unknown token under the lock",
    );
    // The refused revocations changed nothing.
    assert_eq!(app.get_session(&access).await.status, 200);
    assert_eq!(
        app.introspect(&app.client, &refresh_token).await.body["active"],
        true
    );

    sqlx::query("COMMIT").execute(&mut holder).await?;
    assert_revoked(&app.revoke(&app.client, &access).await, "after the lock");
    assert_eq!(app.get_session(&access).await.status, 401);
    Ok(())
}

#[tokio::test]
async fn a_store_that_cannot_answer_gives_503() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    app.store.close().await;
    assert_oauth_error_503(&app.revoke(&app.client, &access).await);
}
