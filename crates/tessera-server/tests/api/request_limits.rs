//! Limits on failed client authentications (RELIABILITY P12, P13) and on plain request
//! rates: what the token, introspection and revocation endpoints answer past them, who
//! they spare, and that a forged `X-Forwarded-For` does not get around them.

use std::net::IpAddr;
use std::num::NonZeroU32;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tessera_core::ServiceConfig;
use tessera_core::limits::RequestRate;
use tessera_server::ServerConfig;

use crate::helpers::{
    Answer, Credentials, TestApp, answer, service_config, spawn_app, spawn_app_with_config,
    spawn_app_with_configs,
};

/// Where the tests' own legitimate client connects from: another loopback address, so a
/// different peer address than the one the failures come from (all of 127/8 is loopback).
const OTHER_ADDRESS: [u8; 4] = [127, 0, 0, 2];

/// Settings with small client-authentication failure limits.
fn limited(per_client_address: u32, per_address: u32) -> ServiceConfig {
    let mut config = service_config();
    config.client_auth_failures_per_hour_per_client_address = per_client_address;
    config.client_auth_failures_per_hour_per_address = per_address;
    config
}

/// An HTTP client whose connections come from `address`.
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

fn basic(id: &str, secret: &str) -> Credentials {
    Credentials {
        id: id.to_owned(),
        secret: secret.to_owned(),
    }
}

/// A `client_credentials` token request with `credentials`, over `http`, with an
/// `X-Forwarded-For` when given.
async fn token_request(
    app: &TestApp,
    http: &reqwest::Client,
    credentials: &Credentials,
    forwarded_for: Option<&str>,
) -> Answer {
    let mut request = http
        .post(app.url("/oauth20/token"))
        .header(AUTHORIZATION, credentials.basic())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials");
    if let Some(value) = forwarded_for {
        request = request.header("X-Forwarded-For", value);
    }
    answer(
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request failed: {e}")),
    )
    .await
}

async fn token(app: &TestApp, credentials: &Credentials) -> Answer {
    token_request(app, &app.http, credentials, None).await
}

/// POSTs `form` to `path` (introspection or revocation) with Basic `credentials`.
async fn token_management(
    app: &TestApp,
    http: &reqwest::Client,
    path: &str,
    credentials: &Credentials,
    form: &str,
) -> Answer {
    answer(
        http.post(app.url(path))
            .header(AUTHORIZATION, credentials.basic())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("request failed: {e}")),
    )
    .await
}

/// Asserts the answer of a failed client authentication within the limit.
fn assert_invalid_client(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_client"), "{case}");
}

/// Asserts the answer past a failed client-authentication limit; returns its
/// `Retry-After` in seconds.
fn assert_client_limited(answer: &Answer, case: &str) -> u64 {
    assert_eq!(answer.status, 429, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_client"), "{case}");
    assert_eq!(
        answer.body["error_description"], "too many failed client authentications; retry later",
        "{case}"
    );
    retry_after(answer, case)
}

fn retry_after(answer: &Answer, case: &str) -> u64 {
    let seconds = answer
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{case}: no whole-second Retry-After: {:?}", answer.headers));
    assert!(seconds >= 1, "{case}: Retry-After {seconds}");
    seconds
}

/// What a client sees of an answer: status, `Retry-After` and body.
fn seen(answer: &Answer) -> (u16, Option<String>, String) {
    (
        answer.status,
        answer.header("retry-after").map(str::to_owned),
        answer.text.clone(),
    )
}

#[tokio::test]
async fn exactly_the_limit_of_failures_is_admitted_per_client_and_address_per_hour() {
    let app = spawn_app_with_config(limited(5, 1000)).await;
    let wrong = basic(&app.client.id, "tcs_wrong");
    let (access, _) = app.anonymous_tokens().await;

    // Successes never count.
    for _ in 0..20 {
        let answer = token(&app, &app.client).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    for i in 0..5 {
        app.clock.advance_seconds(60);
        assert_invalid_client(&token(&app, &wrong).await, &format!("failure {i}"));
    }
    // The sixth is refused before the secret is looked at; the first failure (at 60 s)
    // frees its place an hour after it happened.
    assert_eq!(
        assert_client_limited(&token(&app, &wrong).await, "sixth"),
        3600 - 240
    );
    // From this address even the right secret waits, on every endpoint that
    // authenticates clients.
    assert_client_limited(
        &token(&app, &app.client).await,
        "right secret, same address",
    );
    for path in ["/oauth20/introspect", "/oauth20/revoke"] {
        let answer = token_management(&app, &app.http, path, &app.client, "token=x").await;
        assert_client_limited(&answer, path);
    }
    let minted = app
        .request(
            app.http
                .get(app.url("/oauth20/session-token"))
                .header(AUTHORIZATION, app.client.basic()),
        )
        .await;
    assert_client_limited(&minted, "session token");
    let shopper = app
        .request(
            app.http
                .post(app.url("/v1/shoppers"))
                .header(AUTHORIZATION, app.client.basic())
                .header(CONTENT_TYPE, "application/json")
                .body(r#"{"externalReferenceId":"limited-1"}"#),
        )
        .await;
    assert_eq!(shopper.status, 429, "{}", shopper.text);
    assert_eq!(shopper.dr_code(), Some("too-many-requests"));
    retry_after(&shopper, "shopper registration");
    // Session details with Basic credentials beside `?token=` (API.md §8).
    let details = app
        .request(
            app.http
                .get(app.url(&format!("/oauth20/access-tokens?token={access}")))
                .header(AUTHORIZATION, app.client.basic()),
        )
        .await;
    assert_eq!(details.status, 429, "{}", details.text);
    assert_eq!(details.dr_code(), Some("too-many-requests"));
    retry_after(&details, "session details");
    // The token itself keeps working.
    assert_eq!(app.get_session(&access).await.status, 200);

    // The right secret from another address is never locked out.
    let elsewhere = client_from(OTHER_ADDRESS);
    let answer = token_request(&app, &elsewhere, &app.client, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // Nor is another client from the first address.
    let neighbour = app
        .client_with(&[tessera_core::client::Grant::ClientCredentials])
        .await;
    let answer = token(&app, &neighbour).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // An hour after the first failure, one place is free again: exactly one more failure
    // is admitted, and the right secret works once more.
    app.clock.advance_seconds(3600 - 240);
    let answer = token(&app, &app.client).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_invalid_client(&token(&app, &wrong).await, "after the window moved");
    assert_eq!(
        assert_client_limited(&token(&app, &wrong).await, "window full again"),
        60
    );
}

#[tokio::test]
async fn concurrent_requests_with_the_right_secret_never_fill_the_window() {
    let app = spawn_app_with_config(limited(2, 2)).await;
    let (access, _) = app.anonymous_tokens().await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let request = app
            .http
            .post(app.url("/oauth20/introspect"))
            .header(AUTHORIZATION, app.client.basic())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("token={access}"));
        tasks.push(tokio::spawn(async move {
            request.send().await.map(|r| r.status().as_u16())
        }));
    }
    for task in tasks {
        let status = task
            .await
            .unwrap_or_else(|e| panic!("task: {e}"))
            .unwrap_or_else(|e| panic!("request: {e}"));
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn unknown_and_known_client_ids_get_identical_limiter_answers() {
    let app = spawn_app_with_config(limited(3, 1000)).await;
    let known = basic(&app.client.id, "tcs_wrong");
    let unknown = basic("no-such-client", "tcs_wrong");
    let mut known_answers = Vec::new();
    let mut unknown_answers = Vec::new();
    for _ in 0..6 {
        known_answers.push(seen(&token(&app, &known).await));
        unknown_answers.push(seen(&token(&app, &unknown).await));
    }
    assert_eq!(known_answers, unknown_answers);
    let statuses: Vec<u16> = known_answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
}

#[tokio::test]
async fn the_address_limit_counts_over_all_client_ids() {
    let app = spawn_app_with_config(limited(100, 4)).await;
    // Scanning client ids: one guess each for ten ids from one address.
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(
            token(&app, &basic(&format!("guess-{i}"), "tcs_wrong"))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
    assert_client_limited(&token(&app, &app.client).await, "real client, same address");
    let elsewhere = client_from(OTHER_ADDRESS);
    let answer = token_request(&app, &elsewhere, &app.client, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn a_forged_forwarded_for_does_not_dodge_the_limit_without_a_trusted_proxy() {
    let app = spawn_app_with_config(limited(3, 1000)).await;
    let wrong = basic(&app.client.id, "tcs_wrong");
    let mut statuses = Vec::new();
    for i in 0..8 {
        // Documentation addresses (RFC 5737): never contacted, only claimed.
        let forged = format!("203.0.113.{i}");
        statuses.push(
            token_request(&app, &app.http, &wrong, Some(&forged))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_rotating_left_hand_entries_does_not_dodge_the_limit() {
    let server = ServerConfig {
        trusted_proxies: vec![
            "127.0.0.1/32"
                .parse()
                .unwrap_or_else(|e| panic!("net: {e}")),
        ],
        ..ServerConfig::default()
    };
    let app = spawn_app_with_configs(limited(3, 1000), server).await;
    let wrong = basic(&app.client.id, "tcs_wrong");
    let mut statuses = Vec::new();
    for i in 0..8 {
        // The caller forges the left-hand entry; the proxy appends the real address.
        let chain = format!("198.51.100.{i}, 203.0.113.7");
        statuses.push(
            token_request(&app, &app.http, &wrong, Some(&chain))
                .await
                .status,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429]);
    // The caller the proxy names is who is limited: another caller behind the same proxy
    // keeps authenticating.
    let answer = token_request(&app, &app.http, &app.client, Some("203.0.113.8")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answer = token_request(&app, &app.http, &app.client, Some("203.0.113.7")).await;
    assert_client_limited(&answer, "the limited caller, right secret");
}

fn rate(per_second: u32, burst: u32) -> Option<RequestRate> {
    Some(RequestRate {
        per_second: NonZeroU32::new(per_second)?,
        burst: NonZeroU32::new(burst)?,
    })
}

/// Asserts the answer past a request-rate limit.
fn assert_rate_limited(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 429, "{case}: {}", answer.text);
    assert_eq!(
        answer.error_code(),
        Some("temporarily_unavailable"),
        "{case}"
    );
    retry_after(answer, case);
}

#[tokio::test]
async fn rate_limits_are_off_by_default() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let form = format!("token={access}");
    // A burst of introspections and token requests from one client and address, at once.
    let mut tasks = Vec::new();
    for i in 0..400 {
        let http = app.http.clone();
        let url = app.url(if i % 4 == 0 {
            "/oauth20/token"
        } else {
            "/oauth20/introspect"
        });
        let body = if i % 4 == 0 {
            "grant_type=client_credentials".to_owned()
        } else {
            form.clone()
        };
        let authorization = app.client.basic();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .header(AUTHORIZATION, authorization)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for task in tasks {
        let status = task
            .await
            .unwrap_or_else(|e| panic!("task: {e}"))
            .unwrap_or_else(|e| panic!("request: {e}"));
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn over_rate_requests_of_one_client_get_429_with_retry_after() {
    let mut config = service_config();
    config.requests_per_client = rate(1, 2);
    let app = spawn_app_with_config(config).await;
    let other = app
        .client_with(&[tessera_core::client::Grant::ClientCredentials])
        .await;
    // One more request a second refills: of 20 sent at once past the burst of 2, nearly
    // all are refused.
    let mut refused = 0;
    for path in ["/oauth20/token", "/oauth20/introspect", "/oauth20/revoke"] {
        for _ in 0..10 {
            let answer = if path == "/oauth20/token" {
                token(&app, &app.client).await
            } else {
                token_management(&app, &app.http, path, &app.client, "token=x").await
            };
            if answer.status == 429 {
                assert_rate_limited(&answer, path);
                refused += 1;
            } else {
                assert_eq!(answer.status, 200, "{path}: {}", answer.text);
            }
        }
    }
    assert!(refused >= 15, "only {refused} of 30 refused");
    // Another client is not affected.
    let answer = token(&app, &other).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn over_rate_requests_of_one_address_get_429_and_other_addresses_go_on() {
    let mut config = service_config();
    config.requests_per_address = rate(1, 2);
    let app = spawn_app_with_config(config).await;
    let mut refused = 0;
    for i in 0..20 {
        // Different clients, one address; and a forged X-Forwarded-For changes nothing.
        let answer = token_request(
            &app,
            &app.http,
            &app.client,
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        if answer.status == 429 {
            assert_rate_limited(&answer, "same address");
            refused += 1;
        }
    }
    assert!(refused >= 10, "only {refused} of 20 refused");
    let elsewhere = client_from(OTHER_ADDRESS);
    let answer = token_request(&app, &elsewhere, &app.client, None).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}
