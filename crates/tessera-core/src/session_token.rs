//! Session tokens (API.md §2 "Session-aware"): 32 upper-case hex characters minted by
//! `GET /oauth20/session-token` for one client. Token requests that carry one join the
//! session it is bound to. The store keeps only the SHA-256 of the value.

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::id::random_bytes;
use crate::secret::Secret;
use crate::session::TokenLookup;
use crate::token::TokenHash;

/// Length of a session token.
const LENGTH: usize = 32;

/// A minted session token: the value for the client and what the store keeps.
#[derive(Debug)]
pub struct MintedSessionToken {
    /// The value, 32 upper-case hex characters (128 random bits).
    pub value: Secret,
    /// What the store keeps.
    pub hash: TokenHash,
}

/// Mints a new session token.
pub fn mint() -> Result<MintedSessionToken, StoreError> {
    let mut bytes = [0u8; LENGTH / 2];
    random_bytes(&mut bytes)?;
    let value = crate::id::hex_lower(&bytes).to_ascii_uppercase();
    let hash = TokenHash::of(&value);
    Ok(MintedSessionToken {
        value: Secret::new(value),
        hash,
    })
}

/// The store key of a presented session token, or `None` when it cannot be one Tessera
/// minted (wrong length, not upper-case hex).
pub fn hash_of(presented: &str) -> Option<TokenHash> {
    let well_formed = presented.len() == LENGTH
        && presented
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
    well_formed.then(|| TokenHash::of(presented))
}

/// A stored session token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTokenRecord {
    /// SHA-256 of the value.
    pub hash: TokenHash,
    /// The client it was minted for; no other client may use it.
    pub client_id: String,
    /// The session it is bound to, once a token request has used it.
    pub session_id: Option<String>,
    /// When it was minted.
    pub created_at: Timestamp,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

/// A session token with the session it is bound to, seen through that session's newest
/// access token (which carries the session, its client and their revocation state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTokenLookup {
    /// The session token.
    pub record: SessionTokenRecord,
    /// The bound session, if it still exists.
    pub bound: Option<TokenLookup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_session_tokens_are_32_upper_case_hex_and_hash_like_presented_ones()
    -> Result<(), StoreError> {
        let minted = mint()?;
        let value = minted.value.expose();
        assert_eq!(value.len(), 32);
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        assert_eq!(hash_of(value), Some(minted.hash));
        Ok(())
    }

    #[test]
    fn malformed_session_tokens_have_no_store_key() {
        assert_eq!(hash_of("0123456789abcdef0123456789abcdef"), None);
        assert_eq!(hash_of("0123456789ABCDEF"), None);
        assert_eq!(hash_of("0123456789ABCDEF0123456789ABCDEG"), None);
        assert_eq!(hash_of(""), None);
    }
}
