//! Sessions and the tokens that belong to them, and the session details a lookup returns
//! (API.md §3).

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::client::ClientRecord;
use crate::clock::Timestamp;
use crate::secret::Secret;
use crate::token::{TokenHash, TokenKind};

/// A shopper's (or anonymous visitor's, or a client's own) session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's id (`sessionId`).
    pub id: String,
    /// The client the session was opened for.
    pub client_id: String,
    /// The shopper (anonymous visitors have an id too); `None` for a client token.
    pub user_id: Option<String>,
    /// The partner's id for the shopper.
    pub external_reference_id: Option<String>,
    /// A full (`true`) or limited (`false`) session.
    pub authenticated: bool,
    /// Session locale.
    pub locale: String,
    /// Session currency.
    pub currency: String,
    /// The session's cart.
    pub cart_id: Option<String>,
    /// The address the session was created from.
    pub client_ip: String,
    /// 32 lower-case hex characters, fixed for the session.
    pub session_tag: String,
    /// When the session began.
    pub created_at: Timestamp,
    /// When a token of the session was last looked up (coarse: updated at most once a
    /// minute).
    pub last_accessed: Timestamp,
    /// Absolute end of the session: no token of it outlives this.
    pub expires_at: Timestamp,
    /// The session's newest access token: deleting it logs out (API.md §4).
    pub newest_access: TokenHash,
    /// When the whole session was revoked.
    pub revoked_at: Option<Timestamp>,
}

/// One stored token (by hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 of the token string.
    pub hash: TokenHash,
    /// Access or refresh.
    pub kind: TokenKind,
    /// The session it belongs to.
    pub session_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it alone was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When a refresh token was exchanged.
    pub consumed_at: Option<Timestamp>,
}

/// What a store returns for a token hash: the token, its session and its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenLookup {
    /// The token row.
    pub token: TokenRecord,
    /// The session it belongs to.
    pub session: SessionRecord,
    /// The client it was issued to.
    pub client: ClientRecord,
    /// The revocation watermark of the session's shopper (by user id): every session of
    /// the shopper created at or before it has ended. `None` when never set.
    pub shopper_sessions_revoked_before: Option<Timestamp>,
    /// The answers, or parts of answers, that depend on these rows alone, rendered by the
    /// first request that answers from them (empty when read from the store).
    pub rendered: Rendered,
}

/// What answers make from one lookup, rendered once and reused by every request that the
/// lookup cache answers from the same lookup: the rows never change while it is served,
/// and rendering them again on every request was a large share of its cost.
///
/// A memo, not part of the lookup's value: a clone starts empty, and lookups compare equal
/// whatever either holds.
#[derive(Default)]
pub struct Rendered {
    /// The session details' parts (API.md §3).
    session_details: OnceLock<RenderedParts>,
    /// The whole active introspection answer (API.md §6), which depends on nothing else:
    /// not on the caller, and not on the time.
    introspection: OnceLock<Box<[u8]>>,
}

/// What [`Rendered`] holds: the bytes that go before and after the parts an answer makes
/// anew for each request.
#[derive(Debug)]
pub struct RenderedParts {
    /// The bytes before.
    pub head: Box<[u8]>,
    /// The bytes after.
    pub tail: Box<[u8]>,
}

impl Rendered {
    /// The session details' parts, once rendered.
    pub fn session_details(&self) -> Option<&RenderedParts> {
        self.session_details.get()
    }

    /// Keeps `parts` unless parts were kept first (by a concurrent request rendering the
    /// same rows), and returns the kept ones.
    pub fn keep_session_details(&self, parts: RenderedParts) -> &RenderedParts {
        self.session_details.get_or_init(|| parts)
    }

    /// The active introspection answer, once rendered.
    pub fn introspection(&self) -> Option<&[u8]> {
        self.introspection.get().map(AsRef::as_ref)
    }

    /// Keeps `answer` unless one was kept first, and returns the kept one.
    pub fn keep_introspection(&self, answer: Box<[u8]>) -> &[u8] {
        self.introspection.get_or_init(|| answer)
    }
}

impl Clone for Rendered {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Rendered {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Rendered {}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("session_details", &self.session_details.get().is_some())
            .field("introspection", &self.introspection.get().is_some())
            .finish()
    }
}

/// Session details as API.md §3 lists them: the token's lookup, shared with the lookup
/// cache rather than copied field by field, and what the lookup worked out of it.
#[derive(Clone, Debug)]
pub struct SessionView<'a> {
    /// The token, its session (`sessionId`, `userId`, `locale`, ...) and its client
    /// (`themeId`), as they were read.
    pub found: Arc<TokenLookup>,
    /// `domain`: the node that answered.
    pub domain: &'a str,
    /// `expiresIn`: seconds this token has left.
    pub expires_in: i64,
    /// `accessToken`: the token that was presented.
    pub access_token: Secret,
}

/// What the token endpoint returns on success (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    /// The new access token.
    pub access_token: Secret,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// The new refresh token, for shopper sessions.
    pub refresh_token: Option<Secret>,
}
