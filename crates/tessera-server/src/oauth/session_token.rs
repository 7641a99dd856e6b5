//! `GET /oauth20/session-token` (API.md §1, §2 "Session-aware"): a client-authenticated
//! storefront back end mints a session token that later token requests can join.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use tessera_core::TokenError;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::client_auth::{Authorization, AuthorizationError, authorization};
use crate::extract::peer::PeerAddress;
use crate::openapi::{ClientFailures, NoStore};

/// The session-token endpoint's methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    get(mint)
}

/// A new session token.
#[derive(Serialize, ToSchema)]
#[schema(as = SessionToken)]
struct SessionTokenBody {
    /// 32 upper-case hex (128 random bits); accepted for the client that minted it until
    /// the client's refresh TTL has passed.
    #[schema(pattern = "^[0-9A-F]{32}$")]
    session_token: String,
}

/// Mint a session token (API.md §2, "Session-aware").
///
/// A storefront back end, authenticated as its client, gets a session token; token requests
/// of the same client carrying it (`dr_session_token`) share one session.
#[utoipa::path(
    get,
    path = "/oauth20/session-token",
    operation_id = "mintSessionToken",
    tag = "tokens",
    responses(
        (status = 200, description = "A new session token, on disk before the answer.",
            body = SessionTokenBody, headers(("Cache-Control" = inline(NoStore)))),
        ClientFailures,
    ),
    security(("clientBasic" = [])),
)]
async fn mint(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: PeerAddress,
) -> Result<Json<SessionTokenBody>, ApiError> {
    let credentials = match authorization(&headers) {
        Ok(Authorization::Basic(credentials)) => credentials,
        Err(AuthorizationError::Repeated) => {
            return Err(TokenError::InvalidRequest("more than one Authorization header").into());
        }
        Ok(_) | Err(AuthorizationError::MalformedBasic) => {
            return Err(TokenError::InvalidClient.into());
        }
    };
    let client = state
        .service
        .authenticate_client(&credentials, &peer.to_string())
        .await?;
    let value = state.service.mint_session_token(&client).await?;
    Ok(Json(SessionTokenBody {
        session_token: value.expose().to_owned(),
    }))
}
