//! `grant_type=refresh_token` (API.md §2; RELIABILITY.md P9, P10 and the "Refresh" bad
//! inputs): rotation, strict reuse detection, client binding, token types, absolute
//! expiry, and the DELETE rule after a refresh.

use std::sync::atomic::Ordering;

use tessera_core::admin::NewClient;
use tessera_core::client::Grant;

use crate::helpers::*;

/// The form that exchanges `refresh_token`.
fn refresh_form(refresh_token: &str) -> String {
    format!("grant_type=refresh_token&refresh_token={refresh_token}")
}

/// Exchanges `refresh_token` as the default confidential client.
async fn refresh(app: &TestApp, refresh_token: &str) -> Answer {
    app.token(&refresh_form(refresh_token)).await
}

/// Exchanges `refresh_token` as `client`.
async fn refresh_as(app: &TestApp, client: &Credentials, refresh_token: &str) -> Answer {
    app.token_with(Some(&client.basic()), &refresh_form(refresh_token))
        .await
}

/// A successful refresh's new pair: (access, refresh).
fn new_pair(answer: &Answer) -> (String, String) {
    assert_eq!(answer.status, 200, "refresh: {}", answer.text);
    (answer.str("access_token"), answer.str("refresh_token"))
}

fn assert_invalid_grant(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 400, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_grant"), "{case}");
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
}

#[tokio::test]
async fn a_refresh_returns_a_new_pair_for_the_same_session() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    let before = app.get_session(&access).await;
    assert_eq!(before.status, 200);

    app.clock.advance_seconds(60);
    let answer = refresh(&app, &refresh_token).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    assert_eq!(answer.body["token_type"], "bearer");
    assert_eq!(answer.body["expires_in"].as_i64(), Some(3600));
    let (new_access, new_refresh) = new_pair(&answer);
    assert!(new_access.starts_with("tsa_"));
    assert!(new_refresh.starts_with("tsr_"));
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, refresh_token);

    let after = app.get_session(&new_access).await;
    assert_eq!(after.status, 200, "{}", after.text);
    for field in [
        "sessionId",
        "userId",
        "authenticated",
        "sessionTag",
        "createdOn",
    ] {
        assert_eq!(after.body[field], before.body[field], "{field}");
    }
    assert_eq!(after.body["expiresIn"].as_i64(), Some(3600));
    // Rotation leaves the old access token alone until it expires or is deleted.
    assert_eq!(app.get_session(&access).await.status, 200);
}

#[tokio::test]
async fn each_successor_refresh_token_rotates_in_turn_within_the_session() {
    let app = spawn_app().await;
    let (access, mut refresh_token) = app.anonymous_tokens().await;
    let session_id = app.get_session(&access).await.str("sessionId");
    assert!(!session_id.is_empty());
    for _ in 0..3 {
        let (access, next) = new_pair(&refresh(&app, &refresh_token).await);
        assert_eq!(app.get_session(&access).await.str("sessionId"), session_id);
        refresh_token = next;
    }
}

#[tokio::test]
async fn a_replayed_refresh_token_is_refused_and_ends_the_whole_session() {
    let app = spawn_app().await;
    let (old_access, old_refresh) = app.anonymous_tokens().await;
    let (new_access, new_refresh) = new_pair(&refresh(&app, &old_refresh).await);
    assert_eq!(app.get_session(&new_access).await.status, 200);

    assert_invalid_grant(&refresh(&app, &old_refresh).await, "replay");

    // RFC 9700 §4.14.2: every token of the session is dead from then on.
    assert_eq!(app.get_session(&new_access).await.status, 401);
    assert_eq!(app.get_session(&old_access).await.status, 401);
    assert_invalid_grant(&refresh(&app, &new_refresh).await, "successor after replay");
    assert_invalid_grant(&refresh(&app, &old_refresh).await, "second replay");
    // Other sessions live on.
    let (other, _) = app.anonymous_tokens().await;
    assert_eq!(app.get_session(&other).await.status, 200);
}

#[tokio::test]
async fn deleting_the_old_access_token_after_a_refresh_revokes_only_that_token() {
    let app = spawn_app().await;
    let (old_access, old_refresh) = app.anonymous_tokens().await;
    let (new_access, new_refresh) = new_pair(&refresh(&app, &old_refresh).await);

    assert_eq!(app.delete_session(&old_access).await.status, 200);
    assert_eq!(app.get_session(&old_access).await.status, 401);
    assert_eq!(app.get_session(&new_access).await.status, 200);
    let (newer_access, _) = new_pair(&refresh(&app, &new_refresh).await);
    assert_eq!(app.get_session(&newer_access).await.status, 200);
}

#[tokio::test]
async fn deleting_the_newest_access_token_after_a_refresh_ends_the_session() {
    let app = spawn_app().await;
    let (old_access, old_refresh) = app.anonymous_tokens().await;
    let (new_access, new_refresh) = new_pair(&refresh(&app, &old_refresh).await);

    assert_eq!(app.delete_session(&new_access).await.status, 200);
    assert_eq!(app.get_session(&new_access).await.status, 401);
    assert_eq!(app.get_session(&old_access).await.status, 401);
    assert_invalid_grant(&refresh(&app, &new_refresh).await, "after logout");
}

#[tokio::test]
async fn a_refresh_token_is_refused_after_logout() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&access).await.status, 200);
    assert_invalid_grant(&refresh(&app, &refresh_token).await, "after logout");
    assert_invalid_grant(&refresh(&app, &refresh_token).await, "again");
}

#[tokio::test]
async fn another_clients_refresh_token_is_refused_and_stays_usable_by_its_owner() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    let other = app
        .client_with(&[Grant::Anonymous, Grant::RefreshToken])
        .await;

    assert_invalid_grant(
        &refresh_as(&app, &other, &refresh_token).await,
        "another confidential client",
    );
    let public = app
        .token_with(
            None,
            &format!(
                "{}&client_id={}",
                refresh_form(&refresh_token),
                app.public_client_id
            ),
        )
        .await;
    assert_invalid_grant(&public, "a public client");

    // Not consumed and not revoked: the owner's session is untouched.
    assert_eq!(app.get_session(&access).await.status, 200);
    let (new_access, _) = new_pair(&refresh(&app, &refresh_token).await);
    assert_eq!(app.get_session(&new_access).await.status, 200);
}

#[tokio::test]
async fn a_public_client_refreshes_its_own_tokens_by_client_id() {
    let app = spawn_app().await;
    let issued = app
        .token_with(
            None,
            &format!("grant_type=password&client_id={}", app.public_client_id),
        )
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let answer = app
        .token_with(
            None,
            &format!(
                "{}&client_id={}",
                refresh_form(&issued.str("refresh_token")),
                app.public_client_id
            ),
        )
        .await;
    let (access, _) = new_pair(&answer);
    assert_eq!(app.get_session(&access).await.status, 200);
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    let before = app.lookups.load(Ordering::SeqCst);
    assert_invalid_grant(&refresh(&app, &access).await, "access token");
    assert_eq!(
        app.lookups.load(Ordering::SeqCst),
        before,
        "refused by its prefix before any store lookup"
    );
    // Nothing happened to the session.
    assert_eq!(app.get_session(&access).await.status, 200);
    new_pair(&refresh(&app, &refresh_token).await);
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    for answer in [
        app.get_session(&refresh_token).await,
        app.delete_session(&refresh_token).await,
    ] {
        assert_eq!(answer.status, 401, "{}", answer.text);
        assert_eq!(answer.dr_code(), Some("invalid_token"));
    }
    // Refused, not acted on: the session and the refresh token live on.
    assert_eq!(app.get_session(&access).await.status, 200);
    new_pair(&refresh(&app, &refresh_token).await);
}

/// `token` with the character at `index` replaced by another base64url character.
fn flip(token: &str, index: usize) -> String {
    token
        .char_indices()
        .map(|(i, c)| match (i == index, c) {
            (false, c) => c,
            (true, 'A') => 'B',
            (true, _) => 'A',
        })
        .collect()
}

#[tokio::test]
async fn altered_refresh_tokens_are_refused_before_any_store_lookup() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    let len = refresh_token.len();
    // `tsr_<kid>_<payload>`: the payload is base64url and may itself hold `_`.
    let payload_start = refresh_token
        .match_indices('_')
        .nth(1)
        .map_or(0, |(i, _)| i + 1);
    let cases = [
        ("truncated by one", refresh_token[..len - 1].to_owned()),
        (
            "truncated to the prefix",
            refresh_token[..payload_start].to_owned(),
        ),
        ("extended by one", format!("{refresh_token}A")),
        ("extended by a block", format!("{refresh_token}AAAA")),
        (
            "bit flip in the random part",
            flip(&refresh_token, payload_start + 3),
        ),
        ("bit flip in the MAC", flip(&refresh_token, len - 2)),
        ("bit flip in the key id", flip(&refresh_token, 4)),
        (
            "refresh token with the access prefix",
            refresh_token.replacen("tsr_", "tsa_", 1),
        ),
        (
            "access token with the refresh prefix",
            access.replacen("tsa_", "tsr_", 1),
        ),
        ("no prefix", refresh_token[4..].to_owned()),
        ("garbage", "tsr_k_aGVsbG8".to_owned()),
    ];
    let before = app.lookups.load(Ordering::SeqCst);
    for (case, altered) in &cases {
        assert_ne!(altered, &refresh_token, "{case}");
        assert_invalid_grant(&refresh(&app, altered).await, case);
    }
    assert_eq!(
        app.lookups.load(Ordering::SeqCst),
        before,
        "no altered token may reach the store"
    );
    // The genuine token was never touched.
    new_pair(&refresh(&app, &refresh_token).await);
    assert_eq!(app.lookups.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn a_refresh_token_ends_at_the_sessions_absolute_expiry() {
    let app = spawn_app().await;
    let (record, secret) = app
        .admin
        .create_client(NewClient {
            refresh_token_ttl: 600,
            access_token_ttl: 3600,
            ..NewClient::named("short sessions")
        })
        .await
        .unwrap_or_else(|e| panic!("client: {e}"));
    let client = Credentials {
        id: record.id,
        secret: secret
            .map(|s| s.expose().to_owned())
            .unwrap_or_else(|| panic!("a confidential client has a secret")),
    };
    let issued = app
        .token_with(Some(&client.basic()), "grant_type=password")
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    assert_eq!(issued.body["expires_in"].as_i64(), Some(600));

    app.clock.advance_seconds(200);
    let first = refresh_as(&app, &client, &issued.str("refresh_token")).await;
    // No access token outlives its session, and rotation does not extend the session.
    assert_eq!(first.body["expires_in"].as_i64(), Some(400));
    let (_, second_refresh) = new_pair(&first);

    app.clock.advance_seconds(399);
    let second = refresh_as(&app, &client, &second_refresh).await;
    assert_eq!(second.body["expires_in"].as_i64(), Some(1));
    let (last_access, last_refresh) = new_pair(&second);

    app.clock.advance_seconds(1);
    assert_invalid_grant(
        &refresh_as(&app, &client, &last_refresh).await,
        "at the session's end",
    );
    assert_eq!(app.get_session(&last_access).await.status, 401);
}

#[tokio::test]
async fn a_client_not_allowed_refresh_tokens_is_unauthorized_client() {
    let app = spawn_app().await;
    let limited = app.client_with(&[Grant::Anonymous]).await;
    let issued = app
        .token_with(Some(&limited.basic()), "grant_type=password")
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let answer = refresh_as(&app, &limited, &issued.str("refresh_token")).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("unauthorized_client"));
    assert_eq!(
        app.get_session(&issued.str("access_token")).await.status,
        200
    );
}

#[tokio::test]
async fn the_refresh_token_parameter_is_required() {
    let app = spawn_app().await;
    for form in [
        "grant_type=refresh_token",
        "grant_type=refresh_token&refresh_token=",
    ] {
        let answer = app.token(form).await;
        assert_eq!(answer.status, 400, "{form}: {}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_request"), "{form}");
    }
}

#[tokio::test]
async fn a_refresh_token_in_the_query_string_is_invalid_request_and_not_consumed() {
    let app = spawn_app().await;
    let (_, refresh_token) = app.anonymous_tokens().await;
    for (path, body) in [
        (
            format!("/oauth20/token?refresh_token={refresh_token}"),
            "grant_type=refresh_token".to_owned(),
        ),
        (
            format!("/oauth20/token?refresh_token={refresh_token}"),
            refresh_form(&refresh_token),
        ),
    ] {
        let answer = app.token_at(&path, Some(&app.client.basic()), &body).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_request"));
    }
    new_pair(&refresh(&app, &refresh_token).await);
}
