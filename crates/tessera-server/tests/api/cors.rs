//! CORS: an exact-origin allow-list on the token, session and shopper endpoints; nothing
//! for anyone else, and nothing at all when no origin is configured.

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use tessera_server::{CorsOrigin, ServerConfig};

use crate::helpers::{Answer, TestApp, TestResult, spawn_app, spawn_app_with_server_config};

const ALLOWED: &str = "https://allowed.example";
const ALSO_ALLOWED: &str = "http://localhost:3000";

/// Every path with CORS and the methods its preflight names.
const CORS_ROUTES: [(&str, &str); 12] = [
    ("/oauth20/token", "POST"),
    ("/oauth20/token.json", "POST"),
    ("/oauth20/token/", "POST"),
    ("/oauth20/access-tokens", "GET,DELETE"),
    ("/oauth20/access-tokens.json", "GET,DELETE"),
    ("/oauth20/access-token", "GET,DELETE"),
    ("/oauth20/access-token.json", "GET,DELETE"),
    ("/oauth20/session-token", "GET"),
    ("/v1/shoppers", "POST"),
    ("/v1/shoppers/me", "GET,POST"),
    ("/oauth20/introspect", "POST"),
    ("/oauth20/revoke", "POST"),
];

async fn spawn_with_cors() -> Result<TestApp, Box<dyn std::error::Error>> {
    let cors_origins = [ALLOWED, ALSO_ALLOWED]
        .iter()
        .map(|o| o.parse::<CorsOrigin>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(spawn_app_with_server_config(ServerConfig {
        cors_origins,
        ..ServerConfig::default()
    })
    .await)
}

impl TestApp {
    async fn preflight(&self, path: &str, origin: Option<&str>, method: &str) -> Answer {
        let mut request = self
            .http
            .request(Method::OPTIONS, self.url(path))
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            );
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.request(request).await
    }

    async fn token_from(&self, origin: &str) -> Answer {
        self.request(
            self.http
                .post(self.url("/oauth20/token"))
                .header("origin", origin)
                .header(AUTHORIZATION, self.client.basic())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("grant_type=password"),
        )
        .await
    }
}

fn vary_names(answer: &Answer) -> Vec<String> {
    answer
        .headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

fn assert_varies_by_origin(answer: &Answer, what: &str) {
    assert!(
        vary_names(answer).iter().any(|name| name == "origin"),
        "{what}: Vary must name Origin, got {:?}",
        answer.headers.get_all("vary")
    );
}

/// No origin but an allowed one ever comes back, and never a wildcard or credentials.
fn assert_no_grant(answer: &Answer, what: &str) {
    assert_eq!(
        answer.header("access-control-allow-origin"),
        None,
        "{what}: must not allow the origin"
    );
    assert_eq!(
        answer.header("access-control-allow-credentials"),
        None,
        "{what}"
    );
    assert_eq!(
        answer.header("access-control-allow-methods"),
        None,
        "{what}"
    );
}

fn list(answer: &Answer, name: &str) -> Vec<String> {
    answer
        .header(name)
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().to_ascii_uppercase())
        .filter(|v| !v.is_empty())
        .collect()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_names_that_origin_and_the_routes_methods() -> TestResult
{
    let app = spawn_with_cors().await?;
    for (path, methods) in CORS_ROUTES {
        let method = methods.split(',').next().unwrap_or("GET");
        let answer = app.preflight(path, Some(ALLOWED), method).await;
        assert!(
            answer.status == 200 || answer.status == 204,
            "{path}: preflight answered {}",
            answer.status
        );
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some(ALLOWED),
            "{path}"
        );
        let mut allowed = list(&answer, "access-control-allow-methods");
        allowed.sort();
        let mut expected: Vec<String> = methods.split(',').map(str::to_owned).collect();
        expected.sort();
        assert_eq!(allowed, expected, "{path}: preflight methods");
        let headers = list(&answer, "access-control-allow-headers");
        assert!(headers.contains(&"AUTHORIZATION".to_owned()), "{path}");
        if methods.contains("POST") {
            assert!(headers.contains(&"CONTENT-TYPE".to_owned()), "{path}");
        }
        assert!(
            answer
                .header("access-control-max-age")
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|age| age > 0),
            "{path}: Access-Control-Max-Age"
        );
        assert_eq!(
            answer.header("access-control-allow-credentials"),
            None,
            "{path}: credentials mode is not offered"
        );
        assert_varies_by_origin(&answer, path);
    }
    Ok(())
}

#[tokio::test]
async fn a_request_from_an_allowed_origin_names_that_origin_and_exposes_the_challenge() -> TestResult
{
    let app = spawn_with_cors().await?;
    for origin in [ALLOWED, ALSO_ALLOWED] {
        let answer = app.token_from(origin).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.header("access-control-allow-origin"), Some(origin));
        assert_eq!(answer.header("access-control-allow-credentials"), None);
        assert_varies_by_origin(&answer, origin);
    }

    // Errors too, so that a page can read why it was refused.
    let refused = app
        .request(
            app.http
                .get(app.url("/oauth20/access-tokens"))
                .header("origin", ALLOWED)
                .header(AUTHORIZATION, "Bearer tsa_k1_garbage"),
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("access-control-allow-origin"), Some(ALLOWED));
    let exposed = list(&refused, "access-control-expose-headers");
    assert!(
        exposed.contains(&"WWW-AUTHENTICATE".to_owned()),
        "{exposed:?}"
    );
    assert!(exposed.contains(&"RETRY-AFTER".to_owned()), "{exposed:?}");
    assert_varies_by_origin(&refused, "401");
    Ok(())
}

#[tokio::test]
async fn unlisted_null_and_look_alike_origins_get_no_cors_grant() -> TestResult {
    let app = spawn_with_cors().await?;
    let refused = [
        "https://evil.example",
        "null",
        // Suffix and prefix tricks: only the exact origin matches.
        "https://allowed.example.evil.test",
        "https://evil.allowed.example",
        "https://allowed.examplex",
        "https://allowed.exampl",
        // Another scheme or port is another origin.
        "http://allowed.example",
        "https://allowed.example:8443",
        "http://localhost:3001",
        "https://localhost:3000",
        "http://localhost",
        // Browsers send origins lower-case, without a path.
        "https://ALLOWED.example",
        "https://allowed.example/",
        "https://allowed.example, https://allowed.example",
        "*",
    ];
    for origin in refused {
        let answer = app.token_from(origin).await;
        assert_eq!(answer.status, 200, "{origin}: the request itself is served");
        assert_no_grant(&answer, origin);
        assert_varies_by_origin(&answer, origin);

        let preflight = app.preflight("/oauth20/token", Some(origin), "POST").await;
        assert_eq!(preflight.status, 405, "{origin}: preflight");
        assert_eq!(preflight.header("allow"), Some("POST"), "{origin}");
        assert_eq!(preflight.dr_code(), Some("method-not-allowed"), "{origin}");
        assert_no_grant(&preflight, origin);
        assert_varies_by_origin(&preflight, origin);
    }
    Ok(())
}

#[tokio::test]
async fn requests_without_an_origin_get_vary_and_an_options_without_a_preflight_is_405()
-> TestResult {
    let app = spawn_with_cors().await?;
    let (access, _) = app.anonymous_tokens().await;
    let answer = app.get_session(&access).await;
    assert_eq!(answer.status, 200);
    assert_no_grant(&answer, "no Origin");
    assert_varies_by_origin(&answer, "no Origin");

    let options = app.preflight("/oauth20/token", None, "POST").await;
    assert_eq!(options.status, 405);
    assert_no_grant(&options, "OPTIONS without Origin");
    assert_varies_by_origin(&options, "OPTIONS without Origin");

    // An allowed origin's OPTIONS that asks for no method is not a preflight either.
    let plain = app
        .request(
            app.http
                .request(Method::OPTIONS, app.url("/v1/shoppers/me"))
                .header("origin", ALLOWED),
        )
        .await;
    assert_eq!(plain.status, 405);
    assert_eq!(plain.header("allow"), Some("GET,HEAD,POST"));
    assert_varies_by_origin(&plain, "OPTIONS without Access-Control-Request-Method");
    Ok(())
}

#[tokio::test]
async fn operator_endpoints_have_no_cors() -> TestResult {
    let app = spawn_with_cors().await?;
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let answer = app
            .request(app.http.get(app.url(path)).header("origin", ALLOWED))
            .await;
        assert_eq!(answer.status, 200, "{path}");
        assert_no_grant(&answer, path);
        let preflight = app.preflight(path, Some(ALLOWED), "GET").await;
        assert_eq!(preflight.status, 405, "{path}");
        assert_no_grant(&preflight, path);
    }
    Ok(())
}

#[tokio::test]
async fn without_configured_origins_there_are_no_cors_headers_at_all() -> TestResult {
    let app = spawn_app().await;
    let answer = app.token_from(ALLOWED).await;
    assert_eq!(answer.status, 200);
    assert_no_grant(&answer, "no CORS");
    assert_eq!(answer.header("vary"), None);

    for (path, methods) in CORS_ROUTES {
        let preflight = app.preflight(path, Some(ALLOWED), "POST").await;
        assert_eq!(preflight.status, 405, "{path}");
        assert!(
            !list(&preflight, "allow").contains(&"OPTIONS".to_owned()),
            "{path}: {methods}"
        );
        assert_eq!(preflight.dr_code(), Some("method-not-allowed"), "{path}");
        assert_no_grant(&preflight, path);
        assert_eq!(preflight.header("vary"), None, "{path}");
    }
    Ok(())
}
