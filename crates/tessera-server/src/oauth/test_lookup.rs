//! A token lookup for the answers' unit tests.

use tessera_core::client::{ClientRecord, GrantSet, PasswordEncoding};
use tessera_core::clock::Timestamp;
use tessera_core::session::{Rendered, SessionRecord, TokenLookup, TokenRecord};
use tessera_core::token::{TokenHash, TokenKind};

/// A looked-up access token: with `every_field`, of a signed-in shopper with every optional
/// field set, some to text JSON must escape; without, an anonymous one with none.
pub(crate) fn lookup(every_field: bool) -> TokenLookup {
    let text = |value: &str| every_field.then(|| value.to_owned());
    let at = Timestamp(1_780_000_000_123);
    TokenLookup {
        token: TokenRecord {
            hash: TokenHash([7; 32]),
            kind: TokenKind::Access,
            session_id: "0123456789abcdef0123456789abcdef".to_owned(),
            client_id: "c".repeat(32),
            issued_at: at,
            expires_at: at.plus_seconds(3600),
            revoked_at: None,
            consumed_at: None,
        },
        session: SessionRecord {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            client_id: "c".repeat(32),
            user_id: text("fedcba9876543210fedcba9876543210"),
            // Every kind of character JSON must escape, and some it need not.
            external_reference_id: text("partner \"ref\" \\ \u{1} \n ü </script>"),
            authenticated: every_field,
            locale: "de_DE".to_owned(),
            currency: "EUR".to_owned(),
            cart_id: text("cart\t42"),
            client_ip: "2001:db8::1".to_owned(),
            session_tag: "a".repeat(32),
            created_at: at,
            last_accessed: at.plus_seconds(61),
            expires_at: at.plus_seconds(86_400),
            newest_access: TokenHash([7; 32]),
            revoked_at: None,
        },
        client: ClientRecord {
            id: "c".repeat(32),
            name: "Storefront".to_owned(),
            secret_hash: None,
            grants: GrantSet::all(),
            disabled: false,
            access_token_ttl: 3600,
            refresh_token_ttl: 7200,
            default_locale: "en_US".to_owned(),
            default_currency: "USD".to_owned(),
            theme_id: text("theme \"7\""),
            created_at: at,
            sessions_revoked_before: None,
            password_encoding: PasswordEncoding::Plain,
            resource_server: false,
        },
        shopper_sessions_revoked_before: None,
        rendered: Rendered::default(),
    }
}
