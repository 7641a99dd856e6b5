//! Operator work on sessions: "logout everywhere" for a shopper or a client, ending one
//! session, setting a session's cart id, listing a shopper's live sessions, and expiry
//! clean-up. Shared by the admin HTTP API and the `tessera session` and `tessera gc`
//! commands; each admin handler calls one [`SessionAdmin`] method.
//!
//! Logout everywhere is one write however many sessions it ends: it sets a revocation
//! watermark, and a session is dead once its `created_at` is at or before the watermark of
//! its shopper (by user id) or of its client. Every token lookup reads both watermarks with
//! the token, in the same store read. A tidy-up then marks the covered sessions revoked in
//! small batches, off the request path, so that expiry clean-up can delete them; no answer
//! depends on it having run.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{self, SessionEnd, SessionIds};
use crate::client::ClientRecord;
use crate::clock::{Clock, Timestamp};
use crate::error::{AdminError, StoreError};
use crate::secret::Secret;
use crate::session::SessionRecord;
use crate::store::Store;
use crate::telemetry::{Revoked, count_revoked};
use crate::token::TokenHash;

/// Sessions marked revoked per tidy-up transaction.
const TIDY_UP_BATCH: u32 = 500;

/// Pending tidy-ups taken on in one pass; the rest wait for the next clean-up run.
const TIDY_UPS_PER_PASS: u32 = 100;

/// Rows deleted per clean-up transaction: small, so each write transaction is short and
/// requests waiting for the single writer are not held up.
const CLEAN_UP_BATCH: u32 = 500;

/// Most tokens one background clean-up run of the server sweeps: the sweep reads every
/// token, so on a large store each run goes on from where the last one stopped instead of
/// reading the whole table every few minutes.
pub const SWEPT_PER_BACKGROUND_RUN: u64 = 1000 * CLEAN_UP_BATCH as u64;

/// Most sessions a listing returns.
const MAX_LISTED_SESSIONS: u32 = 1000;

/// Longest cart id accepted, in characters.
const MAX_CART_ID_CHARS: usize = 128;

/// Whose sessions a watermark ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionOwner {
    /// Every session whose user id is this shopper's.
    Shopper(String),
    /// Every session opened for this client.
    Client(String),
}

impl SessionOwner {
    /// `shopper` or `client`, as stores keep it.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionOwner::Shopper(_) => "shopper",
            SessionOwner::Client(_) => "client",
        }
    }

    /// The user id or client id.
    pub fn id(&self) -> &str {
        match self {
            SessionOwner::Shopper(id) | SessionOwner::Client(id) => id,
        }
    }

    /// Reads [`SessionOwner::kind`] and an id back.
    pub fn parse(kind: &str, id: String) -> Option<Self> {
        match kind {
            "shopper" => Some(SessionOwner::Shopper(id)),
            "client" => Some(SessionOwner::Client(id)),
            _ => None,
        }
    }
}

/// A watermark whose covered sessions are not all marked revoked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TidyUp {
    /// Whose sessions.
    pub owner: SessionOwner,
    /// The watermark: sessions created at or before it.
    pub before: Timestamp,
}

/// One session with what decides whether it is live: its client and its shopper's
/// watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLookup {
    /// The session row.
    pub session: SessionRecord,
    /// The client it was opened for.
    pub client: ClientRecord,
    /// The shopper's revocation watermark, by the session's user id.
    pub shopper_sessions_revoked_before: Option<Timestamp>,
}

impl SessionLookup {
    /// Whether the session is still going at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        session_alive(
            &self.session,
            &self.client,
            self.shopper_sessions_revoked_before,
            now,
        )
    }
}

/// Rows one clean-up batch deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletedRows {
    /// Sessions deleted.
    pub sessions: u64,
    /// Tokens deleted with them.
    pub tokens: u64,
}

/// What one sweep batch did, over the sessions ([`SessionSweep`]) or the tokens
/// ([`TokenSweep`]), keyed by `K`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sweep<K> {
    /// Rows looked at.
    pub examined: u64,
    /// Rows deleted: of those looked at, and the tokens a store deleted with a session.
    pub deleted: DeletedRows,
    /// The key to go on after, or `None` once the batch reached the last row.
    pub next: Option<K>,
}

/// A batch of [`SessionAdminStore::sweep_sessions`].
///
/// [`SessionAdminStore::sweep_sessions`]: crate::store::SessionAdminStore::sweep_sessions
pub type SessionSweep = Sweep<String>;

/// A batch of [`SessionAdminStore::sweep_tokens`].
///
/// [`SessionAdminStore::sweep_tokens`]: crate::store::SessionAdminStore::sweep_tokens
pub type TokenSweep = Sweep<TokenHash>;

impl<K> Sweep<K> {
    /// A batch that asked for `limit` rows, read `examined` (each key with whether it is
    /// dead, in key order) and deleted `deleted`: a full batch goes on after its last key,
    /// a shorter one reached the end.
    pub fn of_batch(examined: Vec<(K, bool)>, deleted: DeletedRows, limit: u32) -> Self {
        let count = examined.len() as u64;
        let last = examined.into_iter().last().map(|(key, _)| key);
        Self {
            examined: count,
            deleted,
            next: last.filter(|_| count >= u64::from(limit)),
        }
    }
}

/// What a clean-up run did, so far or in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanUpReport {
    /// Sessions covered by a shopper's watermark that the tidy-up marked revoked.
    pub sessions_tidied: u64,
    /// Tokens deleted: expired ones, and those of sessions that ended or are gone.
    pub tokens_deleted: u64,
    /// Sessions deleted: expired or revoked ones, and those a watermark covers.
    pub sessions_deleted: u64,
    /// Expired session tokens deleted.
    pub session_tokens_deleted: u64,
}

/// Whether a session is still going at `now`: not revoked, not expired, its client not
/// disabled, and not ended by a revocation watermark of its shopper or of its client (a
/// session created at or before a watermark is dead).
pub(crate) fn session_alive(
    session: &SessionRecord,
    client: &ClientRecord,
    shopper_sessions_revoked_before: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    let covered = |watermark: Option<Timestamp>| watermark.is_some_and(|w| session.created_at <= w);
    session.revoked_at.is_none()
        && session.expires_at > now
        && !client.disabled
        && !covered(shopper_sessions_revoked_before)
        && !covered(client.sessions_revoked_before)
}

/// The bearer token of the admin API. Only its SHA-256 is kept, and a presented token is
/// compared by its SHA-256 in constant time, so neither the content nor the length of the
/// real token shows in how long a refusal takes.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Shortest admin token accepted, in characters.
    pub const MIN_LENGTH: usize = 16;

    /// Takes a configured admin token; refuses one too short to resist guessing or holding
    /// characters an `Authorization` header cannot carry.
    pub fn new(token: &Secret) -> Result<Self, &'static str> {
        let value = token.expose();
        if value.len() < Self::MIN_LENGTH {
            return Err("the admin token must be at least 16 characters long");
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the admin token may hold only printable ASCII characters, no spaces");
        }
        Ok(Self {
            digest: Sha256::digest(value.as_bytes()).into(),
        })
    }

    /// Whether `presented` is the admin token, compared in constant time.
    pub fn verify(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(digest.ct_eq(&self.digest))
    }
}

/// Refuses cart ids that are empty, too long, or hold control characters.
fn check_cart_id(cart_id: &str) -> Result<(), AdminError> {
    if cart_id.is_empty() {
        return Err(AdminError::InvalidRequest("cartId must not be empty"));
    }
    if cart_id.chars().count() > MAX_CART_ID_CHARS {
        return Err(AdminError::InvalidRequest(
            "cartId is longer than 128 characters",
        ));
    }
    if cart_id.chars().any(char::is_control) {
        return Err(AdminError::InvalidRequest(
            "cartId must not hold control characters",
        ));
    }
    Ok(())
}

/// Whether a background tidy-up is running, and whether another was asked for meanwhile.
#[derive(Default)]
struct BackgroundTidyUp {
    running: AtomicBool,
    again: AtomicBool,
}

/// Session administration over a store.
pub struct SessionAdmin {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    background: Option<Arc<BackgroundTidyUp>>,
    /// Most sessions, and most tokens, one clean-up run sweeps; `None`: all of them.
    sweep_budget: Option<u64>,
    /// Where the next clean-up run's sweep of the sessions goes on from; `None`: the first.
    sessions_from: Mutex<Option<String>>,
    /// Where the next clean-up run's sweep of the tokens goes on from; `None`: the first.
    tokens_from: Mutex<Option<TokenHash>>,
}

impl SessionAdmin {
    /// Administration of `store`. A watermark's tidy-up runs only when
    /// [`SessionAdmin::tidy_up`] or [`SessionAdmin::clean_up`] is called (the commands do it
    /// before they exit).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            background: None,
            sweep_budget: None,
            sessions_from: Mutex::new(None),
            tokens_from: Mutex::new(None),
        }
    }

    /// Sweeps at most `rows_per_run` sessions and as many tokens per clean-up run, each
    /// run going on from where the last stopped (the server's background clean-up, with
    /// [`SWEPT_PER_BACKGROUND_RUN`]). Without it every run sweeps every session and token
    /// (`tessera gc`).
    pub fn with_bounded_sweep(mut self, rows_per_run: u64) -> Self {
        self.sweep_budget = Some(rows_per_run);
        self
    }

    /// Starts each watermark's tidy-up as a background task on the current Tokio runtime,
    /// one at a time (the server).
    pub fn with_background_tidy_up(mut self) -> Self {
        self.background = Some(Arc::new(BackgroundTidyUp::default()));
        self
    }

    /// Ends every session of the shopper with this user id, at once and with one write.
    /// Returns the watermark. [`AdminError::NotFound`] if there is no such shopper.
    pub async fn revoke_shopper_sessions(&self, user_id: &str) -> Result<Timestamp, AdminError> {
        if self.store.shopper(user_id).await?.is_none() {
            return Err(AdminError::NotFound("No shopper has this id"));
        }
        self.set_watermark(SessionOwner::Shopper(user_id.to_owned()))
            .await
    }

    /// Ends every session of this client, at once and with one write. Returns the
    /// watermark. [`AdminError::NotFound`] if there is no such client.
    pub async fn revoke_client_sessions(&self, client_id: &str) -> Result<Timestamp, AdminError> {
        self.set_watermark(SessionOwner::Client(client_id.to_owned()))
            .await
    }

    async fn set_watermark(&self, owner: SessionOwner) -> Result<Timestamp, AdminError> {
        let now = self.clock.now();
        if !self.store.revoke_sessions_before(&owner, now).await? {
            return Err(AdminError::NotFound("No client has this id"));
        }
        count_revoked(Revoked::Owner);
        audit::sessions_revoked(&owner, now);
        // A client's sessions are left to the sweep (`SessionAdminStore::sweep_sessions`).
        if matches!(owner, SessionOwner::Shopper(_)) {
            self.schedule_tidy_up();
        }
        Ok(now)
    }

    /// Ends one session, every token of it. `true` if it was live and this call ended it,
    /// `false` if it had already ended. [`AdminError::NotFound`] if there is no such
    /// session (clean-up may have deleted an ended one).
    pub async fn revoke_session(&self, session_id: &str) -> Result<bool, AdminError> {
        let found = self
            .store
            .session_by_id(session_id)
            .await?
            .ok_or(AdminError::NotFound("No session has this id"))?;
        let now = self.clock.now();
        let was_live = found.is_live(now);
        let revoked = self.store.revoke_session(session_id, now).await?;
        if was_live && revoked {
            count_revoked(Revoked::AdminSession);
            audit::session_revoked(SessionEnd::Admin, SessionIds::of(&found.session));
        }
        Ok(was_live && revoked)
    }

    /// Sets (or with `None` clears) the cart id of a live session; session details show it
    /// as `cartId`. [`AdminError::NotFound`] if there is no live session with this id.
    pub async fn set_cart(
        &self,
        session_id: &str,
        cart_id: Option<&str>,
    ) -> Result<(), AdminError> {
        if let Some(cart_id) = cart_id {
            check_cart_id(cart_id)?;
        }
        let now = self.clock.now();
        let live = self
            .store
            .session_by_id(session_id)
            .await?
            .is_some_and(|found| found.is_live(now));
        if !live || !self.store.set_session_cart(session_id, cart_id).await? {
            return Err(AdminError::NotFound("No live session has this id"));
        }
        Ok(())
    }

    /// The live sessions of the shopper with this user id, oldest first (at most 1000).
    /// [`AdminError::NotFound`] if there is no such shopper.
    pub async fn shopper_sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>, AdminError> {
        if self.store.shopper(user_id).await?.is_none() {
            return Err(AdminError::NotFound("No shopper has this id"));
        }
        let now = self.clock.now();
        let found = self
            .store
            .shopper_sessions(user_id, now, MAX_LISTED_SESSIONS)
            .await?;
        Ok(found
            .into_iter()
            .filter(|found| found.is_live(now))
            .map(|found| found.session)
            .collect())
    }

    /// Marks revoked, in small batches, the sessions covered by pending watermarks. Returns
    /// how many it marked.
    pub async fn tidy_up(&self) -> Result<u64, StoreError> {
        tidy_up(self.store.as_ref(), self.clock.as_ref()).await
    }

    /// Expiry clean-up: finishes pending tidy-ups, deletes revoked sessions, then sweeps
    /// the sessions in key order, deleting those that expired or that a watermark covers,
    /// and the tokens in key order, deleting each that expired or whose session ended or
    /// is gone; last, expired session tokens. Every batch is at most 500 rows in its own
    /// short write transaction. Consumed refresh tokens stay while their session lives, so
    /// a replay is still detected. `progress` sees the running totals after every batch.
    pub async fn clean_up(
        &self,
        mut progress: impl FnMut(&CleanUpReport) + Send,
    ) -> Result<CleanUpReport, StoreError> {
        let mut report = CleanUpReport {
            sessions_tidied: self.tidy_up().await?,
            ..CleanUpReport::default()
        };
        progress(&report);
        let now = self.clock.now();
        loop {
            let deleted = self.store.delete_revoked_sessions(CLEAN_UP_BATCH).await?;
            report.sessions_deleted += deleted.sessions;
            report.tokens_deleted += deleted.tokens;
            progress(&report);
            if deleted.sessions + deleted.tokens == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        // Sessions first: the token sweep then finds their tokens with no session.
        let store = &self.store;
        let mut count = |deleted: DeletedRows| {
            report.sessions_deleted += deleted.sessions;
            report.tokens_deleted += deleted.tokens;
            progress(&report);
        };
        self.sweep(
            &self.sessions_from,
            |after, limit| async move { store.sweep_sessions(after.as_deref(), now, limit).await },
            &mut count,
        )
        .await?;
        self.sweep(
            &self.tokens_from,
            |after, limit| async move { store.sweep_tokens(after.as_ref(), now, limit).await },
            &mut count,
        )
        .await?;
        loop {
            let deleted = self
                .store
                .delete_expired_session_tokens(now, CLEAN_UP_BATCH)
                .await?;
            report.session_tokens_deleted += deleted;
            progress(&report);
            if deleted < u64::from(CLEAN_UP_BATCH) {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(report)
    }

    /// One sweep of a clean-up run, in batches of `batch(after, limit)`: from where the
    /// last run's stopped, over at most the sweep budget's rows, recording where the next
    /// run goes on from. `deleted` sees each batch's count.
    async fn sweep<K, F, Fut>(
        &self,
        cursor: &Mutex<Option<K>>,
        mut batch: F,
        deleted: &mut impl FnMut(DeletedRows),
    ) -> Result<(), StoreError>
    where
        K: Clone,
        F: FnMut(Option<K>, u32) -> Fut,
        Fut: Future<Output = Result<Sweep<K>, StoreError>>,
    {
        let mut from = cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut swept = 0u64;
        while self.sweep_budget.is_none_or(|budget| swept < budget) {
            let left = self.sweep_budget.map_or(u64::MAX, |budget| budget - swept);
            let limit =
                u32::try_from(left.min(u64::from(CLEAN_UP_BATCH))).unwrap_or(CLEAN_UP_BATCH);
            let done = batch(from, limit).await?;
            swept += done.examined;
            deleted(done.deleted);
            from = done.next;
            if from.is_none() {
                break;
            }
            tokio::task::yield_now().await;
        }
        *cursor.lock().unwrap_or_else(PoisonError::into_inner) = from;
        Ok(())
    }

    /// Starts a background tidy-up unless one is running, in which case that one goes
    /// round once more. Does nothing without [`SessionAdmin::with_background_tidy_up`].
    fn schedule_tidy_up(&self) {
        let Some(flags) = &self.background else {
            return;
        };
        flags.again.store(true, Ordering::SeqCst);
        if flags.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let flags = Arc::clone(flags);
        let store = Arc::clone(&self.store);
        let clock = Arc::clone(&self.clock);
        tokio::spawn(async move {
            loop {
                flags.again.store(false, Ordering::SeqCst);
                match tidy_up(store.as_ref(), clock.as_ref()).await {
                    Ok(marked) => tracing::debug!(sessions = marked, "tidy-up done"),
                    // Lookups do not depend on it; the next clean-up run finishes it.
                    Err(error) => tracing::warn!(%error, "the tidy-up stopped early"),
                }
                flags.running.store(false, Ordering::SeqCst);
                if !flags.again.load(Ordering::SeqCst) || flags.running.swap(true, Ordering::SeqCst)
                {
                    break;
                }
            }
        });
    }
}

async fn tidy_up(store: &dyn Store, clock: &dyn Clock) -> Result<u64, StoreError> {
    let pending = store.pending_tidy_ups(TIDY_UPS_PER_PASS).await?;
    let mut marked = 0;
    for tidy in &pending {
        loop {
            let batch = store
                .tidy_up_batch(tidy, clock.now(), TIDY_UP_BATCH)
                .await?;
            marked += batch;
            if batch < u64::from(TIDY_UP_BATCH) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::GrantSet;
    use crate::token::TokenHash;

    const T: Timestamp = Timestamp(1_780_000_000_000);

    fn client(watermark: Option<Timestamp>) -> ClientRecord {
        ClientRecord {
            id: "c".to_owned(),
            name: "c".to_owned(),
            secret_hash: None,
            grants: GrantSet::all(),
            disabled: false,
            access_token_ttl: 60,
            refresh_token_ttl: 600,
            default_locale: "en_US".to_owned(),
            default_currency: "USD".to_owned(),
            theme_id: None,
            created_at: T,
            sessions_revoked_before: watermark,
            password_encoding: crate::client::PasswordEncoding::Plain,
            resource_server: false,
        }
    }

    fn session(created_at: Timestamp) -> SessionRecord {
        SessionRecord {
            id: "s".to_owned(),
            client_id: "c".to_owned(),
            user_id: Some("u".to_owned()),
            external_reference_id: None,
            authenticated: true,
            locale: "en_US".to_owned(),
            currency: "USD".to_owned(),
            cart_id: None,
            client_ip: "127.0.0.1".to_owned(),
            session_tag: "t".to_owned(),
            created_at,
            last_accessed: created_at,
            expires_at: created_at.plus_seconds(600),
            newest_access: TokenHash([0; 32]),
            revoked_at: None,
        }
    }

    #[test]
    fn a_session_created_at_or_before_a_watermark_is_dead() {
        let s = session(T);
        let now = T.plus_seconds(1);
        assert!(session_alive(&s, &client(None), None, now));
        // The shopper's watermark, at, after and just before the session's creation.
        assert!(!session_alive(&s, &client(None), Some(T), now));
        assert!(!session_alive(&s, &client(None), Some(now), now));
        assert!(session_alive(
            &s,
            &client(None),
            Some(Timestamp(T.0 - 1)),
            now
        ));
        // The client's watermark, the same way.
        assert!(!session_alive(&s, &client(Some(T)), None, now));
        assert!(session_alive(
            &s,
            &client(Some(Timestamp(T.0 - 1))),
            None,
            now
        ));
    }

    #[test]
    fn the_other_rules_still_apply() {
        let now = T.plus_seconds(1);
        let mut revoked = session(T);
        revoked.revoked_at = Some(now);
        assert!(!session_alive(&revoked, &client(None), None, now));
        assert!(!session_alive(
            &session(T),
            &client(None),
            None,
            T.plus_seconds(600)
        ));
        let mut disabled = client(None);
        disabled.disabled = true;
        assert!(!session_alive(&session(T), &disabled, None, now));
    }

    #[test]
    fn the_admin_token_matches_only_itself() -> Result<(), &'static str> {
        let token = AdminToken::new(&Secret::new("admin-token-0123456789"))?;
        assert!(token.verify("admin-token-0123456789"));
        assert!(!token.verify("admin-token-012345678"));
        assert!(!token.verify("admin-token-01234567890"));
        assert!(!token.verify("ADMIN-TOKEN-0123456789"));
        assert!(!token.verify(""));
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
        Ok(())
    }

    #[test]
    fn short_or_unprintable_admin_tokens_are_refused() {
        assert!(AdminToken::new(&Secret::new("short")).is_err());
        assert!(AdminToken::new(&Secret::new("with a space in the middle")).is_err());
        assert!(AdminToken::new(&Secret::new("tab\tinside-the-token-value")).is_err());
        assert!(AdminToken::new(&Secret::new("exactly-16-chars")).is_ok());
    }

    #[test]
    fn cart_ids_are_checked() {
        assert!(check_cart_id("cart-42").is_ok());
        assert!(check_cart_id("").is_err());
        assert!(check_cart_id(&"x".repeat(129)).is_err());
        assert!(check_cart_id(&"é".repeat(128)).is_ok());
        assert!(check_cart_id("cart\n42").is_err());
    }

    #[test]
    fn owners_round_trip_through_their_stored_form() {
        for owner in [
            SessionOwner::Shopper("u1".to_owned()),
            SessionOwner::Client("c1".to_owned()),
        ] {
            assert_eq!(
                SessionOwner::parse(owner.kind(), owner.id().to_owned()),
                Some(owner.clone())
            );
        }
        assert_eq!(SessionOwner::parse("robot", "x".to_owned()), None);
    }
}
