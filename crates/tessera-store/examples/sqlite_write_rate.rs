//! How many durable session inserts per second the SQLite store takes, one at a time and
//! from 50 concurrent tasks, on a fresh file in a temporary folder (or under the folder
//! given as the first argument, to measure another file system).
//!
//! `cargo run --release -p tessera-store --example sqlite_write_rate [FOLDER]`

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tessera_core::Timestamp;
use tessera_core::client::{ClientRecord, GrantSet, PasswordEncoding};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::store::{ClientStore, SessionStore, Store};
use tessera_core::token::{TokenHash, TokenKind};
use tessera_store::{SqliteStore, StoreOptions};

const NOW: Timestamp = Timestamp(1_780_000_000_000);
const SEQUENTIAL: u64 = 500;
const TASKS: u64 = 50;
const PER_TASK: u64 = 40;

fn client() -> ClientRecord {
    ClientRecord {
        id: "rate-client".to_owned(),
        name: "rate".to_owned(),
        secret_hash: None,
        grants: GrantSet::all(),
        disabled: false,
        access_token_ttl: 3600,
        refresh_token_ttl: 86_400,
        default_locale: "en_US".to_owned(),
        default_currency: "USD".to_owned(),
        theme_id: None,
        created_at: NOW,
        sessions_revoked_before: None,
        password_encoding: PasswordEncoding::Plain,
        resource_server: false,
    }
}

/// A session with an access and a refresh token, all keyed by `n`.
fn session(n: u64) -> (SessionRecord, Vec<TokenRecord>) {
    let hash = |kind: u8| {
        let mut bytes = [kind; 32];
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        TokenHash(bytes)
    };
    let session = SessionRecord {
        id: format!("session-{n}"),
        client_id: "rate-client".to_owned(),
        user_id: None,
        external_reference_id: None,
        authenticated: false,
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "127.0.0.1".to_owned(),
        session_tag: format!("tag-{n}"),
        created_at: NOW,
        last_accessed: NOW,
        expires_at: NOW.plus_seconds(86_400),
        newest_access: hash(1),
        revoked_at: None,
    };
    let token = |hash, kind| TokenRecord {
        hash,
        kind,
        session_id: session.id.clone(),
        client_id: "rate-client".to_owned(),
        issued_at: NOW,
        expires_at: NOW.plus_seconds(3600),
        revoked_at: None,
        consumed_at: None,
    };
    let tokens = vec![
        token(hash(1), TokenKind::Access),
        token(hash(2), TokenKind::Refresh),
    ];
    (session, tokens)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = match std::env::args().nth(1) {
        Some(folder) => tempfile::TempDir::new_in(folder)?,
        None => tempfile::TempDir::new()?,
    };
    let store =
        Arc::new(SqliteStore::open(&dir.path().join("rate.db"), &StoreOptions::default()).await?);
    store.insert_client(&client()).await?;

    let started = Instant::now();
    for n in 0..SEQUENTIAL {
        let (session, tokens) = session(n);
        store.insert_session(&session, &tokens).await?;
    }
    let rate = SEQUENTIAL as f64 / started.elapsed().as_secs_f64();
    println!("sequential: {SEQUENTIAL} inserts, {rate:.0} inserts/s");

    let next = Arc::new(AtomicU64::new(SEQUENTIAL));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (store, next) = (Arc::clone(&store), Arc::clone(&next));
        tasks.spawn(async move {
            for _ in 0..PER_TASK {
                let (session, tokens) = session(next.fetch_add(1, Ordering::Relaxed));
                store.insert_session(&session, &tokens).await?;
            }
            Ok::<_, tessera_core::StoreError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let total = TASKS * PER_TASK;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("{TASKS} concurrent tasks: {total} inserts, {rate:.0} inserts/s");
    store.close().await;
    Ok(())
}
