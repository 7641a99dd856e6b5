//! `GET` and `DELETE` on `/oauth20/access-tokens` and its aliases (API.md §3, §4).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use tessera_core::session::SessionView;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer::bearer_request;

/// The session-details methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    get(show).delete(revoke)
}

/// Session details as Digital River clients read them (API.md §3).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionDetails {
    session_id: String,
    user_id: Option<String>,
    external_reference_id: Option<String>,
    /// A string, as Digital River clients compare it.
    authenticated: &'static str,
    locale: String,
    currency: String,
    cart_id: Option<String>,
    client_ip_address: String,
    domain: String,
    expires_in: i64,
    theme_id: Option<String>,
    session_tag: String,
    created_on: String,
    last_accessed: String,
    access_token: String,
}

impl From<SessionView> for SessionDetails {
    fn from(view: SessionView) -> Self {
        Self {
            session_id: view.session_id,
            user_id: view.user_id,
            external_reference_id: view.external_reference_id,
            authenticated: if view.authenticated { "true" } else { "false" },
            locale: view.locale,
            currency: view.currency,
            cart_id: view.cart_id,
            client_ip_address: view.client_ip,
            domain: view.domain,
            expires_in: view.expires_in,
            theme_id: view.theme_id,
            session_tag: view.session_tag,
            created_on: view.created_on.to_iso8601(),
            last_accessed: view.last_accessed.to_iso8601(),
            access_token: view.access_token.expose().to_owned(),
        }
    }
}

async fn show(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<SessionDetails>, ApiError> {
    let resource = uri.path().to_owned();
    let request = bearer_request(&headers, query.as_deref())
        .map_err(|e| ApiError::Bearer(e, resource.clone()))?;
    let view = state
        .service
        .session(&request.token, request.client.as_ref())
        .await
        .map_err(|e| ApiError::Bearer(e, resource))?;
    Ok(Json(view.into()))
}

async fn revoke(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<SessionDetails>, ApiError> {
    let resource = uri.path().to_owned();
    let request = bearer_request(&headers, query.as_deref())
        .map_err(|e| ApiError::Bearer(e, resource.clone()))?;
    let view = state
        .service
        .revoke(&request.token, request.client.as_ref())
        .await
        .map_err(|e| ApiError::Bearer(e, resource))?;
    Ok(Json(view.into()))
}
