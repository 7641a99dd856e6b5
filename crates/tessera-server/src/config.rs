//! What the public router needs beyond the token service: settings of the HTTP face
//! itself, which the binary takes from its command line.

use ipnet::IpNet;

use crate::cors::CorsOrigin;
use crate::metadata::Issuer;
use crate::metrics::Metrics;

/// Settings of the public router. `ServerConfig::default()` is what
/// [`router`](crate::router) uses: no CORS.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    /// Browser origins allowed to call the token, session, session-token and shopper
    /// endpoints cross-origin (exact match). Empty: no CORS headers at all, and browsers
    /// refuse cross-origin calls.
    pub cors_origins: Vec<CorsOrigin>,
    /// The issuer identifier published at `/.well-known/oauth-authorization-server`
    /// (RFC 8414), under which every endpoint URL there is given. `None`: no metadata
    /// document (404), since the router alone cannot know its public address.
    pub issuer: Option<Issuer>,
    /// Proxies (load balancers) whose `X-Forwarded-For` is believed. Empty: the caller's
    /// address is always the socket peer, whatever headers say.
    pub trusted_proxies: Vec<IpNet>,
    /// The process's metrics recorder ([`Metrics::install`]): the router then serves
    /// `/metrics` and counts and times every request. `None`: neither (404).
    pub metrics: Option<Metrics>,
}
