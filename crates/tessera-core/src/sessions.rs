//! Opening sessions for the grants: a fresh session, joining the session a session token
//! is bound to, or upgrading an anonymous session to a shopper's (API.md §2 "Upgrade" and
//! "Session-aware", §8). Every change is one store transaction that re-checks its
//! precondition, so racing requests cannot both win.

use crate::audit::{self, IssuingGrant, SessionIds, SessionOrigin};
use crate::client::ClientRecord;
use crate::clock::Timestamp;
use crate::error::TokenError;
use crate::id::{new_session_id, new_session_tag};
use crate::secret::Secret;
use crate::service::{RequestContext, SessionSeed, TokenService, session_is_live};
use crate::session::{SessionRecord, TokenLookup, TokenRecord, TokenResponse};
use crate::session_token::{self, SessionTokenRecord};
use crate::token::{TokenHash, TokenKind};

/// How often a request retries after losing a race for a session token's binding.
const BINDING_ATTEMPTS: usize = 3;

/// A session's new tokens, ready for the store and for the response.
struct Issued {
    tokens: Vec<TokenRecord>,
    newest_access: TokenHash,
    response: TokenResponse,
}

/// The tokens a grant got, and the session they belong to, for the audit event.
pub(crate) struct Opened {
    response: TokenResponse,
    session_id: String,
    shopper_id: Option<String>,
    origin: SessionOrigin,
    /// The anonymous session an upgrade replaced.
    upgraded_session_id: Option<String>,
}

impl Opened {
    fn new(issued: Issued, session: &SessionRecord, origin: SessionOrigin) -> Self {
        Self {
            response: issued.response,
            session_id: session.id.clone(),
            shopper_id: session.user_id.clone(),
            origin,
            upgraded_session_id: None,
        }
    }

    /// Records the issuance in the audit stream and hands the tokens over.
    pub(crate) fn audited(
        self,
        grant: IssuingGrant,
        client: &ClientRecord,
        context: &RequestContext,
    ) -> TokenResponse {
        audit::token_issued(
            grant,
            self.origin,
            SessionIds {
                client_id: &client.id,
                session_id: &self.session_id,
                shopper_id: self.shopper_id.as_deref(),
            },
            self.upgraded_session_id.as_deref(),
            &context.client_ip,
            self.response.refresh_token.is_some(),
        );
        self.response
    }
}

impl TokenService {
    /// Opens the session a grant asks for: a new one, the one a session token names, or the
    /// anonymous session a limited token names, upgraded.
    pub(crate) async fn open_session(
        &self,
        client: &ClientRecord,
        seed: SessionSeed,
        context: &RequestContext,
    ) -> Result<Opened, TokenError> {
        let joins = context.session_token.is_some() || context.limited_token.is_some();
        if joins && seed.user_id.is_none() {
            return Err(TokenError::InvalidRequest(
                "a client token has no shopper session to join or upgrade",
            ));
        }
        match (&context.limited_token, &context.session_token) {
            (Some(_), Some(_)) => Err(TokenError::InvalidRequest(
                "send dr_limited_token or a session token, not both",
            )),
            (Some(limited), None) => self.upgrade_limited(client, seed, limited).await,
            (None, Some(presented)) => {
                self.open_with_session_token(client, seed, context, presented)
                    .await
            }
            (None, None) => {
                let now = self.clock.now();
                let session = new_session(client, &seed, &context.client_ip, now)?;
                let issued = self.issue_tokens(client, &session, seed.with_refresh_token, now)?;
                let session = SessionRecord {
                    newest_access: issued.newest_access,
                    ..session
                };
                self.store.insert_session(&session, &issued.tokens).await?;
                Ok(Opened::new(issued, &session, SessionOrigin::New))
            }
        }
    }

    /// Mints a session token for `client` (`GET /oauth20/session-token`).
    pub async fn mint_session_token(&self, client: &ClientRecord) -> Result<Secret, TokenError> {
        let now = self.clock.now();
        let minted = session_token::mint()?;
        self.store
            .insert_session_token(&SessionTokenRecord {
                hash: minted.hash,
                client_id: client.id.clone(),
                session_id: None,
                created_at: now,
                expires_at: now.plus_seconds(client.refresh_token_ttl),
            })
            .await?;
        Ok(minted.value)
    }

    /// `dr_limited_token` on a shopper grant: the anonymous session becomes the shopper's.
    async fn upgrade_limited(
        &self,
        client: &ClientRecord,
        seed: SessionSeed,
        limited: &Secret,
    ) -> Result<Opened, TokenError> {
        if !seed.authenticated {
            return Err(TokenError::InvalidRequest(
                "dr_limited_token upgrades to a shopper token, not to another limited token",
            ));
        }
        let found = self
            .live_access_token(limited.expose())
            .await
            .map_err(|error| match error {
                crate::error::BearerError::Store(store) => TokenError::Store(store),
                _ => TokenError::DrLimitedTokenInvalid,
            })?
            .0;
        if found.session.authenticated || found.client.id != client.id {
            return Err(TokenError::DrLimitedTokenInvalid);
        }
        self.upgrade(client, seed, &found)
            .await?
            .ok_or(TokenError::DrLimitedTokenInvalid)
    }

    /// Moves the anonymous session of `found` (cart, locale, currency) to the shopper in
    /// `seed`; `None` if that session ended or was upgraded meanwhile.
    async fn upgrade(
        &self,
        client: &ClientRecord,
        seed: SessionSeed,
        found: &TokenLookup,
    ) -> Result<Option<Opened>, TokenError> {
        let now = self.clock.now();
        let previous = &found.session;
        let mut session = new_session(client, &seed, &previous.client_ip, now)?;
        session.cart_id.clone_from(&previous.cart_id);
        session.locale.clone_from(&previous.locale);
        session.currency.clone_from(&previous.currency);
        let issued = self.issue_tokens(client, &session, seed.with_refresh_token, now)?;
        let session = SessionRecord {
            newest_access: issued.newest_access,
            ..session
        };
        let upgraded = self
            .store
            .upgrade_session(&previous.id, now, &session, &issued.tokens)
            .await?;
        Ok(upgraded.then(|| Opened {
            upgraded_session_id: Some(previous.id.clone()),
            ..Opened::new(issued, &session, SessionOrigin::Upgraded)
        }))
    }

    /// A grant carrying a session token: open a session bound to it, join the session it is
    /// bound to, or upgrade that session when it is anonymous and the grant is a shopper's.
    async fn open_with_session_token(
        &self,
        client: &ClientRecord,
        seed: SessionSeed,
        context: &RequestContext,
        presented: &str,
    ) -> Result<Opened, TokenError> {
        const UNKNOWN: TokenError = TokenError::InvalidGrant("unknown session token");
        let hash = session_token::hash_of(presented).ok_or(UNKNOWN)?;
        for _ in 0..BINDING_ATTEMPTS {
            let now = self.clock.now();
            let found = self
                .store
                .lookup_session_token(&hash)
                .await?
                .ok_or(UNKNOWN)?;
            if found.record.client_id != client.id || found.record.expires_at <= now {
                return Err(UNKNOWN);
            }
            let bound = found
                .bound
                .as_ref()
                .filter(|bound| session_is_live(bound, now));
            let Some(bound) = bound else {
                // Unbound, or bound to a session that has ended: start a new one.
                let session = new_session(client, &seed, &context.client_ip, now)?;
                let issued = self.issue_tokens(client, &session, seed.with_refresh_token, now)?;
                let session = SessionRecord {
                    newest_access: issued.newest_access,
                    ..session
                };
                let previous = found.record.session_id.as_deref();
                if self
                    .store
                    .insert_bound_session(&hash, previous, &session, &issued.tokens)
                    .await?
                {
                    return Ok(Opened::new(issued, &session, SessionOrigin::New));
                }
                continue;
            };
            // An anonymous grant joins an anonymous session (it has no visitor id of its
            // own yet); a shopper grant joins that shopper's session.
            let same_visitor = if seed.authenticated {
                bound.session.authenticated && bound.session.user_id == seed.user_id
            } else {
                !bound.session.authenticated
            };
            if same_visitor {
                let issued =
                    self.issue_tokens(client, &bound.session, seed.with_refresh_token, now)?;
                if self
                    .store
                    .add_session_tokens(&bound.session.id, &issued.newest_access, &issued.tokens)
                    .await?
                {
                    return Ok(Opened::new(issued, &bound.session, SessionOrigin::Joined));
                }
                continue;
            }
            if !bound.session.authenticated && seed.authenticated {
                if let Some(opened) = self.upgrade(client, seed, bound).await? {
                    return Ok(opened);
                }
                return Err(TokenError::InvalidGrant(
                    "the session token's session changed; retry",
                ));
            }
            // An anonymous request must never get into a shopper's session, nor one shopper
            // into another's.
            return Err(TokenError::InvalidGrant(
                "the session token belongs to another session",
            ));
        }
        Err(TokenError::InvalidGrant(
            "the session token's session changed; retry",
        ))
    }

    /// Mints an access token (and a refresh token when asked) for `session`.
    fn issue_tokens(
        &self,
        client: &ClientRecord,
        session: &SessionRecord,
        with_refresh_token: bool,
        now: Timestamp,
    ) -> Result<Issued, TokenError> {
        let access_expires = now
            .plus_seconds(client.access_token_ttl)
            .min(session.expires_at);
        let access = self.keys.mint(TokenKind::Access)?;
        let record = |hash, kind, expires_at| TokenRecord {
            hash,
            kind,
            session_id: session.id.clone(),
            client_id: client.id.clone(),
            issued_at: now,
            expires_at,
            revoked_at: None,
            consumed_at: None,
        };
        let mut tokens = vec![record(access.hash, TokenKind::Access, access_expires)];
        let refresh_token = if with_refresh_token {
            let refresh = self.keys.mint(TokenKind::Refresh)?;
            tokens.push(record(refresh.hash, TokenKind::Refresh, session.expires_at));
            Some(refresh.token)
        } else {
            None
        };
        Ok(Issued {
            tokens,
            newest_access: access.hash,
            response: TokenResponse {
                access_token: access.token,
                expires_in: now.seconds_until(access_expires),
                refresh_token,
            },
        })
    }
}

/// A new session for `seed`, not yet holding any token (`newest_access` is filled in once
/// its first access token is minted).
fn new_session(
    client: &ClientRecord,
    seed: &SessionSeed,
    client_ip: &str,
    now: Timestamp,
) -> Result<SessionRecord, TokenError> {
    Ok(SessionRecord {
        id: new_session_id()?,
        client_id: client.id.clone(),
        user_id: seed.user_id.clone(),
        external_reference_id: seed.external_reference_id.clone(),
        authenticated: seed.authenticated,
        locale: seed.locale.clone(),
        currency: seed.currency.clone(),
        cart_id: None,
        client_ip: client_ip.to_owned(),
        session_tag: new_session_tag()?,
        created_at: now,
        last_accessed: now,
        expires_at: now.plus_seconds(client.refresh_token_ttl),
        newest_access: TokenHash([0; 32]),
        revoked_at: None,
    })
}
