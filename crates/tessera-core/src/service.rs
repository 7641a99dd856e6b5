//! The token service: client authentication, grant dispatch, session lookup and
//! revocation. Handlers call one method here; this module applies the OAuth rules
//! (expiry, ownership, the logout rule of API.md §4) and asks the store.

use std::sync::Arc;

use crate::client::{ClientCredentials, ClientRecord, ClientSecretHash};
use crate::clock::{Clock, Timestamp};
use crate::error::{BearerError, TokenError};
use crate::grants::{GrantKind, TokenRequest};
use crate::id::{new_session_id, new_session_tag};
use crate::secret::Secret;
use crate::session::{SessionRecord, SessionView, TokenLookup, TokenRecord, TokenResponse};
use crate::store::Store;
use crate::token::{TokenKeys, TokenKind};

/// How often at most a session's `lastAccessed` is written: lookups must not write on
/// every read.
const LAST_ACCESSED_GRANULARITY_SECONDS: i64 = 60;

/// Settings of the token service.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// The `domain` reported with session details: the name of this node.
    pub node_name: String,
}

/// Facts about the request that the rules need, taken from the connection by the server.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The caller's address (the socket peer unless a trusted proxy says otherwise).
    pub client_ip: String,
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

/// Issues, looks up and revokes tokens.
pub struct TokenService {
    pub(crate) store: Arc<dyn Store>,
    keys: TokenKeys,
    clock: Arc<dyn Clock>,
    config: ServiceConfig,
}

impl TokenService {
    /// A service over `store`, signing with `keys`, telling time by `clock`.
    pub fn new(
        store: Arc<dyn Store>,
        keys: TokenKeys,
        clock: Arc<dyn Clock>,
        config: ServiceConfig,
    ) -> Self {
        Self {
            store,
            keys,
            clock,
            config,
        }
    }

    /// The store, for readiness checks.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Checks client credentials. An unknown client, a wrong secret, a secret sent for a
    /// public client, a missing secret for a confidential one and a disabled client all
    /// give the same [`TokenError::InvalidClient`], after the same hashing work.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<ClientRecord, TokenError> {
        let presented = credentials
            .secret
            .as_ref()
            .map(Secret::expose)
            .filter(|s| !s.is_empty());
        let client = self.store.client(&credentials.client_id).await?;
        let Some(client) = client else {
            let _ = ClientSecretHash::dummy().verify(presented.unwrap_or(""));
            return Err(TokenError::InvalidClient);
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
        if !secret_ok || client.disabled {
            return Err(TokenError::InvalidClient);
        }
        Ok(client)
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
        let client = self.authenticate_client(credentials).await?;
        match grant {
            GrantKind::Anonymous => self.grant_anonymous(&client, context).await,
            GrantKind::PartnerShopper(external_reference_id) => {
                self.grant_partner_shopper(&client, &external_reference_id, context)
                    .await
            }
            GrantKind::ClientToken => self.grant_client_token(&client, context).await,
            GrantKind::ShopperLogin | GrantKind::Refresh => Err(TokenError::UnsupportedGrantType),
        }
    }

    /// Creates a session and its first tokens in one durable write.
    pub(crate) async fn open_session(
        &self,
        client: &ClientRecord,
        seed: SessionSeed,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        let now = self.clock.now();
        let session_expires = now.plus_seconds(client.refresh_token_ttl);
        let access_expires = now
            .plus_seconds(client.access_token_ttl)
            .min(session_expires);
        let access = self.keys.mint(TokenKind::Access)?;
        let session = SessionRecord {
            id: new_session_id()?,
            client_id: client.id.clone(),
            user_id: seed.user_id,
            external_reference_id: seed.external_reference_id,
            authenticated: seed.authenticated,
            locale: seed.locale,
            currency: seed.currency,
            cart_id: None,
            client_ip: context.client_ip.clone(),
            session_tag: new_session_tag()?,
            created_at: now,
            last_accessed: now,
            expires_at: session_expires,
            newest_access: access.hash,
            revoked_at: None,
        };
        let mut tokens = vec![TokenRecord {
            hash: access.hash,
            kind: TokenKind::Access,
            session_id: session.id.clone(),
            client_id: client.id.clone(),
            issued_at: now,
            expires_at: access_expires,
            revoked_at: None,
            consumed_at: None,
        }];
        let refresh = if seed.with_refresh_token {
            let refresh = self.keys.mint(TokenKind::Refresh)?;
            tokens.push(TokenRecord {
                hash: refresh.hash,
                kind: TokenKind::Refresh,
                session_id: session.id.clone(),
                client_id: client.id.clone(),
                issued_at: now,
                expires_at: session_expires,
                revoked_at: None,
                consumed_at: None,
            });
            Some(refresh.token)
        } else {
            None
        };
        self.store.insert_session(&session, &tokens).await?;
        Ok(TokenResponse {
            access_token: access.token,
            expires_in: now.seconds_until(access_expires),
            refresh_token: refresh,
        })
    }

    /// Finds the live access token `bearer` and its session, or says why it is not usable.
    /// The MAC is checked first, so a malformed or forged token never reaches the store.
    async fn live_access_token(
        &self,
        bearer: &str,
    ) -> Result<(TokenLookup, Timestamp), BearerError> {
        let verified = self
            .keys
            .verify(bearer)
            .map_err(|_| BearerError::InvalidToken)?;
        // RFC 6750 and API.md §3: a refresh token is never a bearer token.
        if verified.kind != TokenKind::Access {
            return Err(BearerError::InvalidToken);
        }
        let found = self
            .store
            .lookup_token(&verified.hash)
            .await?
            .ok_or(BearerError::InvalidToken)?;
        let now = self.clock.now();
        if !is_live(&found, TokenKind::Access, now) {
            return Err(BearerError::InvalidToken);
        }
        Ok((found, now))
    }

    /// When client credentials come beside a `?token=` (API.md §8) they must be valid
    /// before the token is looked at.
    async fn check_caller(&self, client: Option<&ClientCredentials>) -> Result<(), BearerError> {
        match client {
            None => Ok(()),
            Some(credentials) => match self.authenticate_client(credentials).await {
                Ok(_) => Ok(()),
                Err(TokenError::Store(error)) => Err(BearerError::Store(error)),
                Err(_) => Err(BearerError::InvalidClient),
            },
        }
    }

    /// Session details of a live access token (API.md §3).
    pub async fn session(
        &self,
        bearer: &Secret,
        client: Option<&ClientCredentials>,
    ) -> Result<SessionView, BearerError> {
        self.check_caller(client).await?;
        let (found, now) = self.live_access_token(bearer.expose()).await?;
        if now.millis() - found.session.last_accessed.millis()
            >= LAST_ACCESSED_GRANULARITY_SECONDS * 1000
        {
            let store = Arc::clone(&self.store);
            let session_id = found.session.id.clone();
            tokio::spawn(async move {
                if let Err(error) = store.touch_session(&session_id, now).await {
                    // Advisory only: the next lookup after the failure tries again.
                    tracing::debug!(%error, "could not record lastAccessed");
                }
            });
        }
        Ok(self.view(found, bearer.clone(), now))
    }

    /// Revokes a live access token (API.md §4): if it is its session's newest access token
    /// the whole session ends (logout); otherwise only this token dies (rotation). Both
    /// writes are conditional, so a refresh racing the logout cannot be lost. Returns the
    /// session details as they were before.
    pub async fn revoke(
        &self,
        bearer: &Secret,
        client: Option<&ClientCredentials>,
    ) -> Result<SessionView, BearerError> {
        self.check_caller(client).await?;
        let (found, now) = self.live_access_token(bearer.expose()).await?;
        let hash = found.token.hash;
        let ended = self
            .store
            .end_session_if_newest(&found.session.id, &hash, now)
            .await?;
        if !ended && !self.store.revoke_token(&hash, now).await? {
            // Another request revoked it first; from here on it is simply not live.
            return Err(BearerError::InvalidToken);
        }
        Ok(self.view(found, bearer.clone(), now))
    }

    fn view(&self, found: TokenLookup, bearer: Secret, now: Timestamp) -> SessionView {
        let TokenLookup {
            token,
            session,
            client,
        } = found;
        SessionView {
            session_id: session.id,
            user_id: session.user_id,
            external_reference_id: session.external_reference_id,
            authenticated: session.authenticated,
            locale: session.locale,
            currency: session.currency,
            cart_id: session.cart_id,
            client_ip: session.client_ip,
            domain: self.config.node_name.clone(),
            expires_in: now.seconds_until(token.expires_at),
            theme_id: client.theme_id,
            session_tag: session.session_tag,
            created_on: session.created_at,
            last_accessed: session.last_accessed,
            access_token: bearer,
        }
    }
}

/// Whether a looked-up token may be used now as `kind`.
fn is_live(found: &TokenLookup, kind: TokenKind, now: Timestamp) -> bool {
    found.token.kind == kind
        && found.token.revoked_at.is_none()
        && found.token.consumed_at.is_none()
        && found.token.expires_at > now
        && found.session.revoked_at.is_none()
        && found.session.expires_at > now
        && !found.client.disabled
}
