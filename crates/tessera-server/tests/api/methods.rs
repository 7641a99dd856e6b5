//! Methods and paths outside the contract: 405 with `Allow` and the error shape of API.md
//! §5 and §8, 404 for unknown paths, and the health endpoints.

use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn other_methods_on_the_token_endpoint_are_405_with_allow() {
    let app = spawn_app().await;
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let answer = app
            .request(app.http.request(method.clone(), app.url("/oauth20/token")))
            .await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.header("allow"), Some("POST"), "{method}");
        assert_eq!(answer.dr_code(), Some("method-not-allowed"), "{method}");
        assert_eq!(
            answer.body["errors"]["error"][0]["relation"],
            "/oauth20/token"
        );
    }
}

#[tokio::test]
async fn other_methods_on_session_paths_are_405_with_allow() {
    let app = spawn_app().await;
    for path in ["/oauth20/access-tokens", "/oauth20/access-token.json"] {
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            let answer = app
                .request(app.http.request(method.clone(), app.url(path)))
                .await;
            assert_eq!(answer.status, 405, "{method} {path}");
            let allow = answer.header("allow").unwrap_or_default();
            assert!(allow.contains("GET") && allow.contains("DELETE"), "{allow}");
            assert_eq!(answer.dr_code(), Some("method-not-allowed"));
        }
    }
}

#[tokio::test]
async fn unknown_paths_are_404_in_the_error_shape() {
    let app = spawn_app().await;
    let answer = app.request(app.http.get(app.url("/oauth20/nothing"))).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.dr_code(), Some("not-found"));
}

#[tokio::test]
async fn a_token_or_secret_in_an_unknown_path_is_not_echoed_in_the_404() {
    let app = spawn_app().await;
    let (access, refresh) = app.anonymous_tokens().await;
    for path in [
        format!("/oauth20/access-tokens/{access}"),
        format!("/oauth20/revoke/token={refresh}/x"),
        "/v1/tcs_not-a-real-secret".to_owned(),
    ] {
        let answer = app.request(app.http.get(app.url(&path))).await;
        assert_eq!(answer.status, 404, "{path}");
        let relation = answer.body["errors"]["error"][0]["relation"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(relation.contains("{redacted}"), "{relation}");
        for secret in [access.as_str(), refresh.as_str(), "tcs_not-a-real-secret"] {
            assert!(!answer.text.contains(secret), "{}", answer.text);
        }
    }
    // Other paths are echoed as they are.
    let answer = app.request(app.http.get(app.url("/oauth20/nothing"))).await;
    assert_eq!(
        answer.body["errors"]["error"][0]["relation"],
        "/oauth20/nothing"
    );
}

#[tokio::test]
async fn health_and_readiness_answer_when_the_store_does() {
    let app = spawn_app().await;
    let health = app.request(app.http.get(app.url("/healthz"))).await;
    assert_eq!(health.status, 200);
    let ready = app.request(app.http.get(app.url("/readyz"))).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ready");
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let app = spawn_app().await;
    for path in ["/healthz", "/oauth20/token", "/nowhere"] {
        let answer = app.request(app.http.get(app.url(path))).await;
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}
