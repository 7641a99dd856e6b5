//! The client token (RFC 6749 §4.4): a confidential client's token for itself, with no
//! shopper and, as §4.4.3 advises, no refresh token.

use crate::audit::IssuingGrant;
use crate::client::{ClientRecord, Grant};
use crate::error::TokenError;
use crate::service::{RequestContext, SessionSeed, TokenService};
use crate::session::TokenResponse;
use crate::telemetry::{IssuedBy, count_issued};

impl TokenService {
    pub(crate) async fn grant_client_token(
        &self,
        client: &ClientRecord,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        // RFC 6749 §4.4: only confidential clients may use client_credentials.
        if client.is_public() || !client.grants.contains(Grant::ClientCredentials) {
            return Err(TokenError::UnauthorizedClient(
                "only confidential clients allowed client_credentials may request client tokens",
            ));
        }
        let seed = SessionSeed {
            user_id: None,
            external_reference_id: None,
            authenticated: true,
            locale: client.default_locale.clone(),
            currency: client.default_currency.clone(),
            with_refresh_token: false,
        };
        let opened = self.open_session(client, seed, context).await?;
        count_issued(IssuedBy::ClientToken);
        Ok(opened.audited(IssuingGrant::ClientToken, client, context))
    }
}
