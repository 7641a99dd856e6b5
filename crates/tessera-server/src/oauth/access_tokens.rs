//! `GET` and `DELETE` on `/oauth20/access-tokens` and its aliases (API.md §3, §4).

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde::Serialize;
use tessera_core::BearerError;
use tessera_core::client::ClientCredentials;
use tessera_core::session::{RenderedParts, SessionView, TokenLookup};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{self, ApiError};
use crate::extract::bearer::{BearerRequest, bearer_request};
use crate::extract::peer::PeerAddress;
use crate::json;
use crate::openapi::{BearerFailures, Flag, IgnoredQuery, NoStore};

/// The session-details methods.
pub(crate) fn routes() -> MethodRouter<AppState> {
    get(show).delete(revoke)
}

/// Session details as Digital River clients read them (API.md §3), borrowed from the
/// lookup: serialised straight from the rows the lookup read.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SessionDetails<'a> {
    /// The session's id: 32 lower-case hex.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    session_id: &'a str,
    /// The shopper's id (anonymous visitors have one); null for client tokens.
    #[schema(required, pattern = "^[0-9a-f]{32}$")]
    user_id: Option<&'a str>,
    /// The partner's id of the shopper, or null.
    #[schema(required)]
    external_reference_id: Option<&'a str>,
    /// `"true"` for a full token, `"false"` for a limited (anonymous) one: a string, as
    /// Digital River clients compare it.
    #[schema(value_type = Flag)]
    authenticated: &'static str,
    /// The session's locale, e.g. `en_US`.
    #[schema(example = "en_US")]
    locale: &'a str,
    /// The session's currency, e.g. `USD`.
    #[schema(example = "USD")]
    currency: &'a str,
    /// The session's cart, or null until one is set.
    #[schema(required)]
    cart_id: Option<&'a str>,
    /// The socket peer the session was created from.
    client_ip_address: &'a str,
    /// The answering node's name.
    domain: &'a str,
    /// Whole seconds this token has left.
    #[schema(minimum = 0)]
    expires_in: i64,
    /// The client's storefront theme, or null.
    #[schema(required)]
    theme_id: Option<&'a str>,
    /// 32 lower-case hex, fixed for the session.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    session_tag: &'a str,
    /// When the session was created: ISO-8601 UTC with milliseconds.
    #[schema(example = "2026-11-27T12:00:00.000Z")]
    created_on: String,
    /// When the session was last used (moves at most once a minute).
    #[schema(example = "2026-11-27T12:00:00.000Z")]
    last_accessed: String,
    /// The presented token itself.
    access_token: &'a str,
}

impl<'a> SessionDetails<'a> {
    /// The details of `view` as one struct: what the answer's bytes must equal.
    #[cfg(test)]
    fn of(view: &'a SessionView<'_>) -> Self {
        let RowsBeforeDomain {
            session_id,
            user_id,
            external_reference_id,
            authenticated,
            locale,
            currency,
            cart_id,
            client_ip_address,
        } = RowsBeforeDomain::of(&view.found);
        let RowsAfterExpiry {
            theme_id,
            session_tag,
            created_on,
            last_accessed,
        } = RowsAfterExpiry::of(&view.found);
        Self {
            session_id,
            user_id,
            external_reference_id,
            authenticated,
            locale,
            currency,
            cart_id,
            client_ip_address,
            domain: view.domain,
            expires_in: view.expires_in,
            theme_id,
            session_tag,
            created_on,
            last_accessed,
            access_token: view.access_token.expose(),
        }
    }

    /// The 200 answer. What comes from the lookup's rows alone is rendered once per lookup
    /// and kept with it, so a lookup the cache answers writes only `domain`, `expiresIn`
    /// and `accessToken` anew; the bytes are those `SessionDetails` serialises to.
    fn answer(view: &SessionView<'_>) -> Response {
        match Self::write(view) {
            Ok(body) => json::written(body),
            Err(serialisation) => error::unwritable_answer(&serialisation),
        }
    }

    fn write(view: &SessionView<'_>) -> Result<Vec<u8>, serde_json::Error> {
        let rendered = &view.found.rendered;
        let parts = match rendered.session_details() {
            Some(parts) => parts,
            None => rendered.keep_session_details(render_rows(&view.found)?),
        };
        let mut body = json::answer_buffer();
        body.extend_from_slice(&parts.head);
        body.extend_from_slice(br#","domain":"#);
        serde_json::to_writer(&mut body, view.domain)?;
        body.extend_from_slice(br#","expiresIn":"#);
        serde_json::to_writer(&mut body, &view.expires_in)?;
        body.push(b',');
        body.extend_from_slice(&parts.tail);
        body.extend_from_slice(br#","accessToken":"#);
        serde_json::to_writer(&mut body, view.access_token.expose())?;
        body.push(b'}');
        Ok(body)
    }
}

/// The session details before `domain`, from the lookup's rows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowsBeforeDomain<'a> {
    session_id: &'a str,
    user_id: Option<&'a str>,
    external_reference_id: Option<&'a str>,
    authenticated: &'static str,
    locale: &'a str,
    currency: &'a str,
    cart_id: Option<&'a str>,
    client_ip_address: &'a str,
}

impl<'a> RowsBeforeDomain<'a> {
    fn of(found: &'a TokenLookup) -> Self {
        let session = &found.session;
        Self {
            session_id: &session.id,
            user_id: session.user_id.as_deref(),
            external_reference_id: session.external_reference_id.as_deref(),
            authenticated: if session.authenticated {
                "true"
            } else {
                "false"
            },
            locale: &session.locale,
            currency: &session.currency,
            cart_id: session.cart_id.as_deref(),
            client_ip_address: &session.client_ip,
        }
    }
}

/// The session details between `expiresIn` and `accessToken`, from the lookup's rows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RowsAfterExpiry<'a> {
    theme_id: Option<&'a str>,
    session_tag: &'a str,
    created_on: String,
    last_accessed: String,
}

impl<'a> RowsAfterExpiry<'a> {
    fn of(found: &'a TokenLookup) -> Self {
        let session = &found.session;
        Self {
            theme_id: found.client.theme_id.as_deref(),
            session_tag: &session.session_tag,
            created_on: session.created_at.to_iso8601(),
            last_accessed: session.last_accessed.to_iso8601(),
        }
    }
}

/// The session details' fields that come from `found` alone, as JSON members: the head
/// opens the object, the tail neither opens nor closes it.
fn render_rows(found: &TokenLookup) -> Result<RenderedParts, serde_json::Error> {
    let head = serde_json::to_vec(&RowsBeforeDomain::of(found))?;
    let tail = serde_json::to_vec(&RowsAfterExpiry::of(found))?;
    // The head keeps the object's `{`; the tail is members only, its braces dropped.
    let not_an_object = || serde::ser::Error::custom("rendered rows are not a JSON object");
    let head = head.strip_suffix(b"}").ok_or_else(not_an_object)?;
    let tail = tail
        .strip_prefix(b"{")
        .and_then(|members| members.strip_suffix(b"}"))
        .ok_or_else(not_an_object)?;
    Ok(RenderedParts {
        head: Box::from(head),
        tail: Box::from(tail),
    })
}

/// A session request as both methods read it: the request in place (neither its headers
/// nor its URI are copied, the path only for an error), its bearer token, and the caller's
/// address, written out only when client credentials came beside a `?token=`.
struct SessionRequest {
    parts: Parts,
    bearer: BearerRequest,
    address: Option<String>,
}

impl SessionRequest {
    fn read(peer: PeerAddress, request: Request) -> Result<Self, ApiError> {
        let (parts, _) = request.into_parts();
        let bearer = match bearer_request(&parts.headers, parts.uri.query()) {
            Ok(bearer) => bearer,
            Err(error) => return Err(ApiError::Bearer(error, parts.uri.path().to_owned())),
        };
        let address = bearer.client.as_ref().map(|_| peer.to_string());
        Ok(Self {
            parts,
            bearer,
            address,
        })
    }

    /// The client credentials beside a `?token=`, and the address they came from.
    fn caller(&self) -> Option<(&ClientCredentials, &str)> {
        self.bearer.client.as_ref().zip(self.address.as_deref())
    }

    fn failed(&self, error: BearerError) -> ApiError {
        ApiError::Bearer(error, self.parts.uri.path().to_owned())
    }
}

/// The session behind an access token (API.md §3).
///
/// The token comes as `Authorization: Bearer` or `?token=` (both: the same value). A
/// refresh token, an expired or revoked token and anything that is not a Tessera token
/// are `invalid_token`.
#[utoipa::path(
    get,
    path = "/oauth20/access-tokens",
    operation_id = "getSessionDetails",
    tag = "sessions",
    params(IgnoredQuery),
    responses(
        (status = 200, description = "The session details.", body = SessionDetails,
            headers(("Cache-Control" = inline(NoStore)))),
        BearerFailures,
    ),
    security(("bearerToken" = []), ("tokenQuery" = []), ("tokenQuery" = [], "clientBasic" = [])),
)]
async fn show(
    State(state): State<AppState>,
    peer: PeerAddress,
    request: Request,
) -> Result<Response, ApiError> {
    let request = SessionRequest::read(peer, request)?;
    let view = state
        .service
        .session(&request.bearer.token, request.caller())
        .await
        .map_err(|e| request.failed(e))?;
    Ok(SessionDetails::answer(&view))
}

/// Revoke an access token: logout, or rotation (API.md §4).
///
/// If the token is its session's newest access token the whole session ends (every access
/// and refresh token of it); otherwise (the session was refreshed since) only this token is
/// revoked. The write is on disk before the 200, which carries the session as it was.
#[utoipa::path(
    delete,
    path = "/oauth20/access-tokens",
    operation_id = "deleteSession",
    tag = "sessions",
    params(IgnoredQuery),
    responses(
        (status = 200, description = "Revoked; the session details as they were before.",
            body = SessionDetails, headers(("Cache-Control" = inline(NoStore)))),
        BearerFailures,
    ),
    security(("bearerToken" = []), ("tokenQuery" = []), ("tokenQuery" = [], "clientBasic" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    peer: PeerAddress,
    request: Request,
) -> Result<Response, ApiError> {
    let request = SessionRequest::read(peer, request)?;
    let view = state
        .service
        .revoke(&request.bearer.token, request.caller())
        .await
        .map_err(|e| request.failed(e))?;
    Ok(SessionDetails::answer(&view))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_core::secret::Secret;
    use tessera_core::session::SessionView;

    use super::SessionDetails;
    use crate::oauth::test_lookup::lookup;

    /// The answer, rendered the first time and put together from the kept parts after
    /// that, is byte for byte what serialising the details field by field gives, whatever
    /// the fields hold and whatever changes between requests for the same lookup.
    #[test]
    fn answers_are_the_details_serialised() -> Result<(), serde_json::Error> {
        for every_field in [true, false] {
            let found = Arc::new(lookup(every_field));
            let requests = [
                ("node-1", 3599, "tat_first.token"),
                ("node \"2\"", 0, "tat_second\\token"),
                ("node-1", 12, "tat_first.token"),
            ];
            for (domain, expires_in, token) in requests {
                let view = SessionView {
                    found: Arc::clone(&found),
                    domain,
                    expires_in,
                    access_token: Secret::new(token),
                };
                let expected = serde_json::to_vec(&SessionDetails::of(&view))?;
                let written = SessionDetails::write(&view)?;
                assert_eq!(
                    String::from_utf8_lossy(&written),
                    String::from_utf8_lossy(&expected)
                );
                assert!(found.rendered.session_details().is_some());
            }
        }
        Ok(())
    }
}
