//! The request of the introspection (RFC 7662 §2.1) and revocation (RFC 7009 §2.1)
//! endpoints: a form body with `token` and optional `token_type_hint`, and client
//! credentials as at the token endpoint (Basic, or `client_id` / `client_secret` in the
//! body). Everything comes in the body: the query string may carry only the ignored
//! `format`, `ts` and `t`, since a token or a secret in a URL ends up in logs.

use axum::http::HeaderMap;
use tessera_core::client::ClientCredentials;
use tessera_core::{Secret, TokenError};

use super::client_auth::form_client_credentials;
use super::params::{ParamRules, Params};

/// What an introspection or revocation request carries.
pub(crate) struct TokenParam {
    /// The token asked about; `None` when missing or empty.
    pub(crate) token: Option<Secret>,
    /// The caller's credentials, not yet checked.
    pub(crate) credentials: Option<ClientCredentials>,
}

const RULES: ParamRules = ParamRules {
    canonical,
    query_allowed: &[],
    secrets: &["token", "client_secret"],
    query_refused: "parameters must be sent in the form body",
};

fn canonical(name: &str) -> Option<&'static str> {
    Some(match name {
        "token" => "token",
        "token_type_hint" => "token_type_hint",
        "client_id" => "client_id",
        "client_secret" => "client_secret",
        _ => return None,
    })
}

/// Reads an introspection or revocation request.
pub(crate) fn token_param(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<TokenParam, TokenError> {
    let mut params = Params::collect(&RULES, query, headers, body)?;
    let credentials = form_client_credentials(
        headers,
        params.take("client_id"),
        params.take("client_secret").map(Secret::new),
    )?;
    // `token_type_hint` is read, so that it counts once like every parameter, and then
    // ignored, unknown values included: a Tessera token names its own type in its prefix,
    // and both RFC 7662 §2.1 and RFC 7009 §2.1 let the server ignore the hint.
    let _hint = params.take("token_type_hint");
    Ok(TokenParam {
        token: params.take("token").map(Secret::new),
        credentials,
    })
}
