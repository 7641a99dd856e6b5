//! The refresh token exchange (API.md §2, RELIABILITY.md P8–P10): a live refresh token of
//! the asking client buys a new access token and a new refresh token for the same session,
//! and is consumed by the exchange.
//!
//! The exchange is one store operation ([`SessionStore::exchange_refresh`], rules in
//! [`crate::rotation`]): it consumes the old token only if nothing consumed or revoked it
//! first, so N parallel refreshes of one token yield at most one successor. Reuse
//! detection is strict (RFC 9700 §4.14.2): a consumed refresh token presented again — a
//! replay, or the loser of a race — revokes the whole session. Every refusal is the same
//! `invalid_grant`, so an answer never tells a forged token from another client's, a
//! consumed one or an expired one.
//!
//! [`SessionStore::exchange_refresh`]: crate::store::SessionStore::exchange_refresh

use crate::audit::{self, SessionIds};
use crate::client::{ClientRecord, Grant};
use crate::error::TokenError;
use crate::grants::TokenRequest;
use crate::rotation::{RefreshExchange, RefreshOutcome};
use crate::secret::Secret;
use crate::service::{RequestContext, TokenService};
use crate::session::TokenResponse;
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
        let now = self.clock.now();
        let access = self.keys.mint(TokenKind::Access)?;
        let refresh = self.keys.mint(TokenKind::Refresh)?;
        let exchange = RefreshExchange {
            presented: verified.hash,
            client_id: client.id.clone(),
            access_token_ttl: client.access_token_ttl,
            now,
            access: access.hash,
            refresh: refresh.hash,
        };
        match self.store.exchange_refresh(&exchange).await? {
            RefreshOutcome::Refused => Err(REFUSED),
            RefreshOutcome::ReuseDetected { session, ended } => {
                if ended {
                    count_revoked(Revoked::RefreshReuse);
                }
                audit::refresh_reuse_detected(SessionIds::of(&session), &context.client_ip, ended);
                Err(REFUSED)
            }
            RefreshOutcome::Rotated {
                session,
                access_expires_at,
            } => {
                count_issued(IssuedBy::Refresh);
                audit::token_refreshed(SessionIds::of(&session), &context.client_ip);
                Ok(TokenResponse {
                    access_token: access.token,
                    expires_in: now.seconds_until(access_expires_at),
                    refresh_token: Some(refresh.token),
                })
            }
        }
    }
}
