//! Paths and methods: the only place that says which handler answers what. Any method a
//! path does not list answers 405 with `Allow` (rendered by `error`).

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware;
use axum::routing::get;
use tessera_core::TokenService;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;
use crate::error;
use crate::health;
use crate::oauth::{access_tokens, session_token, token};
use crate::shoppers;
use crate::telemetry;

/// The token endpoint's paths (API.md §1, §8: `.json` and a trailing slash too).
const TOKEN_PATHS: [&str; 3] = ["/oauth20/token", "/oauth20/token.json", "/oauth20/token/"];

/// The session-details paths (API.md §3).
const ACCESS_TOKEN_PATHS: [&str; 4] = [
    "/oauth20/access-tokens",
    "/oauth20/access-tokens.json",
    "/oauth20/access-token",
    "/oauth20/access-token.json",
];

/// Builds the whole application around `service`.
pub fn router(service: Arc<TokenService>) -> Router {
    let state = AppState { service };
    let mut oauth = Router::new();
    for path in TOKEN_PATHS {
        oauth = oauth.route(path, token::routes());
    }
    for path in ACCESS_TOKEN_PATHS {
        oauth = oauth.route(path, access_tokens::routes());
    }
    oauth = oauth.route("/oauth20/session-token", session_token::routes());
    oauth = oauth.route("/v1/shoppers", shoppers::collection_routes());
    oauth = oauth.route("/v1/shoppers/me", shoppers::me_routes());
    // Every answer on these paths carries a token, a session, or an error about one.
    let oauth = oauth.layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ));

    Router::new()
        .merge(oauth)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(error::not_found)
        .with_state(state)
        .layer(middleware::map_response(error::render_method_not_allowed))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(telemetry::layer())
}
