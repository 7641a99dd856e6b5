//! Several SQLite stores on one file, as several processes would have: the `-changes`
//! counter tells each about the others' writes and never about its own, and writes from
//! many concurrent requests (answered by shared fsyncs) are all durable and visible.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tempfile::TempDir;
use tessera_core::client::{ClientRecord, GrantSet, PasswordEncoding};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::store::ChangeSignal;
use tessera_core::token::{TokenHash, TokenKind};
use tessera_core::{Store, Timestamp};
use tessera_store::StoreOptions;

type TestResult = Result<(), Box<dyn Error>>;

const NOW: Timestamp = Timestamp(1_780_000_000_000);
const CLIENT: &str = "shared-file-client";

async fn open_at(path: &Path) -> Result<Arc<dyn Store>, Box<dyn Error>> {
    let url = format!("sqlite://{}", path.display());
    Ok(tessera_store::open(&url, &StoreOptions::default()).await?)
}

fn signal(store: &dyn Store) -> Result<Arc<dyn ChangeSignal>, Box<dyn Error>> {
    store
        .change_signal()
        .ok_or_else(|| "a SQLite store in a writable folder has a change signal".into())
}

fn changes_path(database: &Path) -> PathBuf {
    PathBuf::from(format!("{}-changes", database.display()))
}

fn counter_in_file(database: &Path) -> Result<u64, Box<dyn Error>> {
    let bytes = std::fs::read(changes_path(database))?;
    let bytes: [u8; 8] = bytes
        .get(..8)
        .ok_or("the counter file holds fewer than 8 bytes")?
        .try_into()?;
    Ok(u64::from_le_bytes(bytes))
}

fn client() -> ClientRecord {
    ClientRecord {
        id: CLIENT.to_owned(),
        name: "shared".to_owned(),
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

fn token_hash(n: u64, kind: TokenKind) -> TokenHash {
    let mut bytes = [u8::from(kind == TokenKind::Refresh); 32];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    TokenHash(bytes)
}

/// Session number `n` with an access and a refresh token.
fn session(n: u64) -> (SessionRecord, Vec<TokenRecord>) {
    let session = SessionRecord {
        id: format!("session-{n}"),
        client_id: CLIENT.to_owned(),
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
        newest_access: token_hash(n, TokenKind::Access),
        revoked_at: None,
    };
    let tokens = [TokenKind::Access, TokenKind::Refresh]
        .into_iter()
        .map(|kind| TokenRecord {
            hash: token_hash(n, kind),
            kind,
            session_id: session.id.clone(),
            client_id: CLIENT.to_owned(),
            issued_at: NOW,
            expires_at: NOW.plus_seconds(3600),
            revoked_at: None,
            consumed_at: None,
        })
        .collect();
    (session, tokens)
}

/// Two stores on one new file, the client and sessions `0..sessions` stored through the
/// first.
async fn two_stores(
    dir: &TempDir,
    sessions: u64,
) -> Result<(PathBuf, Arc<dyn Store>, Arc<dyn Store>), Box<dyn Error>> {
    let path = dir.path().join("tessera.db");
    let first = open_at(&path).await?;
    let second = open_at(&path).await?;
    first.insert_client(&client()).await?;
    for n in 0..sessions {
        let (session, tokens) = session(n);
        first.insert_session(&session, &tokens).await?;
    }
    Ok((path, first, second))
}

#[tokio::test]
async fn a_revocation_is_a_foreign_change_for_the_other_store_only() -> TestResult {
    let dir = TempDir::new()?;
    let (path, first, second) = two_stores(&dir, 2).await?;
    let (first_signal, second_signal) = (signal(first.as_ref())?, signal(second.as_ref())?);
    let (first_before, second_before) = (
        first_signal.foreign_changes(),
        second_signal.foreign_changes(),
    );

    assert!(
        first
            .revoke_session("session-0", NOW.plus_seconds(1))
            .await?
    );
    assert!(second_signal.foreign_changes() > second_before);
    assert_eq!(first_signal.foreign_changes(), first_before);

    let second_seen = second_signal.foreign_changes();
    assert!(
        second
            .revoke_token(&token_hash(1, TokenKind::Access), NOW.plus_seconds(2))
            .await?
    );
    assert!(first_signal.foreign_changes() > first_before);
    assert_eq!(second_signal.foreign_changes(), second_seen);
    assert_eq!(counter_in_file(&path)?, 2);

    first.close().await;
    second.close().await;
    Ok(())
}

#[tokio::test]
async fn pure_inserts_and_lookup_times_change_nothing_for_either_store() -> TestResult {
    let dir = TempDir::new()?;
    let (_, first, second) = two_stores(&dir, 0).await?;
    let (first_signal, second_signal) = (signal(first.as_ref())?, signal(second.as_ref())?);
    let (first_before, second_before) = (
        first_signal.foreign_changes(),
        second_signal.foreign_changes(),
    );

    for n in 0..3 {
        let (session, tokens) = session(n);
        first.insert_session(&session, &tokens).await?;
    }
    first
        .touch_session("session-1", NOW.plus_seconds(5))
        .await?;
    second
        .touch_session("session-2", NOW.plus_seconds(6))
        .await?;

    assert_eq!(first_signal.foreign_changes(), first_before);
    assert_eq!(second_signal.foreign_changes(), second_before);
    first.close().await;
    second.close().await;
    Ok(())
}

#[tokio::test]
async fn concurrent_changes_from_two_stores_are_all_counted() -> TestResult {
    const PER_STORE: u64 = 40;
    let dir = TempDir::new()?;
    let (path, first, second) = two_stores(&dir, 0).await?;
    let (first_signal, second_signal) = (signal(first.as_ref())?, signal(second.as_ref())?);
    let counter_before = counter_in_file(&path).unwrap_or(0);

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..PER_STORE {
        for store in [&first, &second] {
            let store = Arc::clone(store);
            // SQLite counts matched rows, so every call changes the row and bumps.
            tasks.spawn(async move { store.set_client_disabled(CLIENT, n % 2 == 0).await });
        }
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done??, "the client exists, so every call matched it");
    }

    assert_eq!(counter_in_file(&path)?, counter_before + 2 * PER_STORE);
    assert!(
        first_signal.foreign_changes() > 0,
        "the first store must see the second's writes"
    );
    assert!(
        second_signal.foreign_changes() > 0,
        "the second store must see the first's writes"
    );
    first.close().await;
    second.close().await;
    Ok(())
}

#[tokio::test]
async fn a_garbled_or_truncated_counter_file_is_a_foreign_change() -> TestResult {
    let dir = TempDir::new()?;
    let (path, store, _other) = two_stores(&dir, 1).await?;
    let signal = signal(store.as_ref())?;
    assert!(
        store
            .revoke_session("session-0", NOW.plus_seconds(1))
            .await?
    );
    let before = signal.foreign_changes();

    std::fs::write(changes_path(&path), b"garbage!")?;
    let after_garbage = signal.foreign_changes();
    assert!(after_garbage > before);

    std::fs::File::options()
        .write(true)
        .open(changes_path(&path))?
        .set_len(3)?;
    assert!(signal.foreign_changes() > after_garbage);

    // The counter carries on from whatever the file holds.
    assert!(store.set_client_disabled(CLIENT, true).await?);
    std::fs::File::options()
        .write(true)
        .open(changes_path(&path))?
        .set_len(0)?;
    let emptied = signal.foreign_changes();
    assert!(store.set_client_disabled(CLIENT, false).await?);
    assert_eq!(counter_in_file(&path)?, 1);
    assert_eq!(signal.foreign_changes(), emptied);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn a_counter_file_that_cannot_be_opened_leaves_the_store_working_without_a_signal()
-> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    // A folder where the counter file should be: opening it as a file fails.
    std::fs::create_dir(changes_path(&path))?;
    let store = open_at(&path).await?;
    assert!(store.change_signal().is_none());
    store.insert_client(&client()).await?;
    assert!(store.set_client_disabled(CLIENT, true).await?);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn concurrent_inserts_all_succeed_and_are_durable() -> TestResult {
    const SESSIONS: u64 = 200;
    let dir = TempDir::new()?;
    let (path, writer, reader) = two_stores(&dir, 0).await?;

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..SESSIONS {
        let writer = Arc::clone(&writer);
        tasks.spawn(async move {
            let (session, tokens) = session(n);
            writer.insert_session(&session, &tokens).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }

    for n in 0..SESSIONS {
        let found = reader
            .lookup_token(&token_hash(n, TokenKind::Refresh))
            .await?;
        assert_eq!(
            found.map(|lookup| lookup.session.id),
            Some(format!("session-{n}"))
        );
    }
    writer.close().await;
    reader.close().await;

    let reopened = open_at(&path).await?;
    for n in 0..SESSIONS {
        assert!(
            reopened
                .lookup_token(&token_hash(n, TokenKind::Access))
                .await?
                .is_some(),
            "session {n} must survive a reopen"
        );
    }
    reopened.close().await;
    Ok(())
}
