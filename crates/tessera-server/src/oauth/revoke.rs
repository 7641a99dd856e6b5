//! `POST /oauth20/revoke` (RFC 7009, API.md §6): a client revokes one of its tokens. The
//! rules are the core's (`TokenService::revoke_token`); this module reads the form and
//! answers.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{MethodRouter, post};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::peer::PeerAddress;
use crate::extract::token_param::token_param;
use crate::oauth::token::FORM_BODY_LIMIT;
use crate::openapi::{IgnoredQuery, NoStore, TokenManagementFailures, TokenParamForm};

/// The revocation endpoint's methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    post(revoke)
}

/// Revoke a token (RFC 7009; API.md §6).
///
/// 200 with an empty body once the revocation is on disk, and for a token that needed
/// nothing done (RFC 7009 §2.2: the client learns everything from the status). An access
/// token is revoked as by `DELETE /oauth20/access-tokens`; a refresh token ends its whole
/// session; another client's token is refused (`unauthorized_client`) and stays valid.
#[utoipa::path(
    post,
    path = "/oauth20/revoke",
    operation_id = "revokeToken",
    tag = "tokens",
    params(IgnoredQuery),
    request_body(content = TokenParamForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke. No body.",
            headers(("Cache-Control" = inline(NoStore)))),
        TokenManagementFailures,
    ),
    security(("clientBasic" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    peer: PeerAddress,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::TokenBodyTooLarge)?;
    let request = token_param(&headers, query.as_deref(), &body).map_err(ApiError::Revocation)?;
    state
        .service
        .revoke_token(
            request.credentials.as_ref(),
            request.token.as_ref(),
            &peer.to_string(),
        )
        .await
        .map_err(ApiError::Revocation)?;
    Ok(StatusCode::OK)
}
