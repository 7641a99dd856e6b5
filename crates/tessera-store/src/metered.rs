//! [`MeteredStore`]: any store, with the duration of each of its operations recorded in
//! `tessera_store_operation_duration_seconds{operation,outcome}` through the `metrics`
//! facade. `tessera serve` wraps the store it opens in one; the admin commands do not.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tessera_core::client::{ClientRecord, ClientSecretHash};
use tessera_core::logout::{LoggedOut, Logout};
use tessera_core::migration::{MigrationBatch, MigrationKey, MigrationKind, MigrationStore};
use tessera_core::rotation::{RefreshExchange, RefreshOutcome};
use tessera_core::session::{SessionRecord, TokenLookup, TokenRecord};
use tessera_core::session_admin::{
    DeletedRows, SessionLookup, SessionOwner, SessionSweep, TidyUp, TokenSweep,
};
use tessera_core::session_token::{SessionTokenLookup, SessionTokenRecord};
use tessera_core::shopper::ShopperRecord;
use tessera_core::store::{
    ChangeSignal, ClientStore, SessionAdminStore, SessionJoinStore, SessionStore, ShopperStore,
};
use tessera_core::token::TokenHash;
use tessera_core::{Store, StoreError, Timestamp};

/// A store that times every operation of the store it wraps and otherwise changes
/// nothing: same answers, same errors, same change signal.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
}

impl MeteredStore {
    /// `inner`, metered, as the trait object the rest of Tessera holds.
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Self { inner })
    }
}

/// Awaits `$call` and records its duration under the operation `$operation` (a literal,
/// so that, with the outcome, every series has a `static` key and recording allocates
/// nothing) and the outcome: `ok`, or the kind of [`StoreError`].
macro_rules! timed {
    ($operation:literal, $call:expr) => {{
        let started = Instant::now();
        let result = $call.await;
        let seconds = started.elapsed().as_secs_f64();
        let histogram = match &result {
            Ok(_) => metrics::histogram!(
                "tessera_store_operation_duration_seconds",
                "operation" => $operation, "outcome" => "ok"
            ),
            Err(StoreError::Unavailable(_)) => metrics::histogram!(
                "tessera_store_operation_duration_seconds",
                "operation" => $operation, "outcome" => "unavailable"
            ),
            Err(StoreError::Conflict(_)) => metrics::histogram!(
                "tessera_store_operation_duration_seconds",
                "operation" => $operation, "outcome" => "conflict"
            ),
            Err(StoreError::Corrupt(_)) => metrics::histogram!(
                "tessera_store_operation_duration_seconds",
                "operation" => $operation, "outcome" => "corrupt"
            ),
        };
        histogram.record(seconds);
        result
    }};
}

#[async_trait]
impl ClientStore for MeteredStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        timed!("insert_client", self.inner.insert_client(client))
    }
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        timed!("client", self.inner.client(id))
    }
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        timed!("clients", self.inner.clients())
    }
    async fn set_client_secret(
        &self,
        id: &str,
        secret: &ClientSecretHash,
    ) -> Result<bool, StoreError> {
        timed!(
            "set_client_secret",
            self.inner.set_client_secret(id, secret)
        )
    }
    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        timed!(
            "set_client_disabled",
            self.inner.set_client_disabled(id, disabled)
        )
    }
}

#[async_trait]
impl ShopperStore for MeteredStore {
    async fn insert_shopper(&self, shopper: &ShopperRecord) -> Result<(), StoreError> {
        timed!("insert_shopper", self.inner.insert_shopper(shopper))
    }
    async fn shopper(&self, id: &str) -> Result<Option<ShopperRecord>, StoreError> {
        timed!("shopper", self.inner.shopper(id))
    }
    async fn shopper_by_external_reference(
        &self,
        external_reference_id: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        timed!(
            "shopper_by_external_reference",
            self.inner
                .shopper_by_external_reference(external_reference_id)
        )
    }
    async fn shopper_by_username(
        &self,
        username: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        timed!(
            "shopper_by_username",
            self.inner.shopper_by_username(username)
        )
    }
}

#[async_trait]
impl SessionStore for MeteredStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError> {
        timed!("insert_session", self.inner.insert_session(session, tokens))
    }
    async fn lookup_token(&self, hash: &TokenHash) -> Result<Option<TokenLookup>, StoreError> {
        timed!("lookup_token", self.inner.lookup_token(hash))
    }
    async fn end_session_if_newest(
        &self,
        session_id: &str,
        access: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        timed!(
            "end_session_if_newest",
            self.inner.end_session_if_newest(session_id, access, now)
        )
    }
    async fn revoke_token(&self, hash: &TokenHash, now: Timestamp) -> Result<bool, StoreError> {
        timed!("revoke_token", self.inner.revoke_token(hash, now))
    }
    async fn touch_session(&self, session_id: &str, now: Timestamp) -> Result<(), StoreError> {
        timed!("touch_session", self.inner.touch_session(session_id, now))
    }
    async fn revoke_session(&self, session_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        timed!("revoke_session", self.inner.revoke_session(session_id, now))
    }
    async fn rotate_refresh(
        &self,
        consumed: &TokenHash,
        now: Timestamp,
        access: &TokenRecord,
        refresh: &TokenRecord,
    ) -> Result<bool, StoreError> {
        timed!(
            "rotate_refresh",
            self.inner.rotate_refresh(consumed, now, access, refresh)
        )
    }
    async fn exchange_refresh(
        &self,
        exchange: &RefreshExchange,
    ) -> Result<RefreshOutcome, StoreError> {
        timed!("exchange_refresh", self.inner.exchange_refresh(exchange))
    }
    async fn log_out(&self, logout: &Logout) -> Result<Option<LoggedOut>, StoreError> {
        timed!("log_out", self.inner.log_out(logout))
    }
}

#[async_trait]
impl SessionJoinStore for MeteredStore {
    async fn insert_session_token(&self, record: &SessionTokenRecord) -> Result<(), StoreError> {
        timed!(
            "insert_session_token",
            self.inner.insert_session_token(record)
        )
    }
    async fn lookup_session_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionTokenLookup>, StoreError> {
        timed!(
            "lookup_session_token",
            self.inner.lookup_session_token(hash)
        )
    }
    async fn insert_bound_session(
        &self,
        hash: &TokenHash,
        previous: Option<&str>,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        timed!(
            "insert_bound_session",
            self.inner
                .insert_bound_session(hash, previous, session, tokens)
        )
    }
    async fn add_session_tokens(
        &self,
        session_id: &str,
        newest_access: &TokenHash,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        timed!(
            "add_session_tokens",
            self.inner
                .add_session_tokens(session_id, newest_access, tokens)
        )
    }
    async fn upgrade_session(
        &self,
        previous: &str,
        now: Timestamp,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        timed!(
            "upgrade_session",
            self.inner.upgrade_session(previous, now, session, tokens)
        )
    }
    async fn delete_expired_session_tokens(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        timed!(
            "delete_expired_session_tokens",
            self.inner.delete_expired_session_tokens(now, limit)
        )
    }
    async fn set_session_preferences(
        &self,
        session_id: &str,
        locale: Option<&str>,
        currency: Option<&str>,
    ) -> Result<bool, StoreError> {
        timed!(
            "set_session_preferences",
            self.inner
                .set_session_preferences(session_id, locale, currency)
        )
    }
}

#[async_trait]
impl SessionAdminStore for MeteredStore {
    async fn revoke_sessions_before(
        &self,
        owner: &SessionOwner,
        before: Timestamp,
    ) -> Result<bool, StoreError> {
        timed!(
            "revoke_sessions_before",
            self.inner.revoke_sessions_before(owner, before)
        )
    }
    async fn pending_tidy_ups(&self, limit: u32) -> Result<Vec<TidyUp>, StoreError> {
        timed!("pending_tidy_ups", self.inner.pending_tidy_ups(limit))
    }
    async fn tidy_up_batch(
        &self,
        tidy_up: &TidyUp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        timed!(
            "tidy_up_batch",
            self.inner.tidy_up_batch(tidy_up, now, limit)
        )
    }
    async fn session_by_id(&self, session_id: &str) -> Result<Option<SessionLookup>, StoreError> {
        timed!("session_by_id", self.inner.session_by_id(session_id))
    }
    async fn shopper_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<SessionLookup>, StoreError> {
        timed!(
            "shopper_sessions",
            self.inner.shopper_sessions(user_id, now, limit)
        )
    }
    async fn set_session_cart(
        &self,
        session_id: &str,
        cart_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        timed!(
            "set_session_cart",
            self.inner.set_session_cart(session_id, cart_id)
        )
    }
    async fn delete_revoked_sessions(&self, limit: u32) -> Result<DeletedRows, StoreError> {
        timed!(
            "delete_revoked_sessions",
            self.inner.delete_revoked_sessions(limit)
        )
    }
    async fn sweep_sessions(
        &self,
        after: Option<&str>,
        now: Timestamp,
        limit: u32,
    ) -> Result<SessionSweep, StoreError> {
        timed!(
            "sweep_sessions",
            self.inner.sweep_sessions(after, now, limit)
        )
    }
    async fn sweep_tokens(
        &self,
        after: Option<&TokenHash>,
        now: Timestamp,
        limit: u32,
    ) -> Result<TokenSweep, StoreError> {
        timed!("sweep_tokens", self.inner.sweep_tokens(after, now, limit))
    }
}

#[async_trait]
impl MigrationStore for MeteredStore {
    async fn count_to_move(&self, kind: MigrationKind, now: Timestamp) -> Result<u64, StoreError> {
        timed!("count_to_move", self.inner.count_to_move(kind, now))
    }
    async fn export_rows(
        &self,
        kind: MigrationKind,
        after: Option<&MigrationKey>,
        now: Timestamp,
        limit: u32,
    ) -> Result<MigrationBatch, StoreError> {
        timed!(
            "export_rows",
            self.inner.export_rows(kind, after, now, limit)
        )
    }
    async fn import_rows(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        timed!("import_rows", self.inner.import_rows(batch))
    }
    async fn count_present(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        timed!("count_present", self.inner.count_present(batch))
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn ping(&self) -> Result<(), StoreError> {
        timed!("ping", self.inner.ping())
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    fn change_signal(&self) -> Option<Arc<dyn ChangeSignal>> {
        self.inner.change_signal()
    }
}
