//! The anonymous (limited) token: a new anonymous visitor and session, with a refresh
//! token, for any client allowed the `anonymous` grant.

use crate::audit::IssuingGrant;
use crate::client::{ClientRecord, Grant};
use crate::error::TokenError;
use crate::id::new_user_id;
use crate::service::{RequestContext, SessionSeed, TokenService};
use crate::session::TokenResponse;
use crate::telemetry::{IssuedBy, count_issued};

impl TokenService {
    pub(crate) async fn grant_anonymous(
        &self,
        client: &ClientRecord,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        if !client.grants.contains(Grant::Anonymous) {
            return Err(TokenError::UnauthorizedClient(
                "this client may not request anonymous tokens",
            ));
        }
        let seed = SessionSeed {
            user_id: Some(new_user_id()?),
            external_reference_id: None,
            authenticated: false,
            locale: client.default_locale.clone(),
            currency: client.default_currency.clone(),
            with_refresh_token: true,
        };
        let opened = self.open_session(client, seed, context).await?;
        count_issued(IssuedBy::Anonymous);
        Ok(opened.audited(IssuingGrant::Anonymous, client, context))
    }
}
