//! Refresh-token rotation as one store operation ([`SessionStore::exchange_refresh`]): the
//! store finds the presented refresh token, applies the rules here to the row it found
//! ([`RefreshExchange::decide`]), and writes what they say — nothing, the end of the
//! session (reuse), or the rotation.
//!
//! The rules stay in the core; only where they run changes. A store with a single writer
//! runs the read, the rules and the write as one job inside its write transaction, so
//! nothing can come between them and no separate read waits in front of the write. Any
//! other store takes [`exchange_in_steps`]: a read, then conditional writes that a
//! parallel exchange of the same token cannot both win.
//!
//! [`SessionStore::exchange_refresh`]: crate::store::SessionStore::exchange_refresh

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::service::is_live;
use crate::session::{SessionRecord, TokenLookup, TokenRecord};
use crate::store::SessionStore;
use crate::token::{TokenHash, TokenKind};

/// One presentation of a refresh token by an authenticated client, with the successors
/// already minted (minting is cheap, and a store running the exchange on its writer must
/// not wait for anything else).
#[derive(Clone, Debug)]
pub struct RefreshExchange {
    /// The hash of the presented refresh token (its MAC already checked).
    pub presented: TokenHash,
    /// The client presenting it.
    pub client_id: String,
    /// The client's access-token lifetime, in seconds.
    pub access_token_ttl: i64,
    /// The time of the exchange.
    pub now: Timestamp,
    /// The hash of the new access token.
    pub access: TokenHash,
    /// The hash of the new refresh token.
    pub refresh: TokenHash,
}

/// What an exchange does with the row it found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "made once per exchange and taken apart at once"
)]
pub enum RefreshStep {
    /// Not this client's live refresh token: nothing is written.
    Refuse,
    /// A consumed refresh token came back, a replay or the loser of a race: its session
    /// ends (RFC 9700 §4.14.2).
    EndSession,
    /// Consume the token and add these two to its session, `access` as the newest.
    Rotate {
        /// The new access token's row.
        access: TokenRecord,
        /// The new refresh token's row.
        refresh: TokenRecord,
    },
}

/// What an exchange did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Nothing was written: unknown, another client's, expired, revoked or of an ended
    /// session.
    Refused,
    /// The token had been consumed already; `ended` says whether this exchange ended its
    /// session (`false`: something had ended it before).
    ReuseDetected {
        /// The token's session, as read.
        session: SessionRecord,
        /// Whether this exchange ended it.
        ended: bool,
    },
    /// The token was consumed and its successors stored.
    Rotated {
        /// The token's session, as read.
        session: SessionRecord,
        /// When the new access token expires.
        access_expires_at: Timestamp,
    },
}

impl RefreshExchange {
    /// The rules of the exchange (API.md §2, RELIABILITY.md P8–P10), applied to the row
    /// the store found for [`RefreshExchange::presented`].
    pub fn decide(&self, found: &TokenLookup) -> RefreshStep {
        // Another client's token is refused untouched: presenting it must not let one
        // client consume, or end, another client's session.
        if found.token.kind != TokenKind::Refresh
            || found.token.client_id != self.client_id
            || found.session.client_id != self.client_id
        {
            return RefreshStep::Refuse;
        }
        if found.token.consumed_at.is_some() {
            return RefreshStep::EndSession;
        }
        if !is_live(found, TokenKind::Refresh, self.now) {
            return RefreshStep::Refuse;
        }
        let session = &found.session;
        let record = |hash, kind, expires_at| TokenRecord {
            hash,
            kind,
            session_id: session.id.clone(),
            client_id: self.client_id.clone(),
            issued_at: self.now,
            expires_at,
            revoked_at: None,
            consumed_at: None,
        };
        let access_expires = self
            .now
            .plus_seconds(self.access_token_ttl)
            .min(session.expires_at);
        RefreshStep::Rotate {
            access: record(self.access, TokenKind::Access, access_expires),
            // The session's absolute end does not move: rotation never extends it.
            refresh: record(self.refresh, TokenKind::Refresh, session.expires_at),
        }
    }
}

/// The exchange as a read followed by conditional writes, for stores that cannot run it
/// as one job: [`SessionStore::rotate_refresh`] consumes the token only if nothing
/// consumed or revoked it since the read, so of N parallel exchanges of one token at most
/// one rotates, and every other is a reuse.
pub async fn exchange_in_steps<S>(
    store: &S,
    exchange: &RefreshExchange,
) -> Result<RefreshOutcome, StoreError>
where
    S: SessionStore + ?Sized,
{
    let Some(found) = store.lookup_token(&exchange.presented).await? else {
        return Ok(RefreshOutcome::Refused);
    };
    match exchange.decide(&found) {
        RefreshStep::Refuse => Ok(RefreshOutcome::Refused),
        RefreshStep::Rotate { access, refresh } => {
            let rotated = store
                .rotate_refresh(&exchange.presented, exchange.now, &access, &refresh)
                .await?;
            if rotated {
                return Ok(RefreshOutcome::Rotated {
                    session: found.session,
                    access_expires_at: access.expires_at,
                });
            }
            // Consumed (or revoked) between the read and the write: a parallel exchange of
            // the same token won, so this presentation is a reuse like any other.
            end_session(store, found.session, exchange.now).await
        }
        RefreshStep::EndSession => end_session(store, found.session, exchange.now).await,
    }
}

async fn end_session<S>(
    store: &S,
    session: SessionRecord,
    now: Timestamp,
) -> Result<RefreshOutcome, StoreError>
where
    S: SessionStore + ?Sized,
{
    let ended = store.revoke_session(&session.id, now).await?;
    Ok(RefreshOutcome::ReuseDetected { session, ended })
}
