//! Tessera's HTTP face. [`router`] builds the axum application around a
//! [`TokenService`]; [`serve`] runs it on an already-bound listener until a shutdown
//! future resolves, so the binary and the tests start it the same way (on port 0 in
//! tests).
//!
//! Layout: `routes` owns paths and methods, `extract` parses headers and bodies,
//! `error` alone decides status codes and error bodies, `oauth` and `health` hold the
//! handlers, `json` their JSON answers, `telemetry` the per-request log line and request metrics, `metrics` the
//! Prometheus recorder and `/metrics`, `http_server` the connections and their limits,
//! `tls` the certificate and key of the public listener.

mod admin;
mod config;
mod cors;
mod error;
mod extract;
mod framing;
mod health;
mod http_server;
mod json;
mod metadata;
mod metrics;
mod oauth;
mod openapi;
pub mod parsers;
mod routes;
mod shoppers;
mod telemetry;
mod tls;

use std::future::Future;
use std::sync::Arc;

use tessera_core::TokenService;

pub use self::metrics::{Metrics, MetricsError};
pub use admin::admin_router;
pub use config::ServerConfig;
pub use cors::{CorsOrigin, CorsOriginError};
pub use http_server::{HttpLimits, serve_tls_with_limits, serve_with_limits};
pub use metadata::{Issuer, IssuerError};
pub use routes::{router, router_with};
pub use tls::{ServerTls, TlsError};

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) service: Arc<TokenService>,
    /// Proxies whose `X-Forwarded-For` names the caller (empty: none).
    pub(crate) trusted_proxies: Arc<[ipnet::IpNet]>,
}

/// Serves `router` on `listener` with the default [`HttpLimits`] until `shutdown`
/// resolves, then stops accepting connections and waits for in-flight requests to finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, router, HttpLimits::default(), shutdown).await
}
