//! The storage traits. Small traits per record kind, combined into [`Store`], which the
//! server holds as `Arc<dyn Store>`. Stores keep rows and make single writes atomic; the
//! rules about what a row means (expiry, ownership, logout) live in the services.

use async_trait::async_trait;

use crate::client::{ClientRecord, ClientSecretHash};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::session::{SessionRecord, TokenLookup, TokenRecord};
use crate::shopper::ShopperRecord;
use crate::token::TokenHash;

/// Clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Adds a client; [`StoreError::Conflict`] if the id exists.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// One client by API key.
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Every client, oldest first.
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Replaces a client's secret; `false` if there is no such client.
    async fn set_client_secret(
        &self,
        id: &str,
        secret: &ClientSecretHash,
    ) -> Result<bool, StoreError>;
    /// Disables or re-enables a client; `false` if there is no such client.
    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError>;
}

/// Shoppers.
#[async_trait]
pub trait ShopperStore: Send + Sync {
    /// Adds a shopper; [`StoreError::Conflict`] if the id, external reference id or
    /// username is taken.
    async fn insert_shopper(&self, shopper: &ShopperRecord) -> Result<(), StoreError>;
    /// One shopper by id.
    async fn shopper(&self, id: &str) -> Result<Option<ShopperRecord>, StoreError>;
    /// One shopper by the partner's id.
    async fn shopper_by_external_reference(
        &self,
        external_reference_id: &str,
    ) -> Result<Option<ShopperRecord>, StoreError>;
}

/// Sessions and their tokens.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Adds a session and its first tokens in one transaction: all or nothing, durable
    /// before returning.
    async fn insert_session(
        &self,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError>;
    /// A token with its session and client, by hash; one read.
    async fn lookup_token(&self, hash: &TokenHash) -> Result<Option<TokenLookup>, StoreError>;
    /// Ends the session if `access` is still its newest access token and it is not yet
    /// revoked, as one conditional write; `true` if this call ended it.
    async fn end_session_if_newest(
        &self,
        session_id: &str,
        access: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Revokes one token if neither it nor its session is revoked yet, as one conditional
    /// write; `true` if this call revoked it.
    async fn revoke_token(&self, hash: &TokenHash, now: Timestamp) -> Result<bool, StoreError>;
    /// Records a lookup time; best effort, callers ignore failures.
    async fn touch_session(&self, session_id: &str, now: Timestamp) -> Result<(), StoreError>;
}

/// Everything a Tessera store offers.
#[async_trait]
pub trait Store: ClientStore + ShopperStore + SessionStore + Send + Sync + 'static {
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Finishes pending work and closes connections.
    async fn close(&self);
}
