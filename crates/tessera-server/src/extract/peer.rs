//! The caller's address: the socket peer, unless the peer is a configured trusted proxy,
//! in which case `X-Forwarded-For` names the caller. A header anyone can send never
//! decides it on its own.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::AppState;

/// The caller's IP address, or `None` when the connection did not tell it. It is written
/// out (`to_string`) only where it is used: most session lookups never need it.
pub(crate) struct PeerAddress(Option<IpAddr>);

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(address) => fmt::Display::fmt(&address, f),
            None => f.write_str("unknown"),
        }
    }
}

impl FromRequestParts<AppState> for PeerAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(PeerAddress(peer.map(|peer| {
            client_address(peer, &parts.headers, &state.trusted_proxies)
        })))
    }
}

/// Walks the proxy chain from the socket peer backwards: each trusted hop may name the
/// one before it in `X-Forwarded-For` (appended to from the right); the first hop that
/// is not trusted, or the last one named, is the caller. A malformed list stops the walk
/// at the last hop that could be believed.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        hops.extend(text.split(',').map(str::trim));
    }
    let mut caller = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            return caller;
        };
        caller = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    caller
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append("x-forwarded-for", value);
            }
        }
        headers
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|n| n.parse().ok()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_caller_whatever_the_header_says() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("203.0.113.9"), &headers(&["198.51.100.1"]), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &headers(&["198.51.100.1"]), &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_caller_and_forged_entries_to_the_left_are_ignored() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["198.51.100.1"]), &trusted),
            ip("198.51.100.1")
        );
        // The caller forged "1.2.3.4"; the proxy appended the real address.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &headers(&["1.2.3.4, 198.51.100.1, 10.0.0.7"]),
                &trusted
            ),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &headers(&["1.2.3.4", "198.51.100.1"]),
                &trusted
            ),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn a_missing_or_malformed_header_stops_at_the_last_believable_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&[]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["garbage"]), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &headers(&["198.51.100.1, nonsense, 10.0.0.3"]),
                &trusted
            ),
            ip("10.0.0.3")
        );
    }
}
