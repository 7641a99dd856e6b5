//! `/v1/shoppers` (API.md §1): registering shoppers, reading the token's shopper, and
//! changing the session's locale and currency.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::json;

use crate::helpers::*;

async fn register(app: &TestApp, authorization: Option<&str>, body: serde_json::Value) -> Answer {
    let mut request = app
        .http
        .post(app.url("/v1/shoppers"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    app.request(request).await
}

#[tokio::test]
async fn a_confidential_client_registers_a_shopper_who_then_gets_tokens() {
    let app = spawn_app().await;
    let created = register(
        &app,
        Some(&app.client.basic()),
        json!({
            "externalReferenceId": "api-1",
            "username": "  Ann@Example.com ",
            "password": "s3cret&=+",
            "firstName": "Ann",
            "lastName": "Müller",
            "email": "ann@example.com",
            "locale": "de_DE",
            "currency": "EUR",
            "isAdmin": true
        }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    assert_eq!(created.body["externalReferenceId"], "api-1");
    assert_eq!(created.body["username"], "ann@example.com");
    assert_eq!(created.body["firstName"], "Ann");
    assert!(created.body.get("password").is_none());
    assert!(!created.text.contains("s3cret"));
    assert!(!created.text.contains("argon2"));
    assert!(!created.text.contains("isAdmin"));

    let token = app
        .token("grant_type=client_credentials&dr_external_reference_id=api-1")
        .await;
    assert_eq!(token.status, 200, "{}", token.text);
    let me = app
        .bearer(
            reqwest::Method::GET,
            "/v1/shoppers/me",
            &token.str("access_token"),
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], created.body["id"]);
    assert_eq!(me.body["lastName"], "Müller");
    assert_eq!(me.body["email"], "ann@example.com");
    assert_eq!(me.body["locale"], "de_DE");
    assert_eq!(me.body["authenticated"], "true");
}

#[tokio::test]
async fn registering_needs_a_confidential_client_and_valid_fields() {
    let app = spawn_app().await;
    let no_auth = register(&app, None, json!({"externalReferenceId": "x"})).await;
    assert_eq!(no_auth.status, 401, "{}", no_auth.text);
    assert_eq!(no_auth.dr_code(), Some("invalid_client"));
    let public = Credentials {
        id: app.public_client_id.clone(),
        secret: String::new(),
    };
    let forbidden = register(
        &app,
        Some(&public.basic()),
        json!({"externalReferenceId": "x"}),
    )
    .await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text);
    assert_eq!(forbidden.dr_code(), Some("forbidden"));
    for (case, body) in [
        ("no identifier", json!({"firstName": "A"})),
        (
            "bad locale",
            json!({"externalReferenceId": "y", "locale": "en-US"}),
        ),
        (
            "bad currency",
            json!({"externalReferenceId": "y", "currency": "usd"}),
        ),
        (
            "bad email",
            json!({"externalReferenceId": "y", "email": "nope"}),
        ),
        (
            "password without username",
            json!({"externalReferenceId": "y", "password": "p"}),
        ),
        ("empty id", json!({"externalReferenceId": "  "})),
        (
            "overlong id",
            json!({"externalReferenceId": "a".repeat(300)}),
        ),
        (
            "NUL in a name",
            json!({"externalReferenceId": "y", "firstName": "A\u{0}B"}),
        ),
        ("newline in an id", json!({"externalReferenceId": "y\nz"})),
        ("not an object", json!(["externalReferenceId"])),
    ] {
        let answer = register(&app, Some(&app.client.basic()), body).await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.text);
        assert_eq!(answer.dr_code(), Some("invalid_request"), "{case}");
    }
    let form = app
        .request(
            app.http
                .post(app.url("/v1/shoppers"))
                .header(AUTHORIZATION, app.client.basic())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("externalReferenceId=z"),
        )
        .await;
    assert_eq!(form.status, 400);
}

#[tokio::test]
async fn a_taken_external_reference_id_or_username_is_a_conflict() {
    let app = spawn_app().await;
    let first = register(
        &app,
        Some(&app.client.basic()),
        json!({"externalReferenceId": "dup", "username": "dup-user"}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    for body in [
        json!({"externalReferenceId": "dup"}),
        json!({"externalReferenceId": "other", "username": "DUP-user"}),
    ] {
        let answer = register(&app, Some(&app.client.basic()), body).await;
        assert_eq!(answer.status, 409, "{}", answer.text);
        assert_eq!(answer.dr_code(), Some("conflict"));
    }
}

#[tokio::test]
async fn a_limited_token_sees_an_anonymous_shopper_and_a_client_token_none() {
    let app = spawn_app().await;
    let (limited, _) = app.anonymous_tokens().await;
    let me = app
        .bearer(reqwest::Method::GET, "/v1/shoppers/me", &limited)
        .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["username"], "anonymous");
    assert_eq!(me.body["authenticated"], "false");
    let session = app.get_session(&limited).await;
    assert_eq!(me.body["id"], session.body["userId"]);

    let client_token = app
        .token("grant_type=client_credentials")
        .await
        .str("access_token");
    let none = app
        .bearer(reqwest::Method::GET, "/v1/shoppers/me", &client_token)
        .await;
    assert_eq!(none.status, 403, "{}", none.text);
    assert_eq!(none.dr_code(), Some("forbidden"));

    let missing = app.request(app.http.get(app.url("/v1/shoppers/me"))).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"tessera\"")
    );
    let revoked = {
        let (token, _) = app.anonymous_tokens().await;
        assert_eq!(app.delete_session(&token).await.status, 200);
        token
    };
    let gone = app
        .bearer(reqwest::Method::GET, "/v1/shoppers/me", &revoked)
        .await;
    assert_eq!(gone.status, 401);
    assert_eq!(gone.dr_code(), Some("invalid_token"));
}

#[tokio::test]
async fn posting_locale_and_currency_changes_the_session() {
    let app = spawn_app().await;
    let (limited, _) = app.anonymous_tokens().await;
    let by_query = app
        .request(
            app.http
                .post(app.url("/v1/shoppers/me?locale=fr_FR&currency=EUR"))
                .bearer_auth(&limited),
        )
        .await;
    assert_eq!(by_query.status, 200, "{}", by_query.text);
    assert_eq!(by_query.body["locale"], "fr_FR");
    let session = app.get_session(&limited).await;
    assert_eq!(session.body["locale"], "fr_FR");
    assert_eq!(session.body["currency"], "EUR");

    let by_form = app
        .request(
            app.http
                .post(app.url("/v1/shoppers/me"))
                .bearer_auth(&limited)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("currency=GBP"),
        )
        .await;
    assert_eq!(by_form.status, 200, "{}", by_form.text);
    let session = app.get_session(&limited).await;
    assert_eq!(
        session.body["locale"], "fr_FR",
        "an absent field is unchanged"
    );
    assert_eq!(session.body["currency"], "GBP");

    for (case, path) in [
        ("nothing to change", "/v1/shoppers/me"),
        ("bad locale", "/v1/shoppers/me?locale=french"),
        ("bad currency", "/v1/shoppers/me?currency=pounds"),
        ("twice", "/v1/shoppers/me?locale=fr_FR&locale=de_DE"),
    ] {
        let answer = app
            .request(app.http.post(app.url(path)).bearer_auth(&limited))
            .await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.text);
        assert_eq!(answer.dr_code(), Some("invalid_request"), "{case}");
    }
    let other_methods = app
        .request(
            app.http
                .delete(app.url("/v1/shoppers/me"))
                .bearer_auth(&limited),
        )
        .await;
    assert_eq!(other_methods.status, 405);
}
