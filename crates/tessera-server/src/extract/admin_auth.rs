//! The admin token of the administration API: `Authorization: Bearer <admin token>` on
//! every request of the admin listener, checked before routing, so that without it every
//! path (unknown ones too) answers 401 alike.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tessera_core::AdminError;

use super::client_auth::{Authorization, authorization};
use crate::admin::AdminState;
use crate::error::ApiError;

/// Middleware: passes the request on only with the admin token, which the core compares
/// in constant time; anything else (no header, two headers, another scheme, a wrong token)
/// is the same 401.
pub(crate) async fn require_admin_token(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = match authorization(request.headers()) {
        Ok(Authorization::Bearer(token)) => Some(token),
        _ => None,
    };
    if presented.is_some_and(|token| state.token.verify(token.expose())) {
        return next.run(request).await;
    }
    ApiError::Admin(AdminError::Unauthorized, request.uri().path().to_owned()).into_response()
}
