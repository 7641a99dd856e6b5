//! Shopper passwords: Argon2id with the crate's recommended parameters, stored as PHC
//! strings. Hashing is slow by design; callers on the async runtime verify through a
//! [`PasswordVerifier`], which runs it on a blocking thread behind a semaphore.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier as _};
use tokio::sync::Semaphore;

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

/// Runs password verifications on blocking threads (`spawn_blocking`), at most a fixed
/// number at once: Argon2id takes tens of milliseconds of one core by design, and must
/// neither stall the async runtime's workers nor, in a flood of logins, take every core
/// from token lookups (RELIABILITY P14).
pub struct PasswordVerifier {
    permits: Semaphore,
}

impl PasswordVerifier {
    /// A verifier running at most `concurrency` verifications at once (at least one).
    /// Inside a Tokio runtime it also starts computing [`dummy_hash`] on a blocking thread,
    /// so that the first unknown username does not take twice as long as a wrong password.
    pub fn new(concurrency: usize) -> Self {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn_blocking(dummy_hash));
        }
        Self {
            permits: Semaphore::new(concurrency.max(1)),
        }
    }

    /// Whether `candidate` matches `stored`. With no stored hash (unknown shopper, or one
    /// without a password) or no candidate (a password that did not decode), it verifies
    /// against [`dummy_hash`] instead and answers `false`, so every failure costs the same.
    pub async fn verify(
        &self,
        stored: Option<String>,
        candidate: Option<Secret>,
    ) -> Result<bool, StoreError> {
        let _queued = Queued::enter();
        let _permit = self.permits.acquire().await.map_err(|_| {
            StoreError::Unavailable("the password verifier has shut down".to_owned())
        })?;
        tokio::task::spawn_blocking(move || match (stored, candidate) {
            (Some(stored), Some(candidate)) => verify_password(&stored, &candidate),
            (_, candidate) => {
                let candidate = candidate.unwrap_or_else(|| Secret::new(""));
                let _ = verify_password(dummy_hash(), &candidate);
                false
            }
        })
        .await
        .map_err(|_| StoreError::Unavailable("password verification did not finish".to_owned()))
    }

    /// Hashes a new password ([`hash_password`]) under the same bound, for callers on the
    /// async runtime (shopper registration), so hashing and verifying share one budget.
    pub async fn hash(&self, password: Secret) -> Result<String, StoreError> {
        let _queued = Queued::enter();
        let _permit = self.permits.acquire().await.map_err(|_| {
            StoreError::Unavailable("the password verifier has shut down".to_owned())
        })?;
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|_| StoreError::Unavailable("password hashing did not finish".to_owned()))?
    }
}

/// One hashing or verification in `tessera_password_hash_queue_depth`, from the moment it
/// waits for a permit until it ends or its caller goes away, when the permit goes too: the
/// gauge shows how far the logins of a flood are queued behind the semaphore.
struct Queued(metrics::Gauge);

impl Queued {
    fn enter() -> Self {
        let depth = metrics::gauge!("tessera_password_hash_queue_depth");
        depth.increment(1.0);
        Self(depth)
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// What the dummy hash is computed from. Nothing ever logs in against it: the login grant
/// verifies against it only to spend the time a real verification takes, and then fails.
const DUMMY_PASSWORD: &[u8] = b"tessera: no shopper has this password";
const DUMMY_SALT: &[u8] = b"tessera-dummy-salt";

/// An Argon2id hash with exactly the parameters of every stored hash (the same
/// `Argon2::default()`), computed once, on first use. The login grant verifies against it
/// when the shopper is unknown or has no password, so those attempts cost the same time as
/// a wrong password and their answers cannot be told apart (RELIABILITY P13).
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        match Argon2::default().hash_password_with_salt(DUMMY_PASSWORD, DUMMY_SALT) {
            Ok(hash) => hash.to_string(),
            Err(error) => {
                // Only a broken build of the argon2 crate gets here; verification against
                // an empty hash then fails at once instead of taking the usual time.
                tracing::error!(%error, "cannot compute the dummy password hash");
                String::new()
            }
        }
    });
    &DUMMY
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

    #[tokio::test]
    async fn the_verifier_checks_real_hashes_and_fails_without_one() -> Result<(), StoreError> {
        let verifier = PasswordVerifier::new(0);
        let stored = verifier.hash(Secret::new("right")).await?;
        let right = Some(Secret::new("right"));
        assert!(verifier.verify(Some(stored.clone()), right.clone()).await?);
        assert!(
            !verifier
                .verify(Some(stored), Some(Secret::new("wrong")))
                .await?
        );
        assert!(!verifier.verify(None, right).await?);
        assert!(!verifier.verify(None, None).await?);
        Ok(())
    }

    #[test]
    fn the_dummy_hash_has_the_parameters_of_real_hashes_and_matches_nothing()
    -> Result<(), StoreError> {
        let real = hash_password(&Secret::new("anything"))?;
        let dummy = dummy_hash();
        let parameters = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert!(dummy.starts_with("$argon2id$"), "{dummy}");
        assert_eq!(parameters(dummy), parameters(&real));
        assert!(std::ptr::eq(dummy, dummy_hash()), "computed once");
        assert!(!verify_password(dummy, &Secret::new("")));
        assert!(!verify_password(dummy, &Secret::new("anything")));
        Ok(())
    }
}
