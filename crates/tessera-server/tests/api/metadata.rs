//! `GET /.well-known/oauth-authorization-server` (RFC 8414): the issuer, every endpoint as
//! an absolute URL under it, what each accepts, and that every listed endpoint answers.

use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::{Issuer, ServerConfig};

use crate::helpers::*;

const PATH: &str = "/.well-known/oauth-authorization-server";

const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

async fn metadata(app: &TestApp) -> Answer {
    app.request(app.http.get(app.url(PATH))).await
}

#[tokio::test]
async fn the_document_names_every_endpoint_under_the_issuer() {
    let app = spawn_app().await;
    let answer = metadata(&app).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("public, max-age=3600"));
    let issuer = app.address.as_str();
    assert_eq!(
        answer.body,
        json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/oauth20/token"),
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "grant_types_supported": ["password", "client_credentials", "refresh_token"],
            "response_types_supported": ["none"],
            "introspection_endpoint": format!("{issuer}/oauth20/introspect"),
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint": format!("{issuer}/oauth20/revoke"),
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "service_documentation": format!("{issuer}/docs"),
        })
    );
    // RFC 8414 §2: no authorization endpoint, since no grant needs one.
    assert!(answer.body.get("authorization_endpoint").is_none());
}

#[tokio::test]
async fn every_listed_endpoint_answers_at_its_url() {
    let app = spawn_app().await;
    let document = metadata(&app).await.body;
    let url = |field: &str| document[field].as_str().unwrap_or_default().to_owned();
    let post = |url: String, form: String| {
        app.http
            .post(url)
            .basic_auth(&app.client.id, Some(&app.client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
    };

    let issued = app
        .request(post(
            url("token_endpoint"),
            "grant_type=password".to_owned(),
        ))
        .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let access = issued.str("access_token");

    let introspected = app
        .request(post(
            url("introspection_endpoint"),
            format!("token={access}"),
        ))
        .await;
    assert_eq!(introspected.body["active"], true, "{}", introspected.text);

    let revoked = app
        .request(post(url("revocation_endpoint"), format!("token={access}")))
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(app.get_session(&access).await.status, 401);

    let documentation = app
        .request(app.http.get(url("service_documentation")))
        .await;
    assert_eq!(documentation.status, 200);
    assert!(
        documentation
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        documentation.header("content-type")
    );
}

#[tokio::test]
async fn a_configured_issuer_is_published_and_every_url_is_under_it() -> TestResult {
    let issuer = Issuer::parse("https://auth.example.test/tessera/")?;
    let app = spawn_app_with_server_config(ServerConfig {
        issuer: Some(issuer),
        ..ServerConfig::default()
    })
    .await;
    let document = metadata(&app).await.body;
    let base = "https://auth.example.test/tessera";
    assert_eq!(document["issuer"], base);
    let Some(fields) = document.as_object() else {
        panic!("not an object: {document}");
    };
    let endpoints: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(name, _)| name.ends_with("_endpoint"))
        .collect();
    assert_eq!(endpoints.len(), 3);
    assert_eq!(document["service_documentation"], format!("{base}/docs"));
    for (name, url) in endpoints {
        let url = url.as_str().unwrap_or_default();
        assert!(
            url.starts_with(&format!("{base}/oauth20/")),
            "{name}: {url}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_document_answers_head_and_refuses_other_methods() {
    let app = spawn_app().await;
    let head = app.request(app.http.head(app.url(PATH))).await;
    assert_eq!(head.status, 200);
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let answer = app
            .request(app.http.request(method.clone(), app.url(PATH)))
            .await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.dr_code(), Some("method-not-allowed"), "{method}");
        assert!(
            answer.header("allow").is_some_and(|a| a.contains("GET")),
            "{method}"
        );
    }
}
