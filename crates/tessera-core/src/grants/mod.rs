//! The token endpoint's grants (API.md §2), one file per grant. [`TokenRequest`] is the
//! endpoint's parameters as the server extracted them; [`GrantKind::select`] applies the
//! RFC 6749 rules that decide which grant a request is.

mod anonymous;
mod client_token;
mod partner_shopper;
mod refresh;
mod shopper_login;

use crate::error::TokenError;
use crate::secret::Secret;

/// Token endpoint parameters, already de-duplicated and decoded by the server.
#[derive(Debug, Default)]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `username`.
    pub username: Option<String>,
    /// `password`.
    pub password: Option<Secret>,
    /// `dr_external_reference_id` or `externalReferenceId`.
    pub external_reference_id: Option<String>,
    /// `refresh_token`.
    pub refresh_token: Option<Secret>,
    /// `scope`.
    pub scope: Option<String>,
}

/// The grant a token request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum GrantKind {
    /// A limited token for a new anonymous visitor.
    Anonymous,
    /// A shopper's username and password.
    ShopperLogin,
    /// A full token for the shopper a partner names by external reference id.
    PartnerShopper(String),
    /// A token for the client itself (RFC 6749 §4.4).
    ClientToken,
    /// A refresh token exchange.
    Refresh,
}

impl GrantKind {
    /// Decides which grant a request is, or why it is malformed. Grant type names are
    /// case-sensitive (RFC 6749 §3.2 leaves no room for `Password`).
    pub fn select(request: &TokenRequest) -> Result<GrantKind, TokenError> {
        if request.scope.is_some() {
            return Err(TokenError::InvalidScope);
        }
        match request.grant_type.as_deref() {
            None => Err(TokenError::InvalidRequest("grant_type is required")),
            Some("password") => {
                let username = request.username.as_deref();
                let password = request.password.as_ref().map(Secret::expose);
                match (username, password) {
                    (None, None) | (Some("anonymous"), Some("anonymous")) => {
                        Ok(GrantKind::Anonymous)
                    }
                    (Some(_), Some(_)) => Ok(GrantKind::ShopperLogin),
                    (Some(_), None) => Err(TokenError::InvalidRequest("password is required")),
                    (None, Some(_)) => Err(TokenError::InvalidRequest("username is required")),
                }
            }
            Some("client_credentials") => Ok(match &request.external_reference_id {
                Some(id) => GrantKind::PartnerShopper(id.clone()),
                None => GrantKind::ClientToken,
            }),
            Some("refresh_token") => Ok(GrantKind::Refresh),
            Some(_) => Err(TokenError::UnsupportedGrantType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(grant: &str) -> TokenRequest {
        TokenRequest {
            grant_type: Some(grant.to_owned()),
            ..TokenRequest::default()
        }
    }

    #[test]
    fn password_grant_without_username_is_anonymous() {
        assert_eq!(
            GrantKind::select(&request("password")).ok(),
            Some(GrantKind::Anonymous)
        );
        let legacy = TokenRequest {
            username: Some("anonymous".into()),
            password: Some(Secret::new("anonymous")),
            ..request("password")
        };
        assert_eq!(GrantKind::select(&legacy).ok(), Some(GrantKind::Anonymous));
    }

    #[test]
    fn grant_types_are_case_sensitive() {
        assert!(matches!(
            GrantKind::select(&request("Password")),
            Err(TokenError::UnsupportedGrantType)
        ));
    }

    #[test]
    fn a_requested_scope_is_refused() {
        let scoped = TokenRequest {
            scope: Some("admin".into()),
            ..request("client_credentials")
        };
        assert!(matches!(
            GrantKind::select(&scoped),
            Err(TokenError::InvalidScope)
        ));
    }
}
