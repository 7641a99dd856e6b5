//! The administration API, served on its own listener (off unless `--admin-listen` is
//! given): revoke every session of a shopper or of a client, end one session, set a
//! session's cart id, list a shopper's live sessions. This module owns the admin paths and
//! handlers; every request must carry the admin token (`extract::admin_auth`), each handler
//! calls one `SessionAdmin` method, and `error` renders failures in the Digital River shape
//! of API.md §5.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router, middleware};
use serde::Serialize;
use serde_json::{Value, json};
use tessera_core::AdminError;
use tessera_core::session::SessionRecord;
use tessera_core::session_admin::{AdminToken, SessionAdmin};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::{self, ApiError, or_405};
use crate::extract::admin_auth::require_admin_token;
use crate::telemetry;

/// Largest admin request body: a cart id fits many times over.
const BODY_LIMIT: usize = 16 * 1024;

/// What every admin handler can reach.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) admin: Arc<SessionAdmin>,
    pub(crate) token: Arc<AdminToken>,
}

/// Builds the administration API around `admin`, guarded by `token`. Serve it on its own
/// listener with [`crate::serve`], never on the public one.
pub fn admin_router(admin: Arc<SessionAdmin>, token: AdminToken) -> Router {
    let state = AdminState {
        admin,
        token: Arc::new(token),
    };
    Router::new()
        .route(
            "/admin/v1/shoppers/{user_id}/sessions",
            or_405(get(shopper_sessions)),
        )
        .route(
            "/admin/v1/shoppers/{user_id}/sessions/revoke",
            or_405(post(revoke_shopper_sessions)),
        )
        .route(
            "/admin/v1/clients/{client_id}/sessions/revoke",
            or_405(post(revoke_client_sessions)),
        )
        .route(
            "/admin/v1/sessions/{session_id}",
            or_405(delete(revoke_session)),
        )
        .route(
            "/admin/v1/sessions/{session_id}/cart",
            or_405(put(set_cart)),
        )
        .fallback(error::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_token,
        ))
        .with_state(state)
        // One stack, as on the public router (`routes`).
        .layer(
            ServiceBuilder::new()
                .layer(telemetry::layer())
                .layer(SetResponseHeaderLayer::overriding(
                    HeaderName::from_static("x-content-type-options"),
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(CatchPanicLayer::custom(error::panic_response))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                )),
        )
}

/// The one path segment of a route, or the error of a path that does not decode.
fn segment(path: Result<Path<String>, PathRejection>, uri: &Uri) -> Result<String, ApiError> {
    path.map(|Path(value)| value)
        .map_err(|_| admin_error(AdminError::InvalidRequest("the path does not decode"), uri))
}

fn admin_error(error: AdminError, uri: &Uri) -> ApiError {
    ApiError::Admin(error, uri.path().to_owned())
}

/// `POST /admin/v1/shoppers/{user_id}/sessions/revoke`.
async fn revoke_shopper_sessions(
    State(state): State<AdminState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user_id = segment(path, &uri)?;
    let before = state
        .admin
        .revoke_shopper_sessions(&user_id)
        .await
        .map_err(|e| admin_error(e, &uri))?;
    Ok(Json(json!({
        "userId": user_id,
        "sessionsRevokedBefore": before.to_iso8601(),
    })))
}

/// `POST /admin/v1/clients/{client_id}/sessions/revoke`.
async fn revoke_client_sessions(
    State(state): State<AdminState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let client_id = segment(path, &uri)?;
    let before = state
        .admin
        .revoke_client_sessions(&client_id)
        .await
        .map_err(|e| admin_error(e, &uri))?;
    Ok(Json(json!({
        "clientId": client_id,
        "sessionsRevokedBefore": before.to_iso8601(),
    })))
}

/// `DELETE /admin/v1/sessions/{session_id}`.
async fn revoke_session(
    State(state): State<AdminState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let session_id = segment(path, &uri)?;
    let revoked = state
        .admin
        .revoke_session(&session_id)
        .await
        .map_err(|e| admin_error(e, &uri))?;
    Ok(Json(json!({ "sessionId": session_id, "revoked": revoked })))
}

/// `PUT /admin/v1/sessions/{session_id}/cart` with `{"cartId": "..."}` (or `null` to
/// clear it).
async fn set_cart(
    State(state): State<AdminState>,
    uri: Uri,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let session_id = segment(path, &uri)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(admin_error(
            AdminError::InvalidRequest("the body must be JSON (Content-Type: application/json)"),
            &uri,
        ));
    }
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::AdminBodyTooLarge(uri.path().to_owned()))?;
    let parsed: Value = serde_json::from_slice(&body).map_err(|_| {
        admin_error(
            AdminError::InvalidRequest("the body is not valid JSON"),
            &uri,
        )
    })?;
    let cart_id = match parsed.get("cartId") {
        Some(Value::String(cart_id)) => Some(cart_id.as_str()),
        Some(Value::Null) => None,
        _ => {
            return Err(admin_error(
                AdminError::InvalidRequest(
                    "the body must be {\"cartId\": \"...\"}, or {\"cartId\": null} to clear it",
                ),
                &uri,
            ));
        }
    };
    state
        .admin
        .set_cart(&session_id, cart_id)
        .await
        .map_err(|e| admin_error(e, &uri))?;
    Ok(Json(json!({ "sessionId": session_id, "cartId": cart_id })))
}

/// A live session as the admin API lists it: never a token, nor a token's hash.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionSummary {
    session_id: String,
    client_id: String,
    external_reference_id: Option<String>,
    authenticated: bool,
    locale: String,
    currency: String,
    cart_id: Option<String>,
    client_ip_address: String,
    created_on: String,
    last_accessed: String,
    expires_on: String,
}

impl From<SessionRecord> for SessionSummary {
    fn from(session: SessionRecord) -> Self {
        Self {
            session_id: session.id,
            client_id: session.client_id,
            external_reference_id: session.external_reference_id,
            authenticated: session.authenticated,
            locale: session.locale,
            currency: session.currency,
            cart_id: session.cart_id,
            client_ip_address: session.client_ip,
            created_on: session.created_at.to_iso8601(),
            last_accessed: session.last_accessed.to_iso8601(),
            expires_on: session.expires_at.to_iso8601(),
        }
    }
}

/// `GET /admin/v1/shoppers/{user_id}/sessions`.
async fn shopper_sessions(
    State(state): State<AdminState>,
    uri: Uri,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let user_id = segment(path, &uri)?;
    let sessions = state
        .admin
        .shopper_sessions(&user_id)
        .await
        .map_err(|e| admin_error(e, &uri))?;
    let sessions: Vec<SessionSummary> = sessions.into_iter().map(SessionSummary::from).collect();
    Ok(Json(json!({ "userId": user_id, "sessions": sessions })))
}
