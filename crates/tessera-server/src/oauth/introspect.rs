//! `POST /oauth20/introspect` (RFC 7662, API.md §6): whether a token is active, and its
//! facts when it is. The rules are the core's (`TokenService::introspect`); this module
//! reads the form and writes the RFC 7662 §2.2 answer.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{MethodRouter, post};
use serde::Serialize;
use tessera_core::introspection::{ActiveToken, Introspection};
use tessera_core::token::TokenKind;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{self, ApiError};
use crate::extract::peer::PeerAddress;
use crate::extract::token_param::token_param;
use crate::json;
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
struct IntrospectionBody<'a> {
    /// Whether the token is active; when false, no other member is present.
    active: bool,
    /// `bearer` for an access token, `refresh_token` for a refresh token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(bearer|refresh_token)$")]
    token_type: Option<&'static str>,
    /// The client the token was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    /// The token's subject: the shopper's user id, or the client's id for a client token.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    /// The session's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    /// The shopper's username, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<&'a str>,
    /// When the token was issued, in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    /// When the token expires, in seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
}

/// The inactive answer, whatever the token.
const INACTIVE: &[u8] = br#"{"active":false}"#;

impl<'a> IntrospectionBody<'a> {
    fn active(token: &'a ActiveToken) -> Self {
        Self {
            active: true,
            // RFC 6749 §7.1 names the access token's type; the refresh token's is the
            // `token_type_hint` value RFC 7009 §2.1 registers for it.
            token_type: Some(match token.kind {
                TokenKind::Access => "bearer",
                TokenKind::Refresh => "refresh_token",
            }),
            client_id: Some(token.client_id()),
            sub: Some(token.subject()),
            sid: Some(token.session_id()),
            username: token.username.as_deref(),
            iat: Some(token.issued_at().unix_seconds()),
            exp: Some(token.expires_at().unix_seconds()),
        }
    }
}

/// The 200 answer. An active one is rendered by the first request that answers from its
/// lookup and kept with it (`Rendered::introspection`): it depends on the lookup alone, so
/// later requests the lookup cache answers from the same lookup copy those bytes.
fn answer(introspection: &Introspection) -> Response {
    match body(introspection) {
        Ok(body) => json::written(body.to_vec()),
        Err(serialisation) => error::unwritable_answer(&serialisation),
    }
}

fn body(introspection: &Introspection) -> Result<&[u8], serde_json::Error> {
    let Introspection::Active(token) = introspection else {
        return Ok(INACTIVE);
    };
    let rendered = &token.found.rendered;
    Ok(match rendered.introspection() {
        Some(body) => body,
        None => {
            let body = serde_json::to_vec(&IntrospectionBody::active(token))?;
            rendered.keep_introspection(body.into_boxed_slice())
        }
    })
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
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::TokenBodyTooLarge)?;
    let request =
        token_param(&headers, query.as_deref(), &body).map_err(ApiError::Introspection)?;
    let introspection = state
        .service
        .introspect(
            request.credentials.as_ref(),
            request.token.as_ref(),
            &peer.to_string(),
        )
        .await
        .map_err(ApiError::Introspection)?;
    Ok(answer(&introspection))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};
    use tessera_core::introspection::{ActiveToken, Introspection};
    use tessera_core::token::TokenKind;

    use super::body;
    use crate::oauth::test_lookup::lookup;

    fn parsed(introspection: &Introspection) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(body(introspection)?)
    }

    /// The first answer from a lookup renders it and keeps it; later answers from the same
    /// lookup are those kept bytes, and every one holds RFC 7662's members for the lookup.
    #[test]
    fn an_active_answer_is_rendered_once_per_lookup_and_holds_the_lookups_facts()
    -> Result<(), serde_json::Error> {
        for (every_field, kind) in [(true, TokenKind::Access), (false, TokenKind::Refresh)] {
            let found = Arc::new(lookup(every_field));
            let first = Introspection::Active(ActiveToken {
                found: Arc::clone(&found),
                kind,
                username: every_field.then(|| "shopper \"one\"".to_owned()),
            });
            let token_type = match kind {
                TokenKind::Access => "bearer",
                TokenKind::Refresh => "refresh_token",
            };
            // A client token's subject is its client.
            let subject = match every_field {
                true => "fedcba9876543210fedcba9876543210".to_owned(),
                false => "c".repeat(32),
            };
            let mut expected = json!({
                "active": true,
                "token_type": token_type,
                "client_id": "c".repeat(32),
                "sub": subject,
                "sid": "0123456789abcdef0123456789abcdef",
                "iat": 1_780_000_000,
                "exp": 1_780_003_600,
            });
            if every_field {
                expected["username"] = json!("shopper \"one\"");
            }
            assert!(found.rendered.introspection().is_none());
            assert_eq!(parsed(&first)?, expected);
            let kept = found.rendered.introspection().map(<[u8]>::to_vec);
            assert!(kept.is_some());

            // Later requests do not read the shopper again: the kept answer has the name.
            let later = Introspection::Active(ActiveToken {
                found: Arc::clone(&found),
                kind,
                username: None,
            });
            assert_eq!(Some(body(&later)?.to_vec()), kept);
            assert_eq!(parsed(&later)?, expected);
        }
        Ok(())
    }

    #[test]
    fn an_inactive_answer_is_active_false_alone() -> Result<(), serde_json::Error> {
        assert_eq!(parsed(&Introspection::Inactive)?, json!({"active": false}));
        assert_eq!(body(&Introspection::Inactive)?, br#"{"active":false}"#);
        Ok(())
    }
}
