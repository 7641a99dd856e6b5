//! The token service: client authentication, grant dispatch, session lookup and
//! revocation. Handlers call one method here; this module applies the OAuth rules
//! (expiry, ownership, the logout rule of API.md §4) and asks the store.

use std::sync::Arc;
use std::time::Duration;

use moka::ops::compute::{CompResult, Op};

use crate::audit::{self, SessionEnd, SessionIds};
use crate::client::{ClientCredentials, ClientRecord, ClientSecretHash};
use crate::clock::{Clock, Timestamp};
use crate::error::{BearerError, StoreError, TokenError};
use crate::grants::{GrantKind, TokenRequest};
use crate::limits::{self, ClientAuthKeys, FailureLimits, RateLimits, Refusal, RequestRate};
use crate::logout::{LoggedOut, Logout};
use crate::lookup_cache::CachingStore;
use crate::password::PasswordVerifier;
use crate::secret::Secret;
use crate::session::{SessionView, TokenLookup, TokenResponse};
use crate::shopper::ShopperRecord;
use crate::store::Store;
use crate::token::{TokenHash, TokenKeys, TokenKind};

/// How often at most a session's `lastAccessed` is written: lookups must not write on
/// every read.
const LAST_ACCESSED_GRANULARITY_SECONDS: i64 = 60;

/// The fewest sessions whose recent `lastAccessed` write is remembered, with or without a
/// lookup cache.
const RECENT_TOUCHES_MINIMUM: u64 = 1024;

/// Settings of the token service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The `domain` reported with session details: the name of this node.
    pub node_name: String,
    /// How many shopper password verifications (Argon2id, each on a blocking thread) may
    /// run at once; further logins wait their turn, so a flood of them cannot take every
    /// core from token lookups (RELIABILITY P14).
    pub password_hashing_concurrency: usize,
    /// Failed shopper logins admitted per (normalised) username in any one hour; past it,
    /// logins for that username answer 429 until the oldest failure is an hour old
    /// (RELIABILITY P12).
    pub login_failures_per_hour_per_username: u32,
    /// Failed shopper logins admitted per client and peer address, over all usernames, in
    /// any one hour (credential stuffing from one source).
    pub login_failures_per_hour_per_client_address: u32,
    /// Failed client authentications (wrong secret, unknown or disabled client) admitted
    /// per presented client id and peer address in any one hour; past it, that client id
    /// from that address answers 429 until the oldest failure is an hour old, right secret
    /// or not (RELIABILITY P12).
    pub client_auth_failures_per_hour_per_client_address: u32,
    /// Failed client authentications admitted per peer address, over all client ids, in
    /// any one hour (scanning client ids from one source).
    pub client_auth_failures_per_hour_per_address: u32,
    /// Requests admitted per authenticated client on the token, introspection and
    /// revocation endpoints; `None`: no limit.
    pub requests_per_client: Option<RequestRate>,
    /// Requests admitted per peer address on the token, introspection and revocation
    /// endpoints; `None`: no limit.
    pub requests_per_address: Option<RequestRate>,
    /// How many access-token lookups this node keeps in memory (0: none). Only a store
    /// that tells of other processes' writes gets the cache (SQLite); PostgreSQL stays
    /// strict (see [`crate::lookup_cache`]).
    pub lookup_cache_entries: u64,
}

impl ServiceConfig {
    /// Default of [`ServiceConfig::password_hashing_concurrency`].
    pub const DEFAULT_PASSWORD_HASHING_CONCURRENCY: usize = 2;
    /// Default of [`ServiceConfig::login_failures_per_hour_per_username`] (issue 3).
    pub const DEFAULT_LOGIN_FAILURES_PER_HOUR_PER_USERNAME: u32 = 100;
    /// Default of [`ServiceConfig::login_failures_per_hour_per_client_address`]: higher
    /// than the per-username limit because a storefront's back end sends every one of its
    /// shoppers' logins from one address with one client, typing mistakes included.
    pub const DEFAULT_LOGIN_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS: u32 = 1000;
    /// Default of [`ServiceConfig::client_auth_failures_per_hour_per_client_address`]: a
    /// client that knows its secret fails rarely; a hundred an hour is a misconfiguration
    /// or a guesser.
    pub const DEFAULT_CLIENT_AUTH_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS: u32 = 100;
    /// Default of [`ServiceConfig::client_auth_failures_per_hour_per_address`]: higher, as
    /// several clients may share one address (a proxy, a host of storefronts).
    pub const DEFAULT_CLIENT_AUTH_FAILURES_PER_HOUR_PER_ADDRESS: u32 = 1000;
    /// Default of [`ServiceConfig::lookup_cache_entries`].
    pub const DEFAULT_LOOKUP_CACHE_ENTRIES: u64 = 16384;

    /// Settings for a node called `node_name`, everything else at its default.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            node_name: node_name.into(),
            password_hashing_concurrency: Self::DEFAULT_PASSWORD_HASHING_CONCURRENCY,
            login_failures_per_hour_per_username:
                Self::DEFAULT_LOGIN_FAILURES_PER_HOUR_PER_USERNAME,
            login_failures_per_hour_per_client_address:
                Self::DEFAULT_LOGIN_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS,
            client_auth_failures_per_hour_per_client_address:
                Self::DEFAULT_CLIENT_AUTH_FAILURES_PER_HOUR_PER_CLIENT_ADDRESS,
            client_auth_failures_per_hour_per_address:
                Self::DEFAULT_CLIENT_AUTH_FAILURES_PER_HOUR_PER_ADDRESS,
            requests_per_client: None,
            requests_per_address: None,
            lookup_cache_entries: Self::DEFAULT_LOOKUP_CACHE_ENTRIES,
        }
    }
}

/// Facts about the request that the rules need, taken from the connection by the server.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// The caller's address (the socket peer unless a trusted proxy says otherwise).
    pub client_ip: String,
    /// A session token to join (`dr_session_token` and its aliases).
    pub session_token: Option<String>,
    /// A limited token whose anonymous session a shopper grant upgrades
    /// (`dr_limited_token`).
    pub limited_token: Option<Secret>,
}

/// What a new session starts with.
pub(crate) struct SessionSeed {
    pub user_id: Option<String>,
    pub external_reference_id: Option<String>,
    pub authenticated: bool,
    pub locale: String,
    pub currency: String,
    pub with_refresh_token: bool,
}

impl SessionSeed {
    /// A full session for a stored shopper: the shopper's locale and currency, else the
    /// client's, with a refresh token.
    pub(crate) fn for_shopper(client: &ClientRecord, shopper: ShopperRecord) -> Self {
        Self {
            user_id: Some(shopper.id),
            external_reference_id: shopper.external_reference_id,
            authenticated: true,
            locale: shopper
                .locale
                .unwrap_or_else(|| client.default_locale.clone()),
            currency: shopper
                .currency
                .unwrap_or_else(|| client.default_currency.clone()),
            with_refresh_token: true,
        }
    }
}

/// Issues, looks up and revokes tokens.
pub struct TokenService {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: TokenKeys,
    pub(crate) clock: Arc<dyn Clock>,
    config: ServiceConfig,
    /// Failed-login limits per username and per client and address.
    pub(crate) login_limits: FailureLimits,
    /// Failed client-authentication limits per client and address, and per address.
    client_auth_limits: FailureLimits,
    /// Request-rate limits of the token, introspection and revocation endpoints.
    rate_limits: RateLimits,
    /// Runs password verifications off the async runtime, a few at a time.
    pub(crate) passwords: PasswordVerifier,
    /// Sessions whose `lastAccessed` this node has written lately, with the time written:
    /// a cached lookup still shows the old time until the write lands, and must not start
    /// another write meanwhile.
    recent_touches: moka::sync::Cache<String, Timestamp>,
}

impl TokenService {
    /// A service over `store`, signing with `keys`, telling time by `clock`. With
    /// [`ServiceConfig::lookup_cache_entries`] above 0 and a store that tells of other
    /// processes' writes, lookups go through a [`CachingStore`] in front of it.
    pub fn new(
        store: Arc<dyn Store>,
        keys: TokenKeys,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        Self {
            store: CachingStore::wrap(store, config.lookup_cache_entries),
            keys,
            clock,
            recent_touches: moka::sync::Cache::builder()
                .max_capacity(config.lookup_cache_entries.max(RECENT_TOUCHES_MINIMUM))
                .time_to_live(Duration::from_secs(
                    LAST_ACCESSED_GRANULARITY_SECONDS as u64,
                ))
                .build(),
            login_limits: FailureLimits::login(&config),
            client_auth_limits: FailureLimits::client_authentication(&config),
            rate_limits: RateLimits::new(&config),
            passwords: PasswordVerifier::new(config.password_hashing_concurrency),
            config,
        }
    }

    /// The store as this service uses it (behind its lookup cache, if any): every other
    /// writer in this process must write through it, so the cache sees the write.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Checks client credentials presented from `address`. An unknown client, a wrong
    /// secret, a secret sent for a public client, a missing secret for a confidential one
    /// and a disabled client all give the same [`TokenError::InvalidClient`], after the
    /// same hashing work, and count alike against the failure limits; past those the
    /// answer is [`TokenError::TooManyAttempts`] for a known and an unknown id alike, with
    /// the right secret or not, since the limit is checked first (RELIABILITY P12, P13).
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
        address: &str,
    ) -> Result<Arc<ClientRecord>, TokenError> {
        let started = tokio::time::Instant::now();
        let client_id = &credentials.client_id;
        let limits = &self.client_auth_limits;
        let limit_keys = ClientAuthKeys::new(client_id, address);
        // A limited key is refused before the store is read, so a flood costs no I/O.
        limits
            .check_client_authentication(&limit_keys, self.clock.now())
            .map_err(|refusal| self.refuse(refusal, client_id, address))?;
        let remembered = self.store.cached_client(client_id);
        let answered_from_cache = remembered.is_some();
        let client = match remembered {
            Some(client) => client,
            None => self.store.client(client_id).await?.map(Arc::new),
        };
        // The place is reserved only now, after the read: up to the check nothing awaits,
        // so a right secret holds a place for microseconds and a client's many concurrent
        // requests never fill the window with attempts in flight. Still, no secret is
        // checked without a place, so past the limit no answer tells a right guess from a
        // wrong one.
        let attempt = limits
            .reserve_client_authentication(&limit_keys, self.clock.now())
            .map_err(|refusal| self.refuse(refusal, client_id, address))?;
        let mut checked = check_client_secret(client, credentials);
        if checked.is_none() && answered_from_cache {
            // A failure answered from the cache is checked again against the store: a
            // secret set by another node counts at once, and every failure costs one
            // store read, so a wrong secret for a known client takes as long as an
            // unknown id, whose read the cache could not spare (RELIABILITY P13).
            let fresh = self.store.fresh_client(client_id).await?.map(Arc::new);
            checked = check_client_secret(fresh, credentials);
        }
        match checked {
            Some(client) => {
                attempt.succeeded();
                Ok(client)
            }
            None => {
                attempt.failed(self.clock.now());
                // What is left of a known client's failure after the store read (decoding
                // its row, a second check) takes a few microseconds an unknown id does
                // not; answering every failure at one floor hides them (RELIABILITY P13).
                tokio::time::sleep_until(started + CLIENT_FAILURE_FLOOR).await;
                Err(TokenError::InvalidClient)
            }
        }
    }

    /// Authenticates a caller of the token, introspection or revocation endpoint under
    /// their request-rate limits: the address's before anything is checked, the client's
    /// once it is known who the client is.
    pub(crate) async fn authenticate_rate_limited_client(
        &self,
        credentials: &ClientCredentials,
        address: &str,
    ) -> Result<Arc<ClientRecord>, TokenError> {
        self.check_address_rate(&credentials.client_id, address)?;
        let client = self.authenticate_client(credentials, address).await?;
        self.check_client_rate(&client.id, address)?;
        Ok(client)
    }

    /// The request-rate limit per address.
    pub(crate) fn check_address_rate(
        &self,
        client_id: &str,
        address: &str,
    ) -> Result<(), TokenError> {
        self.rate_limits
            .check_address(address)
            .map_err(|refusal| self.refuse(refusal, client_id, address))
    }

    /// The request-rate limit per authenticated client.
    pub(crate) fn check_client_rate(
        &self,
        client_id: &str,
        address: &str,
    ) -> Result<(), TokenError> {
        self.rate_limits
            .check_client(client_id)
            .map_err(|refusal| self.refuse(refusal, client_id, address))
    }

    /// Reports a refusal and turns it into the error the caller answers with.
    pub(crate) fn refuse(&self, refusal: Refusal, client_id: &str, address: &str) -> TokenError {
        limits::report(refusal, client_id, address);
        TokenError::TooManyAttempts {
            limit: refusal.limit,
            retry_after_seconds: refusal.retry_after_seconds,
        }
    }

    /// The token endpoint: authenticates the client, selects the grant and issues tokens.
    pub async fn token(
        &self,
        credentials: Option<&ClientCredentials>,
        request: &TokenRequest,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        let grant = GrantKind::select(request)?;
        let credentials = credentials.ok_or(TokenError::InvalidClient)?;
        let client = self
            .authenticate_rate_limited_client(credentials, &context.client_ip)
            .await?;
        // A refresh continues its own session: there is nothing to join or upgrade.
        if grant == GrantKind::Refresh
            && (context.session_token.is_some() || context.limited_token.is_some())
        {
            return Err(TokenError::InvalidRequest(
                "dr_session_token and dr_limited_token are not used with refresh_token",
            ));
        }
        match grant {
            GrantKind::Anonymous => self.grant_anonymous(&client, context).await,
            GrantKind::PartnerShopper(external_reference_id) => {
                self.grant_partner_shopper(&client, &external_reference_id, context)
                    .await
            }
            GrantKind::ClientToken => self.grant_client_token(&client, context).await,
            GrantKind::Refresh => self.grant_refresh(&client, request, context).await,
            GrantKind::ShopperLogin => self.grant_shopper_login(&client, request, context).await,
        }
    }

    /// API.md §8: a shopper login that carries the anonymous session's limited token as
    /// `Authorization: Bearer` instead of client credentials. The token stands for its
    /// client and upgrades its session, as `dr_limited_token` would.
    ///
    /// Only the shopper login qualifies: its password proves who the shopper is. A
    /// partner-shopper grant names a shopper by id alone, so accepting a limited token —
    /// which lives in browsers — there would let anyone holding one become any shopper.
    pub async fn token_for_limited_bearer(
        &self,
        bearer: &Secret,
        request: &TokenRequest,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        if GrantKind::select(request)? != GrantKind::ShopperLogin {
            return Err(TokenError::InvalidClient);
        }
        if context
            .limited_token
            .as_ref()
            .is_some_and(|limited| limited != bearer)
        {
            return Err(TokenError::InvalidRequest(
                "dr_limited_token differs from the bearer token",
            ));
        }
        let (found, _) =
            self.live_access_token(bearer.expose())
                .await
                .map_err(|error| match error {
                    BearerError::Store(store) => TokenError::Store(store),
                    _ => TokenError::InvalidClient,
                })?;
        if found.session.authenticated {
            return Err(TokenError::InvalidClient);
        }
        // The token endpoint's rate limits hold whichever way the client is named.
        self.check_address_rate(&found.client.id, &context.client_ip)?;
        self.check_client_rate(&found.client.id, &context.client_ip)?;
        let context = RequestContext {
            limited_token: Some(bearer.clone()),
            ..context.clone()
        };
        self.grant_shopper_login(&found.client, request, &context)
            .await
    }

    /// Finds the live access token `bearer` and its session, or says why it is not usable.
    /// The MAC is checked first, so a malformed or forged token never reaches the store.
    pub(crate) async fn live_access_token(
        &self,
        bearer: &str,
    ) -> Result<(Arc<TokenLookup>, Timestamp), BearerError> {
        let hash = self.access_token_hash(bearer)?;
        let found = self
            .store
            .lookup_token_shared(&hash)
            .await?
            .ok_or(BearerError::InvalidToken)?;
        let now = self.clock.now();
        if !is_live(&found, TokenKind::Access, now) {
            return Err(BearerError::InvalidToken);
        }
        Ok((found, now))
    }

    /// The store hash of `bearer` once its MAC is checked; a refresh token is refused here,
    /// before the store is asked anything.
    fn access_token_hash(&self, bearer: &str) -> Result<TokenHash, BearerError> {
        let verified = self
            .keys
            .verify(bearer)
            .map_err(|_| BearerError::InvalidToken)?;
        // RFC 6750 and API.md §3: a refresh token is never a bearer token.
        if verified.kind != TokenKind::Access {
            return Err(BearerError::InvalidToken);
        }
        Ok(verified.hash)
    }

    /// When client credentials come beside a `?token=` (API.md §8) they must be valid
    /// before the token is looked at; `caller` is them and the address they came from.
    async fn check_caller(
        &self,
        caller: Option<(&ClientCredentials, &str)>,
    ) -> Result<(), BearerError> {
        match caller {
            None => Ok(()),
            Some((credentials, address)) => {
                match self.authenticate_client(credentials, address).await {
                    Ok(_) => Ok(()),
                    Err(TokenError::Store(error)) => Err(BearerError::Store(error)),
                    Err(TokenError::TooManyAttempts {
                        limit,
                        retry_after_seconds,
                    }) => Err(BearerError::TooManyAttempts {
                        limit,
                        retry_after_seconds,
                    }),
                    Err(_) => Err(BearerError::InvalidClient),
                }
            }
        }
    }

    /// Session details of a live access token (API.md §3). `caller`: the client
    /// credentials that came beside a `?token=`, and the address they came from.
    pub async fn session(
        &self,
        bearer: &Secret,
        caller: Option<(&ClientCredentials, &str)>,
    ) -> Result<SessionView<'_>, BearerError> {
        self.check_caller(caller).await?;
        let (found, now) = self.live_access_token(bearer.expose()).await?;
        if is_due(found.session.last_accessed, now) {
            self.touch(&found.session.id, now);
        }
        Ok(self.view(found, bearer.clone(), now))
    }

    /// Records a lookup time off the request path, unless this node already did within
    /// the granularity.
    fn touch(&self, session_id: &str, now: Timestamp) {
        let claimed = self
            .recent_touches
            .entry(session_id.to_owned())
            .and_compute_with(|recent| match recent {
                Some(recent) if !is_due(*recent.value(), now) => Op::Nop,
                _ => Op::Put(now),
            });
        if !matches!(
            claimed,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        ) {
            return;
        }
        let store = Arc::clone(&self.store);
        let recent_touches = self.recent_touches.clone();
        let session_id = session_id.to_owned();
        tokio::spawn(async move {
            if let Err(error) = store.touch_session(&session_id, now).await {
                // Advisory only: the next lookup after the failure tries again.
                recent_touches.invalidate(&session_id);
                tracing::debug!(%error, "could not record lastAccessed");
            }
        });
    }

    /// Revokes a live access token (API.md §4): if it is its session's newest access token
    /// the whole session ends (logout); otherwise only this token dies (rotation). Both
    /// writes are conditional, so a refresh racing the logout cannot be lost. Returns the
    /// session details as they were before. `caller` as for [`Self::session`].
    pub async fn revoke(
        &self,
        bearer: &Secret,
        caller: Option<(&ClientCredentials, &str)>,
    ) -> Result<SessionView<'_>, BearerError> {
        self.check_caller(caller).await?;
        let presented = self.access_token_hash(bearer.expose())?;
        let now = self.clock.now();
        // Unknown, dead, or ended by a concurrent logout first: from here on not live.
        let logged_out = self
            .log_out(presented, now)
            .await?
            .ok_or(BearerError::InvalidToken)?;
        Ok(self.view(Arc::new(logged_out.found), bearer.clone(), now))
    }

    /// The logout rule of API.md §4 for an access token, shared by `DELETE
    /// /oauth20/access-tokens` and RFC 7009 revocation: if it is live, the whole session
    /// ends if it is still its newest access token, otherwise only the token is revoked.
    /// `None` if it was not live, or another request ended it first.
    pub(crate) async fn log_out(
        &self,
        presented: TokenHash,
        now: Timestamp,
    ) -> Result<Option<LoggedOut>, StoreError> {
        let logged_out = self.store.log_out(&Logout { presented, now }).await?;
        if let Some(LoggedOut {
            found,
            session_ended,
        }) = &logged_out
        {
            crate::telemetry::count_logout(*session_ended);
            let ids = SessionIds::of(&found.session);
            if *session_ended {
                audit::session_revoked(SessionEnd::Logout, ids);
            } else {
                audit::token_revoked(ids);
            }
        }
        Ok(logged_out)
    }

    fn view(&self, found: Arc<TokenLookup>, bearer: Secret, now: Timestamp) -> SessionView<'_> {
        SessionView {
            expires_in: now.seconds_until(found.token.expires_at),
            found,
            domain: &self.config.node_name,
            access_token: bearer,
        }
    }
}

/// Whether a session last accessed at `last_accessed` is due a new `lastAccessed` at `now`.
fn is_due(last_accessed: Timestamp, now: Timestamp) -> bool {
    now.millis() - last_accessed.millis() >= LAST_ACCESSED_GRANULARITY_SECONDS * 1000
}

/// Whether a looked-up token may be used now as `kind`.
pub(crate) fn is_live(found: &TokenLookup, kind: TokenKind, now: Timestamp) -> bool {
    found.token.kind == kind
        && found.token.revoked_at.is_none()
        && found.token.consumed_at.is_none()
        && found.token.expires_at > now
        && session_is_live(found, now)
}

/// The least time a failed client authentication takes to answer: well above what either
/// kind of failure costs, so both are answered at the floor plus the timer's jitter.
const CLIENT_FAILURE_FLOOR: Duration = Duration::from_millis(5);

/// The client whose credentials these are, or `None` whatever the reason they are not
/// (unknown, wrong or missing secret, a secret for a public client, disabled), after the
/// same hashing work in every case.
fn check_client_secret(
    client: Option<Arc<ClientRecord>>,
    credentials: &ClientCredentials,
) -> Option<Arc<ClientRecord>> {
    let presented = credentials
        .secret
        .as_ref()
        .map(Secret::expose)
        .filter(|s| !s.is_empty());
    let Some(client) = client else {
        let _ = ClientSecretHash::dummy().verify(presented.unwrap_or(""));
        return None;
    };
    let secret_ok = match (&client.secret_hash, presented) {
        (Some(hash), Some(secret)) => hash.verify(secret),
        (Some(hash), None) => {
            let _ = hash.verify("");
            false
        }
        (None, Some(_)) => {
            let _ = ClientSecretHash::dummy().verify("");
            false
        }
        (None, None) => {
            let _ = ClientSecretHash::dummy().verify("");
            true
        }
    };
    (secret_ok && !client.disabled).then_some(client)
}

/// Whether the session of a looked-up token is still going, whatever its token's state.
pub(crate) fn session_is_live(found: &TokenLookup, now: Timestamp) -> bool {
    crate::session_admin::session_alive(
        &found.session,
        &found.client,
        found.shopper_sessions_revoked_before,
        now,
    )
}
