//! The bearer token of a session request (API.md §3, §8): `Authorization: Bearer` (any
//! case), or `?token=` for older clients, optionally beside `Authorization: Basic`.

use axum::http::HeaderMap;
use tessera_core::BearerError;
use tessera_core::Secret;
use tessera_core::client::ClientCredentials;

use super::client_auth::{Authorization, AuthorizationError, authorization};
use super::form::parse_pairs;

/// A bearer token and, when Basic came beside `?token=`, the client that sent it.
pub(crate) struct BearerRequest {
    /// The presented token.
    pub(crate) token: Secret,
    /// Client credentials that must authenticate before the token is looked up.
    pub(crate) client: Option<ClientCredentials>,
}

/// Finds the token in the header and the query string.
pub(crate) fn bearer_request(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<BearerRequest, BearerError> {
    let pairs = parse_pairs(query.unwrap_or("").as_bytes())
        .map_err(|e| BearerError::InvalidRequest(e.describe()))?;
    let mut query_tokens = pairs.into_iter().filter(|(name, _)| name == "token");
    let query_token = query_tokens.next().map(|(_, value)| value);
    if query_tokens.next().is_some() {
        return Err(BearerError::InvalidRequest(
            "token was given more than once",
        ));
    }
    let header = authorization(headers).map_err(|e| match e {
        AuthorizationError::Repeated => {
            BearerError::InvalidRequest("more than one Authorization header")
        }
        AuthorizationError::MalformedBasic => BearerError::InvalidClient,
    })?;
    match (header, query_token) {
        (Authorization::Bearer(token), Some(query)) => {
            if token.expose() != query {
                return Err(BearerError::InvalidRequest(
                    "the token was sent twice with different values",
                ));
            }
            Ok(BearerRequest {
                token,
                client: None,
            })
        }
        (Authorization::Bearer(token), None) => Ok(BearerRequest {
            token,
            client: None,
        }),
        (Authorization::Basic(client), Some(query)) => Ok(BearerRequest {
            token: Secret::new(query),
            client: Some(client),
        }),
        (Authorization::None | Authorization::Other, Some(query)) => Ok(BearerRequest {
            token: Secret::new(query),
            client: None,
        }),
        (Authorization::None | Authorization::Other | Authorization::Basic(_), None) => {
            Err(BearerError::Missing)
        }
    }
}
