//! The partner-hosted shopper token: a confidential client names one of its shoppers by
//! external reference id and gets a full token (and refresh token) for them.

use crate::audit::IssuingGrant;
use crate::client::{ClientRecord, Grant};
use crate::error::TokenError;
use crate::service::{RequestContext, SessionSeed, TokenService};
use crate::session::TokenResponse;
use crate::telemetry::{IssuedBy, count_issued};

impl TokenService {
    pub(crate) async fn grant_partner_shopper(
        &self,
        client: &ClientRecord,
        external_reference_id: &str,
        context: &RequestContext,
    ) -> Result<TokenResponse, TokenError> {
        if client.is_public() || !client.grants.contains(Grant::ClientCredentials) {
            return Err(TokenError::UnauthorizedClient(
                "only confidential clients allowed client_credentials may request shopper tokens",
            ));
        }
        let shopper = self
            .store
            .shopper_by_external_reference(external_reference_id)
            .await?
            .ok_or(TokenError::InvalidGrant("unknown external reference id"))?;
        let opened = self
            .open_session(client, SessionSeed::for_shopper(client, shopper), context)
            .await?;
        count_issued(IssuedBy::PartnerShopper);
        Ok(opened.audited(IssuingGrant::PartnerShopper, client, context))
    }
}
