//! The audit event stream: one `tracing` event at `info` (`warn` for the ones that
//! suggest an attack) on the target [`TARGET`] per security-relevant outcome, emitted here
//! in the core where the outcome is known, so every entry point (HTTP, admin API, CLI) is
//! covered. Operators route the stream by its target (`RUST_LOG=tessera::audit=info`);
//! with JSON logs each event is one JSON line.
//!
//! Every event has a field `event` naming it (the constants of [`event`]) and the ids of
//! what it concerns: `client_id`, `session_id`, `shopper_id` (the session's user id, also
//! an anonymous visitor's) where known, `peer` (the caller's address) where the request
//! carries it. Never a token, a token hash, a secret, a password or a username.

use crate::clock::Timestamp;
use crate::session::SessionRecord;
use crate::session_admin::SessionOwner;

/// The `tracing` target of every audit event.
pub const TARGET: &str = "tessera::audit";

/// The names of the events, the `event` field's values.
pub mod event {
    /// A grant issued tokens for a new, joined or upgraded session.
    pub const TOKEN_ISSUED: &str = "token_issued";
    /// A refresh token was exchanged (rotated) for new tokens.
    pub const TOKEN_REFRESHED: &str = "token_refreshed";
    /// A consumed refresh token was presented again; its session was ended.
    pub const REFRESH_REUSE_DETECTED: &str = "refresh_reuse_detected";
    /// One access token was revoked; its session goes on.
    pub const TOKEN_REVOKED: &str = "token_revoked";
    /// A whole session was ended, every token of it.
    pub const SESSION_REVOKED: &str = "session_revoked";
    /// Every session of a shopper or a client created until now was ended at once.
    pub const SESSIONS_REVOKED: &str = "sessions_revoked";
    /// A shopper password login failed.
    pub const LOGIN_FAILED: &str = "login_failed";
    /// A failure or rate limit refused a request.
    pub const LIMIT_TRIPPED: &str = "limit_tripped";
}

/// The grant behind a [`event::TOKEN_ISSUED`]: its `grant` field, with the OAuth
/// `grant_type` it arrives as.
#[derive(Clone, Copy, Debug)]
pub(crate) enum IssuingGrant {
    Anonymous,
    ShopperLogin,
    PartnerShopper,
    ClientToken,
}

impl IssuingGrant {
    fn name(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::ShopperLogin => "shopper_login",
            Self::PartnerShopper => "partner_shopper",
            Self::ClientToken => "client_token",
        }
    }

    fn grant_type(self) -> &'static str {
        match self {
            Self::Anonymous | Self::ShopperLogin => "password",
            Self::PartnerShopper | Self::ClientToken => "client_credentials",
        }
    }
}

/// How the session a grant issued tokens for came about (`session` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionOrigin {
    /// A session opened by this grant.
    New,
    /// The live session a session token is bound to.
    Joined,
    /// A new shopper session replacing an anonymous one (its cart moves over).
    Upgraded,
}

impl SessionOrigin {
    fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Joined => "joined",
            Self::Upgraded => "upgraded",
        }
    }
}

/// Why a whole session ended (`scope` field of [`event::SESSION_REVOKED`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum SessionEnd {
    /// Its newest access token was revoked: logout (API.md §4, or RFC 7009).
    Logout,
    /// Its refresh token was revoked (RFC 7009).
    RefreshTokenRevoked,
    /// An operator ended it (admin API or `tessera session revoke --session`).
    Admin,
}

impl SessionEnd {
    fn name(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshTokenRevoked => "refresh_token",
            Self::Admin => "admin",
        }
    }
}

/// What the session an event concerns belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionIds<'a> {
    pub client_id: &'a str,
    pub session_id: &'a str,
    pub shopper_id: Option<&'a str>,
}

impl<'a> SessionIds<'a> {
    /// The ids of `session`.
    pub(crate) fn of(session: &'a SessionRecord) -> Self {
        Self {
            client_id: &session.client_id,
            session_id: &session.id,
            shopper_id: session.user_id.as_deref(),
        }
    }
}

/// A grant other than refresh issued tokens.
pub(crate) fn token_issued(
    grant: IssuingGrant,
    origin: SessionOrigin,
    ids: SessionIds<'_>,
    upgraded_session_id: Option<&str>,
    peer: &str,
    with_refresh_token: bool,
) {
    tracing::info!(
        target: TARGET,
        event = event::TOKEN_ISSUED,
        grant_type = grant.grant_type(),
        grant = grant.name(),
        session = origin.name(),
        client_id = ids.client_id,
        session_id = ids.session_id,
        shopper_id = ids.shopper_id,
        upgraded_session_id,
        peer,
        with_refresh_token,
        "tokens issued"
    );
}

/// A refresh token was rotated.
pub(crate) fn token_refreshed(ids: SessionIds<'_>, peer: &str) {
    tracing::info!(
        target: TARGET,
        event = event::TOKEN_REFRESHED,
        grant_type = "refresh_token",
        client_id = ids.client_id,
        session_id = ids.session_id,
        shopper_id = ids.shopper_id,
        peer,
        "refresh token rotated"
    );
}

/// A consumed refresh token came back. `session_ended` is false when the session had
/// already ended (an earlier replay, a logout).
pub(crate) fn refresh_reuse_detected(ids: SessionIds<'_>, peer: &str, session_ended: bool) {
    tracing::warn!(
        target: TARGET,
        event = event::REFRESH_REUSE_DETECTED,
        grant_type = "refresh_token",
        client_id = ids.client_id,
        session_id = ids.session_id,
        shopper_id = ids.shopper_id,
        peer,
        session_ended,
        "a consumed refresh token was presented again; session revoked"
    );
}

/// One access token, not its session's newest, was revoked.
pub(crate) fn token_revoked(ids: SessionIds<'_>) {
    tracing::info!(
        target: TARGET,
        event = event::TOKEN_REVOKED,
        scope = "token",
        client_id = ids.client_id,
        session_id = ids.session_id,
        shopper_id = ids.shopper_id,
        "access token revoked"
    );
}

/// A whole session ended for `reason`.
pub(crate) fn session_revoked(reason: SessionEnd, ids: SessionIds<'_>) {
    tracing::info!(
        target: TARGET,
        event = event::SESSION_REVOKED,
        scope = reason.name(),
        client_id = ids.client_id,
        session_id = ids.session_id,
        shopper_id = ids.shopper_id,
        "session revoked"
    );
}

/// Every session of `owner` created until `before` ended (a revocation watermark).
pub(crate) fn sessions_revoked(owner: &SessionOwner, before: Timestamp) {
    let (client_id, shopper_id) = match owner {
        SessionOwner::Client(id) => (Some(id.as_str()), None),
        SessionOwner::Shopper(id) => (None, Some(id.as_str())),
    };
    tracing::info!(
        target: TARGET,
        event = event::SESSIONS_REVOKED,
        scope = owner.kind(),
        client_id,
        shopper_id,
        revoked_before_ms = before.millis(),
        "every session created until now revoked"
    );
}

/// A shopper password login failed: unknown username, no password, or a wrong one.
/// `shopper_id` only when the username names a shopper; the username itself is never
/// logged.
pub(crate) fn login_failed(client_id: &str, shopper_id: Option<&str>, peer: &str) {
    tracing::warn!(
        target: TARGET,
        event = event::LOGIN_FAILED,
        grant_type = "password",
        client_id,
        shopper_id,
        peer,
        "shopper login failed"
    );
}

/// A failure or rate limit refused a request. `client_id` is the presented or
/// authenticated id where there is one; never a secret, and never a username, which may be
/// a shopper's e-mail address.
pub(crate) fn limit_tripped(limit: &str, client_id: &str, peer: &str, retry_after_seconds: u64) {
    tracing::warn!(
        target: TARGET,
        event = event::LIMIT_TRIPPED,
        limit,
        client_id,
        peer,
        retry_after_seconds,
        "a limit refused a request"
    );
}
