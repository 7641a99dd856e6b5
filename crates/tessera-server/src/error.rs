//! The one place that turns failures into HTTP: status codes, `WWW-Authenticate`,
//! `Retry-After` and error bodies. Token endpoint errors use the RFC 6749 §5.2 shape;
//! everything else uses the Digital River shape of API.md §5. Descriptions are fixed
//! strings: no body ever echoes a token, a secret, SQL or a stack trace.

use std::any::Any;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use serde::Serialize;
use tessera_core::limits::Limit;
use tessera_core::shoppers::ShopperError;
use tessera_core::{AdminError, BearerError, StoreError, TokenError};
use utoipa::ToSchema;

use crate::openapi::{DrErrorCode, OAuthErrorCode};

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "tessera";

/// Seconds a client should wait before retrying when the store cannot take a write.
const RETRY_AFTER_SECONDS: &str = "1";

/// Every failure a handler can report.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// A token endpoint failure (RFC 6749 §5.2 body).
    Token(TokenError),
    /// A failure on a bearer-protected resource, with the path it concerned.
    Bearer(BearerError, String),
    /// The request body exceeded the endpoint's limit.
    TokenBodyTooLarge,
    /// The store is not reachable (readiness).
    Unready(StoreError),
    /// A failure on a shopper resource, with the path it concerned.
    Shopper(ShopperError, String),
    /// A failure of the administration API, with the path it concerned.
    Admin(AdminError, String),
    /// An administration request body exceeded its limit, with the path it concerned.
    AdminBodyTooLarge(String),
    /// A failure of token introspection (RFC 7662 §2.3: an RFC 6749 §5.2 body).
    Introspection(TokenError),
    /// A failure of token revocation (RFC 7009 §2.2.1: an RFC 6749 §5.2 body).
    Revocation(TokenError),
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> Self {
        ApiError::Token(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Token(error) => token_error(error),
            ApiError::Introspection(error) => {
                token_management_error(error, "tokens cannot be checked right now; retry later")
            }
            ApiError::Revocation(error) => {
                token_management_error(error, "tokens cannot be revoked right now; retry later")
            }
            ApiError::TokenBodyTooLarge => oauth_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is too large",
            ),
            ApiError::Bearer(error, resource) => bearer_error(error, &resource),
            ApiError::Shopper(error, resource) => shopper_error(error, &resource),
            ApiError::Admin(error, resource) => admin_error(error, &resource),
            ApiError::AdminBodyTooLarge(resource) => dr_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                &resource,
                "invalid_request",
                "The request body is too large",
            ),
            ApiError::Unready(error) => {
                tracing::warn!(%error, "store not ready");
                with_retry_after(dr_body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "/readyz",
                    "service-unavailable",
                    "The store is not reachable",
                ))
            }
        }
    }
}

fn token_error(error: TokenError) -> Response {
    let (status, code, description) = match &error {
        TokenError::InvalidRequest(why) => (StatusCode::BAD_REQUEST, "invalid_request", *why),
        TokenError::InvalidClient => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        ),
        TokenError::InvalidGrant(why) => (StatusCode::BAD_REQUEST, "invalid_grant", *why),
        TokenError::UnauthorizedClient(why) => {
            (StatusCode::BAD_REQUEST, "unauthorized_client", *why)
        }
        TokenError::UnsupportedGrantType => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "the grant type is not supported",
        ),
        TokenError::InvalidScope => (
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Tessera issues tokens without scopes",
        ),
        TokenError::DrLimitedTokenInvalid => (
            StatusCode::BAD_REQUEST,
            "dr_limited_token_invalid",
            "the limited token is invalid",
        ),
        TokenError::TooManyAttempts {
            limit,
            retry_after_seconds,
        } => return too_many_attempts(*limit, *retry_after_seconds),
        TokenError::Store(store) => return token_store_error(store),
    };
    let mut response = oauth_body(status, code, description);
    if matches!(error, TokenError::InvalidClient) {
        // RFC 6749 §5.2 requires the challenge when Basic was used; RFC 9110 §15.5.2 wants
        // one on every 401, so it is always sent.
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tessera\""),
        );
    }
    response
}

/// Past a limit (RELIABILITY P12): 429, `Retry-After` in whole seconds until a request
/// may be admitted again, and an RFC 6749 body. RFC 6749 §5.2 has no code for limits, so
/// a failure limit answers with the code of the failure it limits (`invalid_grant` for
/// shopper logins, `invalid_client` for client authentication), and a request-rate limit
/// with `temporarily_unavailable`, which clients already treat as "retry later".
fn too_many_attempts(limit: Limit, retry_after_seconds: u64) -> Response {
    let (code, description) = match limit {
        Limit::LoginPerUsername | Limit::LoginPerClientAddress => {
            ("invalid_grant", "too many failed attempts; retry later")
        }
        Limit::ClientAuthPerClientAddress | Limit::ClientAuthPerAddress => (
            "invalid_client",
            "too many failed client authentications; retry later",
        ),
        Limit::RatePerClient | Limit::RatePerAddress => {
            ("temporarily_unavailable", "too many requests; retry later")
        }
    };
    let mut response = oauth_body(StatusCode::TOO_MANY_REQUESTS, code, description);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_seconds.max(1)),
    );
    response
}

/// Introspection and revocation errors are the token endpoint's (RFC 7662 §2.3, RFC 7009
/// §2.2.1), except that a store which cannot answer or write gets words of its own: 503,
/// `Retry-After`, and never an answer about the token (fail closed).
fn token_management_error(error: TokenError, unavailable: &'static str) -> Response {
    match error {
        TokenError::Store(store @ (StoreError::Unavailable(_) | StoreError::Conflict(_))) => {
            tracing::warn!(error = %store, "store could not complete a token request");
            with_retry_after(oauth_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                unavailable,
            ))
        }
        other => token_error(other),
    }
}

fn token_store_error(error: &StoreError) -> Response {
    match error {
        StoreError::Corrupt(_) => {
            tracing::error!(%error, "store returned a corrupt record");
            oauth_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            )
        }
        StoreError::Unavailable(_) | StoreError::Conflict(_) => {
            tracing::warn!(%error, "store could not complete a token request");
            with_retry_after(oauth_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the service cannot issue tokens right now; retry later",
            ))
        }
    }
}

fn bearer_error(error: BearerError, resource: &str) -> Response {
    let (status, challenge, code, description) = match &error {
        BearerError::Missing => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer realm=\"{REALM}\""),
            "invalid_token",
            "Missing token",
        ),
        BearerError::InvalidToken => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"Invalid token\""
            ),
            "invalid_token",
            "Invalid token",
        ),
        BearerError::InvalidRequest(why) => (
            StatusCode::BAD_REQUEST,
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{why}\""
            ),
            "invalid_request",
            *why,
        ),
        BearerError::InvalidClient => (
            StatusCode::UNAUTHORIZED,
            format!("Basic realm=\"{REALM}\""),
            "invalid_client",
            "Client authentication failed",
        ),
        BearerError::TooManyAttempts {
            retry_after_seconds,
            ..
        } => {
            let mut response = dr_body(
                StatusCode::TOO_MANY_REQUESTS,
                resource,
                "too-many-requests",
                "Too many failed client authentications; retry later",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from((*retry_after_seconds).max(1)),
            );
            return response;
        }
        BearerError::Store(store) => {
            if matches!(store, StoreError::Corrupt(_)) {
                tracing::error!(error = %store, "store returned a corrupt record");
                return system_error(resource);
            }
            tracing::warn!(error = %store, "store could not complete a session request");
            return with_retry_after(dr_body(
                StatusCode::SERVICE_UNAVAILABLE,
                resource,
                "service-unavailable",
                "The service is temporarily unavailable; retry later",
            ));
        }
    };
    let mut response = dr_body(status, resource, code, description);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn shopper_error(error: ShopperError, resource: &str) -> Response {
    match error {
        ShopperError::InvalidRequest(why) => {
            dr_body(StatusCode::BAD_REQUEST, resource, "invalid_request", why)
        }
        ShopperError::Forbidden(why) => dr_body(StatusCode::FORBIDDEN, resource, "forbidden", why),
        ShopperError::Conflict => dr_body(
            StatusCode::CONFLICT,
            resource,
            "conflict",
            "A shopper with that external reference id or username exists",
        ),
        ShopperError::Client(TokenError::Store(store))
        | ShopperError::Bearer(BearerError::Store(store)) => {
            bearer_error(BearerError::Store(store), resource)
        }
        ShopperError::Client(TokenError::TooManyAttempts {
            limit,
            retry_after_seconds,
        }) => bearer_error(
            BearerError::TooManyAttempts {
                limit,
                retry_after_seconds,
            },
            resource,
        ),
        ShopperError::Client(_) => bearer_error(BearerError::InvalidClient, resource),
        ShopperError::Bearer(bearer) => bearer_error(bearer, resource),
    }
}

/// Administration API failures, in the Digital River shape. Without the admin token every
/// request is the same 401, challenging for a bearer token of the admin realm.
fn admin_error(error: AdminError, resource: &str) -> Response {
    match error {
        AdminError::Unauthorized => {
            let mut response = dr_body(
                StatusCode::UNAUTHORIZED,
                resource,
                "unauthorized",
                "The admin token is missing or wrong",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera-admin\""),
            );
            response
        }
        AdminError::NotFound(why) => dr_body(StatusCode::NOT_FOUND, resource, "not-found", why),
        AdminError::InvalidRequest(why) => {
            dr_body(StatusCode::BAD_REQUEST, resource, "invalid_request", why)
        }
        // 503 with Retry-After, or 500 for a corrupt record, as on every other resource.
        AdminError::Store(store) => bearer_error(BearerError::Store(store), resource),
    }
}

/// An RFC 6749 §5.2 error body: `{"error": ..., "error_description": ...}`.
#[derive(Serialize, ToSchema)]
#[schema(as = OAuthError)]
pub(crate) struct OAuthErrorBody {
    /// The error code (RFC 6749 §5.2, RFC 7009 §2.2.1, Digital River's
    /// `dr_limited_token_invalid`).
    #[schema(value_type = OAuthErrorCode)]
    error: &'static str,
    /// A fixed English text; it never repeats anything the request carried.
    error_description: &'static str,
}

/// An RFC 6749 §5.2 error body.
fn oauth_body(status: StatusCode, code: &'static str, description: &'static str) -> Response {
    let body = OAuthErrorBody {
        error: code,
        error_description: description,
    };
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A Digital River style error body (API.md §5):
/// `{"errors": {"error": [{"code": ..., "description": ..., "relation": ...}]}}`.
#[derive(Serialize, ToSchema)]
#[schema(as = DrErrorBody)]
pub(crate) struct DrErrorBody {
    /// The errors, in Digital River's wrapping.
    errors: DrErrors,
}

/// The `errors` member of a Digital River error body.
#[derive(Serialize, ToSchema)]
#[schema(as = DrErrors)]
pub(crate) struct DrErrors {
    /// Always exactly one error.
    #[schema(min_items = 1, max_items = 1)]
    error: [DrError; 1],
}

/// One Digital River style error.
#[derive(Serialize, ToSchema)]
#[schema(as = DrError)]
pub(crate) struct DrError {
    /// The error code.
    #[schema(value_type = DrErrorCode)]
    code: &'static str,
    /// A fixed English text; it never repeats anything the request carried.
    description: &'static str,
    /// The path of the resource asked for (never the `Host` header).
    #[schema(example = "/oauth20/access-tokens")]
    relation: String,
}

/// A Digital River style error body (API.md §5).
fn dr_body(
    status: StatusCode,
    resource: &str,
    code: &'static str,
    description: &'static str,
) -> Response {
    let body = DrErrorBody {
        errors: DrErrors {
            error: [DrError {
                code,
                description,
                relation: relation(resource),
            }],
        },
    };
    (status, Json(body)).into_response()
}

/// What credentials start with: access and refresh tokens, client secrets.
const CREDENTIAL_PREFIXES: [&str; 3] = ["tsa_", "tsr_", "tcs_"];

/// The path as `relation`, with every segment that holds a token or a client secret
/// replaced: a client that put one in the path (a 404, a 413 or a 503 can answer any path)
/// must not get it back in an error body (RELIABILITY P4).
fn relation(path: &str) -> String {
    if !CREDENTIAL_PREFIXES
        .iter()
        .any(|prefix| path.contains(prefix))
    {
        return path.to_owned();
    }
    path.split('/')
        .map(|segment| {
            if CREDENTIAL_PREFIXES
                .iter()
                .any(|prefix| segment.contains(prefix))
            {
                "{redacted}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn with_retry_after(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

fn system_error(resource: &str) -> Response {
    dr_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        resource,
        "system-error",
        "An internal error occurred",
    )
}

/// An answer that could not be serialised: never expected, since every answer is plain
/// data, but a 500 rather than a panic if it happens.
pub(crate) fn unwritable_answer(serialisation: &serde_json::Error) -> Response {
    tracing::error!(error = %serialisation, "an answer could not be serialised");
    system_error("")
}

/// Fallback for unknown paths.
pub(crate) async fn not_found(uri: Uri) -> Response {
    dr_body(
        StatusCode::NOT_FOUND,
        uri.path(),
        "not-found",
        "No such resource",
    )
}

/// `route`, answering any method it does not list with [`method_not_allowed`]. Call it
/// before adding the route's own layers (CORS, the admin token), so that they wrap the 405
/// as they wrap the route's methods.
pub(crate) fn or_405<S>(route: MethodRouter<S>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.fallback(method_not_allowed)
}

/// A method the path does not list (API.md §5, §8). axum adds `Allow`, and the route's
/// layers their headers (`Vary`, CORS, `Cache-Control`).
async fn method_not_allowed(uri: Uri) -> Response {
    dr_body(
        StatusCode::METHOD_NOT_ALLOWED,
        uri.path(),
        "method-not-allowed",
        "Method not allowed",
    )
}

/// Whether `path` is one of the RFC 6749 style form endpoints (token, introspection,
/// revocation), whose errors carry the RFC 6749 §5.2 body; every other path gets the
/// Digital River shape.
fn is_oauth_form_path(path: &str) -> bool {
    crate::routes::TOKEN_PATHS.contains(&path)
        || path == "/oauth20/introspect"
        || path == "/oauth20/revoke"
}

/// More requests are in flight than `--max-in-flight-requests` allows (RELIABILITY P15):
/// the request was shed before any of it ran, so a retry is safe.
pub(crate) fn overloaded(path: &str) -> Response {
    // Not a warning: under a flood, a line per shed request would add to the load.
    tracing::debug!("shed a request: too many requests in flight");
    unavailable(path, "the server is busy; retry later")
}

/// A request ran longer than `--request-timeout-ms`; its work was abandoned.
pub(crate) fn request_timed_out(path: &str) -> Response {
    tracing::warn!("a request exceeded the request timeout");
    unavailable(path, "the request took too long; retry later")
}

/// 503 with `Retry-After`, in the shape of `path`'s endpoint.
fn unavailable(path: &str, description: &'static str) -> Response {
    let response = if is_oauth_form_path(path) {
        oauth_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            description,
        )
    } else {
        dr_body(
            StatusCode::SERVICE_UNAVAILABLE,
            path,
            "service-unavailable",
            "The service is temporarily unavailable; retry later",
        )
    };
    with_retry_after(response)
}

/// A declared `Content-Length` above the server-wide body limit, refused before any of
/// the body is read, in the shape of `path`'s endpoint.
pub(crate) fn body_too_large(path: &str) -> Response {
    if is_oauth_form_path(path) {
        ApiError::TokenBodyTooLarge.into_response()
    } else {
        ApiError::AdminBodyTooLarge(path.to_owned()).into_response()
    }
}

/// A request that declares both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.3,
/// a request-smuggling attempt), in the shape of `path`'s endpoint; the connection closes
/// after it.
pub(crate) fn ambiguous_framing(path: &str) -> Response {
    const WHY: &str = "The request declares both Content-Length and Transfer-Encoding";
    let mut response = if is_oauth_form_path(path) {
        oauth_body(StatusCode::BAD_REQUEST, "invalid_request", WHY)
    } else {
        dr_body(StatusCode::BAD_REQUEST, path, "invalid_request", WHY)
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The server failed in a way no handler saw (an error of a server layer that has no
/// response of its own).
pub(crate) fn internal(path: &str) -> Response {
    tracing::error!("a server layer failed");
    system_error(path)
}

/// A handler panicked: answer 500 with generic text and log nothing of the request.
pub(crate) fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a request handler panicked");
    system_error("")
}
