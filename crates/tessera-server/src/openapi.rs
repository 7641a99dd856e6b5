//! The OpenAPI 3.1 document of the public API, assembled from the `#[utoipa::path]`
//! annotation beside each handler and the `ToSchema` types of the bodies they send, and
//! served at `/openapi.json`; and its browsable view, Swagger UI at `/docs`, whose assets
//! are compiled into the binary (nothing is fetched at build or run time).
//!
//! What the annotations cannot say is added here, once: the alias paths (`.json`, the
//! singular and trailing-slash forms) as copies of their canonical operation, the security
//! schemes, and `required: true` on every documented response header, so that a checker
//! such as schemathesis holds the server to them. The administration API is not in this
//! document: it lives on another listener, off by default, for operators only.

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::Value;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_swagger_ui::Config;

use crate::AppState;
use crate::error::{self, DrErrorBody, OAuthErrorBody};
use crate::routes::{ACCESS_TOKEN_PATHS, TOKEN_PATHS};

/// Where the document is served.
pub(crate) const DOCUMENT_PATH: &str = "/openapi.json";

/// Where Swagger UI is served; its assets are under `/docs/`.
pub(crate) const DOCS_PATH: &str = "/docs";

/// Swagger UI, too.
pub(crate) const DOCS_SLASH_PATH: &str = "/docs/";

/// The assets of Swagger UI, each under `/docs/`.
pub(crate) const DOCS_ASSETS_PATH: &str = "/docs/{file}";

const DESCRIPTION: &str = "\
Tessera is a shopper access-token service: an OAuth 2.0 authorization server whose public \
face is compatible with the Digital River Commerce API `/oauth20/` endpoints. The full \
contract, with every decision, is `docs/API.md` in the repository.

- Token, introspection and revocation errors (and session-token errors) use the RFC 6749 \
§5.2 body `{\"error\", \"error_description\"}`; every other error uses the Digital River \
body `{\"errors\": {\"error\": [{\"code\", \"description\", \"relation\"}]}}`. Descriptions \
are fixed texts that never repeat the request.
- Every response carries `X-Content-Type-Options: nosniff`; every response on an \
`/oauth20/` or `/v1/shoppers` path carries `Cache-Control: no-store`.
- A method a path does not take answers 405 with `Allow` and code `method-not-allowed`; an \
unknown path answers 404 with code `not-found`. `HEAD` is answered wherever `GET` is.
- Form bodies and query strings are decoded strictly: a malformed `%` escape, bytes that \
are not UTF-8 or a control character is `invalid_request`. Bodies are limited to 16 KiB.
- Browsers: with `tessera serve --cors-origin ORIGIN` the token, introspection, \
revocation, session, session-token and shopper endpoints answer CORS preflights (`OPTIONS`) \
from the listed origins (exact match) and name the origin in \
`Access-Control-Allow-Origin`; credentials mode is not offered, since credentials travel in \
`Authorization`. Without the flag there are no CORS headers and `OPTIONS` is 405.";

/// The whole public API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::oauth::token::issue,
        crate::oauth::access_tokens::show,
        crate::oauth::access_tokens::revoke,
        crate::oauth::session_token::mint,
        crate::oauth::introspect::introspect,
        crate::oauth::revoke::revoke,
        crate::metadata::metadata,
        crate::shoppers::create,
        crate::shoppers::show,
        crate::shoppers::update,
        crate::health::healthz,
        crate::health::readyz,
        document,
        docs_page,
        docs_asset,
        crate::metrics::scrape,
    ),
    components(schemas(OAuthErrorBody, OAuthErrorCode, DrErrorBody, DrErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "tokens", description = "Issuing tokens and session tokens (RFC 6749)."),
        (name = "sessions", description = "The session behind an access token: details and logout."),
        (name = "shoppers", description = "Registering shoppers; the token's shopper and its session's preferences."),
        (name = "operations", description = "Liveness, readiness, metrics and this document."),
    )
)]
struct ApiDoc;

/// The security schemes the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "clientBasic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The client's API key as user name and its secret as password, each \
                         form-encoded first (RFC 6749 §2.3.1); a public client sends an empty \
                         secret. Where a form body is taken, `client_id` and `client_secret` \
                         in the body work too (a public client sends `client_id` alone), but \
                         never both methods at once.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearerToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tsa_<key id>_<72 base64url characters>")
                    .description(Some(
                        "An access token (RFC 6750 §2.1); the scheme name in any case.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "tokenQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "The access token as `?token=`, for older Digital River clients. With \
                 `Authorization: Bearer` too, both must be the same token; with \
                 `Authorization: Basic` beside it, the client credentials must be valid.",
            ))),
        );
    }
}

/// The document as served: the derived one, with every alias path and every response
/// header required.
fn build() -> Value {
    let mut openapi = ApiDoc::openapi();
    add_aliases(&mut openapi, &TOKEN_PATHS);
    add_aliases(&mut openapi, &ACCESS_TOKEN_PATHS);
    add_aliases(&mut openapi, &[DOCS_PATH, DOCS_SLASH_PATH]);
    match serde_json::to_value(&openapi) {
        Ok(mut value) => {
            require_response_headers(&mut value);
            unwrap_optional_bodies(&mut value);
            value
        }
        Err(error) => {
            tracing::error!(%error, "cannot serialise the OpenAPI document");
            Value::Null
        }
    }
}

/// Copies the operations of `paths[0]` to each other path of `paths`, with operation ids
/// made unique by the path.
fn add_aliases(openapi: &mut utoipa::openapi::OpenApi, paths: &[&str]) {
    let Some((canonical, aliases)) = paths.split_first() else {
        return;
    };
    let Some(item) = openapi.paths.paths.get(*canonical).cloned() else {
        return;
    };
    for alias in aliases {
        let mut copy = item.clone();
        let suffix: String = alias
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        for operation in [
            &mut copy.get,
            &mut copy.post,
            &mut copy.delete,
            &mut copy.put,
            &mut copy.patch,
        ]
        .into_iter()
        .flatten()
        {
            if let Some(id) = operation.operation_id.as_mut() {
                id.push_str(&suffix);
            }
            let note = format!("alias of {canonical}");
            operation.summary = Some(match operation.summary.take() {
                Some(summary) => format!("{} ({note}).", summary.trim_end_matches('.')),
                None => note,
            });
        }
        openapi.paths.paths.insert((*alias).to_owned(), copy);
    }
}

/// Marks every documented response header `required`: Tessera always sends the headers it
/// documents for a response.
fn require_response_headers(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut)
                else {
                    continue;
                };
                for header in headers.values_mut().filter_map(Value::as_object_mut) {
                    header.insert("required".to_owned(), Value::Bool(true));
                }
            }
        }
    }
}

/// An optional request body (`Option<T>` in an annotation) comes out as "`T` or `null`";
/// a form body cannot be `null`, and what is optional is the body itself, which
/// `required: false` (the default) already says. This leaves `T`.
fn unwrap_optional_bodies(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let Some(contents) = operation
                .get_mut("requestBody")
                .and_then(|body| body.get_mut("content"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for content in contents.values_mut() {
                let Some(schema) = content.get_mut("schema") else {
                    continue;
                };
                let inner = schema
                    .get("oneOf")
                    .and_then(Value::as_array)
                    .and_then(|choices| match choices.as_slice() {
                        [only, null] | [null, only] if null["type"] == "null" => Some(only.clone()),
                        _ => None,
                    });
                if let Some(inner) = inner {
                    *schema = inner;
                }
            }
        }
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<Value> = LazyLock::new(build);

/// The OpenAPI document, as JSON.
pub(crate) fn document_value() -> &'static Value {
    &DOCUMENT
}

/// `GET /openapi.json`.
pub(crate) fn document_routes() -> MethodRouter<AppState> {
    get(document)
}

/// `GET /docs` and `GET /docs/`.
pub(crate) fn docs_routes() -> MethodRouter<AppState> {
    get(docs_page)
}

/// `GET /docs/{file}`.
pub(crate) fn docs_asset_routes() -> MethodRouter<AppState> {
    get(docs_asset)
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "operations",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json",
            body = inline(Object)),
    ),
)]
async fn document() -> Json<&'static Value> {
    Json(document_value())
}

/// Swagger UI's configuration: this document, and nothing remembered between visits.
static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::from(DOCUMENT_PATH)
            .try_it_out_enabled(true)
            .persist_authorization(false),
    )
});

/// Swagger UI for this document.
///
/// The page loads its scripts and styles from `/docs/`; all of them are built into the
/// binary.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "getDocs",
    tag = "operations",
    responses(
        (status = 200, description = "The Swagger UI page.", content_type = "text/html",
            body = inline(String)),
    ),
)]
async fn docs_page() -> Response {
    let Some(page) = swagger_file("index.html") else {
        return error::not_found(Uri::from_static(DOCS_PATH)).await;
    };
    // The page names its assets relative to itself; the base makes `/docs` (without the
    // slash) load them from `/docs/` too.
    let html = String::from_utf8_lossy(&page.bytes)
        .replacen("<head>", "<head>\n    <base href=\"/docs/\">", 1)
        .replace("<title>Swagger UI</title>", "<title>Tessera API</title>");
    let mut response = html.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// One asset of Swagger UI (scripts, styles, icons).
#[utoipa::path(
    get,
    path = "/docs/{file}",
    operation_id = "getDocsAsset",
    tag = "operations",
    params(("file" = String, Path, description = "The asset's file name.",
        example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The asset.", content(
            ("text/javascript"), ("text/css"), ("text/html"), ("image/png"), ("application/json"),
        )),
        (status = 404, description = "No such asset (code `not-found`).", body = DrErrorBody),
    ),
)]
async fn docs_asset(uri: Uri) -> Response {
    // The raw path: every asset name is plain ASCII, so an encoded one is simply unknown.
    let file = uri.path().strip_prefix("/docs/").unwrap_or_default();
    if file == "index.html" {
        return docs_page().await;
    }
    let Some(asset) = swagger_file(file) else {
        return error::not_found(uri).await;
    };
    let content_type = HeaderValue::from_str(&asset.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = asset.bytes.into_owned().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// A file of the Swagger UI distribution, with `swagger-initializer.js` pointing at this
/// document.
fn swagger_file(file: &str) -> Option<utoipa_swagger_ui::SwaggerFile<'static>> {
    match utoipa_swagger_ui::serve(file, Arc::clone(&SWAGGER_CONFIG)) {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "cannot render a Swagger UI file");
            None
        }
    }
}

// Documentation-only types: schemas of values the server writes as plain strings.

/// Query parameters Digital River clients send and Tessera ignores.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "only describes ignored query parameters")]
pub(crate) struct IgnoredQuery {
    /// Ignored (`format=json`).
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    format: Option<String>,
    /// Ignored (cache-busting).
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    ts: Option<String>,
    /// Ignored (cache-busting).
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    t: Option<String>,
}

/// The RFC 6749 §5.2 error codes Tessera sends.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "only describes the `error` member of OAuthError bodies"
)]
pub(crate) enum OAuthErrorCode {
    /// The request is malformed: a parameter missing, repeated, in the wrong place or
    /// undecodable, a body too large, two client authentication methods.
    #[schema(rename = "invalid_request")]
    InvalidRequest,
    /// Client authentication failed (401); also past a failed client-authentication
    /// limit (429).
    #[schema(rename = "invalid_client")]
    InvalidClient,
    /// A grant, refresh token, session token or login was refused; also past a failed-login
    /// limit (429).
    #[schema(rename = "invalid_grant")]
    InvalidGrant,
    /// The client may not use this grant.
    #[schema(rename = "unauthorized_client")]
    UnauthorizedClient,
    /// Not `password`, `client_credentials` or `refresh_token`.
    #[schema(rename = "unsupported_grant_type")]
    UnsupportedGrantType,
    /// Any `scope`: tokens are unscoped.
    #[schema(rename = "invalid_scope")]
    InvalidScope,
    /// The `dr_limited_token` of an upgrade is not a live anonymous token of the client.
    #[schema(rename = "dr_limited_token_invalid")]
    DrLimitedTokenInvalid,
    /// The store returned a record that cannot be read (500).
    #[schema(rename = "server_error")]
    ServerError,
    /// The store cannot answer or write right now (503, `Retry-After`); also past a
    /// request-rate limit (429, `Retry-After`).
    #[schema(rename = "temporarily_unavailable")]
    TemporarilyUnavailable,
}

/// The Digital River error codes of the public API.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "only describes the `code` member of DrError bodies"
)]
pub(crate) enum DrErrorCode {
    /// No, a bad, expired or revoked token (401).
    #[schema(rename = "invalid_token")]
    InvalidToken,
    /// A malformed request (400).
    #[schema(rename = "invalid_request")]
    InvalidRequest,
    /// Client authentication failed (401).
    #[schema(rename = "invalid_client")]
    InvalidClient,
    /// Not allowed for this client or token (403).
    #[schema(rename = "forbidden")]
    Forbidden,
    /// The shopper exists already (409).
    #[schema(rename = "conflict")]
    Conflict,
    /// No such resource (404).
    #[schema(rename = "not-found")]
    NotFound,
    /// The path does not take this method (405).
    #[schema(rename = "method-not-allowed")]
    MethodNotAllowed,
    /// An internal error (500).
    #[schema(rename = "system-error")]
    SystemError,
    /// The store cannot answer or write right now (503, `Retry-After`).
    #[schema(rename = "service-unavailable")]
    ServiceUnavailable,
    /// Past the failed client-authentication limit (429, `Retry-After`).
    #[schema(rename = "too-many-requests")]
    TooManyRequests,
}

/// `"true"` or `"false"`, a string, as Digital River clients compare it.
#[derive(ToSchema)]
#[expect(dead_code, reason = "only describes string flags")]
pub(crate) enum Flag {
    /// Yes.
    #[schema(rename = "true")]
    True,
    /// No.
    #[schema(rename = "false")]
    False,
}

/// `Cache-Control: no-store`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "only describes a header")]
pub(crate) enum NoStore {
    /// Never cache.
    #[schema(rename = "no-store")]
    NoStore,
}

/// `Pragma: no-cache`, for HTTP/1.0 caches (RFC 6749 §5.1).
#[derive(ToSchema)]
#[expect(dead_code, reason = "only describes a header")]
pub(crate) enum NoCache {
    /// Never cache.
    #[schema(rename = "no-cache")]
    NoCache,
}

/// The challenge of a failed client authentication.
#[derive(ToSchema)]
#[expect(dead_code, reason = "only describes a header")]
pub(crate) enum BasicChallenge {
    /// RFC 7617.
    #[schema(rename = "Basic realm=\"tessera\"")]
    Basic,
}

/// The challenge of a bearer-protected resource (RFC 6750 §3): no error attribute when no
/// token came; `error` and `error_description` otherwise; `Basic realm="tessera"` when
/// Basic credentials beside `?token=` failed.
pub(crate) struct BearerChallenge;

impl PartialSchema for BearerChallenge {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(
                r#"^(Bearer realm="tessera"(, error="(invalid_token|invalid_request)", error_description="[^"]*")?|Basic realm="tessera")$"#,
            ))
            .into()
    }
}

impl ToSchema for BearerChallenge {}

/// `Retry-After`: whole seconds to wait before retrying.
pub(crate) struct RetryAfter;

impl PartialSchema for RetryAfter {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .into()
    }
}

impl ToSchema for RetryAfter {}

/// Failures of the token endpoint (RFC 6749 §5.2).
#[derive(IntoResponses)]
#[expect(dead_code, reason = "only describes responses")]
pub(crate) enum TokenFailures {
    /// `invalid_request`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope` or `dr_limited_token_invalid`.
    #[response(status = 400, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    BadRequest(OAuthErrorBody),
    /// `invalid_client`: unknown client, wrong or missing secret, disabled client,
    /// malformed Basic, or an `Authorization` scheme other than Basic.
    #[response(status = 401, headers(
        ("WWW-Authenticate" = inline(BasicChallenge)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    Unauthorized(OAuthErrorBody),
    /// `invalid_request`: the body is over 16 KiB.
    #[response(status = 413, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    TooLarge(OAuthErrorBody),
    /// Past a limit; retry after `Retry-After` seconds: `invalid_grant` past a failed-login
    /// limit, `invalid_client` past a failed client-authentication limit (the same for
    /// every client id, known or not, right secret or not), `temporarily_unavailable` past
    /// a request-rate limit.
    #[response(status = 429, headers(
        ("Retry-After" = inline(RetryAfter)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    TooManyAttempts(OAuthErrorBody),
    /// `server_error`: the store returned a record that cannot be read.
    #[response(status = 500, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    ServerError(OAuthErrorBody),
    /// `temporarily_unavailable`: the store cannot answer or write; nothing was issued.
    #[response(status = 503, headers(
        ("Retry-After" = inline(RetryAfter)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    Unavailable(OAuthErrorBody),
}

/// The form of introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1). Everything
/// comes in the body: a `token` or `client_secret` in the query string is
/// `invalid_request`.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "only describes the introspection and revocation forms"
)]
pub(crate) struct TokenParamForm {
    /// The token asked about (an access or a refresh token).
    #[schema(min_length = 1, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    token: String,
    /// `access_token` or `refresh_token`; read, then ignored (any value), since a Tessera
    /// token names its type in its prefix.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    token_type_hint: Option<String>,
    /// The client's API key, when it does not use Basic.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    client_id: Option<String>,
    /// The client's secret, with `client_id`, when it does not use Basic.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    client_secret: Option<String>,
}

/// Failures of introspection and revocation (RFC 6749 §5.2 bodies, RFC 7662 §2.3,
/// RFC 7009 §2.2.1).
#[derive(IntoResponses)]
#[expect(dead_code, reason = "only describes responses")]
pub(crate) enum TokenManagementFailures {
    /// `invalid_request` (no `token`, a parameter repeated or in the query string, a body
    /// that is not a form, two client authentication methods); `unauthorized_client` when
    /// revoking another client's token, which stays valid.
    #[response(status = 400, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    BadRequest(OAuthErrorBody),
    /// `invalid_client`: no, malformed or wrong client credentials, or a disabled client.
    #[response(status = 401, headers(
        ("WWW-Authenticate" = inline(BasicChallenge)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    Unauthorized(OAuthErrorBody),
    /// `invalid_request`: the body is over 16 KiB.
    #[response(status = 413, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    TooLarge(OAuthErrorBody),
    /// Past a limit; retry after `Retry-After` seconds: `invalid_client` past a failed
    /// client-authentication limit, `temporarily_unavailable` past a request-rate limit.
    #[response(status = 429, headers(
        ("Retry-After" = inline(RetryAfter)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    TooManyAttempts(OAuthErrorBody),
    /// `server_error`: the store returned a record that cannot be read.
    #[response(status = 500, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    ServerError(OAuthErrorBody),
    /// `temporarily_unavailable`: the store cannot answer or write; nothing is said about
    /// the token and nothing was revoked.
    #[response(status = 503, headers(
        ("Retry-After" = inline(RetryAfter)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    Unavailable(OAuthErrorBody),
}

/// Failures of an endpoint that only authenticates the client (RFC 6749 §5.2 bodies).
#[derive(IntoResponses)]
#[expect(dead_code, reason = "only describes responses")]
pub(crate) enum ClientFailures {
    /// `invalid_request`: more than one `Authorization` header.
    #[response(status = 400, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    BadRequest(OAuthErrorBody),
    /// `invalid_client`: no, malformed or wrong Basic credentials, or a disabled client.
    #[response(status = 401, headers(
        ("WWW-Authenticate" = inline(BasicChallenge)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    Unauthorized(OAuthErrorBody),
    /// `invalid_client`: past a failed client-authentication limit; retry after
    /// `Retry-After` seconds.
    #[response(status = 429, headers(
        ("Retry-After" = inline(RetryAfter)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    TooManyAttempts(OAuthErrorBody),
    /// `server_error`: the store returned a record that cannot be read.
    #[response(status = 500, headers(
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    ServerError(OAuthErrorBody),
    /// `temporarily_unavailable`: the store cannot answer or write.
    #[response(status = 503, headers(
        ("Retry-After" = inline(RetryAfter)),
        ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache))))]
    Unavailable(OAuthErrorBody),
}

/// Failures of a bearer-protected resource (RFC 6750 §3.1; Digital River bodies).
#[derive(IntoResponses)]
#[expect(dead_code, reason = "only describes responses")]
pub(crate) enum BearerFailures {
    /// `invalid_request`: the token twice with different values, `?token=` twice, two
    /// `Authorization` headers, or a malformed query string.
    #[response(status = 400, headers(
        ("WWW-Authenticate" = inline(BearerChallenge)), ("Cache-Control" = inline(NoStore))))]
    BadRequest(DrErrorBody),
    /// `invalid_token`: no token (the challenge then has no error attribute), or a bad,
    /// expired or revoked token, a refresh token, a token of a disabled client or of an
    /// ended session; `invalid_client` when Basic credentials beside `?token=` fail.
    #[response(status = 401, headers(
        ("WWW-Authenticate" = inline(BearerChallenge)), ("Cache-Control" = inline(NoStore))))]
    Unauthorized(DrErrorBody),
    /// `too-many-requests`: client credentials sent beside the token are past a failed
    /// client-authentication limit; retry after `Retry-After` seconds.
    #[response(status = 429, headers(
        ("Retry-After" = inline(RetryAfter)), ("Cache-Control" = inline(NoStore))))]
    TooManyAttempts(DrErrorBody),
    /// `system-error`: the store returned a record that cannot be read.
    #[response(status = 500, headers(("Cache-Control" = inline(NoStore))))]
    SystemError(DrErrorBody),
    /// `service-unavailable`: the store cannot answer or write; nothing changed.
    #[response(status = 503, headers(
        ("Retry-After" = inline(RetryAfter)), ("Cache-Control" = inline(NoStore))))]
    Unavailable(DrErrorBody),
}

/// Failures of `/v1/shoppers/me` (RFC 6750 §3.1; Digital River bodies).
#[derive(IntoResponses)]
#[expect(dead_code, reason = "only describes responses")]
pub(crate) enum ShopperMeFailures {
    /// `invalid_request`: the token twice with different values, `?token=` twice, two
    /// `Authorization` headers or a malformed query string (these with a Bearer challenge
    /// naming `invalid_request`); neither `locale` nor `currency`, a malformed one, or one
    /// given twice.
    #[response(status = 400, headers(("Cache-Control" = inline(NoStore))))]
    BadRequest(DrErrorBody),
    /// `invalid_token`: no token (the challenge then has no error attribute), or a bad,
    /// expired or revoked token, a refresh token, a token of a disabled client or of an
    /// ended session.
    #[response(status = 401, headers(
        ("WWW-Authenticate" = inline(BearerChallenge)), ("Cache-Control" = inline(NoStore))))]
    Unauthorized(DrErrorBody),
    /// `forbidden`: a client token has no shopper.
    #[response(status = 403, headers(("Cache-Control" = inline(NoStore))))]
    Forbidden(DrErrorBody),
    /// `system-error`: the store returned a record that cannot be read.
    #[response(status = 500, headers(("Cache-Control" = inline(NoStore))))]
    SystemError(DrErrorBody),
    /// `service-unavailable`: the store cannot answer or write; nothing changed.
    #[response(status = 503, headers(
        ("Retry-After" = inline(RetryAfter)), ("Cache-Control" = inline(NoStore))))]
    Unavailable(DrErrorBody),
}

/// Failures of `POST /v1/shoppers` (Digital River bodies).
#[derive(IntoResponses)]
#[expect(dead_code, reason = "only describes responses")]
pub(crate) enum CreateShopperFailures {
    /// `invalid_request`: not `application/json`, not a shopper object, a field out of
    /// range, neither `externalReferenceId` nor `username`, a password without a username,
    /// a body over 16 KiB, or two `Authorization` headers.
    #[response(status = 400, headers(("Cache-Control" = inline(NoStore))))]
    BadRequest(DrErrorBody),
    /// `invalid_client`: no, malformed or wrong Basic credentials.
    #[response(status = 401, headers(
        ("WWW-Authenticate" = inline(BasicChallenge)), ("Cache-Control" = inline(NoStore))))]
    Unauthorized(DrErrorBody),
    /// `too-many-requests`: the client's credentials are past a failed
    /// client-authentication limit; retry after `Retry-After` seconds.
    #[response(status = 429, headers(
        ("Retry-After" = inline(RetryAfter)), ("Cache-Control" = inline(NoStore))))]
    TooManyAttempts(DrErrorBody),
    /// `forbidden`: a public client cannot register shoppers.
    #[response(status = 403, headers(("Cache-Control" = inline(NoStore))))]
    Forbidden(DrErrorBody),
    /// `conflict`: the external reference id or the username is taken.
    #[response(status = 409, headers(("Cache-Control" = inline(NoStore))))]
    Conflict(DrErrorBody),
    /// `system-error`: the store returned a record that cannot be read.
    #[response(status = 500, headers(("Cache-Control" = inline(NoStore))))]
    SystemError(DrErrorBody),
    /// `service-unavailable`: the store cannot answer or write; nothing was created.
    #[response(status = 503, headers(
        ("Retry-After" = inline(RetryAfter)), ("Cache-Control" = inline(NoStore))))]
    Unavailable(DrErrorBody),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_every_operation_id_is_unique() {
        let document = build();
        assert_eq!(document["openapi"], "3.1.0");
        let mut ids = Vec::new();
        for item in document["paths"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
        {
            for operation in item.as_object().into_iter().flat_map(|o| o.values()) {
                if let Some(id) = operation["operationId"].as_str() {
                    ids.push(id.to_owned());
                }
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "duplicate operation ids");
    }

    #[test]
    fn every_path_the_router_serves_is_documented_and_nothing_else() {
        let document = build();
        let mut documented: Vec<&str> = document["paths"]
            .as_object()
            .map(|paths| paths.keys().map(String::as_str).collect())
            .unwrap_or_default();
        documented.sort_unstable();
        let mut served = crate::routes::SERVED_PATHS.to_vec();
        served.sort_unstable();
        assert_eq!(documented, served);
    }

    #[test]
    fn the_docs_page_and_its_assets_are_built_in() {
        assert!(swagger_file("index.html").is_some());
        assert!(swagger_file("swagger-ui-bundle.js").is_some());
        let initializer = swagger_file("swagger-initializer.js")
            .map(|file| String::from_utf8_lossy(&file.bytes).into_owned())
            .unwrap_or_default();
        assert!(initializer.contains(DOCUMENT_PATH), "{initializer}");
    }
}
