//! Token introspection (RFC 7662, API.md §6): an authenticated client asks whether a token
//! is active and, when it is, what it stands for.
//!
//! Who sees what: a client sees its own access and refresh tokens; a resource server (a
//! confidential client marked so, [`ClientRecord::sees_all_tokens`]) also sees every other
//! client's access tokens, which is what protected resources present to it. A refresh token
//! is only ever active to the client it was issued to: it is never sent to a resource
//! server, so one held anywhere else has leaked.
//!
//! Everything that is not active to the caller — unknown, expired, revoked, consumed, of an
//! ended session or a disabled client, another client's, malformed or forged — is the one
//! answer [`Introspection::Inactive`], so the answer never tells one case from another
//! (RFC 7662 §2.2). The MAC is checked before any store access: garbage never reaches the
//! store. A store that cannot answer is an error (503), never a guess either way: a token
//! that may have been revoked is not reported active, and a live one is not reported
//! inactive.
//!
//! [`ClientRecord::sees_all_tokens`]: crate::client::ClientRecord::sees_all_tokens

use std::sync::Arc;

use crate::client::{ClientCredentials, ClientRecord};
use crate::clock::Timestamp;
use crate::error::TokenError;
use crate::lookup_cache::one_look;
use crate::secret::Secret;
use crate::service::{TokenService, is_live};
use crate::session::TokenLookup;
use crate::token::TokenKind;

/// What introspection says about a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Introspection {
    /// The token is active and the caller may see it.
    Active(ActiveToken),
    /// Anything else: the RFC 7662 answer `{"active": false}`.
    Inactive,
}

/// The facts of an active token (RFC 7662 §2.2): its lookup, shared with the lookup cache
/// rather than copied field by field, and the shopper's username.
///
/// Nothing in the answer depends on the caller or the time, so an answer rendered from
/// one lookup serves every request the cache answers from it
/// ([`Rendered::introspection`]). Once it is kept, the shopper is not read again.
///
/// [`Rendered::introspection`]: crate::session::Rendered::introspection
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveToken {
    /// The token, its session and its client, as they were read.
    pub found: Arc<TokenLookup>,
    /// Access (`token_type` `bearer`) or refresh (`refresh_token`).
    pub kind: TokenKind,
    /// `username`: the shopper's login name, for a signed-in shopper who has one; also
    /// `None` when `found` already holds the rendered answer, which has it.
    pub username: Option<String>,
}

impl ActiveToken {
    /// `client_id`: the client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.found.token.client_id
    }

    /// `sub`: the session's user id; the client's id for a client token, whose resource
    /// owner is the client itself (RFC 6749 §4.4).
    pub fn subject(&self) -> &str {
        self.found
            .session
            .user_id
            .as_deref()
            .unwrap_or(&self.found.token.client_id)
    }

    /// `sid`: the session the token belongs to.
    pub fn session_id(&self) -> &str {
        &self.found.session.id
    }

    /// `iat`: when the token was issued.
    pub fn issued_at(&self) -> Timestamp {
        self.found.token.issued_at
    }

    /// `exp`: when it stops working (for a refresh token, its session's end).
    pub fn expires_at(&self) -> Timestamp {
        self.found.token.expires_at
    }
}

impl TokenService {
    /// `POST /oauth20/introspect`: authenticates the caller (required, RFC 7662 §2.1), then
    /// says whether `token` is active to it. `token_type_hint` is not taken: a Tessera token
    /// names its own type in its prefix, so there is nothing to search, and RFC 7662 §2.1
    /// lets the server ignore the hint.
    pub async fn introspect(
        &self,
        credentials: Option<&ClientCredentials>,
        token: Option<&Secret>,
        address: &str,
    ) -> Result<Introspection, TokenError> {
        one_look(self.introspect_once(credentials, token, address)).await
    }

    async fn introspect_once(
        &self,
        credentials: Option<&ClientCredentials>,
        token: Option<&Secret>,
        address: &str,
    ) -> Result<Introspection, TokenError> {
        let credentials = credentials.ok_or(TokenError::InvalidClient)?;
        // The MAC first, before the store is asked anything.
        let verified = token.and_then(|t| self.keys.verify(t.expose()).ok());
        let client = self
            .authenticate_rate_limited_client(credentials, address)
            .await?;
        if token.is_none_or(|t| t.expose().is_empty()) {
            return Err(TokenError::InvalidRequest("token is required"));
        }
        let Some(verified) = verified else {
            return Ok(Introspection::Inactive);
        };
        let Some(found) = self.store.lookup_token_shared(&verified.hash).await? else {
            return Ok(Introspection::Inactive);
        };
        let now = self.clock.now();
        if !visible_to(&found, verified.kind, &client) || !is_live(&found, verified.kind, now) {
            return Ok(Introspection::Inactive);
        }
        let username = match found.rendered.introspection() {
            Some(_) => None,
            None => self.username_of(&found).await?,
        };
        Ok(Introspection::Active(ActiveToken {
            kind: found.token.kind,
            found,
            username,
        }))
    }

    /// The username of a signed-in shopper's session: one more read by primary key, only
    /// for those sessions. Anonymous visitors and client tokens have none.
    async fn username_of(&self, found: &TokenLookup) -> Result<Option<String>, TokenError> {
        match (&found.session.user_id, found.session.authenticated) {
            (Some(user_id), true) => Ok(self
                .store
                .shopper(user_id)
                .await?
                .and_then(|shopper| shopper.username)),
            _ => Ok(None),
        }
    }
}

/// Whether `client` may learn about the looked-up token of kind `kind`: its own tokens
/// always; another client's access tokens when it is a resource server.
fn visible_to(found: &TokenLookup, kind: TokenKind, client: &ClientRecord) -> bool {
    let own = found.token.client_id == client.id && found.session.client_id == client.id;
    own || (kind == TokenKind::Access && client.sees_all_tokens())
}
