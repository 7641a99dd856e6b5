//! Clients: applications holding an API key and, when confidential, a secret. Secrets are
//! generated here with 256 random bits and stored as HMAC-SHA256 keyed with a per-client
//! random salt; comparison is constant-time.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::id::random_bytes;
use crate::secret::Secret;

/// A grant type a client may be allowed to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    /// `grant_type=password` without a username: a limited token for an anonymous visitor.
    Anonymous,
    /// `grant_type=client_credentials`, with or without a partner shopper id.
    ClientCredentials,
    /// `grant_type=password` with a shopper's username and password.
    Password,
    /// `grant_type=refresh_token`.
    RefreshToken,
}

impl Grant {
    /// Every grant, in the order names are listed.
    pub const ALL: [Grant; 4] = [
        Grant::Anonymous,
        Grant::ClientCredentials,
        Grant::Password,
        Grant::RefreshToken,
    ];

    /// The name used by the CLI and in listings.
    pub fn name(self) -> &'static str {
        match self {
            Grant::Anonymous => "anonymous",
            Grant::ClientCredentials => "client_credentials",
            Grant::Password => "password",
            Grant::RefreshToken => "refresh_token",
        }
    }

    /// Parses [`Grant::name`].
    pub fn parse(name: &str) -> Option<Grant> {
        Grant::ALL.into_iter().find(|g| g.name() == name)
    }

    fn bit(self) -> u32 {
        match self {
            Grant::Anonymous => 1,
            Grant::ClientCredentials => 2,
            Grant::Password => 4,
            Grant::RefreshToken => 8,
        }
    }
}

/// The set of grants a client may use.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrantSet(u32);

impl GrantSet {
    /// What a client gets when none are named: every grant except shopper password login,
    /// which must always be enabled explicitly.
    pub fn default_for_new_client() -> Self {
        Self::from_grants([
            Grant::Anonymous,
            Grant::ClientCredentials,
            Grant::RefreshToken,
        ])
    }

    /// Every grant.
    pub fn all() -> Self {
        Self::from_grants(Grant::ALL)
    }

    /// The set of the given grants.
    pub fn from_grants(grants: impl IntoIterator<Item = Grant>) -> Self {
        Self(grants.into_iter().fold(0, |bits, g| bits | g.bit()))
    }

    /// Whether `grant` is in the set.
    pub fn contains(self, grant: Grant) -> bool {
        self.0 & grant.bit() != 0
    }

    /// The stored form.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// From the stored form; unknown bits are dropped.
    pub fn from_bits(bits: u32) -> Self {
        Self(bits & Self::all().0)
    }

    /// The grants in the set.
    pub fn iter(self) -> impl Iterator<Item = Grant> {
        Grant::ALL.into_iter().filter(move |g| self.contains(*g))
    }
}

impl fmt::Debug for GrantSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(Grant::name))
            .finish()
    }
}

const SALT_LEN: usize = 16;
const DIGEST_LEN: usize = 32;

/// A stored client secret: a random salt and HMAC-SHA256(salt, secret).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecretHash {
    salt: [u8; SALT_LEN],
    digest: [u8; DIGEST_LEN],
}

impl fmt::Debug for ClientSecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecretHash(<redacted>)")
    }
}

impl ClientSecretHash {
    /// Length of [`ClientSecretHash::to_bytes`].
    pub const STORED_LEN: usize = SALT_LEN + DIGEST_LEN;

    fn compute(salt: [u8; SALT_LEN], secret: &str) -> Self {
        // A 16-byte salt is always a valid HMAC key; the fallback cannot be reached.
        let digest = match Hmac::<Sha256>::new_from_slice(&salt) {
            Ok(mut mac) => {
                mac.update(secret.as_bytes());
                mac.finalize().into_bytes().into()
            }
            Err(_) => [0u8; DIGEST_LEN],
        };
        Self { salt, digest }
    }

    /// Hashes a secret with a fresh salt.
    pub fn new(secret: &Secret) -> Result<Self, StoreError> {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt)?;
        Ok(Self::compute(salt, secret.expose()))
    }

    /// Whether `candidate` is the secret, compared in constant time.
    pub fn verify(&self, candidate: &str) -> bool {
        let other = Self::compute(self.salt, candidate);
        bool::from(self.digest.ct_eq(&other.digest))
    }

    /// The stored form: salt then digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::STORED_LEN);
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.digest);
        out
    }

    /// Reads the stored form back.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::STORED_LEN {
            return None;
        }
        let mut salt = [0u8; SALT_LEN];
        let mut digest = [0u8; DIGEST_LEN];
        salt.copy_from_slice(&bytes[..SALT_LEN]);
        digest.copy_from_slice(&bytes[SALT_LEN..]);
        Some(Self { salt, digest })
    }

    /// A hash no secret matches, verified against when the client is unknown so that an
    /// unknown id and a wrong secret cost the same time.
    pub fn dummy() -> Self {
        Self::compute([0u8; SALT_LEN], "")
    }
}

/// A new client secret: `tcs_` and 43 base64url characters (256 random bits); every
/// character is one that form-encoding leaves unchanged.
pub fn new_client_secret() -> Result<Secret, StoreError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    Ok(Secret::new(format!(
        "tcs_{}",
        URL_SAFE_NO_PAD.encode(bytes)
    )))
}

/// How a client sends shopper passwords with the login grant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PasswordEncoding {
    /// The password as typed (form-encoded like every parameter).
    #[default]
    Plain,
    /// Base64 of the password's UTF-8 bytes (standard alphabet, padding optional), as some
    /// Digital River storefront code sends it.
    Base64,
}

impl PasswordEncoding {
    /// Every encoding, in the order names are listed.
    pub const ALL: [PasswordEncoding; 2] = [PasswordEncoding::Plain, PasswordEncoding::Base64];

    /// The name used by the CLI, in listings and in the store.
    pub fn name(self) -> &'static str {
        match self {
            PasswordEncoding::Plain => "plain",
            PasswordEncoding::Base64 => "base64",
        }
    }

    /// Parses [`PasswordEncoding::name`].
    pub fn parse(name: &str) -> Option<PasswordEncoding> {
        PasswordEncoding::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The password a client sent, as the shopper typed it; `None` when it does not decode
    /// (not base64, or not UTF-8 once decoded), which the login grant answers exactly like
    /// a wrong password.
    pub fn decode(self, sent: &Secret) -> Option<Secret> {
        match self {
            PasswordEncoding::Plain => Some(sent.clone()),
            PasswordEncoding::Base64 => {
                let bytes = BASE64_PADDING_OPTIONAL.decode(sent.expose()).ok()?;
                String::from_utf8(bytes).ok().map(Secret::new)
            }
        }
    }
}

/// Standard base64 that accepts the padding or its absence.
const BASE64_PADDING_OPTIONAL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A registered client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    /// The API key (OAuth `client_id`).
    pub id: String,
    /// A human name for listings.
    pub name: String,
    /// The secret's hash; `None` for a public client.
    pub secret_hash: Option<ClientSecretHash>,
    /// Grants this client may use.
    pub grants: GrantSet,
    /// A disabled client cannot authenticate and its tokens stop working.
    pub disabled: bool,
    /// Access token lifetime in seconds.
    pub access_token_ttl: i64,
    /// Absolute refresh token (session) lifetime in seconds.
    pub refresh_token_ttl: i64,
    /// Locale of new sessions, e.g. `en_US`.
    pub default_locale: String,
    /// Currency of new sessions, e.g. `USD`.
    pub default_currency: String,
    /// Storefront theme reported with session details.
    pub theme_id: Option<String>,
    /// When the client was created.
    pub created_at: Timestamp,
    /// The client's revocation watermark: every session of the client created at or before
    /// it has ended ("logout everywhere" for a client). `None` until first set.
    pub sessions_revoked_before: Option<Timestamp>,
    /// How this client sends shopper passwords with the login grant.
    pub password_encoding: PasswordEncoding,
    /// A resource server may introspect every client's tokens (RFC 7662 §2.1: the
    /// protected resource asks); any other client sees only its own. Only a confidential
    /// client is ever treated as one.
    pub resource_server: bool,
}

impl ClientRecord {
    /// Default access token lifetime (API.md §2).
    pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 3600;
    /// Default absolute refresh token lifetime: one year (API.md §2).
    pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 365 * 24 * 3600;

    /// A public client holds no secret and can only use grants that need none.
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// Whether this client may introspect tokens issued to other clients: a resource
    /// server, and confidential, since a public client's id is no secret.
    pub fn sees_all_tokens(&self) -> bool {
        self.resource_server && !self.is_public()
    }
}

/// How a client presented its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: Basic`.
    Basic,
    /// `client_id` (and `client_secret`) in the form body.
    Body,
}

/// Client credentials as presented, not yet checked.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    /// The presented API key.
    pub client_id: String,
    /// The presented secret; `None` or empty for a public client.
    pub secret: Option<Secret>,
    /// Where the credentials came from.
    pub method: AuthMethod,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_verifies_only_its_secret() -> Result<(), StoreError> {
        let secret = new_client_secret()?;
        let hash = ClientSecretHash::new(&secret)?;
        assert!(hash.verify(secret.expose()));
        assert!(!hash.verify("tcs_wrong"));
        assert!(!hash.verify(""));
        let stored = ClientSecretHash::from_bytes(&hash.to_bytes());
        assert_eq!(stored, Some(hash));
        Ok(())
    }

    #[test]
    fn secrets_use_only_characters_form_encoding_leaves_alone() -> Result<(), StoreError> {
        let secret = new_client_secret()?;
        assert_eq!(secret.expose().len(), 47);
        assert!(
            secret
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        Ok(())
    }

    #[test]
    fn base64_passwords_decode_with_or_without_padding() {
        let decode = |sent: &str| {
            PasswordEncoding::Base64
                .decode(&Secret::new(sent))
                .map(|s| s.expose().to_owned())
        };
        assert_eq!(decode("cGE6c3M="), Some("pa:ss".to_owned()));
        assert_eq!(decode("cGE6c3M"), Some("pa:ss".to_owned()));
        assert_eq!(decode("w6k="), Some("\u{e9}".to_owned()));
        assert_eq!(decode("not base64!"), None);
        // Valid base64 of bytes that are not UTF-8.
        assert_eq!(decode("/w=="), None);
        assert_eq!(
            PasswordEncoding::Plain
                .decode(&Secret::new("cGE6c3M="))
                .map(|s| s.expose().to_owned()),
            Some("cGE6c3M=".to_owned())
        );
        for encoding in PasswordEncoding::ALL {
            assert_eq!(PasswordEncoding::parse(encoding.name()), Some(encoding));
        }
        assert_eq!(PasswordEncoding::default(), PasswordEncoding::Plain);
    }

    #[test]
    fn default_grants_leave_out_password_login() {
        let grants = GrantSet::default_for_new_client();
        assert!(!grants.contains(Grant::Password));
        assert!(grants.contains(Grant::Anonymous));
        assert!(grants.contains(Grant::ClientCredentials));
        assert!(grants.contains(Grant::RefreshToken));
        assert_eq!(GrantSet::from_bits(grants.bits()), grants);
    }
}
