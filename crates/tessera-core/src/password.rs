//! Shopper passwords: Argon2id with the crate's recommended parameters, stored as PHC
//! strings. Hashing is slow by design; callers on the async runtime run it on a blocking
//! thread.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::StoreError;
use crate::secret::Secret;

/// Hashes a password with Argon2id and a fresh random salt, as a PHC string.
pub fn hash_password(password: &Secret) -> Result<String, StoreError> {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Unavailable(format!("password hashing failed: {e}")))
}

/// Whether `candidate` matches the stored PHC string; a malformed stored hash matches
/// nothing.
pub fn verify_password(stored: &str, candidate: &Secret) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(candidate.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_others_do_not() -> Result<(), StoreError> {
        let stored = hash_password(&Secret::new("pa&ss=wo+rd"))?;
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify_password(&stored, &Secret::new("pa&ss=wo+rd")));
        assert!(!verify_password(&stored, &Secret::new("pa&ss=wo+rd ")));
        assert!(!verify_password("not a hash", &Secret::new("x")));
        Ok(())
    }
}
