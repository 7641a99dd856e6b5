//! `/v1/shoppers` (API.md §1): a confidential client registers a shopper; a token's holder
//! reads its shopper and changes its session's locale and currency.

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};
use tessera_core::Secret;
use tessera_core::admin::NewShopper;
use tessera_core::shoppers::{ShopperError, ShopperView};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer::bearer_request;
use crate::extract::client_auth::{Authorization, AuthorizationError, authorization};
use crate::extract::form::parse_pairs;
use crate::oauth::token::FORM_BODY_LIMIT;

/// `POST /v1/shoppers`.
pub(crate) fn collection_routes() -> MethodRouter<AppState> {
    post(create)
}

/// `GET` and `POST /v1/shoppers/me`.
pub(crate) fn me_routes() -> MethodRouter<AppState> {
    get(show).post(update)
}

/// The body of `POST /v1/shoppers`; unknown fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewShopperBody {
    external_reference_id: Option<String>,
    username: Option<String>,
    password: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    locale: Option<String>,
    currency: Option<String>,
}

/// A shopper as the API shows it; never a password or its hash.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ShopperBody {
    id: String,
    external_reference_id: Option<String>,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    locale: Option<String>,
    currency: Option<String>,
    /// A string, as in session details.
    authenticated: &'static str,
}

impl From<ShopperView> for ShopperBody {
    fn from(view: ShopperView) -> Self {
        Self {
            id: view.id,
            external_reference_id: view.external_reference_id,
            username: view.username,
            first_name: view.first_name,
            last_name: view.last_name,
            email: view.email,
            locale: Some(view.locale),
            currency: Some(view.currency),
            authenticated: if view.authenticated { "true" } else { "false" },
        }
    }
}

async fn create(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let resource = uri.path().to_owned();
    let fail = |error: ShopperError| ApiError::Shopper(error, resource.clone());
    let credentials = match authorization(&headers) {
        Ok(Authorization::Basic(credentials)) => Some(credentials),
        Ok(Authorization::None) => None,
        Ok(_) | Err(AuthorizationError::MalformedBasic) => {
            return Err(fail(ShopperError::Client(
                tessera_core::TokenError::InvalidClient,
            )));
        }
        Err(AuthorizationError::Repeated) => {
            return Err(fail(ShopperError::InvalidRequest(
                "more than one Authorization header",
            )));
        }
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    let bytes = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| {
            fail(ShopperError::InvalidRequest(
                "the request body is too large",
            ))
        })?;
    if !is_json {
        return Err(fail(ShopperError::InvalidRequest(
            "the body must be application/json",
        )));
    }
    let parsed: NewShopperBody = serde_json::from_slice(&bytes).map_err(|_| {
        fail(ShopperError::InvalidRequest(
            "the body is not a shopper object",
        ))
    })?;
    let new = NewShopper {
        external_reference_id: parsed.external_reference_id,
        username: parsed.username,
        password: parsed.password.map(Secret::new),
        locale: parsed.locale,
        currency: parsed.currency,
        first_name: parsed.first_name,
        last_name: parsed.last_name,
        email: parsed.email,
    };
    let shopper = state
        .service
        .register_shopper(credentials.as_ref(), new)
        .await
        .map_err(fail)?;
    let body = ShopperBody {
        id: shopper.id,
        external_reference_id: shopper.external_reference_id,
        username: shopper.username,
        first_name: shopper.first_name,
        last_name: shopper.last_name,
        email: shopper.email,
        locale: shopper.locale,
        currency: shopper.currency,
        authenticated: "true",
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn show(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<ShopperBody>, ApiError> {
    let resource = uri.path().to_owned();
    let request = bearer_request(&headers, query.as_deref())
        .map_err(|e| ApiError::Bearer(e, resource.clone()))?;
    let view = state
        .service
        .shopper_of(&request.token)
        .await
        .map_err(|e| ApiError::Shopper(e, resource))?;
    Ok(Json(view.into()))
}

async fn update(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Json<ShopperBody>, ApiError> {
    let resource = uri.path().to_owned();
    let fail = |error: ShopperError| ApiError::Shopper(error, resource.clone());
    let request = bearer_request(&headers, query.as_deref())
        .map_err(|e| ApiError::Bearer(e, resource.clone()))?;
    let bytes = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| {
            fail(ShopperError::InvalidRequest(
                "the request body is too large",
            ))
        })?;
    let mut pairs = parse_pairs(query.as_deref().unwrap_or("").as_bytes())
        .map_err(|e| fail(ShopperError::InvalidRequest(e.describe())))?;
    pairs
        .extend(parse_pairs(&bytes).map_err(|e| fail(ShopperError::InvalidRequest(e.describe())))?);
    let mut locale = None;
    let mut currency = None;
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "locale" => &mut locale,
            "currency" => &mut currency,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(fail(ShopperError::InvalidRequest(
                "a parameter was given more than once",
            )));
        }
    }
    let view = state
        .service
        .update_shopper_session(&request.token, locale, currency)
        .await
        .map_err(fail)?;
    Ok(Json(view.into()))
}
