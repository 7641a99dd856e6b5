//! Liveness and readiness.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// `GET /healthz`: the process is up and answering.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers; 503 otherwise.
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .service
        .store()
        .ping()
        .await
        .map_err(ApiError::Unready)?;
    Ok(Json(json!({"status": "ready"})))
}
