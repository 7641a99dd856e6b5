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

/// What one sweep batch over the tokens did ([`SessionAdminStore::sweep_tokens`]).
///
/// [`SessionAdminStore::sweep_tokens`]: crate::store::SessionAdminStore::sweep_tokens
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenSweep {
    /// Tokens looked at.
    pub examined: u64,
    /// Tokens deleted among them.
    pub deleted: u64,
    /// The key to go on after, or `None` once the batch reached the last token.
    pub next: Option<TokenHash>,
}

impl TokenSweep {
    /// A batch that asked for `limit` tokens, looked at `examined` of them, the last being
    /// `last`, and deleted `deleted`: a full batch goes on after its last key, a shorter
    /// one reached the end.
    pub fn of_batch(examined: usize, last: Option<TokenHash>, deleted: u64, limit: u32) -> Self {
        let examined = examined as u64;
        Self {
            examined,
            deleted,
            next: last.filter(|_| examined >= u64::from(limit)),
        }
    }
}

/// What a clean-up run did, so far or in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanUpReport {
    /// Sessions covered by a watermark that the tidy-up marked revoked.
    pub sessions_tidied: u64,
    /// Tokens deleted: expired ones, and those of sessions that ended or are gone.
    pub tokens_deleted: u64,
    /// Sessions deleted: expired or revoked ones.
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
    /// Most tokens one clean-up run sweeps; `None`: all of them.
    sweep_budget: Option<u64>,
    /// Where the next clean-up run's sweep goes on from; `None`: the first token.
    sweep_from: Mutex<Option<TokenHash>>,
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
            sweep_from: Mutex::new(None),
        }
    }

    /// Sweeps at most `tokens_per_run` tokens per clean-up run, each run going on from
    /// where the last stopped (the server's background clean-up, with
    /// [`SWEPT_PER_BACKGROUND_RUN`]). Without it every run sweeps every token (`tessera
    /// gc`).
    pub fn with_bounded_sweep(mut self, tokens_per_run: u64) -> Self {
        self.sweep_budget = Some(tokens_per_run);
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
        self.schedule_tidy_up();
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

    /// Expiry clean-up: finishes pending tidy-ups, then deletes, in batches of at most 500
    /// rows each in its own short write transaction, expired and revoked sessions, expired
    /// access tokens, then, in a sweep over the tokens in key order, every token that is
    /// expired or whose session ended or is gone. Consumed refresh tokens stay while their
    /// session lives, so a replay is still detected. `progress` sees the running totals
    /// after every batch.
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
        // Sessions first: the sweep then finds their tokens with no session.
        loop {
            let deleted = self.store.delete_dead_sessions(now, CLEAN_UP_BATCH).await?;
            report.sessions_deleted += deleted.sessions;
            report.tokens_deleted += deleted.tokens;
            progress(&report);
            if deleted.sessions + deleted.tokens == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        loop {
            let deleted = self
                .store
                .delete_expired_tokens(now, CLEAN_UP_BATCH)
                .await?;
            report.tokens_deleted += deleted;
            progress(&report);
            if deleted < u64::from(CLEAN_UP_BATCH) {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut from = *self
            .sweep_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut swept = 0u64;
        while self.sweep_budget.is_none_or(|budget| swept < budget) {
            let left = self.sweep_budget.map_or(u64::MAX, |budget| budget - swept);
            let limit =
                u32::try_from(left.min(u64::from(CLEAN_UP_BATCH))).unwrap_or(CLEAN_UP_BATCH);
            let batch = self.store.sweep_tokens(from.as_ref(), now, limit).await?;
            swept += batch.examined;
            report.tokens_deleted += batch.deleted;
            progress(&report);
            from = batch.next;
            if from.is_none() {
                break;
            }
            tokio::task::yield_now().await;
        }
        *self
            .sweep_from
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = from;
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
