//! Client credentials (API.md §2): `Authorization: Basic`, or `client_id` (and
//! `client_secret`) in the body. Basic's id and secret are each form-decoded after the
//! base64 step, as RFC 6749 §2.3.1 requires.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
#[cfg(test)]
use base64::engine::general_purpose;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use tessera_core::Secret;
use tessera_core::TokenError;
use tessera_core::client::{AuthMethod, ClientCredentials};

use super::form::decode_component;

/// Standard base64, with or without padding: clients differ, and both are unambiguous.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What the `Authorization` header holds.
pub(crate) enum Authorization {
    /// No header.
    None,
    /// `Basic` credentials, decoded.
    Basic(ClientCredentials),
    /// `Bearer` and its token.
    Bearer(Secret),
    /// A scheme Tessera does not use.
    Other,
}

/// Why the `Authorization` header could not be read.
pub(crate) enum AuthorizationError {
    /// The header appears more than once.
    Repeated,
    /// `Basic` credentials that do not decode to `id:secret`.
    MalformedBasic,
}

/// Reads the single `Authorization` header.
pub(crate) fn authorization(headers: &HeaderMap) -> Result<Authorization, AuthorizationError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Authorization::None);
    };
    if values.next().is_some() {
        return Err(AuthorizationError::Repeated);
    }
    let Ok(value) = value.to_str() else {
        return Ok(Authorization::Other);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    // RFC 7235 §2.1: one or more spaces separate the scheme from the credentials.
    let credentials = rest.trim_start_matches(' ');
    if scheme.eq_ignore_ascii_case("basic") {
        basic(credentials).map(Authorization::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Authorization::Bearer(Secret::new(credentials)))
    } else {
        Ok(Authorization::Other)
    }
}

fn basic(encoded: &str) -> Result<ClientCredentials, AuthorizationError> {
    let decoded = BASIC_BASE64
        .decode(encoded.trim_end_matches(' '))
        .map_err(|_| AuthorizationError::MalformedBasic)?;
    let (id, secret) = decoded
        .iter()
        .position(|&b| b == b':')
        .map(|at| (&decoded[..at], &decoded[at + 1..]))
        .ok_or(AuthorizationError::MalformedBasic)?;
    let client_id = decode_component(id).map_err(|_| AuthorizationError::MalformedBasic)?;
    let secret = decode_component(secret).map_err(|_| AuthorizationError::MalformedBasic)?;
    if client_id.is_empty() {
        return Err(AuthorizationError::MalformedBasic);
    }
    Ok(ClientCredentials {
        client_id,
        secret: (!secret.is_empty()).then(|| Secret::new(secret)),
        method: AuthMethod::Basic,
    })
}

/// Combines the header with `client_id` / `client_secret` from the body. Two methods in
/// one request are `invalid_request` (RFC 6749 §2.3); a body `client_id` beside Basic is
/// tolerated when it names the same client, as some libraries send it.
pub(crate) fn client_credentials(
    header: Option<ClientCredentials>,
    body_client_id: Option<String>,
    body_client_secret: Option<Secret>,
) -> Result<Option<ClientCredentials>, TokenError> {
    match (header, body_client_id, body_client_secret) {
        (Some(_), _, Some(_)) => Err(TokenError::InvalidRequest(
            "use one client authentication method, not two",
        )),
        (Some(basic), Some(id), None) if id != basic.client_id => Err(TokenError::InvalidRequest(
            "client_id does not match the Authorization header",
        )),
        (Some(basic), _, None) => Ok(Some(basic)),
        (None, Some(client_id), secret) => Ok(Some(ClientCredentials {
            client_id,
            secret,
            method: AuthMethod::Body,
        })),
        (None, None, Some(_)) => Err(TokenError::InvalidRequest(
            "client_secret was sent without client_id",
        )),
        (None, None, None) => Ok(None),
    }
}

/// The client credentials of a form request that carries no bearer token (introspection,
/// revocation): `Authorization: Basic`, or `client_id` (and `client_secret`) from the body,
/// combined as [`client_credentials`] does. Any other scheme and malformed Basic are
/// `invalid_client`; two `Authorization` headers are `invalid_request`.
pub(crate) fn form_client_credentials(
    headers: &HeaderMap,
    body_client_id: Option<String>,
    body_client_secret: Option<Secret>,
) -> Result<Option<ClientCredentials>, TokenError> {
    let header = match authorization(headers) {
        Ok(Authorization::Basic(credentials)) => Some(credentials),
        Ok(Authorization::None) => None,
        Ok(Authorization::Bearer(_) | Authorization::Other)
        | Err(AuthorizationError::MalformedBasic) => return Err(TokenError::InvalidClient),
        Err(AuthorizationError::Repeated) => {
            return Err(TokenError::InvalidRequest(
                "more than one Authorization header",
            ));
        }
    };
    client_credentials(header, body_client_id, body_client_secret)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn header_with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    fn basic_of(value: &str) -> Option<(String, Option<String>)> {
        match authorization(&header_with(value)) {
            Ok(Authorization::Basic(c)) => {
                Some((c.client_id, c.secret.map(|s| s.expose().to_owned())))
            }
            _ => None,
        }
    }

    #[test]
    fn basic_splits_at_the_first_colon_and_form_decodes_each_part() {
        // "a%2Bb:s:e+c" -> id "a+b", secret "s:e c"
        let encoded = general_purpose::STANDARD.encode("a%2Bb:s:e+c");
        assert_eq!(
            basic_of(&format!("bAsIc  {encoded}")),
            Some(("a+b".into(), Some("s:e c".into())))
        );
    }

    #[test]
    fn basic_with_an_empty_secret_means_a_public_client() {
        let encoded = general_purpose::STANDARD.encode("abc:");
        assert_eq!(
            basic_of(&format!("Basic {encoded}")),
            Some(("abc".into(), None))
        );
    }

    #[test]
    fn malformed_basic_credentials_are_refused() {
        for bad in [
            "Basic".to_owned(),
            "Basic ".to_owned(),
            "Basic !!!".to_owned(),
            format!("Basic {}", general_purpose::STANDARD.encode("nocolon")),
            format!("Basic {}", general_purpose::STANDARD.encode(":secret")),
            format!("Basic {}", general_purpose::STANDARD.encode("id:\0")),
            format!("Basic {}", general_purpose::STANDARD.encode(b"id:\xff\xfe")),
        ] {
            assert!(
                matches!(
                    authorization(&header_with(&bad)),
                    Err(AuthorizationError::MalformedBasic)
                ),
                "{bad} should be refused"
            );
        }
    }
}
