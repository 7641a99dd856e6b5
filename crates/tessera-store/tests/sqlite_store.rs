//! Behaviour only the SQLite store has: durability across a reopen, failing closed on a
//! real held lock, no token material in the file, refusing files it cannot trust, and
//! reporting undecodable rows as corrupt.

use std::collections::HashSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use tempfile::TempDir;
use tessera_core::client::{ClientRecord, ClientSecretHash, GrantSet, PasswordEncoding};
use tessera_core::id::{new_client_id, new_session_id, new_session_tag, new_user_id};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::session_admin::SessionAdmin;
use tessera_core::token::{TokenHash, TokenKeys, TokenKind};
use tessera_core::{Secret, Store, StoreError, Timestamp};
use tessera_store::{OpenError, StoreOptions};

type TestResult = Result<(), Box<dyn Error>>;

const NOW: Timestamp = Timestamp(1_780_000_000_000);

fn db_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn open_at(path: &Path, options: &StoreOptions) -> Result<Arc<dyn Store>, OpenError> {
    tessera_store::open(&db_url(path), options).await
}

fn new_client() -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: new_client_id()?,
        name: "test".to_owned(),
        secret_hash: Some(ClientSecretHash::new(&Secret::new("tcs_test"))?),
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
    })
}

/// A session of `client` holding an access token and a refresh token with these hashes.
fn session(
    client: &ClientRecord,
    access: TokenHash,
    refresh: TokenHash,
) -> Result<(SessionRecord, Vec<TokenRecord>), StoreError> {
    let session = SessionRecord {
        id: new_session_id()?,
        client_id: client.id.clone(),
        user_id: None,
        external_reference_id: None,
        authenticated: false,
        locale: "en_US".to_owned(),
        currency: "USD".to_owned(),
        cart_id: None,
        client_ip: "127.0.0.1".to_owned(),
        session_tag: new_session_tag()?,
        created_at: NOW,
        last_accessed: NOW,
        expires_at: NOW.plus_seconds(86_400),
        newest_access: access,
        revoked_at: None,
    };
    let token = |hash, kind, expires_at| TokenRecord {
        hash,
        kind,
        session_id: session.id.clone(),
        client_id: client.id.clone(),
        issued_at: NOW,
        expires_at,
        revoked_at: None,
        consumed_at: None,
    };
    let tokens = vec![
        token(access, TokenKind::Access, NOW.plus_seconds(3600)),
        token(refresh, TokenKind::Refresh, session.expires_at),
    ];
    Ok((session, tokens))
}

fn keys() -> Result<TokenKeys, Box<dyn Error>> {
    Ok(TokenKeys::parse(TokenKeys::generate_file()?.expose())?)
}

/// A stored client and one stored session of it with freshly minted tokens.
async fn seeded(
    store: &dyn Store,
) -> Result<(ClientRecord, SessionRecord, Vec<TokenRecord>), Box<dyn Error>> {
    let keys = keys()?;
    let client = new_client()?;
    store.insert_client(&client).await?;
    let access = keys.mint(TokenKind::Access)?.hash;
    let refresh = keys.mint(TokenKind::Refresh)?.hash;
    let (session, tokens) = session(&client, access, refresh)?;
    store.insert_session(&session, &tokens).await?;
    Ok((client, session, tokens))
}

/// A connection of our own to the same file, as another process would have.
async fn raw_connection(path: &Path) -> Result<SqliteConnection, sqlx::Error> {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path)).await
}

fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what}: expected Unavailable, got {result:?}"
    );
}

fn is_corrupt<T>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

/// Which of `needles` occur in `haystack`: one pass per needle length.
fn occurring(haystack: &[u8], needles: &[Vec<u8>]) -> HashSet<Vec<u8>> {
    let wanted: HashSet<&[u8]> = needles.iter().map(Vec::as_slice).collect();
    let lengths: HashSet<usize> = wanted.iter().map(|n| n.len()).collect();
    let mut found = HashSet::new();
    for length in lengths {
        for window in haystack.windows(length) {
            if wanted.contains(window) {
                found.insert(window.to_vec());
            }
        }
    }
    found
}

/// The database file and whatever WAL and shared-memory files sit beside it.
fn database_bytes(path: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, std::io::Error> {
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            let bytes = std::fs::read(&file)?;
            files.push((file, bytes));
        }
    }
    Ok(files)
}

#[tokio::test]
async fn writes_survive_closing_and_reopening_the_file() -> TestResult {
    let dir = TempDir::new()?;
    // A folder that does not exist yet: opening creates it.
    let path = dir.path().join("nested").join("data").join("tessera.db");
    let store = open_at(&path, &StoreOptions::default()).await?;
    let (client, session, tokens) = seeded(store.as_ref()).await?;
    assert!(
        store
            .revoke_token(&tokens[1].hash, NOW.plus_seconds(5))
            .await?
    );
    assert!(
        store
            .end_session_if_newest(&session.id, &session.newest_access, NOW.plus_seconds(6))
            .await?
    );
    store.close().await;

    let reopened = open_at(&path, &StoreOptions::default()).await?;
    assert_eq!(reopened.client(&client.id).await?, Some(client));
    let Some(found) = reopened.lookup_token(&tokens[1].hash).await? else {
        panic!("the refresh token must survive a reopen");
    };
    assert_eq!(found.token.revoked_at, Some(NOW.plus_seconds(5)));
    assert_eq!(found.session.revoked_at, Some(NOW.plus_seconds(6)));
    assert_eq!(found.session.id, session.id);
    reopened.close().await;
    Ok(())
}

/// Checkpoints run beside the writer, not inside its commits: the writes of a store that
/// stays open still reach the database file itself, not only the WAL, well before the
/// WAL's 1,000-frame mark at which SQLite would checkpoint inside a commit.
#[tokio::test]
async fn writes_reach_the_database_file_while_the_store_stays_open() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let store = open_at(&path, &StoreOptions::default()).await?;
    let keys = keys()?;
    let client = new_client()?;
    store.insert_client(&client).await?;
    let before = std::fs::metadata(&path)?.len();
    for _ in 0..40 {
        let access = keys.mint(TokenKind::Access)?.hash;
        let refresh = keys.mint(TokenKind::Refresh)?.hash;
        let (session, tokens) = session(&client, access, refresh)?;
        store.insert_session(&session, &tokens).await?;
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_frames = (std::fs::metadata(&wal)?.len().saturating_sub(32)) / (4096 + 24);
    assert!(wal_frames < 1000, "the WAL holds {wal_frames} frames");

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&path)?.len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint copied the writes into the database file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await;
    Ok(())
}

/// The checkpoint counter in the WAL file's header, which SQLite raises each time the next
/// write starts the WAL again from its beginning.
fn wal_restarts(wal: &Path) -> Result<u32, std::io::Error> {
    use std::io::Read as _;
    let mut header = [0_u8; 16];
    std::fs::File::open(wal)?.read_exact(&mut header)?;
    Ok(u32::from_be_bytes([
        header[12], header[13], header[14], header[15],
    ]))
}

/// Under writes that never pause, with lookups beside them, the WAL still starts again
/// from its beginning every few thousand frames. A WAL only ever appended to grows without
/// end, and an fsync of a file that grew costs about twice one that did not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_again_from_its_beginning_while_writes_never_pause() -> TestResult {
    /// Far above the 16 MiB at which the WAL is folded in and the 32 MiB it is cut back to.
    const LARGEST_WAL: u64 = 48 * 1024 * 1024;
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let store = open_at(&path, &StoreOptions::default()).await?;
    let (client, _, looked_up) = seeded(store.as_ref()).await?;
    let keys = Arc::new(keys()?);
    let stop = Arc::new(AtomicBool::new(false));

    let mut load = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (store, keys, stop, client) = (
            Arc::clone(&store),
            Arc::clone(&keys),
            Arc::clone(&stop),
            client.clone(),
        );
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let access = keys.mint(TokenKind::Access)?.hash;
                let refresh = keys.mint(TokenKind::Refresh)?.hash;
                let (session, tokens) = session(&client, access, refresh)?;
                store.insert_session(&session, &tokens).await?;
            }
            Ok::<_, StoreError>(())
        });
    }
    for _ in 0..2 {
        let (store, stop, hash) = (Arc::clone(&store), Arc::clone(&stop), looked_up[0].hash);
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                store.lookup_token(&hash).await?;
            }
            Ok(())
        });
    }

    let mut largest = 0;
    let mut restarts = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while restarts.len() < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        largest = largest.max(std::fs::metadata(&wal)?.len());
        let counter = wal_restarts(&wal)?;
        if restarts.last() != Some(&counter) {
            restarts.push(counter);
        }
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = load.join_next().await {
        done??;
    }
    store.close().await;

    assert!(
        restarts.len() >= 4,
        "the WAL started again {} times in two minutes of writes",
        restarts.len() - 1
    );
    assert!(
        largest <= LARGEST_WAL,
        "the WAL grew to {largest} bytes between two starts"
    );
    Ok(())
}

#[tokio::test]
async fn the_file_is_in_wal_mode_with_the_schema_applied() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let store = open_at(&path, &StoreOptions::default()).await?;
    store.close().await;

    let mut raw = raw_connection(&path).await?;
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut raw)
        .await?;
    assert_eq!(journal, "wal");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut raw)
    .await?;
    // Each migration adds its own tables; these are the ones every later file relies on.
    for table in [
        "clients",
        "sessions",
        "shoppers",
        "tokens",
        "shopper_watermarks",
        "pending_tidy_ups",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing: {tables:?}"
        );
    }
    raw.close().await?;
    Ok(())
}

#[tokio::test]
async fn two_stores_opening_a_new_file_at_once_both_succeed() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let options = StoreOptions::default();
    let (first, second) = tokio::join!(open_at(&path, &options), open_at(&path, &options));
    let (first, second) = (first?, second?);
    let (client, _, tokens) = seeded(first.as_ref()).await?;
    assert_eq!(second.client(&client.id).await?, Some(client));
    assert!(second.lookup_token(&tokens[0].hash).await?.is_some());
    first.close().await;
    second.close().await;
    Ok(())
}

#[tokio::test]
async fn a_held_write_lock_makes_writes_unavailable_until_it_is_released() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let options = StoreOptions {
        busy_timeout: Duration::from_millis(200),
        ..StoreOptions::default()
    };
    let store = open_at(&path, &options).await?;
    let (client, live_session, live_tokens) = seeded(store.as_ref()).await?;
    let keys = keys()?;
    let (new_session, new_tokens) = session(
        &client,
        keys.mint(TokenKind::Access)?.hash,
        keys.mint(TokenKind::Refresh)?.hash,
    )?;
    let later = NOW.plus_seconds(60);

    // Another process takes SQLite's write lock and keeps it.
    let mut other = raw_connection(&path).await?;
    other.execute("BEGIN IMMEDIATE").await?;

    assert_unavailable(
        store.insert_session(&new_session, &new_tokens).await,
        "insert_session",
    );
    assert_unavailable(
        store.revoke_token(&live_tokens[0].hash, later).await,
        "revoke_token",
    );
    assert_unavailable(
        store
            .end_session_if_newest(&live_session.id, &live_session.newest_access, later)
            .await,
        "end_session_if_newest",
    );
    assert_unavailable(store.insert_client(&new_client()?).await, "insert_client");
    let Err(StoreError::Unavailable(message)) =
        store.revoke_token(&live_tokens[0].hash, later).await
    else {
        panic!("revoke_token must stay unavailable while the lock is held");
    };
    assert!(message.contains("BUSY"), "{message}");

    // Lookups do not need the write lock and keep working; nothing was half-written.
    let Some(found) = store.lookup_token(&live_tokens[0].hash).await? else {
        panic!("a stored token must still be found");
    };
    assert_eq!(found.token.revoked_at, None);
    assert_eq!(found.session.revoked_at, None);
    assert_eq!(store.lookup_token(&new_tokens[0].hash).await?, None);

    other.execute("COMMIT").await?;

    store.insert_session(&new_session, &new_tokens).await?;
    assert!(store.revoke_token(&live_tokens[0].hash, later).await?);
    assert!(
        store
            .end_session_if_newest(&live_session.id, &live_session.newest_access, later)
            .await?
    );
    assert!(store.lookup_token(&new_tokens[1].hash).await?.is_some());

    other.close().await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn a_closed_store_is_unavailable() -> TestResult {
    let dir = TempDir::new()?;
    let store = open_at(&dir.path().join("tessera.db"), &StoreOptions::default()).await?;
    let (_, session, tokens) = seeded(store.as_ref()).await?;
    store.close().await;

    assert_unavailable(store.ping().await, "ping");
    assert_unavailable(
        store.revoke_token(&tokens[0].hash, NOW).await,
        "revoke_token",
    );
    assert_unavailable(store.lookup_token(&tokens[0].hash).await, "lookup_token");
    assert_unavailable(store.touch_session(&session.id, NOW).await, "touch_session");
    Ok(())
}

#[tokio::test]
async fn the_database_files_hold_no_token_or_its_random_part() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let store = open_at(&path, &StoreOptions::default()).await?;
    let keys = keys()?;
    let client = new_client()?;
    store.insert_client(&client).await?;

    let mut issued: Vec<(Secret, TokenHash)> = Vec::new();
    for _ in 0..100 {
        let access = keys.mint(TokenKind::Access)?;
        let refresh = keys.mint(TokenKind::Refresh)?;
        let (session, tokens) = session(&client, access.hash, refresh.hash)?;
        store.insert_session(&session, &tokens).await?;
        issued.push((access.token, access.hash));
        issued.push((refresh.token, refresh.hash));
    }

    // What must never be stored: each token, its base64url payload, and its raw random
    // bytes. And, as a check that the search sees what is there, what must be: the hashes.
    let mut forbidden = Vec::new();
    for (token, _) in &issued {
        let token = token.expose();
        // `tsa_<kid>_<payload>`; the payload's base64url may itself hold `_`.
        let payload = token.splitn(3, '_').nth(2).unwrap_or(token);
        let decoded = URL_SAFE_NO_PAD.decode(payload)?;
        let random = decoded.get(..32).ok_or("a payload shorter than 32 bytes")?;
        forbidden.extend([
            token.as_bytes().to_vec(),
            payload.as_bytes().to_vec(),
            random.to_vec(),
        ]);
    }
    let hashes: Vec<Vec<u8>> = issued.iter().map(|(_, hash)| hash.0.to_vec()).collect();

    // Once with the store open (rows still in the WAL), once after the WAL is folded in.
    for phase in ["open", "closed"] {
        if phase == "closed" {
            store.close().await;
        }
        let files = database_bytes(&path)?;
        assert!(!files.is_empty());
        for (file, bytes) in &files {
            let leaked = occurring(bytes, &forbidden);
            assert!(
                leaked.is_empty(),
                "{phase}: {} token strings, payloads or random parts are in {}",
                leaked.len(),
                file.display()
            );
        }
        let seen: HashSet<Vec<u8>> = files
            .iter()
            .flat_map(|(_, bytes)| occurring(bytes, &hashes))
            .collect();
        assert_eq!(
            seen.len(),
            hashes.len(),
            "{phase}: not every stored hash was found, so the search proves nothing"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let content = "these are someone's notes, not a database\n".repeat(200);
    std::fs::write(&path, &content)?;

    let result = open_at(&path, &StoreOptions::default()).await;
    assert!(
        matches!(result, Err(OpenError::NotADatabase { .. })),
        "expected NotADatabase, got {:?}",
        result.err()
    );
    assert_eq!(std::fs::read_to_string(&path)?, content);
    Ok(())
}

#[tokio::test]
async fn a_damaged_database_is_refused() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let store = open_at(&path, &StoreOptions::default()).await?;
    let client = new_client()?;
    store.insert_client(&client).await?;
    for _ in 0..300 {
        seeded(store.as_ref()).await?;
    }
    store.close().await;

    // Scribble over the middle of the file, past the header and the schema page.
    let mut bytes = std::fs::read(&path)?;
    assert!(
        bytes.len() > 16 * 4096,
        "the file is too small to damage usefully"
    );
    for byte in &mut bytes[8 * 4096..12 * 4096] {
        *byte = 0x5a;
    }
    std::fs::write(&path, &bytes)?;

    let result = open_at(&path, &StoreOptions::default()).await;
    assert!(
        matches!(result, Err(OpenError::Corrupt { .. })),
        "expected Corrupt, got {:?}",
        result.err()
    );
    Ok(())
}

#[tokio::test]
async fn rows_that_cannot_be_decoded_are_reported_as_corrupt() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let store = open_at(&path, &StoreOptions::default()).await?;
    let (client, session, tokens) = seeded(store.as_ref()).await?;

    // Write what the schema's CHECKs forbid, as a damaged or hand-edited file might hold.
    let mut raw = raw_connection(&path).await?;
    raw.execute("PRAGMA ignore_check_constraints = ON").await?;
    sqlx::query("UPDATE tokens SET kind = 7 WHERE hash = ?1")
        .bind(&tokens[0].hash.0[..])
        .execute(&mut raw)
        .await?;
    sqlx::query("UPDATE sessions SET newest_access = x'0102' WHERE id = unhex(?1)")
        .bind(&session.id)
        .execute(&mut raw)
        .await?;
    sqlx::query("UPDATE clients SET secret_hash = x'00' WHERE id = ?1")
        .bind(&client.id)
        .execute(&mut raw)
        .await?;
    raw.close().await?;

    let by_kind = store.lookup_token(&tokens[0].hash).await;
    assert!(is_corrupt(&by_kind), "bad kind: {by_kind:?}");
    let by_session = store.lookup_token(&tokens[1].hash).await;
    assert!(is_corrupt(&by_session), "bad newest_access: {by_session:?}");
    let by_client = store.client(&client.id).await;
    assert!(is_corrupt(&by_client), "bad secret hash: {by_client:?}");
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn writes_queued_together_each_land_or_fail_on_their_own() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let options = StoreOptions {
        // Far longer than the writes take to queue behind the held lock below.
        busy_timeout: Duration::from_secs(30),
        ..StoreOptions::default()
    };
    let store = open_at(&path, &options).await?;
    let (client, live_session, live_tokens) = seeded(store.as_ref()).await?;
    let keys = keys()?;
    let later = NOW.plus_seconds(60);

    let fresh: Vec<_> = (0..20)
        .map(|_| {
            session(
                &client,
                keys.mint(TokenKind::Access)?.hash,
                keys.mint(TokenKind::Refresh)?.hash,
            )
        })
        .collect::<Result<_, _>>()?;
    // Its access token's hash is taken: the session row goes in, then the token insert
    // fails, and the whole write must be undone.
    let (clashing, clashing_tokens) = session(
        &client,
        live_tokens[0].hash,
        keys.mint(TokenKind::Refresh)?.hash,
    )?;
    // Two rotations of the same refresh token: one wins, the other writes nothing.
    let rotations: Vec<(TokenRecord, TokenRecord)> = (0..2)
        .map(|_| -> Result<_, Box<dyn Error>> {
            let (_, mut tokens) = session(
                &client,
                keys.mint(TokenKind::Access)?.hash,
                keys.mint(TokenKind::Refresh)?.hash,
            )?;
            for token in &mut tokens {
                token.session_id.clone_from(&live_session.id);
            }
            let refresh = tokens.pop().ok_or("no refresh token")?;
            let access = tokens.pop().ok_or("no access token")?;
            Ok((access, refresh))
        })
        .collect::<Result<_, _>>()?;

    // Another process holds the write lock, so the writes below queue up behind it and
    // reach the writer together once it is released.
    let mut other = raw_connection(&path).await?;
    other.execute("BEGIN IMMEDIATE").await?;

    let mut inserts = tokio::task::JoinSet::new();
    for (session, tokens) in fresh.clone() {
        let store = Arc::clone(&store);
        inserts.spawn(async move { store.insert_session(&session, &tokens).await });
    }
    let clash = tokio::spawn({
        let store = Arc::clone(&store);
        let (session, tokens) = (clashing.clone(), clashing_tokens.clone());
        async move { store.insert_session(&session, &tokens).await }
    });
    let mut rotating = tokio::task::JoinSet::new();
    for (access, refresh) in rotations.clone() {
        let store = Arc::clone(&store);
        let consumed = live_tokens[1].hash;
        rotating.spawn(async move {
            let won = store
                .rotate_refresh(&consumed, later, &access, &refresh)
                .await?;
            Ok::<_, StoreError>((won, access))
        });
    }
    let unknown = tokio::spawn({
        let store = Arc::clone(&store);
        let hash = keys.mint(TokenKind::Access)?.hash;
        async move { store.revoke_token(&hash, later).await }
    });
    // Lets the spawned writes reach the queue; the outcome below holds however they are
    // split into batches.
    tokio::time::sleep(Duration::from_millis(300)).await;
    other.execute("COMMIT").await?;

    while let Some(done) = inserts.join_next().await {
        done??;
    }
    let clashed = clash.await?;
    assert!(
        matches!(clashed, Err(StoreError::Conflict(_))),
        "a taken token hash is a conflict, got {clashed:?}"
    );
    let mut won = Vec::new();
    while let Some(done) = rotating.join_next().await {
        won.push(done??);
    }
    assert_eq!(
        won.iter().filter(|(won, _)| *won).count(),
        1,
        "exactly one rotation of one refresh token wins"
    );
    assert!(!unknown.await??, "an unknown token is not revoked");

    // What was acknowledged is there after a reopen; what failed left nothing behind.
    store.close().await;
    let store = open_at(&path, &options).await?;
    for (session, tokens) in &fresh {
        for token in tokens {
            let Some(found) = store.lookup_token(&token.hash).await? else {
                panic!("an acknowledged insert must be found");
            };
            assert_eq!(found.session.id, session.id);
        }
    }
    assert_eq!(store.session_by_id(&clashing.id).await?, None);
    assert_eq!(store.lookup_token(&clashing_tokens[1].hash).await?, None);
    for (won, access) in &won {
        let found = store.lookup_token(&access.hash).await?;
        assert_eq!(
            found.is_some(),
            *won,
            "only the winning rotation's tokens exist"
        );
    }
    let Some(seeded) = store.lookup_token(&live_tokens[0].hash).await? else {
        panic!("the seeded session's access token must still be found");
    };
    assert_eq!(seeded.session.id, live_session.id);
    store.close().await;
    other.close().await?;
    Ok(())
}

fn random_key() -> Result<TokenHash, StoreError> {
    let mut key = [0u8; 32];
    tessera_core::id::random_bytes(&mut key)?;
    Ok(TokenHash(key))
}

/// Migrations 6 and 7 build the per-session tables again (6: tokens without the index by
/// session and the reference to sessions; 7: generated ids as bytes, no client in the
/// token rows), and 8 drops the indexes the sweeps replace: a file written at version 5
/// keeps every session and token as they were, whether its ids were generated or not.
#[tokio::test]
async fn rebuilding_the_session_tables_keeps_every_row() -> TestResult {
    let dir = TempDir::new()?;
    let path = dir.path().join("tessera.db");
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut before = sqlx::migrate::Migrator::new(folder).await?;
    before.migrations = before
        .migrations
        .iter()
        .filter(|migration| migration.version < 6)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let mut raw = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
    )
    .await?;
    before.run(&mut raw).await?;

    let generated = new_client()?;
    let (generated_session, mut generated_tokens) =
        session(&generated, random_key()?, random_key()?)?;
    let generated_session = SessionRecord {
        user_id: Some(new_user_id()?),
        ..generated_session
    };
    generated_tokens[1].consumed_at = Some(NOW.plus_seconds(5));
    generated_tokens[0].revoked_at = Some(NOW.plus_seconds(6));
    // Ids as an operator or an older release may have written them: kept as text.
    let named = ClientRecord {
        id: "storefront-eu".to_owned(),
        ..new_client()?
    };
    let (named_session, named_tokens) = session(&named, random_key()?, random_key()?)?;
    let named_session = SessionRecord {
        id: "legacy-session-1".to_owned(),
        user_id: Some("0123456789ABCDEF0123456789ABCDEF".to_owned()),
        ..named_session
    };
    let named_tokens: Vec<TokenRecord> = named_tokens
        .into_iter()
        .map(|token| TokenRecord {
            session_id: named_session.id.clone(),
            ..token
        })
        .collect();

    for client in [&generated, &named] {
        raw.execute(
            sqlx::query(
                "INSERT INTO clients (id, name, grants, disabled, access_token_ttl, \
                 refresh_token_ttl, default_locale, default_currency, created_at) \
                 VALUES (?1, 'test', 0, 0, 3600, 86400, 'en_US', 'USD', ?2)",
            )
            .bind(&client.id)
            .bind(NOW.millis()),
        )
        .await?;
    }
    for session in [&generated_session, &named_session] {
        raw.execute(
            sqlx::query(
                "INSERT INTO sessions (id, client_id, user_id, authenticated, locale, \
                 currency, client_ip, session_tag, created_at, last_accessed, expires_at, \
                 newest_access) VALUES (?1, ?2, ?8, 0, 'en_US', 'USD', ?7, ?3, ?4, ?4, ?5, ?6)",
            )
            .bind(&session.id)
            .bind(&session.client_id)
            .bind(&session.session_tag)
            .bind(session.created_at.millis())
            .bind(session.expires_at.millis())
            .bind(session.newest_access.0.to_vec())
            .bind(&session.client_ip)
            .bind(&session.user_id),
        )
        .await?;
    }
    for token in generated_tokens.iter().chain(&named_tokens) {
        let kind = match token.kind {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        };
        raw.execute(
            sqlx::query(
                "INSERT INTO tokens (hash, kind, session_id, client_id, issued_at, \
                 expires_at, revoked_at, consumed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(token.hash.0.to_vec())
            .bind(kind)
            .bind(&token.session_id)
            .bind(&token.client_id)
            .bind(token.issued_at.millis())
            .bind(token.expires_at.millis())
            .bind(token.revoked_at.map(Timestamp::millis))
            .bind(token.consumed_at.map(Timestamp::millis)),
        )
        .await?;
    }
    raw.close().await?;

    let store = open_at(&path, &StoreOptions::default()).await?;
    for (session, tokens) in [
        (&generated_session, &generated_tokens),
        (&named_session, &named_tokens),
    ] {
        for token in tokens {
            let Some(found) = store.lookup_token(&token.hash).await? else {
                panic!("{:?} of {} lost in the rebuild", token.kind, session.id);
            };
            assert_eq!(&found.token, token);
            assert_eq!(&found.session, session);
        }
        let found = store.session_by_id(&session.id).await?;
        assert_eq!(found.map(|f| f.session).as_ref(), Some(session));
    }
    store.close().await;

    let mut raw = raw_connection(&path).await?;
    let kept_as: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT typeof(id), typeof(client_id), typeof(user_id) FROM sessions ORDER BY id",
    )
    .fetch_all(&mut raw)
    .await?;
    let text = || "text".to_owned();
    let blob = || "blob".to_owned();
    assert_eq!(
        kept_as,
        [(text(), text(), text()), (blob(), blob(), blob())]
    );
    // Only what lookups and writes need, and what clean-up cannot do without (migration 8).
    for (table, expected) in [
        ("sessions", vec!["sessions_by_user", "sessions_revoked"]),
        ("tokens", vec![]),
    ] {
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_index_list(?1) WHERE origin = 'c' ORDER BY name",
        )
        .bind(table)
        .fetch_all(&mut raw)
        .await?;
        assert_eq!(indexes, expected, "{table}");
    }
    for table in ["sessions", "tokens", "session_tokens"] {
        let references: Vec<String> =
            sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
                .bind(table)
                .fetch_all(&mut raw)
                .await?;
        assert!(references.is_empty(), "{table}: {references:?}");
    }
    raw.close().await?;
    Ok(())
}

/// With the server's bounded sweep, a clean-up run sweeps only so many tokens and the next
/// run goes on from there; `tessera gc`'s clean-up sweeps them all at once. Either way the
/// tokens of deleted sessions go and a live session's stay.
#[tokio::test]
async fn a_bounded_sweep_goes_on_where_the_last_run_stopped() -> TestResult {
    let dir = TempDir::new()?;
    let store = open_at(&dir.path().join("tessera.db"), &StoreOptions::default()).await?;
    let client = new_client()?;
    store.insert_client(&client).await?;
    let mut dead = Vec::new();
    for _ in 0..3 {
        let (session, tokens) = session(&client, random_key()?, random_key()?)?;
        store.insert_session(&session, &tokens).await?;
        assert!(store.revoke_session(&session.id, NOW).await?);
        dead.extend(tokens);
    }
    // The live session's tokens come first in key order: a sweep that started again at
    // the first token every run would look at them alone and never reach the dead ones.
    let lowest = |last: u8| {
        let mut key = [0u8; 32];
        key[31] = last;
        TokenHash(key)
    };
    let (live, live_tokens) = session(&client, lowest(1), lowest(2))?;
    store.insert_session(&live, &live_tokens).await?;
    let clock = Arc::new(tessera_core::ManualClock::new(NOW.plus_seconds(10)));

    let bounded = SessionAdmin::new(Arc::clone(&store), clock.clone()).with_bounded_sweep(2);
    let first = bounded.clean_up(|_| {}).await?;
    assert_eq!((first.sessions_deleted, first.tokens_deleted), (3, 0));
    let mut deleted = Vec::new();
    for _ in 0..3 {
        deleted.push(bounded.clean_up(|_| {}).await?.tokens_deleted);
    }
    assert_eq!(deleted, [2, 2, 2]);
    for token in &dead {
        assert_eq!(store.lookup_token(&token.hash).await?, None);
    }
    for token in &live_tokens {
        assert!(store.lookup_token(&token.hash).await?.is_some());
    }

    // The same again, swept whole by one run.
    let (session, tokens) = session(&client, random_key()?, random_key()?)?;
    store.insert_session(&session, &tokens).await?;
    assert!(store.revoke_session(&session.id, NOW).await?);
    let whole = SessionAdmin::new(Arc::clone(&store), clock);
    let report = whole.clean_up(|_| {}).await?;
    assert_eq!((report.sessions_deleted, report.tokens_deleted), (1, 2));
    store.close().await;
    Ok(())
}
