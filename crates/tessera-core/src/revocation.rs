//! Token revocation (RFC 7009, API.md §6): an authenticated client tells Tessera it no
//! longer needs a token.
//!
//! - An access token is revoked exactly as `DELETE /oauth20/access-tokens` revokes it (the
//!   logout rule of API.md §4): the session's newest access token ends the whole session,
//!   an older one only itself.
//! - A refresh token ends its whole session, every access and refresh token of it
//!   (RFC 7009 §2.1: revoking a refresh token invalidates the access tokens of the same
//!   grant). That holds for a refresh token already consumed by a rotation too: the client
//!   is done with the grant, and the session is what the grant is.
//! - A token that is malformed, forged, unknown, expired or already dead needs nothing done:
//!   success (RFC 7009 §2.2), so the answer says nothing about it.
//! - Another client's token is refused with `unauthorized_client` (RFC 7009 §2.1: the
//!   request is refused and the client informed) and left untouched. Resource servers have
//!   no say here: they may read other clients' tokens, never end them.
//! - The MAC is checked before any store access; a write the store cannot take is a store
//!   error (503), never a success.

use crate::audit::{self, SessionEnd, SessionIds};
use crate::client::ClientCredentials;
use crate::error::TokenError;
use crate::lookup_cache::one_look;
use crate::secret::Secret;
use crate::service::{TokenService, is_live, session_is_live};
use crate::telemetry::{Revoked, count_revoked};
use crate::token::TokenKind;

impl TokenService {
    /// `POST /oauth20/revoke`: authenticates the caller (required, RFC 7009 §2.1), then
    /// revokes `token` if it is the caller's and still does anything. `token_type_hint` is
    /// not taken: a Tessera token names its own type in its prefix, and RFC 7009 §2.1 lets
    /// the server ignore the hint, unknown values included.
    pub async fn revoke_token(
        &self,
        credentials: Option<&ClientCredentials>,
        token: Option<&Secret>,
        address: &str,
    ) -> Result<(), TokenError> {
        one_look(self.revoke_token_once(credentials, token, address)).await
    }

    async fn revoke_token_once(
        &self,
        credentials: Option<&ClientCredentials>,
        token: Option<&Secret>,
        address: &str,
    ) -> Result<(), TokenError> {
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
            return Ok(());
        };
        let Some(found) = self.store.lookup_token(&verified.hash).await? else {
            return Ok(());
        };
        if found.token.kind != verified.kind {
            // A row that does not match its token's prefix is no token of ours.
            return Ok(());
        }
        // Ownership before state, so the answer to another client's token is the same
        // whether it is live or long dead.
        if found.token.client_id != client.id || found.session.client_id != client.id {
            return Err(TokenError::UnauthorizedClient(
                "the token was issued to another client",
            ));
        }
        let now = self.clock.now();
        match verified.kind {
            TokenKind::Access => {
                if is_live(&found, TokenKind::Access, now) {
                    // `None` means a concurrent revocation won: revoked either way.
                    self.log_out(verified.hash, now).await?;
                }
            }
            TokenKind::Refresh => {
                if session_is_live(&found, now)
                    && self.store.revoke_session(&found.session.id, now).await?
                {
                    count_revoked(Revoked::Refresh);
                    audit::session_revoked(
                        SessionEnd::RefreshTokenRevoked,
                        SessionIds::of(&found.session),
                    );
                }
            }
        }
        Ok(())
    }
}
