//! `POST /oauth20/introspect` (RFC 7662, API.md §6): active tokens of every grant with their
//! facts, exactly `{"active":false}` for everything else, client authentication, resource
//! servers, and failing closed.

use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tessera_core::Secret;
use tessera_core::admin::{NewClient, NewShopper};
use tessera_core::client::Grant;
use tessera_core::token::TokenKind;
use tessera_store::StoreOptions;

use crate::helpers::*;
use crate::standards_helpers::*;
use crate::token_endpoint::urlencode;

const ONE_YEAR: i64 = 365 * 24 * 3600;

fn start_seconds() -> i64 {
    START.unix_seconds()
}

/// The members of an answer, sorted.
fn keys(answer: &Answer) -> Vec<String> {
    let mut keys: Vec<String> = answer
        .body
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

#[tokio::test]
async fn an_anonymous_access_token_is_active_with_its_session_and_times() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let details = app.get_session(&access).await;

    let answer = app.introspect(&app.client, &access).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(
        answer.body,
        json!({
            "active": true,
            "token_type": "bearer",
            "client_id": app.client.id,
            "sub": details.body["userId"],
            "sid": details.body["sessionId"],
            "iat": start_seconds(),
            "exp": start_seconds() + 3600,
        })
    );
}

#[tokio::test]
async fn a_refresh_token_is_active_to_its_client_as_refresh_token_until_the_session_ends() {
    let app = spawn_app().await;
    let (access, refresh) = app.anonymous_tokens().await;
    let details = app.get_session(&access).await;
    let answer = app.introspect(&app.client, &refresh).await;
    assert_eq!(
        answer.body,
        json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": app.client.id,
            "sub": details.body["userId"],
            "sid": details.body["sessionId"],
            "iat": start_seconds(),
            "exp": start_seconds() + ONE_YEAR,
        })
    );
}

#[tokio::test]
async fn tokens_of_every_grant_are_active_with_the_right_subject() {
    let app = spawn_app().await;

    // Client token (RFC 6749 §4.4): the client is its own subject; no refresh token.
    let client_token = app.token("grant_type=client_credentials").await;
    assert_eq!(client_token.status, 200, "{}", client_token.text);
    let access = client_token.str("access_token");
    let answer = app.introspect(&app.client, &access).await;
    assert_eq!(answer.body["active"], true);
    assert_eq!(answer.str("sub"), app.client.id);
    assert_eq!(answer.str("client_id"), app.client.id);
    assert_eq!(
        answer.body["sid"],
        app.get_session(&access).await.body["sessionId"]
    );
    assert!(answer.body.get("username").is_none());

    // Partner shopper: the shopper's user id; it has no username.
    let user_id = app.shopper("ext-introspect").await;
    let partner = app
        .token("grant_type=client_credentials&dr_external_reference_id=ext-introspect")
        .await;
    assert_eq!(partner.status, 200, "{}", partner.text);
    for token in [partner.str("access_token"), partner.str("refresh_token")] {
        let answer = app.introspect(&app.client, &token).await;
        assert_eq!(answer.body["active"], true, "{}", answer.text);
        assert_eq!(answer.str("sub"), user_id);
        assert!(answer.body.get("username").is_none());
    }

    // Shopper login: the shopper's user id and username.
    let login_client = app
        .client_with(&[Grant::Password, Grant::RefreshToken])
        .await;
    let shopper = app
        .admin
        .create_shopper(NewShopper {
            username: Some("Ann@Example.com".to_owned()),
            password: Some(Secret::new("correct horse")),
            ..NewShopper::default()
        })
        .await
        .unwrap_or_else(|e| panic!("shopper: {e}"));
    let login = app
        .token_with(
            Some(&login_client.basic()),
            "grant_type=password&username=ann%40example.com&password=correct+horse",
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    // Each token twice: the second answer comes from the lookup the first one cached,
    // with the answer kept beside it, and must still name the shopper.
    for (token, token_type) in [
        (login.str("access_token"), "bearer"),
        (login.str("access_token"), "bearer"),
        (login.str("refresh_token"), "refresh_token"),
        (login.str("refresh_token"), "refresh_token"),
    ] {
        let answer = app.introspect(&login_client, &token).await;
        assert_eq!(answer.str("token_type"), token_type);
        assert_eq!(answer.str("sub"), shopper.id);
        assert_eq!(answer.str("username"), "ann@example.com");
        assert_eq!(answer.str("client_id"), login_client.id);
        assert_eq!(
            keys(&answer),
            [
                "active",
                "client_id",
                "exp",
                "iat",
                "sid",
                "sub",
                "token_type",
                "username"
            ]
        );
    }

    // Refresh: the new pair is active in the same session, issued now; the consumed
    // refresh token is not; the older access token still is.
    let (old_access, old_refresh) = app.anonymous_tokens().await;
    app.clock.advance_seconds(60);
    let refreshed = app
        .token(&format!(
            "grant_type=refresh_token&refresh_token={}",
            urlencode(&old_refresh)
        ))
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let old = app.introspect(&app.client, &old_access).await;
    for token in [
        refreshed.str("access_token"),
        refreshed.str("refresh_token"),
    ] {
        let answer = app.introspect(&app.client, &token).await;
        assert_eq!(answer.body["active"], true, "{}", answer.text);
        assert_eq!(answer.body["sid"], old.body["sid"]);
        assert_eq!(answer.body["iat"], json!(start_seconds() + 60));
    }
    assert_eq!(old.body["active"], true);
    assert_inactive(
        &app.introspect(&app.client, &old_refresh).await,
        "a consumed refresh token",
    );
}

#[tokio::test]
async fn anything_not_active_is_exactly_active_false() {
    let app = spawn_app().await;
    let other = app.client_with(&[Grant::Anonymous]).await;
    let (live, live_refresh) = app.anonymous_tokens().await;
    let bit_flipped = {
        let mut bytes = live.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap_or_default()
    };
    let forged_kind = live.replacen("tsa_", "tsr_", 1);

    // Refused by the MAC check: none of these reaches the store.
    let lookups = app.lookups.load(Ordering::SeqCst);
    for (case, token) in [
        ("garbage", "not a token".to_owned()),
        ("random base64url", "x".repeat(64)),
        ("a fabricated token", format!("tsa_k1_{}", "A".repeat(64))),
        ("truncated", live[..live.len() - 1].to_owned()),
        ("extended", format!("{live}A")),
        ("bit-flipped", bit_flipped),
        ("the access prefix swapped for refresh", forged_kind),
        ("an 8 KiB token", "a".repeat(8 * 1024)),
    ] {
        assert_inactive(&app.introspect(&app.client, &token).await, case);
    }
    assert_eq!(app.lookups.load(Ordering::SeqCst), lookups);

    // Well-formed, but not active to this client.
    let (others_access, others_refresh) = {
        let answer = app
            .token_with(Some(&other.basic()), "grant_type=password")
            .await;
        (answer.str("access_token"), answer.str("refresh_token"))
    };
    let (logged_out, logged_out_refresh) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&logged_out).await.status, 200);
    let (_, consumed) = app.anonymous_tokens().await;
    let rotated = app
        .token(&format!(
            "grant_type=refresh_token&refresh_token={consumed}"
        ))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    for (case, token) in [
        (
            "an access token never issued",
            app.unissued(TokenKind::Access),
        ),
        (
            "a refresh token never issued",
            app.unissued(TokenKind::Refresh),
        ),
        ("another client's access token", others_access.clone()),
        ("another client's refresh token", others_refresh.clone()),
        ("an access token after logout", logged_out),
        ("a refresh token after logout", logged_out_refresh),
        ("a consumed refresh token", consumed),
    ] {
        assert_inactive(&app.introspect(&app.client, &token).await, case);
    }
    // The other client still sees its own.
    assert_eq!(
        app.introspect(&other, &others_access).await.body["active"],
        true
    );

    // Expired: an hour later the access token is gone, the refresh token (a year) is not.
    app.clock.advance_seconds(3600);
    assert_inactive(
        &app.introspect(&app.client, &live).await,
        "an expired access token",
    );
    assert_eq!(
        app.introspect(&app.client, &live_refresh).await.body["active"],
        true
    );
    app.clock.advance_seconds(ONE_YEAR);
    assert_inactive(
        &app.introspect(&app.client, &live_refresh).await,
        "a refresh token past its session's end",
    );
}

#[tokio::test]
async fn tokens_of_a_disabled_client_or_an_ended_session_are_inactive() {
    let app = spawn_app().await;
    let server = app.resource_server(&[]).await;
    let doomed = app.client_with(&[Grant::Anonymous]).await;
    let answer = app
        .token_with(Some(&doomed.basic()), "grant_type=password")
        .await;
    let access = answer.str("access_token");
    assert_eq!(app.introspect(&server, &access).await.body["active"], true);
    app.admin
        .disable_client(&doomed.id)
        .await
        .unwrap_or_else(|e| panic!("disable: {e}"));
    assert_inactive(
        &app.introspect(&server, &access).await,
        "a disabled client's token",
    );

    // Logout everywhere for the client (a revocation watermark).
    let (access, refresh) = app.anonymous_tokens().await;
    let admin = app
        .request(
            app.http
                .post(format!(
                    "{}/admin/v1/clients/{}/sessions/revoke",
                    app.admin_address, app.client.id
                ))
                .bearer_auth(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(admin.status, 200, "{}", admin.text);
    for token in [access, refresh] {
        assert_inactive(
            &app.introspect(&app.client, &token).await,
            "a token of a session ended by a watermark",
        );
    }
}

#[tokio::test]
async fn a_resource_server_sees_every_clients_access_tokens_but_no_other_refresh_token() {
    let app = spawn_app().await;
    let server = app.resource_server(&[Grant::ClientCredentials]).await;
    let (access, refresh) = app.anonymous_tokens().await;
    let details = app.get_session(&access).await;

    let seen = app.introspect(&server, &access).await;
    assert_eq!(seen.body["active"], true, "{}", seen.text);
    assert_eq!(seen.str("client_id"), app.client.id);
    assert_eq!(seen.body["sid"], details.body["sessionId"]);
    assert_inactive(
        &app.introspect(&server, &refresh).await,
        "another client's refresh token, even to a resource server",
    );

    // A resource server keeps the grants it was given; an ordinary client cannot see its
    // tokens.
    let own = app
        .token_with(Some(&server.basic()), "grant_type=client_credentials")
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let own = own.str("access_token");
    assert_eq!(app.introspect(&server, &own).await.body["active"], true);
    assert_inactive(
        &app.introspect(&app.client, &own).await,
        "a resource server's token, to another client",
    );
}

#[tokio::test]
async fn a_public_client_introspects_its_own_tokens_and_is_never_a_resource_server() {
    let app = spawn_app().await;
    let body_id = format!("client_id={}", app.public_client_id);
    let issued = app
        .token_with(None, &format!("grant_type=password&{body_id}"))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let access = issued.str("access_token");
    let answer = app
        .introspect_form(None, &format!("{body_id}&token={access}"))
        .await;
    assert_eq!(answer.body["active"], true, "{}", answer.text);
    assert_eq!(answer.str("client_id"), app.public_client_id);
    let basic = format!("Basic {}", base64_of(&format!("{}:", app.public_client_id)));
    let answer = app
        .introspect_form(Some(&basic), &format!("token={access}"))
        .await;
    assert_eq!(answer.body["active"], true, "{}", answer.text);

    // A public client's id is no secret: marked as resource server, it still sees only its
    // own tokens.
    let (public_server, _) = app
        .admin
        .create_client(NewClient {
            public: true,
            resource_server: true,
            ..NewClient::named("public resource server")
        })
        .await
        .unwrap_or_else(|e| panic!("client: {e}"));
    let (storefront_access, _) = app.anonymous_tokens().await;
    let answer = app
        .introspect_form(
            None,
            &format!("client_id={}&token={storefront_access}", public_server.id),
        )
        .await;
    assert_inactive(&answer, "a public 'resource server'");
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn introspection_needs_client_authentication_and_a_token() {
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
            "a bearer token instead",
            Some(format!("Bearer {access}")),
            token.clone(),
        ),
        (
            "malformed Basic",
            Some("Basic !!!".to_owned()),
            token.clone(),
        ),
        (
            "an unknown client in the body",
            None,
            format!("client_id=00000000000000000000000000000000&client_secret=tcs_x&{token}"),
        ),
        (
            "a confidential client without its secret",
            None,
            format!("client_id={}&{token}", app.client.id),
        ),
    ] {
        let answer = app.introspect_form(authorization.as_deref(), &form).await;
        assert_oauth_error(&answer, 401, "invalid_client", case);
        assert!(answer.body.get("active").is_none(), "{case}");
    }

    // With credentials in the body (client_secret_post) it works.
    let post = app
        .introspect_form(
            None,
            &format!(
                "client_id={}&client_secret={}&{token}",
                app.client.id, app.client.secret
            ),
        )
        .await;
    assert_eq!(post.body["active"], true, "{}", post.text);

    let missing = app.introspect_form(Some(&app.client.basic()), "").await;
    assert_oauth_error(&missing, 400, "invalid_request", "no token");
    let empty = app
        .introspect_form(Some(&app.client.basic()), "token=")
        .await;
    assert_oauth_error(&empty, 400, "invalid_request", "an empty token");
}

#[tokio::test]
async fn token_type_hint_changes_nothing_whatever_its_value() {
    let app = spawn_app().await;
    let (access, refresh) = app.anonymous_tokens().await;
    let basic = app.client.basic();
    let expected_access = app.introspect(&app.client, &access).await.body;
    let expected_refresh = app.introspect(&app.client, &refresh).await.body;
    for hint in [
        "access_token",
        "refresh_token",
        "id_token",
        "ACCESS_TOKEN",
        "%E2%9C%93",
    ] {
        for (token, expected) in [(&access, &expected_access), (&refresh, &expected_refresh)] {
            let answer = app
                .introspect_form(
                    Some(&basic),
                    &format!("token={token}&token_type_hint={hint}"),
                )
                .await;
            assert_eq!(&answer.body, expected, "hint {hint}");
        }
        let garbage = app
            .introspect_form(Some(&basic), &format!("token=junk&token_type_hint={hint}"))
            .await;
        assert_inactive(&garbage, hint);
    }
}

#[tokio::test]
async fn introspection_reads_through_a_held_write_lock() -> TestResult {
    let app = spawn_app_with(StoreOptions {
        busy_timeout: Duration::from_millis(200),
        ..StoreOptions::default()
    })
    .await;
    let (access, refresh) = app.anonymous_tokens().await;
    let mut holder =
        SqliteConnectOptions::from_str(&format!("sqlite://{}", app.database.display()))?
            .connect()
            .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await?;

    // A read under WAL needs no write lock: the answers are the true ones.
    assert_eq!(
        app.introspect(&app.client, &access).await.body["active"],
        true
    );
    assert_eq!(
        app.introspect(&app.client, &refresh).await.body["active"],
        true
    );
    assert_inactive(
        &app.introspect(&app.client, &app.unissued(TokenKind::Access))
            .await,
        "an unknown token under the lock",
    );
    sqlx::query("COMMIT").execute(&mut holder).await?;
    Ok(())
}

#[tokio::test]
async fn a_store_that_cannot_answer_gives_503_and_no_answer_about_the_token() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    app.store.close().await;
    for token in [access, app.unissued(TokenKind::Access)] {
        let answer = app.introspect(&app.client, &token).await;
        assert_oauth_error_503(&answer);
        assert!(answer.body.get("active").is_none());
    }
}

/// The fail-closed answer: 503, `Retry-After`, `temporarily_unavailable`.
pub fn assert_oauth_error_503(answer: &Answer) {
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("temporarily_unavailable"));
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn introspection_answers_never_carry_a_token_or_a_secret() {
    let app = spawn_app().await;
    let (access, refresh) = app.anonymous_tokens().await;
    for token in [&access, &refresh] {
        let answer = app.introspect(&app.client, token).await;
        for secret in [&access, &refresh, &app.client.secret] {
            assert!(!answer.text.contains(secret.as_str()));
        }
        let body: &Value = &answer.body;
        assert!(body.get("scope").is_none());
    }
}
