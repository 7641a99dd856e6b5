//! Shopper login (`grant_type=password` with `username` and `password`, API.md §2, RFC 6749
//! §4.3): a client allowed the `password` grant presents a shopper's username and password
//! and gets a full token and a refresh token for that shopper.
//!
//! The order of the steps is the point. The client's permission first; then the failure
//! limits (`limits`), before any store read or hashing, so a limited username costs
//! nothing; then one read by the normalised username; then one Argon2id verification off
//! the async runtime, against the dummy hash when the shopper is unknown or has no
//! password, so that every failure gives the same answer after the same work
//! (RELIABILITY P12–P14).

use crate::audit::{self, IssuingGrant};
use crate::client::{ClientRecord, Grant};
use crate::error::TokenError;
use crate::grants::TokenRequest;
use crate::service::{RequestContext, SessionSeed, TokenService};
use crate::session::TokenResponse;
use crate::shopper::{ShopperRecord, normalize_username};
use crate::telemetry::{IssuedBy, count_issued};

/// The one answer to every failed login: unknown user, user without a password, wrong
/// password, or a password that did not decode.
const LOGIN_FAILED: TokenError = TokenError::InvalidGrant("the username or password is wrong");

impl TokenService {
    pub(crate) async fn grant_shopper_login(
        &self,
        client: &ClientRecord,
        request: &TokenRequest,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        let shopper = self.authenticate_shopper(client, request, context).await?;
        let opened = self
            .open_session(client, SessionSeed::for_shopper(client, shopper), context)
            .await?;
        count_issued(IssuedBy::ShopperLogin);
        Ok(opened.audited(IssuingGrant::ShopperLogin, client, context))
    }

    /// The shopper whose username and password `request` carries, checked under the
    /// failure limits.
    pub(crate) async fn authenticate_shopper(
        &self,
        client: &ClientRecord,
        request: &TokenRequest,
        context: &RequestContext,
    ) -> Result<ShopperRecord, TokenError> {
        if !client.grants.contains(Grant::Password) {
            return Err(TokenError::UnauthorizedClient(
                "this client may not log shoppers in with a password",
            ));
        }
        let (Some(username), Some(password)) =
            (request.username.as_deref(), request.password.as_ref())
        else {
            return Err(TokenError::InvalidRequest(
                "username and password are required",
            ));
        };
        let username = normalize_username(username);
        let attempt = self
            .login_limits
            .reserve_login(&username, &client.id, &context.client_ip, self.clock.now())
            .map_err(|refusal| self.refuse(refusal, &client.id, &context.client_ip))?;
        // A store failure below drops `attempt` unsettled, which counts nothing: no
        // password was found wrong.
        let shopper = self.store.shopper_by_username(&username).await?;
        let stored = shopper.as_ref().and_then(|s| s.password_hash.clone());
        let candidate = client.password_encoding.decode(password);
        let matched = self.passwords.verify(stored, candidate).await?;
        match shopper {
            Some(shopper) if matched => {
                attempt.succeeded();
                Ok(shopper)
            }
            shopper => {
                attempt.failed(self.clock.now());
                audit::login_failed(
                    &client.id,
                    shopper.as_ref().map(|s| s.id.as_str()),
                    &context.client_ip,
                );
                Err(LOGIN_FAILED)
            }
        }
    }
}
