//! The domain's error types, named after the protocol codes they become. The server's
//! `error` module alone turns them into status codes and bodies; descriptions here are
//! fixed strings so no caller input (a token, a secret) is ever echoed back.

use crate::limits::Limit;

/// Errors of the token endpoint (RFC 6749 §5.2, plus Digital River's extension).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// RFC 6749 §5.2 `invalid_request`: a required parameter is missing, a parameter is
    /// repeated or malformed, a secret came in the query string, or more than one client
    /// authentication method was used.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// RFC 6749 §5.2 `invalid_client`: client authentication failed (unknown client, wrong
    /// secret, no authentication, disabled client). Always the same answer, so it never
    /// tells which.
    #[error("invalid_client")]
    InvalidClient,
    /// RFC 6749 §5.2 `invalid_grant`: the grant (a shopper id, a refresh token, a password)
    /// is invalid, expired, revoked, or belongs to another client.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// RFC 6749 §5.2 `unauthorized_client`: this client may not use this grant type.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// RFC 6749 §5.2 `unsupported_grant_type`: Tessera does not know the grant type.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// RFC 6749 §5.2 `invalid_scope`: Tessera issues no scoped tokens, so any requested
    /// scope is refused rather than silently dropped.
    #[error("invalid_scope")]
    InvalidScope,
    /// Digital River's `dr_limited_token_invalid`: the limited token to upgrade is bad.
    #[error("dr_limited_token_invalid")]
    DrLimitedTokenInvalid,
    /// A limit refused the request (RELIABILITY P12): too many failed shopper logins or
    /// client authentications within the last hour, or too many requests. The server
    /// answers 429 with `Retry-After`; RFC 6749 has no code for limits, so the body's code
    /// is the one the request would have failed with (`invalid_grant` for logins,
    /// `invalid_client` for client authentication), or `temporarily_unavailable` for a
    /// request rate.
    #[error("too many attempts ({}); retry after {retry_after_seconds} s", limit.name())]
    TooManyAttempts {
        /// The limit that refused.
        limit: Limit,
        /// Whole seconds until an attempt may be admitted again (at least 1).
        retry_after_seconds: u64,
    },
    /// The store could not answer or could not take a write: fail closed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of bearer-protected resources (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No token was sent at all: RFC 6750 §3.1 says the challenge carries no error code.
    #[error("no token")]
    Missing,
    /// RFC 6750 §3.1 `invalid_request`: the token came twice with different values, or
    /// the request is otherwise malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// RFC 6750 §3.1 `invalid_token`: expired, revoked, malformed, forged, or not an
    /// access token.
    #[error("invalid_token")]
    InvalidToken,
    /// Client credentials sent beside the token did not authenticate (API.md §8).
    #[error("invalid_client")]
    InvalidClient,
    /// Client credentials sent beside the token were refused by the failure limits of
    /// client authentication, as [`TokenError::TooManyAttempts`].
    #[error("too many attempts ({}); retry after {retry_after_seconds} s", limit.name())]
    TooManyAttempts {
        /// The limit that refused.
        limit: Limit,
        /// Whole seconds until an attempt may be admitted again (at least 1).
        retry_after_seconds: u64,
    },
    /// The store could not answer or could not take a write: fail closed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a store reports when it cannot do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or cannot take the write now (locked, full, read-only,
    /// down). Callers answer 503 and never pretend the write happened.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule refused the write (a duplicate external reference id, username or
    /// client id).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store holds something that cannot be read back as a valid record.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// Errors of the administration API and commands (revoking sessions, setting a cart id,
/// listing sessions). Rendered in the Digital River shape of API.md §5 on the admin
/// listener.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The caller did not present the admin token (`unauthorized`, 401).
    #[error("unauthorized")]
    Unauthorized,
    /// No such shopper, client or live session (`not-found`, 404).
    #[error("not-found: {0}")]
    NotFound(&'static str),
    /// The request is malformed: a bad body or a bad cart id (`invalid_request`, 400).
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// The store could not answer or could not take a write: fail closed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
