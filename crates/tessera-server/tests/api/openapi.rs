//! The OpenAPI document at `/openapi.json` and Swagger UI at `/docs`, served from the
//! binary itself.

use reqwest::Method;
use serde_json::Value;
use tessera_server::{Issuer, Metrics, ServerConfig};

use crate::helpers::{Answer, TestApp, TestResult, spawn_app_with_server_config};

/// Every public path of API.md §1, aliases included.
const PUBLIC_PATHS: [&str; 20] = [
    "/oauth20/token",
    "/oauth20/token.json",
    "/oauth20/token/",
    "/oauth20/access-tokens",
    "/oauth20/access-tokens.json",
    "/oauth20/access-token",
    "/oauth20/access-token.json",
    "/oauth20/session-token",
    "/oauth20/introspect",
    "/oauth20/revoke",
    "/.well-known/oauth-authorization-server",
    "/v1/shoppers",
    "/v1/shoppers/me",
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/docs/",
    "/docs/{file}",
    "/metrics",
];

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// An app that also serves the metadata document and metrics, as the binary always does.
async fn spawn() -> Result<TestApp, Box<dyn std::error::Error>> {
    Ok(spawn_app_with_server_config(ServerConfig {
        issuer: Some(Issuer::parse("https://auth.example.test")?),
        metrics: Some(Metrics::install()?),
        ..ServerConfig::default()
    })
    .await)
}

async fn document(app: &TestApp) -> Result<Value, Box<dyn std::error::Error>> {
    let answer = app.request(app.http.get(app.url("/openapi.json"))).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        answer.header("content-type")
    );
    Ok(answer.body)
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_names_every_public_path() -> TestResult {
    let app = spawn().await?;
    let document = document(&app).await?;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        document["openapi"]
    );
    assert_eq!(document["info"]["title"], "Tessera");
    let mut documented: Vec<&str> = document["paths"]
        .as_object()
        .map(|paths| paths.keys().map(String::as_str).collect())
        .unwrap_or_default();
    documented.sort_unstable();
    let mut expected = PUBLIC_PATHS.to_vec();
    expected.sort_unstable();
    assert_eq!(documented, expected);
    // The administration API has its own listener and is not part of this document.
    assert!(!documented.iter().any(|path| path.starts_with("/admin")));
    Ok(())
}

/// A documented path with its template filled in.
fn concrete(path: &str) -> String {
    path.replace("{file}", "swagger-ui.css")
}

/// `method`, lower case as the document names it, on `path`.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
) -> Result<Answer, Box<dyn std::error::Error>> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())?;
    Ok(app.request(app.http.request(method, app.url(path))).await)
}

#[tokio::test]
async fn every_documented_operation_is_served() -> TestResult {
    let app = spawn().await?;
    let document = document(&app).await?;
    let paths = document["paths"].as_object().ok_or("no paths")?;
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = concrete(path);
        for method in METHODS {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let answer = send(&app, method, &concrete).await?;
            assert!(
                answer.status != 404 && answer.status != 405,
                "{method} {path} is documented but answers {}",
                answer.status
            );
        }
    }
    assert_eq!(operations, 25);
    Ok(())
}

#[tokio::test]
async fn every_method_a_path_does_not_document_is_405_with_allow_in_the_error_shape() -> TestResult
{
    let app = spawn().await?;
    let document = document(&app).await?;
    let paths = document["paths"].as_object().ok_or("no paths")?;
    let mut refused = 0;
    for (path, item) in paths {
        let concrete = concrete(path);
        let documented: Vec<String> = METHODS
            .iter()
            .filter(|method| item.get(**method).is_some())
            .map(|method| method.to_ascii_uppercase())
            .collect();
        for method in METHODS {
            if item.get(method).is_some() {
                continue;
            }
            refused += 1;
            let answer = send(&app, method, &concrete).await?;
            assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text);
            assert_eq!(
                answer.dr_code(),
                Some("method-not-allowed"),
                "{method} {path}"
            );
            assert_eq!(
                answer.body["errors"]["error"][0]["relation"], concrete,
                "{method} {path}"
            );
            let allow = answer.header("allow").unwrap_or_default();
            for listed in &documented {
                assert!(
                    allow.split(',').any(|name| name.trim() == listed),
                    "{method} {path}: Allow is {allow:?}"
                );
            }
        }
    }
    // Every path with every method but its 25 documented operations.
    assert_eq!(refused, PUBLIC_PATHS.len() * METHODS.len() - 25);
    Ok(())
}

#[tokio::test]
async fn every_operation_documents_its_security_and_error_bodies() -> TestResult {
    let app = spawn().await?;
    let document = document(&app).await?;
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["clientBasic"]["scheme"], "basic");
    assert_eq!(schemes["bearerToken"]["scheme"], "bearer");
    assert_eq!(schemes["tokenQuery"]["in"], "query");

    let security_of = |path: &str, method: &str| -> Vec<String> {
        document["paths"][path][method]["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|requirement| {
                requirement
                    .as_object()
                    .into_iter()
                    .flat_map(|r| r.keys().cloned())
            })
            .collect()
    };
    for (path, method) in [
        ("/oauth20/token", "post"),
        ("/oauth20/token.json", "post"),
        ("/oauth20/session-token", "get"),
        ("/oauth20/introspect", "post"),
        ("/oauth20/revoke", "post"),
        ("/v1/shoppers", "post"),
    ] {
        assert_eq!(
            security_of(path, method),
            ["clientBasic"],
            "{method} {path}"
        );
    }
    for (path, method) in [
        ("/oauth20/access-tokens", "get"),
        ("/oauth20/access-token.json", "delete"),
        ("/v1/shoppers/me", "get"),
        ("/v1/shoppers/me", "post"),
    ] {
        let security = security_of(path, method);
        assert!(
            security.contains(&"bearerToken".to_owned()),
            "{method} {path}"
        );
        assert!(
            security.contains(&"tokenQuery".to_owned()),
            "{method} {path}"
        );
    }

    // RFC 6749 §5.2 bodies on the OAuth endpoints, the Digital River shape elsewhere, and
    // the headers that go with them.
    let error_schema = |path: &str, method: &str, status: &str| -> String {
        document["paths"][path][method]["responses"][status]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        error_schema("/oauth20/token", "post", "400"),
        "#/components/schemas/OAuthError"
    );
    assert_eq!(
        error_schema("/oauth20/revoke", "post", "401"),
        "#/components/schemas/OAuthError"
    );
    assert_eq!(
        error_schema("/oauth20/access-tokens", "get", "401"),
        "#/components/schemas/DrErrorBody"
    );
    assert_eq!(
        error_schema("/v1/shoppers", "post", "409"),
        "#/components/schemas/DrErrorBody"
    );
    let header = |path: &str, method: &str, status: &str, name: &str| -> Value {
        document["paths"][path][method]["responses"][status]["headers"][name].clone()
    };
    assert_eq!(
        header("/oauth20/token", "post", "401", "WWW-Authenticate")["required"],
        true
    );
    assert_eq!(
        header("/oauth20/token", "post", "429", "Retry-After")["required"],
        true
    );
    assert_eq!(
        header("/oauth20/token", "post", "200", "Cache-Control")["schema"]["enum"][0],
        "no-store"
    );
    assert_eq!(
        header("/oauth20/access-tokens", "get", "401", "WWW-Authenticate")["required"],
        true
    );
    assert_eq!(
        header("/readyz", "get", "503", "Retry-After")["required"],
        true
    );
    let form = &document["paths"]["/oauth20/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        ["schema"]["$ref"];
    assert_eq!(form, "#/components/schemas/TokenForm");
    let grant_types = &document["components"]["schemas"]["GrantType"]["enum"];
    assert_eq!(
        grant_types,
        &serde_json::json!(["password", "client_credentials", "refresh_token"])
    );
    Ok(())
}

#[tokio::test]
async fn the_docs_page_and_its_assets_come_from_the_binary() -> TestResult {
    let app = spawn().await?;
    for page in ["/docs", "/docs/"] {
        let answer = app.request(app.http.get(app.url(page))).await;
        assert_eq!(answer.status, 200, "{page}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|v| v.starts_with("text/html")),
            "{page}"
        );
        assert!(answer.text.contains("<base href=\"/docs/\">"), "{page}");
        assert!(answer.text.contains("swagger-ui-bundle.js"), "{page}");
    }

    let bundle = app
        .request(app.http.get(app.url("/docs/swagger-ui-bundle.js")))
        .await;
    assert_eq!(bundle.status, 200);
    assert!(
        bundle
            .header("content-type")
            .is_some_and(|v| v.contains("javascript")),
        "{:?}",
        bundle.header("content-type")
    );
    assert!(bundle.text.len() > 100_000, "{} bytes", bundle.text.len());

    let css = app
        .request(app.http.get(app.url("/docs/swagger-ui.css")))
        .await;
    assert_eq!(css.status, 200);
    assert!(
        css.header("content-type")
            .is_some_and(|v| v.starts_with("text/css"))
    );

    let initializer = app
        .request(app.http.get(app.url("/docs/swagger-initializer.js")))
        .await;
    assert_eq!(initializer.status, 200);
    assert!(
        initializer.text.contains("/openapi.json"),
        "{}",
        initializer.text
    );

    let missing = app
        .request(app.http.get(app.url("/docs/no-such-asset.js")))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.dr_code(), Some("not-found"));

    let post = app.request(app.http.post(app.url("/docs"))).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.dr_code(), Some("method-not-allowed"));
    Ok(())
}
