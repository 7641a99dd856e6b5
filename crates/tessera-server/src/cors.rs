//! Cross-origin access for browsers (Fetch standard, "CORS protocol"): the allow-list's
//! origin type, validated at start-up, and the per-route layer built on tower-http's
//! `CorsLayer` with an exact-match list, never a wildcard or a reflected origin.
//!
//! Credentials mode is not allowed (no `Access-Control-Allow-Credentials`): tokens and
//! client credentials travel in the `Authorization` header, which a script sets itself and
//! which needs only `Access-Control-Allow-Headers`, never cookies.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;
use tower::{Layer, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::AppState;

/// How long a browser may cache a preflight answer (browsers cap it: Chromium at two
/// hours).
const MAX_AGE: Duration = Duration::from_secs(600);

/// The request headers every answer of a CORS route varies by.
const VARY: [HeaderName; 3] = [
    header::ORIGIN,
    header::ACCESS_CONTROL_REQUEST_METHOD,
    header::ACCESS_CONTROL_REQUEST_HEADERS,
];

/// [`VARY`] as one header value, as tower-http writes it.
const VARY_VALUE: &str = "origin, access-control-request-method, access-control-request-headers";

/// One browser origin allowed to call Tessera: `scheme://host[:port]`, normalised as
/// browsers send it in `Origin` (lower-case scheme and host, no default port), so an exact
/// comparison is the right one.
#[derive(Clone, PartialEq, Eq)]
pub struct CorsOrigin(HeaderValue);

/// Why a configured origin was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorsOriginError {
    /// `null` is the origin of sandboxed frames, `file:` pages and redirected requests.
    #[error(
        "`null` is not an origin that can be trusted: sandboxed frames, files and redirects all send it"
    )]
    Null,
    /// A wildcard would let any page call the API.
    #[error("wildcards are not allowed: list each origin")]
    Wildcard,
    /// Only web origins are accepted.
    #[error("an origin starts with http:// or https://")]
    Scheme,
    /// Origins have no path, query or fragment (browsers never send one).
    #[error("an origin has no path, query or fragment, not even a trailing slash")]
    Path,
    /// The host is empty, holds user information or characters no host name has.
    #[error("the host must be a host name (punycode for international names) or an IP address")]
    Host,
    /// The port is not a number from 1 to 65535.
    #[error("the port must be a number from 1 to 65535")]
    Port,
}

impl CorsOrigin {
    /// The origin as browsers send it.
    pub fn as_str(&self) -> &str {
        // Built from a `String` of visible ASCII only, so this cannot fail.
        self.0.to_str().unwrap_or_default()
    }
}

impl FromStr for CorsOrigin {
    type Err = CorsOriginError;

    /// Parses `scheme://host[:port]`; surrounding white space is ignored.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let input = input.trim();
        if input.eq_ignore_ascii_case("null") {
            return Err(CorsOriginError::Null);
        }
        if input.contains('*') {
            return Err(CorsOriginError::Wildcard);
        }
        let (scheme, rest) = input.split_once("://").ok_or(CorsOriginError::Scheme)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(CorsOriginError::Scheme),
        };
        if rest.contains(['/', '?', '#']) {
            return Err(CorsOriginError::Path);
        }
        let (host, port) = split_port(rest)?;
        let host = host.to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(CorsOriginError::Host);
        }
        let origin = match port {
            Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
            _ => format!("{scheme}://{host}"),
        };
        HeaderValue::try_from(origin)
            .map(CorsOrigin)
            .map_err(|_| CorsOriginError::Host)
    }
}

/// Splits `host[:port]`, minding the colons of a bracketed IPv6 address.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), CorsOriginError> {
    let colon = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|at| end + at),
        None => authority.rfind(':'),
    };
    let Some(colon) = colon else {
        return Ok((authority, None));
    };
    let digits = &authority[colon + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CorsOriginError::Port);
    }
    match digits.parse::<u16>() {
        Ok(port) if port > 0 => Ok((&authority[..colon], Some(port))),
        _ => Err(CorsOriginError::Port),
    }
}

/// A DNS name or IPv4 address (letters, digits, `-`, dots between non-empty labels), or a
/// bracketed IPv6 address.
fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl fmt::Display for CorsOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CorsOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorsOrigin({})", self.as_str())
    }
}

/// The CORS policy of one route: the allow-list and the methods the route takes.
#[derive(Clone)]
struct RoutePolicy {
    origins: Arc<[HeaderValue]>,
    layer: CorsLayer,
}

/// Gives `route` CORS for `origins`; with no origins it is returned unchanged, so no CORS
/// header is ever sent. `methods` are the route's methods, answered in preflights; a route
/// taking a body also allows `Content-Type`.
pub(crate) fn allow(
    route: MethodRouter<AppState>,
    origins: &[CorsOrigin],
    methods: &[Method],
) -> MethodRouter<AppState> {
    if origins.is_empty() {
        return route;
    }
    let origins: Arc<[HeaderValue]> = origins.iter().map(|o| o.0.clone()).collect();
    let mut headers = vec![header::AUTHORIZATION];
    if methods.contains(&Method::POST) {
        headers.push(header::CONTENT_TYPE);
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods(methods.to_vec())
        .allow_headers(headers)
        // Scripts may read the challenge of a 401 and when to retry after a 429 or 503.
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
        .max_age(MAX_AGE)
        .vary(VARY);
    let policy = RoutePolicy { origins, layer };
    route.layer(middleware::from_fn_with_state(policy, cors))
}

/// tower-http answers every `OPTIONS` as a preflight. Tessera answers only preflights from
/// an allowed origin; any other `OPTIONS` reaches the route, which answers it as any method
/// it does not take (405 with `Allow`), still with `Vary`.
async fn cors(State(policy): State<RoutePolicy>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let answered_preflight = request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        && headers
            .get(header::ORIGIN)
            .is_some_and(|origin| policy.origins.contains(origin));
    if request.method() == Method::OPTIONS && !answered_preflight {
        let mut response = next.run(request).await;
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static(VARY_VALUE));
        return response;
    }
    match policy.layer.layer(next).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Result<String, CorsOriginError> {
        input.parse::<CorsOrigin>().map(|o| o.to_string())
    }

    #[test]
    fn accepts_web_origins_and_normalises_them_as_browsers_send_them() {
        assert_eq!(
            parse("https://shop.example"),
            Ok("https://shop.example".into())
        );
        assert_eq!(
            parse(" HTTPS://Shop.Example "),
            Ok("https://shop.example".into())
        );
        assert_eq!(
            parse("https://shop.example:443"),
            Ok("https://shop.example".into())
        );
        assert_eq!(parse("http://localhost:80"), Ok("http://localhost".into()));
        assert_eq!(
            parse("http://localhost:3000"),
            Ok("http://localhost:3000".into())
        );
        assert_eq!(
            parse("http://127.0.0.1:8443"),
            Ok("http://127.0.0.1:8443".into())
        );
        assert_eq!(parse("http://[::1]:3000"), Ok("http://[::1]:3000".into()));
        assert_eq!(
            parse("https://xn--bcher-kva.example"),
            Ok("https://xn--bcher-kva.example".into())
        );
    }

    #[test]
    fn refuses_what_is_not_exactly_one_web_origin() {
        assert_eq!(parse("null"), Err(CorsOriginError::Null));
        assert_eq!(parse("NULL"), Err(CorsOriginError::Null));
        assert_eq!(parse("*"), Err(CorsOriginError::Wildcard));
        assert_eq!(
            parse("https://*.shop.example"),
            Err(CorsOriginError::Wildcard)
        );
        assert_eq!(parse("shop.example"), Err(CorsOriginError::Scheme));
        assert_eq!(parse("ftp://shop.example"), Err(CorsOriginError::Scheme));
        assert_eq!(parse("file://"), Err(CorsOriginError::Scheme));
        assert_eq!(parse("https://shop.example/"), Err(CorsOriginError::Path));
        assert_eq!(
            parse("https://shop.example/app"),
            Err(CorsOriginError::Path)
        );
        assert_eq!(parse("https://shop.example?x"), Err(CorsOriginError::Path));
        assert_eq!(parse("https://"), Err(CorsOriginError::Host));
        assert_eq!(
            parse("https://user@shop.example"),
            Err(CorsOriginError::Host)
        );
        assert_eq!(parse("https://shop..example"), Err(CorsOriginError::Host));
        assert_eq!(parse("https://shop.example."), Err(CorsOriginError::Host));
        assert_eq!(parse("https://bücher.example"), Err(CorsOriginError::Host));
        assert_eq!(parse("https://[::1"), Err(CorsOriginError::Host));
        assert_eq!(parse("https://shop.example:"), Err(CorsOriginError::Port));
        assert_eq!(parse("https://shop.example:0"), Err(CorsOriginError::Port));
        assert_eq!(
            parse("https://shop.example:65536"),
            Err(CorsOriginError::Port)
        );
        assert_eq!(parse("https://shop.example:+1"), Err(CorsOriginError::Port));
        assert_eq!(
            parse("https://a.example,b.example"),
            Err(CorsOriginError::Host)
        );
    }
}
