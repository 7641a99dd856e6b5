//! `GET /oauth20/session-token` (API.md §1, §2 "Session-aware"): a client-authenticated
//! storefront back end mints a session token that later token requests can join.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use tessera_core::TokenError;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::client_auth::{Authorization, AuthorizationError, authorization};

/// The session-token endpoint's methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    get(mint)
}

#[derive(Serialize)]
struct SessionTokenBody {
    session_token: String,
}

async fn mint(
    State(state): State<AppState>,
    headers: HeaderMap,
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
    let client = state.service.authenticate_client(&credentials).await?;
    let value = state.service.mint_session_token(&client).await?;
    Ok(Json(SessionTokenBody {
        session_token: value.expose().to_owned(),
    }))
}
