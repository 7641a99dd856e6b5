//! The request parsers of `extract`, callable on raw bytes: the fuzz targets in `fuzz/`
//! and the test that replays their corpora on stable Rust (RELIABILITY P17) call these,
//! so both exercise exactly the code that reads requests. Each answers what the server
//! would make of the input, in a form that holds no secret.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::extract::bearer::bearer_request;
use crate::extract::client_auth::{Authorization, AuthorizationError, authorization};
use crate::extract::form::parse_pairs;
use crate::extract::token_param::token_param;

/// What the server makes of one `Authorization` header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParsedAuthorization {
    /// The bytes cannot be an HTTP header value at all (hyper would refuse the request).
    NotAHeaderValue,
    /// `Basic` credentials that decode to a client id and, when not empty, a secret.
    Basic {
        /// The decoded client id.
        client_id: String,
        /// Whether a non-empty secret came with it.
        has_secret: bool,
    },
    /// `Basic` that does not decode to `id:secret` (answered `invalid_client`).
    MalformedBasic,
    /// `Bearer` and a token.
    Bearer,
    /// Any other scheme.
    Other,
}

/// Parses `value` as the single `Authorization` header of a request, as the token,
/// introspection and revocation endpoints read it.
pub fn parse_authorization(value: &[u8]) -> ParsedAuthorization {
    let Some(headers) = authorization_headers(Some(value)) else {
        return ParsedAuthorization::NotAHeaderValue;
    };
    match authorization(&headers) {
        Ok(Authorization::Basic(credentials)) => ParsedAuthorization::Basic {
            client_id: credentials.client_id,
            has_secret: credentials.secret.is_some(),
        },
        Ok(Authorization::Bearer(_)) => ParsedAuthorization::Bearer,
        Ok(Authorization::None | Authorization::Other) => ParsedAuthorization::Other,
        Err(AuthorizationError::MalformedBasic) => ParsedAuthorization::MalformedBasic,
        // One header value cannot repeat.
        Err(AuthorizationError::Repeated) => ParsedAuthorization::Other,
    }
}

/// Finds the bearer token of a session request from its `Authorization` header value
/// (if any) and its query string, as `GET /oauth20/access-tokens` does: `Ok` with the
/// token's length, or the fixed description of the 4xx it gets.
pub fn parse_bearer_request(
    authorization: Option<&[u8]>,
    query: Option<&str>,
) -> Result<usize, &'static str> {
    let headers = authorization_headers(authorization).ok_or("not a header value")?;
    bearer_request(&headers, query)
        .map(|request| request.token.expose().len())
        .map_err(|_| "refused")
}

/// Decodes an `application/x-www-form-urlencoded` body strictly, as every form endpoint
/// does: the decoded pairs in order, or the description of the 400 it gets.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, &'static str> {
    parse_pairs(body).map_err(|e| e.describe())
}

/// Reads an introspection or revocation form body (parameters, duplicates, client
/// credentials in the body) with an optional `Authorization` header value: `Ok` with
/// whether it named a token, or that it was refused.
pub fn parse_token_form(authorization: Option<&[u8]>, body: &[u8]) -> Result<bool, &'static str> {
    let mut headers = authorization_headers(authorization).ok_or("not a header value")?;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    token_param(&headers, None, body)
        .map(|param| param.token.is_some())
        .map_err(|_| "refused")
}

/// A header map holding `authorization` as its only `Authorization` header; `None` when
/// the bytes cannot be a header value.
fn authorization_headers(authorization: Option<&[u8]>) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
    }
    Some(headers)
}
