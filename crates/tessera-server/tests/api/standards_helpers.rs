//! Typed request helpers for the standards endpoints: introspection (RFC 7662), revocation
//! (RFC 7009) and the clients that call them.

use tessera_core::admin::NewClient;
use tessera_core::client::{Grant, GrantSet};
use tessera_core::token::TokenKind;

use crate::helpers::*;
use crate::token_endpoint::urlencode;

/// The whole body of every inactive introspection answer.
pub const INACTIVE: &str = r#"{"active":false}"#;

impl TestApp {
    /// `POST /oauth20/introspect` of `token`, authenticated by `who` with Basic.
    pub async fn introspect(&self, who: &Credentials, token: &str) -> Answer {
        self.introspect_form(Some(&who.basic()), &format!("token={}", urlencode(token)))
            .await
    }

    /// `POST /oauth20/introspect` with this form and `Authorization` header.
    pub async fn introspect_form(&self, authorization: Option<&str>, form: &str) -> Answer {
        self.token_at("/oauth20/introspect", authorization, form)
            .await
    }

    /// `POST /oauth20/revoke` of `token`, authenticated by `who` with Basic.
    pub async fn revoke(&self, who: &Credentials, token: &str) -> Answer {
        self.revoke_form(Some(&who.basic()), &format!("token={}", urlencode(token)))
            .await
    }

    /// `POST /oauth20/revoke` with this form and `Authorization` header.
    pub async fn revoke_form(&self, authorization: Option<&str>, form: &str) -> Answer {
        self.token_at("/oauth20/revoke", authorization, form).await
    }

    /// A confidential client marked as resource server, allowed `grants`.
    pub async fn resource_server(&self, grants: &[Grant]) -> Credentials {
        let new = NewClient {
            resource_server: true,
            grants: GrantSet::from_grants(grants.iter().copied()),
            ..NewClient::named("resource server")
        };
        let (record, secret) = self
            .admin
            .create_client(new)
            .await
            .unwrap_or_else(|e| panic!("client: {e}"));
        Credentials {
            id: record.id,
            secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
        }
    }

    /// A token of the right shape and MAC that Tessera never issued (no row holds it).
    pub fn unissued(&self, kind: TokenKind) -> String {
        self.keys
            .mint(kind)
            .unwrap_or_else(|e| panic!("mint: {e}"))
            .token
            .expose()
            .to_owned()
    }
}

/// Asserts the exact inactive answer of RFC 7662 §2.2.
pub fn assert_inactive(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 200, "{case}: {}", answer.text);
    assert_eq!(answer.text, INACTIVE, "{case}");
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
}

/// Asserts an RFC 6749 §5.2 error: the status, the code, a fixed description, nothing else
/// in the body, and the token endpoint's headers (with a Basic challenge on a 401).
pub fn assert_oauth_error(answer: &Answer, status: u16, code: &str, case: &str) {
    assert_eq!(answer.status, status, "{case}: {}", answer.text);
    assert_eq!(answer.error_code(), Some(code), "{case}: {}", answer.text);
    let keys: Vec<&str> = answer
        .body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["error", "error_description"], "{case}");
    assert!(!answer.str("error_description").is_empty(), "{case}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{case}"
    );
    assert_eq!(answer.header("cache-control"), Some("no-store"), "{case}");
    assert_eq!(answer.header("pragma"), Some("no-cache"), "{case}");
    let challenge = answer.header("www-authenticate");
    if status == 401 {
        assert_eq!(challenge, Some("Basic realm=\"tessera\""), "{case}");
    } else {
        assert_eq!(challenge, None, "{case}");
    }
}
