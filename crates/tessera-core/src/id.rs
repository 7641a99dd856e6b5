//! Random identifiers: API keys, session ids, user ids, session tags.

use std::fmt::Write as _;

use crate::error::StoreError;

/// Fills `buf` from the operating system's generator.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|e| StoreError::Unavailable(format!("random generator: {e}")))
}

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; bytes];
    random_bytes(&mut buf)?;
    Ok(hex_lower(&buf))
}

/// Lower-case hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A new API key: 32 lower-case hex characters (128 random bits), which form-encoding and
/// Basic-auth decoding leave unchanged.
pub fn new_client_id() -> Result<String, StoreError> {
    random_hex(16)
}

/// A new session id.
pub fn new_session_id() -> Result<String, StoreError> {
    random_hex(16)
}

/// A new shopper id (anonymous visitors get one too).
pub fn new_user_id() -> Result<String, StoreError> {
    random_hex(16)
}

/// A new session tag: 32 lower-case hex characters, fixed for the session's life.
pub fn new_session_tag() -> Result<String, StoreError> {
    random_hex(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_lower_case_hex_characters() -> Result<(), StoreError> {
        for id in [new_client_id()?, new_session_id()?, new_session_tag()?] {
            assert_eq!(id.len(), 32);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        Ok(())
    }
}
