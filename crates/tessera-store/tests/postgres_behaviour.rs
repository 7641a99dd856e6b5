//! The storage behaviour suite (`tessera_core::suite`) against PostgreSQL: one test per
//! check, each on its own fresh database, the whole suite once more on a single store, and
//! what only PostgreSQL has: the durability check at start, concurrent migrations, retried
//! serialization failures, connections replaced after the server ended them, and a URL
//! password kept out of errors.
//!
//! The server is `TESSERA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); see `tessera_store::test_support` for
//! what happens when it cannot be reached (CI fails, a developer sees a notice).

use std::error::Error;
use std::sync::Arc;

use sqlx::{Connection as _, PgConnection};
use tessera_core::Store;
use tessera_core::client::{ClientRecord, GrantSet, PasswordEncoding};
use tessera_core::id::{new_client_id, new_session_id, new_session_tag, random_bytes};
use tessera_core::session::{SessionRecord, TokenRecord};
use tessera_core::token::{TokenHash, TokenKind};
use tessera_core::{StoreError, Timestamp};
use tessera_store::test_support::TestDatabase;
use tessera_store::{OpenError, StoreOptions};

#[macro_use]
mod suite_checks;

type TestResult = Result<(), Box<dyn Error>>;

macro_rules! suite_tests {
    ($($check:ident),+ $(,)?) => {$(
        #[tokio::test]
        async fn $check() -> TestResult {
            let Some(database) = TestDatabase::create().await? else {
                return Ok(());
            };
            let store = tessera_store::open(database.url(), &StoreOptions::default()).await?;
            tessera_core::suite::$check(store.as_ref()).await?;
            store.close().await;
            Ok(())
        }
    )+};
}

for_each_suite_check!(suite_tests);

#[tokio::test]
async fn the_whole_suite_passes_on_one_store() -> TestResult {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let store = tessera_store::open(database.url(), &StoreOptions::default()).await?;
    tessera_core::suite::run_all(store.as_ref()).await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn a_server_that_may_lose_acknowledged_commits_is_refused_unless_allowed() -> TestResult {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    // `fsync` is server-wide; `synchronous_commit` can be turned off for one database, and
    // new connections to it report `off`.
    database
        .execute(&format!(
            "ALTER DATABASE {} SET synchronous_commit = off",
            database.name()
        ))
        .await?;

    let refused = tessera_store::open(database.url(), &StoreOptions::default()).await;
    match refused {
        Err(OpenError::UnsafePostgres { setting, value, .. }) => {
            assert_eq!(setting, "synchronous_commit");
            assert_eq!(value, "off");
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a server with synchronous_commit off must be refused"),
    }

    let allowed = tessera_store::open(
        database.url(),
        &StoreOptions {
            allow_unsafe_postgres: true,
            ..StoreOptions::default()
        },
    )
    .await?;
    allowed.ping().await?;
    allowed.close().await;
    Ok(())
}

#[tokio::test]
async fn nodes_starting_at_once_on_a_new_database_both_migrate_it() -> TestResult {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let options = StoreOptions::default();
    let (first, second, third) = tokio::join!(
        tessera_store::open(database.url(), &options),
        tessera_store::open(database.url(), &options),
        tessera_store::migrate(database.url(), &options),
    );
    let (first, second) = (first?, second?);
    let version = third?;
    assert_eq!(version.backend, "PostgreSQL");
    assert!(version.version >= 1);
    // Both see one schema: a client written through one is read through the other.
    let client = client()?;
    first.insert_client(&client).await?;
    assert_eq!(second.client(&client.id).await?, Some(client));
    first.close().await;
    second.close().await;
    Ok(())
}

#[tokio::test]
async fn parallel_rotations_under_serializable_isolation_are_retried_and_one_wins() -> TestResult {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    // Under SERIALIZABLE (the isolation of some PostgreSQL-compatible databases), racing
    // rotations of one token end in serialization failures, which the store retries; the
    // retry sees the token consumed.
    database
        .execute(&format!(
            "ALTER DATABASE {} SET default_transaction_isolation = 'serializable'",
            database.name()
        ))
        .await?;
    let store: Arc<dyn Store> = tessera_store::open(
        database.url(),
        &StoreOptions {
            max_connections: 16,
            ..StoreOptions::default()
        },
    )
    .await?;
    let client = client()?;
    store.insert_client(&client).await?;

    for _ in 0..10 {
        let (session, tokens) = session_of(&client)?;
        let refresh = tokens[1].hash;
        store.insert_session(&session, &tokens).await?;
        let attempts = (0..8).map(|_| {
            let store = Arc::clone(&store);
            let session = session.clone();
            tokio::spawn(async move {
                let access = token(&session, TokenKind::Access)?;
                let successor = token(&session, TokenKind::Refresh)?;
                store
                    .rotate_refresh(&refresh, at(60), &access, &successor)
                    .await
            })
        });
        let mut won = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await? {
                Ok(true) => won += 1,
                Ok(false) => {}
                // Three losing attempts in a row are possible under heavy contention; the
                // promise is a clean 503, never a second winner or a 500.
                Err(StoreError::Unavailable(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        assert_eq!(won, 1, "exactly one rotation wins");
    }
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn connections_the_server_ended_are_replaced_without_a_restart() -> TestResult {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let store = tessera_store::open(database.url(), &StoreOptions::default()).await?;
    let client = client()?;
    store.insert_client(&client).await?;

    // What an administrator's pg_terminate_backend, a failover or a server restart does to
    // every pooled connection.
    let mut admin = PgConnection::connect(database.url()).await?;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await?;
    admin.close().await?;

    assert_eq!(store.client(&client.id).await?, Some(client.clone()));
    let (session, tokens) = session_of(&client)?;
    store.insert_session(&session, &tokens).await?;
    assert!(store.lookup_token(&tokens[0].hash).await?.is_some());
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn a_held_lock_turns_writes_into_unavailable_and_they_recover_after() -> TestResult {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let store = tessera_store::open(
        database.url(),
        &StoreOptions {
            busy_timeout: std::time::Duration::from_millis(200),
            ..StoreOptions::default()
        },
    )
    .await?;
    let client = client()?;
    store.insert_client(&client).await?;
    let (live, live_tokens) = session_of(&client)?;
    store.insert_session(&live, &live_tokens).await?;

    // Another session holds a lock that lets readers through but no writer.
    let mut holder = PgConnection::connect(database.url()).await?;
    sqlx::raw_sql("BEGIN; LOCK TABLE sessions, tokens IN EXCLUSIVE MODE")
        .execute(&mut holder)
        .await?;

    let (session, tokens) = session_of(&client)?;
    let issued = store.insert_session(&session, &tokens).await;
    assert!(
        matches!(&issued, Err(StoreError::Unavailable(m)) if m.contains("55P03")),
        "{issued:?}"
    );
    let revoked = store.revoke_session(&live.id, at(10)).await;
    assert!(
        matches!(revoked, Err(StoreError::Unavailable(_))),
        "{revoked:?}"
    );
    // Lookups read through the lock, and the refused writes changed nothing.
    let looked_up = store.lookup_token(&live_tokens[0].hash).await?;
    assert_eq!(looked_up.map(|l| l.session.revoked_at), Some(None));
    assert_eq!(store.lookup_token(&tokens[0].hash).await?, None);

    sqlx::raw_sql("COMMIT").execute(&mut holder).await?;
    holder.close().await?;
    assert!(store.revoke_session(&live.id, at(10)).await?);
    store.insert_session(&session, &tokens).await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn keys_holding_a_nul_match_nothing_instead_of_failing() -> TestResult {
    let Some(database) = TestDatabase::create().await? else {
        return Ok(());
    };
    let store = tessera_store::open(database.url(), &StoreOptions::default()).await?;
    assert_eq!(store.client("c\0lient").await?, None);
    assert_eq!(store.shopper_by_username("ann\0").await?, None);
    assert_eq!(store.shopper_by_external_reference("\0").await?, None);
    assert!(!store.revoke_session("s\0", at(0)).await?);
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_is_reported_without_the_password() -> TestResult {
    // Port 1 on the loopback address: nothing listens there, so the connection is refused
    // at once.
    let options = StoreOptions {
        acquire_timeout: std::time::Duration::from_secs(1),
        ..StoreOptions::default()
    };
    let Err(error) =
        tessera_store::open("postgres://tessera:hunter2@127.0.0.1:1/tessera", &options).await
    else {
        panic!("nothing listens on port 1");
    };
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(
        matches!(error, OpenError::PostgresConnect { .. }),
        "{chain}"
    );
    assert!(chain.contains("127.0.0.1:1"), "{chain}");
    assert!(!chain.contains("hunter2"), "{chain}");
    assert!(!format!("{error:?}").contains("hunter2"));
    Ok(())
}

/// 2026-05-28T20:26:40Z plus `seconds`.
fn at(seconds: i64) -> Timestamp {
    Timestamp(1_780_000_000_000).plus_seconds(seconds)
}

fn random_hash() -> Result<TokenHash, StoreError> {
    let mut bytes = [0u8; 32];
    random_bytes(&mut bytes)?;
    Ok(TokenHash(bytes))
}

fn client() -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        id: new_client_id()?,
        name: "postgres test client".to_owned(),
        secret_hash: None,
        grants: GrantSet::all(),
        disabled: false,
        access_token_ttl: 3600,
        refresh_token_ttl: 86_400,
        default_locale: "en_US".to_owned(),
        default_currency: "USD".to_owned(),
        theme_id: None,
        created_at: at(0),
        sessions_revoked_before: None,
        password_encoding: PasswordEncoding::Plain,
        resource_server: false,
    })
}

fn token(session: &SessionRecord, kind: TokenKind) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        hash: random_hash()?,
        kind,
        session_id: session.id.clone(),
        client_id: session.client_id.clone(),
        issued_at: at(0),
        expires_at: at(3600),
        revoked_at: None,
        consumed_at: None,
    })
}

/// A live anonymous session with its access and refresh token.
fn session_of(client: &ClientRecord) -> Result<(SessionRecord, Vec<TokenRecord>), StoreError> {
    let mut session = SessionRecord {
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
        created_at: at(0),
        last_accessed: at(0),
        expires_at: at(86_400),
        newest_access: random_hash()?,
        revoked_at: None,
    };
    let access = token(&session, TokenKind::Access)?;
    session.newest_access = access.hash;
    let refresh = token(&session, TokenKind::Refresh)?;
    Ok((session, vec![access, refresh]))
}
