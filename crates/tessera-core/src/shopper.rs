//! Shoppers: end users of a storefront, known by an external reference id (a partner's
//! own id for them) and optionally by a username and password.

use crate::clock::Timestamp;

/// A stored shopper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShopperRecord {
    /// Tessera's id for the shopper (`userId`).
    pub id: String,
    /// The partner's id for the shopper, unique in the store.
    pub external_reference_id: Option<String>,
    /// Login name, unique in the store, normalised by [`normalize_username`].
    pub username: Option<String>,
    /// Argon2id PHC string; `None` when the shopper cannot log in with a password.
    pub password_hash: Option<String>,
    /// Preferred locale; the client's default when `None`.
    pub locale: Option<String>,
    /// Preferred currency; the client's default when `None`.
    pub currency: Option<String>,
    /// When the shopper was created.
    pub created_at: Timestamp,
}

/// The one rule for usernames: surrounding white space is dropped and letters are
/// lower-cased, so `  Ann@Example.com ` and `ann@example.com` are the same shopper.
pub fn normalize_username(raw: &str) -> String {
    raw.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_username("  Ann@Example.COM \t"),
            "ann@example.com"
        );
    }
}
