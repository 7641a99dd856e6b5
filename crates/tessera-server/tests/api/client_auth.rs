//! Client authentication at the token endpoint (API.md §2, RELIABILITY.md "Client
//! authentication").

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::helpers::*;
use crate::token_endpoint::urlencode;

fn basic_raw(decoded: &[u8]) -> String {
    format!("Basic {}", STANDARD.encode(decoded))
}

fn assert_invalid_client(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_client"), "{case}");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Basic realm=\"tessera\""),
        "{case}"
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
}

#[tokio::test]
async fn bad_basic_credentials_are_invalid_client() {
    let app = spawn_app().await;
    let id = app.client.id.clone();
    let cases: Vec<(&str, String)> = vec![
        ("Basic with nothing", "Basic".to_owned()),
        ("Basic with spaces", "Basic    ".to_owned()),
        ("not base64", "Basic %%%not-base64%%%".to_owned()),
        ("no colon", basic_raw(id.as_bytes())),
        (
            "empty id",
            basic_raw(format!(":{}", app.client.secret).as_bytes()),
        ),
        ("empty secret", basic_raw(format!("{id}:").as_bytes())),
        (
            "wrong secret",
            basic_raw(format!("{id}:tcs_wrong").as_bytes()),
        ),
        (
            "secret with a colon",
            basic_raw(format!("{id}:{}:x", app.client.secret).as_bytes()),
        ),
        (
            "unknown client",
            basic_raw(b"00000000000000000000000000000000:tcs_x"),
        ),
        (
            "NUL after decoding",
            basic_raw(format!("{id}\0:{}", app.client.secret).as_bytes()),
        ),
        (
            "invalid UTF-8 after decoding",
            basic_raw(b"\xff\xfe:\xc0\xaf"),
        ),
        ("unknown scheme", format!("Digest {}", app.client.secret)),
        (
            "64 KiB of credentials",
            format!("Basic {}", "A".repeat(64 * 1024)),
        ),
    ];
    for (case, header) in cases {
        let answer = app.token_with(Some(&header), "grant_type=password").await;
        if answer.status == 431 {
            // The 64 KiB header may be refused by the HTTP layer before any parsing.
            continue;
        }
        assert_invalid_client(&answer, case);
    }
}

#[tokio::test]
async fn no_credentials_at_all_is_invalid_client() {
    let app = spawn_app().await;
    let answer = app.token_with(None, "grant_type=password").await;
    assert_invalid_client(&answer, "no credentials");
}

#[tokio::test]
async fn the_basic_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let encoded = STANDARD.encode(format!("{}:{}", app.client.id, app.client.secret));
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let answer = app
            .token_with(Some(&format!("{scheme} {encoded}")), "grant_type=password")
            .await;
        assert_eq!(answer.status, 200, "{scheme}: {}", answer.text);
    }
}

#[tokio::test]
async fn form_encoded_id_and_secret_inside_basic_are_decoded() {
    let app = spawn_app().await;
    let header = basic_raw(
        format!(
            "{}:{}",
            urlencode(&app.client.id),
            urlencode(&app.client.secret)
        )
        .as_bytes(),
    );
    let answer = app.token_with(Some(&header), "grant_type=password").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn credentials_in_the_body_authenticate_a_confidential_client() {
    let app = spawn_app().await;
    let form = format!(
        "grant_type=password&client_id={}&client_secret={}",
        app.client.id, app.client.secret
    );
    let answer = app.token_with(None, &form).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn a_confidential_client_named_by_client_id_alone_is_refused() {
    let app = spawn_app().await;
    let answer = app
        .token_with(
            None,
            &format!("grant_type=password&client_id={}", app.client.id),
        )
        .await;
    assert_invalid_client(&answer, "client_id alone");
}

#[tokio::test]
async fn a_public_client_presenting_a_secret_is_refused() {
    let app = spawn_app().await;
    let form = format!(
        "grant_type=password&client_id={}&client_secret=guess",
        app.public_client_id
    );
    assert_invalid_client(&app.token_with(None, &form).await, "public with secret");
}

#[tokio::test]
async fn two_authentication_methods_in_one_request_are_invalid_request() {
    let app = spawn_app().await;
    let basic_and_body_secret = app
        .token(&format!(
            "grant_type=password&client_id={}&client_secret={}",
            app.client.id, app.client.secret
        ))
        .await;
    assert_eq!(basic_and_body_secret.status, 400);
    assert_eq!(basic_and_body_secret.error_code(), Some("invalid_request"));

    let other_client = app
        .token(&format!(
            "grant_type=password&client_id={}",
            app.public_client_id
        ))
        .await;
    assert_eq!(other_client.status, 400);
    assert_eq!(other_client.error_code(), Some("invalid_request"));

    let same_client = app
        .token(&format!("grant_type=password&client_id={}", app.client.id))
        .await;
    assert_eq!(same_client.status, 200, "{}", same_client.text);
}

#[tokio::test]
async fn two_authorization_headers_are_invalid_request() {
    let app = spawn_app().await;
    let answer = app
        .request(
            app.http
                .post(app.url("/oauth20/token"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(AUTHORIZATION, app.client.basic())
                .header(AUTHORIZATION, app.client.basic())
                .body("grant_type=password"),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_request"));
}

#[tokio::test]
async fn a_disabled_client_cannot_authenticate_and_its_tokens_stop_working() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    assert!(
        app.admin
            .disable_client(&app.client.id)
            .await
            .unwrap_or(false)
    );
    assert_invalid_client(&app.token("grant_type=password").await, "disabled");
    assert_eq!(app.get_session(&access).await.status, 401);
}

#[tokio::test]
async fn an_old_secret_stops_working_after_rotation() {
    let app = spawn_app().await;
    let rotated = app
        .admin
        .rotate_client_secret(&app.client.id)
        .await
        .unwrap_or_else(|e| panic!("rotate: {e}"))
        .unwrap_or_else(|| panic!("the client exists"));
    assert_invalid_client(&app.token("grant_type=password").await, "old secret");
    let fresh = Credentials {
        id: app.client.id.clone(),
        secret: rotated.expose().to_owned(),
    };
    let answer = app
        .token_with(Some(&fresh.basic()), "grant_type=password")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn an_unknown_client_and_a_wrong_secret_get_identical_answers() {
    let app = spawn_app().await;
    let unknown = app
        .token_with(
            Some(&basic_raw(b"0123456789abcdef0123456789abcdef:tcs_wrong")),
            "grant_type=password",
        )
        .await;
    let wrong = app
        .token_with(
            Some(&basic_raw(
                format!("{}:tcs_wrong", app.client.id).as_bytes(),
            )),
            "grant_type=password",
        )
        .await;
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.text, wrong.text);
    assert_eq!(
        unknown.header("www-authenticate"),
        wrong.header("www-authenticate")
    );
}
