//! `GET` and `DELETE` on `/oauth20/access-tokens` and its aliases (API.md §3, §4).

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use tessera_core::BearerError;
use tessera_core::client::ClientCredentials;
use tessera_core::session::SessionView;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer::{BearerRequest, bearer_request};
use crate::extract::peer::PeerAddress;
use crate::json::JsonAnswer;
use crate::openapi::{BearerFailures, Flag, IgnoredQuery, NoStore};

/// The session-details methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    get(show).delete(revoke)
}

/// Session details as Digital River clients read them (API.md §3), borrowed from the
/// lookup: serialised straight from the rows the lookup read.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionDetails<'a> {
    /// The session's id: 32 lower-case hex.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    session_id: &'a str,
    /// The shopper's id (anonymous visitors have one); null for client tokens.
    #[schema(required, pattern = "^[0-9a-f]{32}$")]
    user_id: Option<&'a str>,
    /// The partner's id of the shopper, or null.
    #[schema(required)]
    external_reference_id: Option<&'a str>,
    /// `"true"` for a full token, `"false"` for a limited (anonymous) one: a string, as
    /// Digital River clients compare it.
    #[schema(value_type = Flag)]
    authenticated: &'static str,
    /// The session's locale, e.g. `en_US`.
    #[schema(example = "en_US")]
    locale: &'a str,
    /// The session's currency, e.g. `USD`.
    #[schema(example = "USD")]
    currency: &'a str,
    /// The session's cart, or null until one is set.
    #[schema(required)]
    cart_id: Option<&'a str>,
    /// The socket peer the session was created from.
    client_ip_address: &'a str,
    /// The answering node's name.
    domain: &'a str,
    /// Whole seconds this token has left.
    #[schema(minimum = 0)]
    expires_in: i64,
    /// The client's storefront theme, or null.
    #[schema(required)]
    theme_id: Option<&'a str>,
    /// 32 lower-case hex, fixed for the session.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    session_tag: &'a str,
    /// When the session was created: ISO-8601 UTC with milliseconds.
    #[schema(example = "2026-11-27T12:00:00.000Z")]
    created_on: String,
    /// When the session was last used (moves at most once a minute).
    #[schema(example = "2026-11-27T12:00:00.000Z")]
    last_accessed: String,
    /// The presented token itself.
    access_token: &'a str,
}

impl<'a> SessionDetails<'a> {
    fn of(view: &'a SessionView<'_>) -> Self {
        let SessionView {
            found,
            domain,
            expires_in,
            access_token,
        } = view;
        let session = &found.session;
        Self {
            session_id: &session.id,
            user_id: session.user_id.as_deref(),
            external_reference_id: session.external_reference_id.as_deref(),
            authenticated: if session.authenticated {
                "true"
            } else {
                "false"
            },
            locale: &session.locale,
            currency: &session.currency,
            cart_id: session.cart_id.as_deref(),
            client_ip_address: &session.client_ip,
            domain,
            expires_in: *expires_in,
            theme_id: found.client.theme_id.as_deref(),
            session_tag: &session.session_tag,
            created_on: session.created_at.to_iso8601(),
            last_accessed: session.last_accessed.to_iso8601(),
            access_token: access_token.expose(),
        }
    }

    /// The 200 answer: the details serialised here, while the lookup they borrow from
    /// is still held.
    fn answer(view: &SessionView<'_>) -> Response {
        JsonAnswer(SessionDetails::of(view)).into_response()
    }
}

/// A session request as both methods read it: the request in place (neither its headers
/// nor its URI are copied, the path only for an error), its bearer token, and the caller's
/// address, written out only when client credentials came beside a `?token=`.
struct SessionRequest {
    parts: Parts,
    bearer: BearerRequest,
    address: Option<String>,
}

impl SessionRequest {
    fn read(peer: PeerAddress, request: Request) -> Result<Self, ApiError> {
        let (parts, _) = request.into_parts();
        let bearer = match bearer_request(&parts.headers, parts.uri.query()) {
            Ok(bearer) => bearer,
            Err(error) => return Err(ApiError::Bearer(error, parts.uri.path().to_owned())),
        };
        let address = bearer.client.as_ref().map(|_| peer.to_string());
        Ok(Self {
            parts,
            bearer,
            address,
        })
    }

    /// The client credentials beside a `?token=`, and the address they came from.
    fn caller(&self) -> Option<(&ClientCredentials, &str)> {
        self.bearer.client.as_ref().zip(self.address.as_deref())
    }

    fn failed(&self, error: BearerError) -> ApiError {
        ApiError::Bearer(error, self.parts.uri.path().to_owned())
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
    peer: PeerAddress,
    request: Request,
) -> Result<Response, ApiError> {
    let request = SessionRequest::read(peer, request)?;
    let view = state
        .service
        .session(&request.bearer.token, request.caller())
        .await
        .map_err(|e| request.failed(e))?;
    Ok(SessionDetails::answer(&view))
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
    peer: PeerAddress,
    request: Request,
) -> Result<Response, ApiError> {
    let request = SessionRequest::read(peer, request)?;
    let view = state
        .service
        .revoke(&request.bearer.token, request.caller())
        .await
        .map_err(|e| request.failed(e))?;
    Ok(SessionDetails::answer(&view))
}
