//! `POST /oauth20/token` (API.md §2): the form, the client credentials, and the answer
//! of RFC 6749 §5.1.

use std::collections::HashMap;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde::Serialize;
use tessera_core::Secret;
use tessera_core::TokenError;
use tessera_core::grants::TokenRequest;
use tessera_core::service::RequestContext;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::client_auth::{
    Authorization, AuthorizationError, authorization, client_credentials,
};
use crate::extract::form::parse_pairs;
use crate::extract::peer::PeerAddress;

/// Largest accepted form body (RELIABILITY.md: 16 KiB on form endpoints).
pub(crate) const FORM_BODY_LIMIT: usize = 16 * 1024;

/// The token endpoint's methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    post(issue)
}

#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

async fn issue(
    State(state): State<AppState>,
    PeerAddress(client_ip): PeerAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::TokenBodyTooLarge)?;
    let mut params = TokenParams::collect(query.as_deref(), &headers, &body)?;
    let header_credentials = match authorization(&headers) {
        Ok(Authorization::Basic(credentials)) => Some(credentials),
        Ok(Authorization::None) => None,
        // A bearer token standing for its client (API.md §8) arrives with shopper upgrades;
        // until then any other scheme is a failed client authentication.
        Ok(Authorization::Bearer(_) | Authorization::Other)
        | Err(AuthorizationError::MalformedBasic) => return Err(TokenError::InvalidClient.into()),
        Err(AuthorizationError::Repeated) => {
            return Err(TokenError::InvalidRequest("more than one Authorization header").into());
        }
    };
    let credentials = client_credentials(
        header_credentials,
        params.take("client_id"),
        params.take("client_secret").map(Secret::new),
    )?;
    let request = TokenRequest {
        grant_type: params.take("grant_type"),
        username: params.take("username"),
        password: params.take("password").map(Secret::new),
        external_reference_id: params.take("external_reference_id"),
        refresh_token: params.take("refresh_token").map(Secret::new),
        scope: params.take("scope"),
    };
    let context = RequestContext {
        client_ip,
        session_token: params.take("session_token"),
        limited_token: params.take("dr_limited_token").map(Secret::new),
    };
    let issued = state
        .service
        .token(credentials.as_ref(), &request, &context)
        .await?;
    let mut response = Json(TokenBody {
        access_token: issued.access_token.expose().to_owned(),
        token_type: "bearer",
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token.map(|t| t.expose().to_owned()),
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The token endpoint's parameters from the query string and the body, under their
/// canonical names, each at most once.
struct TokenParams(HashMap<&'static str, String>);

/// Parameters that may come in the query string (API.md §2, §8): identifiers only.
const QUERY_ALLOWED: [&str; 3] = ["grant_type", "session_token", "external_reference_id"];

/// Parameters that must never be in a URL, because URLs end up in logs.
const SECRETS: [&str; 4] = [
    "client_secret",
    "password",
    "refresh_token",
    "dr_limited_token",
];

/// Maps a parameter name (and its aliases) to its canonical name; `None` for names that
/// are ignored: `format`, `ts`, `t`, and anything unknown (RFC 6749 §3.2).
fn canonical(name: &str) -> Option<&'static str> {
    Some(match name {
        "grant_type" => "grant_type",
        "username" => "username",
        "password" => "password",
        "refresh_token" => "refresh_token",
        "scope" => "scope",
        "client_id" => "client_id",
        "client_secret" => "client_secret",
        "dr_limited_token" => "dr_limited_token",
        "dr_external_reference_id" | "externalReferenceId" => "external_reference_id",
        "dr_session_token" | "sessionToken" | "session_token" => "session_token",
        _ => return None,
    })
}

impl TokenParams {
    fn collect(query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> Result<Self, TokenError> {
        let mut params = HashMap::new();
        let query_pairs = parse_pairs(query.unwrap_or("").as_bytes())
            .map_err(|e| TokenError::InvalidRequest(e.describe()))?;
        for (name, value) in query_pairs {
            let Some(name) = canonical(&name) else {
                continue;
            };
            if SECRETS.contains(&name) {
                return Err(TokenError::InvalidRequest(
                    "secrets must not be sent in the query string",
                ));
            }
            if !QUERY_ALLOWED.contains(&name) {
                return Err(TokenError::InvalidRequest(
                    "only grant_type, dr_session_token and dr_external_reference_id may be sent in the query string",
                ));
            }
            insert_once(&mut params, name, value)?;
        }
        if !body.is_empty() {
            if !is_form(headers) {
                return Err(TokenError::InvalidRequest(
                    "the body must be application/x-www-form-urlencoded",
                ));
            }
            let body_pairs =
                parse_pairs(body).map_err(|e| TokenError::InvalidRequest(e.describe()))?;
            for (name, value) in body_pairs {
                if let Some(name) = canonical(&name) {
                    insert_once(&mut params, name, value)?;
                }
            }
        }
        Ok(Self(params))
    }

    fn take(&mut self, name: &'static str) -> Option<String> {
        self.0.remove(name)
    }
}

/// RFC 6749 §3.1: an empty parameter counts as omitted; §3.2: none may repeat.
fn insert_once(
    params: &mut HashMap<&'static str, String>,
    name: &'static str,
    value: String,
) -> Result<(), TokenError> {
    if value.is_empty() {
        return Ok(());
    }
    if params.insert(name, value).is_some() {
        return Err(TokenError::InvalidRequest(
            "a parameter was given more than once",
        ));
    }
    Ok(())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}
