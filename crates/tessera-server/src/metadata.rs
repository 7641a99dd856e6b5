//! `GET /.well-known/oauth-authorization-server` (RFC 8414, API.md §1): the document that
//! tells OAuth libraries where Tessera's endpoints are and what they accept, and the
//! [`Issuer`] it is built from.
//!
//! The document holds no secret and changes only with the configuration, so it is built
//! once, when the router is, and may be cached by anyone for an hour.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use axum::body::Bytes;
use axum::http::uri::Authority;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use serde_json::json;
use utoipa::ToSchema;

use crate::AppState;

/// Where RFC 8414 §3 puts the document.
pub(crate) const PATH: &str = "/.well-known/oauth-authorization-server";

/// How long anyone may cache the document.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// Client authentication methods of the token, introspection and revocation endpoints
/// (the IANA "OAuth Token Endpoint Authentication Methods" names): HTTP Basic, `client_id`
/// and `client_secret` in the body, and a public client's bare `client_id`.
const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// The grant types of the token endpoint (API.md §2). The anonymous token is
/// `grant_type=password` without a username; partner shoppers are `client_credentials`.
const GRANT_TYPES: [&str; 3] = ["password", "client_credentials", "refresh_token"];

/// RFC 8414 §2 requires `response_types_supported`, although Tessera has no authorization
/// endpoint and so issues nothing through any response type. An empty list would be the
/// literal truth but is refused by common client libraries (authlib's
/// `AuthorizationServerMetadata.validate()` requires a non-empty list); `none` is the
/// registered response type (OAuth 2.0 Multiple Response Type Encoding Practices §5) that
/// returns no credential at all, which is what Tessera's absent authorization endpoint
/// gives. No `authorization_endpoint` is listed, and no grant type that needs one.
const RESPONSE_TYPES: [&str; 1] = ["none"];

/// Tessera's issuer identifier (RFC 8414 §2): an absolute `http` or `https` URL without
/// query or fragment, and without a trailing slash, under which every endpoint path is
/// appended. RFC 8414 asks for `https`; `http` is accepted for development and for a
/// server behind a TLS-terminating proxy that is named by its `https` issuer anyway.
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer(String);

/// Why a configured issuer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssuerError {
    /// Not `http://` or `https://` followed by a host.
    #[error("the issuer must be an absolute URL starting with https:// or http://")]
    Scheme,
    /// RFC 8414 §2: the issuer has no query or fragment component.
    #[error("the issuer must not have a query (?) or fragment (#) component")]
    QueryOrFragment,
    /// An empty or malformed host or port, or user information (`user@`).
    #[error("the issuer must name a host (and optionally a port), without user information")]
    Host,
    /// White space, control characters or characters outside ASCII.
    #[error(
        "the issuer must be written in ASCII without spaces (percent-encode paths, punycode \
         host names)"
    )]
    Characters,
    /// A path holding characters a URL path cannot hold unencoded.
    #[error("the issuer's path holds characters that must be percent-encoded")]
    Path,
}

impl Issuer {
    /// Checks and normalises an issuer URL: the scheme lower-cased, trailing slashes
    /// dropped; everything else is kept as given, since clients compare it byte for byte
    /// (RFC 8414 §3.3).
    pub fn parse(value: &str) -> Result<Self, IssuerError> {
        if !value.is_ascii()
            || value
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(IssuerError::Characters);
        }
        if value.contains(['?', '#']) {
            return Err(IssuerError::QueryOrFragment);
        }
        let (scheme, rest) = value.split_once("://").ok_or(IssuerError::Scheme)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(IssuerError::Scheme);
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        let parsed = Authority::from_str(authority).map_err(|_| IssuerError::Host)?;
        if parsed.host().is_empty() || authority.contains('@') {
            return Err(IssuerError::Host);
        }
        // After an IPv6 literal's `]`, or in the whole authority: `:PORT`, 1 to 65535.
        let after_host = authority
            .rsplit_once(']')
            .map_or(authority, |(_, rest)| rest);
        if let Some((_, port)) = after_host.split_once(':')
            && !matches!(port.parse::<u16>(), Ok(1..))
        {
            return Err(IssuerError::Host);
        }
        if !path.bytes().all(is_path_byte) {
            return Err(IssuerError::Path);
        }
        let path = path.trim_end_matches('/');
        Ok(Self(format!("{scheme}://{authority}{path}")))
    }

    /// The default issuer of a server listening on `address`: `http://ADDRESS`.
    pub fn for_listen_address(address: SocketAddr) -> Self {
        Self(format!("http://{address}"))
    }

    /// The default issuer of a server listening on `address` with TLS: `https://ADDRESS`.
    pub fn for_tls_listen_address(address: SocketAddr) -> Self {
        Self(format!("https://{address}"))
    }

    /// The issuer as published.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute URL of one of Tessera's paths.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Issuer").field(&self.0).finish()
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Issuer {
    type Err = IssuerError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

/// RFC 3986 `pchar` and `/`: unreserved, sub-delims, `:`, `@`, `%` (escapes) and `/`.
fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/".contains(&byte)
}

/// The metadata document for `issuer`, serialised once.
fn document(issuer: &Issuer) -> Bytes {
    let body = json!({
        "issuer": issuer.as_str(),
        "token_endpoint": issuer.url("/oauth20/token"),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": RESPONSE_TYPES,
        "introspection_endpoint": issuer.url("/oauth20/introspect"),
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint": issuer.url("/oauth20/revoke"),
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "service_documentation": issuer.url(crate::openapi::DOCS_PATH),
    });
    Bytes::from(body.to_string())
}

/// The metadata route for `issuer`.
pub(crate) fn routes(issuer: &Issuer) -> MethodRouter<AppState> {
    let body = document(issuer);
    get(move || {
        let body = body.clone();
        async move {
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static(CACHE_CONTROL),
                    ),
                ],
                body,
            )
                .into_response()
        }
    })
}

/// The authorization server metadata (RFC 8414 §2) as [`document`] writes it.
#[derive(ToSchema)]
#[schema(as = AuthorizationServerMetadata)]
#[expect(dead_code, reason = "only describes the metadata document")]
struct MetadataDocument {
    /// The issuer identifier (`--issuer`; `http://<bound address>` by default).
    issuer: String,
    /// The token endpoint's absolute URL.
    token_endpoint: String,
    /// `client_secret_basic`, `client_secret_post`, `none`.
    token_endpoint_auth_methods_supported: Vec<String>,
    /// `password`, `client_credentials`, `refresh_token`.
    grant_types_supported: Vec<String>,
    /// `none`: there is no authorization endpoint.
    response_types_supported: Vec<String>,
    /// The introspection endpoint's absolute URL.
    introspection_endpoint: String,
    /// As for the token endpoint.
    introspection_endpoint_auth_methods_supported: Vec<String>,
    /// The revocation endpoint's absolute URL.
    revocation_endpoint: String,
    /// As for the token endpoint.
    revocation_endpoint_auth_methods_supported: Vec<String>,
    /// The browsable API documentation (`/docs`), absolute.
    service_documentation: String,
}

/// OAuth 2.0 authorization server metadata (RFC 8414; API.md §1).
///
/// Where the endpoints are and what they accept, for OAuth libraries' discovery. Served by
/// the binary always; a router built without an issuer answers 404 here.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    operation_id = "getAuthorizationServerMetadata",
    tag = "tokens",
    responses(
        (status = 200, description = "The metadata document.", body = MetadataDocument,
            headers(("Cache-Control" = String, description = "`public, max-age=3600`"))),
    ),
)]
#[expect(
    dead_code,
    reason = "documents the route `routes` serves with a closure"
)]
pub(crate) fn metadata() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_absolute_http_urls_without_query_or_fragment() {
        let ok = |value: &str| Issuer::parse(value).map(|i| i.as_str().to_owned());
        assert_eq!(
            ok("https://auth.example.test"),
            Ok("https://auth.example.test".to_owned())
        );
        assert_eq!(
            ok("HTTPS://auth.example.test/"),
            Ok("https://auth.example.test".to_owned())
        );
        assert_eq!(
            ok("http://127.0.0.1:8080"),
            Ok("http://127.0.0.1:8080".to_owned())
        );
        assert_eq!(
            ok("https://example.test/tessera/"),
            Ok("https://example.test/tessera".to_owned())
        );
        assert_eq!(ok("http://[::1]:80"), Ok("http://[::1]:80".to_owned()));
        for (bad, why) in [
            ("", IssuerError::Scheme),
            ("auth.example.test", IssuerError::Scheme),
            ("ftp://auth.example.test", IssuerError::Scheme),
            (
                "https://auth.example.test?x=1",
                IssuerError::QueryOrFragment,
            ),
            (
                "https://auth.example.test/#top",
                IssuerError::QueryOrFragment,
            ),
            ("https://", IssuerError::Host),
            ("https:///path", IssuerError::Host),
            ("https://user@auth.example.test", IssuerError::Host),
            ("https://auth.example.test:99999", IssuerError::Host),
            ("https://auth.example.test:0", IssuerError::Host),
            ("https://auth.example.test:", IssuerError::Host),
            ("http://[::1]:65536", IssuerError::Host),
            ("https://auth example.test", IssuerError::Characters),
            ("https://auth.example.test/\u{e9}", IssuerError::Characters),
            ("https://auth.example.test/a\"b", IssuerError::Path),
        ] {
            assert_eq!(Issuer::parse(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn the_default_issuer_names_the_bound_address() {
        let v4 = SocketAddr::from(([127, 0, 0, 1], 8080));
        assert_eq!(
            Issuer::for_listen_address(v4).as_str(),
            "http://127.0.0.1:8080"
        );
        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 8080));
        assert_eq!(Issuer::for_listen_address(v6).as_str(), "http://[::1]:8080");
        assert!(Issuer::parse(Issuer::for_listen_address(v6).as_str()).is_ok());
    }
}
