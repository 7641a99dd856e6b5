//! A bounded in-process cache of access-token and client lookups, so that session details,
//! introspection and client authentication rarely reach the store, without ever answering from a lookup that a
//! revocation acknowledged on any node has made stale (RELIABILITY P5).
//!
//! [`CachingStore`] wraps the real store and sits under every service, so every write of
//! this process passes through it:
//!
//! - A write of this process first bumps `epoch`, then drops exactly what it may have made
//!   stale: one token's entry, every entry of one session (by ending the session's
//!   [`SessionFlag`], which each entry holds), or everything. Only then does the write
//!   return, so a lookup that starts after it cannot find the stale entry.
//! - A lookup that misses reads the store, inserts its entry unconfirmed, and confirms it
//!   only if `epoch` has not moved since before the read. A write that raced the read
//!   either moved `epoch` first (the entry is never confirmed, so never served) or drops
//!   the entry after it was inserted.
//! - Client lookups are confirmed the same way against `client_epoch`, which only the
//!   writes that may change a client move (and everything `epoch` is moved by a clear):
//!   with one epoch for both, a client read that any token write overtook, as one always
//!   does under a steady stream of rotations and revocations, was never confirmed, and
//!   every client authentication read the store.
//! - Shoppers found by external reference id (the partner-shopper grant) are kept without
//!   any of this: a shopper row never changes once written (the store has no way to
//!   change or delete one), so a shopper read once stays true. Absences are not kept: a
//!   shopper created later must be found at once.
//! - Writes of other processes are learnt from [`ChangeSignal::foreign_changes`], asked at
//!   the start of every lookup: when it has grown, everything is dropped before the lookup
//!   answers. A store that cannot tell gets no cache (see [`CachingStore::wrap`]).
//! - A request that reads the cache more than once (a client, then a token or a shopper)
//!   asks only before its first read, when it runs inside [`one_look`]: a write
//!   acknowledged by another process after that look is concurrent with the request, and
//!   one acknowledged before the request arrived is seen by the look, which comes after.

use std::cell::Cell;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use metrics::Counter;
use quick_cache::Equivalent;

use crate::client::{ClientRecord, ClientSecretHash};
use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::logout::{LoggedOut, Logout};
use crate::migration::{MigrationBatch, MigrationKey, MigrationKind, MigrationStore};
use crate::rotation::{RefreshExchange, RefreshOutcome};
use crate::session::{SessionRecord, TokenLookup, TokenRecord};
use crate::session_admin::{
    DeletedRows, SessionLookup, SessionOwner, SessionSweep, TidyUp, TokenSweep,
};
use crate::session_token::{SessionTokenLookup, SessionTokenRecord};
use crate::shopper::ShopperRecord;
use crate::store::{
    ChangeSignal, ClientStore, SessionAdminStore, SessionJoinStore, SessionStore, ShopperStore,
    Store,
};
use crate::token::{TokenHash, TokenKind};

tokio::task_local! {
    /// Inside [`one_look`]: whether the request has asked about other processes' writes.
    static LOOKED: Cell<bool>;
}

/// Runs one request's store calls with one look at other processes' writes, before its
/// first cached read, instead of one before each (see the module's notes).
pub(crate) async fn one_look<F: Future>(request: F) -> F::Output {
    LOOKED.scope(Cell::new(false), request).await
}

/// How long an entry may be served at most, whatever happens: a bound on the damage of a
/// write that reached the store by a path this cache does not see.
const ENTRY_TIME_TO_LIVE: Duration = Duration::from_secs(60);

/// Counter of lookups, labelled `result` = `hit` or `miss`.
const REQUESTS_METRIC: &str = "tessera_lookup_cache_requests_total";
/// Counter of client lookups (client authentication), labelled `result` = `hit` or `miss`.
const CLIENT_REQUESTS_METRIC: &str = "tessera_client_cache_requests_total";
/// Client ids longer than this are read through without caching: real ids are 32
/// characters, and longer keys would only let a caller spend the cache's memory.
const MAX_CACHED_CLIENT_ID_LEN: usize = 128;
/// Counter of shopper lookups by external reference id (the partner-shopper grant),
/// labelled `result` = `hit` or `miss`.
const SHOPPER_REQUESTS_METRIC: &str = "tessera_shopper_cache_requests_total";
/// External reference ids longer than this are read through without caching, as client
/// ids are.
const MAX_CACHED_REFERENCE_LEN: usize = 128;
/// Counter of whole-cache clears, labelled `cause` = `foreign` (another process wrote) or
/// `global` (a write of this process that may touch any session).
const CLEARS_METRIC: &str = "tessera_lookup_cache_clears_total";

/// Whether a session may have changed since the entries holding this flag were read.
/// Once ended, a flag stays ended: its entries are never served again.
struct SessionFlag {
    ended: AtomicBool,
}

impl SessionFlag {
    fn new() -> Self {
        Self {
            ended: AtomicBool::new(false),
        }
    }
}

/// One cached lookup.
struct Entry {
    lookup: Arc<TokenLookup>,
    session_flag: Arc<SessionFlag>,
    /// Set once no write can have raced the read that produced `lookup`; unconfirmed
    /// entries are never served.
    confirmed: AtomicBool,
}

/// One cached client lookup. Absent clients are cached too, so that an unknown id is
/// answered as fast as a known one once either is cached (RELIABILITY P13).
struct ClientEntry {
    client: Option<Arc<ClientRecord>>,
    /// As [`Entry::confirmed`].
    confirmed: AtomicBool,
}

/// What a write of this process may have made stale.
enum Stale<'a> {
    /// One token's row.
    Token(&'a TokenHash),
    /// One session's row, seen by every token of it.
    Session(&'a str),
    /// One client's lookup (a new client replacing a cached absence).
    Client(&'a str),
    /// Possibly any lookup.
    Everything,
}

/// The real store, with lookups of access tokens cached; every call is forwarded.
pub struct CachingStore {
    inner: Arc<dyn Store>,
    signal: Arc<dyn ChangeSignal>,
    entries: Bounded<TokenHash, Arc<Entry>>,
    sessions: Bounded<String, Arc<SessionFlag>>,
    clients: Bounded<String, Arc<ClientEntry>>,
    /// Shoppers by external reference id.
    shoppers: Bounded<String, Arc<ShopperRecord>>,
    /// Moved by every write of this process (and every foreign change seen) before it
    /// invalidates; a lookup confirms its entry only if this did not move during its read.
    epoch: AtomicU64,
    /// As `epoch`, for client lookups: moved only by the writes that may change a client.
    client_epoch: AtomicU64,
    /// The last [`ChangeSignal::foreign_changes`] answer acted upon.
    seen_foreign: AtomicU64,
    /// `tessera_lookup_cache_requests_total`.
    token_lookups: HitsAndMisses,
    /// `tessera_client_cache_requests_total`.
    client_lookups: HitsAndMisses,
    /// `tessera_shopper_cache_requests_total`.
    shopper_lookups: HitsAndMisses,
}

/// The `hit` and `miss` counters of one cache, found by name once, on first use, rather
/// than on every lookup: finding a counter by name takes a lock of the recorder's that
/// every worker thread shares. First use comes after the process has installed its
/// recorder (the server installs it before it opens the store).
struct HitsAndMisses {
    name: &'static str,
    counters: OnceLock<[Counter; 2]>,
}

impl HitsAndMisses {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            counters: OnceLock::new(),
        }
    }

    fn hit(&self) {
        self.counters()[0].increment(1);
    }

    fn miss(&self) {
        self.counters()[1].increment(1);
    }

    fn counters(&self) -> &[Counter; 2] {
        self.counters.get_or_init(|| {
            [
                metrics::counter!(self.name, "result" => "hit"),
                metrics::counter!(self.name, "result" => "miss"),
            ]
        })
    }
}

impl CachingStore {
    /// `store` with a lookup cache of at most `entries` tokens in front, when `entries` is
    /// not 0 and the store tells of other processes' writes; otherwise `store` itself.
    pub fn wrap(store: Arc<dyn Store>, entries: u64) -> Arc<dyn Store> {
        match store.change_signal() {
            Some(signal) if entries > 0 => Arc::new(Self::new(store, signal, entries)),
            _ => store,
        }
    }

    fn new(inner: Arc<dyn Store>, signal: Arc<dyn ChangeSignal>, capacity: u64) -> Self {
        let seen_foreign = signal.foreign_changes();
        Self {
            inner,
            signal,
            entries: Bounded::new(capacity),
            sessions: Bounded::new(capacity),
            clients: Bounded::new(capacity),
            shoppers: Bounded::new(capacity),
            epoch: AtomicU64::new(0),
            client_epoch: AtomicU64::new(0),
            seen_foreign: AtomicU64::new(seen_foreign),
            token_lookups: HitsAndMisses::new(REQUESTS_METRIC),
            client_lookups: HitsAndMisses::new(CLIENT_REQUESTS_METRIC),
            shopper_lookups: HitsAndMisses::new(SHOPPER_REQUESTS_METRIC),
        }
    }

    /// Drops everything if another process has written since the last look; inside
    /// [`one_look`], only at the request's first read.
    fn check_foreign(&self) {
        let looked_already = LOOKED
            .try_with(|looked| looked.replace(true))
            .unwrap_or(false);
        if looked_already {
            return;
        }
        let foreign = self.signal.foreign_changes();
        if foreign != self.seen_foreign.load(Ordering::SeqCst) {
            self.clear(ClearCause::Foreign);
            // Stored only after the clear, so whoever sees this value sees the clear done.
            self.seen_foreign.store(foreign, Ordering::SeqCst);
        }
    }

    fn clear(&self, cause: ClearCause) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.client_epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
        self.sessions.invalidate_all();
        self.clients.invalidate_all();
        self.shoppers.invalidate_all();
        metrics::counter!(CLEARS_METRIC, "cause" => cause.label()).increment(1);
    }

    /// The cached lookup of `hash`, if it may be served.
    fn hit(&self, hash: &TokenHash) -> Option<Arc<TokenLookup>> {
        let entry = self.entries.get(hash)?;
        if !entry.confirmed.load(Ordering::SeqCst)
            || entry.session_flag.ended.load(Ordering::SeqCst)
        {
            return None;
        }
        // The flag may have been evicted or replaced since: then it can no longer be
        // ended by a write, and the entry must not be trusted.
        let current = self.sessions.get(&entry.lookup.session.id)?;
        Arc::ptr_eq(&current, &entry.session_flag).then(|| Arc::clone(&entry.lookup))
    }

    /// Caches a lookup read when `epoch` was `epoch_before_read`.
    fn remember(&self, hash: TokenHash, lookup: &Arc<TokenLookup>, epoch_before_read: u64) {
        let session_flag = self
            .sessions
            .get_with(lookup.session.id.clone(), || Arc::new(SessionFlag::new()));
        let entry = Arc::new(Entry {
            lookup: Arc::clone(lookup),
            session_flag,
            confirmed: AtomicBool::new(false),
        });
        self.entries.insert(hash, Arc::clone(&entry));
        if !Self::confirm(&self.epoch, &entry.confirmed, epoch_before_read) {
            self.entries.invalidate(&hash);
        }
    }

    /// Confirms an entry just inserted from a read that began when `epoch` was
    /// `epoch_before_read`, unless a write moved it meanwhile; `false` then: the caller
    /// drops the entry, which may be stale.
    fn confirm(epoch: &AtomicU64, confirmed: &AtomicBool, epoch_before_read: u64) -> bool {
        let unraced = epoch.load(Ordering::SeqCst) == epoch_before_read;
        if unraced {
            confirmed.store(true, Ordering::SeqCst);
        }
        unraced
    }

    /// After a write of this process, whatever its outcome (an error may still have
    /// written): moves the epoch, then drops what the write may have made stale.
    fn written(&self, stale: Stale<'_>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match stale {
            Stale::Token(hash) => self.entries.invalidate(hash),
            Stale::Session(session_id) => {
                if let Some(flag) = self.sessions.get(session_id) {
                    flag.ended.store(true, Ordering::SeqCst);
                }
                self.sessions.invalidate(session_id);
            }
            Stale::Client(id) => {
                self.client_epoch.fetch_add(1, Ordering::SeqCst);
                self.clients.invalidate(id);
            }
            Stale::Everything => self.clear(ClearCause::Global),
        }
    }

    /// Forwards a write, then invalidates.
    async fn write<T>(
        &self,
        stale: Stale<'_>,
        result: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = result.await;
        self.written(stale);
        result
    }
}

/// A bounded concurrent map (`quick_cache`, S3-FIFO eviction) whose entries are served
/// for [`ENTRY_TIME_TO_LIVE`] at most. A hit costs a hash, a shard's read lock and one
/// atomic bit, where `moka` queued every read for its eviction bookkeeping: its two reads
/// per lookup were 6% of the server's CPU in `session`. An expired entry is only skipped;
/// it stays until it is replaced or evicted, within the same bound.
struct Bounded<K, V> {
    cache: quick_cache::sync::Cache<K, (Instant, V)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: u64) -> Self {
        Self {
            cache: quick_cache::sync::Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
        }
    }

    fn get<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        let (born, value) = self.cache.get(key)?;
        (born.elapsed() < ENTRY_TIME_TO_LIVE).then_some(value)
    }

    fn insert(&self, key: K, value: V) {
        self.cache.insert(key, (Instant::now(), value));
    }

    /// The live value of `key`, or `init()` inserted in its place; concurrent callers for
    /// one missing key all get the value the first of them inserted.
    fn get_with(&self, key: K, init: impl Fn() -> V) -> V {
        let Ok((born, value)) = self.cache.get_or_insert_with(&key, || {
            Ok::<_, std::convert::Infallible>((Instant::now(), init()))
        });
        if born.elapsed() < ENTRY_TIME_TO_LIVE {
            return value;
        }
        let value = init();
        self.insert(key, value.clone());
        value
    }

    fn invalidate<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) {
        self.cache.remove(key);
    }

    fn invalidate_all(&self) {
        self.cache.clear();
    }
}

#[derive(Clone, Copy)]
enum ClearCause {
    Foreign,
    Global,
}

impl ClearCause {
    fn label(self) -> &'static str {
        match self {
            ClearCause::Foreign => "foreign",
            ClearCause::Global => "global",
        }
    }
}

#[async_trait]
impl ClientStore for CachingStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        self.write(Stale::Client(&client.id), self.inner.insert_client(client))
            .await
    }
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        if let Some(remembered) = self.cached_client(id) {
            return Ok(remembered.map(Arc::unwrap_or_clone));
        }
        if id.len() > MAX_CACHED_CLIENT_ID_LEN {
            return self.inner.client(id).await;
        }
        self.client_lookups.miss();
        let epoch_before_read = self.client_epoch.load(Ordering::SeqCst);
        let found = self.inner.client(id).await?;
        let entry = Arc::new(ClientEntry {
            client: found.clone().map(Arc::new),
            confirmed: AtomicBool::new(false),
        });
        self.clients.insert(id.to_owned(), Arc::clone(&entry));
        if !Self::confirm(&self.client_epoch, &entry.confirmed, epoch_before_read) {
            self.clients.invalidate(id);
        }
        Ok(found)
    }
    fn cached_client(&self, id: &str) -> Option<Option<Arc<ClientRecord>>> {
        if id.len() > MAX_CACHED_CLIENT_ID_LEN {
            return None;
        }
        self.check_foreign();
        let entry = self.clients.get(id)?;
        if !entry.confirmed.load(Ordering::SeqCst) {
            return None;
        }
        self.client_lookups.hit();
        Some(entry.client.clone())
    }
    async fn fresh_client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.clients.invalidate(id);
        self.client(id).await
    }
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        self.inner.clients().await
    }
    async fn set_client_secret(
        &self,
        id: &str,
        secret: &ClientSecretHash,
    ) -> Result<bool, StoreError> {
        self.write(Stale::Everything, self.inner.set_client_secret(id, secret))
            .await
    }
    async fn set_client_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        self.write(
            Stale::Everything,
            self.inner.set_client_disabled(id, disabled),
        )
        .await
    }
}

#[async_trait]
impl ShopperStore for CachingStore {
    async fn insert_shopper(&self, shopper: &ShopperRecord) -> Result<(), StoreError> {
        self.inner.insert_shopper(shopper).await
    }
    async fn shopper(&self, id: &str) -> Result<Option<ShopperRecord>, StoreError> {
        self.inner.shopper(id).await
    }
    async fn shopper_by_external_reference(
        &self,
        external_reference_id: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        if external_reference_id.len() > MAX_CACHED_REFERENCE_LEN {
            return self
                .inner
                .shopper_by_external_reference(external_reference_id)
                .await;
        }
        self.check_foreign();
        if let Some(shopper) = self.shoppers.get(external_reference_id) {
            self.shopper_lookups.hit();
            return Ok(Some(ShopperRecord::clone(&shopper)));
        }
        self.shopper_lookups.miss();
        let found = self
            .inner
            .shopper_by_external_reference(external_reference_id)
            .await?;
        if let Some(shopper) = &found {
            self.shoppers
                .insert(external_reference_id.to_owned(), Arc::new(shopper.clone()));
        }
        Ok(found)
    }
    async fn shopper_by_username(
        &self,
        username: &str,
    ) -> Result<Option<ShopperRecord>, StoreError> {
        self.inner.shopper_by_username(username).await
    }
}

#[async_trait]
impl SessionStore for CachingStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<(), StoreError> {
        self.inner.insert_session(session, tokens).await
    }
    async fn lookup_token(&self, hash: &TokenHash) -> Result<Option<TokenLookup>, StoreError> {
        Ok(self
            .lookup_token_shared(hash)
            .await?
            .map(Arc::unwrap_or_clone))
    }
    async fn lookup_token_shared(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<Arc<TokenLookup>>, StoreError> {
        self.check_foreign();
        if let Some(lookup) = self.hit(hash) {
            self.token_lookups.hit();
            return Ok(Some(lookup));
        }
        self.token_lookups.miss();
        let epoch_before_read = self.epoch.load(Ordering::SeqCst);
        let found = self.inner.lookup_token(hash).await?.map(Arc::new);
        if let Some(lookup) = &found
            && lookup.token.kind == TokenKind::Access
        {
            self.remember(*hash, lookup, epoch_before_read);
        }
        Ok(found)
    }
    async fn end_session_if_newest(
        &self,
        session_id: &str,
        access: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(
            Stale::Session(session_id),
            self.inner.end_session_if_newest(session_id, access, now),
        )
        .await
    }
    async fn revoke_token(&self, hash: &TokenHash, now: Timestamp) -> Result<bool, StoreError> {
        self.write(Stale::Token(hash), self.inner.revoke_token(hash, now))
            .await
    }
    async fn touch_session(&self, session_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.write(
            Stale::Session(session_id),
            self.inner.touch_session(session_id, now),
        )
        .await
    }
    async fn revoke_session(&self, session_id: &str, now: Timestamp) -> Result<bool, StoreError> {
        self.write(
            Stale::Session(session_id),
            self.inner.revoke_session(session_id, now),
        )
        .await
    }
    async fn rotate_refresh(
        &self,
        consumed: &TokenHash,
        now: Timestamp,
        access: &TokenRecord,
        refresh: &TokenRecord,
    ) -> Result<bool, StoreError> {
        let result = self
            .inner
            .rotate_refresh(consumed, now, access, refresh)
            .await;
        // The consumed token, and the session whose newest access token moved.
        self.written(Stale::Token(consumed));
        self.written(Stale::Session(&access.session_id));
        result
    }
    async fn exchange_refresh(
        &self,
        exchange: &RefreshExchange,
    ) -> Result<RefreshOutcome, StoreError> {
        let result = self.inner.exchange_refresh(exchange).await;
        match &result {
            Ok(RefreshOutcome::Refused) => {}
            Ok(RefreshOutcome::ReuseDetected { session, .. }) => {
                self.written(Stale::Session(&session.id));
            }
            Ok(RefreshOutcome::Rotated { session, .. }) => {
                self.written(Stale::Token(&exchange.presented));
                self.written(Stale::Session(&session.id));
            }
            // An error may still have written (a commit whose fsync failed), to a session
            // only the store had read.
            Err(_) => self.written(Stale::Everything),
        }
        result
    }
    async fn log_out(&self, logout: &Logout) -> Result<Option<LoggedOut>, StoreError> {
        let result = self.inner.log_out(logout).await;
        match &result {
            Ok(None) => {}
            Ok(Some(LoggedOut {
                found,
                session_ended: true,
            })) => self.written(Stale::Session(&found.session.id)),
            Ok(Some(LoggedOut {
                session_ended: false,
                ..
            })) => self.written(Stale::Token(&logout.presented)),
            // As for the exchange: a failed commit may have ended a session only the store
            // had read.
            Err(_) => self.written(Stale::Everything),
        }
        result
    }
}

#[async_trait]
impl SessionJoinStore for CachingStore {
    async fn insert_session_token(&self, record: &SessionTokenRecord) -> Result<(), StoreError> {
        self.inner.insert_session_token(record).await
    }
    async fn lookup_session_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionTokenLookup>, StoreError> {
        self.inner.lookup_session_token(hash).await
    }
    async fn insert_bound_session(
        &self,
        hash: &TokenHash,
        previous: Option<&str>,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        // Moves a session token's binding and adds a new session: no looked-up row changes.
        self.inner
            .insert_bound_session(hash, previous, session, tokens)
            .await
    }
    async fn add_session_tokens(
        &self,
        session_id: &str,
        newest_access: &TokenHash,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        self.write(
            Stale::Session(session_id),
            self.inner
                .add_session_tokens(session_id, newest_access, tokens),
        )
        .await
    }
    async fn upgrade_session(
        &self,
        previous: &str,
        now: Timestamp,
        session: &SessionRecord,
        tokens: &[TokenRecord],
    ) -> Result<bool, StoreError> {
        self.write(
            Stale::Session(previous),
            self.inner.upgrade_session(previous, now, session, tokens),
        )
        .await
    }
    async fn delete_expired_session_tokens(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner.delete_expired_session_tokens(now, limit).await
    }
    async fn set_session_preferences(
        &self,
        session_id: &str,
        locale: Option<&str>,
        currency: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write(
            Stale::Session(session_id),
            self.inner
                .set_session_preferences(session_id, locale, currency),
        )
        .await
    }
}

#[async_trait]
impl SessionAdminStore for CachingStore {
    async fn revoke_sessions_before(
        &self,
        owner: &SessionOwner,
        before: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(
            Stale::Everything,
            self.inner.revoke_sessions_before(owner, before),
        )
        .await
    }
    async fn pending_tidy_ups(&self, limit: u32) -> Result<Vec<TidyUp>, StoreError> {
        self.inner.pending_tidy_ups(limit).await
    }
    async fn tidy_up_batch(
        &self,
        tidy_up: &TidyUp,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.write(
            Stale::Everything,
            self.inner.tidy_up_batch(tidy_up, now, limit),
        )
        .await
    }
    async fn session_by_id(&self, session_id: &str) -> Result<Option<SessionLookup>, StoreError> {
        self.inner.session_by_id(session_id).await
    }
    async fn shopper_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<SessionLookup>, StoreError> {
        self.inner.shopper_sessions(user_id, now, limit).await
    }
    async fn set_session_cart(
        &self,
        session_id: &str,
        cart_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write(
            Stale::Session(session_id),
            self.inner.set_session_cart(session_id, cart_id),
        )
        .await
    }
    // Clean-up deletes only rows that are already dead (expired, revoked, or covered by a
    // watermark), which every lookup of them, cached or not, already says.
    async fn delete_revoked_sessions(&self, limit: u32) -> Result<DeletedRows, StoreError> {
        self.inner.delete_revoked_sessions(limit).await
    }
    async fn sweep_sessions(
        &self,
        after: Option<&str>,
        now: Timestamp,
        limit: u32,
    ) -> Result<SessionSweep, StoreError> {
        self.inner.sweep_sessions(after, now, limit).await
    }
    async fn sweep_tokens(
        &self,
        after: Option<&TokenHash>,
        now: Timestamp,
        limit: u32,
    ) -> Result<TokenSweep, StoreError> {
        // Only dead tokens go: no lookup that may be served can become stale.
        self.inner.sweep_tokens(after, now, limit).await
    }
}

#[async_trait]
impl MigrationStore for CachingStore {
    async fn count_to_move(&self, kind: MigrationKind, now: Timestamp) -> Result<u64, StoreError> {
        self.inner.count_to_move(kind, now).await
    }
    async fn export_rows(
        &self,
        kind: MigrationKind,
        after: Option<&MigrationKey>,
        now: Timestamp,
        limit: u32,
    ) -> Result<MigrationBatch, StoreError> {
        self.inner.export_rows(kind, after, now, limit).await
    }
    async fn import_rows(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        self.write(Stale::Everything, self.inner.import_rows(batch))
            .await
    }
    async fn count_present(&self, batch: &MigrationBatch) -> Result<u64, StoreError> {
        self.inner.count_present(batch).await
    }
}

#[async_trait]
impl Store for CachingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    fn change_signal(&self) -> Option<Arc<dyn ChangeSignal>> {
        Some(Arc::clone(&self.signal))
    }
}
