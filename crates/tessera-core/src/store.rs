//! The storage traits. Small traits per record kind, combined into [`Store`], which the
//! server holds as `Arc<dyn Store>`. Stores keep rows and make single writes atomic; the
//! rules about what a row means (expiry, ownership, logout) live in the services.

use std::sync::Arc;

use async_trait::async_trait;

use crate::client::{ClientRecord, ClientSecretHash};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::logout::{LoggedOut, Logout, log_out_in_steps};
use crate::migration::MigrationStore;
use crate::rotation::{RefreshExchange, RefreshOutcome, exchange_in_steps};
use crate::session::{SessionRecord, TokenLookup, TokenRecord};
use crate::session_admin::{
    DeletedRows, SessionLookup, SessionOwner, SessionSweep, TidyUp, TokenSweep,
};
use crate::session_token::{SessionTokenLookup, SessionTokenRecord};
use crate::shopper::ShopperRecord;
use crate::token::TokenHash;

/// Clients.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Adds a client; [`StoreError::Conflict`] if the id exists.
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    /// One client by API key.
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// What a cache in front of the store remembers of a client, without reading the
    /// store: `None` when there is no cache or it holds nothing confirmed for `id`, and
    /// `Some(None)` when it remembers that there is no such client. The record is shared
    /// with the cache, not copied.
    fn cached_client(&self, _id: &str) -> Option<Option<Arc<ClientRecord>>> {
        None
    }
    /// One client read from the store itself, replacing what a cache in front of it
    /// remembers; without a cache, the same as [`ClientStore::client`].
    async fn fresh_client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.client(id).await
    }
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
    /// One shopper by username, compared exactly: callers pass a name already normalised
    /// by [`crate::shopper::normalize_username`], the form usernames are stored in.
    async fn shopper_by_username(
        &self,
        username: &str,
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
    /// [`SessionStore::lookup_token`], shared: a store that keeps lookups (the lookup
    /// cache) hands out the one it holds instead of a copy of every string in it.
    async fn lookup_token_shared(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<std::sync::Arc<TokenLookup>>, StoreError> {
        Ok(self.lookup_token(hash).await?.map(std::sync::Arc::new))
    }
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
    /// Revokes a whole session, which ends every token of it, if it is not revoked yet, as
    /// one conditional write; `true` if this call revoked it.
    async fn revoke_session(&self, session_id: &str, now: Timestamp) -> Result<bool, StoreError>;
    /// Refresh-token rotation as one transaction: consumes the refresh token `consumed` only
    /// if it is still unconsumed and unrevoked and its session is not revoked, then adds
    /// `access` and `refresh` to that session and makes `access` its newest access token.
    /// `false` (and nothing written) if the conditional consume matched no row: another
    /// refresh or a revocation got there first.
    async fn rotate_refresh(
        &self,
        consumed: &TokenHash,
        now: Timestamp,
        access: &TokenRecord,
        refresh: &TokenRecord,
    ) -> Result<bool, StoreError>;
    /// The refresh-token exchange as one operation ([`crate::rotation`]): finds
    /// `exchange.presented`, decides with [`RefreshExchange::decide`] and writes what that
    /// says. By default a read, then conditional writes ([`exchange_in_steps`]); a store
    /// with a single writer runs all of it as one write.
    async fn exchange_refresh(
        &self,
        exchange: &RefreshExchange,
    ) -> Result<RefreshOutcome, StoreError> {
        exchange_in_steps(self, exchange).await
    }
    /// The logout rule of API.md §4 as one operation ([`crate::logout`]): finds
    /// `logout.presented`, and if [`Logout::admits`] it, ends its session when it is the
    /// session's newest access token, otherwise the token alone. `None` when nothing was
    /// ended. By default a read, then conditional writes ([`log_out_in_steps`]); a store
    /// with a single writer runs all of it as one write.
    async fn log_out(&self, logout: &Logout) -> Result<Option<LoggedOut>, StoreError> {
        log_out_in_steps(self, logout).await
    }
}

/// Session tokens and the session changes that use them: joining a session, binding a
/// session token, upgrading an anonymous session to a shopper's.
#[async_trait]
pub trait SessionJoinStore: Send + Sync {
    /// Stores a newly minted session token.
    async fn insert_session_token(&self, record: &SessionTokenRecord) -> Result<(), StoreError>;
    /// A session token by hash, with its bound session seen through that session's newest
    /// access token.
    async fn lookup_session_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionTokenLookup>, StoreError>;
    /// In one transaction: binds the session token `hash` to the new session, but only if
    /// it is still bound to `previous` (`None`: unbound), then inserts the session and its
    /// tokens. `false`, with nothing written, if the binding changed meanwhile.
    async fn insert_bound_session(
        &self,
        hash: &TokenHash,
        previous: Option<&str>,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError>;
    /// In one transaction: adds tokens to a live session and makes `newest_access` its
    /// newest access token. `false`, with nothing written, if the session has ended.
    async fn add_session_tokens(
        &self,
        session_id: &str,
        newest_access: &TokenHash,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError>;
    /// In one transaction: ends the live anonymous session `previous` (and with it every
    /// token of it), inserts the shopper's new session and its tokens, and moves every
    /// session token bound to `previous` to the new session. `false`, with nothing
    /// written, if `previous` has ended or is no longer anonymous.
    async fn upgrade_session(
        &self,
        previous: &str,
        now: Timestamp,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError>;
    /// One clean-up batch: deletes at most `limit` session tokens that expired at or before
    /// `now`; returns how many.
    async fn delete_expired_session_tokens(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Changes a live session's locale and/or currency; `false` if the session has ended.
    async fn set_session_preferences(
        &self,
        session_id: &str,
        locale: Option<&str>,
        currency: Option<&str>,
    ) -> Result<bool, StoreError>;
}

/// Operator work on sessions: revocation watermarks ("logout everywhere") and their
/// tidy-up, reading and changing one session, and expiry clean-up. Every batch method does
/// at most `limit` rows in one short write transaction, so requests are never held up for
/// long.
#[async_trait]
pub trait SessionAdminStore: Send + Sync {
    /// Sets the revocation watermark of `owner` to `before` (never moving it back) and, for
    /// a shopper, records a pending tidy-up for it, in one transaction. A client's covered
    /// sessions, which may be millions, are left to [`SessionAdminStore::sweep_sessions`].
    /// `false`, with nothing written, for a client that does not exist; any user id is
    /// accepted.
    async fn revoke_sessions_before(
        &self,
        owner: &SessionOwner,
        before: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Up to `limit` pending tidy-ups.
    async fn pending_tidy_ups(&self, limit: u32) -> Result<Vec<TidyUp>, StoreError>;
    /// One tidy-up batch: marks revoked (at `now`) up to `limit` sessions of the shopper
    /// created at or before the tidy-up's watermark and not yet revoked. When fewer than
    /// `limit` were left, the pending tidy-up is removed in the same transaction (unless a
    /// newer watermark replaced it meanwhile). Returns the number of sessions marked. A
    /// client's pending tidy-up (recorded by an earlier release) is removed, marking
    /// nothing: the sweep deletes the sessions it covers.
    async fn tidy_up_batch(
        &self,
        tidy_up: &TidyUp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// One session by id, with its client and its shopper's watermark; one read.
    async fn session_by_id(&self, session_id: &str) -> Result<Option<SessionLookup>, StoreError>;
    /// Up to `limit` sessions of the shopper `user_id` that are not revoked, not expired at
    /// `now` and created after the shopper's watermark, oldest first, each with its client
    /// (whose own watermark and state the caller still checks).
    async fn shopper_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<SessionLookup>, StoreError>;
    /// Sets (or with `None` clears) the cart id of a session that is not revoked; `false`
    /// if there is no such session.
    async fn set_session_cart(
        &self,
        session_id: &str,
        cart_id: Option<&str>,
    ) -> Result<bool, StoreError>;
    /// One clean-up batch of sessions: deletes up to `limit` revoked sessions, through an
    /// index that holds only revoked sessions. A store may delete a session's tokens with
    /// it (counted in the same limit; a session with more tokens left than that is
    /// finished by later batches), or leave them to [`SessionAdminStore::sweep_tokens`]: a
    /// token whose session is gone is never found.
    async fn delete_revoked_sessions(&self, limit: u32) -> Result<DeletedRows, StoreError>;
    /// One batch of the sweep over every session in key order: looks at up to `limit`
    /// sessions after the id `after` (from the first with `None`) and deletes those that
    /// expired at or before `now`, were revoked, or were created at or before their
    /// client's or their shopper's watermark. Their tokens are left, or deleted, as by
    /// [`SessionAdminStore::delete_revoked_sessions`].
    async fn sweep_sessions(
        &self,
        after: Option<&str>,
        now: Timestamp,
        limit: u32,
    ) -> Result<SessionSweep, StoreError>;
    /// One batch of the sweep over every token in key order: looks at up to `limit`
    /// tokens after `after` (from the first with `None`) and deletes those that expired at
    /// or before `now`, or whose session was revoked or is gone. Consumed refresh tokens of
    /// a live session stay (reuse detection).
    async fn sweep_tokens(
        &self,
        after: Option<&TokenHash>,
        now: Timestamp,
        limit: u32,
    ) -> Result<TokenSweep, StoreError>;
}

/// Everything a Tessera store offers.
#[async_trait]
pub trait Store:
    ClientStore
    + ShopperStore
    + SessionStore
    + SessionJoinStore
    + SessionAdminStore
    + MigrationStore
    + Send
    + Sync
    + 'static
{
    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Finishes pending work and closes connections.
    async fn close(&self);

    /// How this process learns that other processes changed the store, when the backend
    /// can tell cheaply; `None` when it cannot, and then no node may cache lookups.
    fn change_signal(&self) -> Option<std::sync::Arc<dyn ChangeSignal>> {
        None
    }
}

/// Counts the writes other processes made to a shared store, so that a node's lookup
/// cache can be emptied before it answers from stale entries (RELIABILITY P5).
pub trait ChangeSignal: Send + Sync {
    /// A number that grows whenever another process has committed a write that may end,
    /// revoke or change a session, token, shopper watermark or client, as seen by the time
    /// this call returns. Writes of this process do not count. If the answer cannot be
    /// known (an I/O error), it must grow anyway: a spurious change only costs cache hits.
    fn foreign_changes(&self) -> u64;
}
