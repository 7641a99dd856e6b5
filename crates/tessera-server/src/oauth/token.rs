//! `POST /oauth20/token` (API.md §2): the form, the client credentials, and the answer
//! of RFC 6749 §5.1.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use serde::Serialize;
use tessera_core::Secret;
use tessera_core::TokenError;
use tessera_core::grants::TokenRequest;
use tessera_core::service::RequestContext;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::client_auth::{
    Authorization, AuthorizationError, authorization, client_credentials,
};
use crate::extract::params::{ParamRules, Params};
use crate::extract::peer::PeerAddress;
use crate::json::JsonAnswer;
use crate::openapi::{NoCache, NoStore, TokenFailures};

/// Largest accepted form body (RELIABILITY.md: 16 KiB on form endpoints).
pub(crate) const FORM_BODY_LIMIT: usize = 16 * 1024;

/// The token endpoint's methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    post(issue)
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
#[schema(as = TokenResponse)]
struct TokenBody {
    /// The access token: `tsa_<key id>_<72 base64url characters>`.
    #[schema(pattern = "^tsa_[A-Za-z0-9]{1,16}_[A-Za-z0-9_-]{72}$")]
    access_token: String,
    /// Always `bearer` (RFC 6750).
    #[schema(pattern = "^bearer$")]
    token_type: &'static str,
    /// Whole seconds the access token lives.
    #[schema(minimum = 0)]
    expires_in: i64,
    /// The refresh token, `tsr_<key id>_<72 base64url characters>`; absent for client
    /// tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^tsr_[A-Za-z0-9]{1,16}_[A-Za-z0-9_-]{72}$")]
    refresh_token: Option<String>,
}

/// Issue tokens (RFC 6749 §4.3, §4.4, §6; API.md §2).
///
/// One endpoint for every grant; the parameters select it:
///
/// - anonymous (limited) token: `grant_type=password` with neither `username` nor
///   `password` (or both `anonymous`);
/// - shopper login: `grant_type=password`, `username`, `password` (clients allowed the
///   `password` grant); past a failed-login limit the answer is 429;
/// - a partner's shopper: `grant_type=client_credentials`, `dr_external_reference_id`
///   (confidential clients);
/// - client token: `grant_type=client_credentials` alone (no refresh token);
/// - refresh: `grant_type=refresh_token`, `refresh_token` (rotation: the old one is
///   consumed; presenting a consumed one again ends the session);
/// - upgrade: `dr_limited_token` beside a shopper login or partner-shopper grant; a
///   shopper login may instead carry the limited token as `Authorization: Bearer`, in
///   place of client credentials;
/// - session-aware: `dr_session_token` (or `sessionToken`, `session_token`), minted by
///   `GET /oauth20/session-token`.
///
/// Parameters come in the form body; identifiers (`grant_type`, the session token and the
/// external reference id) may come in the query string instead, secrets never. A parameter
/// given twice, in one place or across both, is `invalid_request`; an empty one counts as
/// omitted; unknown ones and `format`, `ts`, `t` are ignored.
#[utoipa::path(
    post,
    path = "/oauth20/token",
    operation_id = "issueToken",
    tag = "tokens",
    params(TokenQuery),
    request_body(
        content = Option<TokenForm>,
        content_type = "application/x-www-form-urlencoded",
        description = "The grant's parameters. May be empty when everything comes from the \
                       query string and `Authorization`; a non-empty body of another content \
                       type is `invalid_request`.",
    ),
    responses(
        (status = 200, description = "Tokens issued, on disk before the answer.",
            body = TokenBody, headers(
                ("Cache-Control" = inline(NoStore)), ("Pragma" = inline(NoCache)))),
        TokenFailures,
    ),
    security(("clientBasic" = [])),
)]
async fn issue(
    State(state): State<AppState>,
    peer: PeerAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::TokenBodyTooLarge)?;
    let mut params = Params::collect(&RULES, query.as_deref(), &headers, &body)?;
    let mut limited_bearer = None;
    let header_credentials = match authorization(&headers) {
        Ok(Authorization::Basic(credentials)) => Some(credentials),
        Ok(Authorization::None) => None,
        // A limited token standing for its client (API.md §8).
        Ok(Authorization::Bearer(token)) => {
            limited_bearer = Some(token);
            None
        }
        Ok(Authorization::Other) | Err(AuthorizationError::MalformedBasic) => {
            return Err(TokenError::InvalidClient.into());
        }
        Err(AuthorizationError::Repeated) => {
            return Err(TokenError::InvalidRequest("more than one Authorization header").into());
        }
    };
    let credentials = client_credentials(
        header_credentials,
        params.take("client_id"),
        params.take("client_secret").map(Secret::new),
    )?;
    if limited_bearer.is_some() && credentials.is_some() {
        return Err(
            TokenError::InvalidRequest("use one client authentication method, not two").into(),
        );
    }
    let request = TokenRequest {
        grant_type: params.take("grant_type"),
        username: params.take("username"),
        password: params.take("password").map(Secret::new),
        external_reference_id: params.take("external_reference_id"),
        refresh_token: params.take("refresh_token").map(Secret::new),
        scope: params.take("scope"),
    };
    let context = RequestContext {
        client_ip: peer.to_string(),
        session_token: params.take("session_token"),
        limited_token: params.take("dr_limited_token").map(Secret::new),
    };
    let issued = match &limited_bearer {
        Some(bearer) => {
            state
                .service
                .token_for_limited_bearer(bearer, &request, &context)
                .await?
        }
        None => {
            state
                .service
                .token(credentials.as_ref(), &request, &context)
                .await?
        }
    };
    let mut response = JsonAnswer(TokenBody {
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

/// What the token endpoint accepts, and where.
const RULES: ParamRules = ParamRules {
    canonical,
    query_allowed: &QUERY_ALLOWED,
    secrets: &SECRETS,
    query_refused: "only grant_type, dr_session_token and dr_external_reference_id may be sent in the query string",
};

/// The grant types of `grant_type` (case-sensitive).
#[derive(ToSchema)]
#[expect(dead_code, reason = "only describes the grant_type parameter")]
enum GrantType {
    /// An anonymous token, or a shopper login with `username` and `password`.
    #[schema(rename = "password")]
    Password,
    /// A client token, or a partner's shopper with `dr_external_reference_id`.
    #[schema(rename = "client_credentials")]
    ClientCredentials,
    /// A new token pair for the session of `refresh_token`.
    #[schema(rename = "refresh_token")]
    RefreshToken,
}

/// The token endpoint's form parameters (API.md §2). Which ones a request needs depends on
/// its grant; each at most once. Values hold no control characters (the form decoder
/// refuses them).
#[derive(ToSchema)]
#[expect(dead_code, reason = "only describes the token endpoint's form body")]
struct TokenForm {
    /// The grant; here or in the query string.
    grant_type: Option<GrantType>,
    /// The shopper's username (shopper login); `anonymous` with password `anonymous` asks
    /// for an anonymous token.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    username: Option<String>,
    /// The shopper's password (shopper login): plain, or base64 of its UTF-8 bytes for a
    /// client configured so.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    password: Option<String>,
    /// The refresh token to rotate (`grant_type=refresh_token`).
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    refresh_token: Option<String>,
    /// Any scope is `invalid_scope`: tokens are unscoped.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    scope: Option<String>,
    /// The client's API key, when it does not use Basic (RFC 6749 §2.3.1); alone for a
    /// public client.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    client_id: Option<String>,
    /// The client's secret, with `client_id`, when it does not use Basic.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    client_secret: Option<String>,
    /// The anonymous access token to upgrade to the shopper's session.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    dr_limited_token: Option<String>,
    /// The partner's id of the shopper (`grant_type=client_credentials`).
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    dr_external_reference_id: Option<String>,
    /// Alias of `dr_external_reference_id`.
    #[schema(
        rename = "externalReferenceId",
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    external_reference_id: Option<String>,
    /// A session token from `GET /oauth20/session-token`: the session to join.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    dr_session_token: Option<String>,
    /// Alias of `dr_session_token`.
    #[schema(rename = "sessionToken", pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    session_token_camel: Option<String>,
    /// Alias of `dr_session_token`.
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    session_token: Option<String>,
    /// Ignored (`format=json` in Digital River clients).
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    format: Option<String>,
    /// Ignored (cache-busting).
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    ts: Option<String>,
    /// Ignored (cache-busting).
    #[schema(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    t: Option<String>,
}

/// What the token endpoint takes from the query string: identifiers only, never secrets
/// (`client_secret`, `password`, `refresh_token`, `dr_limited_token` there are
/// `invalid_request`, and so are `username`, `client_id` and `scope`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "only describes the token endpoint's query string")]
struct TokenQuery {
    /// The grant, when not in the body.
    grant_type: Option<GrantType>,
    /// A session token, when not in the body.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    dr_session_token: Option<String>,
    /// Alias of `dr_session_token`.
    #[param(rename = "sessionToken", pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    session_token_camel: Option<String>,
    /// Alias of `dr_session_token`.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    session_token: Option<String>,
    /// The partner's id of the shopper, when not in the body.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    dr_external_reference_id: Option<String>,
    /// Alias of `dr_external_reference_id`.
    #[param(
        rename = "externalReferenceId",
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    external_reference_id: Option<String>,
    /// Ignored.
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    format: Option<String>,
    /// Ignored (cache-busting).
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    ts: Option<String>,
    /// Ignored (cache-busting).
    #[param(pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    t: Option<String>,
}
