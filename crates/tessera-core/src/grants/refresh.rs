//! The refresh token exchange (API.md §2, RELIABILITY.md P8–P10): a live refresh token of
//! the asking client buys a new access token and a new refresh token for the same session,
//! and is consumed by the exchange.
//!
//! Rotation is one conditional store write ([`SessionStore::rotate_refresh`]): it consumes
//! the old token only if nothing consumed or revoked it first, so N parallel refreshes of
//! one token yield at most one successor. Reuse detection is strict (RFC 9700 §4.14.2): a
//! consumed refresh token presented again — a replay, or the loser of a race — revokes the
//! whole session. Every refusal is the same `invalid_grant`, so an answer never tells a
//! forged token from another client's, a consumed one or an expired one.
//!
//! [`SessionStore::rotate_refresh`]: crate::store::SessionStore::rotate_refresh

use crate::audit::{self, SessionIds};
use crate::client::{ClientRecord, Grant};
use crate::clock::Timestamp;
use crate::error::TokenError;
use crate::grants::TokenRequest;
use crate::secret::Secret;
use crate::service::{RequestContext, TokenService, is_live};
use crate::session::{TokenLookup, TokenRecord, TokenResponse};
use crate::telemetry::{IssuedBy, Revoked, count_issued, count_revoked};
use crate::token::TokenKind;

/// The one answer to every refresh token that cannot be exchanged.
const REFUSED: TokenError =
    TokenError::InvalidGrant("the refresh token is invalid, expired or revoked");

impl TokenService {
    pub(crate) async fn grant_refresh(
        &self,
        client: &ClientRecord,
        request: &TokenRequest,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        if !client.grants.contains(Grant::RefreshToken) {
            return Err(TokenError::UnauthorizedClient(
                "this client may not use refresh tokens",
            ));
        }
        let presented = request
            .refresh_token
            .as_ref()
            .map(Secret::expose)
            .filter(|token| !token.is_empty())
            .ok_or(TokenError::InvalidRequest("refresh_token is required"))?;
        // The MAC first: a malformed, forged or access token never reaches the store.
        let verified = self.keys.verify(presented).map_err(|_| REFUSED)?;
        if verified.kind != TokenKind::Refresh {
            return Err(REFUSED);
        }
        let found = self
            .store
            .lookup_token(&verified.hash)
            .await?
            .ok_or(REFUSED)?;
        // Another client's token is refused untouched: presenting it must not let one
        // client consume, or end, another client's session.
        if found.token.kind != TokenKind::Refresh
            || found.token.client_id != client.id
            || found.session.client_id != client.id
        {
            return Err(REFUSED);
        }
        let now = self.clock.now();
        if found.token.consumed_at.is_some() {
            return Err(self.reuse_detected(&found, context, now).await);
        }
        if !is_live(&found, TokenKind::Refresh, now) {
            return Err(REFUSED);
        }

        let session = &found.session;
        let access_expires = now
            .plus_seconds(client.access_token_ttl)
            .min(session.expires_at);
        let access = self.keys.mint(TokenKind::Access)?;
        let refresh = self.keys.mint(TokenKind::Refresh)?;
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
        let rotated = self
            .store
            .rotate_refresh(
                &verified.hash,
                now,
                &record(access.hash, TokenKind::Access, access_expires),
                // The session's absolute end does not move: rotation never extends it.
                &record(refresh.hash, TokenKind::Refresh, session.expires_at),
            )
            .await?;
        if !rotated {
            // Consumed (or revoked) between our read and our write: a parallel refresh of
            // the same token won, so this presentation is a reuse like any other.
            return Err(self.reuse_detected(&found, context, now).await);
        }
        count_issued(IssuedBy::Refresh);
        audit::token_refreshed(SessionIds::of(session), &context.client_ip);
        Ok(TokenResponse {
            access_token: access.token,
            expires_in: now.seconds_until(access_expires),
            refresh_token: Some(refresh.token),
        })
    }

    /// A consumed refresh token came back: end its session (RFC 9700 §4.14.2) and refuse.
    /// If the revocation itself cannot be written the caller gets the store error (503),
    /// never a success, and may retry the same presentation.
    async fn reuse_detected(
        &self,
        found: &TokenLookup,
        context: &RequestContext,
        now: Timestamp,
    ) -> TokenError {
        match self.store.revoke_session(&found.session.id, now).await {
            Ok(revoked) => {
                if revoked {
                    count_revoked(Revoked::RefreshReuse);
                }
                audit::refresh_reuse_detected(
                    SessionIds::of(&found.session),
                    &context.client_ip,
                    revoked,
                );
                REFUSED
            }
            Err(error) => TokenError::Store(error),
        }
    }
}
