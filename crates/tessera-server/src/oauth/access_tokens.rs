//! `GET` and `DELETE` on `/oauth20/access-tokens` and its aliases (API.md §3, §4).

use axum::Json;
use axum::extract::{Request, State};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use tessera_core::session::SessionView;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer::bearer_request;
use crate::extract::peer::PeerAddress;
use crate::openapi::{BearerFailures, Flag, IgnoredQuery, NoStore};

/// The session-details methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    get(show).delete(revoke)
}

/// Session details as Digital River clients read them (API.md §3).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionDetails {
    /// The session's id: 32 lower-case hex.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    session_id: String,
    /// The shopper's id (anonymous visitors have one); null for client tokens.
    #[schema(required, pattern = "^[0-9a-f]{32}$")]
    user_id: Option<String>,
    /// The partner's id of the shopper, or null.
    #[schema(required)]
    external_reference_id: Option<String>,
    /// `"true"` for a full token, `"false"` for a limited (anonymous) one: a string, as
    /// Digital River clients compare it.
    #[schema(value_type = Flag)]
    authenticated: &'static str,
    /// The session's locale, e.g. `en_US`.
    #[schema(example = "en_US")]
    locale: String,
    /// The session's currency, e.g. `USD`.
    #[schema(example = "USD")]
    currency: String,
    /// The session's cart, or null until one is set.
    #[schema(required)]
    cart_id: Option<String>,
    /// The socket peer the session was created from.
    client_ip_address: String,
    /// The answering node's name.
    domain: String,
    /// Whole seconds this token has left.
    #[schema(minimum = 0)]
    expires_in: i64,
    /// The client's storefront theme, or null.
    #[schema(required)]
    theme_id: Option<String>,
    /// 32 lower-case hex, fixed for the session.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    session_tag: String,
    /// When the session was created: ISO-8601 UTC with milliseconds.
    #[schema(example = "2026-11-27T12:00:00.000Z")]
    created_on: String,
    /// When the session was last used (moves at most once a minute).
    #[schema(example = "2026-11-27T12:00:00.000Z")]
    last_accessed: String,
    /// The presented token itself.
    access_token: String,
}

impl From<SessionView> for SessionDetails {
    fn from(view: SessionView) -> Self {
        Self {
            session_id: view.session_id,
            user_id: view.user_id,
            external_reference_id: view.external_reference_id,
            authenticated: if view.authenticated { "true" } else { "false" },
            locale: view.locale,
            currency: view.currency,
            cart_id: view.cart_id,
            client_ip_address: view.client_ip,
            domain: view.domain,
            expires_in: view.expires_in,
            theme_id: view.theme_id,
            session_tag: view.session_tag,
            created_on: view.created_on.to_iso8601(),
            last_accessed: view.last_accessed.to_iso8601(),
            access_token: view.access_token.expose().to_owned(),
        }
    }
}

/// The session behind an access token (API.md §3).
///
/// The token comes as `Authorization: Bearer` or `?token=` (both: the same value). A
/// refresh token, an expired or revoked token and anything that is not a Tessera token
/// are `invalid_token`.
#[utoipa::path(
    get,
    path = "/oauth20/access-tokens",
    operation_id = "getSessionDetails",
    tag = "sessions",
    params(IgnoredQuery),
    responses(
        (status = 200, description = "The session details.", body = SessionDetails,
            headers(("Cache-Control" = inline(NoStore)))),
        BearerFailures,
    ),
    security(("bearerToken" = []), ("tokenQuery" = []), ("tokenQuery" = [], "clientBasic" = [])),
)]
async fn show(
    State(state): State<AppState>,
    PeerAddress(peer): PeerAddress,
    request: Request,
) -> Result<Json<SessionDetails>, ApiError> {
    // The whole request, read in place: neither its headers nor its URI are copied.
    let resource = request.uri().path().to_owned();
    let bearer = bearer_request(request.headers(), request.uri().query())
        .map_err(|e| ApiError::Bearer(e, resource.clone()))?;
    let view = state
        .service
        .session(&bearer.token, bearer.client.as_ref(), &peer)
        .await
        .map_err(|e| ApiError::Bearer(e, resource))?;
    Ok(Json(view.into()))
}

/// Revoke an access token: logout, or rotation (API.md §4).
///
/// If the token is its session's newest access token the whole session ends (every access
/// and refresh token of it); otherwise (the session was refreshed since) only this token is
/// revoked. The write is on disk before the 200, which carries the session as it was.
#[utoipa::path(
    delete,
    path = "/oauth20/access-tokens",
    operation_id = "deleteSession",
    tag = "sessions",
    params(IgnoredQuery),
    responses(
        (status = 200, description = "Revoked; the session details as they were before.",
            body = SessionDetails, headers(("Cache-Control" = inline(NoStore)))),
        BearerFailures,
    ),
    security(("bearerToken" = []), ("tokenQuery" = []), ("tokenQuery" = [], "clientBasic" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    PeerAddress(peer): PeerAddress,
    request: Request,
) -> Result<Json<SessionDetails>, ApiError> {
    let resource = request.uri().path().to_owned();
    let bearer = bearer_request(request.headers(), request.uri().query())
        .map_err(|e| ApiError::Bearer(e, resource.clone()))?;
    let view = state
        .service
        .revoke(&bearer.token, bearer.client.as_ref(), &peer)
        .await
        .map_err(|e| ApiError::Bearer(e, resource))?;
    Ok(Json(view.into()))
}
