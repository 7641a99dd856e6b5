//! The error semantics of the RFCs, table by table: RFC 6749 §5.2 at the token endpoint,
//! RFC 7662 §2.3 and RFC 7009 §2.2.1 at introspection and revocation (including
//! RELIABILITY.md's bad inputs for them), and RFC 6750 §3.1 on every bearer-protected
//! resource.

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tessera_core::client::Grant;

use crate::helpers::*;
use crate::standards_helpers::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// One request, built by hand so that every part can be wrong.
struct Raw<'a> {
    method: Method,
    path: &'a str,
    authorization: Vec<String>,
    content_type: Option<&'a str>,
    body: String,
}

impl<'a> Raw<'a> {
    fn post(path: &'a str, authorization: Option<String>, body: impl Into<String>) -> Self {
        Self {
            method: Method::POST,
            path,
            authorization: authorization.into_iter().collect(),
            content_type: Some(FORM),
            body: body.into(),
        }
    }

    fn content_type(mut self, content_type: &'a str) -> Self {
        self.content_type = Some(content_type);
        self
    }

    fn also_authorization(mut self, value: String) -> Self {
        self.authorization.push(value);
        self
    }
}

async fn send(app: &TestApp, raw: Raw<'_>) -> Answer {
    let mut request = app.http.request(raw.method, app.url(raw.path));
    for value in raw.authorization {
        request = request.header(AUTHORIZATION, value);
    }
    if let Some(content_type) = raw.content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    app.request(request.body(raw.body)).await
}

#[tokio::test]
async fn the_token_endpoint_answers_every_rfc_6749_error_in_its_shape() {
    let app = spawn_app().await;
    app.shopper("ext-rfc").await;
    let basic = || Some(app.client.basic());
    let wrong = Credentials {
        id: app.client.id.clone(),
        secret: "tcs_wrong".to_owned(),
    };
    let token = "/oauth20/token";
    let public = format!("client_id={}", app.public_client_id);
    let cases: Vec<(&str, Raw<'_>, u16, &str)> = vec![
        (
            "no grant_type",
            Raw::post(token, basic(), ""),
            400,
            "invalid_request",
        ),
        (
            "a duplicated parameter",
            Raw::post(token, basic(), "grant_type=password&grant_type=password"),
            400,
            "invalid_request",
        ),
        (
            "a secret in the query string",
            Raw::post(
                "/oauth20/token?client_secret=tcs_x",
                basic(),
                "grant_type=password",
            ),
            400,
            "invalid_request",
        ),
        (
            "a JSON body",
            Raw::post(token, basic(), r#"{"grant_type":"password"}"#)
                .content_type("application/json"),
            400,
            "invalid_request",
        ),
        (
            "malformed percent-encoding",
            Raw::post(token, basic(), "grant_type=pass%zzword"),
            400,
            "invalid_request",
        ),
        (
            "two authentication methods",
            Raw::post(
                token,
                basic(),
                format!("grant_type=password&client_secret={}", app.client.secret),
            ),
            400,
            "invalid_request",
        ),
        (
            "two Authorization headers",
            Raw::post(token, basic(), "grant_type=password").also_authorization(app.client.basic()),
            400,
            "invalid_request",
        ),
        (
            "no client authentication",
            Raw::post(token, None, "grant_type=password"),
            401,
            "invalid_client",
        ),
        (
            "a wrong secret",
            Raw::post(token, Some(wrong.basic()), "grant_type=password"),
            401,
            "invalid_client",
        ),
        (
            "an unknown refresh token",
            Raw::post(
                token,
                basic(),
                "grant_type=refresh_token&refresh_token=junk",
            ),
            400,
            "invalid_grant",
        ),
        (
            "an unknown external reference id",
            Raw::post(
                token,
                basic(),
                "grant_type=client_credentials&dr_external_reference_id=nobody",
            ),
            400,
            "invalid_grant",
        ),
        (
            "a grant the client may not use",
            Raw::post(
                token,
                None,
                format!("grant_type=client_credentials&{public}"),
            ),
            400,
            "unauthorized_client",
        ),
        (
            "an unknown grant type",
            Raw::post(token, basic(), "grant_type=implicit"),
            400,
            "unsupported_grant_type",
        ),
        (
            "a grant type in the wrong case",
            Raw::post(token, basic(), "grant_type=Password"),
            400,
            "unsupported_grant_type",
        ),
        (
            "a scope",
            Raw::post(token, basic(), "grant_type=password&scope=openid"),
            400,
            "invalid_scope",
        ),
        (
            "a bad limited token",
            Raw::post(
                token,
                basic(),
                "grant_type=client_credentials&dr_external_reference_id=ext-rfc&dr_limited_token=junk",
            ),
            400,
            "dr_limited_token_invalid",
        ),
    ];
    for (case, raw, status, code) in cases {
        let answer = send(&app, raw).await;
        assert_oauth_error(&answer, status, code, case);
    }
}

#[tokio::test]
async fn introspection_and_revocation_answer_bad_requests_as_rfc_6749_errors() {
    let app = spawn_app().await;
    let (access, _) = app.anonymous_tokens().await;
    let basic = || Some(app.client.basic());
    let wrong = Credentials {
        id: app.client.id.clone(),
        secret: "tcs_wrong".to_owned(),
    };
    let token = format!("token={access}");
    for path in ["/oauth20/introspect", "/oauth20/revoke"] {
        let with_query = format!("{path}?token={access}");
        let with_client_id = format!("{path}?client_id={}", app.client.id);
        let cases: Vec<(&str, Raw<'_>, u16, &str)> = vec![
            (
                "no client authentication",
                Raw::post(path, None, token.clone()),
                401,
                "invalid_client",
            ),
            (
                "a wrong secret",
                Raw::post(path, Some(wrong.basic()), token.clone()),
                401,
                "invalid_client",
            ),
            (
                "an unknown client with a random token",
                Raw::post(
                    path,
                    None,
                    "client_id=00000000000000000000000000000000&client_secret=tcs_x&token=junk",
                ),
                401,
                "invalid_client",
            ),
            (
                "an unknown scheme",
                Raw::post(path, Some("Digest abc".to_owned()), token.clone()),
                401,
                "invalid_client",
            ),
            (
                "no token",
                Raw::post(path, basic(), ""),
                400,
                "invalid_request",
            ),
            (
                "an empty token",
                Raw::post(path, basic(), "token="),
                400,
                "invalid_request",
            ),
            (
                "the token twice",
                Raw::post(path, basic(), format!("{token}&{token}")),
                400,
                "invalid_request",
            ),
            (
                "the hint twice",
                Raw::post(
                    path,
                    basic(),
                    format!("{token}&token_type_hint=access_token&token_type_hint=access_token"),
                ),
                400,
                "invalid_request",
            ),
            (
                "the token in the query string",
                Raw::post(&with_query, basic(), ""),
                400,
                "invalid_request",
            ),
            (
                "client_id in the query string",
                Raw::post(&with_client_id, basic(), token.clone()),
                400,
                "invalid_request",
            ),
            (
                "a JSON body",
                Raw::post(path, basic(), format!(r#"{{"token":"{access}"}}"#))
                    .content_type("application/json"),
                400,
                "invalid_request",
            ),
            (
                "a NUL in the token",
                Raw::post(path, basic(), "token=a%00b"),
                400,
                "invalid_request",
            ),
            (
                "two authentication methods",
                Raw::post(
                    path,
                    basic(),
                    format!("{token}&client_secret={}", app.client.secret),
                ),
                400,
                "invalid_request",
            ),
            (
                "two Authorization headers",
                Raw::post(path, basic(), token.clone()).also_authorization(app.client.basic()),
                400,
                "invalid_request",
            ),
            (
                "a body over 16 KiB",
                Raw::post(
                    path,
                    basic(),
                    format!("{token}&pad={}", "a".repeat(17 * 1024)),
                ),
                413,
                "invalid_request",
            ),
        ];
        for (case, raw, status, code) in cases {
            let answer = send(&app, raw).await;
            assert_oauth_error(&answer, status, code, &format!("{path}: {case}"));
        }
    }
    // None of those touched the token.
    assert_eq!(app.get_session(&access).await.status, 200);

    // Another client's token: introspection says inactive, revocation refuses.
    let other = app.client_with(&[Grant::Anonymous]).await;
    assert_inactive(&app.introspect(&other, &access).await, "another client's");
    let refused = app.revoke(&other, &access).await;
    assert_oauth_error(&refused, 400, "unauthorized_client", "another client's");
    assert_eq!(app.get_session(&access).await.status, 200);
}

/// A bearer-protected resource and a request body that it accepts.
struct Resource {
    method: Method,
    path: &'static str,
    body: &'static str,
}

fn resources() -> Vec<Resource> {
    let mut resources = Vec::new();
    for method in [Method::GET, Method::DELETE] {
        for path in [
            "/oauth20/access-tokens",
            "/oauth20/access-tokens.json",
            "/oauth20/access-token",
            "/oauth20/access-token.json",
        ] {
            resources.push(Resource {
                method: method.clone(),
                path,
                body: "",
            });
        }
    }
    resources.push(Resource {
        method: Method::GET,
        path: "/v1/shoppers/me",
        body: "",
    });
    resources.push(Resource {
        method: Method::POST,
        path: "/v1/shoppers/me",
        body: "locale=fr_FR",
    });
    resources
}

async fn call(app: &TestApp, resource: &Resource, authorization: &[String], query: &str) -> Answer {
    let mut request = app.http.request(
        resource.method.clone(),
        app.url(&format!("{}{query}", resource.path)),
    );
    for value in authorization {
        request = request.header(AUTHORIZATION, value);
    }
    if !resource.body.is_empty() {
        request = request
            .header(CONTENT_TYPE, FORM)
            .body(resource.body.to_owned());
    }
    app.request(request).await
}

#[tokio::test]
async fn every_bearer_resource_follows_rfc_6750() {
    let app = spawn_app().await;
    let (_, refresh_token) = app.anonymous_tokens().await;
    let (revoked, _) = app.anonymous_tokens().await;
    assert_eq!(app.delete_session(&revoked).await.status, 200);
    let (live, _) = app.anonymous_tokens().await;
    let no_error = "Bearer realm=\"tessera\"";
    let invalid_token =
        "Bearer realm=\"tessera\", error=\"invalid_token\", error_description=\"Invalid token\"";

    for resource in resources() {
        let case = format!("{} {}", resource.method, resource.path);
        // RFC 6750 §3.1: no credentials at all, or none of the bearer kind, is a bare
        // challenge without error attributes.
        for (what, authorization) in [
            ("no Authorization", vec![]),
            ("Basic instead", vec![app.client.basic()]),
            ("an unknown scheme", vec!["Digest abc".to_owned()]),
        ] {
            let answer = call(&app, &resource, &authorization, "").await;
            assert_eq!(answer.status, 401, "{case}, {what}: {}", answer.text);
            assert_eq!(
                answer.header("www-authenticate"),
                Some(no_error),
                "{case}, {what}"
            );
            assert_eq!(answer.dr_code(), Some("invalid_token"), "{case}, {what}");
        }
        // A token that does not work: the challenge says why.
        for (what, token) in [
            ("garbage", "junk".to_owned()),
            ("a refresh token", refresh_token.clone()),
            ("a revoked token", revoked.clone()),
            ("an empty token", String::new()),
        ] {
            let answer = call(&app, &resource, &[format!("Bearer {token}")], "").await;
            assert_eq!(answer.status, 401, "{case}, {what}: {}", answer.text);
            assert_eq!(
                answer.header("www-authenticate"),
                Some(invalid_token),
                "{case}, {what}"
            );
            assert_eq!(answer.dr_code(), Some("invalid_token"), "{case}, {what}");
            assert_eq!(
                answer.header("cache-control"),
                Some("no-store"),
                "{case}, {what}"
            );
        }
        // A malformed request: 400 and `invalid_request` in the challenge.
        for (what, authorization, query) in [
            (
                "two Authorization headers",
                vec![format!("Bearer {live}"), format!("Bearer {live}")],
                String::new(),
            ),
            (
                "the token twice with different values",
                vec![format!("Bearer {live}")],
                format!("?token={revoked}"),
            ),
        ] {
            let answer = call(&app, &resource, &authorization, &query).await;
            assert_eq!(answer.status, 400, "{case}, {what}: {}", answer.text);
            let challenge = answer.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.starts_with(
                    "Bearer realm=\"tessera\", error=\"invalid_request\", error_description=\""
                ),
                "{case}, {what}: {challenge}"
            );
            assert_eq!(answer.dr_code(), Some("invalid_request"), "{case}, {what}");
        }
        // The scheme in any case, with one or more spaces (RFC 7235 §2.1).
        for scheme in ["Bearer ", "bearer ", "BEARER ", "bEaReR ", "Bearer   "] {
            let (token, _) = app.anonymous_tokens().await;
            let answer = call(&app, &resource, &[format!("{scheme}{token}")], "").await;
            assert_eq!(answer.status, 200, "{case}, {scheme:?}: {}", answer.text);
            assert_eq!(
                answer.header("www-authenticate"),
                None,
                "{case}, {scheme:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_bad_token_is_401_before_any_parameter_is_judged() {
    let app = spawn_app().await;
    // POST /v1/shoppers/me without locale or currency would be invalid_request, but a
    // caller without a live token learns nothing about the resource's parameters.
    let me = Resource {
        method: Method::POST,
        path: "/v1/shoppers/me",
        body: "",
    };
    let answer = call(&app, &me, &["Bearer junk".to_owned()], "").await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_eq!(answer.dr_code(), Some("invalid_token"));
    let answer = call(&app, &me, &[], "").await;
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"tessera\"")
    );
}
