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
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::bearer::bearer_request;
use crate::extract::client_auth::{Authorization, AuthorizationError, authorization};
use crate::extract::form::parse_pairs;
use crate::extract::peer::PeerAddress;
use crate::oauth::token::FORM_BODY_LIMIT;
use crate::openapi::{CreateShopperFailures, Flag, NoStore, ShopperMeFailures};

/// `POST /v1/shoppers`.
pub(crate) fn collection_routes() -> MethodRouter<AppState> {
    post(create)
}

/// `GET` and `POST /v1/shoppers/me`.
pub(crate) fn me_routes() -> MethodRouter<AppState> {
    get(show).post(update)
}

/// The body of `POST /v1/shoppers`; unknown fields are ignored, and so is a field that is
/// null. A shopper needs an `externalReferenceId` or a `username`; a `password` needs a
/// `username`. Text fields are 1 to 255 characters, not only white space, and hold no
/// control characters.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = NewShopper)]
struct NewShopperBody {
    /// The partner's own id of the shopper (unique).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    external_reference_id: Option<String>,
    /// The login name (unique after normalisation: trimmed, lower-cased, NFC).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    username: Option<String>,
    /// 1 to 1024 bytes of UTF-8, compared byte for byte; stored as an Argon2id hash.
    #[schema(min_length = 1)]
    password: Option<String>,
    /// Given name.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    first_name: Option<String>,
    /// Family name.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    last_name: Option<String>,
    /// An e-mail address (it must contain `@`).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*@[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    email: Option<String>,
    /// Preferred locale, like `en_US`.
    #[schema(pattern = "^[a-z]{2}_[A-Z]{2}$")]
    locale: Option<String>,
    /// Preferred currency, like `USD`.
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
}

/// A shopper as the API shows it; never a password or its hash.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Shopper)]
struct ShopperBody {
    /// The shopper's user id (an anonymous visitor's `userId` for a limited token).
    #[schema(pattern = "^[0-9a-f]{32}$")]
    id: String,
    /// The partner's id of the shopper, or null.
    #[schema(required = true)]
    external_reference_id: Option<String>,
    /// The normalised username; `anonymous` for an anonymous visitor; or null.
    #[schema(required = true)]
    username: Option<String>,
    /// Given name, or null.
    #[schema(required = true)]
    first_name: Option<String>,
    /// Family name, or null.
    #[schema(required = true)]
    last_name: Option<String>,
    /// E-mail address, or null.
    #[schema(required = true)]
    email: Option<String>,
    /// The locale (of the session, for `/v1/shoppers/me`).
    #[schema(required = true)]
    locale: Option<String>,
    /// The currency (of the session, for `/v1/shoppers/me`).
    #[schema(required = true)]
    currency: Option<String>,
    /// `"false"` for an anonymous visitor, `"true"` otherwise: a string, as in session
    /// details.
    #[schema(value_type = Flag)]
    authenticated: &'static str,
}

/// The session preferences `POST /v1/shoppers/me` changes, from the query string or a form
/// body: at least one of them, each at most once over both.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "only describes the parameters of POST /v1/shoppers/me"
)]
struct Preferences {
    /// The new locale, like `fr_FR`.
    #[param(pattern = "^[a-z]{2}_[A-Z]{2}$")]
    locale: Option<String>,
    /// The new currency, like `EUR`.
    #[param(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
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

/// Register a shopper (API.md "Shopper resources").
///
/// A confidential client registers a shopper it refers to by its own id, and optionally a
/// username and password for shopper login.
#[utoipa::path(
    post,
    path = "/v1/shoppers",
    operation_id = "createShopper",
    tag = "shoppers",
    request_body(content = NewShopperBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The shopper, created (on disk before the answer).",
            body = ShopperBody, headers(("Cache-Control" = inline(NoStore)))),
        CreateShopperFailures,
    ),
    security(("clientBasic" = [])),
)]
async fn create(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    peer: PeerAddress,
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
        .register_shopper(credentials.as_ref(), new, &peer.to_string())
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

/// The token's shopper (API.md "Shopper resources").
///
/// With the session's locale and currency. A limited token gets an anonymous shopper
/// (`username` `anonymous`, `authenticated` `"false"`); a client token has no shopper.
#[utoipa::path(
    get,
    path = "/v1/shoppers/me",
    operation_id = "getShopperMe",
    tag = "shoppers",
    responses(
        (status = 200, description = "The token's shopper.", body = ShopperBody,
            headers(("Cache-Control" = inline(NoStore)))),
        ShopperMeFailures,
    ),
    security(("bearerToken" = []), ("tokenQuery" = [])),
)]
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

/// Change the session's locale and currency (API.md "Shopper resources").
///
/// `locale` and `currency` come from the query string (Digital River style) or, the same
/// way, from an `application/x-www-form-urlencoded` body; at least one of them, each at
/// most once over both places. An absent one is left as it is. The change applies to the
/// session, so every token of it sees it.
#[utoipa::path(
    post,
    path = "/v1/shoppers/me",
    operation_id = "updateShopperMe",
    tag = "shoppers",
    params(Preferences),
    responses(
        (status = 200, description = "The token's shopper, with the session's new preferences.",
            body = ShopperBody, headers(("Cache-Control" = inline(NoStore)))),
        ShopperMeFailures,
    ),
    security(("bearerToken" = []), ("tokenQuery" = [])),
)]
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
