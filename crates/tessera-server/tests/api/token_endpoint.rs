//! `POST /oauth20/token`: the grants of this slice and the token endpoint's bad inputs
//! (API.md §2, RELIABILITY.md "Token endpoint").

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tessera_core::client::Grant;

use crate::helpers::*;

fn assert_token_headers(answer: &Answer) {
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("pragma"), Some("no-cache"));
    assert!(
        answer
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
}

#[tokio::test]
async fn an_anonymous_token_comes_with_a_refresh_token_and_rfc_6749_fields() {
    let app = spawn_app().await;
    let answer = app.token("grant_type=password").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_token_headers(&answer);
    assert!(answer.str("access_token").starts_with("tsa_"));
    assert!(answer.str("refresh_token").starts_with("tsr_"));
    assert_eq!(answer.body["token_type"], "bearer");
    assert_eq!(answer.body["expires_in"].as_i64(), Some(3600));
    let session = app.get_session(&answer.str("access_token")).await;
    assert_eq!(session.body["authenticated"], "false");
    assert!(session.body["userId"].is_string());
}

#[tokio::test]
async fn the_legacy_anonymous_form_also_gives_a_limited_token() {
    let app = spawn_app().await;
    let answer = app
        .token("grant_type=password&username=anonymous&password=anonymous")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let session = app.get_session(&answer.str("access_token")).await;
    assert_eq!(session.body["authenticated"], "false");
}

#[tokio::test]
async fn a_public_client_gets_anonymous_tokens_by_client_id_or_empty_basic_secret() {
    let app = spawn_app().await;
    let by_body = app
        .token_with(
            None,
            &format!("grant_type=password&client_id={}", app.public_client_id),
        )
        .await;
    assert_eq!(by_body.status, 200, "{}", by_body.text);
    let basic = Credentials {
        id: app.public_client_id.clone(),
        secret: String::new(),
    };
    let by_basic = app
        .token_with(Some(&basic.basic()), "grant_type=password")
        .await;
    assert_eq!(by_basic.status, 200, "{}", by_basic.text);
}

#[tokio::test]
async fn a_partner_shopper_token_is_a_full_token_for_that_shopper() {
    let app = spawn_app().await;
    let user_id = app.shopper("partner-42").await;
    for form in [
        "grant_type=client_credentials&dr_external_reference_id=partner-42",
        "grant_type=client_credentials&externalReferenceId=partner-42",
    ] {
        let answer = app.token(form).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_token_headers(&answer);
        assert!(answer.str("refresh_token").starts_with("tsr_"));
        let session = app.get_session(&answer.str("access_token")).await;
        assert_eq!(session.body["authenticated"], "true");
        assert_eq!(session.str("userId"), user_id);
        assert_eq!(session.body["externalReferenceId"], "partner-42");
        assert_eq!(session.body["locale"], "de_DE");
        assert_eq!(session.body["currency"], "EUR");
    }
}

#[tokio::test]
async fn the_external_reference_id_may_come_in_the_query_string() {
    let app = spawn_app().await;
    app.shopper("in-query").await;
    let answer = app
        .token_at(
            "/oauth20/token?dr_external_reference_id=in-query&format=json",
            Some(&app.client.basic()),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

#[tokio::test]
async fn an_unknown_external_reference_id_is_invalid_grant() {
    let app = spawn_app().await;
    for id in ["nobody", "x' OR '1'='1", "1; DROP TABLE sessions; --"] {
        let form = format!(
            "grant_type=client_credentials&dr_external_reference_id={}",
            urlencode(id)
        );
        let answer = app.token(&form).await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.error_code(), Some("invalid_grant"));
        assert!(!answer.text.contains(id));
    }
}

#[tokio::test]
async fn a_client_token_has_no_shopper_and_no_refresh_token() {
    let app = spawn_app().await;
    let answer = app.token("grant_type=client_credentials").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_token_headers(&answer);
    assert!(answer.body.get("refresh_token").is_none());
    let session = app.get_session(&answer.str("access_token")).await;
    assert_eq!(session.status, 200);
    assert!(session.body["userId"].is_null());
    assert!(session.body["externalReferenceId"].is_null());
}

#[tokio::test]
async fn public_clients_may_not_use_client_credentials() {
    let app = spawn_app().await;
    app.shopper("p-1").await;
    for form in [
        "grant_type=client_credentials".to_owned(),
        "grant_type=client_credentials&dr_external_reference_id=p-1".to_owned(),
    ] {
        let form = format!("{form}&client_id={}", app.public_client_id);
        let answer = app.token_with(None, &form).await;
        assert_eq!(answer.status, 400, "{}", answer.text);
        assert_eq!(answer.error_code(), Some("unauthorized_client"));
    }
}

#[tokio::test]
async fn a_grant_the_client_is_not_allowed_is_unauthorized_client() {
    let app = spawn_app().await;
    let only_client_credentials = app.client_with(&[Grant::ClientCredentials]).await;
    let answer = app
        .token_with(
            Some(&only_client_credentials.basic()),
            "grant_type=password",
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error_code(), Some("unauthorized_client"));
    let only_anonymous = app.client_with(&[Grant::Anonymous]).await;
    let answer = app
        .token_with(
            Some(&only_anonymous.basic()),
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.error_code(), Some("unauthorized_client"));
}

#[tokio::test]
async fn json_path_and_trailing_slash_are_the_token_endpoint() {
    let app = spawn_app().await;
    for path in ["/oauth20/token.json", "/oauth20/token/"] {
        let answer = app
            .token_at(path, Some(&app.client.basic()), "grant_type=password")
            .await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
    }
}

#[tokio::test]
async fn format_ts_and_t_are_ignored_wherever_they_appear() {
    let app = spawn_app().await;
    let answer = app
        .token_at(
            "/oauth20/token?format=json&ts=1&t=2",
            Some(&app.client.basic()),
            "grant_type=password&format=json&ts=3&t=4",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

struct Case {
    name: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
    status: u16,
    error: &'static str,
}

#[tokio::test]
async fn malformed_token_requests_get_rfc_6749_errors() {
    let app = spawn_app().await;
    let cases = [
        Case {
            name: "json body",
            path: "/oauth20/token",
            content_type: Some("application/json"),
            body: r#"{"grant_type":"password"}"#,
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "no content type",
            path: "/oauth20/token",
            content_type: None,
            body: "grant_type=password",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "text content type",
            path: "/oauth20/token",
            content_type: Some("text/plain"),
            body: "grant_type=password",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "no grant_type",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "username=a",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "empty grant_type",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "unknown grant",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=implicit",
            status: 400,
            error: "unsupported_grant_type",
        },
        Case {
            name: "differently cased grant",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=Password",
            status: 400,
            error: "unsupported_grant_type",
        },
        Case {
            name: "duplicate grant_type",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=password&grant_type=password",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "grant_type in query and body",
            path: "/oauth20/token?grant_type=password",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=password",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "aliases count as one parameter",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=client_credentials&dr_external_reference_id=a&externalReferenceId=a",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "password in query",
            path: "/oauth20/token?password=x",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=password&username=u",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "refresh token in query",
            path: "/oauth20/token?refresh_token=x",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=refresh_token",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "limited token in query",
            path: "/oauth20/token?dr_limited_token=x",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=client_credentials",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "username without password",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=password&username=ann",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "NUL in a value",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=client_credentials&dr_external_reference_id=a%00b",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "CRLF in a value",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=password%0D%0A",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "malformed percent-encoding",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=pass%zzword",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "overlong UTF-8",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=%C0%AFpassword",
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "a requested scope",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=client_credentials&scope=admin",
            status: 400,
            error: "invalid_scope",
        },
        Case {
            name: "an unminted session token",
            path: "/oauth20/token",
            content_type: Some("application/x-www-form-urlencoded"),
            body: "grant_type=password&dr_session_token=0123456789ABCDEF0123456789ABCDEF",
            status: 400,
            error: "invalid_grant",
        },
    ];
    for case in cases {
        let mut request = app
            .http
            .post(app.url(case.path))
            .header(AUTHORIZATION, app.client.basic())
            .body(case.body);
        if let Some(content_type) = case.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let answer = app.request(request).await;
        assert_eq!(answer.status, case.status, "{}: {}", case.name, answer.text);
        assert_eq!(
            answer.error_code(),
            Some(case.error),
            "{}: {}",
            case.name,
            answer.text
        );
        assert!(
            answer.body["error_description"].is_string(),
            "{}",
            case.name
        );
        assert_eq!(
            answer.header("cache-control"),
            Some("no-store"),
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn fields_that_try_to_set_lifetimes_or_subjects_are_ignored_and_not_reflected() {
    let app = spawn_app().await;
    let answer = app
        .token("grant_type=password&expires_in=99999999&sub=root-admin&user_id=victim&authenticated=true")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["expires_in"].as_i64(), Some(3600));
    assert!(!answer.text.contains("root-admin"));
    let session = app.get_session(&answer.str("access_token")).await;
    assert_eq!(session.body["authenticated"], "false");
    assert_ne!(session.body["userId"], "victim");
    assert!(!session.text.contains("root-admin"));
}

#[tokio::test]
async fn a_one_mebibyte_body_is_refused_with_413() {
    let app = spawn_app().await;
    let body = format!("grant_type=password&pad={}", "a".repeat(1 << 20));
    let answer = app.token(&body).await;
    assert_eq!(answer.status, 413, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_request"));
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_off_with_413() {
    let app = spawn_app().await;
    let mut request = format!(
        "POST /oauth20/token HTTP/1.1\r\nHost: test\r\nAuthorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.client.basic()
    )
    .into_bytes();
    // 64 KiB of chunks and no terminating chunk: the server must answer before the end.
    for _ in 0..64 {
        request.extend_from_slice(b"400\r\n");
        request.extend_from_slice(&[b'a'; 1024]);
        request.extend_from_slice(b"\r\n");
    }
    let reply = app.raw(&request, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

#[tokio::test]
async fn a_token_request_with_only_query_parameters_and_no_body_is_accepted() {
    let app = spawn_app().await;
    let answer = app
        .request(
            app.http
                .post(app.url("/oauth20/token?grant_type=password"))
                .header(AUTHORIZATION, app.client.basic()),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

pub fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
