//! `GET /oauth20/access-tokens` and its aliases (API.md §3, §5, §8; RELIABILITY.md
//! "Bearer use").

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::AUTHORIZATION;

use crate::helpers::*;

fn assert_invalid_token(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {}", answer.text);
    assert_eq!(answer.dr_code(), Some("invalid_token"), "{case}");
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer realm=\"tessera\""),
        "{case}: {challenge}"
    );
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{case}: {challenge}"
    );
    assert!(
        challenge.contains("error_description="),
        "{case}: {challenge}"
    );
}

#[tokio::test]
async fn session_details_carry_every_field_of_the_contract() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    app.clock.advance_seconds(10);
    let answer = app.get_session(&access).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body = &answer.body;
    assert_eq!(body["sessionId"].as_str().map(str::len), Some(32));
    assert!(body["userId"].is_string());
    assert!(body["externalReferenceId"].is_null());
    assert_eq!(body["authenticated"], "false");
    assert_eq!(body["locale"], "en_US");
    assert_eq!(body["currency"], "USD");
    assert!(body["cartId"].is_null());
    assert_eq!(body["clientIpAddress"], "127.0.0.1");
    assert_eq!(body["domain"], NODE_NAME);
    assert_eq!(body["expiresIn"].as_i64(), Some(3590));
    assert!(body["themeId"].is_null());
    let tag = body["sessionTag"].as_str().unwrap_or_default();
    assert_eq!(tag.len(), 32);
    assert!(
        tag.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_eq!(body["createdOn"], "2026-11-27T12:00:00.000Z");
    assert_eq!(body["lastAccessed"], "2026-11-27T12:00:00.000Z");
    assert_eq!(body["accessToken"], access.as_str());
    assert_eq!(body.as_object().map(|o| o.len()), Some(15));
}

#[tokio::test]
async fn every_alias_path_answers_the_same_session() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let mut sessions = Vec::new();
    for path in [
        "/oauth20/access-tokens",
        "/oauth20/access-tokens.json",
        "/oauth20/access-token",
        "/oauth20/access-token.json",
    ] {
        let answer = app.bearer(Method::GET, path, &access).await;
        assert_eq!(answer.status, 200, "{path}");
        sessions.push(answer.str("sessionId"));
    }
    sessions.dedup();
    assert_eq!(sessions.len(), 1);
}

#[tokio::test]
async fn the_token_may_come_in_the_query_string_and_the_scheme_in_any_case() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let by_query = app
        .request(app.http.get(app.url(&format!(
            "/oauth20/access-tokens?token={access}&format=json&ts=1"
        ))))
        .await;
    assert_eq!(by_query.status, 200, "{}", by_query.text);
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let answer = app
            .request(
                app.http
                    .get(app.url("/oauth20/access-tokens"))
                    .header(AUTHORIZATION, format!("{scheme} {access}")),
            )
            .await;
        assert_eq!(answer.status, 200, "{scheme}");
    }
    let same_in_both = app
        .request(
            app.http
                .get(app.url(&format!("/oauth20/access-tokens?token={access}")))
                .header(AUTHORIZATION, format!("Bearer {access}")),
        )
        .await;
    assert_eq!(same_in_both.status, 200);
}

#[tokio::test]
async fn different_tokens_in_header_and_query_are_invalid_request() {
    let app = spawn_app().await;
    let (first, _) = app.anonymous_tokens().await;
    let (second, _) = app.anonymous_tokens().await;
    let answer = app
        .request(
            app.http
                .get(app.url(&format!("/oauth20/access-tokens?token={second}")))
                .header(AUTHORIZATION, format!("Bearer {first}")),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.dr_code(), Some("invalid_request"));
    let challenge = answer.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    assert!(!answer.text.contains(&first) && !answer.text.contains(&second));
}

#[tokio::test]
async fn basic_credentials_beside_a_query_token_must_be_valid() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let path = format!("/oauth20/access-tokens?token={access}");
    let valid = app
        .request(
            app.http
                .get(app.url(&path))
                .header(AUTHORIZATION, app.client.basic()),
        )
        .await;
    assert_eq!(valid.status, 200, "{}", valid.text);
    let wrong = Credentials {
        id: app.client.id.clone(),
        secret: "tcs_wrong".to_owned(),
    };
    let invalid = app
        .request(
            app.http
                .get(app.url(&path))
                .header(AUTHORIZATION, wrong.basic()),
        )
        .await;
    assert_eq!(invalid.status, 401, "{}", invalid.text);
    assert_eq!(invalid.dr_code(), Some("invalid_client"));
}

#[tokio::test]
async fn no_token_at_all_gets_a_challenge_without_an_error_code() {
    let app = spawn_app().await;
    let answer = app
        .request(app.http.get(app.url("/oauth20/access-tokens")))
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"tessera\"")
    );
    assert_eq!(answer.dr_code(), Some("invalid_token"));
    assert_eq!(
        answer.body["errors"]["error"][0]["relation"],
        "/oauth20/access-tokens"
    );
}

#[tokio::test]
async fn malformed_bearer_values_are_invalid_token() {
    let app = spawn_app().await;
    let (access, refresh) = app.anonymous_tokens().await;
    let cases: Vec<(&str, String)> = vec![
        ("empty token", "Bearer ".to_owned()),
        ("trailing garbage", format!("Bearer {access} extra")),
        ("appended characters", format!("Bearer {access}x")),
        (
            "truncated",
            format!("Bearer {}", &access[..access.len() - 1]),
        ),
        ("outside the token syntax", "Bearer tsa_k_$$$$".to_owned()),
        ("a refresh token", format!("Bearer {refresh}")),
        ("random garbage", "Bearer aGVsbG8gd29ybGQ=".to_owned()),
    ];
    for (case, header) in cases {
        let answer = app
            .request(
                app.http
                    .get(app.url("/oauth20/access-tokens"))
                    .header(AUTHORIZATION, header),
            )
            .await;
        assert_invalid_token(&answer, case);
    }
    let double_space = app
        .request(
            app.http
                .get(app.url("/oauth20/access-tokens"))
                .header(AUTHORIZATION, format!("Bearer  {access}")),
        )
        .await;
    assert_eq!(double_space.status, 200, "RFC 7235 allows 1*SP");
}

#[tokio::test]
async fn a_one_mebibyte_token_is_refused_with_a_4xx() {
    let app = spawn_app().await;
    let huge = "a".repeat(1 << 20);
    let answer = app
        .request(
            app.http
                .get(app.url("/oauth20/access-tokens"))
                .header(AUTHORIZATION, format!("Bearer {huge}")),
        )
        .await;
    assert!((400..500).contains(&answer.status), "{}", answer.status);
    let in_query = app
        .raw(
            format!("GET /oauth20/access-tokens?token={huge} HTTP/1.1\r\nHost: t\r\n\r\n")
                .as_bytes(),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        in_query.starts_with("HTTP/1.1 4"),
        "{}",
        &in_query[..in_query.len().min(80)]
    );
}

#[tokio::test]
async fn crlf_injection_in_the_header_never_reaches_a_handler() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let reply = app
        .raw(
            format!(
                "GET /oauth20/access-tokens HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {access}\rX-Injected: 1\r\n\r\n"
            )
            .as_bytes(),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        reply.starts_with("HTTP/1.1 400"),
        "{}",
        &reply[..reply.len().min(80)]
    );
}

#[tokio::test]
async fn an_altered_token_is_refused_without_a_store_lookup() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let before = app.lookups.load(Ordering::SeqCst);
    let mut altered: Vec<char> = access.chars().collect();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    assert_invalid_token(&app.get_session(&altered).await, "altered MAC");
    assert_invalid_token(&app.delete_session(&altered).await, "altered MAC (DELETE)");
    assert_eq!(app.lookups.load(Ordering::SeqCst), before);
    assert_eq!(app.get_session(&access).await.status, 200);
    assert_eq!(app.lookups.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn an_expired_token_is_refused_and_expires_in_counts_down() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    app.clock.advance_seconds(3000);
    let answer = app.get_session(&access).await;
    assert_eq!(answer.body["expiresIn"].as_i64(), Some(600));
    app.clock.advance_seconds(600);
    assert_invalid_token(&app.get_session(&access).await, "expired");
}

#[tokio::test]
async fn last_accessed_moves_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    app.clock.advance_seconds(30);
    let _ = app.get_session(&access).await;
    assert_eq!(
        app.get_session(&access).await.body["lastAccessed"],
        "2026-11-27T12:00:00.000Z"
    );
    app.clock.advance_seconds(90);
    let _ = app.get_session(&access).await;
    // The update is written off the request path; poll a bounded number of times.
    let mut seen = String::new();
    for _ in 0..100 {
        seen = app.get_session(&access).await.str("lastAccessed");
        if seen == "2026-11-27T12:02:00.000Z" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(seen, "2026-11-27T12:02:00.000Z");
}

#[tokio::test]
async fn the_client_address_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
    let untrusted = spawn_app().await;
    let forged = untrusted
        .request(
            untrusted
                .http
                .post(untrusted.url("/oauth20/token"))
                .header(AUTHORIZATION, untrusted.client.basic())
                .header("x-forwarded-for", "203.0.113.7")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=password"),
        )
        .await;
    let session = untrusted.get_session(&forged.str("access_token")).await;
    assert_eq!(
        session.body["clientIpAddress"], "127.0.0.1",
        "the header was ignored"
    );

    let behind_proxy = spawn_app_with_server_config(tessera_server::ServerConfig {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"))],
        ..tessera_server::ServerConfig::default()
    })
    .await;
    for (header, expected) in [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7, 127.0.0.9", "203.0.113.7"),
        ("not-an-address", "127.0.0.1"),
    ] {
        let issued = behind_proxy
            .request(
                behind_proxy
                    .http
                    .post(behind_proxy.url("/oauth20/token"))
                    .header(AUTHORIZATION, behind_proxy.client.basic())
                    .header("x-forwarded-for", header)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=password"),
            )
            .await;
        assert_eq!(issued.status, 200, "{}", issued.text);
        let session = behind_proxy.get_session(&issued.str("access_token")).await;
        assert_eq!(session.body["clientIpAddress"], expected, "{header}");
    }
}
