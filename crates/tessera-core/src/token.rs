//! Token format, MAC keys and hashing (API.md §7).
//!
//! A token reads `tsa_<kid>_<payload>` (access) or `tsr_<kid>_<payload>` (refresh). The
//! payload is unpadded base64url of the wall clock's milliseconds at minting (6 bytes, big
//! endian), 32 random bytes from the OS generator, and the first 16 bytes of HMAC-SHA256
//! over the prefix, key id, time and random bytes, keyed with the key named by `kid`. The
//! MAC is checked before any store access, so garbage and forged rows never reach or
//! satisfy the store. The store keeps only [`TokenHash`]: the 6 time bytes followed by the
//! first 26 bytes of the SHA-256 of the whole token string.
//!
//! Why the time leads the store key: the tokens table is a b-tree on that key. With a
//! plain hash every new token lands on a random page, so a batch of writes dirties (and
//! writes to the WAL) one page per token, and a large table's inserts read cold pages;
//! keys that grow with time append to the newest pages instead. The 26 hash bytes keep
//! keys unique and unforgeable, and the time tells a reader of the store only what its
//! `issued_at` column already says.
//!
//! Tokens minted before the time was added carry a 64-character payload without it (32
//! random bytes and the tag) and are stored under the plain SHA-256 of the token; they
//! keep verifying, under that key, until they expire.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::StoreError;
use crate::id::random_bytes;
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

const TIME_LEN: usize = 6;
const RANDOM_LEN: usize = 32;
const MAC_LEN: usize = 16;
/// Bytes under the MAC: the minting time, then the random bytes.
const SIGNED_LEN: usize = TIME_LEN + RANDOM_LEN;
const PAYLOAD_CHARS: usize = 72; // base64 of SIGNED_LEN + MAC_LEN = 54 bytes
/// The payload of a token minted before the time was added: RANDOM_LEN + MAC_LEN bytes.
const UNTIMED_PAYLOAD_CHARS: usize = 64;
const KEY_LEN: usize = 32;
const MAX_KID_LEN: usize = 16;
/// No well-formed token is longer; anything longer is refused before any parsing work.
pub const MAX_TOKEN_LEN: usize = 4 + MAX_KID_LEN + 1 + PAYLOAD_CHARS;

/// Which kind of token a string is; access and refresh tokens are never interchangeable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A bearer token for resources and session lookups.
    Access,
    /// A token that can only be exchanged at the token endpoint.
    Refresh,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "tsa",
            TokenKind::Refresh => "tsr",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "tsa" => Some(TokenKind::Access),
            "tsr" => Some(TokenKind::Refresh),
            _ => None,
        }
    }

    /// The name stored by backends.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    /// Parses [`TokenKind::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// What the store keeps instead of a token: a hash of the token string (see the module
/// documentation for its two forms).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The plain SHA-256 of a string: the key of session tokens, and of access and
    /// refresh tokens minted before their payload carried the time.
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// The key of a timed token: its `TIME_LEN` time bytes, then the leading bytes of its
    /// SHA-256.
    fn timed(time: &[u8], token: &str) -> Self {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut key = [0u8; 32];
        key[..TIME_LEN].copy_from_slice(time);
        key[TIME_LEN..].copy_from_slice(&digest[..32 - TIME_LEN]);
        TokenHash(key)
    }

    /// The store key of an access or refresh token string, from its shape alone (no MAC
    /// check): for tools and tests that look a known token up in a store.
    pub fn of_token(token: &str) -> Self {
        let payload = token.splitn(3, '_').nth(2).unwrap_or(token);
        let mut decoded = [0u8; SIGNED_LEN + MAC_LEN];
        let written = URL_SAFE_NO_PAD
            .decode_slice(payload, &mut decoded)
            .unwrap_or(0);
        Self::of_decoded(token, &decoded[..written])
    }

    /// The store key of `token`, whose payload decodes to `payload`: timed when the
    /// payload carries the time, the plain SHA-256 otherwise.
    fn of_decoded(token: &str, payload: &[u8]) -> Self {
        if payload.len() == SIGNED_LEN + MAC_LEN {
            Self::timed(&payload[..TIME_LEN], token)
        } else {
            Self::of(token)
        }
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The last bytes: the leading ones of a timed key are the same for every token of
        // a millisecond.
        write!(f, "TokenHash(…{})", crate::id::hex_lower(&self.0[28..]))
    }
}

/// A freshly minted token: the string for the client, the hash for the store.
#[derive(Debug)]
pub struct MintedToken {
    /// The token as the client will send it.
    pub token: Secret,
    /// What the store keeps.
    pub hash: TokenHash,
}

/// A token string whose prefix, key id and MAC checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The store key.
    pub hash: TokenHash,
}

/// Why a token string was refused before reaching the store. Deliberately coarse: callers
/// answer every case the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejected {
    /// Not a token Tessera minted with a key it still holds.
    #[error("malformed or forged token")]
    Invalid,
}

/// One MAC key and its id.
#[derive(Clone)]
struct TokenKey {
    id: String,
    mac: HmacSha256,
}

/// The configured MAC keys, newest first: the newest signs, every one verifies.
#[derive(Clone)]
pub struct TokenKeys {
    keys: Vec<TokenKey>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("TokenKeys").field("ids", &ids).finish()
    }
}

/// Why a key file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// A line did not read `<kid> <base64url key>`.
    #[error("line {line}: expected `<key id> <base64url of 32 bytes>`")]
    BadLine {
        /// 1-based line number.
        line: usize,
    },
    /// A key id was used twice.
    #[error("line {line}: key id `{kid}` appears twice")]
    DuplicateId {
        /// 1-based line number.
        line: usize,
        /// The repeated id.
        kid: String,
    },
    /// The file named no key.
    #[error("the key file holds no key")]
    Empty,
}

impl TokenKeys {
    /// Parses a key file: one key per line, `<kid> <base64url of 32 bytes>`, newest first;
    /// blank lines and lines starting with `#` are ignored. Key ids are 1 to 16 ASCII
    /// letters or digits.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut keys: Vec<TokenKey> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut parts = trimmed.split_whitespace();
            let (Some(kid), Some(encoded), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(KeyFileError::BadLine { line });
            };
            if !valid_kid(kid) {
                return Err(KeyFileError::BadLine { line });
            }
            let bytes = URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| KeyFileError::BadLine { line })?;
            if bytes.len() != KEY_LEN {
                return Err(KeyFileError::BadLine { line });
            }
            if keys.iter().any(|k| k.id == kid) {
                return Err(KeyFileError::DuplicateId {
                    line,
                    kid: kid.to_owned(),
                });
            }
            let mac =
                HmacSha256::new_from_slice(&bytes).map_err(|_| KeyFileError::BadLine { line })?;
            keys.push(TokenKey {
                id: kid.to_owned(),
                mac,
            });
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty);
        }
        Ok(Self { keys })
    }

    /// A new key file's text holding one fresh random key.
    pub fn generate_file() -> Result<Secret, StoreError> {
        let mut kid = [0u8; 4];
        random_bytes(&mut kid)?;
        let mut key = [0u8; KEY_LEN];
        random_bytes(&mut key)?;
        Ok(Secret::new(format!(
            "# Tessera token MAC keys, newest first: the first signs, all verify.\n\
             # Removing a key ends every token it signed. Keep this file secret.\n\
             k{} {}\n",
            crate::id::hex_lower(&kid),
            URL_SAFE_NO_PAD.encode(key)
        )))
    }

    /// The id of the key that signs new tokens.
    pub fn signing_key_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Mints a new token of `kind`, signed with the newest key.
    pub fn mint(&self, kind: TokenKind) -> Result<MintedToken, StoreError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| StoreError::Unavailable("no token key configured".to_owned()))?;
        let mut payload = [0u8; SIGNED_LEN + MAC_LEN];
        let time = crate::id::time_prefix();
        payload[..TIME_LEN].copy_from_slice(&time);
        random_bytes(&mut payload[TIME_LEN..SIGNED_LEN])?;
        let tag = tag(key, kind.prefix(), &payload[..SIGNED_LEN]);
        payload[SIGNED_LEN..].copy_from_slice(&tag);
        let token = format!(
            "{}_{}_{}",
            kind.prefix(),
            key.id,
            URL_SAFE_NO_PAD.encode(payload)
        );
        let hash = TokenHash::timed(&time, &token);
        Ok(MintedToken {
            token: Secret::new(token),
            hash,
        })
    }

    /// Checks a token string's shape and MAC. Touches no store.
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejected> {
        if token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
            return Err(TokenRejected::Invalid);
        }
        let mut parts = token.splitn(3, '_');
        let (Some(prefix), Some(kid), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRejected::Invalid);
        };
        let kind = TokenKind::from_prefix(prefix).ok_or(TokenRejected::Invalid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == kid)
            .ok_or(TokenRejected::Invalid)?;
        let signed_len = match encoded.len() {
            PAYLOAD_CHARS => SIGNED_LEN,
            UNTIMED_PAYLOAD_CHARS => RANDOM_LEN,
            _ => return Err(TokenRejected::Invalid),
        };
        let mut buffer = [0u8; SIGNED_LEN + MAC_LEN];
        let payload = &mut buffer[..signed_len + MAC_LEN];
        let written = URL_SAFE_NO_PAD
            .decode_slice(encoded, payload)
            .map_err(|_| TokenRejected::Invalid)?;
        if written != payload.len() {
            return Err(TokenRejected::Invalid);
        }
        let expected = tag(key, prefix, &payload[..signed_len]);
        if !bool::from(expected.ct_eq(&payload[signed_len..])) {
            return Err(TokenRejected::Invalid);
        }
        Ok(VerifiedToken {
            kind,
            hash: TokenHash::of_decoded(token, payload),
        })
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= MAX_KID_LEN && kid.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn tag(key: &TokenKey, prefix: &str, signed: &[u8]) -> [u8; MAC_LEN] {
    let mut mac = key.mac.clone();
    mac.update(prefix.as_bytes());
    mac.update(b"_");
    mac.update(key.id.as_bytes());
    mac.update(b"_");
    mac.update(signed);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full[..MAC_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::parse(
            TokenKeys::generate_file()
                .unwrap_or_else(|_| Secret::new(""))
                .expose(),
        )
        .unwrap_or_else(|e| panic!("generated key file must parse: {e}"))
    }

    #[test]
    fn minted_tokens_verify_with_their_kind_and_hash() -> Result<(), StoreError> {
        let keys = keys();
        for kind in [TokenKind::Access, TokenKind::Refresh] {
            let minted = keys.mint(kind)?;
            let verified = keys.verify(minted.token.expose());
            assert_eq!(
                verified,
                Ok(VerifiedToken {
                    kind,
                    hash: minted.hash
                })
            );
        }
        Ok(())
    }

    #[test]
    fn store_keys_lead_with_the_minting_time_and_grow_with_it() -> Result<(), StoreError> {
        let keys = keys();
        let before = crate::id::time_prefix();
        let first = keys.mint(TokenKind::Access)?;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = keys.mint(TokenKind::Refresh)?;
        assert!(first.hash.0[..TIME_LEN] >= before[..]);
        assert!(later.hash.0 > first.hash.0);
        let digest: [u8; 32] = Sha256::digest(first.token.expose().as_bytes()).into();
        assert_eq!(first.hash.0[TIME_LEN..], digest[..32 - TIME_LEN]);
        for minted in [&first, &later] {
            assert_eq!(TokenHash::of_token(minted.token.expose()), minted.hash);
            let payload = minted
                .token
                .expose()
                .splitn(3, '_')
                .nth(2)
                .unwrap_or_default();
            assert_eq!(payload.len(), PAYLOAD_CHARS);
        }
        Ok(())
    }

    #[test]
    fn untimed_tokens_minted_before_the_time_was_added_verify_under_their_plain_hash()
    -> Result<(), StoreError> {
        let keys = keys();
        let key = &keys.keys[0];
        let mut payload = [0u8; RANDOM_LEN + MAC_LEN];
        random_bytes(&mut payload[..RANDOM_LEN])?;
        let tag = tag(key, "tsr", &payload[..RANDOM_LEN]);
        payload[RANDOM_LEN..].copy_from_slice(&tag);
        let untimed = format!("tsr_{}_{}", key.id, URL_SAFE_NO_PAD.encode(payload));
        assert_eq!(
            keys.verify(&untimed),
            Ok(VerifiedToken {
                kind: TokenKind::Refresh,
                hash: TokenHash::of(&untimed),
            })
        );
        assert_eq!(TokenHash::of_token(&untimed), TokenHash::of(&untimed));
        // The same random bytes and tag read as a timed payload do not verify.
        let access = format!("tsa_{}_{}", key.id, URL_SAFE_NO_PAD.encode(payload));
        assert_eq!(keys.verify(&access), Err(TokenRejected::Invalid));
        Ok(())
    }

    #[test]
    fn access_and_refresh_tokens_have_different_prefixes() -> Result<(), StoreError> {
        let keys = keys();
        assert!(
            keys.mint(TokenKind::Access)?
                .token
                .expose()
                .starts_with("tsa_")
        );
        assert!(
            keys.mint(TokenKind::Refresh)?
                .token
                .expose()
                .starts_with("tsr_")
        );
        Ok(())
    }

    #[test]
    fn a_token_from_another_key_is_refused() -> Result<(), StoreError> {
        let minted = keys().mint(TokenKind::Access)?;
        assert_eq!(
            keys().verify(minted.token.expose()),
            Err(TokenRejected::Invalid)
        );
        Ok(())
    }

    #[test]
    fn older_keys_still_verify_after_a_new_key_is_added() -> Result<(), StoreError> {
        let old_text = TokenKeys::generate_file()?;
        let new_text = TokenKeys::generate_file()?;
        let old =
            TokenKeys::parse(old_text.expose()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let both = TokenKeys::parse(&format!("{}{}", new_text.expose(), old_text.expose()))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let minted = old.mint(TokenKind::Access)?;
        assert!(both.verify(minted.token.expose()).is_ok());
        assert_ne!(both.signing_key_id(), old.signing_key_id());
        Ok(())
    }

    #[test]
    fn key_files_with_bad_lines_are_refused() {
        assert!(matches!(TokenKeys::parse(""), Err(KeyFileError::Empty)));
        assert!(matches!(
            TokenKeys::parse("k1 short"),
            Err(KeyFileError::BadLine { line: 1 })
        ));
        assert!(matches!(
            TokenKeys::parse("k_1 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            Err(KeyFileError::BadLine { line: 1 })
        ));
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(matches!(
            TokenKeys::parse(&format!("k1 {key}\nk1 {key}\n")),
            Err(KeyFileError::DuplicateId { line: 2, .. })
        ));
    }

    #[test]
    fn a_million_tokens_have_no_duplicates() -> Result<(), StoreError> {
        let keys = keys();
        let mut seen = HashSet::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            assert!(seen.insert(keys.mint(TokenKind::Access)?.hash));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_refused(index in 0usize..200, replacement in any::<char>()) {
            let keys = keys();
            let minted = keys.mint(TokenKind::Access).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let original = minted.token.expose();
            let mut chars: Vec<char> = original.chars().collect();
            let index = index % chars.len();
            prop_assume!(chars[index] != replacement);
            chars[index] = replacement;
            let altered: String = chars.into_iter().collect();
            prop_assert_eq!(keys.verify(&altered), Err(TokenRejected::Invalid));
        }

        #[test]
        fn truncated_or_extended_tokens_are_refused(cut in 1usize..80, extra in "[A-Za-z0-9_-]{1,8}") {
            let keys = keys();
            let minted = keys.mint(TokenKind::Refresh).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let original = minted.token.expose();
            let cut = cut.min(original.len());
            prop_assert_eq!(keys.verify(&original[..original.len() - cut]), Err(TokenRejected::Invalid));
            let extended = format!("{original}{extra}");
            prop_assert_eq!(keys.verify(&extended), Err(TokenRejected::Invalid));
        }

        #[test]
        fn arbitrary_strings_never_verify(input in ".{0,200}") {
            prop_assert_eq!(keys().verify(&input), Err(TokenRejected::Invalid));
        }
    }
}
