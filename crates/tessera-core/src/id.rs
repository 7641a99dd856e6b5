//! Random identifiers: API keys, session ids, user ids, session tags.

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
    hex::encode(bytes)
}

/// A new API key: 32 lower-case hex characters (128 random bits), which form-encoding and
/// Basic-auth decoding leave unchanged.
pub fn new_client_id() -> Result<String, StoreError> {
    random_hex(16)
}

/// A new session id, time-ordered (see [`time_ordered_id`]).
pub fn new_session_id() -> Result<String, StoreError> {
    time_ordered_id()
}

/// A new shopper id (anonymous visitors get one too), time-ordered like session ids.
pub fn new_user_id() -> Result<String, StoreError> {
    time_ordered_id()
}

/// 32 lower-case hex characters: the wall clock's milliseconds since the Unix epoch in
/// the first 48 bits, then 80 random bits, as in a UUIDv7 (RFC 9562 §5.7).
///
/// Session and shopper ids key b-trees (the sessions table and its indexes by shopper and
/// by client, the tokens' index by session). Random ids put each new session on a random
/// page of every one of them, so a batch of writes dirties, and writes to the WAL, one
/// page per tree per session; ids that grow with time append to the last page instead.
/// The 80 random bits keep an id as hard to guess as an unpredictable handle needs; the
/// prefix tells only when the session began, which its holder already knows.
pub fn time_ordered_id() -> Result<String, StoreError> {
    let mut id = [0u8; 16];
    id[..6].copy_from_slice(&time_prefix());
    random_bytes(&mut id[6..])?;
    Ok(hex_lower(&id))
}

/// The wall clock's milliseconds since the Unix epoch, big endian in 48 bits: the prefix
/// that orders time-ordered ids and token store keys.
///
/// The system clock, not the service's `Clock`: the prefix only orders rows as they are
/// physically written, and no rule ever reads a time from it (expiry, `issued_at` and the
/// rest come from the `Clock`).
pub fn time_prefix() -> [u8; 6] {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    let bytes = (millis as u64).to_be_bytes();
    let mut prefix = [0u8; 6];
    prefix.copy_from_slice(&bytes[2..]);
    prefix
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
        for id in [
            new_client_id()?,
            new_session_id()?,
            new_user_id()?,
            new_session_tag()?,
        ] {
            assert_eq!(id.len(), 32);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        Ok(())
    }

    #[test]
    fn time_ordered_ids_sort_by_creation_and_differ_within_a_millisecond() -> Result<(), StoreError>
    {
        let first = time_ordered_id()?;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later: Vec<String> = (0..1000)
            .map(|_| time_ordered_id())
            .collect::<Result<_, _>>()?;
        assert!(later.iter().all(|id| *id > first));
        let distinct: std::collections::HashSet<&String> = later.iter().collect();
        assert_eq!(distinct.len(), later.len());
        Ok(())
    }
}
