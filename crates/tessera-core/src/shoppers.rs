//! Shopper resources (`/v1/shoppers`): a confidential client registers a shopper; a
//! token's holder reads its shopper and changes its session's locale and currency.

use crate::admin::NewShopper;
use crate::client::ClientCredentials;
use crate::error::{BearerError, StoreError, TokenError};
use crate::id::new_user_id;
use crate::secret::Secret;
use crate::service::TokenService;
use crate::shopper::{ShopperRecord, normalize_username};

/// Longest accepted free-text field (names, ids, usernames), in characters (Unicode
/// scalar values), as API.md and the OpenAPI document's `maxLength` count.
const MAX_TEXT: usize = 255;
/// Longest accepted password: Argon2 takes any length, but hashing megabytes is an easy
/// way to burn CPU.
const MAX_PASSWORD: usize = 1024;

/// Why a shopper resource request failed.
#[derive(Debug, thiserror::Error)]
pub enum ShopperError {
    /// A field is missing, too long or malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// The caller may not do this (a public client creating shoppers, a client token
    /// asking for its shopper).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The external reference id or username is taken.
    #[error("conflict")]
    Conflict,
    /// Client authentication failed.
    #[error(transparent)]
    Client(TokenError),
    /// The bearer token is missing or not live.
    #[error(transparent)]
    Bearer(BearerError),
}

impl From<StoreError> for ShopperError {
    fn from(error: StoreError) -> Self {
        ShopperError::Bearer(BearerError::Store(error))
    }
}

/// What a token's holder sees of its shopper.
#[derive(Clone, Debug)]
pub struct ShopperView {
    /// `userId` of the session.
    pub id: String,
    /// Whether the session is a shopper's (`true`) or an anonymous visitor's.
    pub authenticated: bool,
    /// The partner's id for the shopper.
    pub external_reference_id: Option<String>,
    /// Login name (`anonymous` for anonymous visitors).
    pub username: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// The session's locale.
    pub locale: String,
    /// The session's currency.
    pub currency: String,
}

/// `xx_YY`: two lower-case letters, underscore, two upper-case letters.
pub fn valid_locale(locale: &str) -> bool {
    let bytes = locale.as_bytes();
    bytes.len() == 5
        && bytes[..2].iter().all(u8::is_ascii_lowercase)
        && bytes[2] == b'_'
        && bytes[3..].iter().all(u8::is_ascii_uppercase)
}

/// ISO 4217 shape: three upper-case letters.
pub fn valid_currency(currency: &str) -> bool {
    currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())
}

fn check_text(value: Option<&str>, what: &'static str) -> Result<(), ShopperError> {
    match value {
        // Control characters (NUL above all) have no place in a name or an id, and some
        // stores refuse them outright.
        Some(v)
            if v.trim().is_empty()
                || v.chars().count() > MAX_TEXT
                || v.chars().any(char::is_control) =>
        {
            Err(ShopperError::InvalidRequest(what))
        }
        _ => Ok(()),
    }
}

fn check_new_shopper(new: &NewShopper) -> Result<(), ShopperError> {
    check_text(
        new.external_reference_id.as_deref(),
        "externalReferenceId must be 1 to 255 characters",
    )?;
    check_text(
        new.username.as_deref(),
        "username must be 1 to 255 characters",
    )?;
    check_text(
        new.first_name.as_deref(),
        "firstName must be 1 to 255 characters",
    )?;
    check_text(
        new.last_name.as_deref(),
        "lastName must be 1 to 255 characters",
    )?;
    check_text(new.email.as_deref(), "email must be 1 to 255 characters")?;
    if new.external_reference_id.is_none() && new.username.is_none() {
        return Err(ShopperError::InvalidRequest(
            "a shopper needs an externalReferenceId or a username",
        ));
    }
    if new.email.as_deref().is_some_and(|e| !e.contains('@')) {
        return Err(ShopperError::InvalidRequest(
            "email must be an e-mail address",
        ));
    }
    if new.locale.as_deref().is_some_and(|l| !valid_locale(l)) {
        return Err(ShopperError::InvalidRequest("locale must look like en_US"));
    }
    if new.currency.as_deref().is_some_and(|c| !valid_currency(c)) {
        return Err(ShopperError::InvalidRequest("currency must look like USD"));
    }
    match (&new.username, &new.password) {
        (None, Some(_)) => Err(ShopperError::InvalidRequest("a password needs a username")),
        (_, Some(p)) if p.expose().is_empty() || p.expose().len() > MAX_PASSWORD => Err(
            ShopperError::InvalidRequest("password must be 1 to 1024 bytes"),
        ),
        _ => Ok(()),
    }
}

impl TokenService {
    /// `POST /v1/shoppers`: a confidential client registers a shopper. The password is
    /// hashed with Argon2id on a blocking thread, behind the same concurrency cap as logins.
    pub async fn register_shopper(
        &self,
        credentials: Option<&ClientCredentials>,
        new: NewShopper,
        address: &str,
    ) -> Result<ShopperRecord, ShopperError> {
        let credentials = credentials.ok_or(ShopperError::Client(TokenError::InvalidClient))?;
        let client = self
            .authenticate_client(credentials, address)
            .await
            .map_err(ShopperError::Client)?;
        if client.is_public() {
            return Err(ShopperError::Forbidden(
                "only confidential clients may create shoppers",
            ));
        }
        check_new_shopper(&new)?;
        let password_hash = match new.password {
            None => None,
            Some(password) => Some(self.passwords.hash(password).await?),
        };
        let record = ShopperRecord {
            id: new_user_id()?,
            external_reference_id: new.external_reference_id,
            username: new.username.as_deref().map(normalize_username),
            password_hash,
            locale: new.locale,
            currency: new.currency,
            created_at: self.clock.now(),
            first_name: new.first_name,
            last_name: new.last_name,
            email: new.email,
        };
        match self.store.insert_shopper(&record).await {
            Ok(()) => Ok(record),
            Err(StoreError::Conflict(_)) => Err(ShopperError::Conflict),
            Err(error) => Err(error.into()),
        }
    }

    /// `GET /v1/shoppers/me`: the shopper behind a live access token; an anonymous shopper
    /// for a limited token.
    pub async fn shopper_of(&self, bearer: &Secret) -> Result<ShopperView, ShopperError> {
        let (found, _) = self
            .live_access_token(bearer.expose())
            .await
            .map_err(ShopperError::Bearer)?;
        let session = &found.session;
        let Some(user_id) = session.user_id.clone() else {
            return Err(ShopperError::Forbidden("a client token has no shopper"));
        };
        let stored = if session.authenticated {
            self.store.shopper(&user_id).await?
        } else {
            None
        };
        let anonymous = !session.authenticated;
        Ok(ShopperView {
            id: user_id,
            authenticated: session.authenticated,
            external_reference_id: session.external_reference_id.clone(),
            username: match &stored {
                Some(shopper) => shopper.username.clone(),
                None if anonymous => Some("anonymous".to_owned()),
                None => None,
            },
            first_name: stored.as_ref().and_then(|s| s.first_name.clone()),
            last_name: stored.as_ref().and_then(|s| s.last_name.clone()),
            email: stored.as_ref().and_then(|s| s.email.clone()),
            locale: session.locale.clone(),
            currency: session.currency.clone(),
        })
    }

    /// `POST /v1/shoppers/me`: changes the session's locale and currency, then returns the
    /// shopper as [`TokenService::shopper_of`] does.
    pub async fn update_shopper_session(
        &self,
        bearer: &Secret,
        locale: Option<String>,
        currency: Option<String>,
    ) -> Result<ShopperView, ShopperError> {
        // The token first: a caller without a live token gets the RFC 6750 challenge, not
        // a lesson in this resource's parameters.
        let (found, _) = self
            .live_access_token(bearer.expose())
            .await
            .map_err(ShopperError::Bearer)?;
        if locale.is_none() && currency.is_none() {
            return Err(ShopperError::InvalidRequest(
                "give a locale, a currency, or both",
            ));
        }
        if locale.as_deref().is_some_and(|l| !valid_locale(l)) {
            return Err(ShopperError::InvalidRequest("locale must look like en_US"));
        }
        if currency.as_deref().is_some_and(|c| !valid_currency(c)) {
            return Err(ShopperError::InvalidRequest("currency must look like USD"));
        }
        if found.session.user_id.is_none() {
            return Err(ShopperError::Forbidden("a client token has no shopper"));
        }
        let updated = self
            .store
            .set_session_preferences(&found.session.id, locale.as_deref(), currency.as_deref())
            .await?;
        if !updated {
            return Err(ShopperError::Bearer(BearerError::InvalidToken));
        }
        self.shopper_of(bearer).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_and_currencies_have_one_shape() {
        assert!(valid_locale("en_US"));
        assert!(!valid_locale("en-US"));
        assert!(!valid_locale("EN_us"));
        assert!(!valid_locale("en_USA"));
        assert!(valid_currency("EUR"));
        assert!(!valid_currency("eur"));
        assert!(!valid_currency("EURO"));
    }
}
