//! Logout everywhere and expiry clean-up: the administration API on its own listener
//! (revoke every session of a shopper or a client, end one session, set a cart id, list
//! sessions), the revocation watermarks every lookup checks, the tidy-up, and clean-up.

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use tessera_core::client::Grant;

use crate::helpers::*;

/// A request to the admin listener with the admin token.
async fn admin(app: &TestApp, method: Method, path: &str) -> Answer {
    admin_with(
        app,
        method,
        path,
        Some(&format!("Bearer {ADMIN_TOKEN}")),
        None,
    )
    .await
}

/// A request to the admin listener with the given `Authorization` and JSON body.
async fn admin_with(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    json: Option<&str>,
) -> Answer {
    let mut request = app
        .http
        .request(method, format!("{}{path}", app.admin_address));
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    if let Some(body) = json {
        request = request
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
    }
    app.request(request).await
}

async fn put_cart(app: &TestApp, session_id: &str, body: &str) -> Answer {
    admin_with(
        app,
        Method::PUT,
        &format!("/admin/v1/sessions/{session_id}/cart"),
        Some(&format!("Bearer {ADMIN_TOKEN}")),
        Some(body),
    )
    .await
}

/// A partner-shopper token pair for the shopper with this external reference id.
async fn shopper_tokens(app: &TestApp, client: &Credentials, reference: &str) -> (String, String) {
    let answer = app
        .token_with(
            Some(&client.basic()),
            &format!("grant_type=client_credentials&dr_external_reference_id={reference}"),
        )
        .await;
    assert_eq!(answer.status, 200, "partner-shopper token: {}", answer.text);
    (answer.str("access_token"), answer.str("refresh_token"))
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Answer {
    app.token(&format!(
        "grant_type=refresh_token&refresh_token={refresh_token}"
    ))
    .await
}

async fn session_id_of(app: &TestApp, access: &str) -> String {
    let details = app.get_session(access).await;
    assert_eq!(details.status, 200, "{}", details.text);
    details.str("sessionId")
}

fn assert_refused(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.text);
    assert_eq!(answer.dr_code(), Some("invalid_token"), "{what}");
}

#[tokio::test]
async fn revoking_every_session_of_a_shopper_ends_all_of_theirs_and_no_one_elses() {
    let app = spawn_app().await;
    let ann = app.shopper("ext-ann").await;
    app.shopper("ext-bob").await;
    let (first, first_refresh) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let (second, second_refresh) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let (bob, bob_refresh) = shopper_tokens(&app, &app.client, "ext-bob").await;
    let (anonymous, _) = app.anonymous_tokens().await;
    assert_ne!(
        session_id_of(&app, &first).await,
        session_id_of(&app, &second).await,
        "two grants, two sessions"
    );

    let revoked = admin(
        &app,
        Method::POST,
        &format!("/admin/v1/shoppers/{ann}/sessions/revoke"),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["userId"], ann.as_str());
    assert_eq!(
        revoked.str("sessionsRevokedBefore"),
        app.clock_now().to_iso8601()
    );
    assert_eq!(revoked.header("cache-control"), Some("no-store"));

    for (token, what) in [(&first, "first session"), (&second, "second session")] {
        assert_refused(&app.get_session(token).await, what);
        assert_refused(&app.delete_session(token).await, what);
    }
    for token in [&first_refresh, &second_refresh] {
        let answer = refresh(&app, token).await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_grant"));
    }
    // Another shopper, and an anonymous visitor, are untouched.
    assert_eq!(app.get_session(&bob).await.status, 200);
    assert_eq!(app.get_session(&anonymous).await.status, 200);
    assert_eq!(refresh(&app, &bob_refresh).await.status, 200);

    let unknown = admin(
        &app,
        Method::POST,
        "/admin/v1/shoppers/0123456789abcdef0123456789abcdef/sessions/revoke",
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.dr_code(), Some("not-found"));
}

#[tokio::test]
async fn a_session_opened_after_the_watermark_works() {
    let app = spawn_app().await;
    let ann = app.shopper("ext-ann").await;
    let (before, _) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let path = format!("/admin/v1/shoppers/{ann}/sessions/revoke");
    assert_eq!(admin(&app, Method::POST, &path).await.status, 200);

    app.clock.advance_seconds(1);
    let (after, after_refresh) = shopper_tokens(&app, &app.client, "ext-ann").await;
    assert_eq!(app.get_session(&after).await.status, 200);
    let refreshed = refresh(&app, &after_refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        app.get_session(&refreshed.str("access_token")).await.status,
        200
    );
    assert_refused(&app.get_session(&before).await, "the session from before");

    // A later watermark ends the later session too.
    app.clock.advance_seconds(1);
    assert_eq!(admin(&app, Method::POST, &path).await.status, 200);
    assert_refused(
        &app.get_session(&refreshed.str("access_token")).await,
        "the session after a second revocation",
    );
}

#[tokio::test]
async fn revoking_every_session_of_a_client_ends_that_clients_sessions_only() {
    let app = spawn_app().await;
    let other = app
        .client_with(&[
            Grant::Anonymous,
            Grant::ClientCredentials,
            Grant::RefreshToken,
        ])
        .await;
    app.shopper("ext-ann").await;
    let (anonymous, anonymous_refresh) = app.anonymous_tokens().await;
    let (shopper, _) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let client_token = app
        .token("grant_type=client_credentials")
        .await
        .str("access_token");
    let (others, _) = shopper_tokens(&app, &other, "ext-ann").await;

    let revoked = admin(
        &app,
        Method::POST,
        &format!("/admin/v1/clients/{}/sessions/revoke", app.client.id),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["clientId"], app.client.id.as_str());

    for (token, what) in [
        (&anonymous, "anonymous session"),
        (&shopper, "shopper session"),
        (&client_token, "client token"),
    ] {
        assert_refused(&app.get_session(token).await, what);
    }
    assert_eq!(refresh(&app, &anonymous_refresh).await.status, 400);
    assert_eq!(
        app.get_session(&others).await.status,
        200,
        "the same shopper's session at another client lives on"
    );

    // The client itself still works: its new sessions are live.
    app.clock.advance_seconds(1);
    let (fresh, _) = app.anonymous_tokens().await;
    assert_eq!(app.get_session(&fresh).await.status, 200);

    let unknown = admin(
        &app,
        Method::POST,
        "/admin/v1/clients/0123456789abcdef0123456789abcdef/sessions/revoke",
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.dr_code(), Some("not-found"));
}

#[tokio::test]
async fn ending_one_session_by_id_leaves_the_shoppers_other_sessions() {
    let app = spawn_app().await;
    app.shopper("ext-ann").await;
    let (first, first_refresh) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let (second, _) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let session_id = session_id_of(&app, &first).await;
    let path = format!("/admin/v1/sessions/{session_id}");

    let ended = admin(&app, Method::DELETE, &path).await;
    assert_eq!(ended.status, 200, "{}", ended.text);
    assert_eq!(ended.body["sessionId"], session_id.as_str());
    assert_eq!(ended.body["revoked"], true);
    assert_refused(&app.get_session(&first).await, "the ended session");
    assert_eq!(refresh(&app, &first_refresh).await.status, 400);
    assert_eq!(app.get_session(&second).await.status, 200);

    let again = admin(&app, Method::DELETE, &path).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["revoked"], false, "it had already ended");

    let unknown = admin(
        &app,
        Method::DELETE,
        "/admin/v1/sessions/0123456789abcdef0123456789abcdef",
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.dr_code(), Some("not-found"));
}

#[tokio::test]
async fn the_admin_api_refuses_every_request_without_the_admin_token() {
    let app = spawn_app().await;
    let ann = app.shopper("ext-ann").await;
    let (token, _) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let path = format!("/admin/v1/shoppers/{ann}/sessions/revoke");
    let wrong: Vec<Option<String>> = vec![
        None,
        Some("Bearer".to_owned()),
        Some("Bearer ".to_owned()),
        Some("Bearer wrong-token-wrong-token-wrong".to_owned()),
        // One character short, one too many, another case: compared whole, in constant
        // time, by hash (AdminToken::verify).
        Some(format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Bearer {}", ADMIN_TOKEN.to_uppercase())),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some(format!("Token {ADMIN_TOKEN}")),
        Some(app.client.basic()),
        Some(format!("Bearer {token}")),
    ];
    for authorization in &wrong {
        for (method, path) in [
            (Method::POST, path.as_str()),
            (Method::GET, "/admin/v1/no-such-path"),
        ] {
            let refused = admin_with(&app, method, path, authorization.as_deref(), None).await;
            assert_eq!(
                refused.status, 401,
                "{authorization:?} {path}: {}",
                refused.text
            );
            assert_eq!(refused.dr_code(), Some("unauthorized"));
            assert_eq!(
                refused.header("www-authenticate"),
                Some("Bearer realm=\"tessera-admin\"")
            );
            assert!(!refused.text.contains(ADMIN_TOKEN));
        }
    }
    assert_eq!(
        app.get_session(&token).await.status,
        200,
        "no refused request revoked anything"
    );

    // Two Authorization headers are refused even if one is right.
    let doubled = app
        .request(
            app.http
                .post(format!("{}{path}", app.admin_address))
                .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
                .header(AUTHORIZATION, "Bearer other"),
        )
        .await;
    assert_eq!(doubled.status, 401);

    // The scheme is case-insensitive; with the token, unknown paths are 404 and wrong
    // methods 405.
    let lower = admin_with(
        &app,
        Method::GET,
        "/admin/v1/no-such-path",
        Some(&format!("bearer {ADMIN_TOKEN}")),
        None,
    )
    .await;
    assert_eq!(lower.status, 404);
    assert_eq!(lower.dr_code(), Some("not-found"));
    let wrong_method = admin(&app, Method::GET, &path).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("POST"));
    assert_eq!(wrong_method.dr_code(), Some("method-not-allowed"));
    assert_eq!(wrong_method.header("cache-control"), Some("no-store"));

    // The public listener serves no admin path, with or without the token.
    let public = app
        .request(
            app.http
                .post(app.url(&path))
                .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}")),
        )
        .await;
    assert_eq!(public.status, 404);
    assert_eq!(app.get_session(&token).await.status, 200);
}

#[tokio::test]
async fn a_cart_id_set_by_the_admin_api_shows_in_the_session_details() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let session_id = session_id_of(&app, &access).await;
    assert_eq!(app.get_session(&access).await.body["cartId"], Value::Null);

    let set = put_cart(&app, &session_id, r#"{"cartId": "cart-1001"}"#).await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.body["cartId"], "cart-1001");
    assert_eq!(app.get_session(&access).await.body["cartId"], "cart-1001");

    let cleared = put_cart(&app, &session_id, r#"{"cartId": null}"#).await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(app.get_session(&access).await.body["cartId"], Value::Null);

    for bad in [
        "not json",
        "{}",
        r#"{"cart": "x"}"#,
        r#"{"cartId": 42}"#,
        r#"{"cartId": ""}"#,
        r#"{"cartId": "a\nb"}"#,
        "[]",
    ] {
        let refused = put_cart(&app, &session_id, bad).await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.text);
        assert_eq!(refused.dr_code(), Some("invalid_request"), "{bad}");
    }
    let long = format!(r#"{{"cartId": "{}"}}"#, "c".repeat(129));
    assert_eq!(put_cart(&app, &session_id, &long).await.status, 400);
    let not_json = app
        .request(
            app.http
                .put(format!(
                    "{}/admin/v1/sessions/{session_id}/cart",
                    app.admin_address
                ))
                .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("cartId=x"),
        )
        .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(app.get_session(&access).await.body["cartId"], Value::Null);

    let huge = format!(r#"{{"cartId": "{}"}}"#, "c".repeat(20_000));
    assert_eq!(put_cart(&app, &session_id, &huge).await.status, 413);

    let unknown = put_cart(
        &app,
        "0123456789abcdef0123456789abcdef",
        r#"{"cartId": "x"}"#,
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(app.delete_session(&access).await.status, 200);
    let ended = put_cart(&app, &session_id, r#"{"cartId": "x"}"#).await;
    assert_eq!(ended.status, 404, "an ended session takes no cart");
}

#[tokio::test]
async fn listing_a_shoppers_sessions_shows_the_live_ones_and_never_a_token() {
    let app = spawn_app().await;
    let ann = app.shopper("ext-ann").await;
    let (first, first_refresh) = shopper_tokens(&app, &app.client, "ext-ann").await;
    app.clock.advance_seconds(5);
    let (second, second_refresh) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let (ended, _) = shopper_tokens(&app, &app.client, "ext-ann").await;
    assert_eq!(app.delete_session(&ended).await.status, 200);
    app.shopper("ext-bob").await;
    shopper_tokens(&app, &app.client, "ext-bob").await;
    let path = format!("/admin/v1/shoppers/{ann}/sessions");

    let listed = admin(&app, Method::GET, &path).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["userId"], ann.as_str());
    let sessions = listed.body["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["sessionId"].as_str())
        .collect();
    let expected = [
        session_id_of(&app, &first).await,
        session_id_of(&app, &second).await,
    ];
    assert_eq!(ids, expected, "the live ones, oldest first");
    let one = &sessions[0];
    assert_eq!(one["clientId"], app.client.id.as_str());
    assert_eq!(one["authenticated"], true);
    assert_eq!(one["externalReferenceId"], "ext-ann");
    assert_eq!(one["createdOn"], START.to_iso8601());
    for field in [
        "lastAccessed",
        "expiresOn",
        "locale",
        "currency",
        "clientIpAddress",
    ] {
        assert!(one[field].is_string(), "{field} in {one}");
    }
    for token in [&first, &second, &first_refresh, &second_refresh] {
        assert!(
            !listed.text.contains(token.as_str()),
            "a listing shows a token"
        );
    }
    assert!(!listed.text.contains("tsa_") && !listed.text.contains("tsr_"));

    assert_eq!(
        admin(&app, Method::POST, &format!("{path}/revoke"))
            .await
            .status,
        200
    );
    let after = admin(&app, Method::GET, &path).await;
    assert_eq!(
        after.body["sessions"],
        Value::Array(vec![]),
        "{}",
        after.text
    );

    let unknown = admin(
        &app,
        Method::GET,
        "/admin/v1/shoppers/0123456789abcdef0123456789abcdef/sessions",
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn clean_up_deletes_expired_rows_keeps_consumed_refresh_tokens_and_live_tokens_work() {
    let app = spawn_app().await;
    // One session refreshed twice (two consumed refresh tokens), one logged out.
    let (first_access, first_refresh) = app.anonymous_tokens().await;
    let refreshed = refresh(&app, &first_refresh).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let (logged_out, _) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&logged_out).await.status, 200);

    // Past the first access tokens' hour; the second refresh gives live tokens.
    app.clock.advance_seconds(3601);
    let again = refresh(&app, &refreshed.str("refresh_token")).await;
    assert_eq!(again.status, 200, "{}", again.text);
    let live = again.str("access_token");

    let mut batches = 0;
    let report = app
        .session_admin
        .clean_up(|_| batches += 1)
        .await
        .unwrap_or_else(|e| panic!("clean-up: {e}"));
    assert!(batches >= 3, "progress after every batch");
    // The logged-out session with its two tokens, then the two expired access tokens.
    assert_eq!(report.sessions_deleted, 1, "{report:?}");
    assert_eq!(report.tokens_deleted, 4, "{report:?}");
    for gone in [&first_access, &refreshed.str("access_token"), &logged_out] {
        assert_eq!(
            app.store
                .lookup_token(&hash_of(gone))
                .await
                .unwrap_or_else(|e| panic!("lookup: {e}")),
            None
        );
        assert_refused(&app.get_session(gone).await, "a deleted token");
    }
    assert_eq!(
        app.get_session(&live).await.status,
        200,
        "live tokens still work"
    );

    // The consumed refresh token is still there, so replaying it is still detected.
    let kept = app
        .store
        .lookup_token(&hash_of(&first_refresh))
        .await
        .unwrap_or_else(|e| panic!("lookup: {e}"));
    assert!(kept.is_some_and(|k| k.token.consumed_at.is_some()));
    let replay = refresh(&app, &first_refresh).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.error_code(), Some("invalid_grant"));
    assert_refused(&app.get_session(&live).await, "after a detected replay");

    // A second run finds nothing new but the session the replay revoked.
    let second = app
        .session_admin
        .clean_up(|_| {})
        .await
        .unwrap_or_else(|e| panic!("clean-up: {e}"));
    assert_eq!(second.sessions_deleted, 1, "{second:?}");
    let third = app
        .session_admin
        .clean_up(|_| {})
        .await
        .unwrap_or_else(|e| panic!("clean-up: {e}"));
    assert_eq!((third.sessions_deleted, third.tokens_deleted), (0, 0));
}

#[tokio::test]
async fn clean_up_deletes_sessions_once_they_expire() {
    let app = spawn_app().await;
    let (access, refresh_token) = app.anonymous_tokens().await;
    app.clock.advance_seconds(3601);
    let refreshed = refresh(&app, &refresh_token).await;
    assert_eq!(refreshed.status, 200);

    // A year later the session, with every token of it, consumed ones included, is gone.
    app.clock.advance_seconds(366 * 24 * 3600);
    let report = app
        .session_admin
        .clean_up(|_| {})
        .await
        .unwrap_or_else(|e| panic!("clean-up: {e}"));
    assert_eq!(report.sessions_deleted, 1, "{report:?}");
    assert_eq!(report.tokens_deleted, 4, "{report:?}");
    for token in [&access, &refresh_token, &refreshed.str("refresh_token")] {
        assert!(
            app.store
                .lookup_token(&hash_of(token))
                .await
                .unwrap_or_else(|e| panic!("lookup: {e}"))
                .is_none()
        );
    }
}

#[tokio::test]
async fn the_tidy_up_marks_revoked_sessions_so_clean_up_can_delete_them() {
    let app = spawn_app().await;
    let ann = app.shopper("ext-ann").await;
    app.shopper("ext-bob").await;
    let (first, _) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let (second, _) = shopper_tokens(&app, &app.client, "ext-ann").await;
    let (bob, _) = shopper_tokens(&app, &app.client, "ext-bob").await;
    let path = format!("/admin/v1/shoppers/{ann}/sessions/revoke");
    assert_eq!(admin(&app, Method::POST, &path).await.status, 200);

    // The background tidy-up may already have run; this finishes whatever is left.
    app.session_admin
        .tidy_up()
        .await
        .unwrap_or_else(|e| panic!("tidy-up: {e}"));
    for (token, revoked) in [(&first, true), (&second, true), (&bob, false)] {
        let row = app
            .store
            .lookup_token(&hash_of(token))
            .await
            .unwrap_or_else(|e| panic!("lookup: {e}"))
            .unwrap_or_else(|| panic!("the token row exists"));
        assert_eq!(row.session.revoked_at.is_some(), revoked);
    }

    let report = app
        .session_admin
        .clean_up(|_| {})
        .await
        .unwrap_or_else(|e| panic!("clean-up: {e}"));
    assert_eq!(report.sessions_deleted, 2, "{report:?}");
    assert_eq!(report.tokens_deleted, 4, "{report:?}");
    assert_refused(&app.get_session(&first).await, "a deleted session");
    assert_eq!(app.get_session(&bob).await.status, 200);
}
