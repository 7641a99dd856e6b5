//! `POST /oauth20/introspect` (RFC 7662, API.md §6): whether a token is active, and its
//! facts when it is. The rules are the core's (`TokenService::introspect`); this module
//! reads the form and writes the RFC 7662 §2.2 answer.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, post};
use serde::Serialize;
use tessera_core::introspection::{ActiveToken, Introspection};
use tessera_core::token::TokenKind;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::peer::PeerAddress;
use crate::extract::token_param::token_param;
use crate::json::JsonAnswer;
use crate::oauth::token::FORM_BODY_LIMIT;
use crate::openapi::{IgnoredQuery, NoStore, TokenManagementFailures, TokenParamForm};

/// The introspection endpoint's methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    post(introspect)
}

/// RFC 7662 §2.2. An inactive token is exactly `{"active": false}`: every other member is
/// left out. Times are whole seconds since the epoch; there is never a `scope`, since
/// Tessera issues unscoped tokens.
#[derive(Serialize, ToSchema)]
#[schema(as = Introspection)]
struct IntrospectionBody {
    /// Whether the token is active; when false, no other member is present.
    active: bool,
    /// `bearer` for an access token, `refresh_token` for a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(bearer|refresh_token)$")]
    token_type: Option<&'static str>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// The token's subject: the shopper's user id, or the client's id for a client token.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// The session's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The shopper's username, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    /// When the token was issued, in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    /// When the token expires, in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

impl IntrospectionBody {
    const INACTIVE: IntrospectionBody = IntrospectionBody {
        active: false,
        token_type: None,
        client_id: None,
        sub: None,
        sid: None,
        username: None,
        iat: None,
        exp: None,
    };
}

impl From<Introspection> for IntrospectionBody {
    fn from(introspection: Introspection) -> Self {
        let Introspection::Active(token) = introspection else {
            return Self::INACTIVE;
        };
        let ActiveToken {
            kind,
            client_id,
            subject,
            session_id,
            username,
            issued_at,
            expires_at,
        } = token;
        Self {
            active: true,
            // RFC 6749 §7.1 names the access token's type; the refresh token's is the
            // `token_type_hint` value RFC 7009 §2.1 registers for it.
            token_type: Some(match kind {
                TokenKind::Access => "bearer",
                TokenKind::Refresh => "refresh_token",
            }),
            client_id: Some(client_id),
            sub: Some(subject),
            sid: Some(session_id),
            username,
            iat: Some(issued_at.unix_seconds()),
            exp: Some(expires_at.unix_seconds()),
        }
    }
}

/// Introspect a token (RFC 7662; API.md §6).
///
/// A client sees its own tokens; a client marked as resource server sees all. Anything
/// inactive (unknown, expired, revoked, another client's, garbage) is exactly
/// `{"active": false}`.
#[utoipa::path(
    post,
    path = "/oauth20/introspect",
    operation_id = "introspectToken",
    tag = "tokens",
    params(IgnoredQuery),
    request_body(content = TokenParamForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Whether the token is active, and its facts when it is.",
            body = IntrospectionBody, headers(("Cache-Control" = inline(NoStore)))),
        TokenManagementFailures,
    ),
    security(("clientBasic" = [])),
)]
async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    peer: PeerAddress,
    body: Body,
) -> Result<JsonAnswer<IntrospectionBody>, ApiError> {
    let body = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::TokenBodyTooLarge)?;
    let request =
        token_param(&headers, query.as_deref(), &body).map_err(ApiError::Introspection)?;
    let answer = state
        .service
        .introspect(
            request.credentials.as_ref(),
            request.token.as_ref(),
            &peer.to_string(),
        )
        .await
        .map_err(ApiError::Introspection)?;
    Ok(JsonAnswer(answer.into()))
}
