//! Paths and methods: the only place that says which handler answers what. Any method a
//! path does not list answers 405 with `Allow` (see [`error::or_405`]).

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use tessera_core::TokenService;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;
use crate::config::ServerConfig;
use crate::cors;
use crate::error::{self, or_405};
use crate::health;
use crate::metadata;
use crate::metrics;
use crate::oauth::{access_tokens, introspect, revoke, session_token, token};
use crate::openapi;
use crate::shoppers;
use crate::telemetry;

/// The token endpoint's paths (API.md §1, §8: `.json` and a trailing slash too); the
/// first is the canonical one, the others its aliases.
pub(crate) const TOKEN_PATHS: [&str; 3] =
    ["/oauth20/token", "/oauth20/token.json", "/oauth20/token/"];

/// The session-details paths (API.md §3); the first is the canonical one.
pub(crate) const ACCESS_TOKEN_PATHS: [&str; 4] = [
    "/oauth20/access-tokens",
    "/oauth20/access-tokens.json",
    "/oauth20/access-token",
    "/oauth20/access-token.json",
];

/// Every path `router_with` serves, each of which the OpenAPI document (`openapi`) must
/// describe; a unit test there compares the two. A new route goes here too.
#[cfg(test)]
pub(crate) const SERVED_PATHS: [&str; 20] = [
    TOKEN_PATHS[0],
    TOKEN_PATHS[1],
    TOKEN_PATHS[2],
    ACCESS_TOKEN_PATHS[0],
    ACCESS_TOKEN_PATHS[1],
    ACCESS_TOKEN_PATHS[2],
    ACCESS_TOKEN_PATHS[3],
    "/oauth20/session-token",
    "/oauth20/introspect",
    "/oauth20/revoke",
    "/v1/shoppers",
    "/v1/shoppers/me",
    metadata::PATH,
    "/healthz",
    "/readyz",
    openapi::DOCUMENT_PATH,
    openapi::DOCS_PATH,
    openapi::DOCS_SLASH_PATH,
    openapi::DOCS_ASSETS_PATH,
    metrics::PATH,
];

/// Builds the whole application around `service`, with the default [`ServerConfig`].
pub fn router(service: Arc<TokenService>) -> Router {
    router_with(service, ServerConfig::default())
}

/// Builds the whole application around `service` with `config`.
pub fn router_with(service: Arc<TokenService>, config: ServerConfig) -> Router {
    let state = AppState {
        service,
        trusted_proxies: config.trusted_proxies.clone().into(),
    };
    // Browsers may call these cross-origin from the allow-list (API.md "CORS").
    let origins = config.cors_origins.as_slice();
    let mut oauth = Router::new();
    for path in TOKEN_PATHS {
        oauth = oauth.route(
            path,
            cors::allow(or_405(token::routes()), origins, &[Method::POST]),
        );
    }
    for path in ACCESS_TOKEN_PATHS {
        oauth = oauth.route(
            path,
            cors::allow(
                or_405(access_tokens::routes()),
                origins,
                &[Method::GET, Method::DELETE],
            ),
        );
    }
    oauth = oauth.route(
        "/oauth20/session-token",
        cors::allow(or_405(session_token::routes()), origins, &[Method::GET]),
    );
    oauth = oauth.route(
        "/v1/shoppers",
        cors::allow(
            or_405(shoppers::collection_routes()),
            origins,
            &[Method::POST],
        ),
    );
    oauth = oauth.route(
        "/v1/shoppers/me",
        cors::allow(
            or_405(shoppers::me_routes()),
            origins,
            &[Method::GET, Method::POST],
        ),
    );
    // RFC 7662 and RFC 7009.
    oauth = oauth.route(
        "/oauth20/introspect",
        cors::allow(or_405(introspect::routes()), origins, &[Method::POST]),
    );
    oauth = oauth.route(
        "/oauth20/revoke",
        cors::allow(or_405(revoke::routes()), origins, &[Method::POST]),
    );
    // Every answer on these paths carries a token, a session, or an error about one.
    let oauth = oauth.layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ));

    // RFC 8414 metadata, only when the public address is known.
    let mut public = Router::new();
    if let Some(issuer) = &config.issuer {
        public = public.route(metadata::PATH, or_405(metadata::routes(issuer)));
    }
    if let Some(recorder) = &config.metrics {
        public = public.route(metrics::PATH, or_405(recorder.routes()));
    }

    Router::new()
        .merge(oauth)
        .merge(public)
        .route("/healthz", or_405(get(health::healthz)))
        .route("/readyz", or_405(get(health::readyz)))
        .route(openapi::DOCUMENT_PATH, or_405(openapi::document_routes()))
        .route(openapi::DOCS_PATH, or_405(openapi::docs_routes()))
        .route(openapi::DOCS_SLASH_PATH, or_405(openapi::docs_routes()))
        .route(
            openapi::DOCS_ASSETS_PATH,
            or_405(openapi::docs_asset_routes()),
        )
        .fallback(error::not_found)
        .with_state(state)
        // One `layer` call for the whole stack: each call wraps every route in another
        // boxed service, which every request clones.
        .layer(
            ServiceBuilder::new()
                .layer(telemetry::layer())
                .layer(telemetry::request_metrics(config.metrics.is_some()))
                .layer(SetResponseHeaderLayer::overriding(
                    HeaderName::from_static("x-content-type-options"),
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(CatchPanicLayer::custom(error::panic_response)),
        )
}
