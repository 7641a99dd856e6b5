//! Scale mode's pre-load: live anonymous sessions, each with an access and a refresh token
//! as the anonymous grant gives them, written straight into the store through its
//! idempotent import (far faster than HTTP) while the server is stopped. Their access
//! tokens are minted with the server's key file, and a uniform random sample of them is
//! kept for the `session` scenario, so lookups spread over the whole table.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use tessera_core::migration::{MigrationBatch, MigrationKind};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::token::{TokenKeys, TokenKind};
use tessera_core::{Clock as _, Store, SystemClock};

/// Sessions written per transaction.
const BATCH: u64 = 10_000;

/// How long pre-loaded access tokens live: longer than any run, so the sample stays valid.
const ACCESS_TTL_SECONDS: i64 = 2 * 24 * 3600;

/// How long pre-loaded sessions (and their refresh tokens) live.
const SESSION_TTL_SECONDS: i64 = 365 * 24 * 3600;

/// Creates the token key file the server will use (mode 0600) and returns its keys, so
/// that tokens minted here verify there.
pub fn create_key_file(path: &Path) -> anyhow::Result<TokenKeys> {
    let text = TokenKeys::generate_file().context("cannot generate a token key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.expose().as_bytes())?;
    file.sync_all()?;
    TokenKeys::parse(text.expose()).context("the generated key file does not parse")
}

/// Writes sessions for one client and keeps a sample of their access tokens.
pub struct Preloader {
    keys: TokenKeys,
    client_id: String,
    sample: Vec<String>,
    sample_size: usize,
    seen: u64,
    random: SplitMix64,
}

impl Preloader {
    /// A pre-loader keeping up to `sample_size` access tokens.
    pub fn new(keys: TokenKeys, client_id: String, sample_size: usize) -> anyhow::Result<Self> {
        let mut seed = [0u8; 8];
        tessera_core::id::random_bytes(&mut seed)?;
        Ok(Preloader {
            keys,
            client_id,
            sample: Vec::with_capacity(sample_size),
            sample_size,
            seen: 0,
            random: SplitMix64(u64::from_le_bytes(seed)),
        })
    }

    /// The sampled access tokens, uniformly drawn from every session written so far.
    pub fn sample(&self) -> &[String] {
        &self.sample
    }

    /// Live sessions in the store now.
    pub async fn live_sessions(store: &dyn Store) -> anyhow::Result<u64> {
        Ok(store
            .count_to_move(MigrationKind::Sessions, SystemClock.now())
            .await?)
    }

    /// Writes `count` new sessions, reporting progress on stderr.
    pub async fn load(&mut self, store: &dyn Store, count: u64) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut written = 0;
        while written < count {
            let size = BATCH.min(count - written);
            let (sessions, tokens) = self.batch(size)?;
            store.import_rows(&sessions).await?;
            store.import_rows(&tokens).await?;
            written += size;
            let rate = written as f64 / started.elapsed().as_secs_f64().max(1e-3);
            eprint!("\rpre-loading: {written} / {count} sessions ({rate:.0}/s)   ");
        }
        eprintln!();
        Ok(())
    }

    fn batch(&mut self, size: u64) -> anyhow::Result<(MigrationBatch, MigrationBatch)> {
        let now = SystemClock.now();
        let mut sessions = Vec::with_capacity(size as usize);
        let mut tokens = Vec::with_capacity(2 * size as usize);
        for _ in 0..size {
            let access = self.keys.mint(TokenKind::Access)?;
            let refresh = self.keys.mint(TokenKind::Refresh)?;
            let session_id = tessera_core::id::new_session_id()?;
            let expires_at = now.plus_seconds(SESSION_TTL_SECONDS);
            sessions.push(SessionRecord {
                id: session_id.clone(),
                client_id: self.client_id.clone(),
                user_id: Some(tessera_core::id::new_user_id()?),
                external_reference_id: None,
                authenticated: false,
                locale: "en_US".to_owned(),
                currency: "USD".to_owned(),
                cart_id: None,
                client_ip: "127.0.0.1".to_owned(),
                session_tag: tessera_core::id::new_session_tag()?,
                created_at: now,
                last_accessed: now,
                expires_at,
                newest_access: access.hash,
                revoked_at: None,
            });
            for (minted, kind, expires_at) in [
                (
                    &access,
                    TokenKind::Access,
                    now.plus_seconds(ACCESS_TTL_SECONDS),
                ),
                (&refresh, TokenKind::Refresh, expires_at),
            ] {
                tokens.push(TokenRecord {
                    hash: minted.hash,
                    kind,
                    session_id: session_id.clone(),
                    client_id: self.client_id.clone(),
                    issued_at: now,
                    expires_at,
                    revoked_at: None,
                    consumed_at: None,
                });
            }
            self.keep(access.token.expose());
        }
        Ok((
            MigrationBatch::Sessions(sessions),
            MigrationBatch::Tokens(tokens),
        ))
    }

    /// Reservoir sampling: every token seen has the same chance to be in the sample.
    fn keep(&mut self, token: &str) {
        self.seen += 1;
        if self.sample.len() < self.sample_size {
            self.sample.push(token.to_owned());
            return;
        }
        let slot = self.random.next() % self.seen;
        if let Some(kept) = self.sample.get_mut(slot as usize) {
            *kept = token.to_owned();
        }
    }
}

/// A small, fast pseudo-random generator; sampling needs no cryptographic strength.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
