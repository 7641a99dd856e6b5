//! Administration of clients and shoppers, shared by the CLI and server start-up (the
//! bootstrap client). Works on any [`Store`].

use std::sync::Arc;

use crate::client::{
    ClientRecord, ClientSecretHash, GrantSet, PasswordEncoding, new_client_secret,
};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::id::{new_client_id, new_user_id};
use crate::password::hash_password;
use crate::secret::Secret;
use crate::shopper::{ShopperRecord, normalize_username};
use crate::store::Store;

/// What a new client looks like.
#[derive(Clone, Debug)]
pub struct NewClient {
    /// A human name for listings.
    pub name: String,
    /// A public client holds no secret.
    pub public: bool,
    /// Grants it may use.
    pub grants: GrantSet,
    /// Access token lifetime in seconds.
    pub access_token_ttl: i64,
    /// Absolute refresh token lifetime in seconds.
    pub refresh_token_ttl: i64,
    /// Locale of new sessions.
    pub default_locale: String,
    /// Currency of new sessions.
    pub default_currency: String,
    /// Storefront theme.
    pub theme_id: Option<String>,
    /// How the client sends shopper passwords with the login grant.
    pub password_encoding: PasswordEncoding,
    /// A resource server may introspect every client's tokens.
    pub resource_server: bool,
}

impl NewClient {
    /// A confidential client with default grants, lifetimes, `en_US` and `USD`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            public: false,
            grants: GrantSet::default_for_new_client(),
            access_token_ttl: ClientRecord::DEFAULT_ACCESS_TOKEN_TTL,
            refresh_token_ttl: ClientRecord::DEFAULT_REFRESH_TOKEN_TTL,
            default_locale: "en_US".to_owned(),
            default_currency: "USD".to_owned(),
            theme_id: None,
            password_encoding: PasswordEncoding::Plain,
            resource_server: false,
        }
    }
}

/// What a new shopper looks like.
#[derive(Clone, Debug, Default)]
pub struct NewShopper {
    /// The partner's id for the shopper.
    pub external_reference_id: Option<String>,
    /// Login name; normalised before storing.
    pub username: Option<String>,
    /// Password, hashed with Argon2id before storing.
    pub password: Option<Secret>,
    /// Preferred locale.
    pub locale: Option<String>,
    /// Preferred currency.
    pub currency: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// Client and shopper administration over a store.
pub struct Admin {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl Admin {
    /// Administration of `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Creates a client; returns it and, for a confidential client, its secret, which is
    /// not stored and cannot be shown again.
    pub async fn create_client(
        &self,
        new: NewClient,
    ) -> Result<(ClientRecord, Option<Secret>), StoreError> {
        let secret = if new.public {
            None
        } else {
            Some(new_client_secret()?)
        };
        let secret_hash = secret.as_ref().map(ClientSecretHash::new).transpose()?;
        let record = ClientRecord {
            id: new_client_id()?,
            name: new.name,
            secret_hash,
            grants: new.grants,
            disabled: false,
            access_token_ttl: new.access_token_ttl,
            refresh_token_ttl: new.refresh_token_ttl,
            default_locale: new.default_locale,
            default_currency: new.default_currency,
            theme_id: new.theme_id,
            created_at: self.clock.now(),
            sessions_revoked_before: None,
            password_encoding: new.password_encoding,
            resource_server: new.resource_server,
        };
        self.store.insert_client(&record).await?;
        Ok((record, secret))
    }

    /// Every client.
    pub async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.store.clients().await
    }

    /// Replaces a confidential client's secret; the old one stops working at once.
    /// `None` if there is no such client; [`StoreError::Conflict`] for a public client.
    pub async fn rotate_client_secret(&self, id: &str) -> Result<Option<Secret>, StoreError> {
        let Some(client) = self.store.client(id).await? else {
            return Ok(None);
        };
        if client.is_public() {
            return Err(StoreError::Conflict(
                "a public client has no secret to rotate".to_owned(),
            ));
        }
        let secret = new_client_secret()?;
        let hash = ClientSecretHash::new(&secret)?;
        Ok(self
            .store
            .set_client_secret(id, &hash)
            .await?
            .then_some(secret))
    }

    /// Disables a client: it cannot authenticate and its tokens stop working. `false` if
    /// there is no such client.
    pub async fn disable_client(&self, id: &str) -> Result<bool, StoreError> {
        self.store.set_client_disabled(id, true).await
    }

    /// Creates a shopper and returns its id. The password, if any, is hashed with Argon2id
    /// here, on the calling thread.
    pub async fn create_shopper(&self, new: NewShopper) -> Result<ShopperRecord, StoreError> {
        let password_hash = new.password.as_ref().map(hash_password).transpose()?;
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
        self.store.insert_shopper(&record).await?;
        Ok(record)
    }
}
